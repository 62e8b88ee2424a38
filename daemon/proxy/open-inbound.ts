// Open inbound connections that policy may have to close later (plaintext and same-node
// ones; HBONE streams are tracked by their HboneServer). A policy change re-runs the verdict
// for each and closes the ones no longer allowed.
import type { Snapshot } from '../state/snapshot';
import { inboundVerdict, InboundSubject } from '../policy/inbound';

export interface OpenInbound {
  destinationUid: string;
  subject: InboundSubject;
  port: number;
  close(reason: string): void;
}

export class OpenInboundSet {
  private readonly open = new Set<OpenInbound>();

  add(c: OpenInbound): () => void {
    this.open.add(c);
    return () => this.open.delete(c);
  }

  /** Closes connections the new snapshot no longer allows; returns how many. */
  recheck(s: Snapshot): number {
    let closed = 0;
    for (const c of [...this.open]) {
      const dest = s.workloads.get(c.destinationUid);
      const v = dest ? inboundVerdict(s, dest, c.subject, c.port) : { allow: false as const, message: 'the destination pod is gone' };
      if (!v.allow) {
        this.open.delete(c);
        c.close(v.message);
        closed++;
      }
    }
    return closed;
  }
}
