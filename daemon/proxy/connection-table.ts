// Open and recently closed connections, for the admin API, `nodemesh connections` and the
// one log line per connection. Bounded: the oldest closed records are dropped first.
import type { Logger } from 'pino';

export interface Peer {
  workload?: { uid: string; namespace: string; name: string };
  service?: { namespace: string; name: string };
  address: string;
}

export interface ConnectionRecord {
  id: number;
  direction: 'outbound' | 'inbound-plaintext' | 'inbound-hbone';
  /** The enrolled pod on this node whose listener took the connection. */
  pod: { uid: string; namespace: string; name: string };
  source: Peer;
  /** The destination the app asked for (recovered from the kernel for outbound). */
  originalDestination: Peer;
  /** Where the daemon actually connected, when it did. */
  upstream?: string;
  /** How the bytes travelled: mTLS tunnel, same-node path, or plain TCP. */
  path?: 'hbone' | 'local' | 'passthrough';
  /** SPIFFE IDs of both ends where the mesh knows them. */
  sourceIdentity?: string;
  destinationIdentity?: string;
  verdict: 'allow' | 'deny' | 'error';
  reason: string;
  state: 'open' | 'closed';
  /** Bytes from the source toward the destination, and back. */
  bytesSent: number;
  bytesReceived: number;
  openedAt: string;
  closedAt?: string;
  durationMs?: number;
  error?: string;
}

export class ConnectionTable {
  private nextId = 1;
  private readonly open = new Map<number, ConnectionRecord>();
  /** Ring of the most recent closed records: closing a connection is O(1) however many
   * are kept (a splice per close cost more than the rest of the bookkeeping together). */
  private readonly closed: (ConnectionRecord | undefined)[];
  private closedNext = 0;

  constructor(private readonly log: Logger, private readonly hooks: { opened?(r: ConnectionRecord): void; closed?(r: ConnectionRecord): void } = {},
    private readonly keepClosed = 1000) {
    this.closed = new Array<ConnectionRecord | undefined>(keepClosed);
  }

  add(r: Omit<ConnectionRecord, 'id' | 'state' | 'openedAt' | 'bytesSent' | 'bytesReceived'>): ConnectionRecord {
    const rec: ConnectionRecord = { ...r, id: this.nextId++, state: 'open', openedAt: new Date().toISOString(), bytesSent: 0, bytesReceived: 0 };
    this.open.set(rec.id, rec);
    this.hooks.opened?.(rec);
    return rec;
  }

  close(rec: ConnectionRecord, bytes: { sent: number; received: number }, error?: Error): void {
    if (rec.state === 'closed') return;
    rec.state = 'closed';
    rec.bytesSent = bytes.sent;
    rec.bytesReceived = bytes.received;
    const now = new Date();
    rec.closedAt = now.toISOString();
    rec.durationMs = now.getTime() - Date.parse(rec.openedAt);
    if (error && rec.verdict === 'allow') rec.error = error.message;
    this.open.delete(rec.id);
    this.closed[this.closedNext] = rec;
    this.closedNext = (this.closedNext + 1) % this.keepClosed;
    this.hooks.closed?.(rec);
    this.log.info({ connection: rec }, `${rec.direction} ${rec.source.address} -> ${rec.originalDestination.address} ${rec.verdict}`);
  }

  /** A connection that is reported only once it is over (e.g. inbound HBONE streams). */
  addFinished(r: Omit<ConnectionRecord, 'id' | 'state' | 'openedAt' | 'bytesSent' | 'bytesReceived'>,
    bytes: { sent: number; received: number }, openedAt: Date, error?: Error): ConnectionRecord {
    const rec = this.add(r);
    rec.openedAt = openedAt.toISOString();
    this.close(rec, bytes, error);
    return rec;
  }

  list(): { open: ConnectionRecord[]; closed: ConnectionRecord[] } {
    const closed: ConnectionRecord[] = [];
    for (let i = 0; i < this.keepClosed; i++) {
      const r = this.closed[(this.closedNext + i) % this.keepClosed];
      if (r) closed.push(r);
    }
    return { open: [...this.open.values()], closed };
  }
}
