// One resource kind, listed and watched into a local cache (client-node 1.x ListWatch), with
// what that informer lacks for a long-running controller: it stops for good on any error but
// 410, so it is restarted here with exponential backoff and jitter (the API server away, a CRD
// not installed yet); a watch that ends at once waits before the next one instead of spinning;
// watches ask for bookmarks and a server-side timeout; a malformed object (no metadata, no
// name) is reported with its reason and skipped, never cached and never a crash. A 410 makes
// ListWatch relist and diff against its cache, so deletions missed while away still arrive.
// (daemon/sources/kube-informer.ts on the kube-source branch fills the same gaps for the node's
// state source; once both are on main this should become one informer.)
import { ListWatch, Watch, type KubeConfig, type KubernetesObject, type KubernetesListObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { kubeRequest, statusMessage } from '../identity/kube-rest';
import { keyOf, metadataProblem, type KubeObject } from './kube-object';

export interface ResourceCacheOptions {
  /** Collection path over all namespaces, e.g. /apis/gateway.networking.k8s.io/v1/gateways. */
  path: string;
  labelSelector?: string;
  onChange: () => void;
  onMalformed: (what: { path: string; name?: string; namespace?: string; reason: string }) => void;
  log: Logger;
  backoff?: { initialMs: number; maxMs: number };
}

const QUICK_WATCH_END_MS = 1000;

function backoffDelay(attempt: number, b: { initialMs: number; maxMs: number }): number {
  const base = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(attempt, 20));
  return base / 2 + Math.random() * (base / 2);
}

type WatchCallback = (phase: string, obj: any, watchObj?: any) => void;
type DoneCallback = (err: any) => void;

export class ResourceCache {
  private readonly lw: ListWatch<KubernetesObject>;
  private readonly inner: Watch;
  private stopped = false;
  private failures = 0;
  private retry: NodeJS.Timeout | undefined;
  private listed = false;

  constructor(private readonly kc: KubeConfig, private readonly o: ResourceCacheOptions) {
    this.inner = new Watch(kc);
    const watch = { watch: (p: string, q: Record<string, unknown>, cb: WatchCallback, done: DoneCallback) => this.watch(p, q, cb, done) } as unknown as Watch;
    this.lw = new ListWatch<KubernetesObject>(o.path, watch, () => this.list(), false, o.labelSelector);
    for (const ev of ['add', 'update', 'delete'] as const) this.lw.on(ev, () => this.o.onChange());
    this.lw.on('error', (e) => this.onError(e as Error & { statusCode?: number }));
  }

  /** Whether one full list has been applied. */
  get synced(): boolean { return this.listed; }

  start(): void {
    this.stopped = false;
    this.lw.start().catch((e: Error) => this.onError(e));
  }

  stop(): void {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    void this.lw.stop();
  }

  get(namespace: string | undefined, name: string): KubeObject | undefined {
    return this.lw.get(name, namespace) as KubeObject | undefined;
  }

  all(): KubeObject[] {
    return this.lw.list() as KubeObject[];
  }

  byKey(): Map<string, KubeObject> {
    return new Map(this.all().map((x) => [keyOf(x.metadata.namespace, x.metadata.name), x]));
  }

  private onError(e: Error & { statusCode?: number }): void {
    if (this.stopped) return;
    this.failures++;
    const delay = backoffDelay(this.failures - 1, this.o.backoff ?? { initialMs: 500, maxMs: 30_000 });
    // Loud on the first failure and every tenth (a missing CRD fails for as long as it is missing).
    const level = this.failures === 1 || this.failures % 10 === 0 ? 'warn' : 'debug';
    this.o.log[level]({ path: this.o.path, status: e.statusCode, err: e.message, retryInMs: Math.round(delay), failures: this.failures },
      'list/watch failed; keeping the last state and retrying');
    this.retry = setTimeout(() => { this.retry = undefined; if (!this.stopped) this.start(); }, delay);
    this.retry.unref?.();
  }

  private sound(raw: unknown): boolean {
    const reason = metadataProblem(raw);
    if (!reason) return true;
    const m = (raw as { metadata?: { name?: unknown; namespace?: unknown } } | null)?.metadata;
    this.o.onMalformed({
      path: this.o.path, reason,
      name: typeof m?.name === 'string' ? m.name.slice(0, 253) : undefined,
      namespace: typeof m?.namespace === 'string' ? m.namespace.slice(0, 63) : undefined,
    });
    return false;
  }

  private async list(): Promise<KubernetesListObject<KubernetesObject>> {
    const res = await kubeRequest(this.kc, { method: 'GET', path: this.o.path, query: { labelSelector: this.o.labelSelector } });
    if (res.status !== 200) throw Object.assign(new Error(`list ${this.o.path}: ${statusMessage(res)}`), { statusCode: res.status });
    const body = res.body as { items?: unknown[]; metadata?: { resourceVersion?: string } };
    const items = (Array.isArray(body?.items) ? body.items : []).filter((x) => this.sound(x)) as KubernetesObject[];
    this.failures = 0;
    // ListWatch applies the list right after this resolves; the change callback then runs.
    setImmediate(() => { this.listed = true; this.o.onChange(); });
    return { apiVersion: 'v1', kind: 'List', items, metadata: { resourceVersion: body?.metadata?.resourceVersion } } as KubernetesListObject<KubernetesObject>;
  }

  private async watch(path: string, query: Record<string, unknown>, cb: WatchCallback, done: DoneCallback): Promise<unknown> {
    const started = Date.now();
    const q = { ...query, allowWatchBookmarks: true, timeoutSeconds: 300 + Math.floor(Math.random() * 300) };
    return this.inner.watch(path, q, (phase, obj, w) => {
      if (phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED') {
        if (!this.sound(obj)) return;
        this.failures = 0;
      }
      cb(phase, obj, w);
    }, (err: unknown) => {
      if (err || Date.now() - started >= QUICK_WATCH_END_MS || this.stopped) { done(err); return; }
      // A watch that ended at once and cleanly: the server is shedding connections.
      this.failures++;
      const t = setTimeout(() => done(null), backoffDelay(this.failures - 1, this.o.backoff ?? { initialMs: 500, maxMs: 30_000 }));
      t.unref?.();
    });
  }
}
