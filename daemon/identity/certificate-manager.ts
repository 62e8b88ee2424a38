// The node daemon's workload certificates: one in-memory key + certificate per
// (namespace, service account) that has an enrolled pod on this node. The data path reads
// them synchronously (`get`); fetching, rotation at about half the lifetime (jittered) and
// retries with exponential backoff happen here, on timers. A rotation replaces the entry with
// a new frozen object: whoever holds the old one (an open TLS connection) keeps a valid,
// unchanged identity until it expires.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { DaemonErrors, NodemeshError } from '../errors';

export interface IssuedIdentity {
  readonly spiffeId: string;
  /** PKCS#8 PEM; lives only in this process's memory. */
  readonly keyPem: string;
  /** Leaf first. Frozen at runtime (typed as plain arrays, as TLS options want them). */
  readonly certChainPem: string[];
  readonly trustBundlePem: string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface WorkloadIdentityKey {
  readonly namespace: string;
  readonly serviceAccount: string;
}

/** Obtains a fresh identity (new key, new certificate). IdentityClient.fetchIdentity in the
 * daemon, a fake in tests. */
export type IdentityFetcher = (id: WorkloadIdentityKey) => Promise<IssuedIdentity>;

export interface RefreshPolicy {
  /** Refresh after this fraction of the lifetime... */
  fraction: number;
  /** ...plus or minus this fraction, uniformly, so nodes do not refresh in lockstep. */
  jitter: number;
  /** Never schedule sooner than this (a very short lifetime must not spin). */
  minDelayMs: number;
}

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  multiplier: number;
  /** The delay is drawn uniformly from [d * (1 - jitter), d]. */
  jitter: number;
}

export const DEFAULT_REFRESH: Readonly<RefreshPolicy> = Object.freeze({ fraction: 0.5, jitter: 0.05, minDelayMs: 250 });
export const DEFAULT_BACKOFF: Readonly<BackoffPolicy> = Object.freeze({ initialMs: 1000, maxMs: 60_000, multiplier: 2, jitter: 0.5 });

/** Milliseconds from `now` until the identity should be refreshed. The lifetime counts from
 * when it was received (or notBefore, if later): certificates are backdated for clock skew,
 * and that part of the validity is no use to us. */
export function refreshDelay(id: Pick<IssuedIdentity, 'notBefore' | 'notAfter'>, receivedAt: number, now: number, p: RefreshPolicy, random: number): number {
  const start = Math.max(id.notBefore.getTime(), receivedAt);
  const lifetime = Math.max(0, id.notAfter.getTime() - start);
  const fraction = p.fraction + (random * 2 - 1) * p.jitter;
  return Math.max(p.minDelayMs, Math.round(start + lifetime * fraction - now));
}

/** Delay before retry number `failures` (1 = first retry). */
export function backoffDelay(failures: number, p: BackoffPolicy, random: number): number {
  const d = Math.min(p.maxMs, p.initialMs * Math.pow(p.multiplier, Math.max(0, failures - 1)));
  return Math.round(d * (1 - p.jitter + random * p.jitter));
}

export interface IdentityStatus {
  namespace: string;
  serviceAccount: string;
  spiffeId: string | undefined;
  state: 'pending' | 'ready' | 'expired';
  refreshing: boolean;
  notBefore: string | undefined;
  notAfter: string | undefined;
  issuedAt: string | undefined;
  nextRefresh: string | undefined;
  failures: number;
  lastError: { message: string; code: string | undefined; at: string } | undefined;
}

interface Entry {
  readonly key: WorkloadIdentityKey;
  readonly name: string;
  current: IssuedIdentity | undefined;
  receivedAt: number;
  inFlight: boolean;
  timer: NodeJS.Timeout | undefined;
  nextAt: number | undefined;
  failures: number;
  lastError: { message: string; code: string | undefined; at: number } | undefined;
  waiters: { resolve: (id: IssuedIdentity) => void; reject: (e: Error) => void }[];
  dropped: boolean;
}

export interface CertificateManagerOptions {
  fetch: IdentityFetcher;
  logger?: Logger;
  refresh?: Partial<RefreshPolicy>;
  backoff?: Partial<BackoffPolicy>;
  /** Injected for tests. */
  now?: () => number;
  random?: () => number;
}

export interface CertificateManagerEvents {
  /** First certificate for an identity. */
  issued: [identity: IssuedIdentity, key: WorkloadIdentityKey];
  /** A newer certificate replaced `previous`, which stays valid for whoever holds it. */
  rotated: [identity: IssuedIdentity, previous: IssuedIdentity, key: WorkloadIdentityKey];
  /** A fetch failed; the next attempt is at `retryAt`. */
  failed: [error: Error, key: WorkloadIdentityKey, retryAt: Date];
  /** No pod uses the identity any more; its key is forgotten. */
  dropped: [key: WorkloadIdentityKey];
}

const nameOf = (k: WorkloadIdentityKey): string => `${k.namespace}/${k.serviceAccount}`;

export class CertificateManager extends EventEmitter<CertificateManagerEvents> {
  private readonly entries = new Map<string, Entry>();
  private readonly refreshPolicy: RefreshPolicy;
  private readonly backoffPolicy: BackoffPolicy;
  private readonly now: () => number;
  private readonly random: () => number;
  private stopped = false;

  constructor(private readonly opts: CertificateManagerOptions) {
    super();
    this.refreshPolicy = { ...DEFAULT_REFRESH, ...opts.refresh };
    this.backoffPolicy = { ...DEFAULT_BACKOFF, ...opts.backoff };
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
  }

  /** Makes the managed set exactly `ids`: fetches missing identities, forgets unused ones. */
  ensure(ids: readonly WorkloadIdentityKey[]): { added: string[]; removed: string[] } {
    if (this.stopped) return { added: [], removed: [] };
    const wanted = new Map(ids.map((k) => [nameOf(k), { namespace: k.namespace, serviceAccount: k.serviceAccount }]));
    const added: string[] = [];
    const removed: string[] = [];
    for (const [name, e] of this.entries) {
      if (wanted.has(name)) continue;
      this.drop(e);
      removed.push(name);
    }
    for (const [name, key] of wanted) {
      if (this.entries.has(name)) continue;
      const e: Entry = {
        key: Object.freeze(key), name, current: undefined, receivedAt: 0, inFlight: false, timer: undefined, nextAt: undefined,
        failures: 0, lastError: undefined, waiters: [], dropped: false,
      };
      this.entries.set(name, e);
      added.push(name);
      this.fetch(e);
    }
    return { added, removed };
  }

  /** The current identity, if one is issued and not expired. Synchronous: for the data path. */
  get(namespace: string, serviceAccount: string): IssuedIdentity | undefined {
    const cur = this.entries.get(nameOf({ namespace, serviceAccount }))?.current;
    return cur && this.now() < cur.notAfter.getTime() ? cur : undefined;
  }

  /** Resolves with a valid identity as soon as there is one; rejects if the identity is not
   * managed (NODEMESH_E_IDENTITY_NOT_MANAGED) or is dropped first (NODEMESH_E_IDENTITY_DROPPED).
   * Callers bound the wait with their own timeout. */
  whenReady(namespace: string, serviceAccount: string): Promise<IssuedIdentity> {
    const e = this.entries.get(nameOf({ namespace, serviceAccount }));
    if (!e) return Promise.reject(DaemonErrors.NODEMESH_E_IDENTITY_NOT_MANAGED({ namespace, serviceAccount }));
    const cur = this.get(namespace, serviceAccount);
    if (cur) return Promise.resolve(cur);
    return new Promise((resolve, reject) => e.waiters.push({ resolve, reject }));
  }

  status(): IdentityStatus[] {
    const now = this.now();
    const iso = (t: number | Date | undefined): string | undefined => (t === undefined ? undefined : new Date(t).toISOString());
    return [...this.entries.values()].sort((a, b) => a.name.localeCompare(b.name)).map((e) => ({
      namespace: e.key.namespace,
      serviceAccount: e.key.serviceAccount,
      spiffeId: e.current?.spiffeId,
      state: !e.current ? 'pending' : now < e.current.notAfter.getTime() ? 'ready' : 'expired',
      refreshing: e.inFlight,
      notBefore: iso(e.current?.notBefore),
      notAfter: iso(e.current?.notAfter),
      issuedAt: e.current ? iso(e.receivedAt) : undefined,
      nextRefresh: iso(e.nextAt),
      failures: e.failures,
      lastError: e.lastError && { message: e.lastError.message, code: e.lastError.code, at: iso(e.lastError.at)! },
    }));
  }

  /** Forgets every identity and cancels every timer; pending whenReady calls reject. */
  stop(): void {
    this.stopped = true;
    for (const e of this.entries.values()) this.drop(e);
  }

  private drop(e: Entry): void {
    e.dropped = true;
    if (e.timer) clearTimeout(e.timer);
    e.timer = undefined;
    e.nextAt = undefined;
    e.current = undefined;
    this.entries.delete(e.name);
    const err = DaemonErrors.NODEMESH_E_IDENTITY_DROPPED({ namespace: e.key.namespace, serviceAccount: e.key.serviceAccount });
    for (const w of e.waiters.splice(0)) w.reject(err);
    this.opts.logger?.info({ identity: e.name }, 'workload identity dropped');
    this.emit('dropped', e.key);
  }

  private schedule(e: Entry, delayMs: number): void {
    if (e.dropped) return;
    if (e.timer) clearTimeout(e.timer);
    e.nextAt = this.now() + delayMs;
    e.timer = setTimeout(() => { e.timer = undefined; this.fetch(e); }, delayMs);
  }

  private fetch(e: Entry): void {
    if (e.dropped || e.inFlight) return;
    e.inFlight = true;
    e.nextAt = undefined;
    let p: Promise<IssuedIdentity>;
    try {
      p = this.opts.fetch(e.key);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then((id) => this.onIssued(e, id), (err: unknown) => this.onFailed(e, err));
  }

  private onIssued(e: Entry, id: IssuedIdentity): void {
    e.inFlight = false;
    if (e.dropped) return;
    const frozen: IssuedIdentity = Object.freeze({
      ...id, certChainPem: Object.freeze([...id.certChainPem]) as string[], trustBundlePem: Object.freeze([...id.trustBundlePem]) as string[],
    });
    const previous = e.current;
    const now = this.now();
    e.current = frozen;
    e.receivedAt = now;
    e.failures = 0;
    e.lastError = undefined;
    const delay = refreshDelay(frozen, now, now, this.refreshPolicy, this.random());
    this.schedule(e, delay);
    const facts = { identity: e.name, spiffeId: frozen.spiffeId, notAfter: frozen.notAfter.toISOString(), nextRefresh: new Date(now + delay).toISOString() };
    for (const w of e.waiters.splice(0)) w.resolve(frozen);
    if (previous) {
      this.opts.logger?.info(facts, 'workload certificate rotated');
      this.emit('rotated', frozen, previous, e.key);
    } else {
      this.opts.logger?.info(facts, 'workload certificate issued');
      this.emit('issued', frozen, e.key);
    }
  }

  private onFailed(e: Entry, err: unknown): void {
    e.inFlight = false;
    if (e.dropped) return;
    const error = err instanceof Error ? err : new Error(String(err));
    const now = this.now();
    e.failures++;
    e.lastError = { message: error.message, code: NodemeshError.is(error) ? error.code : undefined, at: now };
    let delay = backoffDelay(e.failures, this.backoffPolicy, this.random());
    // While the current certificate is still valid, retry well before it expires.
    const left = e.current ? e.current.notAfter.getTime() - now : 0;
    if (left > 0) delay = Math.min(delay, Math.max(this.refreshPolicy.minDelayMs, Math.round(left / 2)));
    this.schedule(e, delay);
    this.opts.logger?.warn({
      identity: e.name, failures: e.failures, retryInMs: delay, code: e.lastError.code, err: error.message,
      currentNotAfter: e.current?.notAfter.toISOString(),
    }, 'workload certificate fetch failed');
    this.emit('failed', error, e.key, new Date(now + delay));
  }
}
