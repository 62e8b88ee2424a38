// The end of the pipeline: one attempt to one endpoint, over HBONE with the waypoint's own
// certificate, speaking the caller's protocol inside: HTTP/1.1 for HTTP/1.1, HTTP/2 for
// HTTP/2 and gRPC.
//
// Upstream tunnels are kept for the next request, as every proxy keeps its upstream
// connections: an HTTP/1.1 keep-alive pool (an http.Agent) and one multiplexed HTTP/2
// session per (caller, caller address, endpoint, endpoint identity). The caller is in the key
// because each tunnel carries a caller statement for that caller (the destination judges it
// once, when the tunnel opens, and again on policy changes). A CONNECT stream, a caller
// statement (Ed25519 sign here, verify at the destination), and the destination's TCP
// connection to the app are paid per tunnel, not per request (the profile: they were most of
// the waypoint's and the destination's CPU per request).
//
// Failures become replies the retry stage understands: `connect-failure` before the request
// left, `reset` after. A request that met a kept connection the upstream had just closed (the
// keep-alive race, no response byte) is sent once more on a fresh tunnel when its method is
// idempotent (and its body can still be sent whole), before the retry stage sees anything.
//
// The request body streams to the attempt as the caller sends it (request-body.ts), so a
// client-streaming or bidirectional gRPC call starts upstream with its first message.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import * as fs from 'node:fs';
import { DaemonErrors, NodemeshError } from '../daemon/errors';
import { CALLER_STATEMENT_HEADER, signStatement } from '../daemon/tunnel/caller-statement';
import { spiffeIdOf } from '../daemon/routing/decide';
import type { HboneClient } from '../daemon/tunnel/hbone-client';
import { HBONE_PORT } from '../daemon/tunnel/hbone-protocol';
import type { IssuedIdentity } from '../daemon/tunnel/tls-identity';
import { endToEndHeaders } from './http-headers';
import { localReply, type Exchange, type HeaderMap, type Reply } from './exchange';
import { IDEMPOTENT_METHODS } from './retry-decision';
import { TunnelSocket } from './tunnel-socket';

export interface ForwardDeps {
  hbone: HboneClient;
  trustDomain: string;
  /** The waypoint's certificate; undefined until issued. */
  identity: () => IssuedIdentity | undefined;
  /** A TCP connection to ip:port from the waypoint's network namespace. */
  dial: (ip: string, port: number) => net.Socket;
  /** Extra CONNECT headers for a tunnel (the caller statement, issue 9 item 6). */
  connectHeaders?: (x: Exchange) => Record<string, string>;
}

/** A reply whose body is still streaming, with trailers once they arrive (gRPC status). */
export interface StreamedReply extends Reply { body: Readable; trailers: HeaderMap }

/** The handler, and the pool behind it. */
export interface Forwarder {
  (x: Exchange): Promise<Reply>;
  stats(): UpstreamStats;
  /** Drops the kept HTTP/1.1 tunnels; HTTP/2 sessions end with GOAWAY once their streams are
   * done. Resolves when they have (at most `timeoutMs`). */
  close(timeoutMs?: number): Promise<void>;
}

export interface UpstreamStats { keys: number; http1: { open: number; idle: number }; http2Sessions: number; tunnelsOpened: number }

/** Idle kept tunnels close after this long: under Node's default server keep-alive timeout
 * (5 s), so the upstream rarely closes a tunnel just as a request is sent on it (a POST met
 * that way cannot be sent again). */
export const UPSTREAM_IDLE_MS = 4_000;
/** Kept idle HTTP/1.1 tunnels per key. */
export const MAX_IDLE_PER_KEY = 64;
/** Pool keys (callers x endpoints) kept at most; idle ones are dropped first, then the oldest. */
export const MAX_POOL_KEYS = 4096;

/** Requests each kept upstream tunnel (HTTP/1.1 socket or HTTP/2 session) has carried, and the
 * circuitBreaker.maxRequestsPerConnection that applies to it. */
const served = new WeakMap<object, number>();
const requestLimit = new WeakMap<object, number>();
function countRequest<T extends object>(tunnel: T, x: Exchange): T {
  served.set(tunnel, (served.get(tunnel) ?? 0) + 1);
  if (x.maxRequestsPerConnection) requestLimit.set(tunnel, x.maxRequestsPerConnection);
  return tunnel;
}

/** Marks errors that happened before the request left (opening the tunnel). */
const connectErrors = new WeakSet<Error>();

class UpstreamPool {
  private readonly h1 = new Map<string, http.Agent>();
  private readonly h2 = new Map<string, http2.ClientHttp2Session>();
  private readonly sweeper: NodeJS.Timeout;
  tunnelsOpened = 0;

  constructor(private readonly deps: ForwardDeps) {
    this.sweeper = setInterval(() => this.sweep(), UPSTREAM_IDLE_MS);
    this.sweeper.unref();
  }

  /** The tunnel's identity: who it vouches for, from where, to which endpoint and identity. */
  key(x: Exchange): string {
    const ep = x.endpoint!;
    return `${x.tunnel.sourceId}|${x.tunnel.sourceAddress}|${ep.ip}:${ep.port}|${ep.workload.namespace}/${ep.workload.serviceAccount}`;
  }

  /** Opens an HBONE tunnel for this exchange's caller and endpoint. */
  async open(x: Exchange, id: IssuedIdentity): Promise<TunnelSocket> {
    const ep = x.endpoint!;
    this.tunnelsOpened++;
    try {
      const stream = await this.deps.hbone.connect({
        source: id, target: { address: ep.ip, port: HBONE_PORT }, authority: `${ep.ip}:${ep.port}`,
        expectedServerIds: [spiffeIdOf(this.deps.trustDomain, ep.workload)],
        headers: { forwarded: `for=${x.tunnel.sourceAddress}`, ...this.deps.connectHeaders?.(x) },
        dial: () => this.deps.dial(ep.ip, HBONE_PORT),
      });
      return new TunnelSocket(stream, { allowHalfOpen: false, endOnDestroy: true });
    } catch (e) {
      if (e instanceof Error) connectErrors.add(e);
      throw e;
    }
  }

  agent(x: Exchange, id: IssuedIdentity): http.Agent {
    const key = this.key(x);
    let a = this.h1.get(key);
    if (!a) {
      this.makeRoom();
      a = new http.Agent({ keepAlive: true, maxFreeSockets: MAX_IDLE_PER_KEY, timeout: UPSTREAM_IDLE_MS, scheduling: 'lifo' });
      // The first exchange of a key stands for all of them: the key pins everything the
      // tunnel carries (caller, its address, endpoint and its identity).
      const first = x;
      (a as unknown as { createConnection: (o: unknown, cb: (e: Error | null, s?: net.Socket) => void) => undefined }).createConnection = (_o, cb) => {
        this.open(first, this.deps.identity() ?? id).then((s) => cb(null, s as unknown as net.Socket), (e: Error) => cb(e));
        return undefined;
      };
      // circuitBreaker.maxRequestsPerConnection: a tunnel that served its share is not kept.
      // (The agent has no socket limit, so no request ever waits for a freed socket: every
      // freed one passes through keepSocketAlive.)
      const keep = a.keepSocketAlive.bind(a);
      a.keepSocketAlive = (s) => { const lim = requestLimit.get(s); return (lim === undefined || (served.get(s) ?? 0) < lim) && keep(s); };
      this.h1.set(key, a);
    }
    return a;
  }

  async session(x: Exchange, id: IssuedIdentity): Promise<http2.ClientHttp2Session> {
    const key = this.key(x);
    const cur = this.h2.get(key);
    if (cur && !cur.closed && !cur.destroyed) {
      if (!x.maxRequestsPerConnection || (served.get(cur) ?? 0) < x.maxRequestsPerConnection) return countRequest(cur, x);
      this.h2.delete(key); // served its share: no new streams; it closes once its open ones end
      cur.close();
    }
    const sock = await this.open(x, id);
    const again = this.h2.get(key); // another request opened one meanwhile
    if (again && !again.closed && !again.destroyed) { sock.destroy(); return countRequest(again, x); }
    this.makeRoom();
    const session = http2.connect('http://upstream', { createConnection: () => sock as unknown as net.Socket });
    const forget = () => { if (this.h2.get(key) === session) this.h2.delete(key); };
    session.on('error', forget);
    session.on('goaway', forget);
    session.on('close', forget);
    session.setTimeout(UPSTREAM_IDLE_MS, () => { forget(); session.close(); });
    this.h2.set(key, session);
    return countRequest(session, x);
  }

  stats(): UpstreamStats {
    let open = 0;
    let idle = 0;
    for (const a of this.h1.values()) {
      for (const l of Object.values(a.sockets)) open += l?.length ?? 0;
      for (const l of Object.values(a.freeSockets)) idle += l?.length ?? 0;
    }
    return { keys: this.h1.size + this.h2.size, http1: { open, idle }, http2Sessions: this.h2.size, tunnelsOpened: this.tunnelsOpened };
  }

  close(timeoutMs = 2_000): Promise<void> {
    clearInterval(this.sweeper);
    for (const a of this.h1.values()) a.destroy();
    const sessions = [...this.h2.values()];
    this.h1.clear();
    this.h2.clear();
    return new Promise((resolve) => {
      let left = sessions.length;
      const timer = setTimeout(() => { for (const s of sessions) s.destroy(); resolve(); }, timeoutMs);
      timer.unref();
      const done = () => { if (--left <= 0) { clearTimeout(timer); resolve(); } };
      if (left === 0) done();
      for (const s of sessions) { if (s.closed || s.destroyed) done(); else s.close(done); }
    });
  }

  /** Drops agents with nothing open or waiting (their keys came and went). */
  private sweep(): void {
    for (const [k, a] of this.h1) {
      if (Object.keys(a.sockets).length === 0 && Object.keys(a.freeSockets).length === 0 && Object.keys(a.requests).length === 0) {
        a.destroy();
        this.h1.delete(k);
      }
    }
  }

  private makeRoom(): void {
    if (this.h1.size + this.h2.size < MAX_POOL_KEYS) return;
    this.sweep();
    // Still full: the oldest keys go (their open requests finish; their tunnels close).
    for (const [k, a] of this.h1) { if (this.h1.size + this.h2.size < MAX_POOL_KEYS) return; a.destroy(); this.h1.delete(k); }
    for (const [k, s] of this.h2) { if (this.h1.size + this.h2.size < MAX_POOL_KEYS) return; s.close(); this.h2.delete(k); }
  }
}

export function forwarder(deps: ForwardDeps): Forwarder {
  const pool = new UpstreamPool(deps);
  const f = (async (x: Exchange): Promise<Reply> => {
    const id = deps.identity();
    if (!id) return localReply(503, 'the waypoint has no certificate yet', { failure: 'connect-failure' });
    if (x.tunnel.protocol === 'h2') {
      let session: http2.ClientHttp2Session;
      try {
        session = await pool.session(x, id);
      } catch (e) {
        return connectFailure(x, e);
      }
      if (x.signal.aborted) return localReply(499, 'request abandoned');
      return sendH2(x, session);
    }
    const agent = pool.agent(x, id);
    const first = await sendH1(x, agent);
    // The keep-alive race: the upstream closed a kept tunnel as we reused it. Nothing was
    // answered; an idempotent request goes once more, on a fresh tunnel.
    if (first.kind === 'stale' && IDEMPOTENT_METHODS.has(x.method) && x.body.replayable && !x.signal.aborted) {
      const again = await sendH1(x, agent);
      return again.reply;
    }
    return first.reply;
  }) as Forwarder;
  f.stats = () => pool.stats();
  f.close = (timeoutMs) => pool.close(timeoutMs);
  return f;

  function connectFailure(x: Exchange, e: unknown): Reply {
    const code = NodemeshError.is(e) ? e.code : '';
    const msg = (e as Error).message;
    const ep = x.endpoint!;
    if (code === 'NODEMESH_E_HBONE_DENIED') return localReply(403, `the destination refused the waypoint: ${msg}`);
    return localReply(503, `cannot reach ${ep.ip}:${ep.port}: ${msg}`, { failure: 'connect-failure' });
  }

  function sendH1(x: Exchange, agent: http.Agent): Promise<{ kind: 'done' | 'stale'; reply: Reply }> {
    return new Promise((resolve) => {
      const body = x.body.empty ? null : x.body.open();
      if (body === undefined) { resolve({ kind: 'done', reply: bodyGone() }); return; }
      let answered = false;
      // The caller's content-length crosses (it is end-to-end); without one the body goes chunked.
      const headers = { ...x.headers, host: x.authority, ...(x.body.empty ? { 'content-length': '0' } : {}) };
      const req = http.request({
        agent, method: x.method, path: x.query ? `${x.path}?${x.query}` : x.path, headers, setHost: false,
      }, (res) => {
        answered = true;
        x.signal.removeEventListener('abort', onAbort);
        x.signal.addEventListener('abort', () => res.destroy(), { once: true });
        resolve({ kind: 'done', reply: { status: res.statusCode ?? 502, headers: endToEndHeaders(res.headers), body: res, trailers: {} } as StreamedReply });
      });
      req.once('socket', (sock) => countRequest(sock, x));
      const onAbort = () => req.destroy(new Error('aborted'));
      x.signal.addEventListener('abort', onAbort, { once: true });
      req.on('error', (e) => {
        if (answered) return;
        x.signal.removeEventListener('abort', onAbort);
        if (connectErrors.has(e)) { resolve({ kind: 'done', reply: connectFailure(x, e) }); return; }
        const reply = localReply(503, `upstream reset before the response: ${e.message}`, { failure: 'reset' });
        resolve({ kind: req.reusedSocket ? 'stale' : 'done', reply });
      });
      if (body) sendBody(body, req); else req.end();
    });
  }
}

/** The request body into one attempt's upstream request; a caller that fails mid-body resets it. */
function sendBody(body: Readable, req: Writable): void {
  body.on('error', (e) => req.destroy(e));
  req.on('error', () => body.destroy());
  body.pipe(req);
}

/** An attempt after the body outgrew the retry buffer (the retry stage does not make one). */
const bodyGone = (): Reply => localReply(503, 'the request body was already sent once and is too large to send again');

function sendH2(x: Exchange, session: http2.ClientHttp2Session): Promise<Reply> {
  return new Promise((resolve) => {
    const body = x.body.empty ? null : x.body.open();
    if (body === undefined) { resolve(bodyGone()); return; }
    let answered = false;
    const fail = (e: Error) => {
      if (answered) return;
      answered = true;
      resolve(localReply(503, `upstream reset before the response: ${e.message}`, { failure: 'reset' }));
    };
    let req: http2.ClientHttp2Stream;
    try {
      req = session.request({
        ':method': x.method, ':path': x.query ? `${x.path}?${x.query}` : x.path, ':authority': x.authority,
        // te: trailers is the one te value HTTP/2 allows, and gRPC servers require it.
        ...x.headers, te: 'trailers',
      }, { endStream: !body });
    } catch (e) {
      body?.destroy();
      fail(e as Error);
      return;
    }
    const trailers: HeaderMap = {};
    req.on('trailers', (t) => Object.assign(trailers, endToEndHeaders(t)));
    req.on('error', fail);
    req.on('close', () => { if (!answered) fail(new Error(`stream closed (code ${req.rstCode})`)); });
    x.signal.addEventListener('abort', () => { if (!req.closed) req.close(http2.constants.NGHTTP2_CANCEL); }, { once: true });
    req.on('response', (h) => {
      answered = true;
      resolve({ status: Number(h[':status'] ?? 502), headers: endToEndHeaders(h), body: req, trailers } as StreamedReply);
    });
    if (body) sendBody(body, req);
  });
}

/** The caller statement for one tunnel: the original caller, bound to the endpoint. */
export function callerStatementHeader(secretKey: Uint8Array, signer: () => string): (x: Exchange) => Record<string, string> {
  return (x) => ({
    [CALLER_STATEMENT_HEADER]: signStatement({ signer: signer(), secretKey }, { caller: x.tunnel.sourceId, dst: `${x.endpoint!.ip}:${x.endpoint!.port}`, now: Date.now() }),
  });
}

export function loadSigningKey(file: string): Uint8Array {
  const raw = new Uint8Array(Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64url'));
  if (raw.length !== 64) throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_WAYPOINT_SIGNING_KEY_FILE', value: file, expected: 'a file holding a base64url Ed25519 secret key (64 bytes)' });
  return raw;
}
