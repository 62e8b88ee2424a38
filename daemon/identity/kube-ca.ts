// The mesh CA kept in a Kubernetes Secret. `nodemesh install` normally generates it; when the
// Secret is still empty (a Helm-only install), the first replica to start generates one and
// writes it with the Secret's resourceVersion, so of two replicas starting at once exactly one
// wins (the other gets 409 Conflict, reads again and uses the winner's): both serve one CA.
// The root is then published in a ConfigMap for the node daemons, which never see the key.
import type { KubeConfig } from '@kubernetes/client-node';
import { CA_CERT_FILE, CA_KEY_FILE, MeshCA } from './ca';
import { kubeRequest, statusMessage } from './kube-rest';
import { DaemonErrors } from '../errors';

interface SecretLike { metadata?: { resourceVersion?: string }; data?: Record<string, string> }

const MAX_ATTEMPTS = 5;

export async function loadOrCreateCaFromSecret(
  kc: KubeConfig, secret: { namespace: string; name: string }, trustDomain: string,
): Promise<{ ca: MeshCA; created: boolean }> {
  const where = `secret ${secret.namespace}/${secret.name}`;
  const path = `/api/v1/namespaces/${encodeURIComponent(secret.namespace)}/secrets/${encodeURIComponent(secret.name)}`;
  const fail = (reason: string, cause?: unknown) => DaemonErrors.NODEMESH_E_IDENTITY_CA_LOAD({ dir: where, reason }, { cause });
  const request = async (r: Parameters<typeof kubeRequest>[1]) => {
    try {
      return await kubeRequest(kc, r);
    } catch (e) {
      throw fail(`the Kubernetes API at ${kc.getCurrentCluster()?.server ?? '(no server)'} did not answer: ${(e as Error).message}`, e);
    }
  };
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const got = await request({ method: 'GET', path });
    if (got.status === 404) throw fail('it does not exist; install nodemesh with `nodemesh install` or its Helm chart, which create it');
    if (got.status !== 200) throw fail(`reading it failed: HTTP ${got.status}: ${statusMessage(got)}`);
    const s = got.body as SecretLike;
    const key = s.data?.[CA_KEY_FILE];
    const cert = s.data?.[CA_CERT_FILE];
    if (key && cert) {
      const ca = await MeshCA.fromPem(Buffer.from(key, 'base64').toString('utf8'), Buffer.from(cert, 'base64').toString('utf8'), { where });
      if (ca.trustDomain !== trustDomain) throw fail(`it is the CA of trust domain ${ca.trustDomain}, but NODEMESH_TRUST_DOMAIN is ${trustDomain}`);
      return { ca, created: false };
    }
    const ca = await MeshCA.create({ trustDomain });
    const pem = ca.toPem();
    const put = await request({
      method: 'PUT', path, query: { fieldManager: 'nodemesh-identity' },
      body: {
        ...s, apiVersion: 'v1', kind: 'Secret',
        data: { ...(s.data ?? {}), [CA_KEY_FILE]: Buffer.from(pem.keyPem).toString('base64'), [CA_CERT_FILE]: Buffer.from(pem.certPem).toString('base64') },
      },
    });
    if (put.status === 200) return { ca, created: true };
    if (put.status !== 409) throw fail(`writing the new CA failed: HTTP ${put.status}: ${statusMessage(put)}`);
    // 409: another replica wrote first; read its CA.
  }
  throw fail(`it kept changing while being read (${MAX_ATTEMPTS} attempts)`);
}

/** Publishes the root for the node daemons (merge patch: only ca.crt changes). */
export async function publishCaRoot(kc: KubeConfig, cm: { namespace: string; name: string }, rootPem: string): Promise<void> {
  const path = `/api/v1/namespaces/${encodeURIComponent(cm.namespace)}/configmaps/${encodeURIComponent(cm.name)}`;
  const got = await kubeRequest(kc, { method: 'GET', path });
  if (got.status === 200 && (got.body as { data?: Record<string, string> }).data?.[CA_CERT_FILE] === rootPem) return;
  if (got.status !== 200) throw new Error(`reading configmap ${cm.namespace}/${cm.name} failed: HTTP ${got.status}: ${statusMessage(got)}`);
  const res = await kubeRequest(kc, {
    method: 'PATCH', path, query: { fieldManager: 'nodemesh-identity' }, contentType: 'application/merge-patch+json',
    body: { data: { [CA_CERT_FILE]: rootPem } },
  });
  if (res.status !== 200) throw new Error(`publishing the CA root in configmap ${cm.namespace}/${cm.name} failed: HTTP ${res.status}: ${statusMessage(res)}`);
}
