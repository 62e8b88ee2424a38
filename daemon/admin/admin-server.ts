// Admin (15000, localhost; optionally a unix socket), readiness (15021) and metrics (15020).
// Every listener is bound before the daemon reports ready.
import * as fs from 'node:fs';
import * as http from 'node:http';
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

function listen(server: http.Server, opts: { port: number; host: string } | { path: string }): Promise<http.Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts, () => { server.off('error', reject); resolve(server); });
  });
}

export async function startAdminServers(cfg: { adminPort: number; metricsPort: number; readinessPort: number; adminSocket?: string },
  routes: AdminRoutes, registry: Registry): Promise<http.Server[]> {
  const servers: http.Server[] = [];
  const admin = adminHandler(routes, registry);
  const metrics = metricsHandler(registry);
  servers.push(await listen(http.createServer(admin), { host: '127.0.0.1', port: cfg.adminPort }));
  if (cfg.adminSocket) {
    try { fs.unlinkSync(cfg.adminSocket); } catch { /* not there */ }
    servers.push(await listen(http.createServer(admin), { path: cfg.adminSocket }));
  }
  const ready = readyHandler(routes);
  servers.push(await listen(http.createServer((req, res) => {
    if (req.url?.startsWith('/healthz/ready')) return ready(res);
    send(res, 404, 'not found\n');
  }), { host: '0.0.0.0', port: cfg.readinessPort }));
  servers.push(await listen(http.createServer((req, res) => {
    if (req.url !== '/metrics') return send(res, 404, 'not found\n');
    metrics(res);
  }), { host: '0.0.0.0', port: cfg.metricsPort }));
  return servers;
}
