// Issue 7.3: nothing a peer sends becomes a metric label. The real HBONE server of a pod, as
// the daemon wires it (HboneInbound -> ConnectionTable -> NodeMetrics), takes 1,000 requests
// with random methods, authorities and headers from a verified client on loopback; the number
// of metric series stays within a small fixed bound and every label value comes from the
// mesh's own state.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as tls from 'node:tls';
import type * as net from 'node:net';
import pino from 'pino';
import { NodeMetrics } from '../metrics';
import { buildSnapshot } from '../state/snapshot';
import type { Resource } from '../state/resources';
import { LoopbackSocketFactory } from '../redirection/socket-factory';
import { MeshCA } from '../identity/ca';
import { echoApp, issueIdentity, listen, portOf, closeServer, waitFor } from '../tunnel/hbone-test-kit';
import { secureContextOptions, type IssuedIdentity } from '../tunnel/tls-identity';
import { ConnectionTable } from './connection-table';
import { HboneInbound } from './inbound-hbone';

const resources: Resource[] = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'nodemesh.io/dataplane-mode': 'ambient' } } },
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'api-5d9c7b8f6-x2k9p', namespace: 'shop', uid: 'api', labels: { app: 'api', 'pod-template-hash': '5d9c7b8f6' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'api-5d9c7b8f6', uid: 'rs-api', controller: true }] },
    spec: { nodeName: 'node-1', serviceAccountName: 'api', containers: [{ name: 'c' }] }, status: { phase: 'Running', podIP: '127.0.0.1' } },
  { apiVersion: 'security.nodemesh.io/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'api', namespace: 'shop' },
    spec: { selector: { matchLabels: { app: 'api' } }, action: 'DENY', rules: [{ to: [{ operation: { ports: ['1'] } }] }] } },
];

let ca: MeshCA;
let serverId: IssuedIdentity;
let clientId: IssuedIdentity;
let app: net.Server;

before(async () => {
  ca = await MeshCA.create({ trustDomain: 'cluster.local' });
  serverId = await issueIdentity(ca, 'shop', 'api');
  clientId = await issueIdentity(ca, 'shop', 'web');
  app = await echoApp();
});
after(() => closeServer(app));

const rnd = (n: number) => Math.floor(Math.random() * n);
const junk = (n: number) => Buffer.from(Array.from({ length: n }, () => 33 + rnd(94))).toString('latin1');

test('1,000 random HBONE requests do not grow the metric series past a fixed bound', { timeout: 60_000 }, async (t) => {
  const metrics = new NodeMetrics();
  const table = new ConnectionTable(pino({ level: 'silent' }), { opened: (r) => metrics.opened(r), closed: (r) => metrics.closed(r) });
  const snapshot = buildSnapshot(resources, 1);
  const workload = snapshot.workloads.get('api')!;
  const inbound = new HboneInbound({
    trustDomain: 'cluster.local', sockets: new LoopbackSocketFactory(), snapshot: () => snapshot, connections: table, log: pino({ level: 'silent' }),
    identities: { get: () => serverId, whenReady: async () => serverId },
  });
  const ctx = { workload, netnsPath: '/proc/self/ns/net', netnsCookie: 1n };
  inbound.ensure(ctx);
  await waitFor(() => inbound.stats()[0]?.ready === true, 5000, 'HBONE server ready');
  const listener = await listen((s) => inbound.handle(ctx, s));
  t.after(async () => { session.destroy(); await inbound.close(); await closeServer(listener); });
  const session = http2.connect(`https://127.0.0.1:${portOf(listener)}`, {
    createConnection: () => tls.connect({ host: '127.0.0.1', port: portOf(listener), ALPNProtocols: ['h2'], secureContext: tls.createSecureContext(secureContextOptions(clientId)), checkServerIdentity: () => undefined }),
  });
  session.on('error', () => undefined);
  const appPort = portOf(app);
  const methods = ['CONNECT', 'GET', 'POST', 'DELETE', 'PRI'];
  const authority = (): string => {
    switch (rnd(6)) {
      case 0: return `127.0.0.1:${appPort}`; // allowed: a tunnel to the app
      case 1: return `127.0.0.1:${1 + rnd(3)}`; // port 1 denied by policy, 2 and 3 refused (503)
      case 2: return `10.${rnd(256)}.${rnd(256)}.${rnd(256)}:${1 + rnd(65535)}`; // another pod
      case 3: return `${junk(1 + rnd(20))}.example:${rnd(99999)}`; // a name
      case 4: return junk(1 + rnd(40)); // garbage
      default: return `[${junk(5)}]:${junk(3)}`;
    }
  };
  const seriesCount = async () => {
    let n = 0;
    for (const m of await metrics.registry.getMetricsAsJSON()) if (m.name.startsWith('nodemesh_connections') || m.name.endsWith('_bytes_total')) n += m.values.length;
    return n;
  };
  const one = () => new Promise<void>((resolve) => {
    const method = methods[rnd(methods.length)];
    const headers: http2.OutgoingHttpHeaders = { ':method': method, ':authority': authority(), [`x-${junk(6).toLowerCase().replace(/[^a-z]/g, 'q')}`]: junk(12) };
    if (method !== 'CONNECT') { headers[':path'] = `/${junk(10)}`; headers[':scheme'] = 'https'; }
    let req: http2.ClientHttp2Stream;
    try { req = session.request(headers, { endStream: method !== 'CONNECT' }); } catch { resolve(); return; }
    req.on('error', () => undefined);
    req.on('response', (h) => { if (h[':status'] === 200) req.end(junk(5)); });
    req.on('data', () => undefined);
    req.on('close', () => resolve());
  });
  let afterFirst = 0;
  for (let i = 0; i < 1000; i += 50) {
    await Promise.all(Array.from({ length: 50 }, one));
    if (i === 0) afterFirst = await seriesCount();
  }
  // Every stream the server saw is reported when it ends (nghttp2 itself drops the ones with
  // malformed headers before they reach us): wait until the table stops growing.
  let last = -1;
  await waitFor(() => { const n = table.list().closed.length; const settled = n === last && n > 0; last = n; return settled; }, 10_000, 'the connections recorded');
  const series = await seriesCount();
  // direction x 2 identities x (opened, closed) x 3 verdicts, denied by cause, bytes: a
  // handful, whatever the peer sent; without bounds it would be hundreds.
  assert.ok(series <= 24, `metric series: ${series}`);
  assert.ok(series <= afterFirst + 8, `series after 50 requests ${afterFirst}, after 1,000 ${series}`);
  const allowed = new Set(['inbound-hbone', 'shop/api', 'shop/web', 'unknown', 'none', 'allow', 'deny', 'error',
    'spiffe://cluster.local/ns/shop/sa/web', 'spiffe://cluster.local/ns/shop/sa/api', 'bad-request', 'denied-by-policy', 'upstream-failed']);
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    if (!m.name.startsWith('nodemesh_connections') && !m.name.endsWith('_bytes_total')) continue;
    for (const v of m.values) for (const [k, val] of Object.entries(v.labels)) assert.ok(allowed.has(String(val)), `${m.name} ${k}=${String(val)}`);
  }
  assert.ok(table.list().closed.some((r) => r.verdict === 'allow'), 'some tunnels reached the app');
});
