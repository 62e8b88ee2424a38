// Which rule of which route takes a request, pure. Precedence is the Gateway API's, across
// every route attached to the Service and every rule in them:
//   1. an Exact path match, 2. the longest PathPrefix, 3. a method match, 4. the most header
//   matches, 5. the most query parameter matches; then across routes 6. the oldest route
//   (creationTimestamp), 7. `namespace/name` in alphabetical order; inside one route, 8. the
//   first matching rule, and the first matching match of that rule.
// RegularExpression paths rank below every PathPrefix (the spec leaves them to the
// implementation; this is Istio's choice), longer patterns first.
import type { PathMatch, RequestMatch, RequestView, Route, RouteRule, ValueMatch } from './route-model';

export interface RouteSelection {
  route: Route;
  rule: RouteRule;
  match: RequestMatch;
  matchIndex: number;
}

export function pathMatches(m: PathMatch, path: string): boolean {
  switch (m.type) {
    case 'Exact': return path === m.value;
    case 'PathPrefix': {
      const prefix = trimTrailingSlash(m.value);
      if (prefix === '') return true;
      return path === prefix || (path.startsWith(prefix) && path[prefix.length] === '/');
    }
    case 'RegularExpression': return m.regex.test(path);
  }
}

export function trimTrailingSlash(p: string): string {
  return p.endsWith('/') ? p.slice(0, -1) : p;
}

function valueMatches(m: ValueMatch, actual: string | undefined): boolean {
  if (actual === undefined) return false;
  return m.type === 'Exact' ? actual === m.value : m.regex!.test(actual);
}

/** First value of each query parameter (repeated parameters: the first one counts). */
export function parseQuery(query: string): Map<string, string> {
  const out = new Map<string, string>();
  if (query === '') return out;
  for (const [k, v] of new URLSearchParams(query)) if (!out.has(k)) out.set(k, v);
  return out;
}

export function requestMatches(m: RequestMatch, req: RequestView, query: () => Map<string, string>): boolean {
  if (!pathMatches(m.path, req.path)) return false;
  if (m.method !== undefined && m.method !== req.method) return false;
  for (const h of m.headers) if (!valueMatches(h, req.headers[h.name])) return false;
  if (m.queryParams.length > 0) {
    const q = query();
    for (const p of m.queryParams) if (!valueMatches(p, q.get(p.name))) return false;
  }
  return true;
}

const PATH_RANK = { Exact: 3, PathPrefix: 2, RegularExpression: 1 } as const;

/** Negative when `a` takes precedence over `b`. */
export function comparePrecedence(a: RouteSelection, b: RouteSelection): number {
  const pa = a.match.path, pb = b.match.path;
  return (PATH_RANK[pb.type] - PATH_RANK[pa.type])
    || (pb.type !== 'Exact' ? pathLength(pb) - pathLength(pa) : 0)
    || (Number(b.match.method !== undefined) - Number(a.match.method !== undefined))
    || (b.match.headers.length - a.match.headers.length)
    || (b.match.queryParams.length - a.match.queryParams.length)
    || compareRoutes(a.route, b.route)
    || (a.rule.index - b.rule.index)
    || (a.matchIndex - b.matchIndex);
}

function pathLength(p: PathMatch): number {
  return p.type === 'PathPrefix' ? trimTrailingSlash(p.value).length : p.value.length;
}

/** Older first; then alphabetical by namespace/name. */
export function compareRoutes(a: Route, b: Route): number {
  if (a.creationTimestamp !== b.creationTimestamp) {
    const ta = Date.parse(a.creationTimestamp), tb = Date.parse(b.creationTimestamp);
    if (Number.isFinite(ta) && Number.isFinite(tb) && ta !== tb) return ta - tb;
  }
  const ka = `${a.namespace}/${a.name}`, kb = `${b.namespace}/${b.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** The winning rule among `routes` (already limited to the Service and port), if any. */
export function selectRoute(routes: readonly Route[], req: RequestView): RouteSelection | undefined {
  let best: RouteSelection | undefined;
  let query: Map<string, string> | undefined;
  const lazyQuery = () => (query ??= parseQuery(req.query));
  for (const route of routes) {
    for (const rule of route.rules) {
      rule.matches.forEach((match, matchIndex) => {
        if (!requestMatches(match, req, lazyQuery)) return;
        const candidate = { route, rule, match, matchIndex };
        if (!best || comparePrecedence(candidate, best) < 0) best = candidate;
      });
    }
  }
  return best;
}

/** Routes whose parents include this Service (and this port, when the parent names one). */
export function routesForService(routes: readonly Route[], service: { namespace: string; name: string }, port: number): Route[] {
  return routes.filter((r) => r.parents.some((p) => p.namespace === service.namespace && p.name === service.name && (p.port === undefined || p.port === port)));
}
