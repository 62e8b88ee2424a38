// The waypoint's routes, rebuilt (pure) from the cluster's objects on every state change:
// every HTTPRoute and GRPCRoute converted, its status computed, and only the routes Accepted
// for a parent routed for that parent.
import type { Snapshot } from '../daemon/state/snapshot';
import { waypointFor } from '../daemon/state/waypoints';
import { GrpcRouteObject, convertGrpcRoute } from './convert-grpc-route';
import { HttpRouteObject, convertHttpRoute } from './convert-http-route';
import { RouteSelection, routesForService, selectRoute } from './route-match';
import type { RequestView, Route, ServiceKey } from './route-model';
import { RouteParentStatus, isAccepted, routeStatus } from './route-status';

export interface RouteEntry { route: Route; status: RouteParentStatus[] }

interface StoredLike { apiVersion?: unknown; kind?: unknown; metadata?: unknown }

const ROUTE_API = /^gateway\.networking\.k8s\.io\/v1(alpha2|beta1)?$/;

export class RouteTable {
  private readonly byService = new Map<string, Route[]>();

  constructor(readonly entries: readonly RouteEntry[]) {
    for (const e of entries) {
      for (const p of e.route.parents) {
        if (!isAccepted(e.status, p)) continue;
        const key = `${p.namespace}/${p.name}`;
        const list = this.byService.get(key) ?? [];
        if (!list.includes(e.route)) list.push(e.route);
        this.byService.set(key, list);
      }
    }
  }

  /** Accepted routes attached to this Service (and port). */
  forService(svc: ServiceKey, port: number): Route[] {
    return routesForService(this.byService.get(`${svc.namespace}/${svc.name}`) ?? [], svc, port);
  }

  select(routes: readonly Route[], req: RequestView): RouteSelection | undefined {
    return selectRoute(routes, req);
  }
}

export function buildRouteTable(objects: readonly StoredLike[], snapshot: Snapshot, now: string, previous?: RouteTable): RouteTable {
  const before = new Map(previous?.entries.map((e) => [`${e.route.kind}/${e.route.namespace}/${e.route.name}`, e.status]) ?? []);
  const entries: RouteEntry[] = [];
  for (const o of objects) {
    if (typeof o.apiVersion !== 'string' || !ROUTE_API.test(o.apiVersion) || typeof o.metadata !== 'object' || o.metadata === null) continue;
    let converted;
    if (o.kind === 'HTTPRoute') converted = convertHttpRoute(o as unknown as HttpRouteObject);
    else if (o.kind === 'GRPCRoute') converted = convertGrpcRoute(o as unknown as GrpcRouteObject);
    else continue;
    const route = converted.value;
    const status = routeStatus(route, converted.problems, {
      now, previous: before.get(`${route.kind}/${route.namespace}/${route.name}`),
      serviceExists: (s) => snapshot.services.has(`${s.namespace}/${s.name}`),
      waypointOf: (s) => { const svc = snapshot.services.get(`${s.namespace}/${s.name}`); return svc && waypointFor(snapshot, svc)?.name; },
    });
    entries.push({ route, status });
  }
  return new RouteTable(entries);
}
