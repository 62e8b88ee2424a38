// A hostile peer, byte by byte: every malformed input is a stream error (RST_STREAM) or a
// connection error (GOAWAY with the RFC's code), floods end with ENHANCE_YOUR_CALM, and random
// or mutated byte streams never throw out of the parser. Runs on an in-memory socket.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import type * as net from 'node:net';
import { H2Connection, type H2ConnectionOptions } from './connection';
import { ErrorCode, Flag, FrameType, PREFACE } from './constants';
import { HpackEncoder } from './hpack';
import type { H2Stream, HeaderMap } from './stream';

/** The peer's end of an in-memory connection: what we wrote is in `sent`. */
class FakeSocket extends Duplex {
  readonly sent: Buffer[] = [];
  override _read(): void { /* input arrives with feed() */ }
  override _write(c: Buffer, _e: BufferEncoding, cb: () => void): void { this.sent.push(Buffer.from(c)); cb(); }
  feed(b: Buffer): void { this.emit('data', b); }
  setNoDelay(): this { return this; }
}

function frame(type: number, flags: number, id: number, payload: Buffer | number[] = []): Buffer {
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const h = Buffer.alloc(9);
  h.writeUIntBE(p.length, 0, 3);
  h[3] = type; h[4] = flags;
  h.writeUInt32BE(id, 5);
  return Buffer.concat([h, p]);
}

const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(n >>> 0); return b; };
const settings = (pairs: [number, number][] = []) => frame(FrameType.SETTINGS, 0, 0, Buffer.concat(pairs.map(([k, v]) => { const b = Buffer.alloc(6); b.writeUInt16BE(k); b.writeUInt32BE(v, 2); return b; })));
const enc = () => new HpackEncoder();
const connectBlock = (authority = '10.0.0.1:80', extra: string[] = []) => enc().encode([':method', 'CONNECT', ':authority', authority, ...extra]);
const headers = (id: number, block: Buffer, flags: number = Flag.END_HEADERS) => frame(FrameType.HEADERS, flags, id, block);
const ping = (ack = false) => frame(FrameType.PING, ack ? Flag.ACK : 0, 0, Buffer.alloc(8, 7));

interface Frame { type: number; flags: number; id: number; payload: Buffer }

function framesOf(sock: FakeSocket, skip = 0): Frame[] {
  const all = Buffer.concat(sock.sent).subarray(skip);
  const out: Frame[] = [];
  for (let off = 0; off + 9 <= all.length;) {
    const len = all.readUIntBE(off, 3);
    out.push({ type: all[off + 3], flags: all[off + 4], id: all.readUInt32BE(off + 5), payload: all.subarray(off + 9, off + 9 + len) });
    off += 9 + len;
  }
  return out;
}

function goawayCode(sock: FakeSocket): number | undefined {
  const g = framesOf(sock).find((f) => f.type === FrameType.GOAWAY);
  return g?.payload.readUInt32BE(4);
}

function rstCodes(sock: FakeSocket): [number, number][] {
  return framesOf(sock).filter((f) => f.type === FrameType.RST_STREAM).map((f) => [f.id, f.payload.readUInt32BE(0)]);
}

async function settle(): Promise<void> { await new Promise((r) => setImmediate(r)); }

interface Served { sock: FakeSocket; conn: H2Connection; streams: { stream: H2Stream; headers: HeaderMap; closed?: number; data: Buffer[] }[]; errors: string[] }

/** Our server on an in-memory socket; streams are answered 200 and echoed. Preface + SETTINGS sent. */
function served(opts: Partial<H2ConnectionOptions> = {}, handshake = true): Served {
  const sock = new FakeSocket();
  const s: Served = { sock, conn: undefined as unknown as H2Connection, streams: [], errors: [] };
  s.conn = new H2Connection(sock as unknown as net.Socket, {
    role: 'server', settings: { initialWindowSize: 65_535, maxFrameSize: 16_384, maxConcurrentStreams: 10 }, connectionWindow: 65_535,
    onStream: (stream, h) => {
      const rec: Served['streams'][number] = { stream, headers: h, data: [] };
      s.streams.push(rec);
      stream.respond(200);
      stream.ondata = (c) => rec.data.push(Buffer.from(c));
      stream.onclose = (code) => { rec.closed = code; };
      stream.start();
    },
    onProtocolError: (reason) => s.errors.push(reason),
    ...opts,
  });
  if (handshake) sock.feed(Buffer.concat([PREFACE, settings()]));
  return s;
}

async function expectGoaway(input: Buffer[], code: number, opts: Partial<H2ConnectionOptions> = {}, handshake = true): Promise<Served> {
  const s = served(opts, handshake);
  for (const b of input) s.sock.feed(b);
  await settle();
  assert.equal(goawayCode(s.sock), code, `GOAWAY code (errors: ${s.errors.join('; ')})`);
  assert.equal(s.errors.length, 1, 'one protocol error reported (bounded logging)');
  return s;
}

async function expectRst(input: Buffer[], id: number, code: number, opts: Partial<H2ConnectionOptions> = {}): Promise<Served> {
  const s = served(opts);
  for (const b of input) s.sock.feed(b);
  s.sock.feed(ping());
  await settle();
  assert.deepEqual(rstCodes(s.sock).find(([i]) => i === id), [id, code], `RST_STREAM on ${id}`);
  assert.equal(goawayCode(s.sock), undefined, 'the connection survives a stream error');
  assert.ok(framesOf(s.sock).some((f) => f.type === FrameType.PING && f.flags & Flag.ACK), 'and still answers PING');
  return s;
}

test('connection errors carry the RFC code', async () => {
  await expectGoaway([Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')], ErrorCode.PROTOCOL_ERROR, {}, false);
  await expectGoaway([PREFACE, ping()], ErrorCode.PROTOCOL_ERROR, {}, false);
  await expectGoaway([frame(FrameType.DATA, 0, 1, Buffer.alloc(20_000))], ErrorCode.FRAME_SIZE_ERROR);
  await expectGoaway([headers(1, Buffer.from([0xbe]))], ErrorCode.COMPRESSION_ERROR);
  await expectGoaway([headers(2, connectBlock())], ErrorCode.PROTOCOL_ERROR);
  await expectGoaway([headers(0, connectBlock())], ErrorCode.PROTOCOL_ERROR);
  await expectGoaway([headers(3, connectBlock()), headers(1, connectBlock())], ErrorCode.STREAM_CLOSED);
  await expectGoaway([frame(FrameType.DATA, 0, 5, Buffer.from('x'))], ErrorCode.PROTOCOL_ERROR); // idle stream
  await expectGoaway([frame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, 1, Buffer.alloc(4))], ErrorCode.PROTOCOL_ERROR);
  await expectGoaway([frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, connectBlock())], ErrorCode.PROTOCOL_ERROR);
  await expectGoaway([headers(1, connectBlock(), 0), ping()], ErrorCode.PROTOCOL_ERROR); // header block interrupted
  await expectGoaway([frame(FrameType.PING, 0, 0, Buffer.alloc(7))], ErrorCode.FRAME_SIZE_ERROR);
  await expectGoaway([frame(FrameType.PING, 0, 1, Buffer.alloc(8))], ErrorCode.PROTOCOL_ERROR);
  await expectGoaway([frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(5))], ErrorCode.FRAME_SIZE_ERROR);
  await expectGoaway([frame(FrameType.SETTINGS, Flag.ACK, 0, Buffer.alloc(6))], ErrorCode.FRAME_SIZE_ERROR);
  await expectGoaway([settings([[0x4, 0x8000_0000]])], ErrorCode.FLOW_CONTROL_ERROR);
  await expectGoaway([settings([[0x5, 100]])], ErrorCode.PROTOCOL_ERROR);
  await expectGoaway([settings([[0x2, 2]])], ErrorCode.PROTOCOL_ERROR);
  await expectGoaway([frame(FrameType.WINDOW_UPDATE, 0, 0, u32(0))], ErrorCode.PROTOCOL_ERROR);
  await expectGoaway([frame(FrameType.WINDOW_UPDATE, 0, 0, u32(0x7fff_ffff))], ErrorCode.FLOW_CONTROL_ERROR);
  await expectGoaway([frame(FrameType.WINDOW_UPDATE, 0, 0, Buffer.alloc(3))], ErrorCode.FRAME_SIZE_ERROR);
  await expectGoaway([frame(FrameType.RST_STREAM, 0, 0, u32(8))], ErrorCode.PROTOCOL_ERROR);
  await expectGoaway([frame(FrameType.RST_STREAM, 0, 9, u32(8))], ErrorCode.PROTOCOL_ERROR); // idle
  await expectGoaway([frame(FrameType.GOAWAY, 0, 0, Buffer.alloc(4))], ErrorCode.FRAME_SIZE_ERROR);
  await expectGoaway([frame(FrameType.PRIORITY, 0, 0, Buffer.alloc(5))], ErrorCode.PROTOCOL_ERROR);
  // DATA beyond the connection window (65,535 here): three streams of 30,000 each.
  const big = Buffer.alloc(16_000);
  const flood = [1, 3, 5].flatMap((id) => [headers(id, connectBlock()), frame(FrameType.DATA, 0, id, big), frame(FrameType.DATA, 0, id, big)]);
  await expectGoaway(flood, ErrorCode.FLOW_CONTROL_ERROR, { onStream: () => undefined, settings: { initialWindowSize: 1 << 20, maxFrameSize: 16_384 } });
});

test('stream errors reset one stream and leave the connection up', async () => {
  await expectRst([headers(1, connectBlock('10.0.0.1:80', [':path', '/']))], 1, ErrorCode.PROTOCOL_ERROR);
  await expectRst([headers(1, enc().encode([':method', 'CONNECT']))], 1, ErrorCode.PROTOCOL_ERROR);
  await expectRst([headers(1, connectBlock('10.0.0.1:80', ['X-Upper', 'v']))], 1, ErrorCode.PROTOCOL_ERROR);
  await expectRst([headers(1, connectBlock('10.0.0.1:80', ['connection', 'close']))], 1, ErrorCode.PROTOCOL_ERROR);
  await expectRst([headers(1, connectBlock('10.0.0.1:80', ['x-a', 'b\r\nc']))], 1, ErrorCode.PROTOCOL_ERROR);
  await expectRst([headers(1, enc().encode(['x-a', 'b', ':method', 'CONNECT', ':authority', 'a:1']))], 1, ErrorCode.PROTOCOL_ERROR);
  await expectRst([headers(1, connectBlock('10.0.0.1:80', ['x-big', 'v'.repeat(5000)]))], 1, ErrorCode.PROTOCOL_ERROR,
    { settings: { initialWindowSize: 65_535, maxFrameSize: 16_384, maxHeaderListSize: 4096 } });
  // a stream nobody reads gives no window back: the sixth 16,000-byte frame overruns 65,535
  const unread = { onStream: () => undefined, settings: { initialWindowSize: 65_535, maxFrameSize: 16_384 }, connectionWindow: 1 << 20 };
  await expectRst([headers(1, connectBlock()), ...Array(5).fill(frame(FrameType.DATA, 0, 1, Buffer.alloc(16_000)))], 1, ErrorCode.FLOW_CONTROL_ERROR, unread);
  await expectRst([headers(1, connectBlock(), Flag.END_HEADERS | Flag.END_STREAM), frame(FrameType.DATA, 0, 1, Buffer.from('late'))], 1, ErrorCode.STREAM_CLOSED);
  await expectRst([headers(1, connectBlock()), frame(FrameType.WINDOW_UPDATE, 0, 1, u32(0))], 1, ErrorCode.PROTOCOL_ERROR);
  await expectRst([headers(1, connectBlock()), frame(FrameType.PRIORITY, 0, 1, Buffer.alloc(4))], 1, ErrorCode.FRAME_SIZE_ERROR);
});

test('floods end with ENHANCE_YOUR_CALM', async () => {
  await expectGoaway(Array(150).fill(ping()), ErrorCode.ENHANCE_YOUR_CALM);
  await expectGoaway(Array(150).fill(settings()), ErrorCode.ENHANCE_YOUR_CALM);
  const rapid: Buffer[] = [];
  for (let id = 1; id < 2 * 1100; id += 2) rapid.push(headers(id, connectBlock()), frame(FrameType.RST_STREAM, 0, id, u32(8)));
  const s = await expectGoaway(rapid, ErrorCode.ENHANCE_YOUR_CALM);
  assert.ok(s.streams.length <= 1001, 'no stream is served past the limit');
  await expectGoaway([headers(1, connectBlock()), ...Array(1100).fill(frame(FrameType.DATA, 0, 1))], ErrorCode.ENHANCE_YOUR_CALM);
  await expectGoaway([headers(1, Buffer.alloc(0), 0), ...Array(100).fill(frame(FrameType.CONTINUATION, 0, 1))], ErrorCode.ENHANCE_YOUR_CALM);
  await expectGoaway([headers(1, Buffer.alloc(10_000, 0x82), 0), ...Array(7).fill(frame(FrameType.CONTINUATION, 0, 1, Buffer.alloc(10_000, 0x82)))], ErrorCode.ENHANCE_YOUR_CALM);
});

test('MAX_CONCURRENT_STREAMS: streams past the limit are refused', async () => {
  const s = served({ settings: { initialWindowSize: 65_535, maxFrameSize: 16_384, maxConcurrentStreams: 2 } });
  for (const id of [1, 3, 5]) s.sock.feed(headers(id, connectBlock()));
  await settle();
  assert.equal(s.streams.length, 2);
  assert.deepEqual(rstCodes(s.sock), [[5, ErrorCode.REFUSED_STREAM]]);
  // one ends: the next stream is served
  s.streams[0].stream.reset(ErrorCode.CANCEL);
  s.sock.feed(headers(7, connectBlock()));
  assert.equal(s.streams.length, 3);
});

test('padding, PRIORITY, unknown frames and CONTINUATION are understood; an RST reaches the stream', async () => {
  const s = served();
  const block = connectBlock('10.0.0.9:443', ['x-caller', 'web']);
  // HEADERS padded + priority, split into a CONTINUATION
  const first = Buffer.concat([Buffer.from([3]), Buffer.alloc(5), block.subarray(0, 4), Buffer.alloc(3)]);
  s.sock.feed(frame(FrameType.HEADERS, Flag.PADDED | Flag.PRIORITY, 1, first));
  s.sock.feed(frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, block.subarray(4)));
  s.sock.feed(frame(FrameType.PRIORITY, 0, 1, Buffer.alloc(5)));
  s.sock.feed(frame(0xfa, 0, 0, Buffer.from('unknown')));
  s.sock.feed(frame(FrameType.DATA, Flag.PADDED, 1, Buffer.concat([Buffer.from([4]), Buffer.from('hello'), Buffer.alloc(4)])));
  // a DATA frame arriving in three pieces
  const d = frame(FrameType.DATA, 0, 1, Buffer.from(' world!'));
  s.sock.feed(d.subarray(0, 5)); s.sock.feed(d.subarray(5, 12)); s.sock.feed(d.subarray(12));
  await settle();
  assert.equal(s.streams.length, 1);
  assert.equal(s.streams[0].headers[':authority'], '10.0.0.9:443');
  assert.equal(s.streams[0].headers['x-caller'], 'web');
  assert.equal(Buffer.concat(s.streams[0].data).toString(), 'hello world!');
  s.sock.feed(frame(FrameType.RST_STREAM, 0, 1, u32(ErrorCode.CANCEL)));
  assert.equal(s.streams[0].closed, ErrorCode.CANCEL);
  assert.equal(goawayCode(s.sock), undefined);
  assert.deepEqual(s.errors, []);
});

test('our window is given back in batches, only for bytes the reader took', async () => {
  const s = served({ settings: { initialWindowSize: 100_000, maxFrameSize: 16_384 }, connectionWindow: 1 << 20 });
  s.sock.feed(headers(1, connectBlock()));
  const stream = s.streams[0].stream;
  const before = framesOf(s.sock).length;
  stream.pause();
  for (let i = 0; i < 6; i++) s.sock.feed(frame(FrameType.DATA, 0, 1, Buffer.alloc(10_000)));
  await settle();
  const updates = () => framesOf(s.sock).slice(before).filter((f) => f.type === FrameType.WINDOW_UPDATE && f.id === 1);
  assert.equal(updates().length, 0, 'no stream window while paused');
  stream.resume();
  await settle();
  assert.deepEqual(updates().map((f) => f.payload.readUInt32BE(0)), [60_000], 'one batched update once half the window was taken');
});

test('our sends honour the peer\'s windows, and continue on WINDOW_UPDATE and SETTINGS', async () => {
  const s = served({}, false);
  s.sock.feed(Buffer.concat([PREFACE, settings([[0x4, 10]])]));
  s.sock.feed(headers(1, connectBlock()));
  const stream = s.streams[0].stream;
  const skip = Buffer.concat(s.sock.sent).length;
  assert.equal(stream.write(Buffer.from('0123456789abcdef')), false, 'write reports the closed window');
  let drained = false;
  stream.ondrain = () => { drained = true; };
  await settle();
  const data = () => framesOf(s.sock, skip).filter((f) => f.type === FrameType.DATA).map((f) => f.payload.toString()).join('');
  assert.equal(data(), '0123456789');
  s.sock.feed(frame(FrameType.WINDOW_UPDATE, 0, 1, u32(3)));
  await settle();
  assert.equal(data(), '0123456789abc');
  s.sock.feed(settings([[0x4, 20]])); // +10 on every stream
  await settle();
  assert.equal(data(), '0123456789abcdef');
  assert.ok(drained);
});

test('fuzz: random and mutated byte streams never throw out of either side', () => {
  let seed = 12345;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  // A valid client byte stream to mutate: preface, SETTINGS, streams with data, updates, resets, pings.
  const valid = Buffer.concat([
    PREFACE, settings([[0x4, 1000], [0x1, 100]]), frame(FrameType.WINDOW_UPDATE, 0, 0, u32(1000)),
    headers(1, connectBlock()), frame(FrameType.DATA, 0, 1, Buffer.from('abc')), headers(3, connectBlock('1.2.3.4:5', ['x-y', 'z']), 0),
    frame(FrameType.CONTINUATION, Flag.END_HEADERS, 3, Buffer.alloc(0)), frame(FrameType.DATA, Flag.END_STREAM | Flag.PADDED, 3, Buffer.from([1, 65, 0])),
    frame(FrameType.WINDOW_UPDATE, 0, 1, u32(5)), ping(), frame(FrameType.RST_STREAM, 0, 1, u32(8)), frame(FrameType.PRIORITY, 0, 5, Buffer.alloc(5)),
    frame(FrameType.GOAWAY, 0, 0, Buffer.alloc(8)),
  ]);
  const errors = new Set<string>();
  for (let i = 0; i < 3000; i++) {
    const server = i % 2 === 0;
    let input: Buffer;
    if (i % 3 === 0) {
      input = Buffer.alloc(rnd(400));
      for (let j = 0; j < input.length; j++) input[j] = rnd(256);
      if (server && rnd(2)) input = Buffer.concat([PREFACE, input]);
      if (!server && rnd(2)) input = Buffer.concat([settings(), input]);
    } else {
      input = Buffer.from(server ? valid : valid.subarray(PREFACE.length));
      for (let k = rnd(8); k >= 0; k--) input[rnd(input.length)] = rnd(256);
    }
    const sock = new FakeSocket();
    const conn = new H2Connection(sock as unknown as net.Socket, {
      role: server ? 'server' : 'client', settings: { initialWindowSize: 200, maxFrameSize: 16_384, maxConcurrentStreams: 5 }, connectionWindow: 300,
      onStream: (st) => { st.respond(200); st.ondata = (c) => st.write(c); st.onend = () => st.end(); st.start(); },
      onProtocolError: (reason) => errors.add(reason.replace(/\d+/g, 'N')),
    });
    if (!server) for (let k = 0; k < 3; k++) { const st = conn.request([':method', 'CONNECT', ':authority', 'a:1']); st.ondata = (c) => st.write(c); st.start(); }
    // fed in random pieces
    for (let off = 0; off < input.length;) {
      const n = 1 + rnd(64);
      sock.feed(input.subarray(off, off + n));
      off += n;
    }
    conn.destroy();
  }
  assert.ok(errors.size > 10, `many different errors were reached (${errors.size})`);
});
