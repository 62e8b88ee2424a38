// One watch: a chunked HTTP 200 response of JSON lines {"type","object"}, as the watch cache
// serves them. Where it starts: with no resourceVersion (or "0", or sendInitialEvents=true) the
// current objects as ADDED and, when bookmarks are allowed, a BOOKMARK annotated
// k8s.io/initial-events-end (18, 22); from a resourceVersion R the retained events after R, or
// one ERROR event with a 410 Expired Status when R was compacted away (04). Then live events,
// filtered by namespace and selectors (an object that stops matching arrives as DELETED, one
// that starts matching as ADDED), periodic BOOKMARKs carrying only the resourceVersion (03), and
// the end of the stream at timeoutSeconds.
import type { ServerResponse } from 'node:http';
import { ApiStorage, type Filter } from './api-storage';
import { Statuses, type Status } from './status';
import type { StoredEvent } from './object-store';
import { apiVersionOf, resourceKey, type KubeObject, type ResourceType } from './resource-types';

export interface WatchParams {
  resourceVersion?: string;
  resourceVersionMatch?: string;
  allowWatchBookmarks: boolean;
  sendInitialEvents?: boolean;
  timeoutSeconds?: number;
}

export interface WatchSettings {
  bookmarkIntervalMs: number;
  /** When timeoutSeconds is absent: the real server picks between minRequestTimeout and twice it. */
  defaultTimeoutSeconds: () => number;
  encode: (value: unknown) => string;
}

export class WatchStream {
  private readonly timers: NodeJS.Timeout[] = [];
  private unsubscribe: (() => void) | undefined;
  private ended = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly storage: ApiStorage,
    private readonly type: ResourceType,
    private readonly filter: Filter,
    private readonly settings: WatchSettings,
    private readonly onEnd: (w: WatchStream) => void,
  ) {
    res.on('close', () => this.end());
  }

  start(p: WatchParams): void {
    const store = this.storage.store;
    this.res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    this.res.flushHeaders();
    const rv = p.resourceVersion;
    const initial = p.sendInitialEvents === true || ((rv === undefined || rv === '' || rv === '0') && p.sendInitialEvents !== false);
    if (initial) {
      for (const o of store.list(resourceKey(this.type), this.filter.namespace)) {
        if (ApiStorage.matches(this.filter, o)) this.send('ADDED', o);
      }
      if (p.allowWatchBookmarks) this.bookmark(true);
    } else if (rv !== undefined && rv !== '' && rv !== '0') {
      const asked = Number(rv);
      if (!Number.isInteger(asked) || asked < store.compactedRevision) {
        this.sendError(Statuses.watchTooOld(asked, store.compactedRevision + 1));
        this.end();
        return;
      }
      for (const e of store.eventsAfter(resourceKey(this.type), asked)) this.deliver(e);
    }
    // Replay and subscription happen in the same tick: no event falls between them.
    this.unsubscribe = this.storage.subscribe((e) => {
      if (e.resource === resourceKey(this.type)) this.deliver(e);
    });
    if (p.allowWatchBookmarks && this.settings.bookmarkIntervalMs > 0) {
      const t = setInterval(() => this.bookmark(false), this.settings.bookmarkIntervalMs);
      this.timers.push(t);
    }
    const timeout = p.timeoutSeconds !== undefined && p.timeoutSeconds > 0 ? p.timeoutSeconds : this.settings.defaultTimeoutSeconds();
    this.timers.push(setTimeout(() => this.end(), timeout * 1000));
  }

  /** The watch cache's conversion of a change into what this watcher sees. */
  private deliver(e: StoredEvent): void {
    const now = ApiStorage.matches(this.filter, e.object);
    const before = e.prev !== undefined && ApiStorage.matches(this.filter, e.prev);
    if (e.type === 'DELETED') {
      if (before) this.send('DELETED', e.object);
      return;
    }
    if (now && !before) this.send('ADDED', e.object);
    else if (now && before) this.send('MODIFIED', e.object);
    else if (!now && before) {
      const gone = structuredClone(e.prev!);
      gone.metadata.resourceVersion = e.object.metadata.resourceVersion;
      this.send('DELETED', gone);
    }
  }

  private send(type: string, object: KubeObject): void {
    if (this.ended) return;
    const o = { kind: this.type.kind, apiVersion: apiVersionOf(this.type), ...object };
    this.res.write(`${this.settings.encode({ type, object: o })}\n`);
  }

  bookmark(initialEventsEnd: boolean): void {
    if (this.ended) return;
    const metadata: Record<string, unknown> = { resourceVersion: String(this.storage.store.revision) };
    if (initialEventsEnd) metadata.annotations = { 'k8s.io/initial-events-end': 'true' };
    const object = { kind: this.type.kind, apiVersion: apiVersionOf(this.type), metadata, ...structuredClone(this.type.bookmarkBody) };
    this.res.write(`${this.settings.encode({ type: 'BOOKMARK', object })}\n`);
  }

  private sendError(status: Status): void {
    this.res.write(`${this.settings.encode({ type: 'ERROR', object: status })}\n`);
  }

  /** Ends the stream cleanly (the client sees the body end, as at timeoutSeconds). */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const t of this.timers) clearTimeout(t);
    this.unsubscribe?.();
    if (!this.res.writableEnded) this.res.end();
    this.onEnd(this);
  }

  /** Drops the connection without ending the chunked body (a server that went away). */
  destroy(): void {
    this.ended = true;
    for (const t of this.timers) clearTimeout(t);
    this.unsubscribe?.();
    this.res.socket?.destroy();
    this.onEnd(this);
  }
}
