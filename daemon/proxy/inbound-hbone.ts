// HBONE servers of the enrolled pods on this node: one HboneServer per pod (its identity is
// the pod's service account certificate), created once that certificate is at hand. Until
// then connections to the pod's 15008 are refused. Policy changes close streams that are no
// longer allowed.
import type * as net from 'node:net';
import type { Logger } from 'pino';
import { HboneServer, type HboneConnectionEvent } from '../tunnel/hbone-server';
import { CallerStatementVerifier, withoutTargetRefPolicies } from '../tunnel/caller-statement-trust';
import type { IssuedIdentity } from '../tunnel/tls-identity';
import { appConnection } from '../redirection/datapath';
import type { SocketFactory } from '../redirection/socket-factory';
import { inboundVerdict } from '../policy/inbound';
import { spiffeIdOf } from '../routing/decide';
import type { Snapshot } from '../state/snapshot';
import type { ConnectionCause, ConnectionTable } from './connection-table';
import { peerWorkload, type IdentitySource, type PodContext } from './outbound';

interface Entry { ctx: PodContext; server?: HboneServer; pending?: Promise<void>; removed?: boolean }

export class HboneInbound {
  private readonly pods = new Map<string, Entry>();
  /** Caller statements from waypoints (issue 9; daemon/tunnel/caller-statement-trust.ts). */
  private readonly callerStatements = CallerStatementVerifier.fromEnv();

  constructor(private readonly deps: {
    trustDomain: string; identities: IdentitySource; sockets: SocketFactory; snapshot: () => Snapshot;
    connections: ConnectionTable; log: Logger;
  }) {}

  /** Makes sure this pod has (or will have, once its certificate arrives) an HBONE server. */
  ensure(ctx: PodContext): void {
    const cur = this.pods.get(ctx.workload.uid);
    if (cur) { cur.ctx = ctx; return; }
    const e: Entry = { ctx };
    this.pods.set(ctx.workload.uid, e);
    const w = ctx.workload;
    e.pending = this.deps.identities.whenReady(w.namespace, w.serviceAccount).then((first) => {
      if (e.removed) return;
      e.server = this.createServer(e, first);
      this.deps.log.info({ pod: `${w.namespace}/${w.name}` }, 'HBONE server ready');
    }, (err: Error) => this.deps.log.error({ pod: `${w.namespace}/${w.name}`, err }, 'no certificate for the pod; HBONE to it is refused'));
  }

  handle(ctx: PodContext, socket: net.Socket): void {
    const server = this.pods.get(ctx.workload.uid)?.server;
    if (!server) {
      this.deps.log.warn({ pod: `${ctx.workload.namespace}/${ctx.workload.name}`, from: socket.remoteAddress }, 'HBONE connection refused: the pod has no certificate yet');
      socket.destroy();
      return;
    }
    server.handle(socket);
  }

  async remove(uid: string, timeoutMs = 2000): Promise<void> {
    const e = this.pods.get(uid);
    if (!e) return;
    e.removed = true;
    this.pods.delete(uid);
    await e.server?.close({ timeoutMs });
    this.deps.sockets.release(e.ctx.netnsPath);
  }

  uids(): string[] { return [...this.pods.keys()]; }

  /** Closes open streams the new policies refuse; returns how many. */
  recheck(s: Snapshot): number {
    let n = 0;
    for (const e of this.pods.values()) {
      const dest = s.workloads.get(e.ctx.workload.uid);
      if (!e.server || !dest) continue;
      n += e.server.closeStreamsWhere((c) => {
        const vouched = this.callerStatements.principalAfter(c) !== c.sourceId; // issue 9: see authorize below
        return !inboundVerdict(vouched ? withoutTargetRefPolicies(s) : s, dest, { principal: this.callerStatements.principalAfter(c), ip: c.sourceAddress }, c.destination.port).allow;
      });
    }
    return n;
  }

  stats() {
    return [...this.pods.values()].map((e) => ({ pod: `${e.ctx.workload.namespace}/${e.ctx.workload.name}`, ready: !!e.server, ...(e.server?.stats() ?? {}) }));
  }

  /** Graceful: GOAWAY to every peer, open streams get up to timeoutMs to finish. */
  async close(timeoutMs = 2000): Promise<void> {
    await Promise.all([...this.pods.keys()].map((uid) => this.remove(uid, timeoutMs)));
  }

  private createServer(e: Entry, first: IssuedIdentity): HboneServer {
    const w = e.ctx.workload;
    let last = first;
    return new HboneServer({
      identity: () => { last = this.deps.identities.get(w.namespace, w.serviceAccount) ?? last; return last; },
      trustDomain: this.deps.trustDomain,
      podIPs: [...w.ips],
      log: this.deps.log.child({ pod: `${w.namespace}/${w.name}` }),
      authorize: (c) => {
        const s = this.deps.snapshot();
        const dest = s.workloads.get(w.uid) ?? w;
        // --- caller statement (issue 9): a trusted waypoint vouches for the original caller,
        // whom policy then judges; a statement that does not verify refuses the tunnel.
        const who = this.callerStatements.principalFor(c);
        if (!who.ok) return { allow: false, reason: `caller-statement-${who.reason}: ${who.message}` };
        // Policies attached to the waypoint or its Services (targetRefs) were enforced by the
        // waypoint that vouches; the node judges the caller by the rest, as ztunnel does.
        const judged = who.vouchedBy ? withoutTargetRefPolicies(s) : s;
        const v = inboundVerdict(judged, dest, { principal: who.principal, ip: c.sourceAddress }, c.destination.port);
        return v.allow ? { allow: true } : { allow: false, reason: `${v.reason}: ${v.message}${who.vouchedBy ? ` (caller vouched for by ${who.vouchedBy})` : ''}`, code: v.reason };
      },
      connectApp: (port) => this.deps.sockets.connect(e.ctx.netnsPath, { ...appConnection(w.ips[0]), host: w.ips[0], port }),
      onConnection: (ev) => this.record(e.ctx, ev),
    });
  }

  private record(ctx: PodContext, ev: HboneConnectionEvent): void {
    const from = this.deps.snapshot().workloadsByIP.get(ev.sourceAddress);
    const me = peerWorkload(ctx.workload);
    this.deps.connections.addFinished({
      direction: 'inbound-hbone', pod: me,
      source: { address: ev.sourceAddress, workload: from && peerWorkload(from) },
      originalDestination: { address: ev.destination ?? '-', workload: me },
      upstream: ev.destination, path: 'hbone', sourceIdentity: ev.sourceId,
      destinationIdentity: spiffeIdOf(this.deps.trustDomain, ctx.workload),
      verdict: ev.verdict, cause: causeOf(ev), reason: ev.reason,
    }, ev.bytesSent, ev.bytesReceived, ev.openedAtMs, ev.error ? new Error(ev.error) : undefined);
  }
}

const POLICY_CODES: ReadonlySet<string> = new Set<ConnectionCause>(['peer-authentication-strict', 'denied-by-policy', 'no-allow-policy-matched']);

/** The server's outcome as a connection cause; the deny code is ours (authorize above). */
function causeOf(ev: HboneConnectionEvent): ConnectionCause {
  switch (ev.outcome) {
    case 'allowed': return 'allowed';
    case 'bad-request': return 'bad-request';
    case 'denied': return ev.denyCode && POLICY_CODES.has(ev.denyCode) ? ev.denyCode as ConnectionCause : 'denied-by-policy';
    case 'upstream-failed': return 'upstream-failed';
    case 'tunnel-failed': return 'tunnel-failed';
    case 'closed': return 'closed-by-policy';
  }
}
