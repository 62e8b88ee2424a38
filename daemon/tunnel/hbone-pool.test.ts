// Session pooling: streams share sessions up to a limit, a burst costs one handshake,
// rotation moves new streams to new sessions while old ones drain, idle sessions close,
// and a destination shutting down (GOAWAY) lets open tunnels finish.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { connect } from 'node:net';
import type * as net from 'node:net';
import { MeshCA, verifyPeerChain } from '../identity/ca';
import { NodemeshError } from '../errors';
import { openTunnel,
  Destination, closeServer, delay, issueIdentity, listen, newClient, portOf, readAll, request, startDestination, waitFor,
  startMeshFixture, stopMeshFixture,
} from './hbone-test-kit';
import { IssuedIdentity, secureContextOptions } from './tls-identity';

let ca: MeshCA;
let clientId: IssuedIdentity;
let serverId: IssuedIdentity;
let app: net.Server;
let dst: Destination;

before(async () => { ({ ca, clientId, serverId, app, dst } = await startMeshFixture()); });
after(() => stopMeshFixture({ app, dst }));

test('a burst of 60 concurrent tunnels shares one TLS session', { timeout: 20_000 }, async () => {
  const { client } = newClient();
  const acceptedBefore = dst.accepted.length;
  try {
    const streams = await Promise.all(Array.from({ length: 60 }, () => openTunnel(client, request(clientId, dst, portOf(app), [serverId.spiffeId]))));
    const st = client.stats();
    assert.equal(st.totals.sessions, 1);
    assert.equal(st.totals.activeStreams, 60);
    assert.equal(st.sessions[0].serverId, serverId.spiffeId);
    assert.equal(dst.accepted.length - acceptedBefore, 1, 'one TCP connection reached the HBONE port');
    assert.equal(dst.server.stats().activeStreams, 60);
    const echoed = await Promise.all(streams.map((s, i) => { s.end(`stream ${i}`); return readAll(s); }));
    echoed.forEach((b, i) => assert.equal(b.toString(), `stream ${i}`));
    await waitFor(() => client.stats().totals.activeStreams === 0, 3000, 'streams released');
  } finally {
    await client.close({ force: true });
  }
});

test('past maxStreamsPerSession a second session opens; keys keep sources apart', { timeout: 20_000 }, async () => {
  const { client } = newClient({ tuning: { maxStreamsPerSession: 10 } });
  const other = await issueIdentity(ca, 'shop', 'batch');
  try {
    const streams = await Promise.all(Array.from({ length: 25 }, () => openTunnel(client, request(clientId, dst, portOf(app), [serverId.spiffeId]))));
    streams.push(await openTunnel(client, request(other, dst, portOf(app), [serverId.spiffeId])));
    const st = client.stats();
    assert.equal(st.totals.sessions, 4);
    const web = Object.entries(st.byKey).find(([k]) => k.startsWith(clientId.spiffeId))![1];
    assert.deepEqual(web, { sessions: 3, activeStreams: 25 });
    for (const s of st.sessions) assert.ok(s.activeStreams <= 10);
    for (const s of streams) s.end();
    await Promise.all(streams.map((s) => readAll(s)));
  } finally {
    await client.close({ force: true });
  }
});

test('idle sessions close after the idle timeout; the next connect opens a new one', { timeout: 20_000 }, async () => {
  const { client } = newClient({ idleTimeoutMs: 100 });
  try {
    const s = await openTunnel(client, request(clientId, dst, portOf(app), [serverId.spiffeId]));
    s.end('x');
    await readAll(s);
    await waitFor(() => client.stats().totals.sessions === 0, 3000, 'idle session closed');
    const again = await openTunnel(client, request(clientId, dst, portOf(app), [serverId.spiffeId]));
    again.end('y');
    assert.equal((await readAll(again)).toString(), 'y');
    assert.equal(client.stats().totals.sessionsOpened, 2);
  } finally {
    await client.close({ force: true });
  }
});

test('certificate rotation: new sessions use the new certificates, open tunnels keep working, old sessions drain', { timeout: 20_000 }, async () => {
  // Record which leaf each side saw in each handshake.
  const seenByServer: Buffer[] = [];
  const seenByClient: Buffer[] = [];
  let currentServerId = await issueIdentity(ca, 'shop', 'api');
  const rot = await startDestination({
    identity: () => currentServerId, trustDomain: 'cluster.local',
    verifyPeer: (chain, roots, td, now) => { seenByServer.push(chain[0]); return verifyPeerChain(chain, roots, td, now); },
  });
  const { client } = newClient({ verifyPeer: (chain, roots, td, now) => { seenByClient.push(chain[0]); return verifyPeerChain(chain, roots, td, now); } });
  const der = (id: IssuedIdentity) => Buffer.from(id.certChainPem[0].replace(/-----[^-]+-----|\s/g, ''), 'base64');
  try {
    let source = await issueIdentity(ca, 'shop', 'web');
    const oldSource = source;
    const oldServer = currentServerId;
    const before = await openTunnel(client, request(source, rot, portOf(app), [serverId.spiffeId]));
    before.write('old ');

    source = await issueIdentity(ca, 'shop', 'web');
    currentServerId = await issueIdentity(ca, 'shop', 'api');
    const afterRotation = await openTunnel(client, request(source, rot, portOf(app), [serverId.spiffeId]));

    assert.equal(seenByServer.length, 2);
    assert.ok(seenByServer[0].equals(der(oldSource)) && seenByServer[1].equals(der(source)), 'the server saw the old, then the new client certificate');
    assert.ok(seenByClient[0].equals(der(oldServer)) && seenByClient[1].equals(der(currentServerId)), 'the client saw the old, then the new server certificate');
    const st = client.stats();
    assert.deepEqual(st.sessions.map((s) => s.state).sort(), ['draining', 'ready']);

    // The tunnel opened before the rotation still carries bytes both ways.
    before.end('session');
    assert.equal((await readAll(before)).toString(), 'old session');
    afterRotation.end('new session');
    assert.equal((await readAll(afterRotation)).toString(), 'new session');
    // Once its last stream ended, the old session closed.
    await waitFor(() => client.stats().sessions.length === 1, 3000, 'old session closed');
    assert.equal(client.stats().sessions[0].state, 'ready');
  } finally {
    await client.close({ force: true });
    await rot.stop();
  }
});

test('graceful server close: GOAWAY, open tunnels finish, new connects fail cleanly', { timeout: 20_000 }, async () => {
  const closing = await startDestination({ identity: () => serverId, trustDomain: 'cluster.local' });
  const { client } = newClient();
  try {
    const open = await openTunnel(client, request(clientId, closing, portOf(app), [serverId.spiffeId]));
    open.write('half ');
    const closed = closing.server.close({ timeoutMs: 5000 });
    await waitFor(() => client.stats().sessions.every((s) => s.state !== 'ready'), 3000, 'client saw GOAWAY');
    // A new connect does not reuse the draining session: it opens a new one, which the
    // closing server refuses.
    await assert.rejects(openTunnel(client, request(clientId, closing, portOf(app), [serverId.spiffeId])), (e: unknown) => NodemeshError.is(e));
    await delay(50);
    open.end('done');
    assert.equal((await readAll(open)).toString(), 'half done');
    await closed;
    assert.equal(closing.server.stats().sessions, 0);
  } finally {
    await client.close({ force: true });
    await closing.stop();
  }
});

test('a closed client refuses connects', async () => {
  const { client } = newClient();
  await client.close();
  await assert.rejects(openTunnel(client, request(clientId, dst, portOf(app), [serverId.spiffeId])), (e: unknown) => NodemeshError.is(e, 'NODEMESH_E_HBONE_CLOSED'));
});

test('a destination that stops answering is detected by PING and its tunnels fail with a reason', { timeout: 20_000 }, async () => {
  // A relay between client and HBONE port that can silently stop forwarding (a black hole).
  const relayed: net.Socket[] = [];
  let blackholed = false;
  const relay = await listen((down) => {
    const up = connect({ host: '127.0.0.1', port: dst.hbonePort });
    relayed.push(down, up);
    for (const s of [down, up]) s.on('error', () => undefined);
    down.on('data', (c: Buffer) => { if (!blackholed) up.write(c); });
    up.on('data', (c: Buffer) => { if (!blackholed) down.write(c); });
  });
  const { client, sink } = newClient({ keepaliveMs: 150, pingTimeoutMs: 200 });
  try {
    const s = await openTunnel(client, request(clientId, { hbonePort: portOf(relay) }, portOf(app), [serverId.spiffeId]));
    s.write('ping ');
    const failed = new Promise<Error | undefined>((resolve) => { s.once('error', resolve); s.once('close', () => resolve(undefined)); });
    await delay(50);
    blackholed = true;
    await failed;
    await waitFor(() => client.stats().totals.sessions === 0, 3000, 'dead session dropped');
    assert.ok(sink.find(/HBONE session unresponsive/), 'the PING timeout closed it');
  } finally {
    await client.close({ force: true });
    for (const s of relayed) s.destroy();
    await closeServer(relay);
  }
});

test('a CONNECT refused by a GOAWAY race is retried once on a new session', { timeout: 20_000 }, async () => {
  // A bare HTTP/2 server with the destination's certificate: it answers the first stream of
  // each session, and answers the second with GOAWAY(last stream = 1), as a server that
  // starts draining just as our request goes out would.
  const h2 = http2.createSecureServer({ ...secureContextOptions(serverId), requestCert: true, rejectUnauthorized: true });
  h2.on('session', (session) => {
    session.on('error', () => undefined);
    let n = 0;
    session.on('stream', (stream) => {
      stream.on('error', () => undefined);
      if (++n === 1) { stream.respond({ ':status': 200 }); stream.end(); return; }
      session.goaway(http2.constants.NGHTTP2_NO_ERROR, 1);
    });
  });
  const raw: net.Socket[] = [];
  const listener = await listen((s) => { raw.push(s); h2.emit('connection', s); });
  const { client } = newClient();
  try {
    const first = await openTunnel(client, request(clientId, { hbonePort: portOf(listener) }, 80, [serverId.spiffeId]));
    first.resume();
    const second = await openTunnel(client, request(clientId, { hbonePort: portOf(listener) }, 80, [serverId.spiffeId]));
    second.resume();
    assert.equal(client.stats().totals.sessionsOpened, 2, 'the retry went to a fresh session');
    assert.equal(client.stats().totals.streamFailures, 0);
  } finally {
    await client.close({ force: true });
    for (const s of raw) s.destroy();
    await closeServer(listener);
  }
});

test('a caller holding an older certificate does not rotate the pool back to it', { timeout: 20_000 }, async () => {
  const { client } = newClient();
  const older = await issueIdentity(ca, 'shop', 'web', { ttlSeconds: 600 });
  const newer = await issueIdentity(ca, 'shop', 'web', { ttlSeconds: 3600 });
  try {
    const a = await openTunnel(client, request(newer, dst, portOf(app), [serverId.spiffeId]));
    const b = await openTunnel(client, request(older, dst, portOf(app), [serverId.spiffeId]));
    assert.equal(client.stats().totals.sessionsOpened, 1);
    assert.deepEqual(client.stats().sessions.map((s) => s.state), ['ready']);
    for (const s of [a, b]) { s.end('x'); await readAll(s); }
  } finally {
    await client.close({ force: true });
  }
});
