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
import type * as http2 from 'node:http2';
import type * as net from 'node:net';
import * as tls from 'node:tls';
import type { Logger } from 'pino';
import { HboneErrors } from '../errors';
import { canonicalIp, formatAuthority } from './authority';
import { DEFAULT_TUNING, HboneTuning, REASON_HEADER, headerSafe, sessionSettings } from './hbone-protocol';
import { H2Connection } from './h2/connection';
import { ErrorCode } from './h2/constants';
import type { H2Stream, HeaderMap } from './h2/stream';
import { TunnelDuplex } from './h2/tunnel-duplex';
import {
  IssuedIdentity, PeerVerifier, defaultPeerVerifier, describeTlsError, peerChainDer, sameCredentials, secureContextOptions,
} from './tls-identity';

/** One request stream of a verified peer, as the transport hands it over, with the answers the
 * handler may give. */
export class InboundConnect {
  constructor(
    readonly stream: H2Stream,
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
  get gone(): boolean { return this.stream.closed; }

  /** 200: the tunnel is open; its bytes flow through `stream`. */
  accept(): void { this.stream.respond(200); }

  /** A final answer with the reason in the `nodemesh-reason` header (no-op once gone or answered). */
  refuse(status: number, reason: string, extra: http2.OutgoingHttpHeaders = {}): void {
    const headers: Record<string, string> = { [REASON_HEADER]: headerSafe(reason) };
    for (const k in extra) { const v = extra[k]; if (v !== undefined) headers[k] = String(v); }
    this.stream.respond(status, headers, true);
  }

  /** RST_STREAM CANCEL: the daemon closes the tunnel on purpose. */
  cancel(): void { this.stream.reset(ErrorCode.CANCEL); }

  /** Calls `fn` once when the stream closes; returns the function that stops waiting. */
  onGone(fn: () => void): () => void {
    const st = this.stream;
    const before = st.onclose;
    const hook = (code: number, e?: Error): void => { before?.(code, e); fn(); };
    st.onclose = hook;
    return () => { if (st.onclose === hook) st.onclose = before; };
  }

  /** The tunnel as a Node Duplex, for code that needs stream machinery (the waypoint). */
  duplex(): TunnelDuplex { return new TunnelDuplex(this.stream); }
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
  conn: H2Connection;
  peer: string;
  sourceAddress: string;
  /** Set once the peer's certificate is verified. */
  sourceId?: string;
  verified: Promise<string>;
  closedWaiters: (() => void)[];
}

export class HboneServer {
  private readonly server: tls.Server;
  private readonly tuning: HboneTuning;
  private readonly log: Logger;
  private readonly verifyPeer: PeerVerifier;
  private readonly now: () => Date;
  private readonly idleSessionTimeoutMs: number;
  private readonly maxConcurrentStreams: number;
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
    this.maxConcurrentStreams = opts.maxConcurrentStreams ?? 1000;
    this.identityInUse = opts.identity();
    this.server = tls.createServer({
      ...secureContextOptions(this.identityInUse),
      // A client certificate is required, but the verdict is ours (onSession), not Node's:
      // Node's own rejection closes the socket silently after the TLS 1.3 handshake, so neither
      // our log nor the client would learn why.
      requestCert: true,
      rejectUnauthorized: false,
      ALPNProtocols: ['h2'],
      handshakeTimeout: opts.handshakeTimeoutMs ?? 10_000,
    });
    this.server.on('tlsClientError', (err: Error, sock: tls.TLSSocket) => this.onHandshakeError(err, sock));
    this.server.on('secureConnection', (sock: tls.TLSSocket) => {
      if (sock.alpnProtocol !== 'h2') {
        this.counters.protocolErrors++;
        this.log.warn({ peer: peerOf(sock), code: 'NODEMESH_E_HBONE_PROTOCOL' },
          HboneErrors.NODEMESH_E_HBONE_PROTOCOL({ peer: peerOf(sock), reason: 'the client did not negotiate HTTP/2 (ALPN h2)' }).message);
        sock.destroy();
        return;
      }
      this.onSession(sock);
    });
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
      if (s.conn.closed) { resolve(); return; }
      s.closedWaiters.push(resolve);
      s.conn.close();
    })));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), opts.timeoutMs ?? 30_000); });
    const r = await Promise.race([closed, deadline]);
    clearTimeout(timer);
    if (r === 'timeout') {
      await opts.atDeadline?.();
      for (const s of this.sessions) s.conn.destroy();
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
    const noH2 = code === 'ERR_SSL_NO_APPLICATION_PROTOCOL' || code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL';
    const e = notTls || noH2
      ? HboneErrors.NODEMESH_E_HBONE_PROTOCOL({ peer, reason: noH2 ? 'the client did not negotiate HTTP/2 (ALPN h2)' : describeTlsError(err) })
      : HboneErrors.NODEMESH_E_HBONE_TLS({ peer, reason: describeTlsError(err) });
    this.log.warn({ peer, code: e.code, tlsCode: code || undefined }, `HBONE handshake refused: ${e.message}`);
    sock.destroy();
  }

  private onSession(sock: tls.TLSSocket): void {
    const sourceAddress = canonicalIp(sock.remoteAddress ?? '');
    const peer = formatAuthority(sourceAddress, sock.remotePort ?? 0);
    if (this.closing) { sock.destroy(); return; }
    sock.setNoDelay(true);
    const trustBundle = this.identityInUse.trustBundlePem;
    const s: InboundSession = { conn: undefined as unknown as H2Connection, peer, sourceAddress, closedWaiters: [], verified: undefined as unknown as Promise<string> };
    s.conn = new H2Connection(sock, {
      role: 'server',
      settings: sessionSettings(this.tuning, this.maxConcurrentStreams),
      connectionWindow: this.tuning.connectionWindowBytes,
      idleTimeoutMs: this.idleSessionTimeoutMs,
      onStream: (stream, headers) => this.onStream(s, stream, headers),
      onStreamClose: () => { this.openStreams--; },
      onProtocolError: (reason, code, byPeer) => {
        // What this peer sent broke the protocol (or it told us so): this peer only, logged once.
        this.counters.protocolErrors++;
        const err = HboneErrors.NODEMESH_E_HBONE_PROTOCOL({ peer, reason: byPeer ? reason : `${reason} (HTTP/2 error code ${code})` });
        this.log.warn({ peer, code: err.code, sourceId: s.sourceId }, `HBONE session refused: ${err.message}`);
      },
      onClose: () => {
        this.sessions.delete(s);
        for (const w of s.closedWaiters.splice(0)) w();
      },
    });
    this.sessions.add(s);
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
      refuseSession(s.conn, e.message);
      throw err;
    });
    s.verified.catch(noop);
  }

  /** Hands the stream over once its peer is verified; a peer that fails verification gets
   * nothing (its session is being refused). */
  private onStream(s: InboundSession, stream: H2Stream, headers: HeaderMap): void {
    const openedAtMs = Date.now();
    this.openStreams++;
    const hand = (sourceId: string): void => {
      if (stream.closed) return;
      const req = new InboundConnect(stream, headers as http2.IncomingHttpHeaders, sourceId, s.sourceAddress, s.peer, openedAtMs);
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
function refuseSession(conn: H2Connection, reason: string): void {
  if (conn.closed) return;
  conn.refuse(ErrorCode.INADEQUATE_SECURITY, headerSafe(reason, 1024));
  // Give the frame a moment to leave, then drop the connection whatever the client does.
  setTimeout(() => conn.destroy(), 50).unref();
}

function peerOf(sock: net.Socket): string {
  const a = sock.remoteAddress;
  return a ? formatAuthority(canonicalIp(a), sock.remotePort ?? 0) : 'unknown peer';
}
