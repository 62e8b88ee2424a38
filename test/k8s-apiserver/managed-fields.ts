// Field ownership (metadata.managedFields, FieldsV1) and server-side apply, following the
// structured-merge-diff model: every manager owns a set of field paths; an apply owns exactly
// the fields it sets, conflicts with another manager owning the same field at another value,
// and removes the fields it stopped applying when nobody else owns them. Paths use the FieldsV1
// element syntax: `f:<field>`, `k:{<list map keys>}` for items of keyed lists, and "." for "the
// element itself is owned".
import type { ListKeys } from './patches';

export interface FieldNode { self: boolean; children: Map<string, FieldNode> }
export interface ManagedFieldsEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: Record<string, unknown>;
  subresource?: string;
}

const isObject = (v: unknown): v is Record<string, any> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Metadata the server owns, never tracked as a manager's field. */
const SERVER_METADATA = new Set(['name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'selfLink']);

function node(self = false): FieldNode { return { self, children: new Map() }; }

function itemKey(item: Record<string, any>, keys: string[]): string {
  const k: Record<string, unknown> = {};
  for (const key of [...keys].sort()) if (item[key] !== undefined) k[key] = item[key];
  return `k:${JSON.stringify(k)}`;
}

/** The fields an object (an applied configuration) sets. `subresource` limits to status. */
export function fieldSetOf(obj: Record<string, any>, listKeys: ListKeys, scope: 'main' | 'status'): FieldNode {
  const root = node();
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'apiVersion' || k === 'kind') continue;
    if (scope === 'status' ? k !== 'status' : k === 'status') continue;
    if (k === 'metadata' && isObject(v)) {
      const meta = node();
      for (const [mk, mv] of Object.entries(v)) {
        if (SERVER_METADATA.has(mk)) continue;
        meta.children.set(`f:${mk}`, valueSet(mv, [mk], listKeys, false));
      }
      if (meta.children.size > 0) root.children.set('f:metadata', meta);
      continue;
    }
    root.children.set(`f:${k}`, valueSet(v, [k], listKeys, false));
  }
  return root;
}

function valueSet(v: unknown, path: string[], listKeys: ListKeys, isItem: boolean): FieldNode {
  if (isObject(v) && Object.keys(v).length > 0) {
    const n = node(isItem);
    for (const [k, cv] of Object.entries(v)) n.children.set(`f:${k}`, valueSet(cv, [...path, k], listKeys, false));
    return n;
  }
  const keys = Array.isArray(v) ? listKeys(path) : undefined;
  if (Array.isArray(v) && keys && v.every(isObject)) {
    const n = node(false);
    for (const item of v) n.children.set(itemKey(item, keys), valueSet(item, path, listKeys, true));
    return n;
  }
  return node(true);
}

export function toFieldsV1(n: FieldNode): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (n.self && n.children.size > 0) out['.'] = {};
  for (const [k, c] of [...n.children.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) out[k] = toFieldsV1(c);
  return out;
}

export function fromFieldsV1(v: Record<string, unknown>): FieldNode {
  const n = node(Object.keys(v).length === 0);
  for (const [k, c] of Object.entries(v)) {
    if (k === '.') n.self = true;
    else n.children.set(k, fromFieldsV1((c ?? {}) as Record<string, unknown>));
  }
  return n;
}

/** Every owned leaf or element path, as lists of path elements. */
export function ownedPaths(n: FieldNode, prefix: string[] = []): string[][] {
  const out: string[][] = [];
  if (n.self && prefix.length > 0) out.push(prefix);
  for (const [k, c] of n.children) out.push(...ownedPaths(c, [...prefix, k]));
  return out;
}

function hasPath(n: FieldNode, path: string[]): boolean {
  let cur: FieldNode | undefined = n;
  for (const p of path) {
    cur = cur.children.get(p);
    if (!cur) return false;
  }
  return cur.self;
}

function removePath(n: FieldNode, path: string[]): void {
  if (path.length === 0) return;
  const child = n.children.get(path[0]);
  if (!child) return;
  if (path.length === 1) {
    if (child.children.size === 0) n.children.delete(path[0]);
    else child.self = false;
    return;
  }
  removePath(child, path.slice(1));
  if (!child.self && child.children.size === 0) n.children.delete(path[0]);
}

function addPath(n: FieldNode, path: string[]): void {
  let cur = n;
  for (const p of path) {
    let next = cur.children.get(p);
    if (!next) {
      next = node();
      cur.children.set(p, next);
    }
    cur = next;
  }
  cur.self = true;
}

/** The value at a FieldsV1 path in an object, or undefined. */
export function valueAt(obj: unknown, path: string[]): unknown {
  let cur: any = obj;
  for (const p of path) {
    if (cur === undefined || cur === null) return undefined;
    if (p.startsWith('f:')) cur = isObject(cur) ? cur[p.slice(2)] : undefined;
    else if (p.startsWith('k:')) {
      const want = JSON.parse(p.slice(2)) as Record<string, unknown>;
      cur = Array.isArray(cur) ? cur.find((i) => isObject(i) && Object.entries(want).every(([k, v]) => i[k] === v)) : undefined;
    } else return undefined;
  }
  return cur;
}

function deleteAt(obj: any, path: string[]): void {
  const parent = valueAt(obj, path.slice(0, -1)) as any;
  const last = path[path.length - 1];
  if (last.startsWith('f:') && isObject(parent)) delete parent[last.slice(2)];
  else if (last.startsWith('k:') && Array.isArray(parent)) {
    const item = valueAt(obj, path);
    const i = parent.indexOf(item);
    if (i >= 0) parent.splice(i, 1);
  }
}

/** Merges an applied configuration into the live object: maps deep, keyed lists by key,
 * everything else replaced. */
export function applyMerge(live: unknown, applied: unknown, listKeys: ListKeys, path: string[] = []): unknown {
  if (!isObject(applied)) {
    const keys = Array.isArray(applied) ? listKeys(path) : undefined;
    if (Array.isArray(applied) && keys && Array.isArray(live)) {
      const out = structuredClone(live);
      for (const item of applied) {
        const i = out.findIndex((c: any) => isObject(c) && keys.every((k) => c[k] === item?.[k]));
        if (i >= 0) out[i] = applyMerge(out[i], item, listKeys, path);
        else out.push(structuredClone(item));
      }
      return out;
    }
    return structuredClone(applied);
  }
  const out: Record<string, any> = isObject(live) ? structuredClone(live) : {};
  for (const [k, v] of Object.entries(applied)) out[k] = applyMerge(out[k], v, listKeys, [...path, k]);
  return out;
}

export interface Conflict { manager: string; field: string }

/** `.data.a`, `.spec.ports[port=80,protocol="TCP"]`: how SSA names a field in conflicts. */
export function pathString(path: string[]): string {
  return path.map((p) => {
    if (p.startsWith('f:')) return `.${p.slice(2)}`;
    if (p.startsWith('k:')) {
      const k = JSON.parse(p.slice(2)) as Record<string, unknown>;
      return `[${Object.entries(k).map(([kk, vv]) => `${kk}=${JSON.stringify(vv)}`).join(',')}]`;
    }
    return p;
  }).join('');
}

export interface ApplyResult { object: Record<string, any>; managedFields: ManagedFieldsEntry[]; conflicts: Conflict[] }

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Server-side apply of `applied` by `manager` onto `live` (undefined when creating). */
export function serverSideApply(
  live: Record<string, any> | undefined,
  applied: Record<string, any>,
  manager: string,
  force: boolean,
  scope: 'main' | 'status',
  apiVersion: string,
  listKeys: ListKeys,
  now: string,
): ApplyResult {
  const entries = ((live?.metadata?.managedFields ?? []) as ManagedFieldsEntry[]).map((e) => ({ ...e, set: fromFieldsV1(e.fieldsV1 ?? {}) }));
  const subresource = scope === 'status' ? 'status' : undefined;
  const mine = entries.find((e) => e.manager === manager && e.operation === 'Apply' && e.subresource === subresource);
  const newSet = fieldSetOf(applied, listKeys, scope);
  const conflicts: Conflict[] = [];
  for (const path of ownedPaths(newSet)) {
    if (path[path.length - 1].startsWith('k:')) continue;
    const liveValue = valueAt(live, path);
    const appliedValue = valueAt(applied, path);
    if (sameValue(liveValue, appliedValue)) continue;
    for (const e of entries) {
      if (e === mine || !hasPath(e.set, path)) continue;
      if (force) removePath(e.set, path);
      else conflicts.push({ manager: e.manager, field: pathString(path) });
    }
  }
  if (conflicts.length > 0) return { object: live ?? applied, managedFields: live?.metadata?.managedFields ?? [], conflicts };

  const base = structuredClone(live ?? { apiVersion: applied.apiVersion, kind: applied.kind, metadata: {} });
  const merged = applyMerge(base, applied, listKeys) as Record<string, any>;
  // Fields this manager applied before and no longer applies go, unless someone else owns them.
  if (mine) {
    for (const path of ownedPaths(mine.set)) {
      if (hasPath(newSet, path)) continue;
      if (entries.some((e) => e !== mine && hasPath(e.set, path))) continue;
      deleteAt(merged, path);
    }
  }
  const others = entries.filter((e) => e !== mine);
  const result: (ManagedFieldsEntry & { set: FieldNode })[] = [...others];
  result.push({ manager, operation: 'Apply', apiVersion, time: now, fieldsType: 'FieldsV1', fieldsV1: {}, ...(subresource ? { subresource } : {}), set: newSet });
  return { object: merged, managedFields: finish(result, merged), conflicts: [] };
}

/** Ownership after a non-apply write (create, update, patch): the writer takes every field
 * whose value it changed; others lose those fields; fields that are gone leave every set. */
export function recordUpdate(
  old: Record<string, any> | undefined,
  next: Record<string, any>,
  manager: string,
  scope: 'main' | 'status',
  apiVersion: string,
  listKeys: ListKeys,
  now: string,
): ManagedFieldsEntry[] {
  const entries = ((old?.metadata?.managedFields ?? []) as ManagedFieldsEntry[]).map((e) => ({ ...e, set: fromFieldsV1(e.fieldsV1 ?? {}) }));
  const subresource = scope === 'status' ? 'status' : undefined;
  const changed = ownedPaths(fieldSetOf(next, listKeys, scope)).filter((p) => !sameValue(valueAt(old, p), valueAt(next, p)));
  if (changed.length === 0) return finish(entries, next);
  let mine = entries.find((e) => e.manager === manager && e.operation === 'Update' && e.subresource === subresource);
  for (const e of entries) if (e !== mine) for (const p of changed) removePath(e.set, p);
  if (!mine) {
    mine = { manager, operation: 'Update', apiVersion, time: now, fieldsType: 'FieldsV1', fieldsV1: {}, ...(subresource ? { subresource } : {}), set: node() };
    entries.push(mine);
  }
  mine.time = now;
  for (const p of changed) {
    addPath(mine.set, p);
    // A map or list an update creates below the top level is owned as a whole too ("." in
    // FieldsV1), as the real server records for labels, conditions and the like.
    for (let i = 2; i < p.length; i++) {
      const prefix = p.slice(0, i);
      if (valueAt(old, prefix) === undefined && typeof valueAt(next, prefix) === 'object') addPath(mine.set, prefix);
    }
  }
  return finish(entries, next);
}

function finish(entries: (ManagedFieldsEntry & { set: FieldNode })[], obj: Record<string, any>): ManagedFieldsEntry[] {
  const out: ManagedFieldsEntry[] = [];
  for (const e of entries) {
    for (const p of ownedPaths(e.set)) if (valueAt(obj, p) === undefined) removePath(e.set, p);
    if (e.set.children.size === 0) continue;
    const { set, ...rest } = e;
    const entry: ManagedFieldsEntry = { manager: rest.manager, operation: rest.operation, apiVersion: rest.apiVersion, time: rest.time, fieldsType: 'FieldsV1', fieldsV1: toFieldsV1(set) };
    if (rest.subresource) entry.subresource = rest.subresource;
    out.push(entry);
  }
  return out;
}
