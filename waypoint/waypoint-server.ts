// The waypoint's HBONE listener. HboneListener (daemon/proxy/inbound-hbone.ts) terminates mutual TLS and the
// CONNECT (with the waypoint hook: `:authority` must be the VIP:port of a Service bound to
// this waypoint); each tunnel is then served here: HTTP/1.1 or HTTP/2 (prior knowledge, so
// gRPC too) through the request pipeline, anything else spliced as TCP to an endpoint of the
// Service over HBONE with the waypoint's identity.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import { pipeline as pump, type Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { PowerOfTwoChoices } from '../daemon/routing/balancer';
import { spiffeIdOf } from '../daemon/routing/decide';
import type { ServiceEntry, Snapshot } from '../daemon/state/snapshot';
import { waypointFor } from '../daemon/state/waypoints';
import type { HboneClient } from '../daemon/tunnel/hbone-client';
import { HBONE_PORT } from '../daemon/tunnel/hbone-protocol';
import { TunnelDuplex } from '../daemon/tunnel/h2/tunnel-duplex';
import { HboneListener, type HboneRequestContext } from '../daemon/proxy/inbound-hbone';
import type { HostPort } from '../daemon/tunnel/authority';
import type { IssuedIdentity } from '../daemon/tunnel/tls-identity';
import { REASON_HEADER, type Exchange, type Handler, type Reply, type TunnelContext } from './exchange';
import { endToEndHeaders } from './http-headers';
import { RequestBody } from './request-body';
import { authorizeConnection } from './l7-authorization';
import { declaredProtocol, sniffProtocol } from './protocol-sniff';
import { TunnelSocket } from './tunnel-socket';
import type { WaypointMetrics } from './waypoint-metrics';

/** A tunnel that says nothing this long (a server-first protocol) is passed through as TCP. */
export const SNIFF_TIMEOUT_MS = 1_000;

export interface WaypointServerDeps {
  /** This waypoint's Gateway. */
  gateway: { namespace: string; name: string };
  trustDomain: string;
  identity: () => IssuedIdentity;
  snapshot: () => Snapshot;
  pipeline: Handler;
  hbone: HboneClient;
  dial: (ip: string, port: number) => net.Socket;
  picker: PowerOfTwoChoices;
  metrics: WaypointMetrics;
  log: Logger;
}

type TunnelResult = { bytesSent: number; bytesReceived: number; error?: string };

export class WaypointServer {
  readonly hbone: HboneListener;
  /** One HTTP/1.1 server for every tunnel (a server per tunnel cost a server's setup per new
   * connection); each request finds its tunnel's context by its socket. */
  private readonly http1: http.Server;
  private readonly tunnels = new WeakMap<object, TunnelContext>();

  constructor(private readonly d: WaypointServerDeps) {
    this.http1 = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
      const t = this.tunnels.get(req.socket);
      if (t) this.dispatch(t, req, res);
      else { res.writeHead(500); res.end(); }
    });
    this.http1.on('clientError', (e: Error, sock: Duplex) => {
      this.d.log.debug({ err: e.message }, 'bad request in tunnel');
      if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      else sock.destroy();
    });
    this.hbone = new HboneListener({
      identity: d.identity, trustDomain: d.trustDomain, podIPs: [], log: d.log.child({ component: 'hbone-server' }),
      connectApp: () => { throw new Error('the waypoint serves tunnels itself'); },
      acceptAuthority: (dst) => this.refuseAuthority(dst),
      // Authorization is per request (authz stage) or, for TCP, per connection (passThrough):
      // which applies is known only once the tunnel's first bytes are seen.
      authorize: () => ({ allow: true }),
      serveTunnel: (ctx, stream) => this.serve(ctx, stream),
    });
  }

  handle(socket: net.Socket): void { this.hbone.handle(socket); }

  close(): Promise<void> { return this.hbone.close({ timeoutMs: 2_000 }); }

  private serviceOf(dst: HostPort): ServiceEntry | undefined {
    return this.d.snapshot().servicesByVIP.get(dst.address);
  }

  private refuseAuthority(dst: HostPort): string | undefined {
    const svc = this.serviceOf(dst);
    if (!svc) return `${dst.address} is not a Service VIP; the waypoint serves Services only`;
    if (!svc.ports.some((p) => p.port === dst.port)) return `Service ${svc.namespace}/${svc.name} has no port ${dst.port}`;
    const w = waypointFor(this.d.snapshot(), svc);
    if (!w || w.namespace !== this.d.gateway.namespace || w.name !== this.d.gateway.name) {
      return `Service ${svc.namespace}/${svc.name} does not use waypoint ${this.d.gateway.namespace}/${this.d.gateway.name}`;
    }
    return undefined;
  }

  private async serve(ctx: HboneRequestContext, stream: TunnelDuplex): Promise<TunnelResult> {
    const service = this.serviceOf(ctx.destination);
    if (!service) throw new Error(`Service for ${ctx.destination.address} went away`);
    const port = service.ports.find((p) => p.port === ctx.destination.port)!;
    const declared = declaredProtocol(port);
    const kind = declared === 'tcp' ? 'tcp' : await sniff(stream, declared === 'http' ? 0 : SNIFF_TIMEOUT_MS);
    this.d.metrics.tunnels.inc({ protocol: kind });
    const tunnel: Omit<TunnelContext, 'protocol'> = { sourceId: ctx.sourceId, sourceAddress: ctx.sourceAddress, service, vip: ctx.destination.address, port: ctx.destination.port };
    if (kind === 'tcp') return this.passThrough(tunnel, stream);
    return this.serveHttp({ ...tunnel, protocol: kind }, stream);
  }

  private serveHttp(t: TunnelContext, stream: TunnelDuplex): Promise<TunnelResult> {
    const sock = new TunnelSocket(stream, { address: t.sourceAddress });
    let server: http.Server | http2.Http2Server = this.http1;
    if (t.protocol === 'h2') {
      // An HTTP/2 server per tunnel: its session is the tunnel's, and its streams many.
      server = http2.createServer({ settings: { enablePush: false } }, (req, res) => this.dispatch(t, req, res));
      server.on('sessionError', (e: Error) => this.d.log.debug({ err: e.message }, 'bad HTTP/2 session in tunnel'));
    } else {
      this.tunnels.set(sock, t);
    }
    return new Promise((resolve) => {
      sock.on('close', () => resolve({ bytesSent: sock.bytesWritten, bytesReceived: sock.bytesRead }));
      sock.on('error', () => undefined);
      server.emit('connection', sock);
    });
  }

  private dispatch(t: TunnelContext, req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): void {
    this.onRequest(t, req, res).catch((e: Error) => {
      this.d.log.error({ err: e.message }, 'waypoint request failed');
      if (!res.headersSent) { res.writeHead(500); }
      res.end();
    });
  }

  private async onRequest(t: TunnelContext, req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): Promise<void> {
    const ac = new AbortController();
    res.on('close', () => { if (!res.writableFinished) ac.abort(new Error('client went away')); });
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    // The body streams upstream as it arrives (request-body.ts keeps the start for retries).
    const empty = 'stream' in req ? req.stream.endAfterHeaders : req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined;
    const length = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
    const body = RequestBody.stream(req, { empty: empty || length === 0, length });
    const x: Exchange = {
      tunnel: t, startedAt: performance.now(), method: req.method ?? 'GET',
      path: q < 0 ? url : url.slice(0, q), query: q < 0 ? '' : url.slice(q + 1),
      authority: String(req.headers[':authority'] ?? req.headers.host ?? `${t.vip}:${t.port}`),
      headers: endToEndHeaders(req.headers), body, signal: ac.signal,
      responseModifiers: [], failedEndpoints: new Set(), attempts: 0,
    };
    // Once answered, no attempt comes any more: an unsent body is read and dropped.
    const reply = await this.d.pipeline(x).finally(() => body.release());
    writeReply(res, reply);
  }

  private async passThrough(t: Omit<TunnelContext, 'protocol'>, stream: TunnelDuplex): Promise<TunnelResult> {
    const svc = t.service;
    const v = authorizeConnection(this.d.snapshot().authorizationPolicies, { principal: t.sourceId, ip: t.sourceAddress }, { gateway: this.d.gateway, service: svc, port: t.port });
    if (!v.allow) {
      this.d.log.warn({ caller: t.sourceId, service: `${svc.namespace}/${svc.name}:${t.port}`, policy: v.policy, reason: v.reason }, `TCP tunnel refused: ${v.message}`);
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      throw new Error(`RBAC: connection denied: ${v.reason}: ${v.message}`);
    }
    const ready = svc.endpoints.filter((e) => e.ports.has(t.port));
    const ep = this.d.picker.pick(ready);
    const workload = ep && this.d.snapshot().workloads.get(ep.workloadUid);
    if (!ep || !workload) throw new Error(`Service ${svc.namespace}/${svc.name} has no ready endpoint for port ${t.port}`);
    const target = ep.ports.get(t.port)!;
    const release = this.d.picker.track(ep.ip);
    try {
      const upstream = new TunnelDuplex(await this.d.hbone.connect({
        source: this.d.identity(), target: { address: ep.ip, port: HBONE_PORT }, authority: `${ep.ip}:${target}`,
        expectedServerIds: [spiffeIdOf(this.d.trustDomain, workload)], headers: { forwarded: `for=${t.sourceAddress}` },
        dial: () => this.d.dial(ep.ip, HBONE_PORT),
      }));
      let sent = 0, received = 0;
      stream.on('data', (c: Buffer) => { sent += c.length; });
      upstream.on('data', (c: Buffer) => { received += c.length; });
      const errors: string[] = [];
      await Promise.all([
        new Promise<void>((r) => pump(stream, upstream, (e) => { if (e) errors.push(e.message); r(); })),
        new Promise<void>((r) => pump(upstream, stream, (e) => { if (e) errors.push(e.message); r(); })),
      ]);
      return { bytesSent: sent, bytesReceived: received, ...(errors.length ? { error: errors[0] } : {}) };
    } finally {
      release();
    }
  }
}

/** Waits for the first bytes and puts them back; `timeoutMs` 0 waits as long as it takes. */
function sniff(stream: TunnelDuplex, timeoutMs: number): Promise<'h2' | 'http1' | 'tcp'> {
  return new Promise((resolve) => {
    let head = Buffer.alloc(0);
    let timer: NodeJS.Timeout | undefined;
    const finish = (kind: 'h2' | 'http1' | 'tcp') => {
      if (timer) clearTimeout(timer);
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      if (head.length > 0) stream.unshift(head);
      resolve(kind);
    };
    const onReadable = () => {
      let chunk: Buffer | null;
      while ((chunk = stream.read() as Buffer | null) !== null) head = Buffer.concat([head, chunk]);
      const r = sniffProtocol(head);
      if (r !== 'need-more') finish(r);
    };
    const onEnd = () => finish('tcp');
    if (timeoutMs > 0) timer = setTimeout(() => finish('tcp'), timeoutMs);
    stream.on('readable', onReadable);
    stream.once('end', onEnd);
  });
}

function writeReply(res: http.ServerResponse | http2.Http2ServerResponse, reply: Reply): void {
  if (res.destroyed || res.headersSent) return;
  const headers = { ...reply.headers };
  if (reply.local && headers[REASON_HEADER] === undefined) headers[REASON_HEADER] = reply.local;
  if (Buffer.isBuffer(reply.body)) headers['content-length'] = String(reply.body.length);
  try {
    (res as http.ServerResponse).writeHead(reply.status, headers);
  } catch (e) {
    (res as http.ServerResponse).writeHead(502, { [REASON_HEADER]: `upstream sent headers the caller cannot take: ${(e as Error).message}` });
    res.end();
    return;
  }
  if (Buffer.isBuffer(reply.body)) { res.end(reply.body); return; }
  const body = reply.body;
  const trailers = (reply as { trailers?: Record<string, string | string[]> }).trailers;
  body.on('data', (c: Buffer) => { if (!(res as http.ServerResponse).write(c)) body.pause(); });
  res.on('drain', () => body.resume());
  body.on('end', () => {
    if (trailers && Object.keys(trailers).length > 0) res.addTrailers(trailers as Record<string, string>);
    res.end();
  });
  body.on('error', () => res.destroy());
  res.on('close', () => { if (!body.destroyed) body.destroy(); });
}
