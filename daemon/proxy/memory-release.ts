// Memory back to the system after a burst of connections closed. The daemon's RSS follows its
// peak number of connections and stays there (V8 keeps heap pages and a grown young
// generation, glibc keeps freed native memory), so a node that once held 10,000 connections
// would keep their memory for good. Sampled every few seconds: once the open connections
// fell to a quarter of the peak since the last release (and that peak was large), the
// process releases memory (native releaseMemory: a full GC with memory-pressure, then
// malloc_trim). A release costs a synchronous full GC (64-100 ms measured after 10,000 held
// connections closed), hence the large peak, the deep drop and the minimum interval, and
// hence it waits for a quiet moment: while the daemon is busy (the caller's judgement: its
// event loop's utilisation over the last sample) the release is put off, so the pause does
// not stall requests in flight. A daemon that never goes quiet still gives the memory back
// after maxDeferMs: one pause then rather than the memory of the peak for good.

export interface ReleasePolicy {
  /** A peak below this never triggers a release (small heaps are not worth a pause). */
  minPeak: number;
  /** Release once open <= peak * dropTo. */
  dropTo: number;
  minIntervalMs: number;
  /** A release due but put off because the daemon was busy happens anyway after this long. */
  maxDeferMs: number;
}

export const DEFAULT_RELEASE_POLICY: ReleasePolicy = Object.freeze({ minPeak: 1000, dropTo: 0.25, minIntervalMs: 30_000, maxDeferMs: 300_000 });

export class ReleaseAfterDrop {
  private peak = 0;
  private lastReleaseMs = -Infinity;
  /** When the release that is due (and put off while busy) first became due. */
  private dueSinceMs: number | undefined;

  constructor(private readonly release: () => void, private readonly policy: ReleasePolicy = DEFAULT_RELEASE_POLICY, private readonly now: () => number = Date.now) {}

  /** One sample of the open connections, and whether the daemon is busy serving traffic now;
   * returns whether it released memory. */
  observe(open: number, busy = false): boolean {
    if (open > this.peak) this.peak = open;
    const p = this.policy;
    const t = this.now();
    if (this.peak < p.minPeak || open > this.peak * p.dropTo || t - this.lastReleaseMs < p.minIntervalMs) {
      this.dueSinceMs = undefined;
      return false;
    }
    this.dueSinceMs ??= t;
    if (busy && t - this.dueSinceMs < p.maxDeferMs) return false;
    this.dueSinceMs = undefined;
    this.lastReleaseMs = t;
    this.peak = open;
    this.release();
    return true;
  }
}
