// The node daemon's configuration: environment variables parsed once into a frozen, typed
// object with named defaults. A bad value is an error naming the variable.
import * as net from 'node:net';
import * as path from 'node:path';
import { DaemonErrors } from './errors';
import { IdentityClientConfig, loadIdentityClientConfig, trustDomainFrom } from './identity/identity-client-config';
import type { KubeConnection } from './sources/kube-client';

export interface NodeConfig {
  nodeName: string;
  /** sandbox: the local sandbox's object directory; kube: a Kubernetes API server, through a
   * kubeconfig file (NODEMESH_KUBECONFIG, NODEMESH_KUBE_CONTEXT) or in-cluster (the pod's
   * service account); this node's pods are found through hostProc (the host's /proc) and the
   * cgroup tree mounted in this container. */
  source: { kind: 'sandbox'; objectsDir: string } | { kind: 'kube'; connection: KubeConnection; hostProc: string };
  datapath: 'ebpf' | 'memory';
  /** cgroup v2 directory the socket programs attach to; undefined = the detected cgroup2 root. */
  cgroupPath: string | undefined;
  bpfPinRoot: string;
  bpfObjectDir: string;
  excludeOutboundPorts: number[];
  excludeInboundPorts: number[];
  adminPort: number;
  metricsPort: number;
  readinessPort: number;
  /** Extra unix socket serving the admin API (sandbox CLI; no network needed). */
  adminSocket: string | undefined;
  logLevel: string;
  /** How long a stopping daemon lets open connections finish (a DaemonSet sets it below
   * terminationGracePeriodSeconds); SIGTERM always ends within it plus a few seconds. */
  drainTimeoutMs: number;
  /** Source addresses whose plaintext reaches enrolled apps unsteered (kubelet probes);
   * undefined = this node's own addresses. */
  probeSources: string[] | undefined;
  trustDomain: string;
  /** How to reach nodemesh-identity; absent when NODEMESH_IDENTITY_ADDRESS is not set, and
   * then meshed destinations are refused (no identity, no tunnel: fail closed). */
  identity: Readonly<IdentityClientConfig> | undefined;
}

export const DEFAULTS = Object.freeze({
  bpfPinRoot: '/sys/fs/bpf/nodemesh',
  adminPort: 15000,
  metricsPort: 15020,
  readinessPort: 15021,
  logLevel: 'info',
  drainTimeoutSeconds: 20,
});

const REPO_ROOT = path.resolve(__dirname, '..', '..');

function port(env: NodeJS.ProcessEnv, name: string, dflt: number): number {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw DaemonErrors.NODEMESH_E_CONFIG({ field: name, value: v, expected: 'a port number 0-65535' });
  return n;
}

function portList(env: NodeJS.ProcessEnv, name: string): number[] {
  const v = env[name];
  if (!v) return [];
  return v.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw DaemonErrors.NODEMESH_E_CONFIG({ field: name, value: v, expected: 'a comma-separated list of ports 1-65535' });
    return n;
  });
}

function seconds(env: NodeJS.ProcessEnv, name: string, dflt: number): number {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 3600) throw DaemonErrors.NODEMESH_E_CONFIG({ field: name, value: v, expected: 'a number of seconds 0-3600' });
  return n;
}

function ipList(env: NodeJS.ProcessEnv, name: string): string[] | undefined {
  const v = env[name];
  if (v === undefined) return undefined;
  return v.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    if (net.isIP(s) === 0) throw DaemonErrors.NODEMESH_E_CONFIG({ field: name, value: v, expected: 'a comma-separated list of IP addresses (the node\'s own; empty for none)' });
    return s;
  });
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Readonly<NodeConfig> {
  const nodeName = env.NODEMESH_NODE_NAME || env.NODE_NAME || '';
  if (!nodeName) throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_NODE_NAME', value: '', expected: 'the name of this node (a DaemonSet sets it from spec.nodeName)' });
  const src = env.NODEMESH_SOURCE || 'kube';
  let source: NodeConfig['source'];
  if (src === 'sandbox') {
    const objectsDir = env.NODEMESH_SANDBOX_OBJECTS || '';
    if (!objectsDir) throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_SANDBOX_OBJECTS', value: '', expected: 'the sandbox object directory (set by nodemesh local up)' });
    source = { kind: 'sandbox', objectsDir };
  } else if (src === 'kube') {
    const kubeconfig = env.NODEMESH_KUBECONFIG || '';
    const hostProc = env.NODEMESH_HOST_PROC || '/proc';
    if (!path.isAbsolute(hostProc)) throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_HOST_PROC', value: hostProc, expected: "an absolute path where the host's /proc is mounted (default /proc, with hostPID)" });
    if (kubeconfig && !path.isAbsolute(kubeconfig)) throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_KUBECONFIG', value: kubeconfig, expected: 'an absolute path to a kubeconfig file (unset: the pod\'s service account)' });
    if (env.NODEMESH_KUBE_CONTEXT && !kubeconfig) throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_KUBE_CONTEXT', value: env.NODEMESH_KUBE_CONTEXT, expected: 'unset, or NODEMESH_KUBECONFIG set too' });
    source = {
      kind: 'kube', hostProc,
      connection: kubeconfig ? { kind: 'kubeconfig', path: kubeconfig, ...(env.NODEMESH_KUBE_CONTEXT ? { context: env.NODEMESH_KUBE_CONTEXT } : {}) } : { kind: 'in-cluster' },
    };
  } else {
    throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_SOURCE', value: src, expected: "'kube' or 'sandbox'" });
  }
  const dp = env.NODEMESH_DATAPATH || 'ebpf';
  if (dp !== 'ebpf' && dp !== 'memory') throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_DATAPATH', value: dp, expected: "'ebpf' or 'memory'" });
  return Object.freeze({
    nodeName,
    source,
    datapath: dp,
    cgroupPath: env.NODEMESH_CGROUP || undefined,
    bpfPinRoot: env.NODEMESH_BPF_PIN_ROOT || DEFAULTS.bpfPinRoot,
    bpfObjectDir: env.NODEMESH_BPF_OBJECT_DIR || path.join(REPO_ROOT, 'bpf', 'build'),
    excludeOutboundPorts: portList(env, 'NODEMESH_EXCLUDE_OUTBOUND_PORTS'),
    excludeInboundPorts: portList(env, 'NODEMESH_EXCLUDE_INBOUND_PORTS'),
    adminPort: port(env, 'NODEMESH_ADMIN_PORT', DEFAULTS.adminPort),
    metricsPort: port(env, 'NODEMESH_METRICS_PORT', DEFAULTS.metricsPort),
    readinessPort: port(env, 'NODEMESH_READINESS_PORT', DEFAULTS.readinessPort),
    adminSocket: env.NODEMESH_ADMIN_SOCKET || undefined,
    logLevel: env.NODEMESH_LOG_LEVEL || DEFAULTS.logLevel,
    drainTimeoutMs: seconds(env, 'NODEMESH_DRAIN_TIMEOUT_SECONDS', DEFAULTS.drainTimeoutSeconds) * 1000,
    probeSources: ipList(env, 'NODEMESH_PROBE_SOURCES'),
    trustDomain: trustDomainFrom(env),
    identity: env.NODEMESH_IDENTITY_ADDRESS ? loadIdentityClientConfig(env) : undefined,
  });
}
