// Outlier detection per endpoint (Istio outlierDetection, Envoy's consecutive_5xx and
// consecutive_gateway_failure detectors), as state over explicit time: every call takes `now`
// (ms), so tables of cases drive it without clocks.
//
// An endpoint that gives consecutive5xxErrors 5xx results in a row (connect failures, resets
// and timeouts count as 5xx, as Envoy counts local-origin errors when it does not split
// them), or consecutiveGatewayErrors 502/503/504 or local-origin failures in a row, is ejected
// for baseEjectionTime times the number of its ejections (at most max(300 s, base), Envoy's
// max_ejection_time), unless that would put more than maxEjectionPercent of the Service's
// endpoints out (Envoy: 100 * (ejected + 1) / endpoints <= maxEjectionPercent). It comes back
// when the time is up, with its counters cleared; each interval it then stays in lowers its
// ejection count by one, so an endpoint that keeps failing stays out longer and longer.
import type { OutlierDetectionConfig } from './backend-traffic-policy';

/** What one attempt says about the endpoint. */
export type AttemptResult = 'success' | '5xx' | 'gateway-error' | 'local-origin-failure' | 'not-counted';

/** Why an endpoint was ejected (a fixed set: a metric label). */
export type EjectionReason = 'consecutive_5xx' | 'consecutive_gateway_errors';

export const MAX_EJECTION_MS = 300_000;

/** How an attempt's reply counts: failures the waypoint made up itself (overflow) do not. */
export function classifyAttempt(reply: { status: number; failure?: string }): AttemptResult {
  if (reply.failure === 'overflow') return 'not-counted';
  if (reply.failure) return 'local-origin-failure';
  if (reply.status === 502 || reply.status === 503 || reply.status === 504) return 'gateway-error';
  if (reply.status >= 500) return '5xx';
  return 'success';
}

interface EndpointState {
  consecutive5xx: number;
  consecutiveGateway: number;
  /** Ejections so far (the multiplier of the next ejection time). */
  ejections: number;
  /** Ejected until then; undefined while in. */
  ejectedUntil?: number;
  /** From when the ejection count decays (the return, or the last decay step). */
  decayFrom: number;
}

export type OutlierEvent =
  | { kind: 'ejected'; endpoint: string; reason: EjectionReason; forMs: number; ejections: number }
  | { kind: 'returned'; endpoint: string };

export class OutlierDetector {
  private readonly endpoints = new Map<string, EndpointState>();

  constructor(public config: OutlierDetectionConfig) {}

  /** Records one attempt's result; an `ejected` event when this result ejected the endpoint. */
  record(endpoint: string, result: AttemptResult, now: number, endpointCount: number): OutlierEvent | undefined {
    if (result === 'not-counted') return undefined;
    const s = this.stateOf(endpoint, now);
    if (s.ejectedUntil !== undefined) return undefined; // an answer from before the ejection
    if (result === 'success') { s.consecutive5xx = 0; s.consecutiveGateway = 0; return undefined; }
    s.consecutive5xx++;
    if (result === 'gateway-error' || result === 'local-origin-failure') s.consecutiveGateway++;
    else s.consecutiveGateway = 0;
    const c = this.config;
    const reason: EjectionReason | undefined =
      c.consecutive5xxErrors > 0 && s.consecutive5xx >= c.consecutive5xxErrors ? 'consecutive_5xx'
        : c.consecutiveGatewayErrors > 0 && s.consecutiveGateway >= c.consecutiveGatewayErrors ? 'consecutive_gateway_errors' : undefined;
    if (!reason) return undefined;
    if (endpointCount <= 0 || (100 * (this.ejectedCount(now) + 1)) / endpointCount > c.maxEjectionPercent) return undefined;
    s.ejections++;
    const forMs = Math.min(c.baseEjectionMs * s.ejections, Math.max(MAX_EJECTION_MS, c.baseEjectionMs));
    s.ejectedUntil = now + forMs;
    s.consecutive5xx = 0;
    s.consecutiveGateway = 0;
    return { kind: 'ejected', endpoint, reason, forMs, ejections: s.ejections };
  }

  /** Whether the endpoint is out now; `onReturn` hears of an endpoint whose time is up. */
  isEjected(endpoint: string, now: number, onReturn?: (e: OutlierEvent) => void): boolean {
    const s = this.endpoints.get(endpoint);
    if (!s || s.ejectedUntil === undefined) return false;
    if (now < s.ejectedUntil) return true;
    s.ejectedUntil = undefined;
    s.decayFrom = now;
    onReturn?.({ kind: 'returned', endpoint });
    return false;
  }

  ejectedCount(now: number): number {
    let n = 0;
    for (const s of this.endpoints.values()) if (s.ejectedUntil !== undefined && now < s.ejectedUntil) n++;
    return n;
  }

  /** Forgets endpoints no longer in the Service (bounded state). */
  retain(endpoints: ReadonlySet<string>): void {
    for (const k of this.endpoints.keys()) if (!endpoints.has(k)) this.endpoints.delete(k);
  }

  get size(): number { return this.endpoints.size; }

  private stateOf(endpoint: string, now: number): EndpointState {
    let s = this.endpoints.get(endpoint);
    if (!s) { s = { consecutive5xx: 0, consecutiveGateway: 0, ejections: 0, decayFrom: now }; this.endpoints.set(endpoint, s); }
    this.isEjected(endpoint, now);
    if (s.ejectedUntil === undefined && s.ejections > 0 && this.config.intervalMs > 0) {
      const steps = Math.floor((now - s.decayFrom) / this.config.intervalMs);
      if (steps > 0) { s.ejections = Math.max(0, s.ejections - steps); s.decayFrom += steps * this.config.intervalMs; }
    }
    return s;
  }
}

/** One detector per backend Service (`ns/name`), its configuration following the policy. */
export class OutlierDetectors {
  private readonly byService = new Map<string, OutlierDetector>();

  for(service: string, config: OutlierDetectionConfig): OutlierDetector {
    let d = this.byService.get(service);
    if (!d) { d = new OutlierDetector(config); this.byService.set(service, d); }
    d.config = config;
    return d;
  }

}
