// The storage layer, shaped like etcd behind a watch cache: one global revision counter
// across every resource (so resourceVersion is comparable only as etcd's revision is), a
// bounded history of change events that watches replay from, compaction that makes older
// revisions unreachable (410 Gone), and lists at an exact past revision rebuilt from history.
import type { KubeObject } from './resource-types';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoredEvent {
  rv: number;
  /** resourceKey(): `/pods`, `apps/deployments`. */
  resource: string;
  type: EventType;
  object: KubeObject;
  /** The object before this change (MODIFIED, DELETED): watches with selectors need it. */
  prev?: KubeObject;
}

export function objectKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

function keyOf(obj: KubeObject): string {
  return objectKey(obj.metadata.namespace, obj.metadata.name);
}

export class ObjectStore {
  private rev: number;
  private compacted: number;
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private readonly history: StoredEvent[] = [];
  private readonly listeners = new Set<(e: StoredEvent) => void>();

  /** historyLimit: how many events the window keeps before the oldest fall out (etcd's
   * compaction plus the watch cache's capacity, in one number). */
  constructor(private readonly historyLimit: number, initialRevision: number) {
    this.rev = initialRevision;
    this.compacted = initialRevision;
  }

  get revision(): number { return this.rev; }
  /** Revisions at or below this are gone: a watch or exact list from before it gets 410. */
  get compactedRevision(): number { return this.compacted; }

  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const o = this.objects.get(resource)?.get(objectKey(namespace, name));
    return o === undefined ? undefined : structuredClone(o);
  }

  /** Current objects of a resource (optionally one namespace), sorted by key as etcd lists them. */
  list(resource: string, namespace?: string): KubeObject[] {
    return this.sorted([...(this.objects.get(resource)?.values() ?? [])].filter((o) => namespace === undefined || o.metadata.namespace === namespace));
  }

  /** The objects as they were at revision `rv` (compactedRevision <= rv <= revision). */
  listAt(resource: string, rv: number, namespace?: string): KubeObject[] {
    const state = new Map<string, KubeObject>();
    for (const o of this.objects.get(resource)?.values() ?? []) state.set(keyOf(o), o);
    for (let i = this.history.length - 1; i >= 0 && this.history[i].rv > rv; i--) {
      const e = this.history[i];
      if (e.resource !== resource) continue;
      if (e.type === 'ADDED') state.delete(keyOf(e.object));
      else state.set(keyOf(e.prev!), e.prev!);
    }
    return this.sorted([...state.values()].filter((o) => namespace === undefined || o.metadata.namespace === namespace));
  }

  private sorted(objs: KubeObject[]): KubeObject[] {
    return objs
      .map((o) => [keyOf(o), o] as const)
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .map(([, o]) => structuredClone(o));
  }

  /** Stores a new or changed object at the next revision and tells the watches. */
  write(resource: string, obj: KubeObject): KubeObject {
    const bucket = this.bucket(resource);
    const key = keyOf(obj);
    const prev = bucket.get(key);
    const stored = structuredClone(obj);
    stored.metadata.resourceVersion = String(++this.rev);
    bucket.set(key, stored);
    this.record({ rv: this.rev, resource, type: prev ? 'MODIFIED' : 'ADDED', object: stored, prev });
    return structuredClone(stored);
  }

  /** Removes an object; its DELETED event carries the deletion's revision, as etcd's does. */
  remove(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const bucket = this.bucket(resource);
    const key = objectKey(namespace, name);
    const prev = bucket.get(key);
    if (!prev) return undefined;
    bucket.delete(key);
    const gone = structuredClone(prev);
    gone.metadata.resourceVersion = String(++this.rev);
    this.record({ rv: this.rev, resource, type: 'DELETED', object: gone, prev });
    return structuredClone(gone);
  }

  /** Events of one resource after revision `rv`, oldest first. Caller checks compaction. */
  eventsAfter(resource: string, rv: number): StoredEvent[] {
    let i = this.history.length;
    while (i > 0 && this.history[i - 1].rv > rv) i--;
    return this.history.slice(i).filter((e) => e.resource === resource);
  }

  /** Forgets history up to `upTo` (default: everything so far), as `etcdctl compact` plus a
   * restarted watch cache would: watches and exact lists from before it get 410. */
  compact(upTo = this.rev): void {
    const target = Math.min(upTo, this.rev);
    while (this.history.length > 0 && this.history[0].rv <= target) this.history.shift();
    this.compacted = Math.max(this.compacted, target);
  }

  subscribe(fn: (e: StoredEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  resources(): string[] {
    return [...this.objects.keys()];
  }

  private bucket(resource: string): Map<string, KubeObject> {
    let b = this.objects.get(resource);
    if (!b) {
      b = new Map();
      this.objects.set(resource, b);
    }
    return b;
  }

  private record(e: StoredEvent): void {
    this.history.push(e);
    while (this.history.length > this.historyLimit) {
      const dropped = this.history.shift()!;
      this.compacted = Math.max(this.compacted, dropped.rv);
    }
    for (const l of [...this.listeners]) l(e);
  }
}
