// Keeps this node's pods located (pod-locator.ts) while the snapshot says they are here: a pod
// is looked for as soon as it appears, a pod not found yet (containers starting, runtime slow)
// is retried with exponential backoff and jitter and reported (status + metric), and a found
// pod is re-checked now and then, since a restarted sandbox gets a new network namespace.
// Nothing here throws into the caller.
import type { Logger } from 'pino';
import type { PodRuntime, Workload } from '../state/snapshot';
import type { PodLocation } from './pod-locator';

export interface PodFinder {
  locate(uid: string, podName?: string): PodLocation;
  stillValid(loc: PodLocation): boolean;
}

export interface UnlocatedPod { uid: string; pod: string; attempts: number; error: string; nextAttemptAt: string }

interface Tracked {
  w: Workload;
  loc?: PodLocation;
  attempts: number;
  error?: string;
  timer?: NodeJS.Timeout;
  nextAt?: number;
}

export class PodSandboxTracker {
  private readonly pods = new Map<string, Tracked>();
  private recheck: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly deps: {
    finder: PodFinder;
    /** A pod's runtime facts changed (found, moved, or gone: undefined). */
    onChange: (uid: string, rt: PodRuntime | undefined) => void;
    log: Logger;
    backoff?: { initialMs: number; maxMs: number };
    recheckMs?: number;
    /** Counted per failed attempt (metric). */
    onFailure?: () => void;
  }) {
    this.recheck = setInterval(() => this.recheckFound(), deps.recheckMs ?? 10_000);
    this.recheck.unref();
  }

  /** The pods that should have a sandbox on this node now; others are forgotten. */
  track(local: readonly Workload[]): void {
    if (this.stopped) return;
    const live = new Set<string>();
    for (const w of local) {
      live.add(w.uid);
      const t = this.pods.get(w.uid);
      if (t) { t.w = w; continue; }
      const n: Tracked = { w, attempts: 0 };
      this.pods.set(w.uid, n);
      this.attempt(w.uid);
    }
    for (const [uid, t] of this.pods) {
      if (live.has(uid)) continue;
      if (t.timer) clearTimeout(t.timer);
      this.pods.delete(uid);
      if (t.loc) this.deps.onChange(uid, undefined);
    }
  }

  isTracking(uid: string): boolean {
    return this.pods.has(uid);
  }

  unlocated(): UnlocatedPod[] {
    return [...this.pods.entries()].filter(([, t]) => !t.loc && t.attempts > 0).map(([uid, t]) => ({
      uid, pod: `${t.w.namespace}/${t.w.name}`, attempts: t.attempts, error: t.error ?? '',
      nextAttemptAt: t.nextAt ? new Date(t.nextAt).toISOString() : '',
    }));
  }

  stop(): void {
    this.stopped = true;
    if (this.recheck) clearInterval(this.recheck);
    for (const t of this.pods.values()) if (t.timer) clearTimeout(t.timer);
    this.pods.clear();
  }

  private attempt(uid: string): void {
    const t = this.pods.get(uid);
    if (!t || this.stopped) return;
    t.timer = undefined;
    t.attempts++;
    try {
      const loc = this.deps.finder.locate(uid, `${t.w.namespace}/${t.w.name}`);
      t.loc = loc;
      t.error = undefined;
      t.attempts = 0;
      this.deps.log.info({ pod: `${t.w.namespace}/${t.w.name}`, uid, pid: loc.pid, netns: loc.netnsPath }, 'pod sandbox found');
      this.deps.onChange(uid, { netnsPath: loc.netnsPath, cgroupPath: loc.cgroupPath });
    } catch (e) {
      const msg = (e as Error).message;
      t.error = msg;
      this.deps.onFailure?.();
      const b = this.deps.backoff ?? { initialMs: 200, maxMs: 30_000 };
      const base = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(t.attempts - 1, 20));
      const delay = base / 2 + Math.random() * (base / 2);
      t.nextAt = Date.now() + delay;
      // The first misses are normal (containers starting): say it loudly only when it lasts.
      const level = t.attempts >= 5 ? 'warn' : 'debug';
      this.deps.log[level]({ pod: `${t.w.namespace}/${t.w.name}`, uid, attempts: t.attempts, err: msg }, 'pod sandbox not found yet; retrying');
      t.timer = setTimeout(() => this.attempt(uid), delay);
      t.timer.unref();
    }
  }

  private recheckFound(): void {
    for (const [uid, t] of this.pods) {
      if (!t.loc || t.timer) continue;
      let valid = false;
      try { valid = this.deps.finder.stillValid(t.loc); } catch { valid = false; }
      if (valid) continue;
      this.deps.log.info({ pod: `${t.w.namespace}/${t.w.name}`, uid }, 'pod sandbox changed or went away; locating it again');
      t.loc = undefined;
      this.deps.onChange(uid, undefined);
      this.attempt(uid);
    }
  }
}
