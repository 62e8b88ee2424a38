// The waypoint's wiring, apart from the process (main.ts) so tests run the whole waypoint on
// loopback: its own certificate, the cluster state from a source (the sandbox's object
// directory or Kubernetes informers, the same incremental contract the node daemons follow),
// its routes, then the request pipeline behind the HBONE listener; every listener is bound
// before this resolves. Status written back is the caller's choice (onState): in the sandbox
// the waypoint writes route and policy status into the object directory; on Kubernetes route
// status is the waypoint controller's and policy status goes through the API.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import type { Logger } from 'pino';
import { adminHandler } from '../daemon/admin/admin-server';
import { CertificateManager, type IdentityFetcher } from '../daemon/identity/certificate-manager';
import { NetnsSocketFactory } from '../daemon/redirection/socket-factory';
import { PowerOfTwoChoices } from '../daemon/routing/balancer';
import { EMPTY_SNAPSHOT, Snapshot } from '../daemon/state/snapshot';
import { followSource, type StateSource } from '../daemon/sources/source';
import { waypointFor } from '../daemon/state/waypoints';
import { HboneClient } from '../daemon/tunnel/hbone-client';
import type { WaypointConfig } from './config';
import { callerStatementHeader, forwarder } from './forward';
import { buildPipeline } from './pipeline';
import { RouteTable, buildRouteTable } from './route-table';
import { trafficPolicies } from './backend-traffic-policy';
import { WaypointMetrics } from './waypoint-metrics';
import { WaypointServer } from './waypoint-server';

/** Whether this waypoint serves a Service (the Service's waypoint is this Gateway). */
export type Serves = (svc: { namespace: string; name: string }) => boolean;

export interface WaypointDeps {
  source: StateSource;
  fetchIdentity: IdentityFetcher;
  log: Logger;
  /** The Ed25519 secret key that signs caller statements, when the mesh gave it one. */
  signingKey?: Uint8Array;
  /** Each new state, with its route table: where status is written back. */
  onState?: (snapshot: Snapshot, routes: RouteTable, serves: Serves) => void;
  /** Sockets in the waypoint pod's namespace when the process runs outside it (sandbox). */
  sockets?: NetnsSocketFactory;
  /** Replaces the dial to a destination (tests: pod IPs are names on loopback). */
  dial?: (ip: string, port: number) => net.Socket;
}

export interface RunningWaypoint {
  hboneAddress: net.AddressInfo;
  readinessAddress: net.AddressInfo | undefined;
  snapshot(): Snapshot;
  routes(): RouteTable;
  stop(): Promise<void>;
}

function listenTcp(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => { server.off('error', reject); resolve(); });
  });
}

export async function runWaypoint(cfg: Readonly<WaypointConfig>, deps: WaypointDeps): Promise<RunningWaypoint> {
  const { log, sockets } = deps;
  const inNetns = sockets && cfg.netnsPath;
  const dial = deps.dial ?? ((ip: string, port: number): net.Socket => (inNetns
    ? sockets.connect(cfg.netnsPath!, { family: 4, host: ip, port })
    : net.connect({ host: ip, port, allowHalfOpen: true })));

  const certs = new CertificateManager({ fetch: deps.fetchIdentity, logger: log.child({ component: 'certificates' }) });
  certs.ensure([{ namespace: cfg.namespace, serviceAccount: cfg.serviceAccount }]);
  const identity = () => certs.get(cfg.namespace, cfg.serviceAccount);

  let snapshot: Snapshot = EMPTY_SNAPSHOT;
  let routes = new RouteTable([]);
  const serves: Serves = (p) => {
    const svc = snapshot.services.get(`${p.namespace}/${p.name}`);
    const w = svc && waypointFor(snapshot, svc);
    return !!w && w.namespace === cfg.namespace && w.name === cfg.name;
  };
  // Routes come from the snapshot, which holds every HTTPRoute and GRPCRoute.
  await followSource(deps.source, (s) => {
    snapshot = s;
    routes = buildRouteTable([...s.httpRoutes.values(), ...s.grpcRoutes.values()], snapshot, new Date().toISOString(), routes);
    deps.onState?.(s, routes, serves);
  }, (skipped) => log.warn({ kind: skipped.kind, object: skipped.object, reason: skipped.reason, err: skipped.error }, 'object skipped'));

  const first = await certs.whenReady(cfg.namespace, cfg.serviceAccount);
  log.info({ spiffeId: first.spiffeId, notAfter: first.notAfter }, 'waypoint certificate issued');
  const metrics = new WaypointMetrics();
  const picker = new PowerOfTwoChoices();
  const hbone = new HboneClient({ log: log.child({ component: 'hbone-client' }) });
  const signer = () => identity()?.spiffeId ?? first.spiffeId;
  const forward = forwarder({ hbone, trustDomain: cfg.trustDomain, identity, dial, ...(deps.signingKey ? { connectHeaders: callerStatementHeader(deps.signingKey, signer) } : {}) });
  const pipeline = buildPipeline({
    snapshot: () => snapshot, routes: () => routes, picker, random: Math.random, metrics, log: log.child({ component: 'access' }),
    waypointId: () => identity()?.spiffeId ?? '', forward, gateway: { namespace: cfg.namespace, name: cfg.name },
  });
  const server = new WaypointServer({
    gateway: { namespace: cfg.namespace, name: cfg.name }, trustDomain: cfg.trustDomain, identity: () => identity() ?? first,
    snapshot: () => snapshot, pipeline, hbone, dial, picker, metrics, log,
  });
  const listenOpts = { family: 4 as const, host: cfg.listenAddress, port: cfg.listenPort };
  let listener: net.Server;
  if (inNetns) {
    listener = (await sockets.listen(cfg.netnsPath!, listenOpts, (s) => server.handle(s))).server;
  } else {
    listener = net.createServer({ allowHalfOpen: true }, (s) => server.handle(s));
    await listenTcp(listener, cfg.listenAddress, cfg.listenPort);
  }

  const handler = (json: Record<string, () => unknown>) => adminHandler({ ready: () => ({ ready: true, reasons: [] }), json }, metrics.registry);
  const servers: http.Server[] = [];
  let readiness: http.Server | undefined;
  if (cfg.readinessPort !== undefined) {
    // The kubelet's probe and Prometheus: readiness and metrics only, nothing of the config.
    readiness = http.createServer(handler({}));
    await listenTcp(readiness, cfg.listenAddress, cfg.readinessPort);
    servers.push(readiness);
  }
  if (cfg.adminSocket) {
    try { fs.unlinkSync(cfg.adminSocket); } catch { /* not there */ }
    const admin = http.createServer(handler({
      '/debug/routes': () => routes.entries.map((e) => ({ kind: e.route.kind, namespace: e.route.namespace, name: e.route.name, parents: e.status })),
      '/debug/policies': () => trafficPolicies(snapshot).entries.map((e) => ({ ...e.policy, ancestors: e.ancestors.map((a) => ({ ancestorRef: a.ancestorRef, ...a.condition })) })),
      '/debug/pools': () => ({ client: hbone.stats(), server: server.hbone.stats(), upstream: forward.stats() }),
      '/debug/certificates': () => certs.status(),
      '/debug/config': () => ({ ...cfg, identity: { ...cfg.identity } }),
    }));
    await new Promise<void>((resolve, reject) => { admin.once('error', reject); admin.listen(cfg.adminSocket, () => resolve()); });
    servers.push(admin);
  }
  log.info({ listen: `${cfg.listenAddress}:${(listener.address() as net.AddressInfo).port}`, netns: cfg.netnsPath, source: deps.source.name, spiffeId: first.spiffeId }, 'nodemesh-waypoint ready');

  return {
    hboneAddress: listener.address() as net.AddressInfo,
    readinessAddress: readiness?.address() as net.AddressInfo | undefined,
    snapshot: () => snapshot,
    routes: () => routes,
    async stop() {
      deps.source.stop();
      listener.close();
      for (const s of servers) s.close();
      certs.stop();
      await Promise.all([server.close(), forward.close().then(() => hbone.close())]);
    },
  };
}
