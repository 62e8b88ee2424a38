// Starts the waypoint controller inside nodemesh-identity (kube source only); returns its stop.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { loadWaypointControllerConfig } from './controller-config';
import { WaypointController, WAYPOINT_CONTROLLER_DEFAULTS } from './waypoint-controller';
import { keyMaster } from './caller-statement-keys';

export function startWaypointController(kc: KubeConfig, env: NodeJS.ProcessEnv, base: { trustDomain: string; logLevel: string; namespace: string; caRootPem: string; caKeyPem: string }, log: Logger): () => void {
  const cfg = loadWaypointControllerConfig(env, base);
  if (!cfg.enabled) {
    log.info('waypoint controller off (NODEMESH_WAYPOINT_CONTROLLER=off)');
    return () => undefined;
  }
  const controller = new WaypointController({ kc, values: cfg.values, log, leaseNamespace: base.namespace, identity: cfg.identity, caRootPem: base.caRootPem, keyMaster: keyMaster(base.caKeyPem) });
  controller.start();
  log.info({ identity: cfg.identity, lease: `${base.namespace}/${WAYPOINT_CONTROLLER_DEFAULTS.leaseName}`, image: `${cfg.values.imageRepository}:${cfg.values.version}` }, 'waypoint controller started');
  return () => void controller.stop();
}
