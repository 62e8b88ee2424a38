// nodemesh-waypoint: wiring only. Configuration, the waypoint's own certificate, the cluster
// state (the same object directory the node daemons read) and its routes, then the request
// pipeline behind the HBONE listener; the listener is bound before "ready" is logged.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { loadNative } from '../native';
import { adminHandler } from '../daemon/admin/admin-server';
import { NodemeshError } from '../daemon/errors';
import { CertificateManager } from '../daemon/identity/certificate-manager';
import { IdentityClient } from '../daemon/identity/identity-client';
import { createLogger } from '../daemon/log';
import { NetnsSocketFactory } from '../daemon/redirection/socket-factory';
import { PowerOfTwoChoices } from '../daemon/routing/balancer';
import { SandboxSource } from '../daemon/sources/sandbox-source';
import { EMPTY_SNAPSHOT, Snapshot } from '../daemon/state/snapshot';
import { followSource } from '../daemon/sources/source';
import { validateObject } from '../daemon/schema';
import { waypointFor } from '../daemon/state/waypoints';
import { HboneClient } from '../daemon/tunnel/hbone-client';
import { loadWaypointConfig } from './config';
import { callerStatementHeader, forwarder, loadSigningKey } from './forward';
import { buildPipeline } from './pipeline';
import { RouteTable, buildRouteTable } from './route-table';
import { writeRouteStatuses } from './route-status-writer';
import { trafficPolicies } from './backend-traffic-policy';
import { writePolicyStatuses } from './policy-status-writer';
import { WaypointMetrics } from './waypoint-metrics';
import { WaypointServer } from './waypoint-server';

async function main(): Promise<void> {
  const cfg = loadWaypointConfig();
  const log = createLogger(cfg.logLevel, { waypoint: `${cfg.namespace}/${cfg.name}` });
  const sockets = cfg.netnsPath ? new NetnsSocketFactory(loadNative()) : undefined;
  const dial = (ip: string, port: number): net.Socket => (sockets && cfg.netnsPath
    ? sockets.connect(cfg.netnsPath, { family: 4, host: ip, port })
    : net.connect({ host: ip, port, allowHalfOpen: true }));

  const idClient = IdentityClient.fromConfig(cfg.identity);
  const certs = new CertificateManager({ fetch: (id) => idClient.fetchIdentity(id, cfg.identity.certTtlSeconds), logger: log.child({ component: 'certificates' }) });
  certs.ensure([{ namespace: cfg.namespace, serviceAccount: cfg.serviceAccount }]);
  const identity = () => certs.get(cfg.namespace, cfg.serviceAccount);

  let snapshot: Snapshot = EMPTY_SNAPSHOT;
  let routes = new RouteTable([]);
  const serves = (p: { namespace: string; name: string }) => {
    const svc = snapshot.services.get(`${p.namespace}/${p.name}`);
    const w = svc && waypointFor(snapshot, svc);
    return !!w && w.namespace === cfg.namespace && w.name === cfg.name;
  };
  // The same incremental source as the node daemon, validated at the edge; routes come from
  // the snapshot, which holds every HTTPRoute and GRPCRoute.
  const source = new SandboxSource(cfg.objectsDir, undefined, validateObject);
  await followSource(source, (s) => {
    snapshot = s;
    routes = buildRouteTable([...s.httpRoutes.values(), ...s.grpcRoutes.values()], snapshot, new Date().toISOString(), routes);
    try {
      const written = writeRouteStatuses(cfg.objectsDir, routes.entries, serves);
      if (written.length) log.info({ routes: written }, 'route status updated');
    } catch (e) { log.warn({ err: (e as Error).message }, 'route status not written'); }
    try {
      const written = writePolicyStatuses(cfg.objectsDir, trafficPolicies(s).entries, { namespace: cfg.namespace }, serves, new Date().toISOString());
      if (written.length) log.info({ policies: written }, 'policy status updated');
    } catch (e) { log.warn({ err: (e as Error).message }, 'policy status not written'); }
  });

  const first = await certs.whenReady(cfg.namespace, cfg.serviceAccount);
  log.info({ spiffeId: first.spiffeId, notAfter: first.notAfter }, 'waypoint certificate issued');
  const metrics = new WaypointMetrics();
  const picker = new PowerOfTwoChoices();
  const hbone = new HboneClient({ log: log.child({ component: 'hbone-client' }) });
  const signingKey = cfg.signingKeyFile ? loadSigningKey(cfg.signingKeyFile) : undefined;
  const forward = forwarder({ hbone, trustDomain: cfg.trustDomain, identity, dial, ...(signingKey ? { connectHeaders: callerStatementHeader(signingKey, () => identity()?.spiffeId ?? first.spiffeId) } : {}) });
  const pipeline = buildPipeline({
    snapshot: () => snapshot, routes: () => routes, picker, random: Math.random, metrics, log: log.child({ component: 'access' }),
    waypointId: () => identity()?.spiffeId ?? '', forward, gateway: { namespace: cfg.namespace, name: cfg.name },
  });
  const server = new WaypointServer({
    gateway: { namespace: cfg.namespace, name: cfg.name }, trustDomain: cfg.trustDomain, identity: () => identity() ?? first,
    snapshot: () => snapshot, pipeline, hbone, dial, picker, metrics, log,
  });
  const listenOpts = { family: 4 as const, host: cfg.listenAddress, port: cfg.listenPort };
  const listener = sockets && cfg.netnsPath
    ? (await sockets.listen(cfg.netnsPath, listenOpts, (s) => server.handle(s))).server
    : await new Promise<net.Server>((resolve, reject) => {
      const srv = net.createServer({ allowHalfOpen: true }, (s) => server.handle(s));
      srv.once('error', reject);
      srv.listen({ host: cfg.listenAddress, port: cfg.listenPort }, () => resolve(srv));
    });

  let admin: http.Server | undefined;
  if (cfg.adminSocket) {
    try { fs.unlinkSync(cfg.adminSocket); } catch { /* not there */ }
    const handler = adminHandler({
      ready: () => ({ ready: true, reasons: [] }),
      json: {
        '/debug/routes': () => routes.entries.map((e) => ({ kind: e.route.kind, namespace: e.route.namespace, name: e.route.name, parents: e.status })),
        '/debug/policies': () => trafficPolicies(snapshot).entries.map((e) => ({ ...e.policy, ancestors: e.ancestors.map((a) => ({ ancestorRef: a.ancestorRef, ...a.condition })) })),
        '/debug/pools': () => ({ client: hbone.stats(), server: server.hbone.stats(), upstream: forward.stats() }),
        '/debug/certificates': () => certs.status(),
        '/debug/config': () => ({ ...cfg, identity: { ...cfg.identity } }),
      },
    }, metrics.registry);
    const srv = http.createServer(handler);
    await new Promise<void>((resolve, reject) => { srv.once('error', reject); srv.listen(cfg.adminSocket, () => resolve()); });
    admin = srv;
  }
  log.info({ listen: `${cfg.listenAddress}:${cfg.listenPort}`, netns: cfg.netnsPath, spiffeId: first.spiffeId }, 'nodemesh-waypoint ready');

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    source.stop();
    listener.close();
    admin?.close();
    certs.stop();
    Promise.all([server.close(), forward.close().then(() => hbone.close())]).then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((e: unknown) => {
  const err = e as Error;
  const code = NodemeshError.is(e) ? e.code : 'NODEMESH_E_INTERNAL';
  process.stderr.write(`nodemesh-waypoint: ${err.message} (${code})\n`);
  if (!NodemeshError.is(e)) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
