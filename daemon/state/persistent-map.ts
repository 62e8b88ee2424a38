// An immutable map with cheap updates (a hash array mapped trie over string keys): set and
// delete return a new map that shares every untouched branch with the old one, in
// O(log32 n). The state snapshot is built from these so that one watch event costs what it
// touches, not a copy of the cluster, while readers keep a frozen, synchronous view.

type Node<V> = Leaf<V> | Branch<V> | Collision<V>;
interface Leaf<V> { readonly t: 0; readonly hash: number; readonly key: string; readonly value: V }
interface Branch<V> { readonly t: 1; readonly bitmap: number; readonly children: readonly Node<V>[] }
interface Collision<V> { readonly t: 2; readonly hash: number; readonly leaves: readonly Leaf<V>[] }

const BITS = 5;
const MASK = (1 << BITS) - 1;
/** Below this depth every hash bit is used: equal hashes become a collision node. */
const MAX_SHIFT = 30;

/** FNV-1a, 32 bits. */
function hashOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

function fragment(hash: number, shift: number): number {
  return (hash >>> shift) & MASK;
}

function getIn<V>(node: Node<V> | undefined, hash: number, key: string): Leaf<V> | undefined {
  let shift = 0;
  while (node) {
    if (node.t === 0) return node.key === key ? node : undefined;
    if (node.t === 2) return node.hash === hash ? node.leaves.find((l) => l.key === key) : undefined;
    const bit = 1 << fragment(hash, shift);
    if ((node.bitmap & bit) === 0) return undefined;
    node = node.children[popcount(node.bitmap & (bit - 1))];
    shift += BITS;
  }
  return undefined;
}

function merge<V>(a: Leaf<V>, b: Leaf<V>, shift: number): Node<V> {
  if (a.hash === b.hash || shift > MAX_SHIFT) return { t: 2, hash: a.hash, leaves: [a, b] };
  const fa = fragment(a.hash, shift);
  const fb = fragment(b.hash, shift);
  if (fa === fb) return { t: 1, bitmap: 1 << fa, children: [merge(a, b, shift + BITS)] };
  return { t: 1, bitmap: (1 << fa) | (1 << fb), children: fa < fb ? [a, b] : [b, a] };
}

/** Returns the new node, or the same node when nothing changed. */
function setIn<V>(node: Node<V> | undefined, leaf: Leaf<V>, shift: number, added: { n: number }): Node<V> {
  if (!node) { added.n = 1; return leaf; }
  if (node.t === 0) {
    if (node.key === leaf.key) return node.value === leaf.value ? node : leaf;
    added.n = 1;
    return merge(node, leaf, shift);
  }
  if (node.t === 2) {
    if (node.hash !== leaf.hash) {
      // Different hashes always differ in some fragment at or above MAX_SHIFT: push the
      // collision one level down and insert beside it.
      return setIn({ t: 1, bitmap: 1 << fragment(node.hash, shift), children: [node] }, leaf, shift, added);
    }
    const i = node.leaves.findIndex((l) => l.key === leaf.key);
    if (i >= 0) {
      if (node.leaves[i].value === leaf.value) return node;
      const leaves = node.leaves.slice();
      leaves[i] = leaf;
      return { t: 2, hash: node.hash, leaves };
    }
    added.n = 1;
    return { t: 2, hash: node.hash, leaves: [...node.leaves, leaf] };
  }
  const bit = 1 << fragment(leaf.hash, shift);
  const idx = popcount(node.bitmap & (bit - 1));
  if ((node.bitmap & bit) === 0) {
    added.n = 1;
    const children = node.children.slice();
    children.splice(idx, 0, leaf);
    return { t: 1, bitmap: node.bitmap | bit, children };
  }
  const child = node.children[idx];
  const next = setIn(child, leaf, shift + BITS, added);
  if (next === child) return node;
  const children = node.children.slice();
  children[idx] = next;
  return { t: 1, bitmap: node.bitmap, children };
}

const REMOVED = Symbol('removed');

/** Returns the new node (undefined when empty), or the same node when the key was absent. */
function removeIn<V>(node: Node<V>, hash: number, key: string, shift: number): Node<V> | undefined | typeof REMOVED {
  if (node.t === 0) return node.key === key ? REMOVED : node;
  if (node.t === 2) {
    const leaves = node.leaves.filter((l) => l.key !== key);
    if (leaves.length === node.leaves.length) return node;
    return leaves.length === 1 ? leaves[0] : { t: 2, hash: node.hash, leaves };
  }
  const bit = 1 << fragment(hash, shift);
  if ((node.bitmap & bit) === 0) return node;
  const idx = popcount(node.bitmap & (bit - 1));
  const child = node.children[idx];
  const next = removeIn(child, hash, key, shift + BITS);
  if (next === child) return node;
  if (next === REMOVED || next === undefined) {
    if (node.children.length === 1) return REMOVED;
    const children = node.children.slice();
    children.splice(idx, 1);
    const bitmap = node.bitmap & ~bit;
    // A branch left with one leaf collapses into it, keeping lookups short.
    if (children.length === 1 && children[0].t !== 1) return children[0];
    return { t: 1, bitmap, children };
  }
  const children = node.children.slice();
  children[idx] = next;
  if (children.length === 1 && next.t !== 1) return next;
  return { t: 1, bitmap: node.bitmap, children };
}

function* walk<V>(node: Node<V> | undefined): Generator<Leaf<V>> {
  if (!node) return;
  if (node.t === 0) { yield node; return; }
  if (node.t === 2) { yield* node.leaves; return; }
  for (const c of node.children) yield* walk(c);
}

export class PersistentMap<V> implements ReadonlyMap<string, V> {
  private static readonly EMPTY = new PersistentMap<never>(undefined, 0);

  private constructor(private readonly root: Node<V> | undefined, readonly size: number) {
    Object.freeze(this);
  }

  static empty<V>(): PersistentMap<V> {
    return PersistentMap.EMPTY as unknown as PersistentMap<V>;
  }

  static from<V>(entries: Iterable<readonly [string, V]>): PersistentMap<V> {
    let m = PersistentMap.empty<V>();
    for (const [k, v] of entries) m = m.set(k, v);
    return m;
  }

  get(key: string): V | undefined {
    return getIn(this.root, hashOf(key), key)?.value;
  }

  has(key: string): boolean {
    return getIn(this.root, hashOf(key), key) !== undefined;
  }

  /** A map with key set to value; this map itself when value is already there (===). */
  set(key: string, value: V): PersistentMap<V> {
    const added = { n: 0 };
    const root = setIn(this.root, { t: 0, hash: hashOf(key), key, value }, 0, added);
    return root === this.root ? this : new PersistentMap(root, this.size + added.n);
  }

  /** A map without key; this map itself when the key is absent. */
  delete(key: string): PersistentMap<V> {
    if (!this.root) return this;
    const root = removeIn(this.root, hashOf(key), key, 0);
    if (root === this.root) return this;
    return root === REMOVED || root === undefined ? PersistentMap.empty<V>() : new PersistentMap(root, this.size - 1);
  }

  /** Set when value is defined, delete otherwise. */
  put(key: string, value: V | undefined): PersistentMap<V> {
    return value === undefined ? this.delete(key) : this.set(key, value);
  }

  *entries(): MapIterator<[string, V]> {
    for (const l of walk(this.root)) yield [l.key, l.value];
  }

  *keys(): MapIterator<string> {
    for (const l of walk(this.root)) yield l.key;
  }

  *values(): MapIterator<V> {
    for (const l of walk(this.root)) yield l.value;
  }

  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  forEach(cb: (value: V, key: string, map: ReadonlyMap<string, V>) => void): void {
    for (const l of walk(this.root)) cb(l.value, l.key, this);
  }
}
