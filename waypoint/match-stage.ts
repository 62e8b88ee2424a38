// Stage: which route rule takes the request. A Service with no accepted route is served as
// itself (one backend: the Service, weight 1), so a waypoint changes nothing until a route
// says so; a Service with routes where none matches answers 404, as the Gateway API requires.
import type { RouteTable } from './route-table';
import { localReply, type Layer } from './exchange';
import { MATCH_ALL } from './convert-http-route';
import type { Route } from './route-model';

/** The route a Service without routes gets: everything to the Service itself. */
export function implicitRoute(service: { namespace: string; name: string }, port: number): Route {
  return {
    kind: 'HTTPRoute', namespace: service.namespace, name: '', creationTimestamp: '', generation: 0,
    parents: [{ namespace: service.namespace, name: service.name }],
    rules: [{ index: 0, matches: [MATCH_ALL], filters: [], backends: [{ namespace: service.namespace, name: service.name, port, weight: 1, filters: [] }], invalidBackends: [], timeouts: {} }],
  };
}

export const matchStage = (routes: () => RouteTable): Layer => (next) => async (x) => {
  const svc = x.tunnel.service;
  const attached = routes().forService(svc, x.tunnel.port);
  const candidates = attached.length > 0 ? attached : [implicitRoute(svc, x.tunnel.port)];
  const sel = routes().select(candidates, { method: x.method, path: x.path, query: x.query, headers: flatHeaders(x.headers) });
  if (!sel) return localReply(404, `no route of Service ${svc.namespace}/${svc.name} matches ${x.method.slice(0, 32)} ${x.path.slice(0, 256)}`);
  x.selection = sel;
  return next(x);
};

function flatHeaders(h: Record<string, string | string[]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k] = Array.isArray(v) ? v.join(',') : v;
  return out;
}
