// L7 authorization at the waypoint, pure: AuthorizationPolicies whose targetRefs name this
// waypoint's Gateway or the called Service (as Istio ambient does), evaluated against the
// original caller's identity (the HBONE client certificate) and the request. The meaning is
// daemon/policy's, reused through its pure `authorize`: each rule's L7 operations are decided
// here against the request (a matching one keeps its L4 part, a non-matching one is dropped),
// and the resulting L4 policies go through the same DENY-then-ALLOW evaluation as at a node.
// A rule's `when` header conditions are decided here too: met, they are dropped; not met, the
// rule matches nothing.
import { authorize, hasL7, stringMatch, type AuthzVerdict } from '../daemon/policy/authorization';
import type { AuthorizationCondition, AuthorizationOperation, AuthorizationPolicy, AuthorizationRule } from '../daemon/state/resources';

export interface L7Request {
  method: string;
  path: string;
  host: string;
  /** Lower-case names (the waypoint's exchange headers); absent: no header is present. */
  headers?: Readonly<Record<string, string | string[]>>;
}
export interface L7Target {
  /** The waypoint's Gateway. */
  gateway: { namespace: string; name: string };
  /** The Service called (its VIP was the CONNECT :authority). */
  service: { namespace: string; name: string };
  port: number;
}
export interface L7Caller { principal: string; ip: string }

/** Policies attached to this waypoint or to the Service, in the Service's namespace. */
export function targetedPolicies(policies: readonly AuthorizationPolicy[], t: L7Target): AuthorizationPolicy[] {
  return policies.filter((p) => (p.metadata.namespace ?? 'default') === t.service.namespace && (p.spec.targetRefs ?? []).some((r) =>
    (r.kind === 'Gateway' && r.name === t.gateway.name && t.gateway.namespace === t.service.namespace) ||
    (r.kind === 'Service' && (r.group ?? '') === '' && r.name === t.service.name)));
}

const hostOnly = (h: string) => h.replace(/:\d+$/, '').toLowerCase();

export function operationMatchesL7(o: AuthorizationOperation, req: L7Request): boolean {
  const any = (ps: string[] | undefined, v: string) => ps !== undefined && ps.some((p) => stringMatch(p, v));
  const host = hostOnly(req.host);
  const anyHost = (ps: string[] | undefined) => ps !== undefined && ps.some((p) => stringMatch(p.toLowerCase(), host) || stringMatch(p.toLowerCase(), req.host.toLowerCase()));
  if (o.methods && !any(o.methods, req.method)) return false;
  if (o.notMethods && any(o.notMethods, req.method)) return false;
  if (o.paths && !any(o.paths, req.path)) return false;
  if (o.notPaths && any(o.notPaths, req.path)) return false;
  if (o.hosts && !anyHost(o.hosts)) return false;
  if (o.notHosts && anyHost(o.notHosts)) return false;
  return true;
}

function l4Part(o: AuthorizationOperation): AuthorizationOperation {
  const { methods: _m, notMethods: _nm, paths: _p, notPaths: _np, hosts: _h, notHosts: _nh, ...rest } = o;
  return rest;
}

const HEADER_KEY = /^request\.headers\[([^\]]+)\]$/;

/** The header a `when` key names (lower-case), or undefined for a key nodemesh does not know. */
export function conditionHeader(key: string): string | undefined {
  return HEADER_KEY.exec(key)?.[1]?.toLowerCase();
}

/** Whether one `when` condition holds for the request. A header sent more than once is judged
 * value by value: `values` needs one of them to match, `notValues` none (an absent header
 * meets `notValues`, as in Istio). A key the waypoint does not know (the schema admits only
 * request headers) holds in a DENY rule and fails in an ALLOW one: fail closed. */
export function conditionHolds(c: AuthorizationCondition, req: L7Request, action: 'ALLOW' | 'DENY'): boolean {
  const name = conditionHeader(c.key);
  if (name === undefined) return action === 'DENY';
  const raw = req.headers?.[name];
  const present = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  const some = (patterns: string[]) => present.some((v) => patterns.some((p) => stringMatch(p, v)));
  if (c.values && !some(c.values)) return false;
  if (c.notValues && some(c.notValues)) return false;
  return true;
}

/** The rule with its L7 parts decided for this request: matching L7 operations keep their L4
 * part, non-matching ones are dropped; `when` conditions that all hold are dropped, otherwise
 * the rule matches nothing (an empty `to`). */
function decideRule(rule: AuthorizationRule, req: L7Request, action: 'ALLOW' | 'DENY'): AuthorizationRule {
  const { when, ...rest } = rule;
  if ((when ?? []).some((c) => !conditionHolds(c, req, action))) return { ...rest, to: [] };
  if (!rest.to) return rest;
  return { ...rest, to: rest.to.filter((t) => !hasL7(t.operation ?? {}) || operationMatchesL7(t.operation ?? {}, req)).map((t) => ({ operation: l4Part(t.operation ?? {}) })) };
}

/** As a workload policy in the Service's namespace, so daemon/policy's `authorize` selects it. */
function asWorkloadPolicy(p: AuthorizationPolicy, namespace: string, rules: AuthorizationRule[] | undefined): AuthorizationPolicy {
  return { ...p, metadata: { ...p.metadata, namespace }, spec: { action: p.spec.action, ...(rules ? { rules } : {}) } };
}

/** The verdict for one HTTP request at the waypoint. */
export function authorizeRequest(policies: readonly AuthorizationPolicy[], caller: L7Caller, t: L7Target, req: L7Request): AuthzVerdict {
  const mine = targetedPolicies(policies, t).map((p) => asWorkloadPolicy(p, t.service.namespace, p.spec.rules?.map((r) => decideRule(r, req, p.spec.action ?? 'ALLOW'))));
  return authorize(mine, caller, { namespace: t.service.namespace, labels: {}, port: t.port });
}

/** The verdict for a connection the waypoint passes through as TCP: L7 rules cannot be
 * checked, so an ALLOW rule using them matches nothing and a DENY rule applies on its L4
 * part, exactly as at a node. */
export function authorizeConnection(policies: readonly AuthorizationPolicy[], caller: L7Caller, t: L7Target): AuthzVerdict {
  const mine = targetedPolicies(policies, t).map((p) => asWorkloadPolicy(p, t.service.namespace, p.spec.rules));
  return authorize(mine, caller, { namespace: t.service.namespace, labels: {}, port: t.port });
}
