// ServiceAccounts and least-privilege RBAC. The node daemon only reads; the identity service
// reviews tokens, lists pods (node binding) and reads/writes its own two objects by name.
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { commonLabels } from './labels';
import { CA_ROOT_CONFIGMAP_NAME, CA_SECRET_NAME, IDENTITY_NAME, NAMESPACE, NODE_NAME, type ManifestValues } from './values';

const READ = ['get', 'list', 'watch'];

export function serviceAccounts(v: ManifestValues): ServiceAccount[] {
  return [NODE_NAME, IDENTITY_NAME].map((name) => new ServiceAccount({
    metadata: { name, namespace: NAMESPACE, labels: commonLabels(v, name) },
  }));
}

export function nodeRbac(v: ManifestValues): [ClusterRole, ClusterRoleBinding] {
  const labels = commonLabels(v, NODE_NAME);
  return [
    new ClusterRole({
      metadata: { name: NODE_NAME, labels },
      rules: [
        // Enrolment (namespace and pod labels), pod addresses and node placement, Service VIPs.
        { apiGroups: [''], resources: ['namespaces', 'pods', 'services'], verbs: READ },
        // Endpoints follow the Ready condition of EndpointSlices.
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: READ },
        { apiGroups: ['security.nodemesh.io'], resources: ['authorizationpolicies', 'peerauthentications'], verbs: READ },
        // Waypoints: which Gateway serves a namespace and its routes.
        { apiGroups: ['gateway.networking.k8s.io'], resources: ['gateways', 'httproutes', 'grpcroutes'], verbs: READ },
        // Resilience (circuit breaking, outlier detection, faults) the waypoints enforce.
        { apiGroups: ['policy.nodemesh.io'], resources: ['backendtrafficpolicies'], verbs: READ },
      ],
    }),
    new ClusterRoleBinding({
      metadata: { name: NODE_NAME, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: NODE_NAME },
      subjects: [{ kind: 'ServiceAccount', name: NODE_NAME, namespace: NAMESPACE }],
    }),
  ];
}

export function identityRbac(v: ManifestValues): [ClusterRole, ClusterRoleBinding, Role, RoleBinding] {
  const labels = commonLabels(v, IDENTITY_NAME);
  return [
    new ClusterRole({
      metadata: { name: IDENTITY_NAME, labels },
      rules: [
        // Authenticating node daemons by their projected ServiceAccount tokens.
        { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
        // Node binding: the pods on the caller's node (list with a spec.nodeName field
        // selector), and the pod a token is bound to when the review names no node.
        { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] },
        // A waypoint's token: the Gateway its pod is for must be of class nodemesh-waypoint.
        { apiGroups: ['gateway.networking.k8s.io'], resources: ['gateways'], verbs: ['get'] },
      ],
    }),
    new ClusterRoleBinding({
      metadata: { name: IDENTITY_NAME, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: IDENTITY_NAME },
      subjects: [{ kind: 'ServiceAccount', name: IDENTITY_NAME, namespace: NAMESPACE }],
    }),
    new Role({
      metadata: { name: IDENTITY_NAME, namespace: NAMESPACE, labels },
      rules: [
        // Only its own CA Secret and the root ConfigMap, by name: read them, and fill them in
        // once when the install left them empty (a Helm-only install has no CA yet).
        { apiGroups: [''], resources: ['secrets'], resourceNames: [CA_SECRET_NAME], verbs: ['get', 'update', 'patch'] },
        { apiGroups: [''], resources: ['configmaps'], resourceNames: [CA_ROOT_CONFIGMAP_NAME], verbs: ['get', 'update', 'patch'] },
      ],
    }),
    new RoleBinding({
      metadata: { name: IDENTITY_NAME, namespace: NAMESPACE, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: IDENTITY_NAME },
      subjects: [{ kind: 'ServiceAccount', name: IDENTITY_NAME, namespace: NAMESPACE }],
    }),
  ];
}
