// Circuit breaking per backend Service in one waypoint (Istio connectionPool, Envoy's circuit
// breakers). The admission decision is pure; a CircuitBreakers object keeps, per Service, the
// requests in flight and a bounded FIFO queue of those waiting for a slot.
//
// An HTTP/1.1 attempt holds one upstream tunnel for its duration, so requests in flight are
// bounded by the smaller of maxConnections and maxParallelRequests (idle kept tunnels are not
// counted); maxRequestsPerConnection is enforced where tunnels are kept (forward.ts). Over the bound a
// request waits while fewer than maxPendingRequests wait; beyond that it overflows: 503 at once.
import type { CircuitBreakerLimits } from './backend-traffic-policy';

/** Which threshold refused a request (a fixed set: a metric label). */
export type OverflowLimit = 'max_connections' | 'max_parallel_requests' | 'max_pending_requests';

export type Admission = { kind: 'go' } | { kind: 'queue' } | { kind: 'overflow'; limit: OverflowLimit };

export function concurrencyOf(l: CircuitBreakerLimits): number {
  return Math.min(l.maxConnections, l.maxParallelRequests);
}

/** `active`: requests in flight to the Service; `pending`: requests already waiting. */
export function admission(active: number, pending: number, limits: CircuitBreakerLimits): Admission {
  // Nobody jumps the queue: with waiters, a free slot is theirs.
  if (active < concurrencyOf(limits) && pending === 0) return { kind: 'go' };
  if (pending < limits.maxPendingRequests) return { kind: 'queue' };
  if (limits.maxPendingRequests > 0) return { kind: 'overflow', limit: 'max_pending_requests' };
  return { kind: 'overflow', limit: limits.maxConnections < limits.maxParallelRequests ? 'max_connections' : 'max_parallel_requests' };
}

export type Slot =
  | { ok: true; release: () => void }
  | { ok: false; reason: 'overflow'; limit: OverflowLimit; active: number; pending: number }
  | { ok: false; reason: 'aborted' };

interface Waiter { wake: () => void }

class ServiceCircuit {
  active = 0;
  readonly queue: Waiter[] = [];
  limits: CircuitBreakerLimits;
  constructor(limits: CircuitBreakerLimits) { this.limits = limits; }
}

export class CircuitBreakers {
  private readonly circuits = new Map<string, ServiceCircuit>();

  /** A slot for one request to the Service `key`, now, after waiting, or never. */
  acquire(key: string, limits: CircuitBreakerLimits, signal: AbortSignal): Promise<Slot> | Slot {
    let c = this.circuits.get(key);
    if (!c) { c = new ServiceCircuit(limits); this.circuits.set(key, c); }
    c.limits = limits;
    const a = admission(c.active, c.queue.length, limits);
    if (a.kind === 'go') { c.active++; return { ok: true, release: this.releaser(key, c) }; }
    if (a.kind === 'overflow') return { ok: false, reason: 'overflow', limit: a.limit, active: c.active, pending: c.queue.length };
    if (signal.aborted) return { ok: false, reason: 'aborted' };
    const circuit = c;
    return new Promise<Slot>((resolve) => {
      const waiter: Waiter = {
        wake: () => { signal.removeEventListener('abort', onAbort); circuit.active++; resolve({ ok: true, release: this.releaser(key, circuit) }); },
      };
      const onAbort = () => {
        const i = circuit.queue.indexOf(waiter);
        if (i >= 0) circuit.queue.splice(i, 1);
        resolve({ ok: false, reason: 'aborted' });
        this.forgetIfIdle(key, circuit);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      circuit.queue.push(waiter);
    });
  }

  /** In flight and waiting, per Service (admin output, tests). */
  stats(): Record<string, { active: number; pending: number }> {
    return Object.fromEntries([...this.circuits].map(([k, c]) => [k, { active: c.active, pending: c.queue.length }]));
  }

  private releaser(key: string, c: ServiceCircuit): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      c.active--;
      while (c.queue.length > 0 && c.active < concurrencyOf(c.limits)) c.queue.shift()!.wake();
      this.forgetIfIdle(key, c);
    };
  }

  /** An idle Service's entry is dropped, so the map holds only Services with traffic. */
  private forgetIfIdle(key: string, c: ServiceCircuit): void {
    if (c.active === 0 && c.queue.length === 0 && this.circuits.get(key) === c) this.circuits.delete(key);
  }
}
