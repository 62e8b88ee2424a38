// GRPCRoute (gateway.networking.k8s.io v1 or v1alpha2) -> Route, pure. A gRPC method is the
// HTTP/2 path `/<service>/<method>`, so method matches become path matches and share the
// HTTPRoute precedence: an exact service+method (Exact path) beats a service alone (PathPrefix,
// longer service names first), which beats a method alone or a regular expression.
import type { IGRPCRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1alpha2/GRPCRoute';
import { MATCH_ALL, RawRetry, convertRetry } from './convert-http-route';
import { Converted, ProblemList, compileRegex, convertBackends, convertSharedFilter, convertValueMatches, serviceParents } from './route-conversion';
import type { PathMatch, RequestMatch, Route, RouteFilter, RouteRule } from './route-model';

type RawSpec = NonNullable<IGRPCRoute['spec']>;
type RawRule = NonNullable<RawSpec['rules']>[number];
type RawMatch = NonNullable<RawRule['matches']>[number];
export type GrpcRouteObject = Omit<IGRPCRoute, 'apiVersion' | 'spec'> & {
  apiVersion: 'gateway.networking.k8s.io/v1' | 'gateway.networking.k8s.io/v1alpha2';
  spec: Omit<RawSpec, 'rules'> & { rules?: (RawRule & { retry?: RawRetry })[] };
};

/** Service and method names as the gRPC spec allows them (dots in the service's package). */
const NAME = /^[A-Za-z_][A-Za-z0-9_.]*$/;
const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export function grpcMethodPath(method: RawMatch['method'], field: string, out: ProblemList): PathMatch | undefined {
  if (!method || (!method.service && !method.method)) return { type: 'PathPrefix', value: '/' };
  const { service, method: name } = method;
  if ((method.type ?? 'Exact') === 'Exact') {
    for (const [k, v] of [['service', service], ['method', name]] as const) {
      if (v !== undefined && !NAME.test(v)) { out.add(`${field}.${k}`, `${JSON.stringify(v)} is not a gRPC ${k} name`); return undefined; }
    }
    if (service && name) return { type: 'Exact', value: `/${service}/${name}` };
    if (service) return { type: 'PathPrefix', value: `/${service}` };
    const value = `/[^/]+/${escapeRegex(name!)}`;
    return { type: 'RegularExpression', value, regex: new RegExp(`^${value}$`) };
  }
  const value = `/${service ?? '[^/]+'}/${name ?? '[^/]+'}`;
  const regex = compileRegex(value, field, out);
  return regex && { type: 'RegularExpression', value, regex };
}

function convertRule(r: RawRule & { retry?: RawRetry }, index: number, ns: string, out: ProblemList): RouteRule {
  const field = `spec.rules[${index}]`;
  const matches: RequestMatch[] = [];
  (r.matches ?? []).forEach((m, i) => {
    const path = grpcMethodPath(m.method, `${field}.matches[${i}].method`, out);
    const headers = convertValueMatches(m.headers, `${field}.matches[${i}].headers`, out, true);
    if (path) matches.push({ path, headers, queryParams: [] });
  });
  const filters: RouteFilter[] = [];
  (r.filters ?? []).forEach((f, i) => { const c = convertSharedFilter(f, ns, `${field}.filters[${i}]`, out); if (c) filters.push(c); });
  const { backends, invalid } = convertBackends(r.backendRefs, ns, `${field}.backendRefs`, out, (f, fld) => convertSharedFilter(f, ns, fld, out));
  const retry = convertRetry(r.retry, `${field}.retry`, out);
  return {
    index, matches: matches.length > 0 || (r.matches ?? []).length > 0 ? matches : [MATCH_ALL],
    filters, backends, invalidBackends: invalid, timeouts: {}, ...(retry ? { retry } : {}),
  };
}

export function convertGrpcRoute(obj: GrpcRouteObject): Converted<Route> {
  const out = new ProblemList();
  const namespace = obj.metadata?.namespace ?? 'default';
  return {
    value: {
      kind: 'GRPCRoute', namespace, name: obj.metadata?.name ?? '',
      creationTimestamp: String(obj.metadata?.creationTimestamp ?? ''), generation: obj.metadata?.generation ?? 0,
      parents: serviceParents(obj.spec.parentRefs, namespace),
      rules: (obj.spec.rules ?? []).map((r, i) => convertRule(r, i, namespace, out)),
    },
    problems: out.problems,
  };
}
