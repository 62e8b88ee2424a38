// Header rules of RFC 9113 section 8 for the requests and responses HBONE exchanges: a field
// that breaks them makes the message malformed (a stream error, never a crash). Returns the
// header map, or the reason it is malformed (our words; peer text is never echoed).
import type { HeaderMap } from './stream';

const REQUEST_PSEUDO = new Set([':method', ':scheme', ':authority', ':path', ':protocol']);
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/** Field name bytes RFC 9113 8.2.1 forbids: controls, space, uppercase, DEL and above. */
function badName(name: string, from: number): boolean {
  if (name.length === from) return true;
  for (let i = from; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c <= 0x20 || (c >= 0x41 && c <= 0x5a) || c >= 0x7f || c === 0x3a) return true;
  }
  return false;
}

function badValue(v: string): boolean {
  const n = v.length;
  if (n === 0) return false;
  let c = v.charCodeAt(0);
  if (c === 0x20 || c === 0x09) return true;
  c = v.charCodeAt(n - 1);
  if (c === 0x20 || c === 0x09) return true;
  for (let i = 0; i < n; i++) {
    c = v.charCodeAt(i);
    if (c === 0 || c === 0x0a || c === 0x0d) return true;
  }
  return false;
}

function add(map: HeaderMap, name: string, value: string): void {
  const cur = map[name];
  if (cur === undefined) map[name] = value;
  else if (Array.isArray(cur)) cur.push(value);
  else if (name === 'set-cookie') map[name] = [cur, value];
  else map[name] = `${cur}, ${value}`;
}

/** A request as a server receives it. CONNECT (RFC 9113 8.5): :method and :authority only. */
export function validateRequest(list: string[]): HeaderMap | string {
  const map: HeaderMap = Object.create(null) as HeaderMap;
  let regular = false;
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i], value = list[i + 1];
    if (name.charCodeAt(0) === 0x3a) {
      if (regular) return 'a pseudo-header follows a regular header';
      if (!REQUEST_PSEUDO.has(name)) return 'unknown pseudo-header';
      if (map[name] !== undefined) return `duplicate ${name}`;
      if (badValue(value)) return `invalid characters in ${name}`;
      map[name] = value;
      continue;
    }
    regular = true;
    if (badName(name, 0)) return 'invalid header name';
    if (CONNECTION_SPECIFIC.has(name)) return 'connection-specific header';
    if (name === 'te' && value !== 'trailers') return 'te other than trailers';
    if (badValue(value)) return 'invalid characters in a header value';
    add(map, name, value);
  }
  const method = map[':method'];
  if (method === undefined || method === '') return 'no :method';
  if (method === 'CONNECT' && map[':protocol'] === undefined) {
    if (map[':scheme'] !== undefined || map[':path'] !== undefined) return 'CONNECT with :scheme or :path';
    if (!map[':authority']) return 'CONNECT without :authority';
  } else if (!map[':scheme'] || !map[':path']) {
    return 'request without :scheme or :path';
  }
  return map;
}

/** A response as a client receives it. */
export function validateResponse(list: string[]): { status: number; headers: HeaderMap } | string {
  const map: HeaderMap = Object.create(null) as HeaderMap;
  let regular = false;
  let status = -1;
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i], value = list[i + 1];
    if (name.charCodeAt(0) === 0x3a) {
      if (regular) return 'a pseudo-header follows a regular header';
      if (name !== ':status') return 'unknown pseudo-header';
      if (status !== -1) return 'duplicate :status';
      if (!/^[1-9][0-9][0-9]$/.test(value)) return 'invalid :status';
      status = Number(value);
      map[name] = value;
      continue;
    }
    regular = true;
    if (badName(name, 0)) return 'invalid header name';
    if (CONNECTION_SPECIFIC.has(name)) return 'connection-specific header';
    if (badValue(value)) return 'invalid characters in a header value';
    add(map, name, value);
  }
  if (status === -1) return 'no :status';
  return { status, headers: map };
}
