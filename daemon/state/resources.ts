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
  /** Set when deletion was asked; the object stays until its finalizers and kubelet let go. */
  deletionTimestamp?: string;
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion?: string;
  kind: string;
  name: string;
  uid?: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
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
    /** A host-network pod shares the node's namespace and IP: never enrolled, never addressed by IP. */
    hostNetwork?: boolean;
    containers: Container[];
  };
  status?: {
    phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
    podIP?: string;
    podIPs?: { ip: string }[];
    hostIP?: string;
    conditions?: PodCondition[];
  };
}

export interface PodCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
}

/** The label an EndpointSlice names its Service with. */
export const LABEL_SERVICE_NAME = 'kubernetes.io/service-name';
export const LABEL_MANAGED_BY = 'endpointslice.kubernetes.io/managed-by';

export interface EndpointConditions {
  /** nil means ready (API conventions for EndpointConditions). */
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
}

export interface SliceEndpoint {
  addresses: string[];
  conditions?: EndpointConditions;
  nodeName?: string;
  targetRef?: { kind?: string; namespace?: string; name?: string; uid?: string };
}

export interface EndpointPort {
  /** Matches the Service port's name ('' or absent for a single unnamed port). */
  name?: string;
  port?: number;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  appProtocol?: string;
}

export interface EndpointSlice {
  apiVersion: 'discovery.k8s.io/v1';
  kind: 'EndpointSlice';
  metadata: ObjectMeta;
  addressType: 'IPv4' | 'IPv6' | 'FQDN';
  endpoints: SliceEndpoint[];
  ports?: EndpointPort[];
}

// --- gateway.networking.k8s.io, stored for the waypoint ------------------------------------

export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
export const WAYPOINT_GATEWAY_CLASS = 'nodemesh-waypoint';

export interface Gateway {
  apiVersion: string;
  kind: 'Gateway';
  metadata: ObjectMeta;
  spec: { gatewayClassName: string; listeners?: unknown[]; [k: string]: unknown };
}

export interface HTTPRoute {
  apiVersion: string;
  kind: 'HTTPRoute';
  metadata: ObjectMeta;
  spec: { parentRefs?: unknown[]; rules?: unknown[]; [k: string]: unknown };
}

export interface GRPCRoute {
  apiVersion: string;
  kind: 'GRPCRoute';
  metadata: ObjectMeta;
  spec: { parentRefs?: unknown[]; rules?: unknown[]; [k: string]: unknown };
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

export type Resource =
  | Namespace | Pod | Service | EndpointSlice | AuthorizationPolicy | PeerAuthentication | Gateway | HTTPRoute | GRPCRoute | BackendTrafficPolicy;
export type ResourceKind = Resource['kind'];
export const RESOURCE_KINDS: readonly ResourceKind[] = Object.freeze([
  'Namespace', 'Pod', 'Service', 'EndpointSlice', 'AuthorizationPolicy', 'PeerAuthentication', 'Gateway', 'HTTPRoute', 'GRPCRoute',
  'BackendTrafficPolicy',
] as ResourceKind[]);

/** The Pod's Ready condition; undefined when the kubelet has not reported one. */
export function podReadyCondition(pod: Pod): boolean | undefined {
  const c = pod.status?.conditions?.find((x) => x.type === 'Ready');
  return c ? c.status === 'True' : undefined;
}

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

/** Istio's `when`: `key` is `request.headers[<name>]` (L7: enforced by a waypoint; at L4 an
 * ALLOW rule with conditions never matches). A header must match one of `values` and none of
 * `notValues`. */
export interface AuthorizationCondition {
  key: string;
  values?: string[];
  notValues?: string[];
}

export interface AuthorizationRule {
  from?: { source: AuthorizationSource }[];
  to?: { operation: AuthorizationOperation }[];
  when?: AuthorizationCondition[];
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

// --- policy.nodemesh.io/v1alpha1: resilience, read by the waypoints -------------------------

export const POLICY_API_VERSION = 'policy.nodemesh.io/v1alpha1';

/** Circuit breaking, outlier detection and fault injection (installer/crds/
 * backendtrafficpolicies.policy.nodemesh.io.yaml is its schema; waypoint/backend-traffic-policy.ts
 * its meaning). Read whole, as validated. */
export interface BackendTrafficPolicy {
  apiVersion: typeof POLICY_API_VERSION;
  kind: 'BackendTrafficPolicy';
  metadata: ObjectMeta & { creationTimestamp?: string };
  spec: {
    targetRefs: { group?: string; kind: 'Service' | 'HTTPRoute' | 'GRPCRoute'; name: string }[];
    circuitBreaker?: { maxConnections?: number; maxPendingRequests?: number; maxParallelRequests?: number; maxRequestsPerConnection?: number };
    outlierDetection?: {
      consecutive5xxErrors?: number; consecutiveGatewayErrors?: number; interval?: string; baseEjectionTime?: string; maxEjectionPercent?: number;
    };
    faultInjection?: {
      delay?: { fixedDelay: string; percentage?: number };
      abort?: { httpStatus?: number; grpcStatus?: number; percentage?: number };
    };
  };
  status?: unknown;
}
