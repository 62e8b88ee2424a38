import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReleaseAfterDrop } from './memory-release';

test('memory is released once after most of a large peak of connections closed, not for small ones', () => {
  let t = 0;
  let released = 0;
  const r = new ReleaseAfterDrop(() => { released++; }, { minPeak: 1000, dropTo: 0.25, minIntervalMs: 30_000 }, () => t);
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
