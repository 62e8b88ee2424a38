// What a waypoint watches on Kubernetes, and so what its ServiceAccount may read
// (installer/manifests/waypoint-rbac.ts renders the rules from this list): Services,
// EndpointSlices and Pods (endpoints, identities, nodes), Namespaces (use-waypoint labels),
// its routes and policies, and Gateways (which waypoint serves what). Not PeerAuthentication:
// mTLS mode is the node daemons' concern.
import type { ResourceKind } from '../daemon/state/resources';

export const WAYPOINT_KINDS: readonly ResourceKind[] = Object.freeze([
  'Namespace', 'Pod', 'Service', 'EndpointSlice', 'AuthorizationPolicy', 'Gateway', 'HTTPRoute', 'GRPCRoute', 'BackendTrafficPolicy',
] as ResourceKind[]);
