// Every object of an install, in apply order, from one set of values. The CLI (`manifest
// render`, `install`, `upgrade`) and the Helm chart (helm-chart.ts) both come from here.
import { stringify } from 'yaml';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { commonLabels } from './labels';
import { loadCrds } from './crd-objects';
import { serviceAccounts, nodeRbac, identityRbac } from './rbac';
import { waypointControllerRbac } from './waypoint-controller-rbac';
import { waypointClusterRole } from './waypoint-rbac';
import { caRootConfigMap, caSecret } from './ca-objects';
import { identityDeployment, identityPdb, identityService } from './identity-objects';
import { nodeDaemonSet } from './node-daemonset';
import { NAMESPACE, ENROL_LABEL, type ManifestValues } from './values';

/** A plain Kubernetes object, as sent to the API. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
}

interface Model { toJSON(): unknown; validate(): void }

export function namespaceObject(v: ManifestValues): Namespace {
  return new Namespace({
    metadata: {
      name: NAMESPACE,
      labels: {
        ...commonLabels(v, 'nodemesh'),
        // The node daemon needs hostPID, hostPath and capabilities: the privileged profile.
        'pod-security.kubernetes.io/enforce': 'privileged',
        // The mesh's own pods are never captured.
        [ENROL_LABEL]: 'none',
      },
    },
  });
}

/** Cluster-wide definitions first (CRDs, the namespace), then what runs in it. */
export function installModels(v: ManifestValues, opts: { crdDir?: string } = {}): Model[] {
  return [
    ...loadCrds(opts.crdDir),
    namespaceObject(v),
    ...serviceAccounts(v),
    ...nodeRbac(v),
    ...identityRbac(v),
    ...waypointControllerRbac(v),
    waypointClusterRole(v),
    caSecret(v),
    caRootConfigMap(v),
    identityService(v),
    identityDeployment(v),
    identityPdb(v),
    nodeDaemonSet(v),
  ];
}

export function toPlain(models: Model[]): KubeObject[] {
  // JSON round trip: drops undefined members, so the objects compare equal to parsed YAML.
  return models.map((m) => JSON.parse(JSON.stringify(m.toJSON())) as KubeObject);
}

export function installObjects(v: ManifestValues, opts: { crdDir?: string } = {}): KubeObject[] {
  return toPlain(installModels(v, opts));
}

export function isCrd(o: KubeObject): boolean {
  return o.kind === 'CustomResourceDefinition';
}

export function objectRef(o: KubeObject): string {
  return `${o.kind}/${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;
}

/** YAML documents separated by `---`, as kubectl prints them. */
export function toYaml(objects: KubeObject[]): string {
  return objects.map((o) => `---\n${stringify(o, { lineWidth: 0 })}`).join('');
}

/** A v1 List, as `kubectl get -o json` prints several objects. */
export function toJson(objects: KubeObject[]): string {
  return `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 2)}\n`;
}
