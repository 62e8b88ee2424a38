import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PersistentMap } from './persistent-map';

test('persistent map: agrees with Map through random sets and deletes, and old versions never change', () => {
  let seed = 42;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const ref = new Map<string, number>();
  let m = PersistentMap.empty<number>();
  const checkpoints: [PersistentMap<number>, Map<string, number>][] = [];
  for (let i = 0; i < 20000; i++) {
    const k = `ns-${rnd(50)}/pod-${rnd(400)}`;
    if (rnd(3) === 0) { ref.delete(k); m = m.delete(k); } else { const v = rnd(1000); ref.set(k, v); m = m.set(k, v); }
    if (i % 2500 === 0) checkpoints.push([m, new Map(ref)]);
  }
  assert.equal(m.size, ref.size);
  for (const [k, v] of ref) assert.equal(m.get(k), v);
  assert.deepEqual(new Map(m), ref);
  assert.equal([...m.keys()].length, ref.size);
  for (const [old, expected] of checkpoints) assert.deepEqual(new Map(old), expected);
});

test('persistent map: no-op updates return the same map; delete to empty; put', () => {
  const a = PersistentMap.from([['x', 1], ['y', 2]]);
  assert.equal(a.set('x', 1), a);
  assert.equal(a.delete('nope'), a);
  const b = a.delete('x').delete('y');
  assert.equal(b.size, 0);
  assert.equal(b.get('x'), undefined);
  assert.equal(a.put('x', undefined).has('x'), false);
  assert.equal(a.put('z', 3).get('z'), 3);
  assert.equal(a.size, 2);
  assert.ok(Object.isFrozen(a));
  const seen: string[] = [];
  a.forEach((v, k) => seen.push(`${k}=${v}`));
  assert.deepEqual(seen.sort(), ['x=1', 'y=2']);
});

test('persistent map: keys with equal hashes (FNV-1a collisions) live side by side', () => {
  const pairs = [['k32728', 'k261234'], ['k32729', 'k261235'], ['k32724', 'k261238']];
  let m = PersistentMap.empty<string>();
  for (const [a, b] of pairs) m = m.set(a, a).set(b, b);
  for (const [a, b] of pairs) { assert.equal(m.get(a), a); assert.equal(m.get(b), b); }
  assert.equal(m.size, 6);
  const changed = m.set('k32728', 'new');
  assert.equal(changed.get('k32728'), 'new');
  assert.equal(changed.get('k261234'), 'k261234');
  assert.equal(m.get('k32728'), 'k32728');
  let d = m.delete('k261234');
  assert.equal(d.get('k32728'), 'k32728');
  assert.equal(d.has('k261234'), false);
  assert.equal(d.size, 5);
  for (const [a, b] of pairs) d = d.delete(a).delete(b);
  assert.equal(d.size, 0);
  assert.deepEqual([...m.keys()].sort(), pairs.flat().sort());
});
