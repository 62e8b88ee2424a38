// Which headers cross the waypoint, pure. Hop-by-hop headers (RFC 9110 §7.6.1) and
// pseudo-headers stay on their hop (forward.ts adds `te: trailers` for HTTP/2 upstreams).
import type { HeaderMap } from './exchange';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host', 'http2-settings']);

/** Incoming headers as the exchange keeps them (names lower-case, as Node gives them). */
export function endToEndHeaders(raw: Record<string, string | string[] | undefined>): HeaderMap {
  const out: HeaderMap = {};
  // Names listed in Connection are hop-by-hop too; usually there is none, or only keep-alive.
  const conn = raw.connection;
  const listed = conn === undefined || conn === 'keep-alive' || conn === 'close' ? undefined
    : new Set(String(conn).toLowerCase().split(',').map((s) => s.trim()).filter(Boolean));
  for (const k in raw) {
    const v = raw[k];
    if (v === undefined || k.charCodeAt(0) === 58 /* ':' */ || HOP_BY_HOP.has(k) || listed?.has(k)) continue;
    out[k] = v;
  }
  return out;
}
