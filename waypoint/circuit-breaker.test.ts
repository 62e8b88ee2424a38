import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CircuitBreakerLimits } from './backend-traffic-policy';
import { CircuitBreakers, admission, type Slot } from './circuit-breaker';

const limits = (o: Partial<CircuitBreakerLimits>): CircuitBreakerLimits => ({ maxConnections: 1024, maxPendingRequests: 1024, maxParallelRequests: 1024, maxRequestsPerConnection: 1024, ...o });

test('admission: go under the bound, queue while the queue has room, else the limit that refused', () => {
  const table: [number, number, Partial<CircuitBreakerLimits>, string][] = [
    // active, pending, limits -> decision
    [0, 0, { maxParallelRequests: 2 }, 'go'],
    [1, 0, { maxParallelRequests: 2 }, 'go'],
    [2, 0, { maxParallelRequests: 2, maxPendingRequests: 1 }, 'queue'],
    [2, 1, { maxParallelRequests: 2, maxPendingRequests: 1 }, 'overflow max_pending_requests'],
    [1, 1, { maxParallelRequests: 2, maxPendingRequests: 5 }, 'queue'], // a free slot belongs to the waiter
    [2, 0, { maxParallelRequests: 2, maxPendingRequests: 0 }, 'overflow max_parallel_requests'],
    [1, 0, { maxConnections: 1, maxParallelRequests: 5, maxPendingRequests: 0 }, 'overflow max_connections'],
    [0, 0, { maxConnections: 1, maxParallelRequests: 1, maxPendingRequests: 0 }, 'go'],
    [5, 0, { maxConnections: 5, maxParallelRequests: 5, maxPendingRequests: 0 }, 'overflow max_parallel_requests'],
  ];
  for (const [active, pending, l, want] of table) {
    const a = admission(active, pending, limits(l));
    assert.equal(a.kind === 'overflow' ? `overflow ${a.limit}` : a.kind, want, `${active} active, ${pending} pending, ${JSON.stringify(l)}`);
  }
});

test('CircuitBreakers: excess requests wait in FIFO order, overflow past the queue, and run as slots free', async () => {
  const cb = new CircuitBreakers();
  const l = limits({ maxParallelRequests: 2, maxPendingRequests: 2 });
  const never = new AbortController().signal;
  const a = await cb.acquire('shop/slow', l, never);
  const b = await cb.acquire('shop/slow', l, never);
  assert.ok(a.ok && b.ok);
  const order: string[] = [];
  const c = Promise.resolve(cb.acquire('shop/slow', l, never)).then((s) => { order.push('c'); return s; });
  const d = Promise.resolve(cb.acquire('shop/slow', l, never)).then((s) => { order.push('d'); return s; });
  const e = await cb.acquire('shop/slow', l, never);
  assert.deepEqual(e, { ok: false, reason: 'overflow', limit: 'max_pending_requests', active: 2, pending: 2 });
  assert.deepEqual(cb.stats(), { 'shop/slow': { active: 2, pending: 2 } });
  // another Service is not affected
  const other = await cb.acquire('shop/other', l, never);
  assert.ok(other.ok);
  other.release();
  a.release();
  a.release(); // twice is once
  const cs = await c;
  assert.deepEqual(order, ['c']);
  assert.deepEqual(cb.stats(), { 'shop/slow': { active: 2, pending: 1 } });
  b.release();
  const ds = await d;
  assert.deepEqual(order, ['c', 'd']);
  for (const s of [cs, ds] as Slot[]) { assert.ok(s.ok); s.release(); }
  assert.deepEqual(cb.stats(), {}, 'idle Services are forgotten');
});

test('CircuitBreakers: a waiter whose request is abandoned leaves the queue', async () => {
  const cb = new CircuitBreakers();
  const l = limits({ maxParallelRequests: 1, maxPendingRequests: 1 });
  const first = await cb.acquire('shop/x', l, new AbortController().signal);
  const ac = new AbortController();
  const waiting = cb.acquire('shop/x', l, ac.signal);
  ac.abort();
  assert.deepEqual(await waiting, { ok: false, reason: 'aborted' });
  assert.deepEqual(cb.stats(), { 'shop/x': { active: 1, pending: 0 } });
  const again = cb.acquire('shop/x', l, new AbortController().signal); // the queue has room again
  assert.ok(first.ok);
  first.release();
  const s = await again;
  assert.ok(s.ok);
  s.release();
  assert.deepEqual(cb.stats(), {});
});
