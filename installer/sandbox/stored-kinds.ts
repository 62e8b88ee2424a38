// What the sandbox does with each kind it stores (beyond Namespace, Pod, Service and the
// policies, which it runs): Deployments and ReplicaSets become pods (./workloads.ts);
// ServiceAccounts, ConfigMaps, Secrets and the Gateway API kinds are kept for what reads them
// (identities, the waypoint); any other kind with a schema is stored and not acted on, and
// `local apply` says so in one line, as a cluster without that controller would keep it.

export type StoredKindRole = 'workload' | 'kept' | 'not-acted-on';

const WORKLOADS = new Set(['apps/v1/Deployment', 'apps/v1/ReplicaSet']);
const KEPT = new Set(['v1/ServiceAccount', 'v1/ConfigMap', 'v1/Secret']);
const GATEWAY_GROUP = 'gateway.networking.k8s.io/';

export function storedKindRole(o: { apiVersion: string; kind: string }): StoredKindRole {
  const k = `${o.apiVersion}/${o.kind}`;
  if (WORKLOADS.has(k)) return 'workload';
  if (KEPT.has(k) || o.apiVersion.startsWith(GATEWAY_GROUP)) return 'kept';
  return 'not-acted-on';
}

/** kubectl's resource label: `deployment.apps/web`, `configmap/settings`, `httproute.gateway.networking.k8s.io/r`. */
export function resourceLabel(o: { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }): string {
  const slash = o.apiVersion.lastIndexOf('/');
  const group = slash > 0 ? o.apiVersion.slice(0, slash) : '';
  return `${o.kind.toLowerCase()}${group ? `.${group}` : ''}/${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;
}
