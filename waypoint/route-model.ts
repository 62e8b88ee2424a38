// The waypoint's routing model: HTTPRoute and GRPCRoute (Gateway API, GAMMA: a Service as
// parent) converted once at the edge (convert-http-route.ts, convert-grpc-route.ts) into plain,
// validated values. Matching, precedence, backend choice and filters read only these types.

export interface ServiceKey { namespace: string; name: string }

export type PathMatch =
  | { type: 'Exact'; value: string }
  /** Element-wise prefix: `/foo` matches `/foo`, `/foo/` and `/foo/bar`, never `/foobar`. */
  | { type: 'PathPrefix'; value: string }
  /** Anchored: the whole path must match. */
  | { type: 'RegularExpression'; value: string; regex: RegExp };

export interface ValueMatch {
  /** Header names lower-cased; query parameter names as written (they are case-sensitive). */
  name: string;
  type: 'Exact' | 'RegularExpression';
  value: string;
  regex?: RegExp;
}

export interface RequestMatch {
  path: PathMatch;
  headers: readonly ValueMatch[];
  queryParams: readonly ValueMatch[];
  method?: string;
}

export interface HeaderModifier {
  set: readonly { name: string; value: string }[];
  add: readonly { name: string; value: string }[];
  /** Lower-cased. */
  remove: readonly string[];
}

export type PathModifier = { type: 'ReplaceFullPath'; value: string } | { type: 'ReplacePrefixMatch'; value: string };

export interface BackendTarget extends ServiceKey { port: number }

export type RouteFilter =
  | { type: 'RequestHeaderModifier'; modifier: HeaderModifier }
  | { type: 'ResponseHeaderModifier'; modifier: HeaderModifier }
  | { type: 'RequestRedirect'; scheme?: 'http' | 'https'; hostname?: string; port?: number; path?: PathModifier; statusCode: 301 | 302 }
  | { type: 'URLRewrite'; hostname?: string; path?: PathModifier }
  | { type: 'RequestMirror'; backend: BackendTarget };

export interface WeightedBackend extends BackendTarget {
  weight: number;
  /** Filters that apply only when this backend is chosen. */
  filters: readonly RouteFilter[];
}

export interface InvalidBackend { weight: number; reason: 'InvalidKind' | 'RefNotPermitted'; message: string }

export interface RouteTimeouts {
  /** Whole request, retries included; undefined: none. */
  requestMs?: number;
  /** One attempt to one backend; undefined: none. */
  backendRequestMs?: number;
}

export interface RetryPolicy {
  /** Retries after the first attempt. */
  attempts: number;
  /** Minimum wait before a retry; doubles per retry up to 10x. */
  backoffMs: number;
  /** Response codes that are retried. Connection failures and resets always are. */
  codes: readonly number[];
}

export interface RouteRule {
  /** Position in spec.rules: the tie-breaker inside one route. */
  index: number;
  /** Never empty: a rule without matches matches every request (PathPrefix `/`). */
  matches: readonly RequestMatch[];
  filters: readonly RouteFilter[];
  backends: readonly WeightedBackend[];
  /** backendRefs that can never be used (wrong kind, other namespace): their share of the weight answers 500. */
  invalidBackends: readonly InvalidBackend[];
  timeouts: RouteTimeouts;
  retry?: RetryPolicy;
}

export interface RouteParent extends ServiceKey {
  /** Only this Service port, when set. */
  port?: number;
}

export interface Route {
  kind: 'HTTPRoute' | 'GRPCRoute';
  namespace: string;
  name: string;
  /** RFC 3339; the older route wins a precedence tie. Empty sorts first. */
  creationTimestamp: string;
  generation: number;
  parents: readonly RouteParent[];
  rules: readonly RouteRule[];
}

/** What the waypoint knows about one request when it matches routes. */
export interface RequestView {
  method: string;
  /** Path without the query string, as received. */
  path: string;
  /** Raw query string without `?` (may be empty). */
  query: string;
  /** Lower-case names; repeated headers joined with `,` (RFC 9110). */
  headers: Readonly<Record<string, string>>;
}

/** One controller name for the sandbox's waypoint and the Kubernetes controller (route status parents). */
export { CONTROLLER_NAME as ROUTE_CONTROLLER_NAME } from '../daemon/waypoint-controller/kube-object';
