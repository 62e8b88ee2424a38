// The side-by-side bench's pure parts: its options and its cluster manifest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareManifest, parseCompareArgs } from './mesh-compare';

test('parseCompareArgs: every mode by default; --modes picks some, in report order; bad names are refused', () => {
  assert.deepEqual(parseCompareArgs([]).modes, ['plain', 'sidecar', 'haproxy', 'ambient', 'waypoint']);
  assert.deepEqual(parseCompareArgs(['--quick', '--modes', 'waypoint,ambient']).modes, ['ambient', 'waypoint']);
  assert.throws(() => parseCompareArgs(['--modes', 'ambient,istio']), /--modes takes a comma-separated list of plain, sidecar, haproxy, ambient, waypoint \(got ambient,istio\)/);
  assert.throws(() => parseCompareArgs(['--modes']), /--modes needs a value/);
});

test('compareManifest: the waypoint namespace is ambient and uses its waypoint; the same apps as every mode', () => {
  const m = compareManifest({ sleepSeconds: 60 });
  assert.match(m, /name: waypoint\n  labels:\n    nodemesh\.io\/dataplane-mode: ambient\n    nodemesh\.io\/use-waypoint: waypoint\n/);
  assert.match(m, /name: ambient\n  labels:\n    nodemesh\.io\/dataplane-mode: ambient\n---/);
  assert.match(m, /kind: Namespace\nmetadata:\n  name: plain\n---/);
  for (const ns of ['plain', 'sidecar', 'haproxy', 'ambient', 'waypoint']) {
    for (const pod of ['client', 'server', 'server-local']) assert.match(m, new RegExp(`name: ${pod}\\n  namespace: ${ns}\\n`), `${ns}/${pod}`);
  }
});
