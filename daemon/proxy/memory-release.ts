// Memory back to the system after a burst of connections closed. The daemon's RSS follows its
// peak number of connections and stays there (V8 keeps heap pages and a grown young
// generation, glibc keeps freed native memory), so a node that once held 10,000 connections
// would keep their memory for good. Sampled every few seconds: once the open connections
// fell to a quarter of the peak since the last release (and that peak was large), the
// process releases memory (native releaseMemory: a full GC with memory-pressure, then
// malloc_trim). A release costs a synchronous full GC (tens of ms on a large heap), hence
// the large peak, the deep drop and the minimum interval.

export interface ReleasePolicy {
  /** A peak below this never triggers a release (small heaps are not worth a pause). */
  minPeak: number;
  /** Release once open <= peak * dropTo. */
  dropTo: number;
  minIntervalMs: number;
}

export const DEFAULT_RELEASE_POLICY: ReleasePolicy = Object.freeze({ minPeak: 1000, dropTo: 0.25, minIntervalMs: 30_000 });

export class ReleaseAfterDrop {
  private peak = 0;
  private lastReleaseMs = -Infinity;

  constructor(private readonly release: () => void, private readonly policy: ReleasePolicy = DEFAULT_RELEASE_POLICY, private readonly now: () => number = Date.now) {}

  /** One sample of the open connections; returns whether it released memory. */
  observe(open: number): boolean {
    if (open > this.peak) this.peak = open;
    const p = this.policy;
    const t = this.now();
    if (this.peak < p.minPeak || open > this.peak * p.dropTo || t - this.lastReleaseMs < p.minIntervalMs) return false;
    this.lastReleaseMs = t;
    this.peak = open;
    this.release();
    return true;
  }
}
