// Admin (15000, loopback of the daemon's own namespace only; optionally a unix socket, 0600 in
// a 0700 directory), readiness (15021) and metrics (15020) on every address, IPv4 and IPv6,
// where the kubelet and Prometheus reach them. Every listener is bound before the daemon
// reports ready. TCP listeners are SO_REUSEPORT when a `bind` is given (a restarting daemon
// binds beside the old one); the unix socket is bound under a private name and renamed into
// place, so a new daemon takes the path over and the old one's close does not remove it.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { Registry } from 'prom-client';

export type JsonRoute = () => unknown;

export interface AdminRoutes {
  ready: () => { ready: boolean; reasons: string[] };
  json: Record<string, JsonRoute>;
}

function metricsHandler(registry: Registry) {
  return (res: http.ServerResponse) => {
    registry.metrics().then((m) => { res.writeHead(200, { 'content-type': registry.contentType }); res.end(m); },
      (e: Error) => send(res, 500, e.message));
  };
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n';
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json' });
  res.end(text);
}

function readyHandler(routes: AdminRoutes) {
  return (res: http.ServerResponse) => {
    const r = routes.ready();
    send(res, r.ready ? 200 : 503, r.ready ? 'ready\n' : `not ready: ${r.reasons.join('; ')}\n`);
  };
}

/** The admin API; it also serves /metrics, so the unix admin socket gives everything. */
export function adminHandler(routes: AdminRoutes, registry: Registry): http.RequestListener {
  const ready = readyHandler(routes);
  const metrics = metricsHandler(registry);
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (req.method !== 'GET') return send(res, 405, { error: 'only GET is supported' });
    if (url.pathname === '/healthz/ready') return ready(res);
    if (url.pathname === '/metrics') return metrics(res);
    const route = routes.json[url.pathname];
    if (route) {
      try { return send(res, 200, route()); } catch (e) { return send(res, 500, { error: (e as Error).message }); }
    }
    return send(res, 404, { error: `no such endpoint ${url.pathname}`, endpoints: ['/healthz/ready', '/metrics', ...Object.keys(routes.json)] });
  };
}

/** Creates a listening TCP socket (fd) in the daemon's own namespace. */
export type BindListener = (family: 4 | 6, host: string, port: number) => number;

/** Where each listener goes: admin on loopback only, readiness and metrics dual-stack. */
export const ADMIN_BIND_HOST = '127.0.0.1';
export const PUBLIC_BIND_HOST = '::';

function listen(server: http.Server, opts: { port: number; host: string } | { path: string } | { fd: number }): Promise<http.Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts, () => { server.off('error', reject); resolve(server); });
  });
}

function listenTcp(server: http.Server, family: 4 | 6, host: string, port: number, bind: BindListener | undefined): Promise<http.Server> {
  // Without a native bind (unit tests): Node's own, dual-stack for '::' (ipv6Only false).
  if (!bind) return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, ipv6Only: false }, () => { server.off('error', reject); resolve(server); });
  });
  return listen(server, { fd: bind(family, host, port) });
}

/** Binds the admin unix socket: directory 0700, socket 0600, atomically at `socketPath`. */
async function listenUnix(server: http.Server, socketPath: string): Promise<http.Server> {
  const dir = path.dirname(socketPath);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  const staging = path.join(dir, `.admin-${process.pid}.sock`);
  try { fs.unlinkSync(staging); } catch { /* not there */ }
  await listen(server, { path: staging });
  fs.chmodSync(staging, 0o600);
  fs.renameSync(staging, socketPath);
  return server;
}

export async function startAdminServers(cfg: { adminPort: number; metricsPort: number; readinessPort: number; adminSocket?: string },
  routes: AdminRoutes, registry: Registry, bind?: BindListener): Promise<http.Server[]> {
  const servers: http.Server[] = [];
  const admin = adminHandler(routes, registry);
  const metrics = metricsHandler(registry);
  servers.push(await listenTcp(http.createServer(admin), 4, ADMIN_BIND_HOST, cfg.adminPort, bind));
  if (cfg.adminSocket) servers.push(await listenUnix(http.createServer(admin), cfg.adminSocket));
  const ready = readyHandler(routes);
  servers.push(await listenTcp(http.createServer((req, res) => {
    if (req.url?.startsWith('/healthz/ready')) return ready(res);
    send(res, 404, 'not found\n');
  }), 6, PUBLIC_BIND_HOST, cfg.readinessPort, bind));
  servers.push(await listenTcp(http.createServer((req, res) => {
    if (req.url !== '/metrics') return send(res, 404, 'not found\n');
    metrics(res);
  }), 6, PUBLIC_BIND_HOST, cfg.metricsPort, bind));
  return servers;
}
