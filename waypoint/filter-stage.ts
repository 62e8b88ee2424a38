// Stage: the matched rule's filters. RequestRedirect answers at once; RequestHeaderModifier and
// URLRewrite change the request; ResponseHeaderModifier is applied to whatever comes back
// (including the waypoint's own answers, as Envoy does). RequestMirror is the mirror stage's.
import { applyHeaderModifier, applyUrlRewrite, redirectLocation } from './request-filters';
import { localReply, type HeaderMap, type Layer, type Reply } from './exchange';
import type { HeaderModifier } from './route-model';

export const filterStage: Layer = (next) => async (x) => {
  const sel = x.selection!;
  for (const f of sel.rule.filters) {
    switch (f.type) {
      case 'RequestRedirect': {
        const { host, port } = splitHost(x.authority, x.tunnel.port);
        const r = redirectLocation(f, { scheme: 'http', host, port, path: x.path, query: x.query }, sel.match.path);
        return localReply(r.status, `redirected by ${routeName(sel.route)}`, { headers: { location: r.location } });
      }
      case 'RequestHeaderModifier': x.headers = applyHeaderModifier(x.headers, f.modifier); break;
      case 'URLRewrite': {
        const r = applyUrlRewrite(f, x.path, sel.match.path);
        x.path = r.path;
        if (r.host) x.authority = r.host;
        break;
      }
      case 'ResponseHeaderModifier': x.responseModifiers.push(f.modifier); break;
      case 'RequestMirror': break;
    }
  }
  const reply = await next(x);
  return { ...reply, headers: modifyResponse(reply.headers, x.responseModifiers) };
};

export function modifyResponse(headers: HeaderMap, mods: readonly HeaderModifier[]): HeaderMap {
  let h = headers;
  for (const m of mods) h = applyHeaderModifier(h, m);
  return h;
}

export const routeName = (r: { kind: string; namespace: string; name: string }) => (r.name ? `${r.kind} ${r.namespace}/${r.name}` : 'the Service itself');

/** Host and port of a Host header (`[v6]:port`, `name:port`, `name`). */
export function splitHost(authority: string, dflt: number): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(authority);
  if (!m) return { host: authority, port: dflt };
  return { host: m[1], port: m[2] ? Number(m[2]) : dflt };
}

export type { Reply };
