// The state snapshot: an immutable view of the cluster built from resources on every watch
// event. The data path reads it synchronously; nothing here does I/O.
import {
  ANNOTATION_SANDBOX_CGROUP, ANNOTATION_SANDBOX_NETNS, AuthorizationPolicy, PeerAuthentication, DATAPLANE_AMBIENT, DATAPLANE_NONE, LABEL_DATAPLANE_MODE,
  Labels, Namespace, Pod, Resource, Service, ServicePort, labelsMatch, podIPs, resolveTargetPort,
} from './resources';

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
  /** Why (for status output): which label decided. */
  readonly enrolledBy: 'pod-label' | 'namespace-label' | 'default';
  /** Path of the pod's network namespace, where the runtime tells us (sandbox annotation). */
  readonly netnsPath: string | undefined;
  readonly cgroupPath: string | undefined;
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
  readonly endpoints: readonly Endpoint[];
  /** The Service's labels (`nodemesh.io/use-waypoint`, daemon/state/waypoints.ts). */
  readonly labels?: Labels;
}

export interface Snapshot {
  /** Increments on every rebuild; lets connections tell which state decided them. */
  readonly version: number;
  readonly namespaces: ReadonlyMap<string, Namespace>;
  readonly workloads: ReadonlyMap<string, Workload>;
  /** Running/pending workloads by pod IP. */
  readonly workloadsByIP: ReadonlyMap<string, Workload>;
  readonly services: ReadonlyMap<string, ServiceEntry>;
  readonly servicesByVIP: ReadonlyMap<string, ServiceEntry>;
  readonly authorizationPolicies: readonly AuthorizationPolicy[];
  readonly peerAuthentications: readonly PeerAuthentication[];
}

export const EMPTY_SNAPSHOT: Snapshot = Object.freeze({
  version: 0,
  namespaces: new Map(),
  workloads: new Map(),
  workloadsByIP: new Map(),
  services: new Map(),
  servicesByVIP: new Map(),
  authorizationPolicies: [],
  peerAuthentications: [],
});

function podUid(p: Pod): string {
  return p.metadata.uid ?? `${p.metadata.namespace ?? 'default'}/${p.metadata.name}`;
}

/** Pod label first (`none` opts a pod out of an enrolled namespace), then namespace label. */
export function enrolmentOf(pod: Pod, ns: Namespace | undefined): Pick<Workload, 'enrolled' | 'enrolledBy'> {
  const podMode = pod.metadata.labels?.[LABEL_DATAPLANE_MODE];
  if (podMode === DATAPLANE_NONE) return { enrolled: false, enrolledBy: 'pod-label' };
  if (podMode === DATAPLANE_AMBIENT) return { enrolled: true, enrolledBy: 'pod-label' };
  if (ns?.metadata.labels?.[LABEL_DATAPLANE_MODE] === DATAPLANE_AMBIENT) return { enrolled: true, enrolledBy: 'namespace-label' };
  return { enrolled: false, enrolledBy: 'default' };
}

const LIVE_PHASES = new Set(['Pending', 'Running']);

export function buildSnapshot(resources: readonly Resource[], version: number): Snapshot {
  const namespaces = new Map<string, Namespace>();
  const pods: Pod[] = [];
  const services: Service[] = [];
  const authorizationPolicies: AuthorizationPolicy[] = [];
  const peerAuthentications: PeerAuthentication[] = [];
  for (const r of resources) {
    if (r.kind === 'Namespace') namespaces.set(r.metadata.name, r);
    else if (r.kind === 'Pod') pods.push(r);
    else if (r.kind === 'Service') services.push(r);
    else if (r.kind === 'AuthorizationPolicy') authorizationPolicies.push(r);
    else if (r.kind === 'PeerAuthentication') peerAuthentications.push(r);
  }

  const workloads = new Map<string, Workload>();
  const workloadsByIP = new Map<string, Workload>();
  for (const p of pods) {
    const namespace = p.metadata.namespace ?? 'default';
    const phase = p.status?.phase ?? 'Pending';
    const w: Workload = Object.freeze({
      uid: podUid(p),
      namespace,
      name: p.metadata.name,
      node: p.spec.nodeName,
      serviceAccount: p.spec.serviceAccountName ?? 'default',
      labels: Object.freeze({ ...(p.metadata.labels ?? {}) }),
      ips: Object.freeze(podIPs(p)),
      phase,
      ...enrolmentOf(p, namespaces.get(namespace)),
      netnsPath: p.metadata.annotations?.[ANNOTATION_SANDBOX_NETNS],
      cgroupPath: p.metadata.annotations?.[ANNOTATION_SANDBOX_CGROUP],
    });
    workloads.set(w.uid, w);
    if (LIVE_PHASES.has(phase)) for (const ip of w.ips) workloadsByIP.set(ip, w);
  }

  const serviceMap = new Map<string, ServiceEntry>();
  const servicesByVIP = new Map<string, ServiceEntry>();
  for (const s of services) {
    const namespace = s.metadata.namespace ?? 'default';
    const endpoints: Endpoint[] = [];
    if (s.spec.selector) {
      for (const p of pods) {
        if ((p.metadata.namespace ?? 'default') !== namespace) continue;
        if (p.status?.phase !== 'Running') continue;
        if (!labelsMatch(s.spec.selector, p.metadata.labels)) continue;
        const ports = new Map<number, number>();
        for (const sp of s.spec.ports) {
          const t = resolveTargetPort(sp, p);
          if (t !== undefined) ports.set(sp.port, t);
        }
        for (const ip of podIPs(p)) endpoints.push(Object.freeze({ workloadUid: podUid(p), ip, ports }));
      }
    }
    const vips = s.spec.clusterIPs ?? (s.spec.clusterIP && s.spec.clusterIP !== 'None' ? [s.spec.clusterIP] : []);
    const e: ServiceEntry = Object.freeze({
      namespace,
      name: s.metadata.name,
      vips: Object.freeze([...vips]),
      ports: Object.freeze([...s.spec.ports]),
      endpoints: Object.freeze(endpoints),
      labels: Object.freeze({ ...(s.metadata.labels ?? {}) }),
    });
    serviceMap.set(`${namespace}/${s.metadata.name}`, e);
    for (const v of vips) servicesByVIP.set(v, e);
  }

  return Object.freeze({
    version, namespaces, workloads, workloadsByIP, services: serviceMap, servicesByVIP,
    authorizationPolicies: Object.freeze(authorizationPolicies), peerAuthentications: Object.freeze(peerAuthentications),
  });
}

/** Workloads scheduled on one node, in a stable order. */
export function workloadsOnNode(s: Snapshot, node: string): Workload[] {
  return [...s.workloads.values()].filter((w) => w.node === node).sort((a, b) => a.uid.localeCompare(b.uid));
}
