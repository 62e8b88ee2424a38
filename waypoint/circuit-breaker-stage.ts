// Stage: circuit breaking for the chosen backend Service (circuit-breaker.ts), after the
// endpoint is chosen and before the attempt's timeout, where Envoy checks its connection pool's
// limits. A request over the limits is answered 503 at once with `nodemesh-overloaded: true`
// (Envoy's x-envoy-overloaded) and failure `overflow`, which is never retried and never counts
// against the endpoint. A slot is held until the response body is over, not only its headers,
// or until the caller is gone (a body nobody reads must not hold a slot for ever).
import type { Snapshot } from '../daemon/state/snapshot';
import { trafficPolicies } from './backend-traffic-policy';
import { CircuitBreakers, type OverflowLimit } from './circuit-breaker';
import { localReply, type Layer } from './exchange';

export const OVERLOADED_HEADER = 'nodemesh-overloaded';

const LIMIT_FIELD: Record<OverflowLimit, string> = {
  max_connections: 'maxConnections', max_parallel_requests: 'maxParallelRequests', max_pending_requests: 'maxPendingRequests',
};

export interface CircuitBreakerStageDeps {
  snapshot: () => Snapshot;
  breakers: CircuitBreakers;
  /** One refused request, by backend Service `ns/name` and the limit (bounded labels). */
  onOverflow?: (backend: string, limit: OverflowLimit) => void;
}

export const circuitBreakerStage = (deps: CircuitBreakerStageDeps): Layer => (next) => async (x) => {
  const svc = x.endpoint!.service;
  const key = `${svc.namespace}/${svc.name}`;
  const limits = trafficPolicies(deps.snapshot()).forService(key)?.circuitBreaker;
  if (!limits) return next(x);
  const slot = await deps.breakers.acquire(key, limits, x.signal);
  if (!slot.ok) {
    if (slot.reason === 'aborted') return localReply(499, `request abandoned while waiting for a slot of backend Service ${key}`);
    deps.onOverflow?.(key, slot.limit);
    return localReply(503, `circuit breaker of backend Service ${key} is open: ${slot.active} requests in flight, ${slot.pending} pending (${LIMIT_FIELD[slot.limit]} ${limits[LIMIT_FIELD[slot.limit] as keyof typeof limits]})`, {
      failure: 'overflow', headers: { 'content-type': 'text/plain; charset=utf-8', [OVERLOADED_HEADER]: 'true' },
    });
  }
  x.maxRequestsPerConnection = limits.maxRequestsPerConnection;
  let reply;
  try {
    reply = await next(x);
  } catch (e) {
    slot.release();
    throw e;
  }
  if (Buffer.isBuffer(reply.body) || reply.body.destroyed || x.signal.aborted) { slot.release(); return reply; }
  reply.body.once('close', slot.release);
  reply.body.once('end', slot.release);
  reply.body.once('error', slot.release);
  x.signal.addEventListener('abort', slot.release, { once: true });
  return reply;
};
