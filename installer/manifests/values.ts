// What an install can vary: the version and image, the trust domain, replica counts and the
// rollout pace. Everything else in the manifests is fixed by design (namespace, names, ports).
// The Helm chart exposes exactly these values, with these defaults (helm-chart.ts).
import { isValidTrustDomain, DEFAULT_TRUST_DOMAIN } from '../../daemon/identity/ca';
import { InstallerErrors } from '../errors';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The repository (or installed package) root: dist/installer/manifests -> three up. */
export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..', '..');

function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

export const NAMESPACE = 'nodemesh-system';
export const NODE_NAME = 'nodemesh-node';
export const IDENTITY_NAME = 'nodemesh-identity';
export const CA_SECRET_NAME = 'nodemesh-ca';
export const CA_ROOT_CONFIGMAP_NAME = 'nodemesh-ca-root';
/** The waypoints' caller-statement public keys (written by the waypoint controller). */
export const WAYPOINT_KEYS_CONFIGMAP_NAME = 'nodemesh-waypoint-keys';
export const IDENTITY_PORT = 15012;
export const READINESS_PORT = 15021;
/** The audience of the node daemon's projected token: only nodemesh-identity accepts it, and
 * the Kubernetes API does not (a stolen copy cannot be replayed against the API server). */
export const IDENTITY_TOKEN_AUDIENCE = 'nodemesh-identity';
export const ENROL_LABEL = 'nodemesh.io/dataplane-mode';
export const FIELD_MANAGER = 'nodemesh';

export interface ManifestValues {
  /** The nodemesh version: the image tag and the app.kubernetes.io/version label. */
  version: string;
  /** Image repository (without tag); node daemon and identity service share one image. */
  imageRepository: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  trustDomain: string;
  identityReplicas: number;
  /** DaemonSet RollingUpdate maxUnavailable: how many nodes may be without a ready daemon. */
  nodeMaxUnavailable: number;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error';
}

export const DEFAULT_IMAGE_REPOSITORY = 'ghcr.io/nodemesh/nodemesh';

export function defaultValues(): ManifestValues {
  return {
    version: packageVersion(),
    imageRepository: DEFAULT_IMAGE_REPOSITORY,
    imagePullPolicy: 'IfNotPresent',
    trustDomain: DEFAULT_TRUST_DOMAIN,
    identityReplicas: 2,
    nodeMaxUnavailable: 1,
    logLevel: 'info',
  };
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];
const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'];

/** Defaults overlaid with what the user set, each checked; a bad value names the flag. */
export function resolveValues(set: Partial<Record<keyof ManifestValues, string | number>>): ManifestValues {
  const v = defaultValues();
  const bad = (flag: string, value: unknown, expected: string) => InstallerErrors.NODEMESH_E_CLI_BAD_VALUE({ flag, value: String(value), expected });
  if (set.version !== undefined) {
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(String(set.version))) throw bad('--version', set.version, 'an image tag (letters, digits, _ . -; at most 128)');
    v.version = String(set.version);
  }
  if (set.imageRepository !== undefined) {
    if (!/^[a-z0-9]([a-z0-9._/:-]*[a-z0-9])?$/.test(String(set.imageRepository)) || /:[^/]*$/.test(String(set.imageRepository).replace(/^[^/]*\//, ''))) {
      throw bad('--image', set.imageRepository, 'an image repository without a tag, e.g. ghcr.io/nodemesh/nodemesh (the tag is --version)');
    }
    v.imageRepository = String(set.imageRepository);
  }
  if (set.imagePullPolicy !== undefined) {
    if (!PULL_POLICIES.includes(String(set.imagePullPolicy))) throw bad('--image-pull-policy', set.imagePullPolicy, PULL_POLICIES.join(', '));
    v.imagePullPolicy = set.imagePullPolicy as ManifestValues['imagePullPolicy'];
  }
  if (set.trustDomain !== undefined) {
    if (!isValidTrustDomain(String(set.trustDomain))) throw bad('--trust-domain', set.trustDomain, 'a SPIFFE trust domain, e.g. cluster.local');
    v.trustDomain = String(set.trustDomain);
  }
  for (const [key, flag, min] of [['identityReplicas', '--identity-replicas', 1], ['nodeMaxUnavailable', '--max-unavailable', 1]] as const) {
    if (set[key] === undefined) continue;
    const n = Number(set[key]);
    if (!Number.isInteger(n) || n < min || n > 1000) throw bad(flag, set[key], `a whole number from ${min} to 1000`);
    v[key] = n;
  }
  if (set.logLevel !== undefined) {
    if (!LOG_LEVELS.includes(String(set.logLevel))) throw bad('--log-level', set.logLevel, LOG_LEVELS.join(', '));
    v.logLevel = set.logLevel as ManifestValues['logLevel'];
  }
  return v;
}
