// pcap parsing and what travelled between two pods.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pairTraffic, parsePcap, type TcpPacket } from './pcap';

function ipv4Tcp(src: string, dst: string, sport: number, dport: number, payload: Buffer): Buffer {
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + 20 + payload.length, 2);
  ip[8] = 64;
  ip[9] = 6;
  src.split('.').forEach((o, i) => { ip[12 + i] = Number(o); });
  dst.split('.').forEach((o, i) => { ip[16 + i] = Number(o); });
  const tcp = Buffer.alloc(20);
  tcp.writeUInt16BE(sport, 0);
  tcp.writeUInt16BE(dport, 2);
  tcp[12] = 5 << 4;
  return Buffer.concat([ip, tcp, payload]);
}

function pcap(linktype: number, frames: Buffer[]): Buffer {
  const g = Buffer.alloc(24);
  g.writeUInt32LE(0xa1b2c3d4, 0);
  g.writeUInt16LE(2, 4);
  g.writeUInt16LE(4, 6);
  g.writeUInt32LE(262144, 16);
  g.writeUInt32LE(linktype, 20);
  return Buffer.concat([g, ...frames.flatMap((f) => { const h = Buffer.alloc(16); h.writeUInt32LE(f.length, 8); h.writeUInt32LE(f.length, 12); return [h, f]; })]);
}

const sll2 = (ip: Buffer): Buffer => { const h = Buffer.alloc(20); h.writeUInt16BE(0x0800, 0); return Buffer.concat([h, ip]); };
const eth = (ip: Buffer): Buffer => { const h = Buffer.alloc(14); h.writeUInt16BE(0x0800, 12); return Buffer.concat([h, ip]); };

test('parsePcap: Ethernet and Linux cooked (any) captures, payload cut at the IP length', () => {
  const p = ipv4Tcp('10.244.1.2', '10.244.2.3', 40000, 8080, Buffer.from('POST /bench HTTP/1.1\r\n'));
  for (const [lt, wrap] of [[1, eth], [276, sll2]] as const) {
    const pkts = parsePcap(pcap(lt, [wrap(p)]));
    assert.equal(pkts.length, 1);
    assert.deepEqual({ ...pkts[0], payload: pkts[0]!.payload.toString() }, { src: '10.244.1.2', dst: '10.244.2.3', sport: 40000, dport: 8080, payload: 'POST /bench HTTP/1.1\r\n' });
  }
  assert.throws(() => parsePcap(Buffer.alloc(24)), /not a pcap/);
});

test('pairTraffic: ports, TLS record starts, ClientHello, readable plaintext, only between the two pods', () => {
  const hello = Buffer.from([22, 3, 1, 0, 200, 1, 0, 0]);
  const appData = Buffer.from([23, 3, 3, 0, 50, 9, 9, 9]);
  const pkts: TcpPacket[] = [
    { src: '10.244.1.2', dst: '10.244.2.3', sport: 41000, dport: 15008, payload: hello },
    { src: '10.244.2.3', dst: '10.244.1.2', sport: 15008, dport: 41000, payload: appData },
    { src: '10.244.1.2', dst: '10.244.2.3', sport: 41000, dport: 15008, payload: Buffer.alloc(0) },
    { src: '10.244.1.9', dst: '10.244.2.3', sport: 41001, dport: 8080, payload: Buffer.from('POST /bench') },
  ];
  assert.deepEqual(pairTraffic(pkts, '10.244.1.2', '10.244.2.3', ['POST /bench']), { packets: 2, serverPorts: [15008], tlsRecords: 2, clientHello: true, plaintextHits: 0 });
  assert.deepEqual(pairTraffic(pkts, '10.244.1.9', '10.244.2.3', ['POST /bench']), { packets: 1, serverPorts: [8080], tlsRecords: 0, clientHello: false, plaintextHits: 1 });
});
