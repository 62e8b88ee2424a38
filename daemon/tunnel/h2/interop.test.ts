// Interop over real mutual TLS 1.3 on loopback: our client against node:http2's server (nghttp2)
// and node:http2's client against our server. CONNECT, bytes both ways, half-close, resets,
// GOAWAY and a large transfer through small windows: this is HTTP/2, not a private protocol.
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { MeshCA } from '../../identity/ca';
import { issueIdentity, LOOPBACK } from '../hbone-test-kit';
import { secureContextOptions, type IssuedIdentity } from '../tls-identity';
import { H2Connection, H2RefusedError, type H2ConnectionOptions } from './connection';
import { ErrorCode } from './constants';
import type { H2Stream, HeaderMap } from './stream';

let clientId: IssuedIdentity;
let serverId: IssuedIdentity;

before(async () => {
  const ca = await MeshCA.create({ trustDomain: 'cluster.local' });
  clientId = await issueIdentity(ca, 'shop', 'web');
  serverId = await issueIdentity(ca, 'shop', 'api');
});

const tlsServerOptions = () => ({ ...secureContextOptions(serverId), requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2'] });

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, LOOPBACK, () => resolve((server.address() as net.AddressInfo).port)));
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((r) => server.close(() => r()));
}

/** Our client over mTLS to `port`. */
function ourClient(port: number, opts: Partial<H2ConnectionOptions> = {}): Promise<H2Connection> {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ host: LOOPBACK, port, ...secureContextOptions(clientId), ALPNProtocols: ['h2'], checkServerIdentity: () => undefined });
    sock.once('error', reject);
    sock.once('secureConnect', () => {
      assert.equal(sock.alpnProtocol, 'h2');
      resolve(new H2Connection(sock, { role: 'client', settings: { initialWindowSize: 1 << 20, maxFrameSize: 1 << 16 }, connectionWindow: 4 << 20, ...opts }));
    });
  });
}

function connect(conn: H2Connection, authority = '10.0.0.1:8080'): Promise<{ stream: H2Stream; status: number; headers: HeaderMap }> {
  const stream = conn.request([':method', 'CONNECT', ':authority', authority]);
  return new Promise((resolve, reject) => {
    stream.onresponse = (status, headers) => resolve({ stream, status, headers });
    stream.onclose = (code, err) => reject(err ?? new Error(`closed with ${code}`));
  });
}

/** Sends `data` on our stream, half-closes, and collects what comes back until the peer's END_STREAM. */
function exchange(stream: H2Stream, data: Buffer): Promise<{ received: Buffer; code: number }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let ended = false;
    stream.ondata = (c) => chunks.push(Buffer.from(c));
    stream.onend = () => { ended = true; };
    stream.onclose = (code, err) => (err ? reject(err) : resolve({ received: Buffer.concat(chunks), code: ended ? code : -1 }));
    stream.start();
    let off = 0;
    const pump = () => {
      while (off < data.length) {
        const n = Math.min(50_000, data.length - off);
        const ok = stream.write(data.subarray(off, off + n));
        off += n;
        if (!ok) return;
      }
      stream.end();
    };
    stream.ondrain = pump;
    pump();
  });
}

/** node:http2 server that echoes CONNECT streams. */
async function nodeServer(settings: http2.Settings = {}, onStream?: (s: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders) => boolean) {
  const server = http2.createSecureServer({ ...tlsServerOptions(), settings });
  const sessions: http2.ServerHttp2Session[] = [];
  server.on('session', (s) => sessions.push(s));
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    if (onStream?.(stream, headers)) return;
    if (headers[':method'] !== 'CONNECT') { stream.respond({ ':status': 405 }, { endStream: true }); return; }
    stream.respond({ ':status': 200 });
    stream.pipe(stream);
  });
  const port = await listen(server);
  return { server, port, sessions };
}

/** Our server over mTLS: echoes CONNECT streams, answers 405 to anything else. */
async function ourServer(opts: Partial<H2ConnectionOptions> = {}, onStream?: (s: H2Stream, h: HeaderMap) => boolean) {
  const conns: H2Connection[] = [];
  const closedStreams: { code: number; error?: Error }[] = [];
  const server = tls.createServer(tlsServerOptions(), (sock) => {
    const conn = new H2Connection(sock, {
      role: 'server', settings: { initialWindowSize: 1 << 20, maxFrameSize: 1 << 16, maxConcurrentStreams: 100 }, connectionWindow: 4 << 20,
      onStream: (stream, headers) => {
        const prev = stream.onclose;
        if (onStream?.(stream, headers)) return;
        if (headers[':method'] !== 'CONNECT') { stream.respond(405, { allow: 'CONNECT' }, true); return; }
        if (headers[':authority'] === 'deny:1') { stream.respond(403, { 'nodemesh-reason': 'denied' }, true); return; }
        stream.respond(200);
        stream.ondata = (c) => { if (!stream.write(c)) stream.pause(); };
        stream.ondrain = () => stream.resume();
        stream.onend = () => stream.end();
        stream.onclose = (code, error) => { closedStreams.push({ code, error }); prev?.(code, error); };
        stream.start();
      },
      ...opts,
    });
    conns.push(conn);
  });
  const port = await listen(server);
  return { server, port, conns, closedStreams };
}

function nodeClient(port: number, settings: http2.Settings = {}): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(`https://${LOOPBACK}:${port}`, { ...secureContextOptions(clientId), checkServerIdentity: () => undefined, settings });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

function nodeExchange(req: http2.ClientHttp2Stream, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
    req.end(data);
  });
}

const payload = (n: number) => crypto.randomBytes(n);

test('our client -> node:http2 server: CONNECT, 4 MiB both ways through 16 KiB windows, half-close', { timeout: 30_000 }, async () => {
  const srv = await nodeServer({ initialWindowSize: 16_384 });
  const conn = await ourClient(srv.port, { settings: { initialWindowSize: 16_384, maxFrameSize: 16_384 }, connectionWindow: 65_535 });
  try {
    const { stream, status } = await connect(conn);
    assert.equal(status, 200);
    const data = payload(4 << 20);
    const r = await exchange(stream, data);
    assert.equal(r.code, 0, 'closed cleanly after both END_STREAMs');
    assert.ok(r.received.equals(data), 'echoed bytes match');
    assert.equal(conn.activeStreams, 0);
  } finally {
    conn.destroy();
    await closeServer(srv.server);
  }
});

test('our client -> node:http2 server: many streams at once share the connection window', { timeout: 30_000 }, async () => {
  const srv = await nodeServer();
  const conn = await ourClient(srv.port, { connectionWindow: 100_000 });
  try {
    const results = await Promise.all(Array.from({ length: 20 }, async () => {
      const { stream } = await connect(conn);
      const data = payload(200_000);
      const r = await exchange(stream, data);
      return r.received.equals(data);
    }));
    assert.deepEqual(results, Array(20).fill(true));
  } finally {
    conn.destroy();
    await closeServer(srv.server);
  }
});

test('our client -> node:http2 server: resets both ways, and refusals', { timeout: 30_000 }, async () => {
  let serverSawClose: number | undefined;
  const srv = await nodeServer({}, (stream, headers) => {
    if (headers[':authority'] === 'refuse:1') { stream.close(http2.constants.NGHTTP2_REFUSED_STREAM); return true; }
    if (headers[':authority'] === 'deny:1') { stream.respond({ ':status': 403, 'nodemesh-reason': 'no policy allows it' }, { endStream: true }); return true; }
    stream.on('close', () => { serverSawClose = stream.rstCode; });
    return false;
  });
  const conn = await ourClient(srv.port);
  try {
    // the server resets
    const refused = conn.request([':method', 'CONNECT', ':authority', 'refuse:1']);
    const code = await new Promise<number>((r) => { refused.onclose = (c) => r(c); });
    assert.equal(code, ErrorCode.REFUSED_STREAM);
    // a refusal with a status
    const denied = await connect(conn, 'deny:1');
    assert.equal(denied.status, 403);
    assert.equal(denied.headers['nodemesh-reason'], 'no policy allows it');
    // we reset
    const { stream } = await connect(conn);
    stream.write(Buffer.from('hello'));
    stream.reset(ErrorCode.CANCEL);
    const deadline = Date.now() + 3000;
    while (serverSawClose === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(serverSawClose, http2.constants.NGHTTP2_CANCEL);
    // the connection still works
    const again = await connect(conn);
    const r = await exchange(again.stream, Buffer.from('still here'));
    assert.equal(r.received.toString(), 'still here');
  } finally {
    conn.destroy();
    await closeServer(srv.server);
  }
});

test('our client -> node:http2 server: GOAWAY lets the open stream finish and refuses new ones', { timeout: 30_000 }, async () => {
  const srv = await nodeServer();
  let goaway: number | undefined;
  let closed = false;
  const conn = await ourClient(srv.port, { onGoaway: (code) => { goaway = code; }, onClose: () => { closed = true; } });
  try {
    const { stream } = await connect(conn);
    srv.sessions[0].close();
    const deadline = Date.now() + 3000;
    while (goaway === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(goaway, ErrorCode.NO_ERROR);
    assert.throws(() => conn.request([':method', 'CONNECT', ':authority', 'x:1']), H2RefusedError);
    const r = await exchange(stream, Buffer.from('after goaway'));
    assert.equal(r.received.toString(), 'after goaway');
    while (!closed && Date.now() < deadline + 3000) await new Promise((r2) => setTimeout(r2, 10));
    assert.ok(closed, 'the connection closed once its last stream ended');
  } finally {
    conn.destroy();
    await closeServer(srv.server);
  }
});

test('node:http2 client -> our server: CONNECT, 4 MiB both ways through small windows, half-close', { timeout: 30_000 }, async () => {
  const srv = await ourServer({ settings: { initialWindowSize: 16_384, maxFrameSize: 16_384, maxConcurrentStreams: 100 }, connectionWindow: 65_535 });
  const session = await nodeClient(srv.port, { initialWindowSize: 16_384 });
  try {
    const data = payload(4 << 20);
    const results = await Promise.all([0, 1, 2].map(async () => {
      const req = session.request({ ':method': 'CONNECT', ':authority': '10.0.0.1:8080' }, { endStream: false });
      const status = await new Promise<number>((r) => req.once('response', (h) => r(Number(h[':status']))));
      assert.equal(status, 200);
      return (await nodeExchange(req, data)).equals(data);
    }));
    assert.deepEqual(results, [true, true, true]);
  } finally {
    session.destroy();
    await closeServer(srv.server);
  }
});

test('node:http2 client -> our server: GET is answered 405; a client close reaches our stream', { timeout: 30_000 }, async () => {
  const srv = await ourServer();
  const session = await nodeClient(srv.port);
  try {
    const get = session.request({ ':method': 'GET', ':path': '/' });
    const h = await new Promise<http2.IncomingHttpHeaders>((r) => get.once('response', r));
    assert.equal(h[':status'], 405);
    assert.equal(h.allow, 'CONNECT');
    get.resume();
    // A refused CONNECT whose client never ends its side still closes (RST_STREAM NO_ERROR).
    const denied = session.request({ ':method': 'CONNECT', ':authority': 'deny:1' }, { endStream: false });
    denied.on('error', () => undefined);
    const dh = await new Promise<http2.IncomingHttpHeaders>((r) => denied.once('response', r));
    assert.equal(dh[':status'], 403);
    denied.resume();
    await new Promise((r) => denied.once('close', r));
    assert.equal(denied.rstCode, http2.constants.NGHTTP2_NO_ERROR);
    const req = session.request({ ':method': 'CONNECT', ':authority': '10.0.0.1:8080' }, { endStream: false });
    await new Promise((r) => req.once('response', r));
    req.write('x');
    req.close(http2.constants.NGHTTP2_CANCEL);
    const deadline = Date.now() + 3000;
    while (srv.closedStreams.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    // node:http2's close() ends its side before the RST_STREAM, so the stream may close cleanly
    // first (the raw-frame tests check that an RST's code reaches the stream).
    assert.equal(srv.closedStreams.length, 1, 'our stream closed');
    assert.ok([0, ErrorCode.CANCEL].includes(srv.closedStreams[0].code), String(srv.closedStreams[0].code));
  } finally {
    session.destroy();
    await closeServer(srv.server);
  }
});

test('node:http2 client -> our server: graceful close sends GOAWAY, the open stream finishes', { timeout: 30_000 }, async () => {
  const srv = await ourServer();
  const session = await nodeClient(srv.port);
  try {
    const req = session.request({ ':method': 'CONNECT', ':authority': '10.0.0.1:8080' }, { endStream: false });
    await new Promise((r) => req.once('response', r));
    const gotGoaway = new Promise<number>((r) => session.once('goaway', (code) => r(code)));
    srv.conns[0].close();
    assert.equal(await gotGoaway, 0);
    const back = await nodeExchange(req, Buffer.from('drained'));
    assert.equal(back.toString(), 'drained');
    await new Promise<void>((r) => { if (session.closed) r(); else session.once('close', () => r()); });
  } finally {
    session.destroy();
    await closeServer(srv.server);
  }
});

test('node:http2 client -> our server: the peer\'s MAX_CONCURRENT_STREAMS is enforced with REFUSED_STREAM', { timeout: 30_000 }, async () => {
  const srv = await ourServer({ settings: { initialWindowSize: 1 << 20, maxFrameSize: 1 << 16, maxConcurrentStreams: 2 } });
  const session = await nodeClient(srv.port);
  try {
    // node:http2 queues beyond the advertised limit itself; two open streams prove the setting arrived.
    await new Promise((r) => session.once('remoteSettings', r));
    assert.equal(session.remoteSettings.maxConcurrentStreams, 2);
  } finally {
    session.destroy();
    await closeServer(srv.server);
  }
});
