// The agent end to end with an in-memory datapath and loopback sockets: enrolment follows
// labels, outbound connections go where the (simulated) hook says, failures fail closed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { NodeAgent } from './node-agent';
import { loadConfig } from './config';
import { MemoryDatapath } from './redirection/memory-datapath';
import { LoopbackSocketFactory } from './redirection/socket-factory';
import { SandboxSource } from './sources/sandbox-source';
import { writeObject } from './sources/object-directory';

function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => (cond() ? resolve() : Date.now() > end ? reject(new Error('timed out')) : setTimeout(tick, 10));
    tick();
  });
}

const pod = (name: string, labels: Record<string, string> = {}) => ({
  apiVersion: 'v1', kind: 'Pod',
  metadata: { name, namespace: 'shop', uid: `uid-${name}`, labels, annotations: { 'sandbox.nodemesh.io/netns': `/run/netns/${name}` } },
  spec: { nodeName: 'node-1', containers: [{ name: 'c', command: ['x'] }] },
  status: { phase: 'Running', podIP: '10.244.1.9' },
});

test('node agent: enrolment follows labels; outbound goes to the recorded original destination', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nm-agent-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  writeObject(dir, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'nodemesh.io/dataplane-mode': 'ambient' } } });
  writeObject(dir, pod('web'));
  writeObject(dir, pod('batch', { 'nodemesh.io/dataplane-mode': 'none' }));

  const cfg = loadConfig({ NODEMESH_NODE_NAME: 'node-1', NODEMESH_SOURCE: 'sandbox', NODEMESH_SANDBOX_OBJECTS: dir,
    NODEMESH_ADMIN_PORT: '0', NODEMESH_METRICS_PORT: '0', NODEMESH_READINESS_PORT: '0' });
  const datapath = new MemoryDatapath(['uid-gone']);
  const sockets = new LoopbackSocketFactory();
  const listened: { port: number }[] = [];
  const orig = sockets.listen.bind(sockets);
  sockets.listen = async (ns, o, cb) => { const r = await orig(ns, o, cb); listened.push({ port: r.port }); return r; };
  const agent = new NodeAgent(cfg, { datapath, sockets, source: new SandboxSource(dir, 50), log: pino({ level: 'silent' }) });
  await agent.start();
  t.after(() => agent.stop({ keepAttached: true }));

  assert.deepEqual([...datapath.pods.keys()], ['uid-web'], 'only the ambient pod is enrolled');
  assert.deepEqual(datapath.enrolledUids(), ['uid-web'], 'a pod left enrolled by a previous run is unenrolled');
  const st = agent.enrolment.status();
  assert.deepEqual(st.pods.map((p) => [p.name, p.enrolled]), [['batch', false], ['web', true]]);

  // An "app" behind the original destination.
  const app = net.createServer((s) => s.end('hello from app'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  t.after(() => app.close());
  const appPort = (app.address() as net.AddressInfo).port;

  const outboundPort = listened[0].port;
  const cookie = datapath.pods.get('uid-web')!.netnsCookie;
  // As in the kernel, the record exists before the daemon accepts: pick the client port first.
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const clientPort = (probe.address() as net.AddressInfo).port;
  await new Promise((r) => probe.close(r));
  datapath.recordOriginalDestination(cookie, clientPort, { family: 4, address: '127.0.0.1', port: appPort });
  const client = net.connect({ port: outboundPort, host: '127.0.0.1', localAddress: '127.0.0.1', localPort: clientPort });
  const reply = await new Promise<string>((resolve) => { let b = ''; client.on('data', (d) => (b += d)); client.on('end', () => resolve(b)); });
  assert.equal(reply, 'hello from app');
  await until(() => agent.connections.list().closed.length === 1);
  const rec = agent.connections.list().closed[0];
  assert.equal(rec.originalDestination.address, `127.0.0.1:${appPort}`);
  assert.equal(rec.verdict, 'allow');
  assert.equal(rec.bytesReceived, 'hello from app'.length);

  // No record from the hook: refused (fail closed), never forwarded somewhere by guess.
  const stray = net.connect({ port: outboundPort, host: '127.0.0.1' });
  const strayError = new Promise<string | undefined>((r) => stray.once('error', (e: NodeJS.ErrnoException) => r(e.code)));
  await new Promise((r) => stray.once('close', r));
  assert.equal(await strayError, 'ECONNRESET', 'the refusal is a reset the app sees');
  await until(() => agent.connections.list().closed.length === 2);
  assert.equal(agent.connections.list().closed[1].reason, 'NODEMESH_E_ORIGINAL_DST_MISSING');

  // Relabel: the pod opts out; the next snapshot unenrols it.
  writeObject(dir, pod('web', { 'nodemesh.io/dataplane-mode': 'none' }));
  await until(() => !datapath.pods.has('uid-web'));
  assert.equal(agent.enrolment.status().pods.find((p) => p.name === 'web')?.enrolled, false);
});
