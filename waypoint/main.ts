// nodemesh-waypoint: the process. Configuration, the source of cluster state (the sandbox's
// object directory, or the Kubernetes API), the identity client and where status goes; the
// wiring itself is run-waypoint.ts.
import { loadNative } from '../native';
import { NodemeshError } from '../daemon/errors';
import { IdentityClient } from '../daemon/identity/identity-client';
import { createLogger } from '../daemon/log';
import { NetnsSocketFactory } from '../daemon/redirection/socket-factory';
import { SandboxSource } from '../daemon/sources/sandbox-source';
import { KubeSource } from '../daemon/sources/kube-source';
import { KubeHttp, loadKubeConfig } from '../daemon/sources/kube-client';
import { validateObject } from '../daemon/schema';
import { loadWaypointConfig } from './config';
import { loadSigningKey } from './forward';
import { runWaypoint, type WaypointDeps } from './run-waypoint';
import { writeRouteStatuses } from './route-status-writer';
import { trafficPolicies } from './backend-traffic-policy';
import { writePolicyStatuses } from './policy-status-writer';
import { WAYPOINT_KINDS } from './waypoint-kinds';
import { KubePolicyStatusWriter } from './kube-policy-status';

async function main(): Promise<void> {
  const cfg = loadWaypointConfig();
  const log = createLogger(cfg.logLevel, { waypoint: `${cfg.namespace}/${cfg.name}` });
  const idClient = IdentityClient.fromConfig(cfg.identity);
  let source: WaypointDeps['source'];
  let onState: WaypointDeps['onState'];
  if (cfg.source.kind === 'sandbox') {
    // Every object is validated at the edge with the schemas `local apply` uses.
    const dir = cfg.source.objectsDir;
    source = new SandboxSource(dir, undefined, validateObject);
    onState = (s, routes, serves) => {
      try {
        const written = writeRouteStatuses(dir, routes.entries, serves);
        if (written.length) log.info({ routes: written }, 'route status updated');
      } catch (e) { log.warn({ err: (e as Error).message }, 'route status not written'); }
      try {
        const written = writePolicyStatuses(dir, trafficPolicies(s).entries, { namespace: cfg.namespace }, serves, new Date().toISOString());
        if (written.length) log.info({ policies: written }, 'policy status updated');
      } catch (e) { log.warn({ err: (e as Error).message }, 'policy status not written'); }
    };
  } else {
    // Route status is the waypoint controller's (it runs in nodemesh-identity); policy status
    // is the waypoints'.
    const http = new KubeHttp(loadKubeConfig(cfg.source.connection));
    source = new KubeSource({ http, log: log.child({ component: 'kube-source' }), validate: validateObject, kinds: WAYPOINT_KINDS });
    onState = new KubePolicyStatusWriter(http.kc, { namespace: cfg.namespace }, log).onState;
  }
  const running = await runWaypoint(cfg, {
    source, onState, log,
    fetchIdentity: (id) => idClient.fetchIdentity(id, cfg.identity.certTtlSeconds),
    sockets: cfg.netnsPath ? new NetnsSocketFactory(loadNative()) : undefined,
    signingKey: cfg.signingKeyFile ? loadSigningKey(cfg.signingKeyFile) : undefined,
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    running.stop().then(() => process.exit(0), () => process.exit(1));
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
