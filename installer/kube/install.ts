// `nodemesh install` / `upgrade` / `uninstall` against a cluster.
import { KubeApi } from './api-client';
import { applyAll, deleteIfPresent, getOrUndefined, serverSideApply, sleep, type Output } from './apply';
import { objectPath } from './resources';
import { formatProgress, rolloutProgress, type DaemonSetLike, type EventLike, type PodLike, type RolloutProgress } from './rollout-progress';
import { InstallerErrors } from '../errors';
import { MeshCA } from '../../daemon/identity/ca';
import { CA_CERT_ENTRY, CA_FIELD_MANAGER, CA_KEY_ENTRY, caMaterial } from '../manifests/ca-objects';
import { installObjects, isCrd, objectRef, type KubeObject } from '../manifests/render';
import { selectorLabels } from '../manifests/labels';
import { UNINSTALL_NAME, uninstallDaemonSet } from '../manifests/node-daemonset';
import { CA_ROOT_CONFIGMAP_NAME, CA_SECRET_NAME, NAMESPACE, NODE_NAME, type ManifestValues } from '../manifests/values';
import { toPlain } from '../manifests/render';

export interface InstallOptions {
  values: ManifestValues;
  forceConflicts: boolean;
  timeoutSeconds: number;
  out: Output;
  /** Poll interval of the rollout wait. */
  pollMs?: number;
}

const DS_PATH = objectPath({ group: 'apps', version: 'v1', plural: 'daemonsets', namespaced: true }, NODE_NAME, NAMESPACE);
const SECRET_PATH = objectPath({ group: '', version: 'v1', plural: 'secrets', namespaced: true }, CA_SECRET_NAME, NAMESPACE);
const CONFIGMAP_PATH = objectPath({ group: '', version: 'v1', plural: 'configmaps', namespaced: true }, CA_ROOT_CONFIGMAP_NAME, NAMESPACE);

const isWorkload = (o: KubeObject): boolean => o.kind === 'DaemonSet' || o.kind === 'Deployment';

/** The CA, generated here once (never printed) and written with its own field manager; an
 * existing CA is kept, so upgrades and re-installs do not change the mesh's root. */
export async function ensureCa(api: KubeApi, trustDomain: string, out: Output): Promise<'created' | 'kept'> {
  const secret = await api.request<{ data?: Record<string, string> }>('GET', SECRET_PATH);
  const data = secret.body.data ?? {};
  let certPem: string;
  let created: 'created' | 'kept';
  if (data[CA_KEY_ENTRY] && data[CA_CERT_ENTRY]) {
    certPem = Buffer.from(data[CA_CERT_ENTRY], 'base64').toString('utf8');
    created = 'kept';
  } else {
    const ca = await MeshCA.create({ trustDomain });
    const pem = ca.toPem();
    certPem = pem.certPem;
    await serverSideApply(api, {
      apiVersion: 'v1', kind: 'Secret', metadata: { name: CA_SECRET_NAME, namespace: NAMESPACE }, data: caMaterial(pem.keyPem, pem.certPem).secretData,
    }, { force: false, fieldManager: CA_FIELD_MANAGER });
    created = 'created';
  }
  const cm = await api.request<{ data?: Record<string, string> }>('GET', CONFIGMAP_PATH);
  if (cm.body.data?.[CA_CERT_ENTRY] !== certPem) {
    await serverSideApply(api, {
      apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: CA_ROOT_CONFIGMAP_NAME, namespace: NAMESPACE }, data: caMaterial('', certPem).configMapData,
    }, { force: true, fieldManager: CA_FIELD_MANAGER });
  }
  out.line(created === 'created' ? 'mesh CA generated (secret/nodemesh-ca; the key is never printed)' : 'mesh CA kept (secret/nodemesh-ca already holds one)');
  return created;
}

async function daemonSetPods(api: KubeApi): Promise<PodLike[]> {
  const sel = Object.entries(selectorLabels(NODE_NAME)).map(([k, v]) => `${k}=${v}`).join(',');
  const res = await api.request<{ items: PodLike[] }>('GET', `/api/v1/namespaces/${NAMESPACE}/pods`, { query: { labelSelector: sel } });
  return res.body.items ?? [];
}

async function warningEvents(api: KubeApi, pods: string[]): Promise<EventLike[]> {
  const out: EventLike[] = [];
  for (const pod of pods.slice(0, 3)) {
    const res = await api.request<{ items: EventLike[] }>('GET', `/api/v1/namespaces/${NAMESPACE}/events`, {
      query: { fieldSelector: `involvedObject.kind=Pod,involvedObject.name=${pod}` }, accept: [404],
    });
    if (res.status === 200) out.push(...(res.body.items ?? []));
  }
  return out;
}

/** Waits until every desired node runs a ready daemon of the current spec, showing progress. */
export async function waitDaemonSetRollout(api: KubeApi, deadline: number, timeoutSeconds: number, out: Output, pollMs = 1000): Promise<RolloutProgress> {
  for (;;) {
    const ds = await getOrUndefined<DaemonSetLike>(api, DS_PATH);
    if (!ds) throw InstallerErrors.NODEMESH_E_KUBE_NOT_INSTALLED({ what: `daemonset/${NODE_NAME} in ${NAMESPACE}` });
    const pods = await daemonSetPods(api);
    let p = rolloutProgress(ds, pods);
    if (!p.done && p.lagging.length) p = rolloutProgress(ds, pods, await warningEvents(api, p.lagging.map((l) => l.pod ?? '')));
    out.progress(formatProgress(p, `daemonset/${NODE_NAME}`));
    if (p.done && p.desired > 0) {
      out.done();
      return p;
    }
    if (Date.now() > deadline) {
      out.done();
      const lag = p.lagging.map((l) => `${l.node}: ${l.reason}`).join('; ');
      throw InstallerErrors.NODEMESH_E_KUBE_TIMEOUT({
        what: `daemonset/${NODE_NAME} to roll out`, seconds: timeoutSeconds,
        state: `${p.ready}/${p.desired} nodes ready, ${p.updated}/${p.desired} updated${lag ? `; lagging: ${lag}` : p.desired === 0 ? '; no node is scheduled yet' : ''}`,
      });
    }
    await sleep(pollMs);
  }
}

export async function installOrUpgrade(api: KubeApi, mode: 'install' | 'upgrade', opts: InstallOptions): Promise<RolloutProgress> {
  const deadline = Date.now() + opts.timeoutSeconds * 1000;
  if (mode === 'upgrade' && !(await getOrUndefined(api, DS_PATH))) {
    throw InstallerErrors.NODEMESH_E_KUBE_NOT_INSTALLED({ what: `daemonset/${NODE_NAME} in ${NAMESPACE}` });
  }
  const objects = installObjects(opts.values);
  const apply = { force: opts.forceConflicts, deadline, timeoutSeconds: opts.timeoutSeconds, out: opts.out };
  await applyAll(api, objects.filter((o) => !isWorkload(o)), apply);
  await ensureCa(api, opts.values.trustDomain, opts.out);
  await applyAll(api, objects.filter(isWorkload), apply);
  return waitDaemonSetRollout(api, deadline, opts.timeoutSeconds, opts.out, opts.pollMs);
}

async function waitGone(api: KubeApi, path: string, what: string, deadline: number, timeoutSeconds: number): Promise<void> {
  while (await getOrUndefined(api, path)) {
    if (Date.now() > deadline) throw InstallerErrors.NODEMESH_E_KUBE_TIMEOUT({ what: `${what} to be deleted`, seconds: timeoutSeconds, state: 'it still exists' });
    await sleep(500);
  }
}

/** Removes what install created, in reverse order. Enrolled pods keep working: after the node
 * DaemonSet is gone (its pods stop with SIGTERM, which keeps eBPF attached), a one-shot
 * DaemonSet runs `nodemesh-node --uninstall` on every node to detach and unpin the programs,
 * so pods talk directly again; it is then deleted. CRDs (and with them every policy) go only
 * with --purge. */
export async function uninstall(api: KubeApi, opts: { values: ManifestValues; purge: boolean; timeoutSeconds: number; out: Output; pollMs?: number }): Promise<void> {
  const deadline = Date.now() + opts.timeoutSeconds * 1000;
  const objects = installObjects(opts.values);
  const ns = await getOrUndefined(api, objectPath({ group: '', version: 'v1', plural: 'namespaces', namespaced: false }, NAMESPACE));
  if (ns && (await deleteIfPresent(api, { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: NODE_NAME, namespace: NAMESPACE } }))) {
    opts.out.line(`daemonset/${NODE_NAME} deleted`);
    await waitGone(api, DS_PATH, `daemonset/${NODE_NAME}`, deadline, opts.timeoutSeconds);
    // The detach DaemonSet: one pod per node, ready once its init container has detached.
    const detach = toPlain([uninstallDaemonSet(opts.values)])[0];
    await serverSideApply(api, detach, { force: true });
    opts.out.line(`daemonset/${UNINSTALL_NAME} started: detaching eBPF programs on every node`);
    const path = objectPath({ group: 'apps', version: 'v1', plural: 'daemonsets', namespaced: true }, UNINSTALL_NAME, NAMESPACE);
    for (;;) {
      const ds = await getOrUndefined<DaemonSetLike>(api, path);
      const s = ds?.status ?? {};
      const desired = s.desiredNumberScheduled ?? 0;
      const observed = (s.observedGeneration ?? 0) >= (ds?.metadata.generation ?? 0);
      opts.out.progress(`daemonset/${UNINSTALL_NAME}: ${s.numberReady ?? 0}/${desired} nodes detached`);
      if (observed && desired > 0 && (s.numberReady ?? 0) >= desired) break;
      if (Date.now() > deadline) {
        opts.out.done();
        throw InstallerErrors.NODEMESH_E_KUBE_TIMEOUT({
          what: 'the eBPF programs to be detached on every node', seconds: opts.timeoutSeconds,
          state: `${s.numberReady ?? 0}/${desired} nodes done; daemonset/${UNINSTALL_NAME} is left in place so it can finish, run uninstall again afterwards`,
        });
      }
      await sleep(opts.pollMs ?? 1000);
    }
    opts.out.done();
    await deleteIfPresent(api, detach);
    opts.out.line(`daemonset/${UNINSTALL_NAME} deleted`);
  }
  const crds = objects.filter(isCrd);
  for (const obj of [...objects].reverse()) {
    if (isCrd(obj) && !opts.purge) continue;
    if (obj.kind === 'DaemonSet') continue;
    if (obj.metadata.namespace && !ns) continue;
    if (await deleteIfPresent(api, obj, crds)) opts.out.line(`${objectRef(obj).toLowerCase()} deleted`);
  }
  if (!opts.purge && crds.length) opts.out.line(`kept ${crds.length} CRD(s) and the policies in them; 'nodemesh uninstall --purge' removes them too`);
}
