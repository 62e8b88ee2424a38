// status.parents of an HTTPRoute or GRPCRoute whose parentRefs name Services (GAMMA), as the
// waypoint programs them, pure. Accepted: the Service exists in the route's namespace and has a
// waypoint (nodemesh.io/use-waypoint on the Service, else on its namespace) that is a Gateway of
// class nodemesh-waypoint; else False/NoMatchingParent saying which part is missing.
// ResolvedRefs: every backendRef (and mirror target) is an existing Service of the route's
// namespace with a port. The reasons and messages follow waypoint/route-status.ts (the
// sandbox's writer) so both places say the same thing; parsing problems of matches and filters
// (regexes, ...) are the waypoint's and not repeated here. Entries of other controllers are kept.
import { condition, type Condition } from './conditions';
import { CONTROLLER_NAME, USE_WAYPOINT_LABEL, WAYPOINT_CLASS, type KubeObject } from './kube-object';

export interface RouteLookups {
  service(namespace: string, name: string): KubeObject | undefined;
  namespace(name: string): KubeObject | undefined;
  gateway(namespace: string, name: string): KubeObject | undefined;
}

export interface ParentStatus {
  parentRef: Record<string, unknown>;
  controllerName: string;
  conditions: Condition[];
}

interface ServiceParent { ref: Record<string, unknown>; namespace: string; name: string }

export type RouteParentsResult =
  | { kind: 'none' }
  | { kind: 'malformed'; reason: string }
  | { kind: 'parents'; parents: ParentStatus[] };

function serviceParents(route: KubeObject): ServiceParent[] | string {
  const refs = route.spec?.parentRefs;
  if (refs === undefined) return [];
  if (!Array.isArray(refs)) return 'spec.parentRefs is not a list';
  const out: ServiceParent[] = [];
  for (const [i, r] of refs.entries()) {
    if (typeof r !== 'object' || r === null || typeof r.name !== 'string') return `spec.parentRefs[${i}].name missing`;
    if ((r.group ?? 'gateway.networking.k8s.io') !== '' || r.kind !== 'Service') continue;
    out.push({ ref: r, namespace: typeof r.namespace === 'string' ? r.namespace : route.metadata.namespace ?? '', name: r.name });
  }
  return out;
}

/** The waypoint Gateway's name for a Service, from its label or its namespace's; 'none' opts out. */
export function waypointName(svc: KubeObject, ns: KubeObject | undefined): string | undefined {
  const name = svc.metadata.labels?.[USE_WAYPOINT_LABEL] ?? ns?.metadata.labels?.[USE_WAYPOINT_LABEL];
  return name && name !== 'none' ? name : undefined;
}

function accepted(route: KubeObject, p: ServiceParent, at: RouteLookups): [boolean, string, string] {
  const svcName = `${p.namespace}/${p.name}`;
  if (p.namespace !== route.metadata.namespace) return [false, 'UnsupportedValue', `parent Service ${svcName} is in another namespace; consumer routes are not supported`];
  const svc = at.service(p.namespace, p.name);
  if (!svc) return [false, 'NoMatchingParent', `Service ${svcName} does not exist`];
  const wp = waypointName(svc, at.namespace(p.namespace));
  if (!wp) return [false, 'NoMatchingParent', `Service ${svcName} has no waypoint; label it or its namespace ${USE_WAYPOINT_LABEL}=<gateway>`];
  const gw = at.gateway(p.namespace, wp);
  if (!gw || gw.spec?.gatewayClassName !== WAYPOINT_CLASS) {
    return [false, 'NoMatchingParent', `Service ${svcName} names waypoint ${wp}, but there is no Gateway ${p.namespace}/${wp} of class ${WAYPOINT_CLASS}`];
  }
  return [true, 'Accepted', `Route is served by waypoint ${wp}`];
}

function backendRefs(route: KubeObject): { field: string; ref: any }[] {
  const out: { field: string; ref: any }[] = [];
  const rules = Array.isArray(route.spec?.rules) ? route.spec.rules : [];
  rules.forEach((rule: any, i: number) => {
    (Array.isArray(rule?.backendRefs) ? rule.backendRefs : []).forEach((ref: any) => out.push({ field: `spec.rules[${i}]`, ref }));
    (Array.isArray(rule?.filters) ? rule.filters : []).forEach((f: any) => {
      if (f?.type === 'RequestMirror' && f.requestMirror?.backendRef) out.push({ field: `spec.rules[${i}]`, ref: f.requestMirror.backendRef });
    });
  });
  return out;
}

function resolvedRefs(route: KubeObject, at: RouteLookups): [boolean, string, string] {
  const ns = route.metadata.namespace ?? '';
  const refs = backendRefs(route);
  for (const { field, ref } of refs) {
    const group = ref?.group ?? '';
    const kind = ref?.kind ?? 'Service';
    if (group !== '' || kind !== 'Service') return [false, 'InvalidKind', `${field}: backend ${group}/${kind} ${String(ref?.name)} is not a core Service`];
    const refNs = ref.namespace ?? ns;
    if (refNs !== ns) return [false, 'RefNotPermitted', `${field}: backend Service ${refNs}/${String(ref.name)} is in another namespace; ReferenceGrant is not supported`];
    if (typeof ref.port !== 'number') return [false, 'UnsupportedValue', `${field}: backend Service ${String(ref.name)} needs a port`];
  }
  for (const { field, ref } of refs) {
    if (!at.service(ns, ref.name)) return [false, 'BackendNotFound', `${field}: Service ${ns}/${String(ref.name)} does not exist`];
  }
  return [true, 'ResolvedRefs', 'All references resolved'];
}

/** The route's status.parents with this controller's entries recomputed. */
export function routeParentStatuses(route: KubeObject, at: RouteLookups, now: string): RouteParentsResult {
  const parents = serviceParents(route);
  if (typeof parents === 'string') return { kind: 'malformed', reason: parents };
  if (parents.length === 0) return { kind: 'none' };
  const before: ParentStatus[] = Array.isArray(route.status?.parents) ? route.status.parents : [];
  const others = before.filter((s) => s?.controllerName !== CONTROLLER_NAME);
  const gen = route.metadata.generation;
  const refs = resolvedRefs(route, at);
  const mine = parents.map((p): ParentStatus => {
    const prev = before.find((s) => s?.controllerName === CONTROLLER_NAME && s.parentRef?.name === p.name &&
      (s.parentRef?.namespace ?? route.metadata.namespace) === p.namespace && s.parentRef?.port === p.ref.port)?.conditions;
    const [ok, reason, message] = accepted(route, p, at);
    return {
      parentRef: p.ref,
      controllerName: CONTROLLER_NAME,
      conditions: [condition('Accepted', ok, reason, message, gen, now, prev), condition('ResolvedRefs', refs[0], refs[1], refs[2], gen, now, prev)],
    };
  });
  return { kind: 'parents', parents: [...others, ...mine] };
}
