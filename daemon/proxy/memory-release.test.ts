import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReleaseAfterDrop } from './memory-release';

test('memory is released once after most of a large peak of connections closed, not for small ones', () => {
  let t = 0;
  let released = 0;
  const r = new ReleaseAfterDrop(() => { released++; }, { minPeak: 1000, dropTo: 0.25, minIntervalMs: 30_000, maxDeferMs: 300_000 }, () => t);
  const run = (samples: number[]) => samples.map((n) => { t += 2000; return r.observe(n); });
  assert.deepEqual(run([10, 500, 900, 0]), [false, false, false, false], 'a peak under 1,000 never releases');
  assert.deepEqual(run([2000, 5000, 4000, 1300, 1200]), [false, false, false, false, true], 'released once open <= a quarter of the peak');
  assert.equal(released, 1);
  assert.deepEqual(run([0, 0]), [false, false], 'the peak restarts from what was open at the release');
  assert.deepEqual(run([3000, 100]), [false, false], 'not again within the minimum interval');
  t += 30_000;
  assert.deepEqual(run([3000, 100]), [false, true], 'again after it, for a new peak');
  assert.equal(released, 2);
});

test('a due release waits while the daemon is busy, and happens anyway after maxDeferMs', () => {
  let t = 0;
  let released = 0;
  const r = new ReleaseAfterDrop(() => { released++; }, { minPeak: 1000, dropTo: 0.25, minIntervalMs: 30_000, maxDeferMs: 10_000 }, () => t);
  const step = (open: number, busy: boolean) => { t += 2000; return r.observe(open, busy); };
  assert.equal(step(5000, true), false);
  assert.deepEqual([step(100, true), step(100, true), step(100, false)], [false, false, true], 'released at the first quiet sample');
  assert.equal(released, 1);
  t += 30_000;
  assert.equal(step(5000, true), false);
  const busyRun = Array.from({ length: 6 }, () => step(100, true));
  assert.deepEqual(busyRun, [false, false, false, false, false, true], 'never quiet: released once maxDeferMs passed since it became due');
  assert.equal(released, 2);
  t += 30_000;
  assert.deepEqual([5000, 100, 100, 100, 3000, 100, 100].map((n) => step(n, true)), [false, false, false, false, false, false, false],
    'the deferral restarts when open rose above the drop again in between');
});
