// Tunnel data path: half-close in both directions, back-pressure with a slow reader on
// either end, and closing open tunnels when policy changes.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { MeshCA } from '../identity/ca';
import { openTunnel,
  Destination, closeServer, delay, echoApp, issueIdentity, listen, newClient, portOf, readAll, request, startDestination, waitFor,
} from './hbone-test-kit';
import { spliceStreamSocket } from './splice';
import type { IssuedIdentity } from './tls-identity';

let ca: MeshCA;
let clientId: IssuedIdentity;
let serverId: IssuedIdentity;
let dst: Destination;

before(async () => {
  ca = await MeshCA.create({ trustDomain: 'cluster.local' });
  clientId = await issueIdentity(ca, 'shop', 'web');
  serverId = await issueIdentity(ca, 'shop', 'api');
  dst = await startDestination({ identity: () => serverId, trustDomain: 'cluster.local' });
});

after(async () => { await dst.stop(); });

test('half-close, client first: END_STREAM reaches the app as FIN and the app can still answer', { timeout: 20_000 }, async () => {
  // The app reads until FIN, then answers and closes: only works if FIN arrives while the
  // app's write side stays open.
  const app = await listen((s) => {
    const got: Buffer[] = [];
    s.on('data', (c: Buffer) => got.push(c));
    s.on('end', () => { s.end(`got ${Buffer.concat(got).length} bytes after your FIN`); });
  });
  const { client } = newClient();
  try {
    const stream = await openTunnel(client, request(clientId, dst, portOf(app), [serverId.spiffeId]));
    stream.end(Buffer.alloc(1000, 1));
    assert.equal((await readAll(stream)).toString(), 'got 1000 bytes after your FIN');
  } finally {
    await client.close({ force: true });
    await closeServer(app);
  }
});

test('half-close, app first: FIN from the app ends the client stream, the client can still send', { timeout: 20_000 }, async () => {
  let appReceived: Promise<string> | undefined;
  const app = await listen((s) => {
    s.end('bye early');
    appReceived = readAll(s).then((b) => b.toString());
  });
  const { client } = newClient();
  try {
    const stream = await openTunnel(client, request(clientId, dst, portOf(app), [serverId.spiffeId]));
    assert.equal((await readAll(stream)).toString(), 'bye early');
    stream.write('still ');
    stream.end('talking');
    await waitFor(() => appReceived !== undefined);
    assert.equal(await appReceived, 'still talking');
    await waitFor(() => stream.closed, 3000, 'stream closed');
  } finally {
    await client.close({ force: true });
    await closeServer(app);
  }
});

test('the client side splice carries half-close between a local socket and the tunnel', { timeout: 20_000 }, async () => {
  const app = await echoApp();
  const { client } = newClient();
  // A local "app socket" pair: what the outbound listener would hand us.
  let served: Promise<unknown> | undefined;
  const front = await listen(async (s) => {
    const stream = await client.connect(request(clientId, dst, portOf(app), [serverId.spiffeId]));
    served = spliceStreamSocket(stream, s);
  });
  try {
    const c = net.connect({ host: '127.0.0.1', port: portOf(front), allowHalfOpen: true });
    c.end('through two splices');
    assert.equal((await readAll(c)).toString(), 'through two splices');
    await waitFor(() => served !== undefined);
    const r = (await served) as { error?: Error; rstCode?: number };
    assert.equal(r.error, undefined);
    assert.equal(r.rstCode, 0);
  } finally {
    await client.close({ force: true });
    await closeServer(front);
    await closeServer(app);
  }
});

const MiB = 1024 * 1024;

/** Writes `total` bytes respecting back-pressure; resolves with how far it got. */
function produce(s: net.Socket | NodeJS.WritableStream, total: number, progress: { written: number }): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, 7);
  return new Promise((resolve, reject) => {
    const pump = () => {
      while (progress.written < total) {
        progress.written += chunk.length;
        if (!(s as net.Socket).write(chunk)) { (s as net.Socket).once('drain', pump); return; }
      }
      (s as net.Socket).end();
      resolve();
    };
    (s as net.Socket).once('error', reject);
    pump();
  });
}

test('back-pressure, slow client reader: the app is held back, the daemon does not buffer 48 MiB', { timeout: 20_000 }, async () => {
  const total = 48 * MiB;
  const progress = { written: 0 };
  const app = await listen((s) => { void produce(s, total, progress).catch(() => undefined); s.resume(); });
  const { client } = newClient();
  try {
    const stream = await openTunnel(client, request(clientId, dst, portOf(app), [serverId.spiffeId]));
    stream.end();
    stream.pause();
    const before = process.memoryUsage().arrayBuffers;
    await delay(600);
    // What is in flight is bounded by the windows (4 MiB stream, 16 MiB connection) plus
    // socket and kernel buffers, not by the 48 MiB the app wants to send.
    const inFlight = progress.written;
    if (process.env.HBONE_TEST_VERBOSE) console.log(`slow client: app ahead by ${inFlight / MiB} MiB`);
    assert.ok(inFlight < 20 * MiB, `app got ${inFlight / MiB} MiB ahead of a reader that reads nothing`);
    const grown = process.memoryUsage().arrayBuffers - before;
    assert.ok(grown < 24 * MiB, `buffers grew by ${grown / MiB} MiB`);
    let received = 0;
    stream.on('data', (c: Buffer) => { received += c.length; });
    stream.resume();
    await new Promise((r) => stream.once('end', r));
    assert.equal(received, total);
  } finally {
    await client.close({ force: true });
    await closeServer(app);
  }
});

test('back-pressure, slow app reader: the client writer is held back', { timeout: 20_000 }, async () => {
  const total = 48 * MiB;
  let appSocket: net.Socket | undefined;
  let appReceived = 0;
  const app = await listen((s) => { appSocket = s; s.pause(); s.on('data', (c: Buffer) => { appReceived += c.length; }); s.on('end', () => s.end()); });
  const { client } = newClient();
  try {
    const stream = await openTunnel(client, request(clientId, dst, portOf(app), [serverId.spiffeId]));
    const progress = { written: 0 };
    const done = produce(stream as unknown as net.Socket, total, progress);
    await delay(600);
    if (process.env.HBONE_TEST_VERBOSE) console.log(`slow app: client ahead by ${progress.written / MiB} MiB`);
    assert.ok(progress.written < 20 * MiB, `client got ${progress.written / MiB} MiB ahead of an app that reads nothing`);
    assert.equal(appReceived, 0);
    appSocket!.resume();
    await done;
    await waitFor(() => appReceived === total, 10_000, 'all bytes at the app');
  } finally {
    await client.close({ force: true });
    await closeServer(app);
  }
});

test('closeStreamsWhere closes the matching open tunnels now, and reports them as denied', { timeout: 20_000 }, async () => {
  const app = await echoApp();
  const other = await issueIdentity(ca, 'shop', 'batch');
  const { client } = newClient();
  try {
    const a = await openTunnel(client, request(clientId, dst, portOf(app), [serverId.spiffeId]));
    const b = await openTunnel(client, request(other, dst, portOf(app), [serverId.spiffeId]));
    a.on('error', () => undefined);
    const before = dst.events.length;
    assert.equal(dst.server.closeStreamsWhere((ctx) => ctx.sourceId === clientId.spiffeId, 'policy shop/deny-web now denies this'), 1);
    await waitFor(() => a.closed, 3000, 'stream a closed');
    await waitFor(() => dst.events.length === before + 1, 3000, 'event');
    const ev = dst.events[dst.events.length - 1];
    assert.equal(ev.verdict, 'deny');
    assert.equal(ev.reason, 'policy shop/deny-web now denies this');
    // The other tunnel is untouched.
    b.end('still here');
    assert.equal((await readAll(b)).toString(), 'still here');
  } finally {
    await client.close({ force: true });
    await closeServer(app);
  }
});
