// A waypoint asking nodemesh-identity for its own certificate on Kubernetes, as Istio's
// waypoints ask istiod: it presents its projected ServiceAccount token (audience
// nodemesh-identity, bound to its pod). The token is accepted only when the pod it is bound to
// is one the waypoint controller made for a Gateway of class nodemesh-waypoint: the pod still
// exists with the token's uid, runs as the token's ServiceAccount, carries the controller's
// labels (component nodemesh-waypoint, the Gateway's name), its ServiceAccount is the one the
// template names after that Gateway, and the Gateway exists with class nodemesh-waypoint. The
// caller then obtains exactly one identity: ns/<namespace>/sa/<that ServiceAccount>.
//
// Labels are set by whoever creates pods in the namespace; what the check proves is that the
// ServiceAccount is a live waypoint's and the token is that ServiceAccount's. Someone who may
// run pods as the waypoint's ServiceAccount could obtain its certificate anyway (through a node);
// the waypoint's power to vouch for callers is its signing key, kept in a Secret only its
// Deployment mounts, not its certificate.
import { GATEWAY_NAME_LABEL, WAYPOINT_COMPONENT } from '../../installer/manifests/waypoint-objects';
import { WAYPOINT_CLASS } from '../waypoint-controller/kube-object';
const COMPONENT_LABEL = 'app.kubernetes.io/component';

/** What a TokenReview said of a pod-bound ServiceAccount token. */
export interface BoundToken { namespace: string; serviceAccount: string; pod: string; podUid: string | undefined }

/** The fields of the bound pod the check reads (from the API, so each may be missing). */
export interface ApiPod { metadata?: { uid?: string; labels?: Record<string, string>; deletionTimestamp?: string }; spec?: { serviceAccountName?: string; nodeName?: string } }
export interface ApiGateway { metadata?: { uid?: string }; spec?: { gatewayClassName?: string } }

export interface WaypointCaller { namespace: string; serviceAccount: string; gateway: string; pod: string }

export type WaypointDecision = { ok: true; gateway: string } | { ok: false; reason: string };

/** Step one (pure): is the bound pod a waypoint's, and for which Gateway? */
export function checkWaypointPod(t: BoundToken, pod: ApiPod | undefined): WaypointDecision {
  const who = `the token's pod ${t.namespace}/${t.pod}`;
  if (!pod) return { ok: false, reason: `${who} does not exist` };
  if (t.podUid && pod.metadata?.uid !== t.podUid) return { ok: false, reason: `${who} was replaced since the token was issued (uid differs)` };
  if (pod.metadata?.deletionTimestamp) return { ok: false, reason: `${who} is being deleted` };
  if ((pod.spec?.serviceAccountName || 'default') !== t.serviceAccount) return { ok: false, reason: `${who} does not run as service account ${t.serviceAccount}` };
  const labels = pod.metadata?.labels ?? {};
  if (labels[COMPONENT_LABEL] !== WAYPOINT_COMPONENT) return { ok: false, reason: `${who} is not a waypoint pod (label ${COMPONENT_LABEL} is not ${WAYPOINT_COMPONENT})` };
  const gateway = labels[GATEWAY_NAME_LABEL];
  if (!gateway) return { ok: false, reason: `${who} names no Gateway (label ${GATEWAY_NAME_LABEL})` };
  // The template names the ServiceAccount after the Gateway (installer/manifests/waypoint-objects.ts).
  if (gateway !== t.serviceAccount) return { ok: false, reason: `service account ${t.namespace}/${t.serviceAccount} is not the waypoint service account of Gateway ${t.namespace}/${gateway}` };
  return { ok: true, gateway };
}

/** Step two (pure): the Gateway the pod names is a waypoint's. */
export function checkWaypointGateway(namespace: string, name: string, gw: ApiGateway | undefined): WaypointDecision {
  if (!gw) return { ok: false, reason: `Gateway ${namespace}/${name} does not exist` };
  const cls = gw.spec?.gatewayClassName;
  if (cls !== WAYPOINT_CLASS) return { ok: false, reason: `Gateway ${namespace}/${name} is of class ${JSON.stringify(String(cls ?? '')).slice(0, 80)}, not ${WAYPOINT_CLASS}` };
  return { ok: true, gateway: name };
}
