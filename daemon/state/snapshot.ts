// The state snapshot: an immutable view of the cluster. A source delivers changes (upsert or
// delete of one object); applyChanges returns a new snapshot that shares everything the
// changes did not touch with the previous one (persistent maps), so one event costs what it
// touches: a pod event updates that workload and its IPs, a slice event rebuilds that one
// Service's endpoints, a namespace label change re-derives enrolment of that namespace's
// pods. The data path reads snapshots synchronously; nothing here does I/O.
import {
  ANNOTATION_SANDBOX_CGROUP, ANNOTATION_SANDBOX_NETNS, AuthorizationPolicy, BackendTrafficPolicy, DATAPLANE_AMBIENT, DATAPLANE_NONE, EndpointSlice,
  GRPCRoute, Gateway, HTTPRoute, LABEL_DATAPLANE_MODE, LABEL_SERVICE_NAME, Labels, Namespace, PeerAuthentication, Pod, Resource,
  ResourceKind, Service, ServicePort, podIPs,
} from './resources';
import { PersistentMap } from './persistent-map';
import { WorkloadOwner, workloadOwner } from './workload-owner';
import { deriveEndpointSlices } from './endpoint-slices';

export type { WorkloadOwner } from './workload-owner';

export interface Workload {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly node: string | undefined;
  readonly serviceAccount: string;
  readonly labels: Labels;
  readonly ips: readonly string[];
  readonly phase: string;
  /** Whether the mesh captures this pod (namespace or pod label; the pod label wins). */
  readonly enrolled: boolean;
  /** Why (for status output): which label decided, or that the pod shares the host's network. */
  readonly enrolledBy: 'pod-label' | 'namespace-label' | 'default' | 'host-network';
  /** The controller that owns the pod (Deployment through its ReplicaSet, StatefulSet, ...):
   * stable across rollouts, so metric labels use it rather than the pod name. */
  readonly owner: WorkloadOwner | undefined;
  /** Path of the pod's network namespace: from the sandbox's annotation, or found on the node
   * (redirection/pod-locator.ts) for this node's pods on a real cluster. */
  readonly netnsPath: string | undefined;
  readonly cgroupPath: string | undefined;
  /** The pod's annotations (port exclusions are read from them at enrolment). */
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface Endpoint {
  readonly workloadUid: string;
  readonly ip: string;
  /** Target port per service port number. */
  readonly ports: ReadonlyMap<number, number>;
}

export interface ServiceEntry {
  readonly namespace: string;
  readonly name: string;
  readonly vips: readonly string[];
  readonly ports: readonly ServicePort[];
  /** Ready endpoints only (EndpointSlice `ready` condition; terminating ones excluded). */
  readonly endpoints: readonly Endpoint[];
  /** The Service's labels (`nodemesh.io/use-waypoint`, daemon/state/waypoints.ts). */
  readonly labels?: Labels;
}

export interface Snapshot {
  /** Increments on every change; lets connections tell which state decided them. */
  readonly version: number;
  readonly namespaces: ReadonlyMap<string, Namespace>;
  readonly workloads: ReadonlyMap<string, Workload>;
  /** Pending/Running pod-network workloads by pod IP. */
  readonly workloadsByIP: ReadonlyMap<string, Workload>;
  readonly services: ReadonlyMap<string, ServiceEntry>;
  readonly servicesByVIP: ReadonlyMap<string, ServiceEntry>;
  readonly authorizationPolicies: readonly AuthorizationPolicy[];
  readonly peerAuthentications: readonly PeerAuthentication[];
  /** Waypoint Gateways (class nodemesh-waypoint) and routes, by `ns/name`, for the waypoint. */
  readonly gateways: ReadonlyMap<string, Gateway>;
  readonly httpRoutes: ReadonlyMap<string, HTTPRoute>;
  readonly grpcRoutes: ReadonlyMap<string, GRPCRoute>;
  /** Resilience policies (circuit breaking, outlier detection, faults), by `ns/name`, for the waypoint. */
  readonly backendTrafficPolicies: ReadonlyMap<string, BackendTrafficPolicy>;
}

/** Where this node found a pod's sandbox (pod-locator.ts); sandbox pods carry it as annotations. */
export interface PodRuntime { readonly netnsPath: string; readonly cgroupPath: string | undefined }

export type SnapshotChange =
  | { readonly op: 'upsert'; readonly resource: Resource }
  | { readonly op: 'delete'; readonly kind: ResourceKind; readonly namespace?: string; readonly name: string }
  | { readonly op: 'pod-runtime'; readonly uid: string; readonly runtime: PodRuntime | undefined };

type PMap<V> = PersistentMap<V>;
const empty = <V>(): PMap<V> => PersistentMap.empty<V>();

/** What incremental updates need beside the public view; kept out of the snapshot object. */
interface Index {
  readonly pods: PMap<Pod>;
  readonly podUidByName: PMap<string>;
  readonly podsByNamespace: PMap<PMap<true>>;
  /** Enrolment reads this node's pods on every change: an index keeps that O(local pods). */
  readonly podsByNode: PMap<PMap<true>>;
  /** Pending/Running pod-network pods per IP; the first one (Running before Pending) is addressed. */
  readonly ipOwners: PMap<readonly string[]>;
  readonly runtime: PMap<PodRuntime>;
  readonly serviceObjects: PMap<Service>;
  readonly slicesByService: PMap<PMap<EndpointSlice>>;
  readonly sliceService: PMap<string>;
  readonly policies: PMap<AuthorizationPolicy>;
  readonly peerAuths: PMap<PeerAuthentication>;
}

interface Public {
  namespaces: PMap<Namespace>;
  workloads: PMap<Workload>;
  workloadsByIP: PMap<Workload>;
  services: PMap<ServiceEntry>;
  servicesByVIP: PMap<ServiceEntry>;
  authorizationPolicies: readonly AuthorizationPolicy[];
  peerAuthentications: readonly PeerAuthentication[];
  gateways: PMap<Gateway>;
  httpRoutes: PMap<HTTPRoute>;
  grpcRoutes: PMap<GRPCRoute>;
  backendTrafficPolicies: PMap<BackendTrafficPolicy>;
}

const INDEX = new WeakMap<Snapshot, Index>();

const EMPTY_INDEX: Index = Object.freeze({
  pods: empty<Pod>(), podUidByName: empty<string>(), podsByNamespace: empty<PMap<true>>(), podsByNode: empty<PMap<true>>(),
  ipOwners: empty<readonly string[]>(), runtime: empty<PodRuntime>(), serviceObjects: empty<Service>(),
  slicesByService: empty<PMap<EndpointSlice>>(), sliceService: empty<string>(), policies: empty<AuthorizationPolicy>(),
  peerAuths: empty<PeerAuthentication>(),
});

function freeze(version: number, p: Public, index: Index): Snapshot {
  const s: Snapshot = Object.freeze({ version, ...p });
  INDEX.set(s, index);
  return s;
}

export const EMPTY_SNAPSHOT: Snapshot = freeze(0, {
  namespaces: empty(), workloads: empty(), workloadsByIP: empty(), services: empty(), servicesByVIP: empty(),
  authorizationPolicies: Object.freeze([]), peerAuthentications: Object.freeze([]), gateways: empty(), httpRoutes: empty(), grpcRoutes: empty(),
  backendTrafficPolicies: empty(),
}, EMPTY_INDEX);

const nsOf = (o: { metadata: { namespace?: string } }): string => o.metadata.namespace ?? 'default';
const keyOf = (namespace: string | undefined, name: string): string => `${namespace ?? 'default'}/${name}`;

function podUid(p: Pod): string {
  return p.metadata.uid ?? `${nsOf(p)}/${p.metadata.name}`;
}

function enrolmentFromLabels(podLabels: Labels | undefined, ns: Namespace | undefined): Pick<Workload, 'enrolled' | 'enrolledBy'> {
  const podMode = podLabels?.[LABEL_DATAPLANE_MODE];
  if (podMode === DATAPLANE_NONE) return { enrolled: false, enrolledBy: 'pod-label' };
  if (podMode === DATAPLANE_AMBIENT) return { enrolled: true, enrolledBy: 'pod-label' };
  if (ns?.metadata.labels?.[LABEL_DATAPLANE_MODE] === DATAPLANE_AMBIENT) return { enrolled: true, enrolledBy: 'namespace-label' };
  return { enrolled: false, enrolledBy: 'default' };
}

/** Pod label first (`none` opts a pod out of an enrolled namespace), then namespace label. A
 * host-network pod is never enrolled: its "namespace" is the node's. */
export function enrolmentOf(pod: Pod, ns: Namespace | undefined): Pick<Workload, 'enrolled' | 'enrolledBy'> {
  if (pod.spec.hostNetwork === true) return { enrolled: false, enrolledBy: 'host-network' };
  return enrolmentFromLabels(pod.metadata.labels, ns);
}

const LIVE_PHASES = new Set(['Pending', 'Running']);

function toWorkload(p: Pod, ns: Namespace | undefined, rt: PodRuntime | undefined): Workload {
  const annotations = p.metadata.annotations;
  const sandboxNetns = annotations?.[ANNOTATION_SANDBOX_NETNS];
  return Object.freeze({
    uid: podUid(p),
    namespace: nsOf(p),
    name: p.metadata.name,
    node: p.spec.nodeName,
    serviceAccount: p.spec.serviceAccountName ?? 'default',
    labels: Object.freeze({ ...(p.metadata.labels ?? {}) }),
    ips: Object.freeze(podIPs(p)),
    phase: p.status?.phase ?? 'Pending',
    ...enrolmentOf(p, ns),
    owner: workloadOwner(p),
    netnsPath: sandboxNetns ?? rt?.netnsPath,
    cgroupPath: sandboxNetns ? annotations?.[ANNOTATION_SANDBOX_CGROUP] : rt?.cgroupPath,
    annotations: meshAnnotations(annotations),
  });
}

/** Only the annotations the mesh reads (nodemesh.io/*, sandbox.nodemesh.io/*, Istio's port
 * exclusions): a pod's others can be large (last-applied-configuration) and every workload of
 * the cluster is held in memory. */
export function meshAnnotations(a: Labels | undefined): Labels | undefined {
  if (!a) return undefined;
  const kept = Object.entries(a).filter(([k]) => k.includes('nodemesh.io/') || k.startsWith('traffic.sidecar.istio.io/'));
  return kept.length > 0 ? Object.freeze(Object.fromEntries(kept)) : undefined;
}

/** Mutable while one batch of changes is applied; frozen into a Snapshot at the end. */
class Draft {
  p: Public;
  i: { -readonly [K in keyof Index]: Index[K] };
  private policiesChanged = false;
  private peerAuthsChanged = false;

  constructor(prev: Snapshot) {
    this.p = {
      namespaces: prev.namespaces as PMap<Namespace>, workloads: prev.workloads as PMap<Workload>,
      workloadsByIP: prev.workloadsByIP as PMap<Workload>, services: prev.services as PMap<ServiceEntry>,
      servicesByVIP: prev.servicesByVIP as PMap<ServiceEntry>, authorizationPolicies: prev.authorizationPolicies,
      peerAuthentications: prev.peerAuthentications, gateways: prev.gateways as PMap<Gateway>,
      httpRoutes: prev.httpRoutes as PMap<HTTPRoute>, grpcRoutes: prev.grpcRoutes as PMap<GRPCRoute>,
      backendTrafficPolicies: prev.backendTrafficPolicies as PMap<BackendTrafficPolicy>,
    };
    this.i = { ...(INDEX.get(prev) ?? EMPTY_INDEX) };
  }

  apply(c: SnapshotChange): void {
    if (c.op === 'pod-runtime') return this.setRuntime(c.uid, c.runtime);
    if (c.op === 'upsert') {
      const r = c.resource;
      switch (r.kind) {
        case 'Namespace': return this.setNamespace(r.metadata.name, r);
        case 'Pod': return this.upsertPod(r);
        case 'Service': return this.setService(keyOf(r.metadata.namespace, r.metadata.name), r);
        case 'EndpointSlice': return this.upsertSlice(r);
        case 'AuthorizationPolicy': this.i.policies = this.i.policies.set(keyOf(r.metadata.namespace, r.metadata.name), r); this.policiesChanged = true; return;
        case 'PeerAuthentication': this.i.peerAuths = this.i.peerAuths.set(keyOf(r.metadata.namespace, r.metadata.name), r); this.peerAuthsChanged = true; return;
        case 'Gateway': this.p.gateways = this.p.gateways.set(keyOf(r.metadata.namespace, r.metadata.name), r); return;
        case 'HTTPRoute': this.p.httpRoutes = this.p.httpRoutes.set(keyOf(r.metadata.namespace, r.metadata.name), r); return;
        case 'GRPCRoute': this.p.grpcRoutes = this.p.grpcRoutes.set(keyOf(r.metadata.namespace, r.metadata.name), r); return;
        case 'BackendTrafficPolicy': this.p.backendTrafficPolicies = this.p.backendTrafficPolicies.set(keyOf(r.metadata.namespace, r.metadata.name), r); return;
      }
    }
    const key = keyOf(c.namespace, c.name);
    switch (c.kind) {
      case 'Namespace': return this.setNamespace(c.name, undefined);
      case 'Pod': { const uid = this.i.podUidByName.get(key); if (uid) this.removePod(uid); return; }
      case 'Service': return this.setService(key, undefined);
      case 'EndpointSlice': return this.removeSlice(key);
      case 'AuthorizationPolicy': this.i.policies = this.i.policies.delete(key); this.policiesChanged = true; return;
      case 'PeerAuthentication': this.i.peerAuths = this.i.peerAuths.delete(key); this.peerAuthsChanged = true; return;
      case 'Gateway': this.p.gateways = this.p.gateways.delete(key); return;
      case 'HTTPRoute': this.p.httpRoutes = this.p.httpRoutes.delete(key); return;
      case 'GRPCRoute': this.p.grpcRoutes = this.p.grpcRoutes.delete(key); return;
      case 'BackendTrafficPolicy': this.p.backendTrafficPolicies = this.p.backendTrafficPolicies.delete(key); return;
    }
  }

  finish(version: number): Snapshot {
    // Policies are few and evaluated as a list; a sorted array keeps evaluation order stable.
    if (this.policiesChanged) this.p.authorizationPolicies = Object.freeze([...this.i.policies.entries()].sort(byKey).map(([, v]) => v));
    if (this.peerAuthsChanged) this.p.peerAuthentications = Object.freeze([...this.i.peerAuths.entries()].sort(byKey).map(([, v]) => v));
    return freeze(version, this.p, Object.freeze({ ...this.i }));
  }

  // --- namespaces and pods -------------------------------------------------------------

  private setNamespace(name: string, ns: Namespace | undefined): void {
    const before = this.p.namespaces.get(name);
    this.p.namespaces = this.p.namespaces.put(name, ns);
    if (before?.metadata.labels?.[LABEL_DATAPLANE_MODE] === ns?.metadata.labels?.[LABEL_DATAPLANE_MODE]) return;
    // Enrolment of this namespace's pods follows its label: re-derive only those.
    for (const uid of this.i.podsByNamespace.get(name)?.keys() ?? []) this.refreshWorkload(uid);
  }

  private upsertPod(pod: Pod): void {
    const uid = podUid(pod);
    const key = keyOf(pod.metadata.namespace, pod.metadata.name);
    const sameName = this.i.podUidByName.get(key);
    // A pod recreated under the same name (StatefulSet) whose delete we missed.
    if (sameName !== undefined && sameName !== uid) this.removePod(sameName);
    const before = this.i.pods.get(uid);
    if (before && nsOf(before) !== nsOf(pod)) this.removePod(uid);
    this.i.pods = this.i.pods.set(uid, pod);
    this.i.podUidByName = this.i.podUidByName.set(key, uid);
    this.i.podsByNamespace = addMember(this.i.podsByNamespace, nsOf(pod), uid);
    if (before?.spec.nodeName !== pod.spec.nodeName) {
      if (before?.spec.nodeName) this.i.podsByNode = removeMember(this.i.podsByNode, before.spec.nodeName, uid);
      if (pod.spec.nodeName) this.i.podsByNode = addMember(this.i.podsByNode, pod.spec.nodeName, uid);
    }
    this.refreshWorkload(uid);
  }

  private removePod(uid: string): void {
    const pod = this.i.pods.get(uid);
    if (!pod) return;
    const old = this.p.workloads.get(uid);
    const ns = nsOf(pod);
    this.i.pods = this.i.pods.delete(uid);
    this.i.podUidByName = this.i.podUidByName.delete(keyOf(pod.metadata.namespace, pod.metadata.name));
    this.i.podsByNamespace = removeMember(this.i.podsByNamespace, ns, uid);
    if (pod.spec.nodeName) this.i.podsByNode = removeMember(this.i.podsByNode, pod.spec.nodeName, uid);
    this.i.runtime = this.i.runtime.delete(uid);
    this.p.workloads = this.p.workloads.delete(uid);
    if (old) this.reindexIPs(uid, old.ips, []);
  }

  private setRuntime(uid: string, rt: PodRuntime | undefined): void {
    this.i.runtime = this.i.runtime.put(uid, rt);
    if (this.i.pods.has(uid)) this.refreshWorkload(uid);
  }

  /** Rebuilds one workload from its pod and re-points the IPs it had and has. */
  private refreshWorkload(uid: string, old: Workload | undefined = this.p.workloads.get(uid)): void {
    const pod = this.i.pods.get(uid);
    if (!pod) return;
    const w = toWorkload(pod, this.p.namespaces.get(nsOf(pod)), this.i.runtime.get(uid));
    this.p.workloads = this.p.workloads.set(uid, w);
    const addressable = LIVE_PHASES.has(w.phase) && pod.spec.hostNetwork !== true;
    this.reindexIPs(uid, old?.ips ?? [], addressable ? w.ips : []);
  }

  private reindexIPs(uid: string, before: readonly string[], after: readonly string[]): void {
    for (const ip of new Set([...before, ...after])) {
      const owners = (this.i.ipOwners.get(ip) ?? []).filter((u) => u !== uid);
      if (after.includes(ip)) owners.push(uid);
      // Running before Pending, then by uid: the same answer whatever the event order.
      owners.sort((a, b) => rank(this.p.workloads.get(a)) - rank(this.p.workloads.get(b)) || a.localeCompare(b));
      this.i.ipOwners = this.i.ipOwners.put(ip, owners.length > 0 ? Object.freeze(owners) : undefined);
      const first = owners.length > 0 ? this.p.workloads.get(owners[0]) : undefined;
      this.p.workloadsByIP = this.p.workloadsByIP.put(ip, first);
    }
  }

  // --- services and endpoints ----------------------------------------------------------

  private setService(key: string, svc: Service | undefined): void {
    this.i.serviceObjects = this.i.serviceObjects.put(key, svc);
    this.refreshService(key);
  }

  private upsertSlice(slice: EndpointSlice): void {
    const sliceKey = keyOf(slice.metadata.namespace, slice.metadata.name);
    const svcName = slice.metadata.labels?.[LABEL_SERVICE_NAME];
    const svcKey = svcName ? keyOf(slice.metadata.namespace, svcName) : undefined;
    const before = this.i.sliceService.get(sliceKey);
    if (before !== undefined && before !== svcKey) this.removeSlice(sliceKey);
    if (svcKey === undefined) return; // a slice of no Service (custom controllers): not ours to route
    this.i.sliceService = this.i.sliceService.set(sliceKey, svcKey);
    this.i.slicesByService = this.i.slicesByService.set(svcKey, (this.i.slicesByService.get(svcKey) ?? empty<EndpointSlice>()).set(slice.metadata.name, slice));
    this.refreshService(svcKey);
  }

  private removeSlice(sliceKey: string): void {
    const svcKey = this.i.sliceService.get(sliceKey);
    if (svcKey === undefined) return;
    this.i.sliceService = this.i.sliceService.delete(sliceKey);
    const name = sliceKey.slice(sliceKey.indexOf('/') + 1);
    const rest = this.i.slicesByService.get(svcKey)?.delete(name);
    this.i.slicesByService = rest && rest.size > 0 ? this.i.slicesByService.set(svcKey, rest) : this.i.slicesByService.delete(svcKey);
    this.refreshService(svcKey);
  }

  /** Rebuilds one Service's entry from its object and its slices (cost: its endpoints). */
  private refreshService(key: string): void {
    const before = this.p.services.get(key);
    for (const v of before?.vips ?? []) if (this.p.servicesByVIP.get(v) === before) this.p.servicesByVIP = this.p.servicesByVIP.delete(v);
    const svc = this.i.serviceObjects.get(key);
    if (!svc) { this.p.services = this.p.services.delete(key); return; }
    const e = serviceEntry(svc, this.i.slicesByService.get(key), this.i.podUidByName);
    this.p.services = this.p.services.set(key, e);
    for (const v of e.vips) this.p.servicesByVIP = this.p.servicesByVIP.set(v, e);
  }
}

function addMember(index: PMap<PMap<true>>, key: string, uid: string): PMap<PMap<true>> {
  return index.set(key, (index.get(key) ?? empty<true>()).set(uid, true));
}

function removeMember(index: PMap<PMap<true>>, key: string, uid: string): PMap<PMap<true>> {
  const rest = index.get(key)?.delete(uid);
  return rest && rest.size > 0 ? index.set(key, rest) : index.delete(key);
}

function rank(w: Workload | undefined): number {
  return w?.phase === 'Running' ? 0 : 1;
}

function byKey<V>(a: [string, V], b: [string, V]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/**
 * Endpoints as kube-proxy reads EndpointSlices: an endpoint serves when its `ready` condition
 * is true or unset, never while terminating; slice ports are matched to Service ports by
 * name (and protocol). The same address in two slices (the controller moving it) counts once.
 */
export function serviceEntry(svc: Service, slices: ReadonlyMap<string, EndpointSlice> | undefined, podUidByName?: ReadonlyMap<string, string>): ServiceEntry {
  const namespace = nsOf(svc);
  const byIP = new Map<string, { workloadUid: string; ip: string; ports: Map<number, number> }>();
  const sorted = [...(slices?.values() ?? [])].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  for (const slice of sorted) {
    if (slice.addressType !== 'IPv4' && slice.addressType !== 'IPv6') continue;
    const ports = new Map<number, number>();
    for (const sp of svc.spec.ports) {
      const match = slice.ports?.find((p) => (p.name ?? '') === (sp.name ?? '') && (p.protocol ?? 'TCP') === (sp.protocol ?? 'TCP'));
      if (match?.port !== undefined) ports.set(sp.port, match.port);
    }
    for (const ep of slice.endpoints ?? []) {
      if (ep.conditions?.ready === false || ep.conditions?.terminating === true) continue;
      const ref = ep.targetRef;
      const uid = ref?.uid ?? (ref?.kind === 'Pod' && ref.name ? podUidByName?.get(keyOf(ref.namespace ?? namespace, ref.name)) : undefined);
      for (const ip of ep.addresses ?? []) {
        const seen = byIP.get(ip);
        if (seen) { for (const [k, v] of ports) if (!seen.ports.has(k)) seen.ports.set(k, v); continue; }
        byIP.set(ip, { workloadUid: uid ?? `ip:${ip}`, ip, ports: new Map(ports) });
      }
    }
  }
  const vips = svc.spec.clusterIPs ?? (svc.spec.clusterIP && svc.spec.clusterIP !== 'None' ? [svc.spec.clusterIP] : []);
  return Object.freeze({
    namespace,
    name: svc.metadata.name,
    vips: Object.freeze(vips.filter((v) => v !== 'None')),
    ports: Object.freeze([...svc.spec.ports]),
    endpoints: Object.freeze([...byIP.values()].map((e) => Object.freeze(e))),
    labels: svc.metadata.labels ? Object.freeze({ ...svc.metadata.labels }) : undefined,
  });
}

/** The snapshot after these changes, sharing all that they did not touch with prev. */
export function applyChanges(prev: Snapshot, changes: readonly SnapshotChange[], version: number): Snapshot {
  const d = new Draft(prev);
  for (const c of changes) d.apply(c);
  return d.finish(version);
}

/** A snapshot from a full list of resources (tests, tools). Services with a selector and no
 * EndpointSlice in the list get the slices the EndpointSlice controller would make. */
export function buildSnapshot(resources: readonly Resource[], version: number): Snapshot {
  const pods = resources.filter((r): r is Pod => r.kind === 'Pod');
  const sliced = new Set(resources.filter((r): r is EndpointSlice => r.kind === 'EndpointSlice')
    .map((s) => keyOf(s.metadata.namespace, s.metadata.labels?.[LABEL_SERVICE_NAME] ?? '')));
  const derived = resources.filter((r): r is Service => r.kind === 'Service' && !sliced.has(keyOf(r.metadata.namespace, r.metadata.name)))
    .flatMap((s) => deriveEndpointSlices(s, pods));
  return applyChanges(EMPTY_SNAPSHOT, [...resources, ...derived].map((resource) => ({ op: 'upsert', resource })), version);
}

/** Workloads scheduled on one node, in a stable order. */
export function workloadsOnNode(s: Snapshot, node: string): Workload[] {
  const uids = INDEX.get(s)?.podsByNode.get(node);
  const out: Workload[] = [];
  for (const uid of uids?.keys() ?? []) { const w = s.workloads.get(uid); if (w) out.push(w); }
  return out.sort((a, b) => a.uid.localeCompare(b.uid));
}
