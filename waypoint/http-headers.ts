// Which headers cross the waypoint, pure. Hop-by-hop headers (RFC 9110 §7.6.1) and
// pseudo-headers stay on their hop (forward.ts adds `te: trailers` for HTTP/2 upstreams).
import type { HeaderMap } from './exchange';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host', 'http2-settings']);

/** Incoming headers as the exchange keeps them (names lower-case, as Node gives them). */
export function endToEndHeaders(raw: Record<string, string | string[] | undefined>): HeaderMap {
  const out: HeaderMap = {};
  const listed = new Set(String(raw.connection ?? '').toLowerCase().split(',').map((s) => s.trim()).filter(Boolean));
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined || k.startsWith(':') || HOP_BY_HOP.has(k) || listed.has(k)) continue;
    out[k] = v;
  }
  return out;
}
