import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseBackend } from './backend-choice';
import type { WeightedBackend } from './route-model';

const b = (name: string, weight: number): WeightedBackend => ({ namespace: 'shop', name, port: 80, weight, filters: [] });

test('weighted choice: each backend owns its share of the weight line', () => {
  const rule = { backends: [b('v1', 90), b('v2', 10)], invalidBackends: [] };
  const table: [number, string][] = [[0, 'v1'], [0.5, 'v1'], [0.8999, 'v1'], [0.9, 'v2'], [0.95, 'v2'], [0.999999, 'v2']];
  for (const [r, want] of table) {
    const c = chooseBackend(rule, () => r);
    assert.equal(c.kind === 'backend' && c.backend.name, want, `random ${r}`);
  }
});

test('weight 0 is never chosen; no weight at all, or no backends, is none', () => {
  const rule = { backends: [b('off', 0), b('on', 1)], invalidBackends: [] };
  for (const r of [0, 0.5, 0.99]) { const c = chooseBackend(rule, () => r); assert.equal(c.kind === 'backend' && c.backend.name, 'on'); }
  assert.equal(chooseBackend({ backends: [b('off', 0)], invalidBackends: [] }, () => 0).kind, 'none');
  assert.equal(chooseBackend({ backends: [], invalidBackends: [] }, () => 0).kind, 'none');
});

test('an invalid backendRef keeps its share, which answers 500', () => {
  const rule = { backends: [b('ok', 1)], invalidBackends: [{ weight: 3, reason: 'InvalidKind' as const, message: 'x' }] };
  assert.equal(chooseBackend(rule, () => 0.1).kind, 'backend');
  assert.equal(chooseBackend(rule, () => 0.3).kind, 'invalid');
});

test('over many draws the split follows the weights', () => {
  let seed = 42;
  const lcg = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
  const rule = { backends: [b('v1', 90), b('v2', 10)], invalidBackends: [] };
  let v2 = 0;
  for (let i = 0; i < 10_000; i++) { const c = chooseBackend(rule, lcg); if (c.kind === 'backend' && c.backend.name === 'v2') v2++; }
  assert.ok(v2 > 850 && v2 < 1150, `v2 got ${v2} of 10000`);
});
