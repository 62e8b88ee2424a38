// What a Gateway of class nodemesh-waypoint should become: the installer's waypoint template
// (installer/manifests/waypoint-objects.ts) rendered for it, owned by it. Pure.
import { waypointObjects, GATEWAY_NAME_LABEL, WAYPOINT_COMPONENT, type WaypointMaterial } from '../../installer/manifests/waypoint-objects';
import { GATEWAY_NAMESPACE_LABEL } from '../../installer/manifests/waypoint-rbac';
import { toPlain } from '../../installer/manifests/render';
import type { ManifestValues } from '../../installer/manifests/values';
import { WAYPOINT_CLASS, type KubeObject } from './kube-object';

export type GatewayVerdict =
  | { kind: 'waypoint' }
  | { kind: 'other-class'; className: string }
  | { kind: 'malformed'; reason: string };

export function classifyGateway(gw: KubeObject): GatewayVerdict {
  const cls = gw.spec?.gatewayClassName;
  if (typeof cls !== 'string' || cls === '') return { kind: 'malformed', reason: 'spec.gatewayClassName missing' };
  if (cls !== WAYPOINT_CLASS) return { kind: 'other-class', className: cls };
  if (!gw.metadata.namespace) return { kind: 'malformed', reason: 'metadata.namespace missing' };
  if (!gw.metadata.uid) return { kind: 'malformed', reason: 'metadata.uid missing' };
  return { kind: 'waypoint' };
}

/** ServiceAccount, CA root copy, Deployment, Service and ClusterRoleBinding for the Gateway,
 * as plain JSON ready to apply. */
export function desiredWaypointObjects(values: ManifestValues, gw: KubeObject, material?: WaypointMaterial): KubeObject[] {
  return toPlain(waypointObjects(values, { name: gw.metadata.name, namespace: gw.metadata.namespace ?? '', uid: gw.metadata.uid }, material)) as KubeObject[];
}

/** The Gateway (namespace/name) an object was made for, if the controller made it. */
export function owningGateway(o: KubeObject): string | undefined {
  const labels = o.metadata.labels ?? {};
  if (labels['app.kubernetes.io/component'] !== WAYPOINT_COMPONENT || !labels[GATEWAY_NAME_LABEL]) return undefined;
  // Cluster-scoped (the RBAC binding): no namespaced owner possible; the labels name the Gateway.
  if (!o.metadata.namespace) return labels[GATEWAY_NAMESPACE_LABEL] ? `${labels[GATEWAY_NAMESPACE_LABEL]}/${labels[GATEWAY_NAME_LABEL]}` : undefined;
  const owner = (o.metadata.ownerReferences ?? []).find((r) => r.kind === 'Gateway' && r.controller === true);
  if (!owner) return undefined;
  return `${o.metadata.namespace ?? ''}/${owner.name}`;
}

/** The label selector that finds what the controller made. */
export const WAYPOINT_OBJECT_SELECTOR = `app.kubernetes.io/component=${WAYPOINT_COMPONENT},${GATEWAY_NAME_LABEL}`;
