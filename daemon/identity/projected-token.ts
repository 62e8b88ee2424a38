// A pod-bound ServiceAccount token, as a kubelet requests it for a projected volume
// (TokenRequest on serviceaccounts/<sa>/token with boundObjectRef = the pod): what a node
// daemon presents to nodemesh-identity. The kubelet does this on a real node; the sandbox
// against an API server (`local up --apiserver`) has no kubelet and calls this instead, then
// writes the token to the daemon's NODEMESH_NODE_CREDENTIAL_FILE and renews it before expiry.
import type { KubeConfig } from '@kubernetes/client-node';
import { kubeRequest, statusMessage } from './kube-rest';

export interface ProjectedTokenRequest {
  namespace: string;
  serviceAccount: string;
  pod: { name: string; uid: string };
  audience: string;
  expirationSeconds?: number;
}

export async function requestProjectedToken(kc: KubeConfig, r: ProjectedTokenRequest): Promise<{ token: string; expiresAt: Date }> {
  const res = await kubeRequest(kc, {
    method: 'POST',
    path: `/api/v1/namespaces/${encodeURIComponent(r.namespace)}/serviceaccounts/${encodeURIComponent(r.serviceAccount)}/token`,
    body: {
      apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
      spec: { audiences: [r.audience], expirationSeconds: r.expirationSeconds ?? 3600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: r.pod.name, uid: r.pod.uid } },
    },
  });
  const status = (res.body as { status?: { token?: string; expirationTimestamp?: string } } | undefined)?.status;
  if (res.status !== 201 || !status?.token) throw new Error(`TokenRequest for ${r.namespace}/${r.serviceAccount} failed: HTTP ${res.status}: ${statusMessage(res)}`);
  return { token: status.token, expiresAt: new Date(status.expirationTimestamp ?? Date.now()) };
}
