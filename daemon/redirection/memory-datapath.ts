// In-memory Datapath for unit tests of daemon logic: records what the daemon asked the
// kernel to do, and lets a test play the capture hook (recordOriginalDestination). The real
// kernel path is tested in test/e2e with EbpfDatapath.
import type { Datapath, DatapathPod, DatapathStatus, SocketAddress } from './datapath';

export class MemoryDatapath implements Datapath {
  readonly pods = new Map<string, DatapathPod>();
  private readonly orig = new Map<string, SocketAddress>();
  started = false;
  stoppedWith: { keepAttached: boolean } | undefined;

  constructor(private readonly pinnedUids: string[] = []) {}

  async start(): Promise<void> { this.started = true; }
  async enrol(pod: DatapathPod): Promise<void> { this.pods.set(pod.uid, pod); }
  async unenrol(uid: string): Promise<void> {
    this.pods.delete(uid);
    const i = this.pinnedUids.indexOf(uid);
    if (i >= 0) this.pinnedUids.splice(i, 1);
  }
  enrolledUids(): string[] { return [...new Set([...this.pinnedUids, ...this.pods.keys()])]; }

  /** What the connect/sockops hooks would record for an app connection. */
  recordOriginalDestination(netnsCookie: bigint, clientPort: number, dst: SocketAddress): void {
    this.orig.set(`${netnsCookie}/${clientPort}/${dst.family}`, dst);
  }
  takeOriginalDestination(netnsCookie: bigint, clientPort: number, family: 4 | 6): SocketAddress | undefined {
    const k = `${netnsCookie}/${clientPort}/${family}`;
    const v = this.orig.get(k);
    this.orig.delete(k);
    return v;
  }
  async stop(opts: { keepAttached: boolean }): Promise<void> { this.stoppedWith = opts; }
  status(): DatapathStatus {
    return {
      kind: 'memory', programs: [],
      enrolled: [...this.pods.values()].map((p) => ({ uid: p.uid, netnsCookie: p.netnsCookie.toString(), ips: p.ips })),
    };
  }
}
