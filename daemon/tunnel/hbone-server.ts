// The HBONE server for one destination pod: takes raw TCP connections accepted on the pod's
// port 15008, terminates mutual TLS 1.3 (a client certificate is required and must chain to
// the trust bundle and name this trust domain), then serves HTTP/2 CONNECT streams:
//
//   method CONNECT?                 no  -> 405
//   :authority ip:port of this pod? no  -> 400 "authority names another pod"
//   authorize(source, destination)? no  -> 403, reason in the `nodemesh-reason` header
//   connect to the app port?        no  -> 503
//   200, then splice stream <-> app socket (back-pressure, half-close)
//
// As in ztunnel's inbound.rs, the upstream connection is made before the 200, so the client
// learns about a closed app port as a 503 rather than as a tunnel that opens and dies.
// A connection that fails TLS or speaks something other than HTTP/2 is logged and closed on
// its own; nothing about it reaches other connections or the daemon.
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import type * as tls from 'node:tls';
import type { Logger } from 'pino';
import { HboneErrors } from '../errors';
import { HostPort, canonicalIp, formatAuthority, parseAuthority } from './authority';
import { DEFAULT_TUNING, HboneTuning, REASON_HEADER, headerSafe, sessionSettings } from './hbone-protocol';
import { spliceStreamSocket } from './splice';
import { CleanEndSet } from './clean-end';
import {
  IssuedIdentity, PeerVerifier, defaultPeerVerifier, describeTlsError, peerChainDer, sameCredentials, secureContextOptions,
} from './tls-identity';

const { NGHTTP2_CANCEL, NGHTTP2_INADEQUATE_SECURITY } = http2.constants;

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

export interface HboneServerOptions {
  /** The pod's current identity; read for every new TLS handshake, so rotation applies to new sessions. */
  identity: () => IssuedIdentity;
  trustDomain: string;
  podIPs: string[];
  authorize: (ctx: HboneRequestContext) => AuthorizeVerdict | Promise<AuthorizeVerdict>;
  /** Starts a connection to the app's port (production: from 127.0.0.6 inside the pod's netns). */
  connectApp: (port: number) => net.Socket;
  log: Logger;
  onConnection?: (event: HboneConnectionEvent) => void;
  tuning?: Partial<HboneTuning>;
  /** Streams one client session may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxConcurrentStreams?: number;
  handshakeTimeoutMs?: number;
  appConnectTimeoutMs?: number;
  /** A session with no streams and no frames for this long is closed. */
  idleSessionTimeoutMs?: number;
  verifyPeer?: PeerVerifier;
  now?: () => Date;
  // --- waypoint hook (issue 9; waypoint/waypoint-server.ts): the waypoint terminates HBONE for
  // Service VIPs and serves the tunnel itself (L7) instead of splicing it to an app port.
  /** Replaces the "authority names this pod" check: a refusal reason, or undefined to accept. */
  acceptAuthority?: (destination: HostPort) => string | undefined;
  /** Replaces connectApp + splice: called after the 200 with the open tunnel. */
  serveTunnel?: (ctx: HboneRequestContext, stream: http2.ServerHttp2Stream) => Promise<{ bytesSent: number; bytesReceived: number; error?: string }>;
}

export interface HboneServerStats {
  sessions: number;
  activeStreams: number;
  counters: { connections: number; handshakeFailures: number; protocolErrors: number; allowed: number; denied: number; failed: number };
}

interface InboundSession {
  session: http2.ServerHttp2Session;
  peer: string;
  sourceAddress: string;
  sourceId?: string;
  verified: Promise<string>;
  streams: Set<InboundStream>;
}

interface InboundStream {
  ctx: HboneRequestContext;
  stream: http2.ServerHttp2Stream;
  app: net.Socket;
  /** Set when the daemon closed the stream on purpose (policy change, shutdown). */
  closedReason?: string;
}

export class HboneServer {
  private readonly server: http2.Http2SecureServer;
  private readonly tuning: HboneTuning;
  private readonly podIPs: Set<string>;
  private readonly log: Logger;
  private readonly verifyPeer: PeerVerifier;
  private readonly now: () => Date;
  private readonly appConnectTimeoutMs: number;
  private readonly idleSessionTimeoutMs: number;
  private identityInUse: IssuedIdentity;
  private readonly sessions = new Set<InboundSession>();
  private readonly streams = new Set<InboundStream>();
  /** Open splices, ended cleanly (FIN to the app, END_STREAM to the peer) at the close deadline. */
  private readonly cleanEnds = new CleanEndSet();
  private closing = false;
  private readonly counters = { connections: 0, handshakeFailures: 0, protocolErrors: 0, allowed: 0, denied: 0, failed: 0 };

  constructor(private readonly opts: HboneServerOptions) {
    this.log = opts.log;
    this.tuning = { ...DEFAULT_TUNING, ...opts.tuning };
    this.podIPs = new Set(opts.podIPs.map(canonicalIp));
    this.verifyPeer = opts.verifyPeer ?? defaultPeerVerifier;
    this.now = opts.now ?? (() => new Date());
    this.appConnectTimeoutMs = opts.appConnectTimeoutMs ?? 5_000;
    this.idleSessionTimeoutMs = opts.idleSessionTimeoutMs ?? 10 * 60_000;
    this.identityInUse = opts.identity();
    this.server = http2.createSecureServer({
      ...secureContextOptions(this.identityInUse),
      // A client certificate is required, but the verdict is ours (onSession), not Node's:
      // Node's own rejection closes the socket silently after the TLS 1.3 handshake, so neither
      // our log nor the client would learn why.
      requestCert: true,
      rejectUnauthorized: false,
      allowHTTP1: false,
      handshakeTimeout: opts.handshakeTimeoutMs ?? 10_000,
      settings: sessionSettings(this.tuning, opts.maxConcurrentStreams ?? 1000),
      maxSessionMemory: this.tuning.maxSessionMemoryMiB,
      unknownProtocolTimeout: 1_000,
    });
    // Registering 'clientError' keeps Node's default handler from destroying the socket with an
    // error nobody listens to; we log and close it here instead.
    this.server.on('clientError', (err: Error, sock: tls.TLSSocket) => this.onHandshakeError(err, sock));
    this.server.on('unknownProtocol', (sock: tls.TLSSocket) => {
      this.counters.protocolErrors++;
      this.log.warn({ peer: peerOf(sock), code: 'NODEMESH_E_HBONE_PROTOCOL' },
        HboneErrors.NODEMESH_E_HBONE_PROTOCOL({ peer: peerOf(sock), reason: 'the client did not negotiate HTTP/2 (ALPN h2)' }).message);
      sock.destroy();
    });
    this.server.on('session', (session: http2.ServerHttp2Session) => this.onSession(session));
    this.server.on('sessionError', noop); // logged by the session's own 'error' listener
    this.server.on('error', (err: Error) => this.log.warn({ err: err.message }, 'HBONE server error'));
  }

  /** Serves a raw TCP connection accepted on the pod's HBONE port. */
  handle(socket: net.Socket): void {
    socket.on('error', noop); // the TLS layer reports what matters
    if (this.closing) { socket.destroy(); return; }
    this.counters.connections++;
    socket.setNoDelay(true);
    try {
      this.refreshIdentity();
    } catch (e) {
      // No usable certificate (not issued yet, or unparsable): refuse rather than serve with a stale one blindly.
      this.log.error({ err: (e as Error).message, peer: peerOf(socket) }, 'HBONE connection refused: this pod has no usable certificate');
      socket.destroy();
      return;
    }
    this.server.emit('connection', socket);
  }

  /** Closes, now, the open tunnels whose context matches (e.g. a policy change denies them).
   * Returns how many were closed. */
  closeStreamsWhere(pred: (ctx: HboneRequestContext) => boolean, reason = 'closed by the destination: authorization policy changed'): number {
    let n = 0;
    for (const r of this.streams) {
      if (r.closedReason !== undefined || !pred(r.ctx)) continue;
      r.closedReason = reason;
      n++;
      if (!r.stream.closed && !r.stream.destroyed) r.stream.close(NGHTTP2_CANCEL);
      r.app.destroy();
    }
    if (n > 0) this.log.info({ closed: n, reason }, 'HBONE tunnels closed');
    return n;
  }

  /** Graceful: GOAWAY on every session, open streams run to completion; after `timeoutMs`
   * they are ended cleanly (the app and the peer see a close, not a reset; bounded by
   * CLEAN_END_GRACE_MS), then whatever is left is closed. New connections are refused from now on. */
  async close(opts: { timeoutMs?: number } = {}): Promise<void> {
    this.closing = true;
    const all = [...this.sessions];
    const closed = Promise.all(all.map((s) => new Promise<void>((resolve) => {
      if (s.session.closed || s.session.destroyed) { resolve(); return; }
      s.session.once('close', () => resolve());
      s.session.close();
    })));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), opts.timeoutMs ?? 30_000); });
    const r = await Promise.race([closed, deadline]);
    clearTimeout(timer);
    if (r === 'timeout') {
      await this.cleanEnds.endAll();
      this.closeStreamsWhere(() => true, 'closed by the destination: the HBONE listener shut down');
      for (const s of this.sessions) s.session.destroy();
    }
  }

  stats(): HboneServerStats {
    return { sessions: this.sessions.size, activeStreams: this.streams.size, counters: { ...this.counters } };
  }

  private refreshIdentity(): void {
    const id = this.opts.identity();
    if (id === this.identityInUse || sameCredentials(id, this.identityInUse)) return;
    // Applies to handshakes from now on; sessions already open keep the certificate they have.
    this.server.setSecureContext(secureContextOptions(id));
    this.identityInUse = id;
    this.log.info({ spiffeId: id.spiffeId, notAfter: id.notAfter }, 'HBONE server certificate rotated');
  }

  private onHandshakeError(err: Error, sock: tls.TLSSocket): void {
    this.counters.handshakeFailures++;
    const peer = peerOf(sock);
    const code = (err as { code?: string }).code ?? '';
    const notTls = code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_HTTP_REQUEST' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG';
    const e = notTls
      ? HboneErrors.NODEMESH_E_HBONE_PROTOCOL({ peer, reason: describeTlsError(err) })
      : HboneErrors.NODEMESH_E_HBONE_TLS({ peer, reason: describeTlsError(err) });
    this.log.warn({ peer, code: e.code, tlsCode: code || undefined }, `HBONE handshake refused: ${e.message}`);
    sock.destroy();
  }

  private onSession(session: http2.ServerHttp2Session): void {
    const sock = session.socket as tls.TLSSocket;
    const sourceAddress = canonicalIp(sock.remoteAddress ?? '');
    const peer = formatAuthority(sourceAddress, sock.remotePort ?? 0);
    if (this.closing) { session.destroy(); return; }
    const trustBundle = this.identityInUse.trustBundlePem;
    const s: InboundSession = { session, peer, sourceAddress, streams: new Set(), verified: undefined as unknown as Promise<string> };
    this.sessions.add(s);
    session.on('error', (e: Error & { code?: string }) => {
      if (e.code === 'ERR_HTTP2_ERROR' || e.code === 'ERR_HTTP2_SESSION_ERROR') {
        // nghttp2 refused what it received (bad preface, bad frames): this peer only.
        this.counters.protocolErrors++;
        const err = HboneErrors.NODEMESH_E_HBONE_PROTOCOL({ peer, reason: e.message });
        this.log.warn({ peer, code: err.code, sourceId: s.sourceId }, `HBONE session refused: ${err.message}`);
      } else {
        this.log.debug({ peer, err: e.message }, 'HBONE session error');
      }
    });
    session.on('close', () => this.sessions.delete(s));
    session.on('stream', (stream, headers) => { void this.onStream(s, stream, headers); });
    session.setTimeout(this.idleSessionTimeoutMs, () => { if (s.streams.size === 0) session.close(); });
    try {
      session.setLocalWindowSize(this.tuning.connectionWindowBytes);
    } catch { /* the session died already; its 'close' cleans up */ }
    // Two checks before any stream is served: OpenSSL's verdict on the chain against the
    // trust bundle (made during the handshake), then the SPIFFE rules (one URI SAN, this trust
    // domain, a leaf). A refusal is logged and sent to the client as GOAWAY
    // INADEQUATE_SECURITY with the reason as debug data.
    s.verified = (async () => {
      if (sock.getProtocol() !== 'TLSv1.3') throw new Error(`negotiated ${sock.getProtocol()}, not TLSv1.3`);
      const chain = peerChainDer(sock);
      if (chain.length === 0) throw new Error('the client presented no client certificate');
      if (!sock.authorized) {
        const code = String(sock.authorizationError ?? 'unknown');
        throw Object.assign(new Error(describeTlsError({ code, message: code })), { code });
      }
      return this.verifyPeer(chain, trustBundle, this.opts.trustDomain, this.now());
    })().then((id) => { s.sourceId = id; return id; }, (e: Error) => {
      this.counters.handshakeFailures++;
      const err = HboneErrors.NODEMESH_E_HBONE_PEER_CERT({ peer, reason: e.message }, { cause: e });
      this.log.warn({ peer, code: err.code, cause: (e as { code?: string }).code }, `HBONE client refused: ${err.message}`);
      refuseSession(session, e.message);
      throw err;
    });
    s.verified.catch(noop);
  }

  private async onStream(s: InboundSession, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): Promise<void> {
    const openedAtMs = Date.now();
    const authority = headers[':authority'];
    const method = headers[':method'];
    stream.on('error', (e) => this.log.debug({ peer: s.peer, authority, err: e.message }, 'HBONE stream error'));
    const refuse = (status: number, verdict: 'deny' | 'error', outcome: HboneOutcome, reason: string, extra: http2.OutgoingHttpHeaders = {}, denyCode?: string): void => {
      if (verdict === 'deny') this.counters.denied++; else this.counters.failed++;
      if (!stream.closed && !stream.destroyed && !stream.headersSent) {
        stream.respond({ ':status': status, [REASON_HEADER]: headerSafe(reason), ...extra }, { endStream: true });
      }
      this.report({ sourceId: s.sourceId, sourceAddress: s.sourceAddress, destination: authority, verdict, outcome, denyCode, status, reason, bytesSent: 0, bytesReceived: 0, openedAtMs, durationMs: Date.now() - openedAtMs });
    };

    if (method !== 'CONNECT') {
      refuse(405, 'deny', 'bad-request', `method ${method} is not allowed: the HBONE port only tunnels CONNECT`, { allow: 'CONNECT' });
      return;
    }
    const parsed = parseAuthority(authority);
    if (!parsed.ok) { refuse(400, 'deny', 'bad-request', parsed.reason); return; }
    const destination = parsed.value;
    const authorityRefused = this.opts.acceptAuthority // waypoint hook (issue 9)
      ? this.opts.acceptAuthority(destination)
      : this.podIPs.has(destination.address) ? undefined : `authority ${authority} names another pod; this HBONE listener serves ${[...this.podIPs].join(', ')}`;
    if (authorityRefused !== undefined) {
      refuse(400, 'deny', 'bad-request', authorityRefused);
      return;
    }
    let sourceId: string;
    try {
      sourceId = await s.verified;
    } catch {
      return; // the session is being destroyed, and the refusal is logged already
    }
    if (stream.closed || stream.destroyed) return;

    const ctx: HboneRequestContext = { sourceId, sourceAddress: s.sourceAddress, destination, headers };
    let verdict: AuthorizeVerdict;
    try {
      const v = this.opts.authorize(ctx);
      verdict = isPromise(v) ? await v : v;
    } catch (e) {
      verdict = { allow: false, reason: `authorization could not be evaluated (${(e as Error).message}); failing closed` };
    }
    if (!verdict.allow) { refuse(403, 'deny', 'denied', verdict.reason, {}, verdict.code); return; }
    if (stream.closed || stream.destroyed) return;
    if (this.opts.serveTunnel) { await this.serveTunnel(s, ctx, stream, openedAtMs); return; } // waypoint hook (issue 9)

    const connected = await this.connectApp(destination.port, stream);
    if (!connected.ok) {
      if (connected.reason) refuse(503, 'error', 'upstream-failed', connected.reason);
      return;
    }
    const app = connected.app;
    const rec: InboundStream = { ctx, stream, app };
    this.streams.add(rec);
    s.streams.add(rec);
    this.counters.allowed++;
    stream.respond({ ':status': 200 });
    const result = await spliceStreamSocket(stream, app, authority, this.cleanEnds);
    this.streams.delete(rec);
    s.streams.delete(rec);
    const error = rec.closedReason === undefined ? result.error : undefined;
    this.report({
      sourceId, sourceAddress: s.sourceAddress, destination: authority,
      verdict: rec.closedReason !== undefined ? 'deny' : error ? 'error' : 'allow',
      outcome: rec.closedReason !== undefined ? 'closed' : error ? 'tunnel-failed' : 'allowed',
      status: 200,
      reason: rec.closedReason ?? (error ? (result.failedSide === 'socket' ? `the app connection failed: ${error.message}` : error.message) : 'allowed'),
      bytesSent: app.bytesWritten, bytesReceived: app.bytesRead,
      openedAtMs, durationMs: Date.now() - openedAtMs,
      ...(error ? { error: error.message } : {}),
    });
  }

  /** Waypoint hook (issue 9): the tunnel is served by `opts.serveTunnel`, reported like a splice. */
  private async serveTunnel(s: InboundSession, ctx: HboneRequestContext, stream: http2.ServerHttp2Stream, openedAtMs: number): Promise<void> {
    this.counters.allowed++;
    stream.respond({ ':status': 200 });
    const authority = formatAuthority(ctx.destination.address, ctx.destination.port);
    let r: { bytesSent: number; bytesReceived: number; error?: string };
    try {
      r = await this.opts.serveTunnel!(ctx, stream);
    } catch (e) {
      r = { bytesSent: 0, bytesReceived: 0, error: (e as Error).message };
      if (!stream.destroyed) stream.close(NGHTTP2_CANCEL);
    }
    this.report({
      sourceId: ctx.sourceId, sourceAddress: s.sourceAddress, destination: authority, verdict: r.error ? 'error' : 'allow', outcome: r.error ? 'tunnel-failed' : 'allowed', status: 200,
      reason: r.error ?? 'allowed', bytesSent: r.bytesSent, bytesReceived: r.bytesReceived, openedAtMs, durationMs: Date.now() - openedAtMs,
      ...(r.error ? { error: r.error } : {}),
    });
  }

  /** Connects to the app, bounded in time; gives up if the client cancels meanwhile. */
  private connectApp(port: number, stream: http2.ServerHttp2Stream): Promise<{ ok: true; app: net.Socket } | { ok: false; reason?: string }> {
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
        stream.off('close', onCancel);
        if (!r.ok) app.destroy();
        resolve(r);
      };
      const onConnect = () => finish({ ok: true, app });
      const onError = (e: Error) => finish({ ok: false, reason: `cannot connect to the app on port ${port}: ${(e as { code?: string }).code ?? e.message}` });
      const onCancel = () => finish({ ok: false });
      const timer = setTimeout(() => finish({ ok: false, reason: `the app on port ${port} did not accept within ${this.appConnectTimeoutMs} ms` }), this.appConnectTimeoutMs);
      app.once('connect', onConnect);
      app.once('error', onError);
      stream.once('close', onCancel);
    });
  }

  private report(ev: HboneConnectionEvent): void {
    const line = { sourceId: ev.sourceId, src: ev.sourceAddress, dst: ev.destination, verdict: ev.verdict, status: ev.status, reason: ev.reason, bytesSent: ev.bytesSent, bytesReceived: ev.bytesReceived, durationMs: ev.durationMs };
    // With a connection table attached, it writes the one line per connection; otherwise we do.
    if (this.opts.onConnection) {
      this.log.debug(line, 'hbone inbound');
      try { this.opts.onConnection(ev); } catch (e) { this.log.warn({ err: (e as Error).message }, 'onConnection hook failed'); }
    } else {
      this.log.info(line, `hbone inbound ${ev.sourceId ?? ev.sourceAddress} -> ${ev.destination} ${ev.verdict}`);
    }
  }
}

function noop(): void { /* errors are reported elsewhere */ }

/** GOAWAY INADEQUATE_SECURITY carrying the reason (the client turns it into its error), then close. */
function refuseSession(session: http2.ServerHttp2Session, reason: string): void {
  if (session.destroyed) return;
  try {
    session.goaway(NGHTTP2_INADEQUATE_SECURITY, 0, Buffer.from(headerSafe(reason, 1024)));
  } catch { /* already closing */ }
  // Give the frame a moment to leave, then drop the connection whatever the client does.
  setTimeout(() => session.destroy(), 50).unref();
}

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown })?.then === 'function';
}

function peerOf(sock: net.Socket): string {
  const a = sock.remoteAddress;
  return a ? formatAuthority(canonicalIp(a), sock.remotePort ?? 0) : 'unknown peer';
}
