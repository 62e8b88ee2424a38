// The HBONE server for one listener (a destination pod's port 15008, or a waypoint): the
// transport only. It takes raw TCP connections, terminates mutual TLS 1.3 (a client
// certificate is required and must chain to the trust bundle and name this trust domain),
// serves HTTP/2 sessions, and hands every stream of a verified peer, with that peer's
// identity and the request headers, to one handler (`onStream`) as an `InboundConnect`. The
// handler answers it: a status and a reason, a 200 and the tunnel's bytes, or a reset. What a
// request means (method, authority, policy, where it goes) is the handler's:
// daemon/proxy/inbound-hbone.ts.
//
// A connection that fails TLS or speaks something other than HTTP/2 is logged and closed on
// its own; nothing about it reaches other connections or the daemon.
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import type * as tls from 'node:tls';
import type { Logger } from 'pino';
import { HboneErrors } from '../errors';
import { canonicalIp, formatAuthority } from './authority';
import { DEFAULT_TUNING, HboneTuning, REASON_HEADER, headerSafe, sessionSettings } from './hbone-protocol';
import {
  IssuedIdentity, PeerVerifier, defaultPeerVerifier, describeTlsError, peerChainDer, sameCredentials, secureContextOptions,
} from './tls-identity';

const { NGHTTP2_CANCEL, NGHTTP2_INADEQUATE_SECURITY } = http2.constants;

/** One request stream of a verified peer, as the transport hands it over, with the answers the
 * handler may give. */
export class InboundConnect {
  constructor(
    readonly stream: http2.ServerHttp2Stream,
    readonly headers: http2.IncomingHttpHeaders,
    /** Verified SPIFFE ID of the client certificate. */
    readonly sourceId: string,
    /** IP the HBONE connection came from (the source pod's IP when dialled from its netns). */
    readonly sourceAddress: string,
    /** ip:port of the peer, for logs. */
    readonly peer: string,
    /** Epoch milliseconds when the request arrived. */
    readonly openedAtMs: number,
  ) {}

  /** The client cancelled (or the session died) before or after an answer. */
  get gone(): boolean { return this.stream.closed || this.stream.destroyed; }

  /** 200: the tunnel is open; its bytes flow through `stream`. */
  accept(): void { this.stream.respond({ ':status': 200 }); }

  /** A final answer with the reason in the `nodemesh-reason` header (no-op once gone or answered). */
  refuse(status: number, reason: string, extra: http2.OutgoingHttpHeaders = {}): void {
    const st = this.stream;
    if (st.closed || st.destroyed || st.headersSent) return;
    st.respond({ ':status': status, [REASON_HEADER]: headerSafe(reason), ...extra }, { endStream: true });
  }

  /** RST_STREAM CANCEL: the daemon closes the tunnel on purpose. */
  cancel(): void {
    if (!this.stream.closed && !this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
  }

  /** Calls `fn` once when the stream closes; returns the function that stops waiting. */
  onGone(fn: () => void): () => void {
    this.stream.once('close', fn);
    return () => { this.stream.off('close', fn); };
  }
}

export interface HboneServerOptions {
  /** The listener's current identity; read for every new TLS handshake, so rotation applies to new sessions. */
  identity: () => IssuedIdentity;
  trustDomain: string;
  /** Every request stream of a verified peer, once. */
  onStream: (req: InboundConnect) => void;
  log: Logger;
  tuning?: Partial<HboneTuning>;
  /** Streams one client session may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxConcurrentStreams?: number;
  handshakeTimeoutMs?: number;
  /** A session with no streams and no frames for this long is closed. */
  idleSessionTimeoutMs?: number;
  verifyPeer?: PeerVerifier;
  now?: () => Date;
}

export interface HboneServerStats {
  sessions: number;
  /** Request streams open now, answered or not. */
  streams: number;
  counters: { connections: number; handshakeFailures: number; protocolErrors: number };
}

interface InboundSession {
  session: http2.ServerHttp2Session;
  peer: string;
  sourceAddress: string;
  /** Set once the peer's certificate is verified. */
  sourceId?: string;
  verified: Promise<string>;
  openStreams: number;
}

export class HboneServer {
  private readonly server: http2.Http2SecureServer;
  private readonly tuning: HboneTuning;
  private readonly log: Logger;
  private readonly verifyPeer: PeerVerifier;
  private readonly now: () => Date;
  private readonly idleSessionTimeoutMs: number;
  private identityInUse: IssuedIdentity;
  private readonly sessions = new Set<InboundSession>();
  private openStreams = 0;
  private closing = false;
  private readonly counters = { connections: 0, handshakeFailures: 0, protocolErrors: 0 };

  constructor(private readonly opts: HboneServerOptions) {
    this.log = opts.log;
    this.tuning = { ...DEFAULT_TUNING, ...opts.tuning };
    this.verifyPeer = opts.verifyPeer ?? defaultPeerVerifier;
    this.now = opts.now ?? (() => new Date());
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

  /** Serves a raw TCP connection accepted on the listener's port. */
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

  /** Graceful: GOAWAY on every session, open streams run to completion; after `timeoutMs`,
   * `atDeadline` runs (the handler ends its tunnels cleanly) and whatever is left is closed.
   * New connections are refused from now on. */
  async close(opts: { timeoutMs?: number; atDeadline?: () => Promise<void> } = {}): Promise<void> {
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
      await opts.atDeadline?.();
      for (const s of this.sessions) s.session.destroy();
    }
  }

  stats(): HboneServerStats {
    return { sessions: this.sessions.size, streams: this.openStreams, counters: { ...this.counters } };
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
    const s: InboundSession = { session, peer, sourceAddress, openStreams: 0, verified: undefined as unknown as Promise<string> };
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
    session.on('stream', (stream, headers) => this.onStream(s, stream, headers));
    session.setTimeout(this.idleSessionTimeoutMs, () => { if (s.openStreams === 0) session.close(); });
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

  /** Hands the stream over once its peer is verified; a peer that fails verification gets
   * nothing (its session is being refused). */
  private onStream(s: InboundSession, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const openedAtMs = Date.now();
    stream.on('error', (e) => this.log.debug({ peer: s.peer, authority: headers[':authority'], err: e.message }, 'HBONE stream error'));
    s.openStreams++;
    this.openStreams++;
    stream.once('close', () => { s.openStreams--; this.openStreams--; });
    const hand = (sourceId: string): void => {
      const req = new InboundConnect(stream, headers, sourceId, s.sourceAddress, s.peer, openedAtMs);
      try {
        this.opts.onStream(req);
      } catch (e) {
        this.log.error({ peer: s.peer, err: (e as Error).message }, 'HBONE stream handler failed');
        req.cancel();
      }
    };
    // Once verified, streams are handed over at once (no promise turn per stream).
    if (s.sourceId !== undefined) hand(s.sourceId);
    else s.verified.then(hand, noop);
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

function peerOf(sock: net.Socket): string {
  const a = sock.remoteAddress;
  return a ? formatAuthority(canonicalIp(a), sock.remotePort ?? 0) : 'unknown peer';
}
