// Request bodies stream through the whole waypoint on loopback (waypoint-test-kit.ts): gRPC
// client-streaming and bidirectional calls with @grpc/grpc-js, a 32 MiB upload, and retries and
// mirrors on each side of the retry buffer (request-body.ts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { waitFor } from '../daemon/tunnel/hbone-test-kit';
import { RETRY_BUFFER_LIMIT } from './request-body';
import { httpRoute } from './route-test-kit';
import { API_VIP, WaypointRig, startWaypointRig } from './waypoint-test-kit';

let rig: WaypointRig;
/** A loopback port whose connections the rig tunnels to the Service through the waypoint, as a
 * caller's node daemon would: grpc-js dials it. */
let entry: net.Server;
const open = new Set<net.Socket>();
before(async () => {
  rig = await startWaypointRig();
  entry = net.createServer((sock) => {
    open.add(sock);
    sock.on('error', () => undefined);
    sock.on('close', () => open.delete(sock));
    rig.tunnel(API_VIP, 80).then((t) => {
      t.on('error', () => undefined);
      sock.pipe(t).on('error', () => undefined);
      t.pipe(sock);
      sock.on('close', () => t.destroy());
      t.on('close', () => sock.destroy());
    }, () => sock.destroy());
  });
  await new Promise<void>((r) => entry.listen(0, '127.0.0.1', r));
});
after(async () => {
  for (const s of open) s.destroy();
  await new Promise((r) => entry.close(r));
  await rig.stop();
});

// gRPC framing on the app side (the app is the rig's HTTP/2 server); messages are JSON.
const frame = (v: unknown): Buffer => { const m = Buffer.from(JSON.stringify(v)); const h = Buffer.alloc(5); h.writeUInt32BE(m.length, 1); return Buffer.concat([h, m]); };
function onMessages(req: http.IncomingMessage, each: (v: { n: number }) => void): void {
  let buf = Buffer.alloc(0);
  req.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
      const len = buf.readUInt32BE(1);
      each(JSON.parse(buf.subarray(5, 5 + len).toString()) as { n: number });
      buf = buf.subarray(5 + len);
    }
  });
}

const appReceived: number[] = [];
function grpcApp(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.url === '/test.Stream/Sum') {
    let sum = 0;
    onMessages(req, (m) => { appReceived.push(m.n); sum += m.n; });
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/grpc' });
      res.write(frame({ n: sum }));
      res.addTrailers({ 'grpc-status': '0' });
      res.end();
    });
  } else if (req.url === '/test.Stream/Echo') {
    res.writeHead(200, { 'content-type': 'application/grpc' });
    onMessages(req, (m) => { appReceived.push(m.n); res.write(frame({ n: m.n * 10 })); });
    req.on('end', () => { res.addTrailers({ 'grpc-status': '0' }); res.end(); });
  } else {
    res.writeHead(404);
    res.end();
  }
}

const json = { requestSerialize: (v: unknown) => Buffer.from(JSON.stringify(v)), requestDeserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown, responseSerialize: (v: unknown) => Buffer.from(JSON.stringify(v)), responseDeserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown };
const StreamClient = grpc.makeGenericClientConstructor({
  Sum: { path: '/test.Stream/Sum', requestStream: true, responseStream: false, ...json },
  Echo: { path: '/test.Stream/Echo', requestStream: true, responseStream: true, ...json },
}, 'Stream');
type Client = grpc.Client & {
  Sum(cb: (e: grpc.ServiceError | null, r?: { n: number }) => void): grpc.ClientWritableStream<{ n: number }>;
  Echo(): grpc.ClientDuplexStream<{ n: number }, { n: number }>;
};

function withGrpcApp<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  rig.behaviour.set('v1', grpcApp as never);
  rig.behaviour.set('v2', grpcApp as never);
  appReceived.length = 0;
  const client = new StreamClient(`127.0.0.1:${(entry.address() as net.AddressInfo).port}`, grpc.credentials.createInsecure()) as unknown as Client;
  return fn(client).finally(() => { client.close(); rig.behaviour.clear(); });
}

test('a client-streaming gRPC call starts upstream with its first message, before the client half-closes', { timeout: 20_000 }, () => withGrpcApp(async (client) => {
  let answer: Promise<{ n: number }> = Promise.resolve({ n: -1 });
  const call = await new Promise<grpc.ClientWritableStream<{ n: number }>>((resolveCall) => {
    answer = new Promise((resolve, reject) => { resolveCall(client.Sum((e, r) => (e ? reject(e) : resolve(r!)))); });
  });
  call.write({ n: 1 });
  // With the body buffered until the half-close, the app would never see this message here.
  await waitFor(() => appReceived.length === 1, 10_000, 'the first message at the app while the call is open');
  call.write({ n: 2 });
  call.write({ n: 39 });
  call.end();
  assert.deepEqual(await answer, { n: 42 });
  assert.deepEqual(appReceived, [1, 2, 39]);
}));

test('a bidirectional gRPC call through the waypoint: each answer arrives before the next message is sent', { timeout: 20_000 }, () => withGrpcApp(async (client) => {
  const call = client.Echo();
  const answers: number[] = [];
  const waiting: Array<(v: number) => void> = [];
  call.on('data', (m: { n: number }) => { answers.push(m.n); waiting.shift()?.(m.n); });
  const status = new Promise<grpc.StatusObject>((r) => call.on('status', r));
  call.on('error', () => undefined);
  for (const n of [1, 2, 3]) {
    const next = new Promise<number>((r) => waiting.push(r));
    call.write({ n });
    assert.equal(await next, n * 10);
  }
  call.end();
  assert.equal((await status).code, grpc.status.OK);
  assert.deepEqual(answers, [10, 20, 30]);
}));

test('a 32 MiB upload streams through intact: the app reads its first half while the caller still holds the second', { timeout: 60_000 }, async () => {
  const total = 32 * 1024 * 1024;
  let appBytes = 0;
  const app = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const h = createHash('sha256');
    req.on('data', (c: Buffer) => { appBytes += c.length; h.update(c); });
    req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ bytes: appBytes, sha256: h.digest('hex') })); });
  };
  rig.behaviour.set('v1', app);
  rig.behaviour.set('v2', app);
  try {
    const sock = await rig.tunnel(API_VIP, 80);
    const sent = createHash('sha256');
    const got = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ createConnection: () => sock as unknown as net.Socket, method: 'POST', path: '/upload', headers: { host: 'api.shop', 'content-length': String(total) } }, (res) => {
        let body = '';
        res.on('data', (c) => { body += c; });
        res.on('end', () => { sock.destroy(); resolve({ status: res.statusCode ?? 0, body }); });
      });
      req.on('error', reject);
      (async () => {
        for (let i = 0; i < 32; i++) {
          if (i === 16) await waitFor(() => appBytes > 0, 20_000, 'upload bytes at the app before the caller sent the second half');
          const chunk = Buffer.alloc(1024 * 1024, i);
          sent.update(chunk);
          if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
        }
        req.end();
      })().catch(reject);
    });
    assert.equal(got.status, 200, got.body);
    assert.deepEqual(JSON.parse(got.body), { bytes: total, sha256: sent.digest('hex') });
    // That the waypoint keeps no more than RETRY_BUFFER_LIMIT of it is request-body.test.ts's
    // (process memory here mixes caller, waypoint and app, and follows the GC, not the code).
  } finally {
    rig.behaviour.clear();
  }
});

/** The app answers 503 to the first `failFirst` requests (after reading their bodies), then echoes the body length. */
function failingApp(failFirst: number) {
  const bodies: number[] = [];
  const app = (req: http.IncomingMessage, res: http.ServerResponse) => {
    let n = 0;
    req.on('data', (c: Buffer) => { n += c.length; });
    req.on('end', () => {
      bodies.push(n);
      res.writeHead(bodies.length <= failFirst ? 503 : 200);
      res.end(String(n));
    });
  };
  rig.behaviour.set('v1', app);
  return bodies;
}

test('a small POST body is retried whole; one over the retry buffer answers its first failure', async () => {
  rig.setRoutes([httpRoute('retry', [{ backendRefs: [{ name: 'api-v1', port: 80 }], retry: { attempts: 2, backoff: '1ms', codes: [503] } }])]);
  try {
    const small = failingApp(1);
    const r = await rig.get('/', { method: 'POST', body: 'x'.repeat(1000) });
    assert.equal(r.status, 200);
    assert.equal(r.body, '1000');
    assert.deepEqual(small, [1000, 1000], 'the retry carried the whole body again');

    const big = failingApp(1);
    const size = RETRY_BUFFER_LIMIT * 4;
    const b = await rig.get('/', { method: 'POST', body: 'y'.repeat(size) });
    assert.equal(b.status, 503, 'the failed attempt is the answer');
    assert.deepEqual(big, [size], 'sent once, not retried');
  } finally {
    rig.setRoutes([]);
    rig.behaviour.clear();
  }
});

test('a mirror gets a small body whole and skips one over the retry buffer', async () => {
  const mirrored: number[] = [];
  rig.behaviour.set('v2', (req, res) => { let n = 0; req.on('data', (c: Buffer) => { n += c.length; }); req.on('end', () => { mirrored.push(n); res.end(); }); });
  rig.setRoutes([httpRoute('mirror', [{ backendRefs: [{ name: 'api-v1', port: 80 }], filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'api-v2', port: 80 } } }] }])]);
  const count = async (result: string) => (await rig.metrics.registry.getSingleMetric('nodemesh_waypoint_mirrored_requests_total')!.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
  try {
    const sentBefore = await count('sent');
    const skippedBefore = await count('skipped');
    assert.equal((await rig.get('/', { method: 'POST', body: 'z'.repeat(500) })).status, 200);
    await waitFor(() => mirrored.length === 1, 5_000, 'the mirrored copy');
    assert.deepEqual(mirrored, [500]);
    const size = RETRY_BUFFER_LIMIT + 1;
    assert.equal((await rig.get('/', { method: 'POST', body: 'z'.repeat(size) })).status, 200);
    await waitFor(() => rig.seen.some((s) => s.body.length === size), 5_000, 'the real request');
    for (let i = 0; i < 50 && (await count('skipped')) === skippedBefore; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await count('skipped'), skippedBefore + 1);
    assert.equal(await count('sent'), sentBefore + 1);
    assert.deepEqual(mirrored, [500], 'nothing, rather than a part, went to the mirror');
  } finally {
    rig.setRoutes([]);
    rig.behaviour.clear();
  }
});

test('a body nobody sends (the waypoint answers itself) is drained: the next request on the connection is served', { timeout: 20_000 }, async () => {
  rig.setRoutes([httpRoute('only', [{ matches: [{ path: { type: 'PathPrefix', value: '/only' } }], backendRefs: [{ name: 'api-v1', port: 80 }] }])]);
  try {
    const sock = await rig.tunnel(API_VIP, 80);
    const size = RETRY_BUFFER_LIMIT * 3;
    let text = '';
    const two = new Promise<void>((resolve) => sock.on('data', (c: Buffer) => { text += c.toString('latin1'); if ((text.match(/HTTP\/1\.1 /g) ?? []).length >= 2 && text.includes('"version"')) resolve(); }));
    sock.write(`POST /elsewhere HTTP/1.1\r\nhost: api.shop\r\ncontent-length: ${size}\r\n\r\n`);
    sock.write(Buffer.alloc(size, 1));
    sock.write('GET /only HTTP/1.1\r\nhost: api.shop\r\n\r\n');
    await two;
    sock.destroy();
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d+)/g)].map((m) => Number(m[1]));
    assert.deepEqual(statuses, [404, 200]);
  } finally {
    rig.setRoutes([]);
  }
});
