// The inbound HBONE pipeline. daemon/tunnel/hbone-server.ts is the transport (mutual TLS,
// HTTP/2 sessions, the peer's verified identity); every request stream it hands over runs
// through `HboneListener.serve`, in this order, as ztunnel's inbound.rs:
//
//   1. verify the request   method CONNECT?                       no  -> 405
//                           :authority one of this pod's ip:port?  no  -> 400
//                           caller statement (if any) verifies?    no  -> 403
//   2. authorize            L4 policy for the judged principal?    no  -> 403, reason in `nodemesh-reason`
//   3. connect to the app   in the pod's netns, bounded in time?   no  -> 503
//   4. splice               200, then stream <-> app socket (back-pressure, half-close)
//   5. record               one event per stream (onConnection: the connection table)
//
// The upstream connection is made before the 200, so the client learns about a closed app
// port as a 503 rather than as a tunnel that opens and dies. The waypoint (issue 9,
// waypoint/waypoint-server.ts) uses the same pipeline with its own authority check and its
// own step 3-4 (`serveTunnel`).
//
// Below: `HboneListener` (one per pod or waypoint: transport + pipeline) and `HboneInbound`
// (the node's pods: one listener each, created once the pod's certificate is at hand; until
// then connections to the pod's 15008 are refused; policy changes close streams that are no
// longer allowed).
import type * as http2 from 'node:http2';
import type * as net from 'node:net';
import type { Logger } from 'pino';
import { HboneServer, InboundConnect, type HboneServerOptions } from '../tunnel/hbone-server';
import { canonicalIp, formatAuthority, parseAuthority, type HostPort } from '../tunnel/authority';
import { spliceStreamSocket } from '../tunnel/splice';
import { CleanEndSet } from '../tunnel/clean-end';
import { CallerStatementVerifier, withoutTargetRefPolicies, type CallerPrincipal } from '../tunnel/caller-statement-trust';
import type { IssuedIdentity } from '../tunnel/tls-identity';
import type { TunnelDuplex } from '../tunnel/h2/tunnel-duplex';
import { appConnection } from '../redirection/datapath';
import type { SocketFactory } from '../redirection/socket-factory';
import { inboundVerdict } from '../policy/inbound';
import { spiffeIdOf } from '../routing/decide';
import type { Snapshot } from '../state/snapshot';
import type { ConnectionCause, ConnectionTable } from './connection-table';
import { peerWorkload, type IdentitySource, type PodContext } from './outbound';

/** `code`: why, from the authorizer's fixed list (reported as `denyCode`; never peer text). */
export type AuthorizeVerdict = { allow: true } | { allow: false; reason: string; code?: string };

/** How a stream ended, from a fixed list: what metrics may use (`reason` is for people). */
export type HboneOutcome = 'allowed' | 'bad-request' | 'denied' | 'upstream-failed' | 'tunnel-failed' | 'closed';

export interface HboneRequestContext {
  /** Verified SPIFFE ID of the client certificate. */
  sourceId: string;
  /** IP the HBONE connection came from (the source pod's IP when dialled from its netns). */
  sourceAddress: string;
  /** The `:authority`: one of this pod's IPs and the app port. */
  destination: HostPort;
  headers: http2.IncomingHttpHeaders;
}

export interface HboneConnectionEvent {
  sourceId?: string;
  sourceAddress: string;
  /** The `:authority` as sent. */
  destination?: string;
  verdict: 'allow' | 'deny' | 'error';
  outcome: HboneOutcome;
  /** The authorizer's code when it denied. */
  denyCode?: string;
  /** The HTTP status answered (0 when the client went away before an answer). */
  status: number;
  reason: string;
  /** Bytes from the source to the app, and back. */
  bytesSent: number;
  bytesReceived: number;
  /** Epoch milliseconds. */
  openedAtMs: number;
  durationMs: number;
  error?: string;
}

export interface HboneListenerOptions extends Omit<HboneServerOptions, 'onStream'> {
  podIPs: string[];
  /** Whom policy judges: the peer, or the caller a trusted waypoint vouches for (issue 9).
   * Without it, the peer. */
  callerOf?: (ctx: HboneRequestContext) => CallerPrincipal;
  authorize: (ctx: HboneRequestContext, caller: { principal: string; vouchedBy?: string }) => AuthorizeVerdict | Promise<AuthorizeVerdict>;
  /** Starts a connection to the app's port (production: from 127.0.0.6 inside the pod's netns). */
  connectApp: (port: number) => net.Socket;
  appConnectTimeoutMs?: number;
  onConnection?: (event: HboneConnectionEvent) => void;
  // --- waypoint hook (issue 9; waypoint/waypoint-server.ts): the waypoint terminates HBONE for
  // Service VIPs and serves the tunnel itself (L7) instead of splicing it to an app port.
  /** Replaces the "authority names this pod" check: a refusal reason, or undefined to accept. */
  acceptAuthority?: (destination: HostPort) => string | undefined;
  /** Replaces connectApp + splice: called after the 200 with the open tunnel. */
  serveTunnel?: (ctx: HboneRequestContext, stream: TunnelDuplex) => Promise<{ bytesSent: number; bytesReceived: number; error?: string }>;
}

export interface HboneListenerStats {
  sessions: number;
  /** Tunnels open now (answered 200). */
  activeStreams: number;
  counters: { connections: number; handshakeFailures: number; protocolErrors: number; allowed: number; denied: number; failed: number };
}

/** An open tunnel, for policy re-checks and shutdown. */
interface OpenTunnel {
  ctx: HboneRequestContext;
  req: InboundConnect;
  app?: net.Socket;
  /** Set when the daemon closed the tunnel on purpose (policy change, shutdown). */
  closedReason?: string;
}

type Refusal = { status: number; verdict: 'deny' | 'error'; outcome: HboneOutcome; reason: string; extra?: http2.OutgoingHttpHeaders; denyCode?: string };

export class HboneListener {
  private readonly server: HboneServer;
  private readonly podIPs: Set<string>;
  private readonly log: Logger;
  private readonly appConnectTimeoutMs: number;
  private readonly tunnels = new Set<OpenTunnel>();
  /** Open splices, ended cleanly (FIN to the app, END_STREAM to the peer) at the close deadline. */
  private readonly cleanEnds = new CleanEndSet();
  private readonly counters = { allowed: 0, denied: 0, failed: 0 };

  constructor(private readonly opts: HboneListenerOptions) {
    this.log = opts.log;
    this.podIPs = new Set(opts.podIPs.map(canonicalIp));
    this.appConnectTimeoutMs = opts.appConnectTimeoutMs ?? 5_000;
    this.server = new HboneServer({
      ...opts,
      onStream: (req) => {
        this.serve(req).catch((e: Error) => {
          this.log.error({ peer: req.peer, err: e.message }, 'HBONE stream failed unexpectedly');
          req.cancel();
        });
      },
    });
  }

  /** Serves a raw TCP connection accepted on the listener's port. */
  handle(socket: net.Socket): void { this.server.handle(socket); }

  /** The pipeline, for one request stream of a verified peer. */
  private async serve(req: InboundConnect): Promise<void> {
    // 1. verify the request
    const checked = this.verify(req);
    if (!checked) return; // the client went away
    if ('status' in checked) return this.refuse(req, checked);
    const { ctx, caller } = checked;

    // 2. authorize
    let verdict: AuthorizeVerdict;
    try {
      const v = this.opts.authorize(ctx, caller);
      verdict = isPromise(v) ? await v : v;
    } catch (e) {
      verdict = { allow: false, reason: `authorization could not be evaluated (${(e as Error).message}); failing closed` };
    }
    if (!verdict.allow) return this.refuse(req, { status: 403, verdict: 'deny', outcome: 'denied', reason: verdict.reason, denyCode: verdict.code });
    if (req.gone) return;
    if (this.opts.serveTunnel) return this.serveTunnel(req, ctx); // waypoint hook (issue 9)

    // 3. connect to the app
    const connected = await this.connectApp(ctx.destination.port, req);
    if (!connected.ok) {
      if (connected.reason) this.refuse(req, { status: 503, verdict: 'error', outcome: 'upstream-failed', reason: connected.reason });
      return;
    }
    const app = connected.app;

    // 4. splice
    const open: OpenTunnel = { ctx, req, app };
    this.tunnels.add(open);
    this.counters.allowed++;
    req.accept();
    const authority = req.headers[':authority'];
    const result = await spliceStreamSocket(req.stream, app, authority, this.cleanEnds);
    this.tunnels.delete(open);

    // 5. record
    const closed = open.closedReason !== undefined;
    const error = closed ? undefined : result.error;
    this.report({
      sourceId: ctx.sourceId, sourceAddress: ctx.sourceAddress, destination: authority,
      verdict: closed ? 'deny' : error ? 'error' : 'allow',
      outcome: closed ? 'closed' : error ? 'tunnel-failed' : 'allowed',
      status: 200,
      reason: open.closedReason ?? (error ? (result.failedSide === 'socket' ? `the app connection failed: ${error.message}` : error.message) : 'allowed'),
      bytesSent: app.bytesWritten, bytesReceived: app.bytesRead,
      openedAtMs: req.openedAtMs, durationMs: Date.now() - req.openedAtMs,
      ...(error ? { error: error.message } : {}),
    });
  }

  /** Step 1: method, authority, and whom policy judges (the peer, or the caller it vouches for). */
  private verify(req: InboundConnect): Refusal | undefined | { ctx: HboneRequestContext; caller: { principal: string; vouchedBy?: string } } {
    const method = req.headers[':method'];
    if (method !== 'CONNECT') {
      return { status: 405, verdict: 'deny', outcome: 'bad-request', reason: `method ${method} is not allowed: the HBONE port only tunnels CONNECT`, extra: { allow: 'CONNECT' } };
    }
    const authority = req.headers[':authority'];
    const parsed = parseAuthority(authority);
    if (!parsed.ok) return { status: 400, verdict: 'deny', outcome: 'bad-request', reason: parsed.reason };
    const destination = parsed.value;
    const authorityRefused = this.opts.acceptAuthority // waypoint hook (issue 9)
      ? this.opts.acceptAuthority(destination)
      : this.podIPs.has(destination.address) ? undefined : `authority ${authority} names another pod; this HBONE listener serves ${[...this.podIPs].join(', ')}`;
    if (authorityRefused !== undefined) return { status: 400, verdict: 'deny', outcome: 'bad-request', reason: authorityRefused };
    if (req.gone) return undefined;
    const ctx: HboneRequestContext = { sourceId: req.sourceId, sourceAddress: req.sourceAddress, destination, headers: req.headers };
    const who = this.opts.callerOf ? this.opts.callerOf(ctx) : { ok: true as const, principal: req.sourceId };
    if (!who.ok) return { status: 403, verdict: 'deny', outcome: 'denied', reason: `caller-statement-${who.reason}: ${who.message}` };
    return { ctx, caller: who };
  }

  private refuse(req: InboundConnect, r: Refusal): void {
    if (r.verdict === 'deny') this.counters.denied++; else this.counters.failed++;
    req.refuse(r.status, r.reason, r.extra);
    this.report({
      sourceId: req.sourceId, sourceAddress: req.sourceAddress, destination: req.headers[':authority'],
      verdict: r.verdict, outcome: r.outcome, denyCode: r.denyCode, status: r.status, reason: r.reason,
      bytesSent: 0, bytesReceived: 0, openedAtMs: req.openedAtMs, durationMs: Date.now() - req.openedAtMs,
    });
  }

  /** Step 3, bounded in time; gives up if the client cancels meanwhile. */
  private connectApp(port: number, req: InboundConnect): Promise<{ ok: true; app: net.Socket } | { ok: false; reason?: string }> {
    let app: net.Socket;
    try {
      app = this.opts.connectApp(port);
    } catch (e) {
      return Promise.resolve({ ok: false, reason: `cannot connect to the app on port ${port}: ${(e as Error).message}` });
    }
    app.setNoDelay(true);
    return new Promise((resolve) => {
      const finish = (r: { ok: true; app: net.Socket } | { ok: false; reason?: string }) => {
        clearTimeout(timer);
        app.off('connect', onConnect);
        app.off('error', onError);
        stopWaiting();
        if (!r.ok) app.destroy();
        resolve(r);
      };
      const onConnect = () => finish({ ok: true, app });
      const onError = (e: Error) => finish({ ok: false, reason: `cannot connect to the app on port ${port}: ${(e as { code?: string }).code ?? e.message}` });
      const timer = setTimeout(() => finish({ ok: false, reason: `the app on port ${port} did not accept within ${this.appConnectTimeoutMs} ms` }), this.appConnectTimeoutMs);
      app.once('connect', onConnect);
      app.once('error', onError);
      const stopWaiting = req.onGone(() => finish({ ok: false }));
    });
  }

  /** Steps 3-5 for the waypoint (issue 9): the tunnel is served by `opts.serveTunnel`, reported like a splice. */
  private async serveTunnel(req: InboundConnect, ctx: HboneRequestContext): Promise<void> {
    this.counters.allowed++;
    req.accept();
    let r: { bytesSent: number; bytesReceived: number; error?: string };
    try {
      r = await this.opts.serveTunnel!(ctx, req.duplex());
    } catch (e) {
      r = { bytesSent: 0, bytesReceived: 0, error: (e as Error).message };
      req.cancel();
    }
    this.report({
      sourceId: ctx.sourceId, sourceAddress: ctx.sourceAddress, destination: formatAuthority(ctx.destination.address, ctx.destination.port),
      verdict: r.error ? 'error' : 'allow', outcome: r.error ? 'tunnel-failed' : 'allowed', status: 200,
      reason: r.error ?? 'allowed', bytesSent: r.bytesSent, bytesReceived: r.bytesReceived, openedAtMs: req.openedAtMs, durationMs: Date.now() - req.openedAtMs,
      ...(r.error ? { error: r.error } : {}),
    });
  }

  private report(ev: HboneConnectionEvent): void {
    // With a connection table attached, it writes the one line per connection (this one only
    // at debug level, built only then); otherwise we do.
    if (this.opts.onConnection) {
      if (this.log.isLevelEnabled('debug')) this.log.debug(reportLine(ev), 'hbone inbound');
      try { this.opts.onConnection(ev); } catch (e) { this.log.warn({ err: (e as Error).message }, 'onConnection hook failed'); }
    } else {
      this.log.info(reportLine(ev), `hbone inbound ${ev.sourceId ?? ev.sourceAddress} -> ${ev.destination} ${ev.verdict}`);
    }
  }

  /** Closes, now, the open tunnels whose context matches (e.g. a policy change denies them).
   * Returns how many were closed. */
  closeStreamsWhere(pred: (ctx: HboneRequestContext) => boolean, reason = 'closed by the destination: authorization policy changed'): number {
    let n = 0;
    for (const t of this.tunnels) {
      if (t.closedReason !== undefined || !pred(t.ctx)) continue;
      t.closedReason = reason;
      n++;
      t.req.cancel();
      t.app?.destroy();
    }
    if (n > 0) this.log.info({ closed: n, reason }, 'HBONE tunnels closed');
    return n;
  }

  /** Graceful: GOAWAY on every session, open tunnels run to completion; after `timeoutMs`
   * they are ended cleanly (the app and the peer see a close, not a reset; bounded by
   * CLEAN_END_GRACE_MS), then whatever is left is closed. New connections are refused from now on. */
  close(opts: { timeoutMs?: number } = {}): Promise<void> {
    return this.server.close({
      timeoutMs: opts.timeoutMs,
      atDeadline: async () => {
        await this.cleanEnds.endAll();
        this.closeStreamsWhere(() => true, 'closed by the destination: the HBONE listener shut down');
      },
    });
  }

  /** Tunnels open now. */
  get openTunnels(): number { return this.tunnels.size; }

  stats(): HboneListenerStats {
    const t = this.server.stats();
    return { sessions: t.sessions, activeStreams: this.tunnels.size, counters: { ...t.counters, ...this.counters } };
  }
}

function reportLine(ev: HboneConnectionEvent) {
  return { sourceId: ev.sourceId, src: ev.sourceAddress, dst: ev.destination, verdict: ev.verdict, status: ev.status, reason: ev.reason, bytesSent: ev.bytesSent, bytesReceived: ev.bytesReceived, durationMs: ev.durationMs };
}

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown })?.then === 'function';
}

interface Entry { ctx: PodContext; server?: HboneListener; pending?: Promise<void>; removed?: boolean }

/** The node's enrolled pods: one HboneListener each, with the pod's identity and policy. */
export class HboneInbound {
  private readonly pods = new Map<string, Entry>();
  /** Caller statements from waypoints (issue 9; daemon/tunnel/caller-statement-trust.ts). */
  private readonly callerStatements = CallerStatementVerifier.fromEnv();

  constructor(private readonly deps: {
    trustDomain: string; identities: IdentitySource; sockets: SocketFactory; snapshot: () => Snapshot;
    connections: ConnectionTable; log: Logger;
  }) {}

  /** Makes sure this pod has (or will have, once its certificate arrives) an HBONE listener. */
  ensure(ctx: PodContext): void {
    const cur = this.pods.get(ctx.workload.uid);
    if (cur) { cur.ctx = ctx; return; }
    const e: Entry = { ctx };
    this.pods.set(ctx.workload.uid, e);
    const w = ctx.workload;
    e.pending = this.deps.identities.whenReady(w.namespace, w.serviceAccount).then((first) => {
      if (e.removed) return;
      e.server = this.createListener(e, first);
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
        const principal = this.callerStatements.principalAfter(c);
        const vouched = principal !== c.sourceId; // see createListener's authorize
        return !inboundVerdict(vouched ? withoutTargetRefPolicies(s) : s, dest, { principal, ip: c.sourceAddress }, c.destination.port).allow;
      });
    }
    return n;
  }

  /** Tunnels open now, every pod together. */
  openTunnels(): number {
    let n = 0;
    for (const e of this.pods.values()) n += e.server?.openTunnels ?? 0;
    return n;
  }

  stats() {
    return [...this.pods.values()].map((e) => ({ pod: `${e.ctx.workload.namespace}/${e.ctx.workload.name}`, ready: !!e.server, ...(e.server?.stats() ?? {}) }));
  }

  /** Graceful: GOAWAY to every peer, open streams get up to timeoutMs to finish. */
  async close(timeoutMs = 2000): Promise<void> {
    await Promise.all([...this.pods.keys()].map((uid) => this.remove(uid, timeoutMs)));
  }

  private createListener(e: Entry, first: IssuedIdentity): HboneListener {
    const w = e.ctx.workload;
    let last = first;
    return new HboneListener({
      identity: () => { last = this.deps.identities.get(w.namespace, w.serviceAccount) ?? last; return last; },
      trustDomain: this.deps.trustDomain,
      podIPs: [...w.ips],
      log: this.deps.log.child({ pod: `${w.namespace}/${w.name}` }),
      // A trusted waypoint vouches for the original caller, whom policy then judges; a
      // statement that does not verify refuses the tunnel.
      callerOf: (c) => this.callerStatements.principalFor(c),
      authorize: (c, who) => {
        const s = this.deps.snapshot();
        const dest = s.workloads.get(w.uid) ?? w;
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

/** The pipeline's outcome as a connection cause; the deny code is ours (authorize above). */
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
