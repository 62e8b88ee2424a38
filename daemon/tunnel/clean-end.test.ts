// A daemon that stops past its drain deadline ends the tunnels still open cleanly: both apps
// (the client in the source pod, the app in the destination pod) see a FIN, not a reset,
// though both keep writing until they learn of the close.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { MeshCA } from '../identity/ca';
import { closeServer, issueIdentity, listen, newClient, portOf, request, startDestination, waitFor, type Destination } from './hbone-test-kit';
import { spliceStreamSocket } from './splice';
import { CleanEndSet } from './clean-end';
import type { IssuedIdentity } from './tls-identity';

let ca: MeshCA;
let clientId: IssuedIdentity;
let serverId: IssuedIdentity;

before(async () => {
  ca = await MeshCA.create({ trustDomain: 'cluster.local' });
  clientId = await issueIdentity(ca, 'shop', 'web');
  serverId = await issueIdentity(ca, 'shop', 'api');
});

/** How an app saw its connection end. */
interface Fate { ended: boolean; error?: string; closed: boolean }

/** Writes every 10 ms until the connection ends; answers a FIN with its own (as Node apps do). */
function chatty(s: net.Socket, fate: Fate): void {
  const timer = setInterval(() => { if (s.writable) s.write('tick\n'); }, 10);
  s.on('data', () => undefined);
  s.on('end', () => { fate.ended = true; s.end(); });
  s.on('error', (e: NodeJS.ErrnoException) => { fate.error ??= e.code ?? e.message; });
  s.on('close', () => { fate.closed = true; clearInterval(timer); });
}

/** A source app -> front (the outbound listener) -> tunnel -> destination app, all chatty. */
async function tunnelled(dst: Destination, cleanEnds?: CleanEndSet) {
  const appFate: Fate = { ended: false, closed: false };
  const clientFate: Fate = { ended: false, closed: false };
  const app = await listen((s) => chatty(s, appFate));
  const { client } = newClient();
  const front = await listen((s) => {
    void client.connect(request(clientId, dst, portOf(app), [serverId.spiffeId])).then((stream) => spliceStreamSocket(stream, s, 'app', cleanEnds));
  });
  const c = net.connect({ host: '127.0.0.1', port: portOf(front) });
  chatty(c, clientFate);
  await waitFor(() => dst.server.stats().activeStreams === 1, 5000, 'tunnel open');
  await new Promise((r) => setTimeout(r, 200));
  return {
    appFate, clientFate,
    async stop() { c.destroy(); await client.close({ force: true }); await closeServer(front); await closeServer(app); },
  };
}

let dst: Destination | undefined;
after(async () => { await dst?.stop(); });

test('the source side ends its tunnels cleanly: FIN to the client app, END_STREAM on to the destination app', { timeout: 20_000 }, async () => {
  dst = await startDestination({ identity: () => serverId, trustDomain: 'cluster.local' });
  const ends = new CleanEndSet();
  const t = await tunnelled(dst, ends);
  try {
    assert.equal(ends.size, 1);
    await ends.endAll(1000);
    await waitFor(() => t.clientFate.closed && t.appFate.closed, 5000, 'both apps closed');
    assert.deepEqual(t.clientFate, { ended: true, closed: true }, 'client app: a clean close');
    assert.deepEqual(t.appFate, { ended: true, closed: true }, 'destination app: a clean close');
    await waitFor(() => dst!.events.length === 1, 5000, 'the destination reported the tunnel');
    assert.equal(dst.events[0]!.outcome, 'allowed');
  } finally {
    await t.stop();
  }
});

test('a destination that closes past its deadline ends its tunnels cleanly for both apps', { timeout: 20_000 }, async () => {
  const d = await startDestination({ identity: () => serverId, trustDomain: 'cluster.local' });
  const t = await tunnelled(d);
  try {
    await d.server.close({ timeoutMs: 100 });
    await waitFor(() => t.clientFate.closed && t.appFate.closed, 5000, 'both apps closed');
    assert.deepEqual(t.appFate, { ended: true, closed: true }, 'destination app: a clean close');
    assert.deepEqual(t.clientFate, { ended: true, closed: true }, 'client app: a clean close');
    assert.equal(d.events[0]?.outcome, 'allowed');
  } finally {
    await t.stop();
    await d.stop();
  }
});
