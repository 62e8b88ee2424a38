// The HTTPRoute filters that change a request or answer it, pure: header modifiers,
// RequestRedirect and URLRewrite. The proxy applies the result; mirroring only needs the
// target, which the mirror stage reads from the rule.
import { trimTrailingSlash } from './route-match';
import type { HeaderModifier, PathMatch, PathModifier, RouteFilter } from './route-model';

export type Headers = Record<string, string | string[]>;

/** set replaces, add appends (as another value), remove deletes; names are lower-case. */
export function applyHeaderModifier(headers: Headers, m: HeaderModifier): Headers {
  const out: Headers = { ...headers };
  for (const h of m.set) out[h.name] = h.value;
  for (const h of m.add) {
    const cur = out[h.name];
    out[h.name] = cur === undefined ? h.value : [...(Array.isArray(cur) ? cur : [cur]), h.value];
  }
  for (const name of m.remove) delete out[name];
  return out;
}

/**
 * The new path. ReplacePrefixMatch replaces the part the PathPrefix match matched, element-wise
 * (`/foo` -> `/bar`: `/foo/x` -> `/bar/x`, `/foo` -> `/bar`); undefined when the match was not
 * a PathPrefix (the filter is then invalid for this request and the path is kept).
 */
export function rewritePath(path: string, mod: PathModifier, matched: PathMatch): string | undefined {
  if (mod.type === 'ReplaceFullPath') return mod.value;
  if (matched.type !== 'PathPrefix') return undefined;
  const rest = path.slice(trimTrailingSlash(matched.value).length);
  const joined = trimTrailingSlash(mod.value) + rest;
  return joined === '' ? '/' : joined;
}

export interface RequestTarget {
  scheme: 'http' | 'https';
  /** Host as the client sent it, without the port. */
  host: string;
  port: number;
  path: string;
  /** Without `?`. */
  query: string;
}

const WELL_KNOWN_PORT = { http: 80, https: 443 } as const;

/** The Location of a RequestRedirect, and its status. */
export function redirectLocation(f: Extract<RouteFilter, { type: 'RequestRedirect' }>, req: RequestTarget, matched: PathMatch): { status: 301 | 302; location: string } {
  const scheme = f.scheme ?? req.scheme;
  const host = f.hostname ?? req.host;
  // The spec: without a port, a redirect that changes the scheme goes to the scheme's
  // well-known port; otherwise it keeps the port the request came to.
  const port = f.port ?? (f.scheme ? WELL_KNOWN_PORT[scheme] : req.port);
  const path = (f.path && rewritePath(req.path, f.path, matched)) ?? req.path;
  const hostPort = port === WELL_KNOWN_PORT[scheme] ? host : `${host}:${port}`;
  return { status: f.statusCode, location: `${scheme}://${hostPort}${path}${req.query ? `?${req.query}` : ''}` };
}

export interface RewriteResult { path: string; host?: string }

/** The path and host a URLRewrite sends upstream. */
export function applyUrlRewrite(f: Extract<RouteFilter, { type: 'URLRewrite' }>, path: string, matched: PathMatch): RewriteResult {
  const rewritten = f.path ? rewritePath(path, f.path, matched) : undefined;
  return { path: rewritten ?? path, ...(f.hostname ? { host: f.hostname } : {}) };
}
