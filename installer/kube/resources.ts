// Where each kind nodemesh writes lives in the REST API. A fixed table (these are the only
// kinds install creates) plus the CRDs, whose plural and scope the CRD object itself states.
import type { KubeObject } from '../manifests/render';

export interface ResourceType { group: string; version: string; plural: string; namespaced: boolean }

const BUILTIN: Record<string, Omit<ResourceType, 'group' | 'version'>> = {
  Namespace: { plural: 'namespaces', namespaced: false },
  ServiceAccount: { plural: 'serviceaccounts', namespaced: true },
  Secret: { plural: 'secrets', namespaced: true },
  ConfigMap: { plural: 'configmaps', namespaced: true },
  Service: { plural: 'services', namespaced: true },
  Pod: { plural: 'pods', namespaced: true },
  Event: { plural: 'events', namespaced: true },
  Deployment: { plural: 'deployments', namespaced: true },
  DaemonSet: { plural: 'daemonsets', namespaced: true },
  PodDisruptionBudget: { plural: 'poddisruptionbudgets', namespaced: true },
  ClusterRole: { plural: 'clusterroles', namespaced: false },
  ClusterRoleBinding: { plural: 'clusterrolebindings', namespaced: false },
  Role: { plural: 'roles', namespaced: true },
  RoleBinding: { plural: 'rolebindings', namespaced: true },
  CustomResourceDefinition: { plural: 'customresourcedefinitions', namespaced: false },
};

export function resourceType(o: Pick<KubeObject, 'apiVersion' | 'kind'>, crds: KubeObject[] = []): ResourceType {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  const builtin = BUILTIN[o.kind];
  if (builtin) return { group, version, ...builtin };
  for (const crd of crds) {
    const spec = crd.spec as { group: string; names: { kind: string; plural: string }; scope: string };
    if (spec.group === group && spec.names.kind === o.kind) return { group, version, plural: spec.names.plural, namespaced: spec.scope === 'Namespaced' };
  }
  throw new Error(`nodemesh does not know the REST path of ${o.apiVersion} ${o.kind}`);
}

/** The collection path (namespace: the object's, for namespaced kinds). */
export function collectionPath(t: ResourceType, namespace?: string): string {
  const base = t.group ? `/apis/${t.group}/${t.version}` : `/api/${t.version}`;
  return t.namespaced && namespace ? `${base}/namespaces/${encodeURIComponent(namespace)}/${t.plural}` : `${base}/${t.plural}`;
}

export function objectPath(t: ResourceType, name: string, namespace?: string): string {
  return `${collectionPath(t, namespace)}/${encodeURIComponent(name)}`;
}

export function pathOf(o: KubeObject, crds: KubeObject[] = []): string {
  return objectPath(resourceType(o, crds), o.metadata.name, o.metadata.namespace);
}
