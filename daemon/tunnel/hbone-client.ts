// The HBONE client: one per daemon. `connect` opens an HTTP/2 CONNECT stream to a
// destination pod's HBONE port over mutual TLS 1.3, reusing a pooled session when it can.
//
// Pooling, as ztunnel's pool.rs does it: sessions are keyed by (source SPIFFE ID, HBONE
// target address:port, the identities the destination may present). A session takes streams
// until it reaches its stream limit (ours, or the peer's SETTINGS if lower), then the next
// connect opens another session. A connect that finds a session still handshaking waits for
// that one instead of opening its own, so a burst of N connections costs one handshake, not N.
// A session leaves the pool when it gets GOAWAY, errors or closes; it closes itself after
// idling. Sessions carry the certificate they were opened with: when the source's
// certificate changes, sessions holding the old one stop taking streams and close once their
// streams finish, and new connects open sessions with the new certificate.
import * as tls from 'node:tls';
import type * as net from 'node:net';
import type { Logger } from 'pino';
import { HboneErrors, NodemeshError } from '../errors';
import { parseSpiffeId } from '../identity/ca';
import { formatAuthority } from './authority';
import { DEFAULT_TUNING, HboneTuning, REASON_HEADER, sessionSettings } from './hbone-protocol';
import { H2Connection, H2RefusedError } from './h2/connection';
import { ErrorCode } from './h2/constants';
import type { H2Stream, HeaderMap } from './h2/stream';
import {
  IssuedIdentity, PeerVerifier, defaultPeerVerifier, describeTlsError, peerChainDer, sameCredentials,
  secureContextOptions, trustDomainOf,
} from './tls-identity';

export interface HboneTarget { address: string; port: number }

export interface HboneConnectRequest {
  /** The source workload's current identity; its certificate is the client certificate. */
  source: IssuedIdentity;
  /** The HBONE endpoint, e.g. podIP:15008. */
  target: HboneTarget;
  /** The real destination `ip:port`, sent as `:authority`. */
  authority: string;
  /** SPIFFE IDs the destination may present; anything else fails the connection. */
  expectedServerIds: string[];
  /** Extra request headers (forwarded, traceparent, baggage). Pseudo-headers are refused. */
  headers?: Record<string, string>;
  /** Starts a TCP connection to `target` (production: a marked socket in the source pod's netns). */
  dial: () => net.Socket;
}

export interface HboneClientOptions {
  log: Logger;
  tuning?: Partial<HboneTuning>;
  /** TCP connect + TLS handshake + identity check. */
  connectTimeoutMs?: number;
  /** CONNECT sent -> response headers received. */
  responseTimeoutMs?: number;
  /** A session with no streams closes after this long. */
  idleTimeoutMs?: number;
  /** A session with streams but no frames for this long is PINGed (0: never)... */
  keepaliveMs?: number;
  /** ...and destroyed if the PING is not answered within this long. */
  pingTimeoutMs?: number;
  verifyPeer?: PeerVerifier;
  now?: () => Date;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_RESPONSE_TIMEOUT_MS = 10_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
export const DEFAULT_KEEPALIVE_MS = 30_000;
export const DEFAULT_PING_TIMEOUT_MS = 10_000;

export interface HboneClientStats {
  sessions: {
    key: string; sourceId: string; target: string; serverId?: string;
    state: SessionState; activeStreams: number; maxStreams: number; streamsOpened: number; ageMs: number;
  }[];
  byKey: Record<string, { sessions: number; activeStreams: number }>;
  totals: { sessions: number; activeStreams: number; sessionsOpened: number; sessionFailures: number; streamsOpened: number; streamFailures: number };
}

type SessionState = 'connecting' | 'ready' | 'draining' | 'closed';

/** The credentials sessions are opened with; one object per (SPIFFE ID, certificate). */
interface Credentials { identity: IssuedIdentity; context: tls.SecureContext }

export class HboneClient {
  private readonly tuning: HboneTuning;
  private readonly connectTimeoutMs: number;
  private readonly responseTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly keepaliveMs: number;
  private readonly pingTimeoutMs: number;
  private readonly verifyPeer: PeerVerifier;
  private readonly now: () => Date;
  private readonly log: Logger;
  private readonly pool = new Map<string, ClientSession[]>();
  /** Latest credentials per source SPIFFE ID. */
  private readonly credentials = new Map<string, Credentials>();
  private closed = false;
  private counters = { sessionsOpened: 0, sessionFailures: 0, streamsOpened: 0, streamFailures: 0 };

  constructor(opts: HboneClientOptions) {
    this.log = opts.log;
    this.tuning = { ...DEFAULT_TUNING, ...opts.tuning };
    this.connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.responseTimeoutMs = opts.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.keepaliveMs = opts.keepaliveMs ?? DEFAULT_KEEPALIVE_MS;
    this.pingTimeoutMs = opts.pingTimeoutMs ?? DEFAULT_PING_TIMEOUT_MS;
    this.verifyPeer = opts.verifyPeer ?? defaultPeerVerifier;
    this.now = opts.now ?? (() => new Date());
    this.config = Object.freeze({
      tuning: this.tuning, connectTimeoutMs: this.connectTimeoutMs, idleTimeoutMs: this.idleTimeoutMs,
      keepaliveMs: this.keepaliveMs, pingTimeoutMs: this.pingTimeoutMs, verifyPeer: this.verifyPeer, now: this.now, log: this.log,
    });
  }

  /** Opens a tunnel to `req.authority`; resolves once the destination answered 200. The
   * stream carries the app's bytes: splice.ts joins it to a socket; h2/tunnel-duplex.ts makes
   * it a Duplex for code that needs one. */
  async connect(req: HboneConnectRequest): Promise<H2Stream> {
    if (this.closed) throw HboneErrors.NODEMESH_E_HBONE_CLOSED({ what: 'HBONE client' });
    if (expectedTrustDomains(req.expectedServerIds).length === 0) {
      throw new TypeError(`HboneConnectRequest.expectedServerIds ${JSON.stringify(req.expectedServerIds)} holds no SPIFFE ID: the destination identity must be known`);
    }
    for (const name in req.headers) {
      if (name.charCodeAt(0) === 58 /* ':' */) throw new TypeError(`HboneConnectRequest.headers may not set pseudo-header ${name}`);
      // eslint-disable-next-line no-control-regex
      if (/[\0\r\n]/.test(req.headers[name]) || !/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) throw new TypeError(`HboneConnectRequest.headers: invalid header ${JSON.stringify(name)}`);
    }
    const cred = this.credentialsFor(req.source);
    const key = poolKey(req);
    // One retry, only for streams the server provably did not process (GOAWAY raced with
    // our request, or REFUSED_STREAM): the next attempt lands on a fresh session.
    for (let attempt = 0; ; attempt++) {
      const session = this.acquire(key, req, cred);
      try {
        await session.ready;
        return await this.openStream(session, req);
      } catch (e) {
        if (attempt === 0 && !session.error && retryable(e)) {
          this.log.debug({ key, err: (e as Error).message }, 'HBONE stream refused before processing; retrying on a new session');
          continue;
        }
        this.counters.streamFailures++;
        throw NodemeshError.is(e) ? e : mapStreamError(e, req.authority, session);
      }
    }
  }

  stats(): HboneClientStats {
    const now = Date.now();
    const out: HboneClientStats = {
      sessions: [], byKey: {},
      totals: { sessions: 0, activeStreams: 0, ...this.counters },
    };
    for (const [key, list] of this.pool) {
      const k = (out.byKey[key] = { sessions: 0, activeStreams: 0 });
      for (const s of list) {
        out.sessions.push({
          key, sourceId: s.cred.identity.spiffeId, target: s.targetText, serverId: s.serverId,
          state: s.state, activeStreams: s.reserved, maxStreams: s.maxStreams, streamsOpened: s.streamsOpened, ageMs: now - s.openedAt,
        });
        k.sessions++;
        k.activeStreams += s.reserved;
        out.totals.sessions++;
        out.totals.activeStreams += s.reserved;
      }
    }
    return out;
  }

  /** Stops taking connects; sessions close once their streams finish (or now, with `force`). */
  close(opts: { force?: boolean } = {}): Promise<void> {
    this.closed = true;
    const all = [...this.pool.values()].flat();
    return Promise.all(all.map((s) => s.shutdown(opts.force === true))).then(() => undefined);
  }

  private credentialsFor(id: IssuedIdentity): Credentials {
    const cur = this.credentials.get(id.spiffeId);
    if (cur && sameCredentials(cur.identity, id)) return cur;
    // A caller holding a stale identity must not rotate us back to an older certificate
    // (and drain the sessions of the newer one): the newest certificate of a source wins.
    if (cur && id.notAfter.getTime() < cur.identity.notAfter.getTime()) return cur;
    trustDomainOf(id.spiffeId); // a malformed source identity fails here, not in a handshake
    let context: tls.SecureContext;
    try {
      context = tls.createSecureContext(secureContextOptions(id));
    } catch (e) {
      throw HboneErrors.NODEMESH_E_HBONE_TLS({ peer: 'this node', reason: `the certificate or key of ${id.spiffeId} is unusable (${(e as Error).message})` }, { cause: e });
    }
    const fresh: Credentials = { identity: id, context };
    this.credentials.set(id.spiffeId, fresh);
    if (cur) {
      this.log.info({ sourceId: id.spiffeId, notAfter: id.notAfter }, 'HBONE client certificate rotated; sessions with the old certificate drain');
      for (const list of this.pool.values()) for (const s of list) if (s.cred === cur) s.drain();
    }
    return fresh;
  }

  /** A session with room for one more stream, reserving that slot. */
  private acquire(key: string, req: HboneConnectRequest, cred: Credentials): ClientSession {
    let list = this.pool.get(key);
    if (list) {
      for (const s of list) {
        if ((s.state === 'ready' || s.state === 'connecting') && s.cred === cred && s.reserved < s.maxStreams) {
          s.reserve();
          return s;
        }
      }
    } else {
      list = [];
      this.pool.set(key, list);
    }
    const s = new ClientSession(this, key, req, cred);
    list.push(s);
    this.counters.sessionsOpened++;
    s.reserve();
    s.start(req.dial);
    return s;
  }

  /** @internal called by a session once it can take no more streams. */
  removeSession(s: ClientSession): void {
    const list = this.pool.get(s.key);
    if (!list) return;
    const i = list.indexOf(s);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.pool.delete(s.key);
  }

  /** @internal */
  sessionFailed(): void { this.counters.sessionFailures++; }

  /** @internal what sessions need from the client, built once. */
  readonly config: {
    tuning: HboneTuning; connectTimeoutMs: number; idleTimeoutMs: number; keepaliveMs: number; pingTimeoutMs: number;
    verifyPeer: PeerVerifier; now: () => Date; log: Logger;
  };


  private openStream(session: ClientSession, req: HboneConnectRequest): Promise<H2Stream> {
    const list = [':method', 'CONNECT', ':authority', req.authority];
    for (const k in req.headers) list.push(k, req.headers[k]);
    let stream: H2Stream;
    try {
      stream = session.conn!.request(list);
    } catch (e) {
      session.release();
      throw e;
    }
    session.streamsOpened++;
    this.counters.streamsOpened++;
    // The session's release() runs when the stream closes (H2Connection onStreamClose).
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        finish();
        stream.reset(ErrorCode.CANCEL);
        reject(HboneErrors.NODEMESH_E_HBONE_CONNECT_TIMEOUT({ target: `${session.targetText} (CONNECT ${req.authority}, no response)`, ms: this.responseTimeoutMs }));
      }, this.responseTimeoutMs);
      const finish = () => {
        clearTimeout(timer);
        stream.onresponse = null;
        stream.onclose = null;
      };
      stream.onresponse = (status: number, h: HeaderMap) => {
        finish();
        if (status === 200) { resolve(stream); return; }
        const reason = firstHeader(h[REASON_HEADER]) ?? `HTTP ${status}`;
        stream.reset(ErrorCode.CANCEL);
        reject(mapStatus(status, req.authority, reason));
      };
      // Raw errors: connect() decides whether to retry, then maps them.
      stream.onclose = (code: number, err?: Error) => {
        finish();
        reject(session.error ?? Object.assign(err ?? new Error(`stream closed before a response (RST_STREAM code ${code})`), { rstCode: code }));
      };
    });
  }
}

class ClientSession {
  state: SessionState = 'connecting';
  /** Streams open plus slots reserved by connects waiting for this session. */
  reserved = 0;
  maxStreams: number;
  streamsOpened = 0;
  conn?: H2Connection;
  serverId?: string;
  /** The first error the session or its TLS socket reported. */
  error?: Error;
  readonly openedAt = Date.now();
  readonly targetText: string;
  readonly ready: Promise<void>;
  private resolveReady!: () => void;
  private rejectReady!: (e: Error) => void;
  private idleTimer?: NodeJS.Timeout;
  /** When the last stream ended (0: streams open); the idle timer checks it. */
  private idleSince = 0;
  private tlsSocket?: tls.TLSSocket;
  private closedWaiters: (() => void)[] = [];

  constructor(private readonly client: HboneClient, readonly key: string, private readonly req: HboneConnectRequest, readonly cred: Credentials) {
    this.maxStreams = client.config.tuning.maxStreamsPerSession;
    this.targetText = formatAuthority(req.target.address, req.target.port);
    this.ready = new Promise((resolve, reject) => { this.resolveReady = resolve; this.rejectReady = reject; });
    this.ready.catch(noop);
  }

  reserve(): void {
    this.reserved++;
  }

  release(): void {
    if (--this.reserved > 0) return;
    if (this.state === 'draining') { this.conn?.close(); return; }
    if (this.state === 'ready') {
      // One timer per idle period, not one per stream: it re-arms itself for what is left.
      this.idleSince = Date.now();
      if (!this.idleTimer) this.armIdle(this.client.config.idleTimeoutMs);
    }
  }

  private armIdle(ms: number): void {
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.reserved > 0 || this.state !== 'ready') return;
      const left = this.idleSince + this.client.config.idleTimeoutMs - Date.now();
      if (left > 0) { this.armIdle(left); return; }
      this.client.config.log.debug({ key: this.key }, 'HBONE session idle; closing');
      this.setState('draining');
      this.conn?.close();
    }, ms);
    this.idleTimer.unref();
  }

  /** No new streams; close once the open ones finish. */
  drain(): void {
    if (this.state === 'closed' || this.state === 'draining') return;
    const wasConnecting = this.state === 'connecting';
    this.setState('draining');
    // Reservations made while handshaking still get their stream; close after them.
    if (this.reserved === 0 && !wasConnecting) this.conn?.close();
  }

  shutdown(force: boolean): Promise<void> {
    if (this.state === 'closed') return Promise.resolve();
    return new Promise((resolve) => {
      this.closedWaiters.push(resolve);
      if (force) {
        this.tlsSocket?.destroy();
        this.conn?.destroy();
        if (!this.conn && !this.tlsSocket) this.setState('closed');
      } else {
        this.drain();
        if (this.reserved === 0) this.conn?.close();
      }
    });
  }

  start(dial: () => net.Socket): void {
    const cfg = this.client.config;
    const log = cfg.log;
    let raw: net.Socket;
    try {
      raw = dial();
    } catch (e) {
      this.fail(HboneErrors.NODEMESH_E_HBONE_CONNECT({ target: this.targetText, reason: (e as Error).message }, { cause: e }));
      return;
    }
    raw.setNoDelay(true);
    let tcpConnected = false;
    raw.once('connect', () => { tcpConnected = true; });
    const sock = tls.connect({
      socket: raw,
      secureContext: this.cred.context,
      ALPNProtocols: ['h2'],
      // SPIFFE, not DNS: the server's identity is checked below against expectedServerIds.
      checkServerIdentity: () => undefined,
      rejectUnauthorized: true,
    });
    this.tlsSocket = sock;
    let handshakeDone = false;
    const timer = setTimeout(() => {
      const err = HboneErrors.NODEMESH_E_HBONE_CONNECT_TIMEOUT({ target: this.targetText, ms: cfg.connectTimeoutMs });
      this.fail(err);
      sock.destroy();
      raw.destroy();
    }, cfg.connectTimeoutMs);
    const onEarlyError = (e: Error) => {
      if (handshakeDone) return;
      clearTimeout(timer);
      this.fail(mapConnectError(e, this.targetText, !tcpConnected));
      sock.destroy();
      raw.destroy();
    };
    raw.once('error', onEarlyError);
    sock.once('error', onEarlyError);
    sock.once('close', () => onEarlyError(new Error('the connection closed during the TLS handshake')));
    sock.once('secureConnect', () => {
      const verify = async (): Promise<string> => {
        if (sock.alpnProtocol !== 'h2') throw HboneErrors.NODEMESH_E_HBONE_TLS({ peer: this.targetText, reason: 'the server did not agree to HTTP/2 (ALPN h2)' });
        const chain = peerChainDer(sock);
        // The server's SPIFFE rules are checked in the trust domain(s) of the identities we
        // expect (usually one), which need not be our own.
        let id: string | undefined;
        let lastError: unknown;
        for (const td of expectedTrustDomains(this.req.expectedServerIds)) {
          try {
            id = await cfg.verifyPeer(chain, this.cred.identity.trustBundlePem, td, cfg.now());
            break;
          } catch (e) {
            lastError = e;
          }
        }
        if (id === undefined) {
          throw HboneErrors.NODEMESH_E_HBONE_PEER_CERT({ peer: this.targetText, reason: (lastError as Error).message }, { cause: lastError });
        }
        if (!this.req.expectedServerIds.includes(id)) {
          throw HboneErrors.NODEMESH_E_HBONE_IDENTITY_MISMATCH({ target: this.targetText, presented: id, expected: this.req.expectedServerIds });
        }
        return id;
      };
      verify().then((id) => {
        if (this.state === 'closed') return;
        handshakeDone = true;
        clearTimeout(timer);
        this.serverId = id;
        this.attach(sock);
      }, (e: Error) => {
        handshakeDone = true;
        clearTimeout(timer);
        this.fail(e);
        sock.destroy();
      });
    });
    log.debug({ key: this.key }, 'HBONE session connecting');
  }

  private attach(sock: tls.TLSSocket): void {
    const cfg = this.client.config;
    const t = cfg.tuning;
    const conn = new H2Connection(sock, {
      role: 'client',
      settings: sessionSettings(t, 0),
      connectionWindow: t.connectionWindowBytes,
      // A peer that vanished (node down, path black-holed) sends no RST; without PINGs its
      // tunnels would hang until the kernel gives up on the TCP connection, many minutes later.
      keepaliveMs: cfg.keepaliveMs,
      pingTimeoutMs: cfg.pingTimeoutMs,
      onKeepaliveTimeout: () => {
        this.error ??= HboneErrors.NODEMESH_E_HBONE_STREAM({
          authority: this.targetText, reason: `no answer to an HTTP/2 PING within ${cfg.pingTimeoutMs} ms; the destination node or the network path to it is down`,
        });
        cfg.log.warn({ key: this.key }, 'HBONE session unresponsive; closing it and its tunnels');
      },
      onRemoteSettings: (s) => {
        if (s.maxConcurrentStreams !== undefined) this.maxStreams = Math.max(1, Math.min(t.maxStreamsPerSession, s.maxConcurrentStreams));
      },
      onGoaway: (code, _last, data) => {
        cfg.log.debug({ key: this.key, code }, 'HBONE session got GOAWAY; draining');
        if (code !== ErrorCode.NO_ERROR) {
          const why = data.length > 0 ? data.toString('latin1') : `GOAWAY error code ${code}`;
          this.error ??= code === ErrorCode.INADEQUATE_SECURITY
            ? HboneErrors.NODEMESH_E_HBONE_TLS({ peer: this.targetText, reason: `the destination refused our certificate: ${why}` })
            : HboneErrors.NODEMESH_E_HBONE_STREAM({ authority: this.targetText, reason: `the destination closed the session: ${why}` });
        }
        this.setState('draining');
      },
      onStreamClose: () => this.release(),
      onProtocolError: (reason, code) => cfg.log.debug({ key: this.key, code, err: reason }, 'HBONE session protocol error'),
      onClose: (e) => {
        if (e) this.error ??= e;
        this.setState('closed');
      },
    });
    this.conn = conn;
    // The server may refuse our certificate after our side of the TLS 1.3 handshake ended; the
    // alert then arrives as a socket error. Keep it so streams report the real reason.
    sock.on('error', (e) => { this.error ??= e; });
    if (this.state === 'draining') {
      // Rotated while handshaking: serve the reservations, then close.
      this.resolveReady();
      if (this.reserved === 0) conn.close();
      return;
    }
    this.setState('ready');
    this.resolveReady();
  }

  private fail(e: Error): void {
    if (this.state === 'closed') return;
    this.error ??= e;
    this.client.sessionFailed();
    this.client.config.log.warn({ key: this.key, code: (e as NodemeshError).code, err: e.message }, 'HBONE session failed');
    this.rejectReady(e);
    this.setState('closed');
  }

  private setState(s: SessionState): void {
    if (this.state === 'closed') return;
    this.state = s;
    if (s === 'closed') {
      this.client.removeSession(this);
      if (this.idleTimer) clearTimeout(this.idleTimer);
      for (const w of this.closedWaiters.splice(0)) w();
    }
  }
}

function noop(): void { /* see callers */ }

/** Trust domain per SPIFFE ID seen (null: not a SPIFFE ID). Bounded by the identities the
 * mesh knows; parsing on every connect showed in the new-connection profile. */
const trustDomainCache = new Map<string, string | null>();

function trustDomainOfId(id: string): string | null {
  let td = trustDomainCache.get(id);
  if (td === undefined) {
    td = parseSpiffeId(id)?.trustDomain ?? null;
    if (trustDomainCache.size >= 10_000) trustDomainCache.clear();
    trustDomainCache.set(id, td);
  }
  return td;
}

function expectedTrustDomains(ids: string[]): string[] {
  if (ids.length === 1) {
    const td = trustDomainOfId(ids[0]);
    return td ? [td] : [];
  }
  const out: string[] = [];
  for (const id of ids) {
    const td = trustDomainOfId(id);
    if (td && !out.includes(td)) out.push(td);
  }
  return out;
}

function poolKey(req: HboneConnectRequest): string {
  const ids = req.expectedServerIds.length === 1 ? req.expectedServerIds[0] : [...req.expectedServerIds].sort().join(',');
  return `${req.source.spiffeId}|${formatAuthority(req.target.address, req.target.port)}|${ids}`;
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** The server provably did not process the stream: refused by GOAWAY or REFUSED_STREAM. */
function retryable(e: unknown): boolean {
  return e instanceof H2RefusedError || (e as { rstCode?: number }).rstCode === ErrorCode.REFUSED_STREAM;
}

function mapConnectError(e: Error, target: string, tcpNotConnected: boolean): NodemeshError {
  if (NodemeshError.is(e)) return e;
  const code = (e as { code?: string }).code;
  if (code === 'ETIMEDOUT') return HboneErrors.NODEMESH_E_HBONE_CONNECT_TIMEOUT({ target, ms: 0 }, { cause: e });
  if (tcpNotConnected || code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
    const reason = code === 'ECONNREFUSED' ? 'connection refused (nothing listens on the HBONE port)' : e.message;
    return HboneErrors.NODEMESH_E_HBONE_CONNECT({ target, reason }, { cause: e });
  }
  return HboneErrors.NODEMESH_E_HBONE_TLS({ peer: target, reason: describeTlsError(e) }, { cause: e });
}

function mapStatus(status: number, authority: string, reason: string): NodemeshError {
  if (status === 403 || status === 401) return HboneErrors.NODEMESH_E_HBONE_DENIED({ authority, reason }, { details: { status } });
  if (status === 503 || status === 502 || status === 504) return HboneErrors.NODEMESH_E_HBONE_UPSTREAM({ authority, reason }, { details: { status } });
  if (status === 400 || status === 405) return HboneErrors.NODEMESH_E_HBONE_BAD_REQUEST({ authority, status, reason }, { details: { status } });
  return HboneErrors.NODEMESH_E_HBONE_STATUS({ authority, status, reason }, { details: { status } });
}

function mapStreamError(e: unknown, authority: string, session: { error?: Error; targetText: string }): NodemeshError {
  if (NodemeshError.is(e)) return e;
  const cause = session.error ?? e;
  if (NodemeshError.is(cause)) return cause;
  const code = (cause as { code?: string }).code ?? '';
  if (code.startsWith('ERR_SSL_') || code === 'ECONNRESET') {
    return HboneErrors.NODEMESH_E_HBONE_TLS({ peer: session.targetText, reason: describeTlsError(cause) }, { cause });
  }
  return HboneErrors.NODEMESH_E_HBONE_STREAM({ authority, reason: (cause as Error).message ?? String(cause) }, { cause });
}
