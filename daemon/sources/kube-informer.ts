// One kind, listed and watched with @kubernetes/client-node 1.x's ListWatch, with the gaps of
// that informer filled (read in node_modules/@kubernetes/client-node/dist/cache.js, watch.js):
//  - it lists once with whatever listFn returns: our listFn paginates (limit/continue) and, when
//    a continue token expires (410), lists again from the start;
//  - it never asks for bookmarks nor a server-side timeout: our Watch adds allowWatchBookmarks
//    and a randomised timeoutSeconds (client-go's 5-10 min), and ListWatch already moves its
//    resourceVersion forward on BOOKMARK events;
//  - on any error but 410 it stops for good (error callback, no retry): we restart it with
//    exponential backoff and jitter, and a watch that ends at once (a server dropping
//    connections) waits before the next one instead of spinning;
//  - its watch has no client-side timeout (the AbortSignal.timeout it builds is overwritten),
//    so a server that vanished without closing the connection would hang it forever: our
//    Watch aborts a stream that has been silent longer than its timeoutSeconds plus a margin;
//  - objects missing metadata would throw inside its list handling (an unhandled rejection):
//    every object is validated and converted (convert.ts) before ListWatch sees it, bad ones
//    are reported and skipped, and it caches only the trimmed objects;
//  - it has no "synced" signal: the first watch call after a list means the list is applied.
// A 410 Gone (HTTP status, or an ERROR event with code 410) makes ListWatch relist; the relist
// is diffed against its cache, so deletions missed while away come out as deletes.
import { ListWatch, Watch } from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ResourceKind } from '../state/resources';
import type { SkippedObject, SourceChange } from './source';
import { ObjectValidator, convertObject, describeObject } from './convert';
import { ApiRequestError, KubeHttp } from './kube-client';
import { KubeSourceErrors } from '../errors';
import { boundedError } from './source';

export interface KindSpec {
  kind: ResourceKind;
  apiVersion: string;
  /** Collection path, e.g. /api/v1/pods or /apis/discovery.k8s.io/v1/endpointslices. */
  path: string;
  fieldSelector?: string;
}

export interface InformerTuning {
  pageSize: number;
  backoff: { initialMs: number; maxMs: number };
  /** The server-side watch timeout for each new watch, in seconds. */
  watchTimeoutSeconds: () => number;
  /** Extra silence tolerated past timeoutSeconds before a watch is presumed dead. */
  watchIdleMarginMs: number;
}

export const DEFAULT_TUNING: InformerTuning = Object.freeze({
  pageSize: 500,
  backoff: { initialMs: 500, maxMs: 30_000 },
  watchTimeoutSeconds: () => 300 + Math.floor(Math.random() * 300),
  watchIdleMarginMs: 30_000,
});

export interface InformerEvents {
  changes(c: SourceChange[]): void;
  skipped(s: SkippedObject): void;
  /** The first complete list of this kind is applied (once per informer). */
  synced(): void;
  /** A list or watch failed; the informer retries by itself. */
  failed(err: Error & { statusCode?: number }): void;
}

type WatchCallback = (phase: string, apiObj: any, watchObj?: any) => void;
type DoneCallback = (err: any) => void;

function backoffDelay(attempt: number, b: { initialMs: number; maxMs: number }): number {
  const base = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(attempt, 20));
  return base / 2 + Math.random() * (base / 2);
}

export class KindInformer {
  private readonly lw: ListWatch<KubernetesObject>;
  private readonly inner: Watch;
  private stopped = false;
  private listedSinceWatch = false;
  private hasSynced = false;
  private failures = 0;
  private retry: NodeJS.Timeout | undefined;
  private lastWatchStart = 0;
  private lastWatchEvents = 0;

  constructor(private readonly spec: KindSpec, private readonly http: KubeHttp, private readonly validate: ObjectValidator,
    private readonly events: InformerEvents, private readonly log: Logger, private readonly tuning: InformerTuning = DEFAULT_TUNING) {
    this.inner = new Watch(http.kc);
    const watch = { watch: (p: string, q: Record<string, unknown>, cb: WatchCallback, done: DoneCallback) => this.watch(p, q, cb, done) } as unknown as Watch;
    this.lw = new ListWatch<KubernetesObject>(spec.path, watch, () => this.list(), false, undefined, spec.fieldSelector);
    this.lw.on('add', (o) => this.events.changes([{ op: 'upsert', resource: o as never }]));
    this.lw.on('update', (o) => this.events.changes([{ op: 'upsert', resource: o as never }]));
    this.lw.on('delete', (o) => this.events.changes([{ op: 'delete', kind: spec.kind, namespace: o.metadata?.namespace, name: o.metadata?.name ?? '' }]));
    this.lw.on('error', (e) => this.onError(e as Error & { statusCode?: number }));
  }

  get synced(): boolean { return this.hasSynced; }

  start(): void {
    this.lw.start().catch((e: Error) => this.onError(e));
  }

  /** Stops watching; returns the objects it knew, so the caller can drop them. */
  stop(): KubernetesObject[] {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    void this.lw.stop();
    return [...this.lw.list()];
  }

  private onError(e: Error & { statusCode?: number; name?: string }): void {
    if (this.stopped) return; // our own abort
    this.failures++;
    this.events.failed(e);
    if (this.stopped) return; // the source dropped this kind (its CRD went away)
    const delay = backoffDelay(this.failures - 1, this.tuning.backoff);
    const status = e.statusCode ? `HTTP ${e.statusCode}` : (e as NodeJS.ErrnoException).code ?? 'no answer';
    const err = KubeSourceErrors.NODEMESH_E_KUBE_API({ resource: this.spec.path, status, reason: boundedError(e.message ?? String(e)) });
    this.log.warn({ kind: this.spec.kind, code: err.code, retryInMs: Math.round(delay), failures: this.failures }, err.message);
    this.retry = setTimeout(() => { this.retry = undefined; if (!this.stopped) this.start(); }, delay);
    this.retry.unref?.();
  }

  /** Converts one object; undefined when it is skipped (reported). */
  private convert(raw: unknown): KubernetesObject | undefined {
    const withKind = typeof raw === 'object' && raw !== null ? { kind: this.spec.kind, apiVersion: this.spec.apiVersion, ...raw } : raw;
    let c;
    try {
      c = convertObject(withKind, this.validate);
    } catch (e) {
      c = { ok: false as const, kind: this.spec.kind, object: describeObject(withKind), reason: 'malformed' as const, error: (e as Error).message };
    }
    if (c === null) return undefined;
    if (c.ok) return c.resource as unknown as KubernetesObject;
    this.events.skipped({ kind: c.kind, object: c.object, reason: c.reason, error: c.error });
    return undefined;
  }

  /** Every page of the collection, converted; an expired continue token restarts the list. */
  private async list(): Promise<{ metadata: { resourceVersion: string }; items: KubernetesObject[] }> {
    for (let attempt = 0; ; attempt++) {
      const items: KubernetesObject[] = [];
      let rv = '';
      let cont: string | undefined;
      try {
        do {
          const page = await this.http.listPage(this.spec.path, {
            limit: String(this.tuning.pageSize), continue: cont, fieldSelector: this.spec.fieldSelector,
          });
          if (!cont) rv = page.resourceVersion;
          for (const raw of page.items) {
            const o = this.convert(raw);
            if (o) items.push(o);
          }
          cont = page.continue;
        } while (cont && !this.stopped);
      } catch (e) {
        if (e instanceof ApiRequestError && e.statusCode === 410 && attempt < 2) {
          this.log.info({ kind: this.spec.kind }, 'list continue token expired; listing again from the start');
          continue;
        }
        throw e;
      }
      this.listedSinceWatch = true;
      return { metadata: { resourceVersion: rv }, items };
    }
  }

  private async watch(path: string, query: Record<string, unknown>, cb: WatchCallback, done: DoneCallback): Promise<AbortController> {
    if (this.listedSinceWatch) {
      this.listedSinceWatch = false;
      this.failures = 0;
      if (!this.hasSynced) { this.hasSynced = true; this.events.synced(); }
    }
    // A watch that ended at once without a single event: do not hammer the server.
    if (Date.now() - this.lastWatchStart < 1000 && this.lastWatchEvents === 0) {
      await new Promise((r) => setTimeout(r, backoffDelay(Math.min(this.failures++, 6), this.tuning.backoff)));
    }
    const ctl = new AbortController();
    if (this.stopped) return ctl;
    this.lastWatchStart = Date.now();
    this.lastWatchEvents = 0;
    const timeoutSeconds = this.tuning.watchTimeoutSeconds();
    const idleMs = timeoutSeconds * 1000 + this.tuning.watchIdleMarginMs;
    let inner: AbortController | undefined;
    let idle: NodeJS.Timeout | undefined;
    let finished = false;
    const arm = () => {
      if (idle) clearTimeout(idle);
      idle = setTimeout(() => {
        this.log.warn({ kind: this.spec.kind, idleMs }, 'watch silent past its timeout; reconnecting');
        finish(Object.assign(new Error(`watch of ${this.spec.kind} silent for ${idleMs} ms`), { statusCode: 0 }));
      }, idleMs);
      idle.unref?.();
    };
    const finish = (err: unknown) => {
      if (finished) return;
      finished = true;
      if (idle) clearTimeout(idle);
      inner?.abort();
      done(err);
    };
    ctl.signal.addEventListener('abort', () => { finished = true; if (idle) clearTimeout(idle); inner?.abort(); });
    arm();
    const onEvent: WatchCallback = (phase, obj, whole) => {
      if (finished) return;
      this.lastWatchEvents++;
      arm();
      if (phase === 'BOOKMARK' || phase === 'ERROR') {
        if (phase === 'ERROR') this.log.info({ kind: this.spec.kind, code: obj?.code, reason: obj?.reason }, 'watch ended by the server with an error event');
        cb(phase, obj, whole);
        return;
      }
      const rv = obj?.metadata?.resourceVersion;
      const converted = phase === 'DELETED' ? this.deletedStub(obj) : this.convert(obj);
      if (converted) cb(phase, converted, whole);
      // Skipped: still move the resourceVersion on, so a reconnect does not replay it.
      else if (typeof rv === 'string') cb('BOOKMARK', { metadata: { resourceVersion: rv } }, whole);
    };
    try {
      inner = await this.inner.watch(path, { ...query, allowWatchBookmarks: true, timeoutSeconds }, onEvent, finish);
      if (finished) inner.abort();
    } catch (e) {
      finish(e);
    }
    return ctl;
  }

  /** A delete needs only the object's name (and must happen even if the last version is invalid). */
  private deletedStub(obj: any): KubernetesObject | undefined {
    const m = obj?.metadata;
    if (typeof m?.name !== 'string' || !m.name) {
      this.events.skipped({ kind: this.spec.kind, object: describeObject({ kind: this.spec.kind, ...obj }), reason: 'malformed', error: 'DELETED event without metadata.name' });
      return undefined;
    }
    return { kind: this.spec.kind, apiVersion: this.spec.apiVersion, metadata: { name: m.name, namespace: typeof m.namespace === 'string' ? m.namespace : undefined, resourceVersion: m.resourceVersion } };
  }
}
