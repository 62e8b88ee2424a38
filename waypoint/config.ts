// nodemesh-waypoint's configuration: environment variables parsed once into a frozen, typed
// object. A bad value is an error naming the variable (NODEMESH_E_CONFIG).
import * as path from 'node:path';
import { DaemonErrors } from '../daemon/errors';
import { IdentityClientConfig, loadIdentityClientConfig, trustDomainFrom } from '../daemon/identity/identity-client-config';
import { HBONE_PORT } from '../daemon/tunnel/hbone-protocol';
import type { KubeConnection } from '../daemon/sources/kube-client';

export interface WaypointConfig {
  /** The Gateway this waypoint is. */
  namespace: string;
  name: string;
  /** Its identity: spiffe://<td>/ns/<namespace>/sa/<serviceAccount>. */
  serviceAccount: string;
  trustDomain: string;
  /** The address HBONE is served on (the waypoint pod's IP). */
  listenAddress: string;
  listenPort: number;
  /** The waypoint pod's network namespace, when the process runs outside it (the sandbox runs
   * it in its node's namespace, like nodemesh-node, so it reaches nodemesh-identity). */
  netnsPath: string | undefined;
  /** Where the cluster's state comes from: the sandbox's object directory, or the Kubernetes
   * API (in a pod: its ServiceAccount; else a kubeconfig file). */
  source: { kind: 'sandbox'; objectsDir: string } | { kind: 'kube'; connection: KubeConnection };
  /** A TCP port on the pod IP answering /healthz/ready only (the kubelet's readiness probe). */
  readinessPort: number | undefined;
  adminSocket: string | undefined;
  logLevel: string;
  identity: Readonly<IdentityClientConfig>;
  /** The Ed25519 secret key (base64url, tweetnacl's 64 bytes) that signs caller statements;
   * without it the destination sees only the waypoint's identity. */
  signingKeyFile: string | undefined;
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function required(env: NodeJS.ProcessEnv, name: string, expected: string): string {
  const v = env[name] ?? '';
  if (!v) throw DaemonErrors.NODEMESH_E_CONFIG({ field: name, value: '', expected });
  return v;
}

function dnsName(env: NodeJS.ProcessEnv, name: string, what: string): string {
  const v = required(env, name, what);
  if (!NAME.test(v) || v.length > 63) throw DaemonErrors.NODEMESH_E_CONFIG({ field: name, value: v, expected: `${what} (a DNS label)` });
  return v;
}

export function loadWaypointConfig(env: NodeJS.ProcessEnv = process.env): Readonly<WaypointConfig> {
  const name = dnsName(env, 'NODEMESH_WAYPOINT_NAME', "the waypoint Gateway's name");
  const namespace = dnsName(env, 'NODEMESH_WAYPOINT_NAMESPACE', "the waypoint Gateway's namespace");
  const listenAddress = required(env, 'NODEMESH_POD_IP', "the waypoint pod's IP, where HBONE is served");
  const port = Number(env.NODEMESH_WAYPOINT_HBONE_PORT || HBONE_PORT);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_WAYPOINT_HBONE_PORT', value: String(env.NODEMESH_WAYPOINT_HBONE_PORT), expected: 'a port 1-65535' });
  const readiness = env.NODEMESH_WAYPOINT_READINESS_PORT ? Number(env.NODEMESH_WAYPOINT_READINESS_PORT) : undefined;
  if (readiness !== undefined && (!Number.isInteger(readiness) || readiness < 1 || readiness > 65535 || readiness === port)) {
    throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_WAYPOINT_READINESS_PORT', value: String(env.NODEMESH_WAYPOINT_READINESS_PORT), expected: 'a port 1-65535 other than the HBONE port' });
  }
  return Object.freeze({
    name, namespace,
    serviceAccount: env.NODEMESH_WAYPOINT_SERVICE_ACCOUNT || name,
    trustDomain: trustDomainFrom(env),
    listenAddress, listenPort: port,
    netnsPath: env.NODEMESH_WAYPOINT_NETNS || undefined,
    source: sourceFrom(env),
    readinessPort: readiness,
    adminSocket: env.NODEMESH_ADMIN_SOCKET || undefined,
    logLevel: env.NODEMESH_LOG_LEVEL || 'info',
    identity: loadIdentityClientConfig(env),
    signingKeyFile: env.NODEMESH_WAYPOINT_SIGNING_KEY_FILE || undefined,
  });
}

function sourceFrom(env: NodeJS.ProcessEnv): WaypointConfig['source'] {
  const src = env.NODEMESH_SOURCE || 'sandbox';
  if (src === 'sandbox') return { kind: 'sandbox', objectsDir: required(env, 'NODEMESH_SANDBOX_OBJECTS', 'the sandbox object directory (set by nodemesh local up)') };
  if (src !== 'kube') throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_SOURCE', value: src, expected: "'sandbox' or 'kube'" });
  const kubeconfig = env.NODEMESH_KUBECONFIG || '';
  if (kubeconfig && !path.isAbsolute(kubeconfig)) throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_KUBECONFIG', value: kubeconfig, expected: "an absolute path to a kubeconfig file (unset: the pod's service account)" });
  return { kind: 'kube', connection: kubeconfig ? { kind: 'kubeconfig', path: kubeconfig } : { kind: 'in-cluster' } };
}
