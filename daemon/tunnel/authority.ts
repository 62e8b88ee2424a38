// The `:authority` of an HBONE CONNECT is the real destination as `ip:port` (`[v6]:port` for
// IPv6). Parsing is strict: a hostname, a missing port or port 0 is a bad request, because
// the destination daemon must be able to tell, without DNS, that the address names its pod.
import * as net from 'node:net';

export interface HostPort { address: string; port: number }

/** `10.0.0.1:80`, `[fd00::1]:80`. */
export function formatAuthority(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

export type ParsedAuthority = { ok: true; value: HostPort } | { ok: false; reason: string };

export function parseAuthority(authority: string | undefined): ParsedAuthority {
  if (!authority) return { ok: false, reason: 'missing :authority' };
  let host: string;
  let portText: string;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0 || authority[close + 1] !== ':') return { ok: false, reason: `:authority ${JSON.stringify(authority)} is not [ipv6]:port` };
    host = authority.slice(1, close);
    portText = authority.slice(close + 2);
    if (net.isIPv6(host) === false) return { ok: false, reason: `:authority ${JSON.stringify(authority)} does not hold an IPv6 address` };
  } else {
    const colon = authority.lastIndexOf(':');
    if (colon < 0) return { ok: false, reason: `:authority ${JSON.stringify(authority)} has no port` };
    host = authority.slice(0, colon);
    portText = authority.slice(colon + 1);
    if (!net.isIPv4(host)) return { ok: false, reason: `:authority ${JSON.stringify(authority)} is not ip:port (HBONE carries addresses, not names)` };
  }
  if (!/^[0-9]{1,5}$/.test(portText)) return { ok: false, reason: `:authority ${JSON.stringify(authority)} has no valid port` };
  const port = Number(portText);
  if (port < 1 || port > 65535) return { ok: false, reason: `:authority ${JSON.stringify(authority)} has port ${port} out of range` };
  return { ok: true, value: { address: canonicalIp(host), port } };
}

/** One spelling per address: IPv4-mapped IPv6 becomes IPv4, IPv6 is lower-case and compressed. */
export function canonicalIp(ip: string): string {
  // No colon: not IPv6 (and isIPv6's regex is most of this function's cost per connection).
  if (!ip.includes(':')) return ip;
  if (ip.startsWith('::ffff:') && net.isIPv4(ip.slice(7))) return ip.slice(7);
  if (!net.isIPv6(ip)) return ip;
  // URL does RFC 5952 compression for us and rejects nothing isIPv6 accepted.
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return ip.toLowerCase();
  }
}

/** The key of one endpoint (ip and port) in sets of endpoints, e.g. those a connection has
 * already tried (routing/decide.ts builds the same key). */
export function endpointKey(address: string, port: number): string {
  return `${address}:${port}`;
}
