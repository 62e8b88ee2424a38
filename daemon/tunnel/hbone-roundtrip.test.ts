import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import type * as net from 'node:net';
import { NodemeshError } from '../errors';
import { openTunnel,
  Destination, closeServer, echoApp, newClient, portOf, readAll, request, startDestination, waitFor,
  startMeshFixture, stopMeshFixture,
} from './hbone-test-kit';
import type { IssuedIdentity } from './tls-identity';

let clientId: IssuedIdentity;
let serverId: IssuedIdentity;
let app: net.Server;
let dst: Destination;

before(async () => { ({ clientId, serverId, app, dst } = await startMeshFixture()); });
after(() => stopMeshFixture({ app, dst }));

test('round trip: client -> HBONE server -> echo app, with identities and byte counts', { timeout: 20_000 }, async () => {
  const { client } = newClient();
  const stream = await openTunnel(client, request(clientId, dst, portOf(app), [serverId.spiffeId], { headers: { forwarded: 'for=127.0.0.1', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } }));
  stream.end('hello, mesh');
  assert.equal((await readAll(stream)).toString(), 'hello, mesh');
  await waitFor(() => dst.events.length === 1, 3000, 'connection event');
  const ev = dst.events[0];
  assert.equal(ev.verdict, 'allow');
  assert.equal(ev.sourceId, 'spiffe://cluster.local/ns/shop/sa/web');
  assert.equal(ev.destination, `127.0.0.1:${portOf(app)}`);
  assert.equal(ev.bytesSent, 11);
  assert.equal(ev.bytesReceived, 11);
  await client.close();
});

test('connect errors name the problem: 403 with the reason, 400 for another pod, 503 for a closed port', { timeout: 20_000 }, async () => {
  const denied = await startDestination({
    identity: () => serverId, trustDomain: 'cluster.local',
    authorize: (ctx) => ctx.headers['x-test'] === 'let-me-in' ? { allow: true } : { allow: false, reason: `policy shop/deny-web denies ${ctx.sourceId}` },
  });
  const { client } = newClient();
  try {
    await assert.rejects(openTunnel(client, request(clientId, denied, portOf(app), [serverId.spiffeId])), (e: unknown) => {
      assert.ok(NodemeshError.is(e, 'NODEMESH_E_HBONE_DENIED'), String(e));
      assert.match(e.message, /policy shop\/deny-web denies spiffe:\/\/cluster.local\/ns\/shop\/sa\/web/);
      return true;
    });
    await assert.rejects(openTunnel(client, request(clientId, denied, portOf(app), [serverId.spiffeId], { authority: '10.9.9.9:80' })), (e: unknown) => {
      assert.ok(NodemeshError.is(e, 'NODEMESH_E_HBONE_BAD_REQUEST'), String(e));
      assert.match(e.message, /names another pod/);
      return true;
    });
    const closedPort = await echoApp();
    const port = portOf(closedPort);
    await closeServer(closedPort);
    await assert.rejects(openTunnel(client, request(clientId, denied, port, [serverId.spiffeId], { headers: { 'x-test': 'let-me-in' } })), (e: unknown) => {
      assert.ok(NodemeshError.is(e, 'NODEMESH_E_HBONE_UPSTREAM'), String(e));
      assert.match(e.message, /ECONNREFUSED/);
      return true;
    });
    // All of that went over one session.
    assert.equal(denied.accepted.length, 1);
    assert.deepEqual(denied.events.map((e) => [e.verdict, e.status]), [['deny', 403], ['deny', 400], ['error', 503]]);
  } finally {
    await client.close({ force: true });
    await denied.stop();
  }
});
