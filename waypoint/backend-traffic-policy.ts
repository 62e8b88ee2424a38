// BackendTrafficPolicy (policy.nodemesh.io/v1alpha1) for the waypoint, pure: each validated
// object converted once into plain values (durations in ms, defaults filled in), attached to
// its targets (GEP-713 policy attachment: targetRefs in the policy's namespace), conflicts
// settled (the oldest policy on a target wins, as Gateway API policies do), and the status the
// waypoint writes back (status.ancestors, condition Accepted). Computed once per snapshot
// (snapshots are immutable) and read on every request. The stages that enforce it:
// fault-stage.ts, circuit-breaker-stage.ts, balance-stage.ts (outlier-detection.ts).
import type { BackendTrafficPolicy } from '../daemon/state/resources';
import type { Snapshot } from '../daemon/state/snapshot';
import { waypointFor } from '../daemon/state/waypoints';
import { parseGatewayDuration } from './gateway-duration';
import type { ServiceKey } from './route-model';
import type { ConditionStatus } from './route-status';

/** Istio connectionPool / Envoy circuit breakers, per backend Service in one waypoint. */
export interface CircuitBreakerLimits {
  maxConnections: number;
  maxPendingRequests: number;
  maxParallelRequests: number;
  maxRequestsPerConnection: number;
}

export interface OutlierDetectionConfig {
  /** 0: off. */
  consecutive5xxErrors: number;
  /** 0: off. */
  consecutiveGatewayErrors: number;
  intervalMs: number;
  baseEjectionMs: number;
  maxEjectionPercent: number;
}

export interface FaultConfig {
  delay?: { ms: number; percentage: number };
  abort?: { httpStatus: number; percentage: number } | { grpcStatus: number; percentage: number };
}

/** Envoy's defaults for every circuit breaker threshold. */
export const DEFAULT_CIRCUIT_LIMIT = 1024;
export const OUTLIER_DEFAULTS: OutlierDetectionConfig = Object.freeze({
  consecutive5xxErrors: 5, consecutiveGatewayErrors: 0, intervalMs: 10_000, baseEjectionMs: 30_000, maxEjectionPercent: 10,
});

export interface TrafficPolicy {
  namespace: string;
  name: string;
  generation: number;
  creationTimestamp: string;
  targets: readonly { kind: 'Service' | 'HTTPRoute' | 'GRPCRoute'; name: string }[];
  circuitBreaker?: CircuitBreakerLimits;
  outlierDetection?: OutlierDetectionConfig;
  fault?: FaultConfig;
  /** Values the schema lets through and the waypoint cannot use (none expected; never half-applied). */
  problems: readonly string[];
}

function duration(text: string | undefined, fallback: number, field: string, problems: string[]): number {
  if (text === undefined) return fallback;
  const ms = parseGatewayDuration(text);
  if (ms === undefined) { problems.push(`${field}: ${JSON.stringify(text)} is not a Gateway API duration`); return fallback; }
  return ms;
}

export function convertTrafficPolicy(o: BackendTrafficPolicy): TrafficPolicy {
  const s = o.spec ?? ({} as BackendTrafficPolicy['spec']);
  const problems: string[] = [];
  const out: TrafficPolicy = {
    namespace: o.metadata.namespace ?? 'default', name: o.metadata.name, generation: o.metadata.generation ?? 0,
    creationTimestamp: o.metadata.creationTimestamp ?? '',
    targets: (s.targetRefs ?? []).map((t) => ({ kind: t.kind, name: t.name })),
    problems,
  };
  if (s.circuitBreaker) {
    const c = s.circuitBreaker;
    out.circuitBreaker = {
      maxConnections: c.maxConnections ?? DEFAULT_CIRCUIT_LIMIT, maxPendingRequests: c.maxPendingRequests ?? DEFAULT_CIRCUIT_LIMIT,
      maxParallelRequests: c.maxParallelRequests ?? DEFAULT_CIRCUIT_LIMIT, maxRequestsPerConnection: c.maxRequestsPerConnection ?? DEFAULT_CIRCUIT_LIMIT,
    };
  }
  if (s.outlierDetection) {
    const d = s.outlierDetection;
    out.outlierDetection = {
      consecutive5xxErrors: d.consecutive5xxErrors ?? OUTLIER_DEFAULTS.consecutive5xxErrors,
      consecutiveGatewayErrors: d.consecutiveGatewayErrors ?? OUTLIER_DEFAULTS.consecutiveGatewayErrors,
      intervalMs: duration(d.interval, OUTLIER_DEFAULTS.intervalMs, 'spec.outlierDetection.interval', problems),
      baseEjectionMs: duration(d.baseEjectionTime, OUTLIER_DEFAULTS.baseEjectionMs, 'spec.outlierDetection.baseEjectionTime', problems),
      maxEjectionPercent: d.maxEjectionPercent ?? OUTLIER_DEFAULTS.maxEjectionPercent,
    };
    if (out.outlierDetection.intervalMs === 0) problems.push('spec.outlierDetection.interval: must be longer than 0');
  }
  if (s.faultInjection) {
    const f = s.faultInjection;
    const fault: FaultConfig = {};
    if (f.delay) fault.delay = { ms: duration(f.delay.fixedDelay, 0, 'spec.faultInjection.delay.fixedDelay', problems), percentage: f.delay.percentage ?? 100 };
    if (f.abort) {
      const percentage = f.abort.percentage ?? 100;
      if (f.abort.grpcStatus !== undefined) fault.abort = { grpcStatus: f.abort.grpcStatus, percentage };
      else if (f.abort.httpStatus !== undefined) fault.abort = { httpStatus: f.abort.httpStatus, percentage };
      else problems.push('spec.faultInjection.abort: set exactly one of httpStatus or grpcStatus');
    }
    out.fault = fault;
  }
  return out;
}

// --- attachment and status -----------------------------------------------------------------

export interface PolicyCondition {
  type: 'Accepted';
  status: ConditionStatus;
  /** Accepted, Invalid, TargetNotFound, Conflicted (GEP-713), or NoWaypoint. */
  reason: 'Accepted' | 'Invalid' | 'TargetNotFound' | 'Conflicted' | 'NoWaypoint';
  message: string;
  observedGeneration: number;
}

export interface PolicyAncestorStatus {
  /** The target itself: a Service, or a route. */
  ancestorRef: { group: string; kind: string; name: string; namespace: string };
  /** The Services whose waypoint enforces this entry (they decide which waypoint writes it). */
  services: readonly ServiceKey[];
  condition: PolicyCondition;
}

export interface PolicyEntry { policy: TrafficPolicy; ancestors: PolicyAncestorStatus[] }

export interface TrafficPolicyTable {
  readonly entries: readonly PolicyEntry[];
  /** By backend (or addressed) Service, `ns/name`: the winning policy's settings. */
  forService(key: string): TrafficPolicy | undefined;
  /** By route, `HTTPRoute/ns/name`. */
  forRoute(kind: string, namespace: string, name: string): TrafficPolicy | undefined;
}

const GATEWAY_GROUP = 'gateway.networking.k8s.io';

/** Older first, then by namespace/name: the order in which policies claim a target. */
function olderFirst(a: TrafficPolicy, b: TrafficPolicy): number {
  if (a.creationTimestamp !== b.creationTimestamp) return a.creationTimestamp < b.creationTimestamp ? -1 : 1;
  const ka = `${a.namespace}/${a.name}`, kb = `${b.namespace}/${b.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** Service parents of a stored route (GAMMA parentRefs). */
function routeParents(route: { spec?: { parentRefs?: unknown[] } } | undefined, namespace: string): ServiceKey[] {
  const out: ServiceKey[] = [];
  for (const p of route?.spec?.parentRefs ?? []) {
    const r = p as { kind?: string; group?: string; name?: string; namespace?: string };
    if (r.kind === 'Service' && (r.group ?? '') === '' && typeof r.name === 'string') out.push({ namespace: r.namespace ?? namespace, name: r.name });
  }
  return out;
}

export function buildTrafficPolicyTable(snapshot: Snapshot): TrafficPolicyTable {
  const policies = [...snapshot.backendTrafficPolicies.values()].map(convertTrafficPolicy).sort(olderFirst);
  const services = new Map<string, TrafficPolicy>();
  const routes = new Map<string, TrafficPolicy>();
  const entries: PolicyEntry[] = [];
  for (const policy of policies) {
    const ancestors: PolicyAncestorStatus[] = [];
    const seen = new Set<string>();
    for (const t of policy.targets) {
      const key = `${t.kind}/${policy.namespace}/${t.name}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const isService = t.kind === 'Service';
      const ancestorRef = { group: isService ? '' : GATEWAY_GROUP, kind: t.kind, name: t.name, namespace: policy.namespace };
      const stored = isService ? undefined : (t.kind === 'HTTPRoute' ? snapshot.httpRoutes : snapshot.grpcRoutes).get(`${policy.namespace}/${t.name}`);
      const served = isService ? [{ namespace: policy.namespace, name: t.name }] : routeParents(stored, policy.namespace);
      const cond = (status: ConditionStatus, reason: PolicyCondition['reason'], message: string): PolicyAncestorStatus =>
        ({ ancestorRef, services: served, condition: { type: 'Accepted', status, reason, message, observedGeneration: policy.generation } });
      const targetName = `${t.kind} ${policy.namespace}/${t.name}`;
      if (policy.problems.length > 0) { ancestors.push(cond('False', 'Invalid', policy.problems.join('; '))); continue; }
      if (isService ? !snapshot.services.has(`${policy.namespace}/${t.name}`) : !stored) {
        ancestors.push(cond('False', 'TargetNotFound', `${targetName} does not exist`));
        continue;
      }
      const waypoints = served.map((s) => { const svc = snapshot.services.get(`${s.namespace}/${s.name}`); return svc && waypointFor(snapshot, svc)?.name; }).filter((w): w is string => !!w);
      if (waypoints.length === 0) {
        ancestors.push(cond('False', 'NoWaypoint', isService
          ? `Service ${policy.namespace}/${t.name} has no waypoint; label it or its namespace nodemesh.io/use-waypoint=<gateway>`
          : `no parent Service of ${targetName} has a waypoint`));
        continue;
      }
      const table = isService ? services : routes;
      const tableKey = isService ? `${policy.namespace}/${t.name}` : key;
      const holder = table.get(tableKey);
      if (holder) {
        ancestors.push(cond('False', 'Conflicted', `BackendTrafficPolicy ${holder.namespace}/${holder.name} (older) already applies to ${targetName}`));
        continue;
      }
      table.set(tableKey, policy);
      ancestors.push(cond('True', 'Accepted', `enforced by waypoint ${[...new Set(waypoints)].join(', ')}`));
    }
    entries.push({ policy, ancestors });
  }
  return {
    entries,
    forService: (key) => services.get(key),
    forRoute: (kind, namespace, name) => routes.get(`${kind}/${namespace}/${name}`),
  };
}

const tables = new WeakMap<Snapshot, TrafficPolicyTable>();

/** The table of a snapshot, built on first use. */
export function trafficPolicies(snapshot: Snapshot): TrafficPolicyTable {
  let t = tables.get(snapshot);
  if (!t) { t = buildTrafficPolicyTable(snapshot); tables.set(snapshot, t); }
  return t;
}
