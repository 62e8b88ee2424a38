// Publishing the sandbox to a Kubernetes API server (`local up --apiserver`): the sandbox is
// the kubelet of its nodes and the controllers of a cluster without controller-manager, so
// it writes what those would: Nodes with a Ready status, Pods with their status (phase, pod
// IPs, host IPs, the Ready condition), the Services, EndpointSlices as the EndpointSlice
// controller builds them (an endpoint per pod with an IP, `ready` from the pod's Ready
// condition, not from its phase) and ServiceAccounts (the `default` one of every namespace, as
// the service account controller makes them, and every one a pod names).
//
// Pure: desiredObjects() and endpointSlicesFor() compute the apply configurations from a view
// of the sandbox. I/O: ApiServerPublisher applies them with server-side apply (field manager
// `nodemesh-sandbox`, force: the sandbox is the authority for what it publishes), status
// through the status subresource, and deletes what it published before and no longer has.
import * as k8s from '@kubernetes/client-node';
import { resolveTargetPort, type Labels, type Pod, type Service } from '../../daemon/state/resources';
import { InstallerErrors } from '../errors';

export const FIELD_MANAGER = 'nodemesh-sandbox';
/** On everything the publisher applies: how a later `nodemesh local` process finds what an
 * earlier one published (and deletes what the sandbox no longer has). */
export const PUBLISHED_LABEL = 'sandbox.nodemesh.io/published';
/** Kinds always looked for when adopting what an earlier process published. */
const PUBLISHED_KINDS: readonly [string, string][] = [
  ['v1', 'Namespace'], ['v1', 'Node'], ['v1', 'ServiceAccount'], ['v1', 'Service'], ['v1', 'Pod'], ['discovery.k8s.io/v1', 'EndpointSlice'],
];

/** The EndpointSlice controller's label value; ours says who really wrote the slice. */
export const ENDPOINTSLICE_MANAGED_BY = 'nodemesh-sandbox.nodemesh.io';

type Obj = Record<string, any> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [k: string]: any } };

export interface SandboxView {
  nodes: readonly { name: string; ip: string; podCIDR: string }[];
  namespaces: readonly { name: string; labels?: Labels }[];
  /** The Pods as the sandbox publishes them (status: phase, podIP, hostIP). */
  pods: readonly Pod[];
  services: readonly Service[];
  /** ServiceAccounts the manifests declare (others are derived). */
  serviceAccounts?: readonly { namespace: string; name: string }[];
  /** When each pod became Ready (key ns/name); default: now. */
  readySince?: ReadonlyMap<string, string>;
  /** Other manifests applied as they are (policies, ConfigMaps, Deployments, CRDs: CRDs go
   * first and are waited for until Established, as `kubectl apply` users must). */
  manifests?: readonly Obj[];
}

/** The view from what the sandbox records: its nodes and the object directory's contents
 * (ServiceAccounts and every kind the sandbox only stores become manifests). */
export function sandboxViewOf(
  nodes: readonly { name: string; ip: string; podCIDR: string }[],
  objects: { namespaces: readonly { metadata: { name: string; labels?: Labels } }[]; pods: readonly Pod[]; services: readonly Service[]; others: readonly { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }[] },
): SandboxView {
  return {
    nodes: nodes.map((n) => ({ name: n.name, ip: n.ip, podCIDR: n.podCIDR })),
    namespaces: objects.namespaces.map((n) => ({ name: n.metadata.name, ...(n.metadata.labels ? { labels: n.metadata.labels } : {}) })),
    pods: objects.pods,
    services: objects.services,
    serviceAccounts: objects.others.filter((o) => o.apiVersion === 'v1' && o.kind === 'ServiceAccount').map((o) => ({ namespace: o.metadata.namespace ?? 'default', name: o.metadata.name })),
    manifests: objects.others.filter((o) => !(o.apiVersion === 'v1' && o.kind === 'ServiceAccount')) as Obj[],
  };
}

/** A manifest as applied: without what the API server owns (uid, resourceVersion, status...). */
export function applyConfiguration(o: Obj): Obj {
  const { uid: _u, resourceVersion: _r, generation: _g, creationTimestamp: _c, managedFields: _m, ...meta } = o.metadata;
  void _u; void _r; void _g; void _c; void _m;
  const { status: _s, ...rest } = o;
  void _s;
  return { ...rest, metadata: meta } as Obj;
}

export interface WithStatus { object: Obj; status?: Record<string, unknown> }

export interface DesiredObjects {
  namespaces: Obj[];
  nodes: WithStatus[];
  serviceAccounts: Obj[];
  services: Obj[];
  pods: WithStatus[];
}

const key = (ns: string | undefined, name: string): string => (ns ? `${ns}/${name}` : name);
const nsOf = (o: { metadata: { namespace?: string } }): string => o.metadata.namespace ?? 'default';

export function podIsReady(p: Pod): boolean {
  return p.status?.phase === 'Running' && !!p.status.podIP;
}

function nodeObjects(n: SandboxView['nodes'][number], now: string): WithStatus {
  return {
    object: {
      apiVersion: 'v1', kind: 'Node',
      metadata: { name: n.name, labels: { 'kubernetes.io/hostname': n.name, 'kubernetes.io/os': 'linux', 'node.nodemesh.io/sandbox': 'true' } },
      spec: { podCIDR: n.podCIDR, podCIDRs: [n.podCIDR] },
    },
    status: {
      addresses: [{ type: 'InternalIP', address: n.ip }, { type: 'Hostname', address: n.name }],
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'nodemesh sandbox node is posting ready status', lastHeartbeatTime: now, lastTransitionTime: now }],
    },
  };
}

function podObjects(p: Pod, readySince: string): WithStatus {
  const ready = podIsReady(p);
  const cond = (type: string) => ({ type, status: ready ? 'True' : 'False', lastProbeTime: null, lastTransitionTime: readySince });
  const status: Record<string, unknown> = {
    phase: p.status?.phase ?? 'Pending',
    conditions: [cond('Initialized'), cond('Ready'), cond('ContainersReady'), cond('PodScheduled')].map((c) => (c.type === 'Initialized' || c.type === 'PodScheduled' ? { ...c, status: 'True' } : c)),
  };
  if (p.status?.hostIP) {
    status.hostIP = p.status.hostIP;
    status.hostIPs = [{ ip: p.status.hostIP }];
  }
  if (p.status?.podIP) {
    status.podIP = p.status.podIP;
    status.podIPs = p.status.podIPs ?? [{ ip: p.status.podIP }];
  }
  status.startTime = readySince;
  const { uid: _uid, resourceVersion: _rv, generation: _g, ...meta } = p.metadata;
  void _uid; void _rv; void _g;
  return {
    object: {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { ...meta, namespace: nsOf(p) },
      spec: {
        ...(p.spec.nodeName ? { nodeName: p.spec.nodeName } : {}),
        serviceAccountName: p.spec.serviceAccountName ?? 'default',
        containers: p.spec.containers.map((c) => ({ ...c, image: (c as { image?: string }).image ?? 'nodemesh-sandbox/process' })),
      },
    },
    status,
  };
}

function serviceObject(s: Service): Obj {
  const { uid: _uid, resourceVersion: _rv, generation: _g, ...meta } = s.metadata;
  void _uid; void _rv; void _g;
  return {
    apiVersion: 'v1', kind: 'Service',
    metadata: { ...meta, namespace: nsOf(s) },
    spec: {
      ...(s.spec.selector ? { selector: s.spec.selector } : {}),
      ...(s.spec.clusterIP ? { clusterIP: s.spec.clusterIP, clusterIPs: s.spec.clusterIPs ?? [s.spec.clusterIP] } : {}),
      ports: s.spec.ports.map((p) => ({ ...p, protocol: p.protocol ?? 'TCP' })),
    },
  };
}

/** Everything but EndpointSlices (those need the API's uids of pods and services). */
export function desiredObjects(v: SandboxView, now: string): DesiredObjects {
  const namespaces = new Map<string, Labels | undefined>();
  for (const n of v.namespaces) namespaces.set(n.name, n.labels);
  for (const o of [...v.pods, ...v.services]) if (!namespaces.has(nsOf(o))) namespaces.set(nsOf(o), undefined);
  const sas = new Set<string>();
  for (const ns of namespaces.keys()) sas.add(key(ns, 'default'));
  for (const p of v.pods) sas.add(key(nsOf(p), p.spec.serviceAccountName ?? 'default'));
  for (const sa of v.serviceAccounts ?? []) sas.add(key(sa.namespace, sa.name));
  return {
    namespaces: [...namespaces.entries()].sort().map(([name, labels]) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, ...(labels ? { labels } : {}) } })),
    nodes: [...v.nodes].sort((a, b) => a.name.localeCompare(b.name)).map((n) => nodeObjects(n, now)),
    serviceAccounts: [...sas].sort().map((k) => {
      const [namespace, name] = k.split('/');
      return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace } };
    }),
    services: [...v.services].sort((a, b) => key(nsOf(a), a.metadata.name).localeCompare(key(nsOf(b), b.metadata.name))).map(serviceObject),
    pods: [...v.pods].sort((a, b) => key(nsOf(a), a.metadata.name).localeCompare(key(nsOf(b), b.metadata.name)))
      .map((p) => podObjects(p, v.readySince?.get(key(nsOf(p), p.metadata.name)) ?? now)),
  };
}

/** EndpointSlices as the EndpointSlice controller writes them: one per service and distinct
 * port mapping (named target ports can resolve differently per pod), every selected pod with
 * an IP and not terminal, `ready`/`serving` from the pod's Ready condition. */
export function endpointSlicesFor(v: SandboxView, uids: { pods: ReadonlyMap<string, string>; services: ReadonlyMap<string, string> }): Obj[] {
  const out: Obj[] = [];
  for (const svc of [...v.services].sort((a, b) => key(nsOf(a), a.metadata.name).localeCompare(key(nsOf(b), b.metadata.name)))) {
    if (!svc.spec.selector || Object.keys(svc.spec.selector).length === 0) continue; // the controller leaves selector-less services alone
    const ns = nsOf(svc);
    const selected = v.pods
      .filter((p) => nsOf(p) === ns && p.status?.podIP && p.status.phase !== 'Succeeded' && p.status.phase !== 'Failed')
      .filter((p) => Object.entries(svc.spec.selector!).every(([k, val]) => p.metadata.labels?.[k] === val))
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const groups = new Map<string, { ports: { name?: string; protocol: string; port: number }[]; pods: Pod[] }>();
    for (const p of selected) {
      const ports = svc.spec.ports.map((sp) => ({ sp, port: resolveTargetPort(sp, p) }))
        .filter((x): x is { sp: typeof x.sp; port: number } => x.port !== undefined)
        .map(({ sp, port }) => ({ ...(sp.name ? { name: sp.name } : { name: '' }), protocol: sp.protocol ?? 'TCP', port }));
      const gk = JSON.stringify(ports);
      const g = groups.get(gk) ?? { ports, pods: [] };
      g.pods.push(p);
      groups.set(gk, g);
    }
    if (groups.size === 0) groups.set('[]', { ports: [], pods: [] }); // a Service without endpoints still has its (empty) slice
    let i = 0;
    const svcUid = uids.services.get(key(ns, svc.metadata.name));
    for (const g of groups.values()) {
      out.push({
        apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
        metadata: {
          name: `${svc.metadata.name}-${i++ === 0 ? 'sandbox' : `sandbox-${i - 1}`}`,
          namespace: ns,
          labels: { ...(svc.metadata.labels ?? {}), 'kubernetes.io/service-name': svc.metadata.name, 'endpointslice.kubernetes.io/managed-by': ENDPOINTSLICE_MANAGED_BY },
          ...(svcUid ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: svc.metadata.name, uid: svcUid, controller: true, blockOwnerDeletion: true }] } : {}),
        },
        addressType: 'IPv4',
        endpoints: g.pods.map((p) => {
          const ready = podIsReady(p);
          const uid = uids.pods.get(key(ns, p.metadata.name));
          return {
            addresses: [p.status!.podIP!],
            conditions: { ready, serving: ready, terminating: false },
            targetRef: { kind: 'Pod', namespace: ns, name: p.metadata.name, ...(uid ? { uid } : {}) },
            ...(p.spec.nodeName ? { nodeName: p.spec.nodeName } : {}),
          };
        }),
        ports: g.ports,
      });
    }
  }
  return out;
}

// --- I/O --------------------------------------------------------------------------------------

export interface PublishResult { applied: number; deleted: string[] }

const objectRef = (o: Obj): string => `${o.kind} ${key(o.metadata.namespace, o.metadata.name)}`;

export class ApiServerPublisher {
  private readonly objects: k8s.KubernetesObjectApi;
  private readonly core: k8s.CoreV1Api;
  /** What the last publish applied (kind + key): what a later one deletes when it is gone. */
  private published = new Map<string, Obj>();
  private adopted = false;

  constructor(private readonly kc: k8s.KubeConfig) {
    this.objects = k8s.KubernetesObjectApi.makeApiClient(kc);
    this.core = kc.makeApiClient(k8s.CoreV1Api);
  }

  private fail(o: Obj, e: unknown): never {
    const body = (e as { body?: unknown }).body;
    let reason = (e as Error).message ?? String(e);
    if (typeof body === 'string') {
      try { reason = (JSON.parse(body) as { message?: string }).message ?? reason; } catch { /* not a Status */ }
    }
    throw InstallerErrors.NODEMESH_E_SANDBOX_APISERVER_PUBLISH({ object: objectRef(o), server: this.kc.getCurrentCluster()?.server ?? '?', reason }, { cause: e });
  }

  private async apply(obj: Obj): Promise<Obj> {
    const o = { ...obj, metadata: { ...obj.metadata, labels: { ...(obj.metadata.labels ?? {}), [PUBLISHED_LABEL]: 'true' } } };
    try {
      return (await this.objects.patch(o as k8s.KubernetesObject, undefined, undefined, FIELD_MANAGER, true, k8s.PatchStrategy.ServerSideApply)) as Obj;
    } catch (e) {
      return this.fail(o, e);
    }
  }

  private async applyStatus(o: Obj, status: Record<string, unknown>): Promise<void> {
    const body = { apiVersion: o.apiVersion, kind: o.kind, metadata: { name: o.metadata.name, ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}) }, status };
    const opts = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply);
    try {
      if (o.kind === 'Pod') await this.core.patchNamespacedPodStatus({ name: o.metadata.name, namespace: o.metadata.namespace!, body, fieldManager: FIELD_MANAGER, force: true }, opts);
      else if (o.kind === 'Node') await this.core.patchNodeStatus({ name: o.metadata.name, body, fieldManager: FIELD_MANAGER, force: true }, opts);
    } catch (e) {
      this.fail(o, e);
    }
  }

  /** Waits until a CRD is Established (its kind served), at most `timeoutMs`. */
  private async waitEstablished(crd: Obj, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let live: Obj | undefined;
      try {
        live = (await this.objects.read({ apiVersion: crd.apiVersion, kind: crd.kind, metadata: { name: crd.metadata.name } })) as Obj;
      } catch (e) {
        if ((e as { code?: number }).code !== 404) this.fail(crd, e);
      }
      if ((live?.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === 'Established' && c.status === 'True')) return;
      if (Date.now() > deadline) this.fail(crd, new Error(`not Established after ${timeoutMs / 1000} s`));
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** What an earlier process published (by PUBLISHED_LABEL), so this one deletes it when the
   * sandbox no longer has it. Kinds the API server does not serve are skipped. */
  private async adopt(kinds: readonly [string, string][]): Promise<void> {
    for (const [apiVersion, kind] of kinds) {
      let items: Obj[] = [];
      try {
        items = (await this.objects.list(apiVersion, kind, undefined, undefined, undefined, undefined, undefined, `${PUBLISHED_LABEL}=true`)).items as Obj[];
      } catch (e) {
        // Not served (a CRD not installed): nothing of it to adopt. Anything else is a failure.
        if ((e as { code?: number }).code === 404 || /Unrecognized API version and kind/.test((e as Error).message ?? '')) continue;
        this.fail({ apiVersion, kind, metadata: { name: `(list with ${PUBLISHED_LABEL}=true)` } }, e);
      }
      for (const o of items) {
        const full = { ...o, apiVersion, kind } as Obj;
        this.published.set(objectRef(full), full);
      }
    }
  }

  /** Applies the whole view; deletes what an earlier publish (of this process, or of an earlier
   * one: adopted on the first publish) applied and this one does not. */
  async publish(v: SandboxView, now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')): Promise<PublishResult> {
    if (!this.adopted) {
      const manifestKinds = (v.manifests ?? []).map((m) => [m.apiVersion, m.kind] as [string, string]);
      const unique = new Map([...PUBLISHED_KINDS, ...manifestKinds].map((k) => [k.join('/'), k]));
      await this.adopt([...unique.values()]);
      this.adopted = true;
    }
    const d = desiredObjects(v, now);
    const next = new Map<string, Obj>();
    const remember = (o: Obj) => next.set(objectRef(o), o);
    for (const o of d.namespaces) remember(await this.apply(o));
    for (const n of d.nodes) {
      remember(await this.apply(n.object));
      if (n.status) await this.applyStatus(n.object, n.status);
    }
    const manifests = (v.manifests ?? []).map(applyConfiguration);
    const crds = manifests.filter((o) => o.kind === 'CustomResourceDefinition');
    for (const o of crds) remember(await this.apply(o));
    for (const o of crds) await this.waitEstablished(o);
    for (const o of d.serviceAccounts) remember(await this.apply(o));
    for (const o of manifests.filter((m) => m.kind !== 'CustomResourceDefinition')) remember(await this.apply(o));
    const serviceUids = new Map<string, string>();
    for (const o of d.services) {
      const s = await this.apply(o);
      remember(s);
      serviceUids.set(key(s.metadata.namespace, s.metadata.name), s.metadata.uid);
    }
    const podUids = new Map<string, string>();
    for (const p of d.pods) {
      const live = await this.apply(p.object);
      remember(live);
      podUids.set(key(live.metadata.namespace, live.metadata.name), live.metadata.uid);
      if (p.status) await this.applyStatus(p.object, p.status);
    }
    for (const o of endpointSlicesFor(v, { pods: podUids, services: serviceUids })) remember(await this.apply(o));

    // Gone since the last publish: slices and pods first, namespaces last. A pod goes at once
    // (grace 0), as its kubelet confirms a deletion.
    const order = ['EndpointSlice', 'Pod', 'Service', 'ServiceAccount', 'Node', 'CustomResourceDefinition', 'Namespace'];
    const rank = (kind: string) => (order.includes(kind) ? order.indexOf(kind) : 1); // other manifests go with the pods
    const gone = [...this.published.entries()].filter(([k]) => !next.has(k)).sort((a, b) => rank(a[1].kind) - rank(b[1].kind));
    const deleted: string[] = [];
    for (const [ref, o] of gone) {
      try {
        await this.objects.delete({ apiVersion: o.apiVersion, kind: o.kind, metadata: { name: o.metadata.name, namespace: o.metadata.namespace } }, undefined, undefined, 0);
      } catch (e) {
        if ((e as { code?: number }).code !== 404) this.fail(o, e);
      }
      deleted.push(ref);
    }
    const applied = next.size;
    this.published = next;
    return { applied, deleted };
  }
}
