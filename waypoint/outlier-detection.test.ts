import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OUTLIER_DEFAULTS, type OutlierDetectionConfig } from './backend-traffic-policy';
import { OutlierDetector, classifyAttempt, type AttemptResult } from './outlier-detection';

const cfg = (o: Partial<OutlierDetectionConfig>): OutlierDetectionConfig => ({ ...OUTLIER_DEFAULTS, ...o });

test('classifyAttempt: what counts against an endpoint', () => {
  const table: [{ status: number; failure?: string }, AttemptResult][] = [
    [{ status: 200 }, 'success'], [{ status: 404 }, 'success'], [{ status: 403 }, 'success'],
    [{ status: 500 }, '5xx'], [{ status: 501 }, '5xx'], [{ status: 502 }, 'gateway-error'], [{ status: 503 }, 'gateway-error'], [{ status: 504 }, 'gateway-error'],
    [{ status: 503, failure: 'connect-failure' }, 'local-origin-failure'], [{ status: 503, failure: 'reset' }, 'local-origin-failure'],
    [{ status: 504, failure: 'timeout' }, 'local-origin-failure'], [{ status: 503, failure: 'overflow' }, 'not-counted'],
  ];
  for (const [reply, want] of table) assert.equal(classifyAttempt(reply), want, JSON.stringify(reply));
});

/** Runs results through a detector; returns what each step said. */
function run(d: OutlierDetector, steps: [number, string, AttemptResult][], endpoints = 2): string[] {
  return steps.map(([now, ep, r]) => { const e = d.record(ep, r, now, endpoints); return e?.kind === 'ejected' ? `${ep} out ${e.reason} ${e.forMs}` : ''; });
}

test('consecutive 5xx eject; a success in between resets the count', () => {
  const d = new OutlierDetector(cfg({ consecutive5xxErrors: 3, baseEjectionMs: 1000, maxEjectionPercent: 50 }));
  assert.deepEqual(run(d, [[0, 'a', '5xx'], [1, 'a', '5xx'], [2, 'a', 'success'], [3, 'a', '5xx'], [4, 'a', 'gateway-error'], [5, 'a', 'local-origin-failure']]),
    ['', '', '', '', '', 'a out consecutive_5xx 1000']);
  assert.equal(d.isEjected('a', 5), true);
  assert.equal(d.isEjected('a', 1004), true);
  assert.equal(d.isEjected('b', 5), false);
  // results that were in flight while it was ejected are not held against it
  assert.deepEqual(run(d, [[10, 'a', '5xx'], [11, 'a', '5xx'], [12, 'a', '5xx']]), ['', '', '']);
  const back: string[] = [];
  assert.equal(d.isEjected('a', 1005, (e) => back.push(e.kind)), false, 'back when the time is up');
  assert.deepEqual(back, ['returned']);
  assert.equal(d.ejectedCount(1005), 0);
});

test('gateway errors eject on their own count; a plain 5xx breaks that run', () => {
  const d = new OutlierDetector(cfg({ consecutive5xxErrors: 0, consecutiveGatewayErrors: 2, baseEjectionMs: 500, maxEjectionPercent: 100 }));
  assert.deepEqual(run(d, [[0, 'a', 'gateway-error'], [1, 'a', '5xx'], [2, 'a', 'gateway-error'], [3, 'a', 'local-origin-failure']]),
    ['', '', '', 'a out consecutive_gateway_errors 500']);
});

test('the ejection time grows with each ejection, capped, and the count decays while the endpoint stays in', () => {
  const d = new OutlierDetector(cfg({ consecutive5xxErrors: 1, baseEjectionMs: 100_000, intervalMs: 1000, maxEjectionPercent: 100 }));
  assert.deepEqual(run(d, [[0, 'a', '5xx']]), ['a out consecutive_5xx 100000']);
  assert.deepEqual(run(d, [[100_000, 'a', '5xx']]), ['a out consecutive_5xx 200000'], 'second ejection: twice as long');
  assert.deepEqual(run(d, [[300_000, 'a', '5xx']]), ['a out consecutive_5xx 300000'], 'third: 300 s, the cap (not 300 s * 3)');
  // back at 600 s; 2 intervals in, the count is 3 - 2 = 1: the next ejection lasts 2 x base
  assert.equal(d.isEjected('a', 600_000), false);
  assert.deepEqual(run(d, [[602_000, 'a', '5xx']]), ['a out consecutive_5xx 200000']);
});

test('never more than maxEjectionPercent of the endpoints out (Envoy: 100 * (ejected + 1) / n <= max)', () => {
  const d = new OutlierDetector(cfg({ consecutive5xxErrors: 1, baseEjectionMs: 1000, maxEjectionPercent: 50 }));
  assert.deepEqual(run(d, [[0, 'a', '5xx'], [1, 'b', '5xx'], [2, 'c', '5xx'], [3, 'd', '5xx']], 4), ['a out consecutive_5xx 1000', 'b out consecutive_5xx 1000', '', '']);
  assert.equal(d.ejectedCount(3), 2);
  // with the default 10%, two endpoints never lose one
  const small = new OutlierDetector(cfg({ consecutive5xxErrors: 1 }));
  assert.deepEqual(run(small, [[0, 'a', '5xx'], [1, 'a', '5xx']], 2), ['', '']);
  // once one is back, another may go
  assert.deepEqual(run(d, [[1001, 'c', '5xx']], 4), ['c out consecutive_5xx 1000']);
});

test('retain forgets endpoints that left the Service', () => {
  const d = new OutlierDetector(cfg({}));
  run(d, [[0, 'a', '5xx'], [0, 'b', '5xx'], [0, 'c', 'success']], 3);
  assert.equal(d.size, 3);
  d.retain(new Set(['b']));
  assert.equal(d.size, 1);
});
