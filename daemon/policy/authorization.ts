// L4 authorization and peer authentication: pure functions over policies, table-tested in
// authorization.test.ts. Semantics follow Istio's so existing policies read the same:
//  - any matching DENY policy denies; then, if the workload has ALLOW policies, one must
//    match; with no ALLOW policy at all, the connection is allowed;
//  - rules OR together; inside a rule, `from` and `to` AND; inside each, fields AND and the
//    list values OR; an ALLOW policy with no rules matches nothing (deny all);
//  - L7 fields (methods, paths, hosts, `when` header conditions) cannot be checked at L4: an
//    ALLOW rule using them never matches and a DENY rule using them is matched on its L4
//    fields alone (both fail closed);
//  - a policy with targetRefs to a Service applies to the pods that Service selects, on the
//    Service's target ports, with the same semantics; one with targetRefs to a Gateway (a
//    waypoint) is not enforceable here: every connection it would govern (to workloads
//    that use that waypoint) is denied, fail closed, until a waypoint enforces it.
import { BlockList, isIPv6 } from 'node:net';
import {
  AuthorizationOperation, AuthorizationPolicy, AuthorizationSource, Labels, MtlsMode, PeerAuthentication,
  ROOT_NAMESPACE, WorkloadSelector,
} from '../state/resources';

export interface AuthzSubject {
  /** The peer's SPIFFE ID when it authenticated (HBONE), undefined for plaintext. */
  principal?: string;
  ip: string;
}

export interface AuthzTarget {
  namespace: string;
  labels: Labels;
  port: number;
  /** Services (`ns/name`) that select this workload with `port` as a target port: what a
   * targetRefs kind Service policy attaches to. */
  services?: readonly string[];
  /** The waypoint (Gateway name in the workload's namespace) the workload uses, if any. */
  waypoint?: string;
}

export type AuthzVerdict =
  | { allow: true; policy?: string }
  | { allow: false; reason: 'denied-by-policy' | 'no-allow-policy-matched'; policy?: string; message: string };

const policyName = (p: { metadata: { namespace?: string; name: string } }) => `${p.metadata.namespace ?? 'default'}/${p.metadata.name}`;

/** Whether a namespaced selector-based policy applies to a workload. */
export function selects(p: { metadata: { namespace?: string }; spec: { selector?: WorkloadSelector } }, target: { namespace: string; labels: Labels }, rootNamespace = ROOT_NAMESPACE): boolean {
  const ns = p.metadata.namespace ?? 'default';
  if (ns !== target.namespace && ns !== rootNamespace) return false;
  const ml = p.spec.selector?.matchLabels;
  if (!ml || Object.keys(ml).length === 0) return true;
  return Object.entries(ml).every(([k, v]) => target.labels[k] === v);
}

/** Istio principal form `td/ns/x/sa/y`; accepts `spiffe://` IDs too. */
const principalOf = (spiffe: string) => spiffe.replace(/^spiffe:\/\//, '');
const namespaceOf = (spiffe: string) => /\/ns\/([^/]+)\/sa\//.exec(spiffe)?.[1];

/** Exact, `*`, `prefix*` or `*suffix`, as in Istio. */
export function stringMatch(pattern: string, value: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('*')) return value.startsWith(pattern.slice(0, -1));
  if (pattern.startsWith('*')) return value.endsWith(pattern.slice(1));
  return pattern === value;
}
const anyMatch = (patterns: string[], value: string | undefined) => value !== undefined && patterns.some((p) => stringMatch(p, value));

/** A policy's ipBlocks as a BlockList, built once per list (policies are immutable). */
const blockLists = new WeakMap<string[], BlockList>();

function inBlocks(blocks: string[], ip: string): boolean {
  let bl = blockLists.get(blocks);
  if (!bl) {
    bl = new BlockList();
    for (const b of blocks) {
      const [addr, len] = b.split('/');
      const type = isIPv6(addr) ? 'ipv6' : 'ipv4';
      if (len === undefined) bl.addAddress(addr, type);
      else bl.addSubnet(addr, Number(len), type);
    }
    blockLists.set(blocks, bl);
  }
  return bl.check(ip, isIPv6(ip) ? 'ipv6' : 'ipv4');
}

function sourceMatches(s: AuthorizationSource, subj: AuthzSubject): boolean {
  const principal = subj.principal && principalOf(subj.principal);
  const ns = subj.principal && namespaceOf(subj.principal);
  if (s.principals && !anyMatch(s.principals.map(principalOf), principal)) return false;
  if (s.notPrincipals && anyMatch(s.notPrincipals.map(principalOf), principal)) return false;
  if (s.namespaces && !anyMatch(s.namespaces, ns)) return false;
  if (s.notNamespaces && anyMatch(s.notNamespaces, ns)) return false;
  if (s.ipBlocks && !inBlocks(s.ipBlocks, subj.ip)) return false;
  if (s.notIpBlocks && inBlocks(s.notIpBlocks, subj.ip)) return false;
  return true;
}

const L7_FIELDS: (keyof AuthorizationOperation)[] = ['methods', 'notMethods', 'paths', 'notPaths', 'hosts', 'notHosts'];
export const hasL7 = (o: AuthorizationOperation) => L7_FIELDS.some((f) => o[f] !== undefined);

function operationMatchesL4(o: AuthorizationOperation, port: number): boolean {
  const p = String(port);
  if (o.ports && !o.ports.includes(p)) return false;
  if (o.notPorts && o.notPorts.includes(p)) return false;
  return true;
}

function ruleMatches(rule: NonNullable<AuthorizationPolicy['spec']['rules']>[number], action: 'ALLOW' | 'DENY', subj: AuthzSubject, port: number): boolean {
  if (rule.from && !rule.from.some((f) => sourceMatches(f.source ?? {}, subj))) return false;
  // `when` conditions name request headers (L7): an ALLOW rule with them matches nothing here.
  if ((rule.when ?? []).length > 0 && action === 'ALLOW') return false;
  if (rule.to) {
    const ok = rule.to.some((t) => {
      const op = t.operation ?? {};
      if (hasL7(op) && action === 'ALLOW') return false;
      return operationMatchesL4(op, port);
    });
    if (!ok) return false;
  }
  return true;
}

const hasTargetRefs = (p: AuthorizationPolicy): boolean => (p.spec?.targetRefs ?? []).length > 0;

/** Whether a targetRefs policy attaches to this workload and port through a Service. */
function targetsService(p: AuthorizationPolicy, target: AuthzTarget): boolean {
  const ns = p.metadata.namespace ?? 'default';
  return (p.spec?.targetRefs ?? []).some((r) => r.kind === 'Service' && (target.services ?? []).includes(`${ns}/${r.name}`));
}

/** Whether a targetRefs policy names the waypoint this workload uses. */
export function targetsWaypoint(p: AuthorizationPolicy, target: Pick<AuthzTarget, 'namespace' | 'waypoint'>): boolean {
  const ns = p.metadata.namespace ?? 'default';
  return target.waypoint !== undefined && ns === target.namespace &&
    (p.spec?.targetRefs ?? []).some((r) => r.kind === 'Gateway' && r.name === target.waypoint);
}

/** Policies that take effect at L4 for a workload and port: selected ones, and those
 * attached to a Service that selects it. */
function applicable(policies: readonly AuthorizationPolicy[], target: AuthzTarget, rootNamespace: string) {
  return policies.filter((p) => (hasTargetRefs(p) ? targetsService(p, target) : selects(p, target, rootNamespace)));
}

/** What of a policy set applies to one target (workload and port), split by action: made once
 * per snapshot, workload and port (policy/inbound.ts), then only the rules run per connection. */
export interface CompiledPolicies {
  /** A waypoint policy nothing enforces that governs the target: it denies everything. */
  unenforced?: AuthorizationPolicy;
  denies: readonly AuthorizationPolicy[];
  allows: readonly AuthorizationPolicy[];
}

export function compilePolicies(policies: readonly AuthorizationPolicy[], target: AuthzTarget, rootNamespace = ROOT_NAMESPACE): CompiledPolicies {
  // Fail closed: a waypoint policy nothing enforces denies what it would govern.
  const unenforced = policies.find((p) => targetsWaypoint(p, target));
  const mine = applicable(policies, target, rootNamespace);
  return {
    ...(unenforced ? { unenforced } : {}),
    denies: mine.filter((p) => (p.spec.action ?? 'ALLOW') === 'DENY'),
    allows: mine.filter((p) => (p.spec.action ?? 'ALLOW') === 'ALLOW'),
  };
}

/** The verdict of compiled policies for one caller on `port` (the target's port). */
export function evaluate(c: CompiledPolicies, subj: AuthzSubject, port: number, waypoint?: string): AuthzVerdict {
  if (c.unenforced) {
    const p = c.unenforced;
    return {
      allow: false, reason: 'denied-by-policy', policy: policyName(p),
      message: `AuthorizationPolicy ${policyName(p)} targets Gateway ${waypoint}, a waypoint; no waypoint enforces it, so the connections it governs are denied (fail closed)`,
    };
  }
  for (const p of c.denies) {
    if ((p.spec.rules ?? []).some((r) => ruleMatches(r, 'DENY', subj, port))) {
      return { allow: false, reason: 'denied-by-policy', policy: policyName(p), message: `denied by AuthorizationPolicy ${policyName(p)}` };
    }
  }
  if (c.allows.length === 0) return { allow: true };
  for (const p of c.allows) {
    if ((p.spec.rules ?? []).some((r) => ruleMatches(r, 'ALLOW', subj, port))) return { allow: true, policy: policyName(p) };
  }
  return {
    allow: false, reason: 'no-allow-policy-matched',
    message: `no ALLOW rule matched ${subj.principal ?? `unauthenticated ${subj.ip}`} (policies: ${c.allows.map(policyName).join(', ')})`,
  };
}

export function authorize(policies: readonly AuthorizationPolicy[], subj: AuthzSubject, target: AuthzTarget, rootNamespace = ROOT_NAMESPACE): AuthzVerdict {
  return evaluate(compilePolicies(policies, target, rootNamespace), subj, target.port, target.waypoint);
}

/** Effective mTLS mode for a workload's port: workload selector > namespace > mesh-wide >
 * PERMISSIVE (Istio's default); port-level settings of the winning policy override. */
export function peerAuthenticationMode(pas: readonly PeerAuthentication[], target: AuthzTarget, rootNamespace = ROOT_NAMESPACE): Exclude<MtlsMode, 'UNSET'> {
  const hasSelector = (p: PeerAuthentication) => !!p.spec.selector?.matchLabels && Object.keys(p.spec.selector.matchLabels).length > 0;
  const tiers = [
    pas.filter((p) => p.metadata.namespace === target.namespace && hasSelector(p) && selects(p, target, rootNamespace)),
    pas.filter((p) => p.metadata.namespace === target.namespace && !hasSelector(p)),
    pas.filter((p) => p.metadata.namespace === rootNamespace && !hasSelector(p)),
  ];
  for (const tier of tiers) {
    // Oldest wins among equals in Istio; names give a stable order here.
    const p = [...tier].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))[0];
    if (!p) continue;
    const portMode = p.spec.portLevelMtls?.[String(target.port)]?.mode;
    if (portMode && portMode !== 'UNSET') return portMode;
    const mode = p.spec.mtls?.mode;
    if (mode && mode !== 'UNSET') return mode;
  }
  return 'PERMISSIVE';
}
