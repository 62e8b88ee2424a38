// The one hand-checked TypeScript mirror of bpf/include/nodemesh.h: map names, struct
// layouts, constants and the encoders/decoders for every key and value user space reads or
// writes. bpf-codec.test.ts compares LAYOUTS and MAPS with the BTF of the compiled objects;
// no other file may restate a key or value size.
//
// Byte order: addresses are raw network-order bytes; every other integer is host order.
import * as net from 'node:net';
import * as os from 'node:os';

// --- constants (nodemesh.h) ------------------------------------------------------------

export const NM_FAMILY_V4 = 4;
export const NM_FAMILY_V6 = 6;
export const NM_UID_MAX = 320;
export const NM_POD_MAX_IPS = 8;
export const NM_NETNS_CAPTURE_OUTBOUND = 0x1;
export const NM_ORIG_V4_MAPPED = 0x1;
/** Slots of nm_udp_stats: (family === 6) * 2 + (destination port === 53). */
export const NM_UDP_SLOTS = 4;
/** Slots of the inbound object's nm_skip_ports rodata array. */
export const NM_SKIP_PORTS = 8;

/** BPF_ANY / BPF_NOEXIST / BPF_EXIST for mapUpdate. */
export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;

// --- layouts ---------------------------------------------------------------------------

export interface FieldLayout { offset: number; size: number }
export interface StructLayout { size: number; fields: Record<string, FieldLayout> }

/** Byte offsets and sizes of every struct in nodemesh.h (checked against BTF). */
export const LAYOUTS = Object.freeze({
  nm_ip_key: { size: 20, fields: { addr: { offset: 0, size: 16 }, family: { offset: 16, size: 1 }, _pad: { offset: 17, size: 3 } } },
  nm_ip_port_key: {
    size: 20,
    fields: { addr: { offset: 0, size: 16 }, family: { offset: 16, size: 1 }, _pad: { offset: 17, size: 1 }, port: { offset: 18, size: 2 } },
  },
  nm_out_excl_key: { size: 16, fields: { netns_cookie: { offset: 0, size: 8 }, port: { offset: 8, size: 2 }, _pad: { offset: 10, size: 6 } } },
  nm_netns_info: { size: 8, fields: { flags: { offset: 0, size: 4 }, _pad: { offset: 4, size: 4 } } },
  nm_orig_dst: {
    size: 24,
    fields: {
      addr: { offset: 0, size: 16 }, port: { offset: 16, size: 2 }, family: { offset: 18, size: 1 },
      flags: { offset: 19, size: 1 }, _pad: { offset: 20, size: 4 },
    },
  },
  nm_conn_key: {
    size: 16,
    fields: { netns_cookie: { offset: 0, size: 8 }, port: { offset: 8, size: 2 }, family: { offset: 10, size: 1 }, _pad: { offset: 11, size: 5 } },
  },
  nm_daemon_info: { size: 8, fields: { pid: { offset: 0, size: 4 }, _pad: { offset: 4, size: 4 } } },
  nm_pod_ip_info: { size: 8, fields: { netns_cookie: { offset: 0, size: 8 } } },
  nm_pod_key: { size: NM_UID_MAX, fields: { uid: { offset: 0, size: NM_UID_MAX } } },
  nm_pod_rec: {
    size: 16 + 20 * NM_POD_MAX_IPS,
    fields: {
      netns_cookie: { offset: 0, size: 8 }, flags: { offset: 8, size: 4 }, ip_count: { offset: 12, size: 4 },
      ips: { offset: 16, size: 20 * NM_POD_MAX_IPS },
    },
  },
} satisfies Record<string, StructLayout>);

const U64 = 8;
const U32 = 4;
const U8 = 1;

export type MapName = keyof typeof MAPS;
export interface MapSpec { object: 'capture' | 'inbound'; type: 'hash' | 'lru_hash' | 'sockhash' | 'array'; keySize: number; valueSize: number }

/** Every pinned map: the object that declares it, and its key/value sizes. */
export const MAPS = Object.freeze({
  nm_enrolled: { object: 'capture', type: 'hash', keySize: U64, valueSize: LAYOUTS.nm_netns_info.size },
  nm_out_excl: { object: 'capture', type: 'hash', keySize: LAYOUTS.nm_out_excl_key.size, valueSize: U8 },
  nm_orig_sock: { object: 'capture', type: 'lru_hash', keySize: U64, valueSize: LAYOUTS.nm_orig_dst.size },
  nm_orig_conn: { object: 'capture', type: 'lru_hash', keySize: LAYOUTS.nm_conn_key.size, valueSize: LAYOUTS.nm_orig_dst.size },
  nm_daemon_cg: { object: 'capture', type: 'hash', keySize: U64, valueSize: LAYOUTS.nm_daemon_info.size },
  nm_udp_stats: { object: 'capture', type: 'array', keySize: U32, valueSize: U64 },
  nm_pods: { object: 'capture', type: 'hash', keySize: LAYOUTS.nm_pod_key.size, valueSize: LAYOUTS.nm_pod_rec.size },
  nm_pod_ips: { object: 'inbound', type: 'hash', keySize: LAYOUTS.nm_ip_key.size, valueSize: LAYOUTS.nm_pod_ip_info.size },
  nm_in_listen: { object: 'inbound', type: 'sockhash', keySize: LAYOUTS.nm_ip_key.size, valueSize: U64 },
  nm_in_excl: { object: 'inbound', type: 'hash', keySize: LAYOUTS.nm_ip_port_key.size, valueSize: U8 },
  nm_probe_src: { object: 'inbound', type: 'hash', keySize: LAYOUTS.nm_ip_key.size, valueSize: U8 },
} satisfies Record<string, MapSpec>);

/** The BPF map type numbers (uapi enum bpf_map_type) of MapSpec.type. */
export const BPF_MAP_TYPE = Object.freeze({ hash: 1, array: 2, lru_hash: 9, sockhash: 18 });

/** Programs per object, and their `const volatile` load-time constants with sizes. */
export const OBJECTS = Object.freeze({
  capture: {
    file: 'capture.bpf.o',
    programs: ['nm_connect4', 'nm_connect6', 'nm_sendmsg4', 'nm_sendmsg6', 'nm_sockops', 'nm_getpeername4', 'nm_getpeername6'],
    rodata: { nm_outbound_port: 2 },
  },
  inbound: {
    file: 'inbound.bpf.o',
    programs: ['nm_sk_lookup'],
    rodata: { nm_skip_ports: 2 * NM_SKIP_PORTS },
  },
});

// --- host-order integers ----------------------------------------------------------------

const LE = os.endianness() === 'LE';

function putU16(b: Buffer, v: number, off: number): void { if (LE) b.writeUInt16LE(v, off); else b.writeUInt16BE(v, off); }
function putU32(b: Buffer, v: number, off: number): void { if (LE) b.writeUInt32LE(v, off); else b.writeUInt32BE(v, off); }
function putU64(b: Buffer, v: bigint, off: number): void { if (LE) b.writeBigUInt64LE(v, off); else b.writeBigUInt64BE(v, off); }
function getU16(b: Buffer, off: number): number { return LE ? b.readUInt16LE(off) : b.readUInt16BE(off); }
function getU32(b: Buffer, off: number): number { return LE ? b.readUInt32LE(off) : b.readUInt32BE(off); }
function getU64(b: Buffer, off: number): bigint { return LE ? b.readBigUInt64LE(off) : b.readBigUInt64BE(off); }

function checkSize(b: Buffer, size: number, what: string): void {
  if (b.length !== size) throw new RangeError(`${what}: expected ${size} bytes, got ${b.length}`);
}

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`${what}: port ${port} is not 0..65535`);
}

function checkU64(v: bigint, what: string): void {
  if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError(`${what}: ${v} is not a u64`);
}

// --- addresses --------------------------------------------------------------------------

export interface IpBytes { family: 4 | 6; bytes: Buffer /* 16 bytes; v4 in the first 4 */ }

function parseV4(s: string): Buffer {
  return Buffer.from(s.split('.').map((p) => Number(p)));
}

function parseV6(s: string): Buffer {
  let text = s.includes('%') ? s.slice(0, s.indexOf('%')) : s;
  // An embedded dotted quad fills the last 32 bits (e.g. ::ffff:10.0.0.1).
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    const v4 = parseV4(text.slice(lastColon + 1));
    tail = [(v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]];
    text = text.slice(0, lastColon + 1);
    if (!text.endsWith('::')) text = text.slice(0, -1);
  }
  const groups = (g: string) => g.split(':').filter((x) => x !== '').map((x) => parseInt(x, 16));
  const dbl = text.indexOf('::');
  const hi = dbl >= 0 ? groups(text.slice(0, dbl)) : [...groups(text), ...tail];
  const lo = dbl >= 0 ? [...groups(text.slice(dbl + 2)), ...tail] : [];
  const words = new Array<number>(8).fill(0);
  hi.forEach((w, i) => { words[i] = w; });
  lo.forEach((w, i) => { words[8 - lo.length + i] = w; });
  const out = Buffer.alloc(16);
  words.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

/** Parses an IP address into the 16-byte form of nodemesh.h. */
export function encodeIp(address: string): IpBytes {
  const fam = net.isIP(address);
  const bytes = Buffer.alloc(16);
  if (fam === 4) {
    parseV4(address).copy(bytes, 0);
    return { family: 4, bytes };
  }
  if (fam === 6) return { family: 6, bytes: parseV6(address) };
  throw new TypeError(`not an IP address: ${JSON.stringify(address)}`);
}

/** Formats the 16-byte form back (IPv6 in RFC 5952 form, as inet_ntop and Node print it). */
export function decodeIp(bytes: Buffer, family: number): string {
  if (family === NM_FAMILY_V4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (family !== NM_FAMILY_V6) throw new RangeError(`unknown address family ${family}`);
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push(bytes.readUInt16BE(i * 2));
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  }
  // Longest run of two or more zero words becomes '::' (first one on ties).
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(':');
  if (best < 0) return hex(words);
  return `${hex(words.slice(0, best))}::${hex(words.slice(best + bestLen))}`;
}

// --- keys and values --------------------------------------------------------------------

/** A u64 key (netns cookie, socket cookie). */
export function encodeU64(v: bigint): Buffer {
  checkU64(v, 'u64 key');
  const b = Buffer.alloc(U64);
  putU64(b, v, 0);
  return b;
}

export function decodeU64(b: Buffer): bigint {
  checkSize(b, U64, 'u64');
  return getU64(b, 0);
}

/** Single-byte "present" value of the exclusion maps. */
export function encodeFlagU8(v = 1): Buffer {
  return Buffer.from([v & 0xff]);
}

/** Value of nm_in_listen when written from user space: the listener's fd. */
export function encodeSockhashFd(fd: number): Buffer {
  if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`bad fd ${fd}`);
  return encodeU64(BigInt(fd));
}

export function encodeIpKey(address: string): Buffer {
  const ip = encodeIp(address);
  const b = Buffer.alloc(LAYOUTS.nm_ip_key.size);
  ip.bytes.copy(b, LAYOUTS.nm_ip_key.fields.addr.offset);
  b.writeUInt8(ip.family, LAYOUTS.nm_ip_key.fields.family.offset);
  return b;
}

export function decodeIpKey(b: Buffer): string {
  checkSize(b, LAYOUTS.nm_ip_key.size, 'nm_ip_key');
  const f = LAYOUTS.nm_ip_key.fields;
  return decodeIp(b.subarray(f.addr.offset, f.addr.offset + 16), b.readUInt8(f.family.offset));
}

export function encodeIpPortKey(address: string, port: number): Buffer {
  checkPort(port, 'nm_ip_port_key');
  const ip = encodeIp(address);
  const f = LAYOUTS.nm_ip_port_key.fields;
  const b = Buffer.alloc(LAYOUTS.nm_ip_port_key.size);
  ip.bytes.copy(b, f.addr.offset);
  b.writeUInt8(ip.family, f.family.offset);
  putU16(b, port, f.port.offset);
  return b;
}

export function decodeIpPortKey(b: Buffer): { address: string; port: number } {
  checkSize(b, LAYOUTS.nm_ip_port_key.size, 'nm_ip_port_key');
  const f = LAYOUTS.nm_ip_port_key.fields;
  return {
    address: decodeIp(b.subarray(f.addr.offset, f.addr.offset + 16), b.readUInt8(f.family.offset)),
    port: getU16(b, f.port.offset),
  };
}

/** netnsCookie 0n: every pod of the node. */
export interface OutExclKey { netnsCookie: bigint; port: number }

export function encodeOutExclKey(k: OutExclKey): Buffer {
  checkPort(k.port, 'nm_out_excl_key');
  checkU64(k.netnsCookie, 'nm_out_excl_key');
  const f = LAYOUTS.nm_out_excl_key.fields;
  const b = Buffer.alloc(LAYOUTS.nm_out_excl_key.size);
  putU64(b, k.netnsCookie, f.netns_cookie.offset);
  putU16(b, k.port, f.port.offset);
  return b;
}

export function decodeOutExclKey(b: Buffer): OutExclKey {
  checkSize(b, LAYOUTS.nm_out_excl_key.size, 'nm_out_excl_key');
  const f = LAYOUTS.nm_out_excl_key.fields;
  return { netnsCookie: getU64(b, f.netns_cookie.offset), port: getU16(b, f.port.offset) };
}

export function encodeNetnsInfo(flags: number): Buffer {
  const b = Buffer.alloc(LAYOUTS.nm_netns_info.size);
  putU32(b, flags >>> 0, LAYOUTS.nm_netns_info.fields.flags.offset);
  return b;
}

export function decodeNetnsInfo(b: Buffer): { flags: number } {
  checkSize(b, LAYOUTS.nm_netns_info.size, 'nm_netns_info');
  return { flags: getU32(b, LAYOUTS.nm_netns_info.fields.flags.offset) };
}

export interface OrigDst { family: 4 | 6; address: string; port: number; v4Mapped: boolean }

export function encodeOrigDst(d: OrigDst): Buffer {
  checkPort(d.port, 'nm_orig_dst');
  const ip = encodeIp(d.address);
  if (ip.family !== d.family) throw new TypeError(`nm_orig_dst: ${d.address} is not IPv${d.family}`);
  const f = LAYOUTS.nm_orig_dst.fields;
  const b = Buffer.alloc(LAYOUTS.nm_orig_dst.size);
  ip.bytes.copy(b, f.addr.offset);
  putU16(b, d.port, f.port.offset);
  b.writeUInt8(d.family, f.family.offset);
  b.writeUInt8(d.v4Mapped ? NM_ORIG_V4_MAPPED : 0, f.flags.offset);
  return b;
}

export function decodeOrigDst(b: Buffer): OrigDst {
  checkSize(b, LAYOUTS.nm_orig_dst.size, 'nm_orig_dst');
  const f = LAYOUTS.nm_orig_dst.fields;
  const family = b.readUInt8(f.family.offset);
  if (family !== NM_FAMILY_V4 && family !== NM_FAMILY_V6) throw new RangeError(`nm_orig_dst: bad family ${family}`);
  return {
    family,
    address: decodeIp(b.subarray(f.addr.offset, f.addr.offset + 16), family),
    port: getU16(b, f.port.offset),
    v4Mapped: (b.readUInt8(f.flags.offset) & NM_ORIG_V4_MAPPED) !== 0,
  };
}

export interface ConnKey { netnsCookie: bigint; port: number; family: 4 | 6 }

export function encodeConnKey(k: ConnKey): Buffer {
  const b = Buffer.alloc(LAYOUTS.nm_conn_key.size);
  setConnKeyCookie(b, k.netnsCookie);
  setConnKeyPort(b, k.port, k.family);
  return b;
}

/** The parts of an nm_conn_key, written into a key buffer that is reused: the proxy's lookup
 * per connection writes the cookie only when the pod changes (a BigInt write costs more than
 * the rest of the key). */
export function setConnKeyCookie(b: Buffer, netnsCookie: bigint): void {
  checkSize(b, LAYOUTS.nm_conn_key.size, 'nm_conn_key');
  checkU64(netnsCookie, 'nm_conn_key');
  putU64(b, netnsCookie, LAYOUTS.nm_conn_key.fields.netns_cookie.offset);
}

export function setConnKeyPort(b: Buffer, port: number, family: 4 | 6): void {
  checkPort(port, 'nm_conn_key');
  if (family !== 4 && family !== 6) throw new RangeError(`nm_conn_key: bad family ${String(family)}`);
  const f = LAYOUTS.nm_conn_key.fields;
  putU16(b, port, f.port.offset);
  b.writeUInt8(family, f.family.offset);
}

export function decodeConnKey(b: Buffer): ConnKey {
  checkSize(b, LAYOUTS.nm_conn_key.size, 'nm_conn_key');
  const f = LAYOUTS.nm_conn_key.fields;
  const family = b.readUInt8(f.family.offset);
  if (family !== 4 && family !== 6) throw new RangeError(`nm_conn_key: bad family ${family}`);
  return { netnsCookie: getU64(b, f.netns_cookie.offset), port: getU16(b, f.port.offset), family };
}

/** Value of nm_daemon_cg: the pid that registered the cgroup. */
export function encodeDaemonInfo(pid: number): Buffer {
  const b = Buffer.alloc(LAYOUTS.nm_daemon_info.size);
  putU32(b, pid >>> 0, LAYOUTS.nm_daemon_info.fields.pid.offset);
  return b;
}

export function decodeDaemonInfo(b: Buffer): { pid: number } {
  checkSize(b, LAYOUTS.nm_daemon_info.size, 'nm_daemon_info');
  return { pid: getU32(b, LAYOUTS.nm_daemon_info.fields.pid.offset) };
}

/** A u32 key (array maps). */
export function encodeU32(v: number): Buffer {
  const b = Buffer.alloc(U32);
  putU32(b, v >>> 0, 0);
  return b;
}

export interface UdpSlot { family: 4 | 6; dns: boolean }

/** What each nm_udp_stats slot counts. */
export function udpSlot(slot: number): UdpSlot {
  if (!Number.isInteger(slot) || slot < 0 || slot >= NM_UDP_SLOTS) throw new RangeError(`nm_udp_stats: no slot ${slot}`);
  return { family: slot >= 2 ? 6 : 4, dns: slot % 2 === 1 };
}

export function encodePodIpInfo(netnsCookie: bigint): Buffer {
  checkU64(netnsCookie, 'nm_pod_ip_info');
  const b = Buffer.alloc(LAYOUTS.nm_pod_ip_info.size);
  putU64(b, netnsCookie, LAYOUTS.nm_pod_ip_info.fields.netns_cookie.offset);
  return b;
}

export function decodePodIpInfo(b: Buffer): { netnsCookie: bigint } {
  checkSize(b, LAYOUTS.nm_pod_ip_info.size, 'nm_pod_ip_info');
  return { netnsCookie: getU64(b, LAYOUTS.nm_pod_ip_info.fields.netns_cookie.offset) };
}

export function encodePodKey(uid: string): Buffer {
  const raw = Buffer.from(uid, 'utf8');
  if (raw.length === 0 || raw.length >= NM_UID_MAX || raw.includes(0)) {
    throw new RangeError(`pod uid must be 1..${NM_UID_MAX - 1} bytes of UTF-8 without NUL, got ${raw.length} bytes`);
  }
  const b = Buffer.alloc(LAYOUTS.nm_pod_key.size);
  raw.copy(b, LAYOUTS.nm_pod_key.fields.uid.offset);
  return b;
}

export function decodePodKey(b: Buffer): string {
  checkSize(b, LAYOUTS.nm_pod_key.size, 'nm_pod_key');
  const end = b.indexOf(0);
  return b.subarray(0, end < 0 ? b.length : end).toString('utf8');
}

export interface PodRecord { netnsCookie: bigint; flags: number; ips: string[] }

export function encodePodRec(r: PodRecord): Buffer {
  checkU64(r.netnsCookie, 'nm_pod_rec');
  if (r.ips.length > NM_POD_MAX_IPS) throw new RangeError(`a pod may have at most ${NM_POD_MAX_IPS} IPs, got ${r.ips.length}`);
  const f = LAYOUTS.nm_pod_rec.fields;
  const b = Buffer.alloc(LAYOUTS.nm_pod_rec.size);
  putU64(b, r.netnsCookie, f.netns_cookie.offset);
  putU32(b, r.flags >>> 0, f.flags.offset);
  putU32(b, r.ips.length, f.ip_count.offset);
  r.ips.forEach((ip, i) => encodeIpKey(ip).copy(b, f.ips.offset + i * LAYOUTS.nm_ip_key.size));
  return b;
}

export function decodePodRec(b: Buffer): PodRecord {
  checkSize(b, LAYOUTS.nm_pod_rec.size, 'nm_pod_rec');
  const f = LAYOUTS.nm_pod_rec.fields;
  const n = Math.min(getU32(b, f.ip_count.offset), NM_POD_MAX_IPS);
  const ips: string[] = [];
  for (let i = 0; i < n; i++) {
    const off = f.ips.offset + i * LAYOUTS.nm_ip_key.size;
    ips.push(decodeIpKey(b.subarray(off, off + LAYOUTS.nm_ip_key.size)));
  }
  return { netnsCookie: getU64(b, f.netns_cookie.offset), flags: getU32(b, f.flags.offset), ips };
}

// --- load-time constants ----------------------------------------------------------------

export function encodeRodataU32(v: number): Buffer {
  const b = Buffer.alloc(4);
  putU32(b, v >>> 0, 0);
  return b;
}

export function encodeRodataU16(v: number): Buffer {
  checkPort(v, 'rodata u16');
  const b = Buffer.alloc(2);
  putU16(b, v, 0);
  return b;
}

/** nm_skip_ports: up to NM_SKIP_PORTS ports, unused slots 0. */
export function encodeSkipPorts(ports: readonly number[]): Buffer {
  const uniq = [...new Set(ports)];
  if (uniq.length > NM_SKIP_PORTS) throw new RangeError(`at most ${NM_SKIP_PORTS} mesh ports, got ${uniq.length}`);
  const b = Buffer.alloc(OBJECTS.inbound.rodata.nm_skip_ports);
  uniq.forEach((p, i) => { checkPort(p, 'nm_skip_ports'); putU16(b, p, i * 2); });
  return b;
}
