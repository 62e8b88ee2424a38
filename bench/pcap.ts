// Reading what tcpdump saw on a node (`tcpdump -w`, snap length a few hundred bytes), for the
// bench's path check: which TCP ports carried a pair of pods' traffic, and whether any
// payload was readable plaintext or all of it TLS. Pure: takes the file's bytes.
export interface TcpPacket { src: string; dst: string; sport: number; dport: number; payload: Buffer }

const LINKTYPE_ETHERNET = 1;
const LINKTYPE_RAW = 101;
const LINKTYPE_LINUX_SLL = 113;
const LINKTYPE_LINUX_SLL2 = 276;

const ipv4 = (b: Buffer, o: number): string => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;

/** IPv4 TCP packets of a classic pcap file (either byte order, µs or ns). Others are skipped. */
export function parsePcap(buf: Buffer): TcpPacket[] {
  if (buf.length < 24) return [];
  const magic = buf.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && buf.readUInt32BE(0) !== 0xa1b2c3d4 && buf.readUInt32BE(0) !== 0xa1b23c4d) throw new Error('not a pcap file (bad magic)');
  const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const linktype = u32(20) & 0xffff;
  const out: TcpPacket[] = [];
  for (let o = 24; o + 16 <= buf.length;) {
    const incl = u32(o + 8);
    const start = o + 16;
    o = start + incl;
    if (o > buf.length) break;
    let ip: number;
    let proto: number;
    if (linktype === LINKTYPE_ETHERNET) { proto = buf.readUInt16BE(start + 12); ip = start + 14; }
    else if (linktype === LINKTYPE_LINUX_SLL) { proto = buf.readUInt16BE(start + 14); ip = start + 16; }
    else if (linktype === LINKTYPE_LINUX_SLL2) { proto = buf.readUInt16BE(start); ip = start + 20; }
    else if (linktype === LINKTYPE_RAW) { proto = 0x0800; ip = start; }
    else throw new Error(`pcap link type ${linktype} is not supported`);
    if (proto !== 0x0800 || ip + 20 > o || buf[ip]! >> 4 !== 4 || buf[ip + 9] !== 6) continue;
    const ihl = (buf[ip]! & 0x0f) * 4;
    const total = buf.readUInt16BE(ip + 2);
    const tcp = ip + ihl;
    if (tcp + 20 > o) continue;
    const doff = (buf[tcp + 12]! >> 4) * 4;
    const payloadStart = tcp + doff;
    const payloadEnd = Math.min(o, ip + total);
    out.push({
      src: ipv4(buf, ip + 12), dst: ipv4(buf, ip + 16), sport: buf.readUInt16BE(tcp), dport: buf.readUInt16BE(tcp + 2),
      payload: payloadStart < payloadEnd ? buf.subarray(payloadStart, payloadEnd) : Buffer.alloc(0),
    });
  }
  return out;
}

export interface PairTraffic {
  /** Packets with payload between the two addresses (either way). */
  packets: number;
  /** Server-side ports of those packets (the lower of the two ports, which is the listener's here). */
  serverPorts: number[];
  /** Payload packets that start a TLS record (content type 20-23, version 3.x). */
  tlsRecords: number;
  /** A ClientHello (handshake record, type 1) was seen. */
  clientHello: boolean;
  /** Payload packets in which one of the plaintext markers appears. */
  plaintextHits: number;
}

/** What travelled between two pod addresses, from a node's capture. */
export function pairTraffic(packets: readonly TcpPacket[], a: string, b: string, plaintextMarkers: readonly string[]): PairTraffic {
  const markers = plaintextMarkers.map((m) => Buffer.from(m, 'latin1'));
  const ports = new Set<number>();
  let n = 0;
  let tls = 0;
  let hello = false;
  let plain = 0;
  for (const p of packets) {
    if (!((p.src === a && p.dst === b) || (p.src === b && p.dst === a)) || p.payload.length === 0) continue;
    n++;
    ports.add(Math.min(p.sport, p.dport));
    const x = p.payload;
    if (x.length >= 5 && x[0]! >= 20 && x[0]! <= 23 && x[1] === 3 && x[2]! <= 4) { tls++; if (x[0] === 22 && x[5] === 1) hello = true; }
    if (markers.some((m) => x.includes(m))) plain++;
  }
  return { packets: n, serverPorts: [...ports].sort((x, y) => x - y), tlsRecords: tls, clientHello: hello, plaintextHits: plain };
}
