// Kubernetes-shaped resources as nodemesh reads them. Both state sources (Kubernetes
// informers and the sandbox's object directory) produce exactly these shapes, so everything
// downstream (snapshot, policy, routing) is written once. Only the fields nodemesh uses are
// typed; everything else is carried through untouched.

export const LABEL_DATAPLANE_MODE = 'nodemesh.io/dataplane-mode';
export const LABEL_USE_WAYPOINT = 'nodemesh.io/use-waypoint';
export const DATAPLANE_AMBIENT = 'ambient';
export const DATAPLANE_NONE = 'none';

/** Sandbox runtime facts a real cluster keeps in the container runtime, carried as annotations. */
export const ANNOTATION_SANDBOX_NETNS = 'sandbox.nodemesh.io/netns';
export const ANNOTATION_SANDBOX_CGROUP = 'sandbox.nodemesh.io/cgroup';

export type Labels = Readonly<Record<string, string>>;

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  labels?: Labels;
  annotations?: Labels;
  resourceVersion?: string;
  generation?: number;
}

export interface Namespace {
  apiVersion: 'v1';
  kind: 'Namespace';
  metadata: ObjectMeta;
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
}

export interface EnvVar {
  name: string;
  value?: string;
}

export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: ContainerPort[];
}

export interface Pod {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: ObjectMeta;
  spec: {
    nodeName?: string;
    serviceAccountName?: string;
    containers: Container[];
  };
  status?: {
    phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
    podIP?: string;
    podIPs?: { ip: string }[];
    hostIP?: string;
  };
}

export interface ServicePort {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  appProtocol?: string;
}

export interface Service {
  apiVersion: 'v1';
  kind: 'Service';
  metadata: ObjectMeta;
  spec: {
    selector?: Labels;
    clusterIP?: string;
    clusterIPs?: string[];
    ports: ServicePort[];
  };
}

export type Resource = Namespace | Pod | Service | AuthorizationPolicy | PeerAuthentication;

/** Kubernetes equality-based selector semantics: every key must be present with that value. */
export function labelsMatch(selector: Labels | undefined, labels: Labels | undefined): boolean {
  if (!selector) return false;
  const keys = Object.keys(selector);
  if (keys.length === 0) return false;
  for (const k of keys) {
    if (!labels || labels[k] !== selector[k]) return false;
  }
  return true;
}

/** `ns/name` for namespaced objects, `name` for cluster-scoped ones. */
export function objectKey(o: { metadata: ObjectMeta }): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;
}

/** The pod's IPs, from status.podIPs when set, else status.podIP. */
export function podIPs(pod: Pod): string[] {
  const ips = pod.status?.podIPs?.map((p) => p.ip) ?? [];
  if (ips.length === 0 && pod.status?.podIP) ips.push(pod.status.podIP);
  return ips;
}

/** Resolves a Service port's targetPort against a pod's named container ports. */
export function resolveTargetPort(sp: ServicePort, pod: Pod): number | undefined {
  const t = sp.targetPort ?? sp.port;
  if (typeof t === 'number') return t;
  for (const c of pod.spec.containers) {
    for (const p of c.ports ?? []) if (p.name === t) return p.containerPort;
  }
  return undefined;
}

// --- security.nodemesh.io/v1alpha1, modelled on Istio's security API ----------------------

export const SECURITY_API_VERSION = 'security.nodemesh.io/v1alpha1';
/** Policies in this namespace without a selector apply mesh-wide (Istio's root namespace). */
export const ROOT_NAMESPACE = 'nodemesh-system';

export interface WorkloadSelector { matchLabels?: Labels }
export interface PolicyTargetRef { group?: string; kind: string; name: string }

export interface AuthorizationSource {
  principals?: string[];
  notPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
}

export interface AuthorizationOperation {
  ports?: string[];
  notPorts?: string[];
  /** L7 fields: enforced by a waypoint; at L4 an ALLOW rule using them never matches (fail closed). */
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
  hosts?: string[];
  notHosts?: string[];
}

export interface AuthorizationRule {
  from?: { source: AuthorizationSource }[];
  to?: { operation: AuthorizationOperation }[];
}

export interface AuthorizationPolicy {
  apiVersion: typeof SECURITY_API_VERSION;
  kind: 'AuthorizationPolicy';
  metadata: ObjectMeta;
  spec: {
    selector?: WorkloadSelector;
    targetRefs?: PolicyTargetRef[];
    action?: 'ALLOW' | 'DENY';
    rules?: AuthorizationRule[];
  };
}

export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE' | 'UNSET';

export interface PeerAuthentication {
  apiVersion: typeof SECURITY_API_VERSION;
  kind: 'PeerAuthentication';
  metadata: ObjectMeta;
  spec: {
    selector?: WorkloadSelector;
    mtls?: { mode?: MtlsMode };
    portLevelMtls?: Record<string, { mode?: MtlsMode }>;
  };
}
