// The controller's configuration inside nodemesh-identity, from the environment the install
// sets: NODEMESH_WAYPOINT_CONTROLLER (on|off, default on), and the waypoint image as the
// installer renders it (NODEMESH_IMAGE_REPOSITORY, NODEMESH_VERSION, NODEMESH_IMAGE_PULL_POLICY;
// the trust domain is the identity service's). The replica's name in the Lease is its pod name
// plus a random suffix.
import * as os from 'node:os';
import { randomUUID } from 'node:crypto';
import { resolveValues, type ManifestValues } from '../../installer/manifests/values';
import { DaemonErrors, NodemeshError } from '../errors';

export interface WaypointControllerConfig {
  enabled: boolean;
  values: ManifestValues;
  identity: string;
}

const FLAG_OF: Record<string, string> = {
  '--version': 'NODEMESH_VERSION', '--image': 'NODEMESH_IMAGE_REPOSITORY', '--image-pull-policy': 'NODEMESH_IMAGE_PULL_POLICY',
  '--trust-domain': 'NODEMESH_TRUST_DOMAIN', '--log-level': 'NODEMESH_LOG_LEVEL',
};

export function loadWaypointControllerConfig(env: NodeJS.ProcessEnv, base: { trustDomain: string; logLevel: string }): WaypointControllerConfig {
  const flag = env.NODEMESH_WAYPOINT_CONTROLLER || 'on';
  if (flag !== 'on' && flag !== 'off') throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_WAYPOINT_CONTROLLER', value: flag, expected: "'on' or 'off'" });
  let values: ManifestValues;
  try {
    values = resolveValues({
      version: env.NODEMESH_VERSION || undefined,
      imageRepository: env.NODEMESH_IMAGE_REPOSITORY || undefined,
      imagePullPolicy: env.NODEMESH_IMAGE_PULL_POLICY || undefined,
      trustDomain: base.trustDomain,
      logLevel: base.logLevel,
    });
  } catch (e) {
    if (!NodemeshError.is(e)) throw e;
    // The installer names its flags (`--image "x" is not valid; expected ...`); say which variable.
    const flag = /^(--[a-z-]+) /.exec(e.message)?.[1] ?? '';
    const field = FLAG_OF[flag] ?? 'NODEMESH_IMAGE_REPOSITORY';
    throw DaemonErrors.NODEMESH_E_CONFIG({ field, value: env[field] ?? '', expected: e.message.replace(/^.*expected /, '') }, { cause: e });
  }
  // The suffix keeps two processes with one host name (a restarted pod, tests) apart, as client-go does.
  return { enabled: flag === 'on', values, identity: `${env.POD_NAME || env.HOSTNAME || os.hostname()}_${randomUUID().slice(0, 8)}` };
}
