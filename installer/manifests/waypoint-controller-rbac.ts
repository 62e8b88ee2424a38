// RBAC for the waypoint controller that runs inside nodemesh-identity (its ServiceAccount):
// read Gateways, GatewayClasses, routes, Services and Namespaces (and list what it made, to find
// what a deleted Gateway left behind); write only status on the
// Gateway API objects; create, apply and delete the waypoint Deployment, Service and
// ServiceAccount, the copy of the CA root (a ConfigMap) and the RBAC binding of each waypoint
// (server-side apply is a patch; an apply that creates also needs create); bind only the
// waypoints' read-only ClusterRole (the controller does not hold what it grants); no get/update
// of those; Secrets only written (each waypoint's caller-statement key, derived, so never read
// back), never read; no pods. The leader-election Lease is one object, by name,
// in the install namespace (create cannot be limited by name).
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { commonLabels } from './labels';
import { IDENTITY_NAME, NAMESPACE, type ManifestValues } from './values';
import { WAYPOINT_ROLE_NAME } from './waypoint-rbac';

export const WAYPOINT_CONTROLLER_NAME = 'nodemesh-waypoint-controller';
const WATCH = ['list', 'watch'];

export function waypointControllerRbac(v: ManifestValues): [ClusterRole, ClusterRoleBinding, Role, RoleBinding] {
  const labels = commonLabels(v, WAYPOINT_CONTROLLER_NAME);
  const subjects = [{ kind: 'ServiceAccount', name: IDENTITY_NAME, namespace: NAMESPACE }];
  return [
    new ClusterRole({
      metadata: { name: WAYPOINT_CONTROLLER_NAME, labels },
      rules: [
        { apiGroups: ['gateway.networking.k8s.io'], resources: ['gateways', 'gatewayclasses', 'httproutes', 'grpcroutes'], verbs: ['get', ...WATCH] },
        // Conditions and addresses, written as conditional merge patches.
        { apiGroups: ['gateway.networking.k8s.io'], resources: ['gateways/status', 'gatewayclasses/status', 'httproutes/status', 'grpcroutes/status'], verbs: ['patch'] },
        // Which Services and namespaces use a waypoint; a waypoint Service's cluster IP.
        { apiGroups: [''], resources: ['namespaces'], verbs: WATCH },
        { apiGroups: [''], resources: ['services'], verbs: [...WATCH, 'create', 'patch', 'delete'] },
        { apiGroups: [''], resources: ['serviceaccounts'], verbs: [...WATCH, 'create', 'patch', 'delete'] },
        { apiGroups: ['apps'], resources: ['deployments'], verbs: [...WATCH, 'create', 'patch', 'delete'] },
        { apiGroups: [''], resources: ['configmaps'], verbs: [...WATCH, 'create', 'patch', 'delete'] },
        // Each waypoint's caller-statement key: written and deleted, never read (no get/list/watch).
        { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'patch', 'delete'] },
        { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterrolebindings'], verbs: [...WATCH, 'create', 'patch', 'delete'] },
        { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterroles'], resourceNames: [WAYPOINT_ROLE_NAME], verbs: ['bind'] },
      ],
    }),
    new ClusterRoleBinding({
      metadata: { name: WAYPOINT_CONTROLLER_NAME, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: WAYPOINT_CONTROLLER_NAME },
      subjects,
    }),
    new Role({
      metadata: { name: WAYPOINT_CONTROLLER_NAME, namespace: NAMESPACE, labels },
      rules: [
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [WAYPOINT_CONTROLLER_NAME], verbs: ['get', 'update'] },
      ],
    }),
    new RoleBinding({
      metadata: { name: WAYPOINT_CONTROLLER_NAME, namespace: NAMESPACE, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: WAYPOINT_CONTROLLER_NAME },
      subjects,
    }),
  ];
}
