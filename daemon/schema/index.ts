// One schema per resource, used everywhere: `nodemesh local apply`, the node daemon (every
// watched object) and, for our CRDs, a real API server validate with the same schemas.
// Custom resources through their CRD in installer/crds (./crd-validator.ts); core and apps
// kinds through kubernetes-models, Gateway API kinds through @kubernetes-models/gateway-api
// (./model-validator.ts). Validators are compiled once per kind and cached.
import type { DetailedIssue } from './ajv-errors';
import { crdKinds } from './crd-validator';
import { modelFor, validateWithModel } from './model-validator';

export interface SchemaIssue { readonly path: string; readonly message: string } // path as the API server prints it, e.g. "spec.rules[0].from[0].source.principal"

export type { DetailedIssue } from './ajv-errors';

/** issues: [] = valid. schemaKnown false: no schema for this apiVersion/kind (not an error by itself). */
export function validateObject(obj: unknown): { schemaKnown: boolean; issues: SchemaIssue[] } {
  const r = validateObjectDetailed(obj);
  return { schemaKnown: r.schemaKnown, issues: r.issues.map(({ path, message }) => ({ path, message })) };
}

/** As validateObject, with each issue's path also as segments (for line numbers). */
export function validateObjectDetailed(obj: unknown): { schemaKnown: boolean; issues: DetailedIssue[] } {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) {
    return { schemaKnown: false, issues: [{ path: '', segments: [], message: 'Invalid value: an object must be a map with apiVersion, kind and metadata' }] };
  }
  const o = obj as Record<string, unknown>;
  if (typeof o.apiVersion !== 'string' || typeof o.kind !== 'string') return { schemaKnown: false, issues: [] };
  const crd = crdKinds().get(`${o.apiVersion}/${o.kind}`);
  if (crd) return { schemaKnown: true, issues: crd.validate(o) };
  const model = modelFor(o.apiVersion, o.kind);
  if (model) return { schemaKnown: true, issues: validateWithModel(model, o) };
  return { schemaKnown: false, issues: [] };
}

const CLUSTER_SCOPED = new Set([
  'v1/Namespace', 'v1/Node', 'v1/PersistentVolume', 'v1/ComponentStatus',
  'rbac.authorization.k8s.io/v1/ClusterRole', 'rbac.authorization.k8s.io/v1/ClusterRoleBinding',
  'storage.k8s.io/v1/StorageClass', 'storage.k8s.io/v1/CSIDriver', 'storage.k8s.io/v1/CSINode', 'storage.k8s.io/v1/VolumeAttachment',
  'apiextensions.k8s.io/v1/CustomResourceDefinition', 'apiregistration.k8s.io/v1/APIService',
  'scheduling.k8s.io/v1/PriorityClass', 'node.k8s.io/v1/RuntimeClass', 'networking.k8s.io/v1/IngressClass',
  'admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration', 'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration',
  'certificates.k8s.io/v1/CertificateSigningRequest', 'flowcontrol.apiserver.k8s.io/v1/FlowSchema',
  'flowcontrol.apiserver.k8s.io/v1/PriorityLevelConfiguration',
  'gateway.networking.k8s.io/v1/GatewayClass', 'gateway.networking.k8s.io/v1beta1/GatewayClass',
]);

/** Whether objects of this kind live in a namespace (CRDs say so in their scope). */
export function isNamespaced(apiVersion: string, kind: string): boolean {
  const crd = crdKinds().get(`${apiVersion}/${kind}`);
  if (crd) return crd.namespaced;
  return !CLUSTER_SCOPED.has(`${apiVersion}/${kind}`);
}
