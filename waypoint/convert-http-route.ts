// HTTPRoute (gateway.networking.k8s.io/v1) -> Route, pure. The experimental `retry` field
// (GEP-1731) is read when present, though the installed v1 types do not declare it yet.
import type { IHTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';
import { parseGatewayDuration } from './gateway-duration';
import {
  Converted, ProblemList, compileRegex, convertBackends, convertSharedFilter, convertValueMatches, serviceParents,
} from './route-conversion';
import type { PathMatch, PathModifier, RequestMatch, RetryPolicy, Route, RouteFilter, RouteRule, RouteTimeouts } from './route-model';

type RawRule = NonNullable<IHTTPRoute['spec']['rules']>[number];
type RawMatch = NonNullable<RawRule['matches']>[number];
type RawFilter = NonNullable<RawRule['filters']>[number];
/** GEP-1731, experimental channel. */
export interface RawRetry { attempts?: number; backoff?: string; codes?: number[] }
export type HttpRouteObject = Omit<IHTTPRoute, 'spec'> & { spec: Omit<IHTTPRoute['spec'], 'rules'> & { rules?: (RawRule & { retry?: RawRetry })[] } };

export const DEFAULT_RETRY_ATTEMPTS = 1;
export const DEFAULT_RETRY_BACKOFF_MS = 25;
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

export const MATCH_ALL: RequestMatch = Object.freeze({ path: Object.freeze({ type: 'PathPrefix' as const, value: '/' }), headers: [], queryParams: [] });

function validPathValue(v: string): boolean {
  return v.startsWith('/') && !v.includes('//') && !/[?#\s]/.test(v);
}

export function convertPathMatch(raw: RawMatch['path'], field: string, out: ProblemList): PathMatch | undefined {
  const type = raw?.type ?? 'PathPrefix';
  const value = raw?.value ?? '/';
  if (type === 'RegularExpression') {
    const regex = compileRegex(value, `${field}.value`, out);
    return regex && { type, value, regex };
  }
  if (!validPathValue(value)) { out.add(`${field}.value`, `path ${JSON.stringify(value)} must start with / and contain no //, ?, # or spaces`); return undefined; }
  return { type, value };
}

function convertMatch(m: RawMatch, field: string, out: ProblemList): RequestMatch | undefined {
  const path = convertPathMatch(m.path, `${field}.path`, out);
  if (m.method !== undefined && !METHODS.has(m.method)) out.add(`${field}.method`, `unknown method ${m.method}`);
  const headers = convertValueMatches(m.headers, `${field}.headers`, out, true);
  const queryParams = convertValueMatches(m.queryParams, `${field}.queryParams`, out, false);
  if (!path) return undefined;
  return { path, headers, queryParams, ...(m.method ? { method: m.method } : {}) };
}

function convertPathModifier(raw: { type: 'ReplaceFullPath' | 'ReplacePrefixMatch'; replaceFullPath?: string; replacePrefixMatch?: string } | undefined,
  field: string, out: ProblemList): PathModifier | undefined {
  if (!raw) return undefined;
  const value = raw.type === 'ReplaceFullPath' ? raw.replaceFullPath : raw.replacePrefixMatch;
  if (value === undefined || !validPathValue(value)) { out.add(field, `${raw.type} needs a path that starts with /`); return undefined; }
  return { type: raw.type, value };
}

function convertFilter(f: RawFilter, ns: string, field: string, out: ProblemList): RouteFilter | undefined {
  if (f.type === 'RequestRedirect') {
    const r = f.requestRedirect;
    if (!r) { out.add(field, 'filter of type RequestRedirect has no requestRedirect field'); return undefined; }
    return {
      type: 'RequestRedirect', statusCode: r.statusCode ?? 302,
      ...(r.scheme ? { scheme: r.scheme } : {}), ...(r.hostname ? { hostname: r.hostname } : {}), ...(r.port ? { port: r.port } : {}),
      ...(r.path ? { path: convertPathModifier(r.path, `${field}.requestRedirect.path`, out) } : {}),
    };
  }
  if (f.type === 'URLRewrite') {
    const r = f.urlRewrite;
    if (!r) { out.add(field, 'filter of type URLRewrite has no urlRewrite field'); return undefined; }
    return { type: 'URLRewrite', ...(r.hostname ? { hostname: r.hostname } : {}), ...(r.path ? { path: convertPathModifier(r.path, `${field}.urlRewrite.path`, out) } : {}) };
  }
  return convertSharedFilter(f, ns, field, out);
}

function convertTimeouts(raw: RawRule['timeouts'], field: string, out: ProblemList): RouteTimeouts {
  const parse = (name: 'request' | 'backendRequest'): number | undefined => {
    const text = raw?.[name];
    if (text === undefined) return undefined;
    const ms = parseGatewayDuration(text);
    if (ms === undefined) { out.add(`${field}.${name}`, `${JSON.stringify(text)} is not a duration like 500ms, 10s or 1m30s`); return undefined; }
    return ms === 0 ? undefined : ms; // 0s disables the timeout
  };
  const requestMs = parse('request');
  const backendRequestMs = parse('backendRequest');
  if (requestMs !== undefined && backendRequestMs !== undefined && backendRequestMs > requestMs) {
    out.add(`${field}.backendRequest`, 'backendRequest must not be longer than request');
  }
  return { ...(requestMs !== undefined ? { requestMs } : {}), ...(backendRequestMs !== undefined ? { backendRequestMs } : {}) };
}

export function convertRetry(raw: RawRetry | undefined, field: string, out: ProblemList): RetryPolicy | undefined {
  if (!raw) return undefined;
  const attempts = raw.attempts ?? DEFAULT_RETRY_ATTEMPTS;
  if (!Number.isInteger(attempts) || attempts < 0 || attempts > 10) out.add(`${field}.attempts`, 'attempts must be an integer from 0 to 10');
  let backoffMs = DEFAULT_RETRY_BACKOFF_MS;
  if (raw.backoff !== undefined) {
    const ms = parseGatewayDuration(raw.backoff);
    if (ms === undefined) out.add(`${field}.backoff`, `${JSON.stringify(raw.backoff)} is not a duration like 100ms`);
    else backoffMs = ms;
  }
  const codes = raw.codes ?? [];
  for (const c of codes) if (!Number.isInteger(c) || c < 400 || c > 599) out.add(`${field}.codes`, `retry code ${c} is not from 400 to 599`);
  return { attempts, backoffMs, codes: [...codes] };
}

function convertRule(r: RawRule & { retry?: RawRetry }, index: number, ns: string, out: ProblemList): RouteRule {
  const field = `spec.rules[${index}]`;
  const matches: RequestMatch[] = [];
  (r.matches ?? []).forEach((m, i) => { const c = convertMatch(m, `${field}.matches[${i}]`, out); if (c) matches.push(c); });
  const filters: RouteFilter[] = [];
  (r.filters ?? []).forEach((f, i) => { const c = convertFilter(f, ns, `${field}.filters[${i}]`, out); if (c) filters.push(c); });
  if (filters.filter((f) => f.type === 'RequestRedirect').length > 0 && filters.some((f) => f.type === 'URLRewrite')) {
    out.add(`${field}.filters`, 'RequestRedirect and URLRewrite cannot be used together');
  }
  const { backends, invalid } = convertBackends(r.backendRefs, ns, `${field}.backendRefs`, out, (f, fld) => convertFilter(f, ns, fld, out));
  const retry = convertRetry(r.retry, `${field}.retry`, out);
  return {
    index, matches: matches.length > 0 || (r.matches ?? []).length > 0 ? matches : [MATCH_ALL], filters, backends, invalidBackends: invalid,
    timeouts: convertTimeouts(r.timeouts, `${field}.timeouts`, out), ...(retry ? { retry } : {}),
  };
}

export function convertHttpRoute(obj: HttpRouteObject): Converted<Route> {
  const out = new ProblemList();
  const namespace = obj.metadata?.namespace ?? 'default';
  const rules = (obj.spec.rules ?? []).map((r, i) => convertRule(r, i, namespace, out));
  return {
    value: {
      kind: 'HTTPRoute', namespace, name: obj.metadata?.name ?? '',
      creationTimestamp: String(obj.metadata?.creationTimestamp ?? ''), generation: obj.metadata?.generation ?? 0,
      parents: serviceParents(obj.spec.parentRefs, namespace),
      rules,
    },
    problems: out.problems,
  };
}
