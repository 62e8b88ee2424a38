// RBAC for the waypoints' ServiceAccounts: one ClusterRole in the install set, read-only, for
// exactly the kinds a waypoint watches (waypoint/waypoint-kinds.ts), and, per waypoint, a
// ClusterRoleBinding the waypoint controller makes for its ServiceAccount (the waypoint reads
// Services, endpoints and pods of every namespace its routes reach, like a node daemon).
// The one write: BackendTrafficPolicy status (server-side apply on the status subresource);
// route status is the controller's. No Secrets, no ConfigMaps.
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import type { ResourceKind } from '../../daemon/state/resources';
import { WAYPOINT_KINDS } from '../../waypoint/waypoint-kinds';
import { commonLabels } from './labels';
import type { ManifestValues } from './values';

export const WAYPOINT_ROLE_NAME = 'nodemesh-waypoint';
/** The namespace of the Gateway a cluster-scoped waypoint object was made for (it cannot have a
 * namespaced owner reference, so the controller finds it by label). */
export const GATEWAY_NAMESPACE_LABEL = 'nodemesh.io/gateway-namespace';

/** API group and plural of each kind a waypoint reads. */
const RESOURCES: Record<ResourceKind, [string, string]> = {
  Namespace: ['', 'namespaces'], Pod: ['', 'pods'], Service: ['', 'services'], EndpointSlice: ['discovery.k8s.io', 'endpointslices'],
  AuthorizationPolicy: ['security.nodemesh.io', 'authorizationpolicies'], PeerAuthentication: ['security.nodemesh.io', 'peerauthentications'],
  Gateway: ['gateway.networking.k8s.io', 'gateways'], HTTPRoute: ['gateway.networking.k8s.io', 'httproutes'],
  GRPCRoute: ['gateway.networking.k8s.io', 'grpcroutes'], BackendTrafficPolicy: ['policy.nodemesh.io', 'backendtrafficpolicies'],
};

export function waypointClusterRole(v: ManifestValues): ClusterRole {
  const byGroup = new Map<string, string[]>();
  for (const k of WAYPOINT_KINDS) {
    const [group, plural] = RESOURCES[k];
    byGroup.set(group, [...(byGroup.get(group) ?? []), plural]);
  }
  return new ClusterRole({
    metadata: { name: WAYPOINT_ROLE_NAME, labels: commonLabels(v, WAYPOINT_ROLE_NAME) },
    rules: [
      ...[...byGroup].map(([group, resources]) => ({ apiGroups: [group], resources, verbs: ['list', 'watch'] })),
      { apiGroups: ['policy.nodemesh.io'], resources: ['backendtrafficpolicies/status'], verbs: ['patch'] },
    ],
  });
}

/** The binding's name: one per waypoint, cluster-wide, so namespace and name both. */
export const waypointBindingName = (gw: { namespace: string; name: string }): string => `${WAYPOINT_ROLE_NAME}:${gw.namespace}:${gw.name}`;

export function waypointClusterRoleBinding(labels: Record<string, string>, gw: { namespace: string; name: string }, serviceAccount: string): ClusterRoleBinding {
  return new ClusterRoleBinding({
    metadata: { name: waypointBindingName(gw), labels: { ...labels, [GATEWAY_NAMESPACE_LABEL]: gw.namespace } },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: WAYPOINT_ROLE_NAME },
    subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace: gw.namespace }],
  });
}
