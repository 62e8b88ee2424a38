// Route status (Gateway API conditions), pure: one entry per Service parent with `Accepted`
// and `ResolvedRefs`, as the controller writes it back in Kubernetes and `local status`
// shows it in the sandbox. Only Accepted routes are routed.
import type { ConversionProblem } from './route-conversion';
import { ROUTE_CONTROLLER_NAME, Route, RouteParent, ServiceKey } from './route-model';

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: 'Accepted' | 'ResolvedRefs';
  status: ConditionStatus;
  reason: string;
  message: string;
  observedGeneration: number;
  lastTransitionTime: string;
}

export interface RouteParentStatus {
  parentRef: { group: ''; kind: 'Service'; name: string; namespace: string; port?: number };
  controllerName: string;
  conditions: Condition[];
}

export interface StatusInputs {
  serviceExists: (s: ServiceKey) => boolean;
  /** The waypoint that serves this Service, if any (`nodemesh.io/use-waypoint`). */
  waypointOf: (s: ServiceKey) => string | undefined;
  /** RFC 3339; used where a condition changes status. */
  now: string;
  /** The status written before, so an unchanged condition keeps its lastTransitionTime. */
  previous?: readonly RouteParentStatus[];
}

function condition(type: Condition['type'], ok: boolean, reason: string, message: string, route: Route, parent: RouteParent, inputs: StatusInputs): Condition {
  const status: ConditionStatus = ok ? 'True' : 'False';
  const before = inputs.previous
    ?.find((p) => p.parentRef.namespace === parent.namespace && p.parentRef.name === parent.name && p.parentRef.port === parent.port)
    ?.conditions.find((c) => c.type === type);
  const lastTransitionTime = before && before.status === status ? before.lastTransitionTime : inputs.now;
  return { type, status, reason, message, observedGeneration: route.generation, lastTransitionTime };
}

export function acceptedCondition(route: Route, parent: RouteParent, problems: readonly ConversionProblem[], inputs: StatusInputs): Condition {
  const c = (ok: boolean, reason: string, message: string) => condition('Accepted', ok, reason, message, route, parent, inputs);
  if (problems.length > 0) {
    const p = problems[0];
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
    return c(false, 'UnsupportedValue', `${p.field}: ${p.message}${more}`);
  }
  if (parent.namespace !== route.namespace) {
    return c(false, 'UnsupportedValue', `parent Service ${parent.namespace}/${parent.name} is in another namespace; consumer routes are not supported`);
  }
  if (!inputs.serviceExists(parent)) return c(false, 'NoMatchingParent', `Service ${parent.namespace}/${parent.name} does not exist`);
  if (!inputs.waypointOf(parent)) {
    return c(false, 'NoMatchingParent', `Service ${parent.namespace}/${parent.name} has no waypoint; label it or its namespace nodemesh.io/use-waypoint=<gateway>`);
  }
  return c(true, 'Accepted', `Route is served by waypoint ${inputs.waypointOf(parent)}`);
}

export function resolvedRefsCondition(route: Route, parent: RouteParent, inputs: StatusInputs): Condition {
  const c = (ok: boolean, reason: string, message: string) => condition('ResolvedRefs', ok, reason, message, route, parent, inputs);
  for (const rule of route.rules) {
    const bad = rule.invalidBackends[0];
    if (bad) return c(false, bad.reason, `spec.rules[${rule.index}]: ${bad.message}`);
  }
  for (const rule of route.rules) {
    const refs = [...rule.backends, ...rule.filters.flatMap((f) => (f.type === 'RequestMirror' ? [f.backend] : []))];
    const missing = refs.find((b) => !inputs.serviceExists(b));
    if (missing) return c(false, 'BackendNotFound', `spec.rules[${rule.index}]: Service ${missing.namespace}/${missing.name} does not exist`);
  }
  return c(true, 'ResolvedRefs', 'All references resolved');
}

/** The status of every Service parent of the route. */
export function routeStatus(route: Route, problems: readonly ConversionProblem[], inputs: StatusInputs): RouteParentStatus[] {
  return route.parents.map((parent) => ({
    parentRef: { group: '', kind: 'Service', name: parent.name, namespace: parent.namespace, ...(parent.port !== undefined ? { port: parent.port } : {}) },
    controllerName: ROUTE_CONTROLLER_NAME,
    conditions: [acceptedCondition(route, parent, problems, inputs), resolvedRefsCondition(route, parent, inputs)],
  }));
}

/** Whether the route may take traffic for this parent. */
export function isAccepted(status: readonly RouteParentStatus[], parent: ServiceKey): boolean {
  return status.some((s) => s.parentRef.namespace === parent.namespace && s.parentRef.name === parent.name &&
    s.conditions.some((c) => c.type === 'Accepted' && c.status === 'True'));
}
