// Open and recently closed connections, for the admin API, `nodemesh connections`, metrics
// and the one log line per connection. Bounded: the oldest closed records are dropped first.
//
// A record is built once, when the connection's fate is decided (after the routing decision
// for outbound, after authorization for inbound), and carries everything the metrics need as
// values from the mesh's own state: workload owners from the snapshot, verified identities,
// and a `cause` from a fixed list. Nothing a peer sent becomes a label. Times are kept as
// epoch milliseconds; ISO strings are made only when someone lists the table.
import type { Logger } from 'pino';
import type { DenyReason } from '../routing/decide';
import type { InboundVerdict } from '../policy/inbound';

export interface PeerWorkload {
  uid: string;
  namespace: string;
  name: string;
  /** The controller the pod belongs to (Deployment, StatefulSet, ...): the metric label. */
  owner?: string;
}

export interface Peer {
  workload?: PeerWorkload;
  service?: { namespace: string; name: string };
  address: string;
}

/** Why a connection ended as it did, from a fixed list (a metric label; never peer text). */
export type ConnectionCause =
  | 'allowed' | 'connecting' | 'same-node' | 'passthrough'
  | DenyReason
  | Extract<InboundVerdict, { allow: false }>['reason']
  | 'original-destination-missing' | 'no-identity' | 'not-an-app-port' | 'bad-request'
  | 'peer-certificate' | 'destination-denied' | 'upstream-failed' | 'tunnel-failed' | 'closed-by-policy' | 'error';

export type Direction = 'outbound' | 'inbound-plaintext' | 'inbound-hbone';
export type Verdict = 'allow' | 'deny' | 'error';

/** A connection as the daemon tracks it. */
export interface LiveConnection {
  id: number;
  direction: Direction;
  /** The enrolled pod on this node whose listener took the connection. */
  pod: PeerWorkload;
  source: Peer;
  /** The destination the app asked for (recovered from the kernel for outbound). */
  originalDestination: Peer;
  /** Where the daemon actually connected, when it did. */
  upstream?: string;
  /** How the bytes travelled: mTLS tunnel, same-node path (relayed by the daemon, or spliced
   * in the kernel), or plain TCP. */
  path?: 'hbone' | 'local' | 'local-splice' | 'passthrough';
  /** SPIFFE IDs of both ends where the mesh knows them (inbound: as verified). */
  sourceIdentity?: string;
  destinationIdentity?: string;
  verdict: Verdict;
  cause: ConnectionCause;
  /** For people: the cause with its details. */
  reason: string;
  state: 'open' | 'closed';
  /** Bytes from the source toward the destination, and back. */
  bytesSent: number;
  bytesReceived: number;
  openedAtMs: number;
  closedAtMs?: number;
  error?: string;
}

/** The JSON shape of a record (admin API, `nodemesh connections`). */
export interface ConnectionRecord extends Omit<LiveConnection, 'openedAtMs' | 'closedAtMs'> {
  openedAt: string;
  closedAt?: string;
  durationMs?: number;
}

export type NewConnection = Omit<LiveConnection, 'id' | 'state' | 'openedAtMs' | 'bytesSent' | 'bytesReceived'>;

export interface ConnectionHooks { opened?(r: LiveConnection): void; closed?(r: LiveConnection): void }

export class ConnectionTable {
  private nextId = 1;
  private readonly open = new Map<number, LiveConnection>();
  /** Ring of the most recent closed records: closing a connection is O(1) however many
   * are kept (a splice per close cost more than the rest of the bookkeeping together). */
  private readonly closed: (LiveConnection | undefined)[];
  private closedNext = 0;

  constructor(private readonly log: Logger, private readonly hooks: ConnectionHooks = {}, private readonly keepClosed = 1000) {
    this.closed = new Array<LiveConnection | undefined>(keepClosed);
  }

  add(r: NewConnection, openedAtMs = Date.now()): LiveConnection {
    const rec = r as LiveConnection;
    rec.id = this.nextId++;
    rec.state = 'open';
    rec.openedAtMs = openedAtMs;
    rec.bytesSent = 0;
    rec.bytesReceived = 0;
    this.open.set(rec.id, rec);
    this.hooks.opened?.(rec);
    return rec;
  }

  close(rec: LiveConnection, sent: number, received: number, error?: Error): void {
    if (rec.state === 'closed') return;
    rec.state = 'closed';
    rec.bytesSent = sent;
    rec.bytesReceived = received;
    rec.closedAtMs = Date.now();
    if (error && rec.verdict === 'allow') rec.error = error.message;
    this.open.delete(rec.id);
    this.closed[this.closedNext] = rec;
    this.closedNext = (this.closedNext + 1) % this.keepClosed;
    this.hooks.closed?.(rec);
    // One flat line per connection (flat objects serialise several times faster than the record).
    this.log.info({
      id: rec.id, direction: rec.direction, src: rec.source.address, dst: rec.originalDestination.address, upstream: rec.upstream,
      path: rec.path, sourceIdentity: rec.sourceIdentity, destinationIdentity: rec.destinationIdentity, verdict: rec.verdict,
      cause: rec.cause, reason: rec.reason, sent, received, durationMs: rec.closedAtMs - rec.openedAtMs, error: rec.error,
    }, 'connection');
  }

  /** Connections open now (outbound, plaintext and same-node inbound). */
  get openCount(): number { return this.open.size; }

  /** A connection that is reported only once it is over (e.g. inbound HBONE streams). */
  addFinished(r: NewConnection, sent: number, received: number, openedAtMs: number, error?: Error): LiveConnection {
    const rec = this.add(r, openedAtMs);
    this.close(rec, sent, received, error);
    return rec;
  }

  list(): { open: ConnectionRecord[]; closed: ConnectionRecord[] } {
    const closed: ConnectionRecord[] = [];
    for (let i = 0; i < this.keepClosed; i++) {
      const r = this.closed[(this.closedNext + i) % this.keepClosed];
      if (r) closed.push(view(r));
    }
    return { open: [...this.open.values()].map(view), closed };
  }
}

function view(r: LiveConnection): ConnectionRecord {
  const { openedAtMs, closedAtMs, ...rest } = r;
  const out: ConnectionRecord = { ...rest, openedAt: new Date(openedAtMs).toISOString() };
  if (closedAtMs !== undefined) {
    out.closedAt = new Date(closedAtMs).toISOString();
    out.durationMs = closedAtMs - openedAtMs;
  }
  return out;
}
