// A whole waypoint on loopback for tests: a mesh CA, the caller's and the waypoint's
// identities, HTTP apps behind real HBONE destinations (daemon/tunnel's HboneServer), a
// snapshot that binds the Service `shop/api` to the waypoint, and an HBONE client that calls
// through it. Pod IPs are only names here: dialling one reaches its destination on 127.0.0.1.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { PowerOfTwoChoices } from '../daemon/routing/balancer';
import { MeshCA } from '../daemon/identity/ca';
import type { Resource } from '../daemon/state/resources';
import { Snapshot, buildSnapshot } from '../daemon/state/snapshot';
import { LABEL_GATEWAY_NAME } from '../daemon/state/waypoints';
import { HboneClient } from '../daemon/tunnel/hbone-client';
import { TunnelDuplex } from '../daemon/tunnel/h2/tunnel-duplex';
import {
  Destination, LOOPBACK, LogSink, closeServer, issueIdentity, listen, logSink, portOf, startDestination,
} from '../daemon/tunnel/hbone-test-kit';
import type { IssuedIdentity } from '../daemon/tunnel/tls-identity';
import { newSigningKeyPair } from '../daemon/tunnel/caller-statement';
import { CallerStatementVerifier, trustFileFor } from '../daemon/tunnel/caller-statement-trust';
import { buildPipeline } from './pipeline';
import { RouteTable, buildRouteTable } from './route-table';
import { TunnelSocket } from './tunnel-socket';
import { WaypointMetrics } from './waypoint-metrics';
import { WaypointServer } from './waypoint-server';
import { callerStatementHeader, forwarder, type UpstreamStats } from './forward';

export const API_VIP = '10.96.0.10';
export const TD = 'cluster.local';

export interface SeenRequest { version: string; method: string; url: string; headers: http.IncomingHttpHeaders; body: string }
/** How an app answers; the default echoes what it saw as JSON. */
export type AppBehaviour = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void;

export interface Pod { name: string; ip: string; labels: Record<string, string>; sa: string }

export const PODS: Pod[] = [
  { name: 'api-v1-0', ip: '10.244.1.2', labels: { app: 'api', version: 'v1' }, sa: 'api-v1' },
  { name: 'api-v2-0', ip: '10.244.2.2', labels: { app: 'api', version: 'v2' }, sa: 'api-v2' },
  { name: 'tcp-0', ip: '10.244.1.3', labels: { app: 'tcp' }, sa: 'tcp' },
];

function resources(extra: Resource[]): Resource[] {
  const pod = (p: Pod, node: string): Resource => ({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: p.name, namespace: 'shop', uid: p.name, labels: p.labels },
    spec: { nodeName: node, serviceAccountName: p.sa, containers: [{ name: 'c', ports: [{ containerPort: 8080 }] }] }, status: { phase: 'Running', podIP: p.ip },
  });
  const svc = (name: string, vip: string, selector: Record<string, string>, portName = 'http', labels: Record<string, string> = {}): Resource => ({
    apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop', labels },
    spec: { selector, clusterIP: vip, ports: [{ name: portName, port: 80, targetPort: 8080 }] },
  });
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'nodemesh.io/dataplane-mode': 'ambient', 'nodemesh.io/use-waypoint': 'waypoint' } } },
    ...PODS.map((p, i) => pod(p, `node-${i + 1}`)),
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'waypoint-0', namespace: 'shop', uid: 'waypoint-0', labels: { [LABEL_GATEWAY_NAME]: 'waypoint', 'nodemesh.io/dataplane-mode': 'none' } },
      spec: { nodeName: 'node-1', serviceAccountName: 'waypoint', containers: [{ name: 'waypoint' }] }, status: { phase: 'Running', podIP: '10.244.1.9' } },
    svc('api', API_VIP, { app: 'api' }),
    svc('api-v1', '10.96.0.11', { version: 'v1' }),
    svc('api-v2', '10.96.0.12', { version: 'v2' }),
    svc('tcp', '10.96.0.13', { app: 'tcp' }, 'tcp-echo'),
    svc('direct', '10.96.0.14', { app: 'api' }, 'http', { 'nodemesh.io/use-waypoint': 'none' }),
    ...extra,
  ];
}

export interface WaypointRig {
  caller: IssuedIdentity;
  waypointId: IssuedIdentity;
  seen: SeenRequest[];
  behaviour: Map<string, AppBehaviour>;
  sink: LogSink;
  metrics: WaypointMetrics;
  snapshot: Snapshot;
  /** The principal each destination's authorization judged (the vouched caller, or the peer). */
  judged: string[];
  setRoutes(objects: object[]): void;
  /** Rebuilds the snapshot with these extra objects (policies). */
  setExtra(extra: Resource[]): void;
  routes(): RouteTable;
  /** One HTTP/1.1 request through the waypoint; a fresh HBONE tunnel each time. */
  get(path: string, opts?: { method?: string; headers?: Record<string, string>; body?: string; vip?: string }): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>;
  /** One HTTP/2 (prior knowledge) request through the waypoint. */
  getH2(path: string, headers?: Record<string, string>): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }>;
  /** Opens a raw tunnel to vip:port through the waypoint. */
  tunnel(vip: string, port: number): Promise<TunnelSocket>;
  /** The waypoint's kept upstream tunnels. */
  upstream(): UpstreamStats;
  stop(): Promise<void>;
}

export async function startWaypointRig(opts: { random?: () => number } = {}): Promise<WaypointRig> {
  const ca = await MeshCA.create({ trustDomain: TD });
  const caller = await issueIdentity(ca, 'shop', 'web');
  const waypointId = await issueIdentity(ca, 'shop', 'waypoint');
  const seen: SeenRequest[] = [];
  const behaviour = new Map<string, AppBehaviour>();
  const apps: net.Server[] = [];
  const dsts: Destination[] = [];
  const hbonePorts = new Map<string, number>();
  // The mesh's trust table for caller statements, and the waypoint's key in it.
  const trustDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodemesh-waypoint-rig-'));
  const signing = newSigningKeyPair();
  fs.writeFileSync(trustFileFor(path.join(trustDir, 'ca.crt')), JSON.stringify({ [waypointId.spiffeId]: Buffer.from(signing.publicKey).toString('base64url') }));
  const verifier = new CallerStatementVerifier(trustFileFor(path.join(trustDir, 'ca.crt')));
  const judged: string[] = [];
  for (const p of PODS) {
    let n = 0;
    const version = p.labels.version ?? p.name;
    const app = p.labels.app === 'tcp'
      ? await listen((s) => { s.on('error', () => undefined); s.pipe(s); })
      : await listenHttp((req, res) => {
        const b = behaviour.get(version);
        if (b) { b(req, res, n++); return; }
        let body = '';
        req.on('data', (c) => { body += c; });
        req.on('end', () => {
          seen.push({ version, method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
          res.writeHead(200, { 'content-type': 'application/json', 'x-version': version });
          res.end(JSON.stringify({ version, url: req.url }));
        });
      });
    apps.push(app);
    const id = await issueIdentity(ca, 'shop', p.sa);
    const dst = await startDestination({
      identity: () => id, trustDomain: TD, podIPs: [p.ip],
      authorize: (c) => {
        const who = verifier.principalFor(c);
        if (!who.ok) return { allow: false, reason: `caller-statement-${who.reason}: ${who.message}` };
        judged.push(who.principal);
        return { allow: true };
      },
      connectApp: () => net.connect({ host: LOOPBACK, port: portOf(app), allowHalfOpen: true }),
    });
    dsts.push(dst);
    hbonePorts.set(p.ip, dst.hbonePort);
  }
  const dial = (ip: string) => net.connect({ host: LOOPBACK, port: hbonePorts.get(ip)! });

  let snapshot = buildSnapshot(resources([]), 1);
  let table = buildRouteTable([], snapshot, new Date().toISOString());
  const sink = logSink('info');
  const metrics = new WaypointMetrics();
  const picker = new PowerOfTwoChoices();
  const hbone = new HboneClient({ log: sink.log });
  const forward = forwarder({ hbone, trustDomain: TD, identity: () => waypointId, dial, connectHeaders: callerStatementHeader(signing.secretKey, () => waypointId.spiffeId) });
  const pipeline = buildPipeline({
    snapshot: () => snapshot, routes: () => table, picker, random: opts.random ?? Math.random, metrics, log: sink.log,
    waypointId: () => waypointId.spiffeId, forward, gateway: { namespace: 'shop', name: 'waypoint' },
  });
  const server = new WaypointServer({
    gateway: { namespace: 'shop', name: 'waypoint' }, trustDomain: TD, identity: () => waypointId, snapshot: () => snapshot,
    pipeline, hbone, dial, picker, metrics, log: sink.log,
  });
  const accepted: net.Socket[] = [];
  const listener = await listen((s) => { accepted.push(s); server.handle(s); });
  const callerClient = new HboneClient({ log: sink.log });

  const tunnel = async (vip: string, port: number) => new TunnelSocket(new TunnelDuplex(await callerClient.connect({
    source: caller, target: { address: LOOPBACK, port: portOf(listener) }, authority: `${vip}:${port}`,
    expectedServerIds: [waypointId.spiffeId], dial: () => net.connect({ host: LOOPBACK, port: portOf(listener) }),
  })));

  return {
    caller, waypointId, seen, behaviour, sink, metrics, judged,
    get snapshot() { return snapshot; },
    setRoutes(objects) { table = buildRouteTable(objects as never[], snapshot, new Date().toISOString(), table); },
    setExtra(extra) { snapshot = buildSnapshot(resources(extra), snapshot.version + 1); },
    routes: () => table,
    async get(path, o = {}) {
      return requestOver(await tunnel(o.vip ?? API_VIP, 80), path, o);
    },
    async getH2(path, headers = {}) {
      const sock = await tunnel(API_VIP, 80);
      const session = http2.connect('http://api.shop', { createConnection: () => sock as unknown as net.Socket });
      return new Promise((resolve, reject) => {
        const req = session.request({ ':path': path, ...headers });
        let body = '';
        let h: http2.IncomingHttpHeaders = {};
        req.on('response', (r) => { h = r; });
        req.on('data', (c) => { body += c; });
        req.on('end', () => { session.close(); resolve({ status: Number(h[':status']), headers: h, body }); });
        req.on('error', reject);
        req.end();
      });
    },
    tunnel,
    upstream: () => forward.stats(),
    async stop() {
      await callerClient.close({ force: true });
      await server.close();
      await forward.close(); // kept upstream tunnels: HTTP/2 sessions end with GOAWAY, as the waypoint's own stop does
      for (const s of accepted) s.destroy();
      await closeServer(listener);
      await hbone.close({ force: true });
      for (const d of dsts) await d.stop();
      for (const a of apps) await closeServer(a);
      fs.rmSync(trustDir, { recursive: true, force: true });
    },
  };
}

/** One HTTP/1.1 request over an open tunnel, which it then closes. */
export function requestOver(sock: TunnelSocket, path: string, o: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ createConnection: () => sock as unknown as net.Socket, method: o.method ?? 'GET', path, headers: { host: 'api.shop', ...o.headers } }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => { sock.destroy(); resolve({ status: res.statusCode ?? 0, headers: res.headers, body }); });
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

/** An app speaking HTTP/1.1 and HTTP/2 with prior knowledge on one port, as h2c apps do. */
export function listenHttp(handler: http.RequestListener): Promise<net.Server> {
  const h1 = http.createServer(handler);
  const h2 = http2.createServer(handler as unknown as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
  return listen((s) => {
    s.on('error', () => undefined);
    s.once('readable', () => {
      const head = s.read() as Buffer | null;
      if (!head) { s.destroy(); return; }
      s.unshift(head);
      (head.subarray(0, 3).toString('latin1') === 'PRI' ? h2 : h1).emit('connection', s);
    });
  });
}
