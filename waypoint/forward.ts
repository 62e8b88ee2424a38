// The end of the pipeline: one attempt to one endpoint, over HBONE with the waypoint's own
// certificate (a fresh CONNECT stream from the pooled sessions of daemon/tunnel's HboneClient),
// speaking the caller's protocol inside: HTTP/1.1 for HTTP/1.1, HTTP/2 for HTTP/2 and gRPC.
// Failures become replies the retry stage understands: `connect-failure` before the request
// left, `reset` after.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import type { Readable } from 'node:stream';
import * as fs from 'node:fs';
import { DaemonErrors, NodemeshError } from '../daemon/errors';
import { CALLER_STATEMENT_HEADER, signStatement } from '../daemon/tunnel/caller-statement';
import { spiffeIdOf } from '../daemon/routing/decide';
import type { HboneClient } from '../daemon/tunnel/hbone-client';
import { HBONE_PORT } from '../daemon/tunnel/hbone-protocol';
import { TunnelDuplex } from '../daemon/tunnel/h2/tunnel-duplex';
import type { IssuedIdentity } from '../daemon/tunnel/tls-identity';
import { endToEndHeaders } from './http-headers';
import { localReply, type Exchange, type HeaderMap, type Reply } from './exchange';
import { TunnelSocket } from './tunnel-socket';

export interface ForwardDeps {
  hbone: HboneClient;
  trustDomain: string;
  /** The waypoint's certificate; undefined until issued. */
  identity: () => IssuedIdentity | undefined;
  /** A TCP connection to ip:port from the waypoint's network namespace. */
  dial: (ip: string, port: number) => net.Socket;
  /** Extra CONNECT headers for this attempt (the caller statement, issue 9 item 6). */
  connectHeaders?: (x: Exchange) => Record<string, string>;
}

/** A reply whose body is still streaming, with trailers once they arrive (gRPC status). */
export interface StreamedReply extends Reply { body: Readable; trailers: HeaderMap }

export function forwarder(deps: ForwardDeps): (x: Exchange) => Promise<Reply> {
  return async (x) => {
    const id = deps.identity();
    if (!id) return localReply(503, 'the waypoint has no certificate yet', { failure: 'connect-failure' });
    const ep = x.endpoint!;
    let stream: TunnelDuplex;
    try {
      stream = new TunnelDuplex(await deps.hbone.connect({
        source: id, target: { address: ep.ip, port: HBONE_PORT }, authority: `${ep.ip}:${ep.port}`,
        expectedServerIds: [spiffeIdOf(deps.trustDomain, ep.workload)],
        headers: { forwarded: `for=${x.tunnel.sourceAddress}`, ...(x.traceparent ? { traceparent: x.traceparent } : {}), ...deps.connectHeaders?.(x) },
        dial: () => deps.dial(ep.ip, HBONE_PORT),
      }));
    } catch (e) {
      const code = NodemeshError.is(e) ? e.code : '';
      const msg = (e as Error).message;
      if (code === 'NODEMESH_E_HBONE_DENIED') return localReply(403, `the destination refused the waypoint: ${msg}`);
      return localReply(503, `cannot reach ${ep.ip}:${ep.port}: ${msg}`, { failure: 'connect-failure' });
    }
    if (x.signal.aborted) { stream.destroy(); return localReply(499, 'request abandoned'); }
    const sock = new TunnelSocket(stream);
    return x.tunnel.protocol === 'h2' ? sendH2(x, sock) : sendH1(x, sock);
  };
}

function sendH1(x: Exchange, sock: TunnelSocket): Promise<Reply> {
  return new Promise((resolve) => {
    let answered = false;
    const req = http.request({
      createConnection: () => sock as unknown as net.Socket, method: x.method, path: x.query ? `${x.path}?${x.query}` : x.path,
      headers: { ...x.headers, host: x.authority, 'content-length': String(x.body.length) }, setHost: false,
    }, (res) => {
      answered = true;
      x.signal.removeEventListener('abort', onAbort);
      x.signal.addEventListener('abort', () => res.destroy(), { once: true });
      resolve({ status: res.statusCode ?? 502, headers: endToEndHeaders(res.headers), body: res, trailers: {} } as StreamedReply);
    });
    const onAbort = () => req.destroy(new Error('aborted'));
    x.signal.addEventListener('abort', onAbort, { once: true });
    req.on('error', (e) => {
      if (answered) return;
      resolve(localReply(503, `upstream reset before the response: ${e.message}`, { failure: 'reset' }));
    });
    req.end(x.body);
  });
}

function sendH2(x: Exchange, sock: TunnelSocket): Promise<Reply> {
  return new Promise((resolve) => {
    let answered = false;
    const session = http2.connect(`http://${x.authority.replace(/[^A-Za-z0-9.:[\]-]/g, '') || 'upstream'}`, { createConnection: () => sock as unknown as net.Socket });
    const fail = (e: Error) => {
      if (answered) return;
      answered = true;
      session.destroy();
      resolve(localReply(503, `upstream reset before the response: ${e.message}`, { failure: 'reset' }));
    };
    session.on('error', fail);
    const req = session.request({
      ':method': x.method, ':path': x.query ? `${x.path}?${x.query}` : x.path, ':authority': x.authority,
      // te: trailers is the one te value HTTP/2 allows, and gRPC servers require it.
      ...x.headers, te: 'trailers',
    }, { endStream: x.body.length === 0 });
    const trailers: HeaderMap = {};
    req.on('trailers', (t) => Object.assign(trailers, endToEndHeaders(t)));
    req.on('close', () => session.close());
    req.on('error', fail);
    x.signal.addEventListener('abort', () => { req.close(http2.constants.NGHTTP2_CANCEL); session.destroy(); }, { once: true });
    req.on('response', (h) => {
      answered = true;
      resolve({ status: Number(h[':status'] ?? 502), headers: endToEndHeaders(h), body: req, trailers } as StreamedReply);
    });
    if (x.body.length > 0) req.end(x.body);
  });
}

/** The caller statement for one attempt: the original caller, bound to the endpoint. */
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
