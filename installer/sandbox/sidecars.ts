// Sidecar mode in the sandbox: one nodemesh-sidecar process (daemon/sidecar-main.ts) per pod
// whose namespace or pod label is `nodemesh.io/dataplane-mode: sidecar`. Node daemons leave
// such pods alone; each gets its own proxy, started after the pod, which
//   - runs in its node's network namespace (it reaches nodemesh-identity from there, as the
//     node daemon does) and in its own cgroup `<node cgroup>/mesh-proxies/<ns>_<pod>`, outside
//     the pod's cgroup, so the capture programs never see its own sockets;
//   - attaches capture to the pod's cgroup only, pins under
//     /sys/fs/bpf/nodemesh/sandbox/sidecars/<ns>_<pod> (teardown removes the whole sandbox
//     pin tree), and listens on 15001/15006/15008 inside the pod's namespace;
//   - uses the node's credential for nodemesh-identity (the service binds identities to the
//     node a pod runs on, so a sidecar can get only its own pod's identity's certificate);
//   - serves its admin API on a unix socket (<state>/pods/<ns>_<pod>/sidecar-admin.sock) and
//     any free port in the node namespace (many sidecars share it).
// Everything lives under the sandbox's cgroup subtree, pin root and state directory, so
// `local down` removes it even if the bench that started it was killed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InstallerErrors } from '../errors';
import { adminGet, adminGetJson, type DaemonWorkloads } from './admin-client';
import { isAlive, logTail, processRef, signalIfOurs, sleep, type ProcessRef } from './host';
import { identityClientEnv } from './identity';
import { launchDetached } from './launch';
import { DAEMON_NODE_FLAGS } from '../../daemon/node-flags';
import { BPF_PIN_ROOT, layout, readCluster, stateDir, type ClusterState, type NodeRecord, type PodRecord } from './state';

export const PROXY_CGROUP_DIR = 'mesh-proxies';
export const SIDECAR_READY_TIMEOUT_MS = Number(process.env.NODEMESH_SANDBOX_READY_TIMEOUT_MS) || 60_000;
const STOP_GRACE_MS = 5_000;

export interface ProxyRecord {
  kind: 'sidecar' | 'haproxy';
  pod: { namespace: string; name: string; uid: string; node: string; ip: string };
  process: ProcessRef;
  cgroup: string;
  log: string;
  /** sidecar: its admin socket and pin root; haproxy: its config and stats socket. */
  adminSocket?: string;
  pinRoot?: string;
  config?: string;
}

export const podKey = (p: { namespace: string; name: string }): string => `${p.namespace}_${p.name}`;

/** The cluster, its node and pod records for `ns/name`; a clear error when any is missing. */
export function findPod(ref: { namespace: string; name: string }, proxy: string): { cluster: ClusterState; node: NodeRecord; pod: PodRecord } {
  const cluster = readCluster(layout(stateDir()));
  const name = `${ref.namespace}/${ref.name}`;
  if (!cluster) throw InstallerErrors.NODEMESH_E_SANDBOX_PROXY_SETUP({ proxy, pod: name, reason: 'no sandbox cluster is recorded' });
  const pod = Object.values(cluster.pods).find((p) => p.namespace === ref.namespace && p.name === ref.name);
  if (!pod) throw InstallerErrors.NODEMESH_E_SANDBOX_PROXY_SETUP({ proxy, pod: name, reason: 'the pod is not in cluster.json' });
  const node = cluster.nodes.find((n) => n.name === pod.node);
  if (!node) throw InstallerErrors.NODEMESH_E_SANDBOX_PROXY_SETUP({ proxy, pod: name, reason: `its node ${pod.node} is not in cluster.json` });
  return { cluster, node, pod };
}

/** The proxy's own cgroup: under the node, beside (not inside) the pod's. */
export function proxyCgroup(node: NodeRecord, pod: { namespace: string; name: string }): string {
  return path.join(node.cgroup, PROXY_CGROUP_DIR, podKey(pod));
}

export function sidecarEnv(cluster: ClusterState, node: NodeRecord, pod: PodRecord, files: { adminSocket: string; pinRoot: string }): Record<string, string> {
  if (!cluster.identity) throw InstallerErrors.NODEMESH_E_SANDBOX_PROXY_SETUP({ proxy: 'sidecar', pod: `${pod.namespace}/${pod.name}`, reason: 'the sandbox has no nodemesh-identity' });
  const env: Record<string, string> = {
    ...identityClientEnv(cluster.identity, node),
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    NODEMESH_SIDECAR_POD_UID: pod.uid,
    NODEMESH_NODE_NAME: node.name,
    NODEMESH_SOURCE: 'sandbox',
    NODEMESH_SANDBOX_OBJECTS: layout(cluster.stateDir).objects,
    NODEMESH_CGROUP: pod.cgroup,
    NODEMESH_BPF_PIN_ROOT: files.pinRoot,
    NODEMESH_ADMIN_SOCKET: files.adminSocket,
    NODEMESH_ADMIN_PORT: '0',
    NODEMESH_METRICS_PORT: '0',
    NODEMESH_READINESS_PORT: '0',
  };
  if (process.env.NODEMESH_LOG_LEVEL) env.NODEMESH_LOG_LEVEL = process.env.NODEMESH_LOG_LEVEL;
  return env;
}

/** Starts one sidecar per pod and returns once each is ready with its pod enrolled. */
export async function startSidecars(pods: readonly { namespace: string; name: string }[]): Promise<ProxyRecord[]> {
  const started: { rec: ProxyRecord; exited: () => string | undefined }[] = [];
  try {
    for (const ref of pods) started.push(startSidecar(ref));
    for (const s of started) await waitSidecarReady(s.rec, s.exited);
  } catch (e) {
    await stopProxies(started.map((s) => s.rec));
    throw e;
  }
  return started.map((s) => s.rec);
}

function startSidecar(ref: { namespace: string; name: string }): { rec: ProxyRecord; exited: () => string | undefined } {
  const { cluster, node, pod } = findPod(ref, 'sidecar');
  const l = layout(cluster.stateDir);
  const runDir = path.join(l.pods, podKey(pod));
  const adminSocket = path.join(runDir, 'sidecar-admin.sock');
  const pinRoot = path.join(BPF_PIN_ROOT, 'sidecars', podKey(pod));
  const logFile = path.join(l.logs, 'sidecars', `${podKey(pod)}.log`);
  const cgroup = proxyCgroup(node, pod);
  fs.mkdirSync(runDir, { recursive: true });
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  fs.mkdirSync(cgroup, { recursive: true });
  const argv = [process.execPath, ...DAEMON_NODE_FLAGS, path.join(cluster.repoRoot, 'dist', 'daemon', 'sidecar-main.js')];
  fs.writeFileSync(logFile, `--- starting ${argv.join(' ')} for ${pod.namespace}/${pod.name} at ${new Date().toISOString()}\n`, { flag: 'a' });
  const child = launchDetached({ cgroup, netnsPath: node.netnsPath, argv, env: sidecarEnv(cluster, node, pod, { adminSocket, pinRoot }), logFile });
  let exitedWith: string | undefined;
  child.once('exit', (code, signal) => { exitedWith = signal ? `killed by ${signal}` : `exit status ${code}`; });
  child.once('error', (e) => { exitedWith = `could not start: ${e.message}`; });
  const proc = child.pid !== undefined ? processRef(child.pid) : undefined;
  if (!proc) throw InstallerErrors.NODEMESH_E_SANDBOX_PROXY_SETUP({ proxy: 'sidecar', pod: `${pod.namespace}/${pod.name}`, reason: `could not start (${exitedWith ?? 'no pid'}); see ${logFile}` });
  return {
    rec: { kind: 'sidecar', pod: { namespace: pod.namespace, name: pod.name, uid: pod.uid, node: node.name, ip: pod.ip }, process: proc, cgroup, log: logFile, adminSocket, pinRoot },
    exited: () => exitedWith,
  };
}

async function waitSidecarReady(rec: ProxyRecord, exited: () => string | undefined): Promise<void> {
  const deadline = Date.now() + SIDECAR_READY_TIMEOUT_MS;
  const name = `${rec.pod.namespace}/${rec.pod.name}`;
  let last = 'no answer yet';
  for (;;) {
    const gone = exited();
    if (gone !== undefined) {
      await sleep(100);
      throw InstallerErrors.NODEMESH_E_SANDBOX_PROXY_NOT_READY({ proxy: 'sidecar', pod: name, seconds: 0, last: gone, log: rec.log, lines: logTail(rec.log) });
    }
    try {
      const r = await adminGet(rec.adminSocket!, '/healthz/ready', 1000);
      if (r.status === 200) {
        const w = await adminGetJson<DaemonWorkloads>(rec.adminSocket!, '/debug/workloads');
        if (w.pods.some((p) => p.uid === rec.pod.uid && p.enrolled)) return;
        last = w.failed?.length ? `enrolment failed: ${w.failed.map((f) => f.error).join('; ')}` : 'ready, pod not enrolled yet';
      } else {
        last = `${r.status} ${r.body.trim().slice(0, 200)}`;
      }
    } catch (e) {
      last = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    }
    if (Date.now() > deadline) {
      throw InstallerErrors.NODEMESH_E_SANDBOX_PROXY_NOT_READY({ proxy: 'sidecar', pod: name, seconds: Math.round(SIDECAR_READY_TIMEOUT_MS / 1000), last, log: rec.log, lines: logTail(rec.log) });
    }
    await sleep(100);
  }
}

/** SIGTERM each proxy (only if still the process we started), SIGKILL after a grace period,
 * then remove what each left: a sidecar's pins (its capture stays attached through them
 * until then, so the pod fails closed, never open) and its cgroup. */
export async function stopProxies(recs: readonly ProxyRecord[]): Promise<void> {
  const live = recs.filter((r) => signalIfOurs(r.process, 'SIGTERM'));
  const deadline = Date.now() + STOP_GRACE_MS;
  while (live.some((r) => isAlive(r.process)) && Date.now() < deadline) await sleep(50);
  for (const r of live) signalIfOurs(r.process, 'SIGKILL');
  for (const r of recs) {
    for (let i = 0; i < 40 && isAlive(r.process); i++) await sleep(50);
    if (r.pinRoot && r.pinRoot.startsWith(`${BPF_PIN_ROOT}/`)) fs.rmSync(r.pinRoot, { recursive: true, force: true });
    try { fs.rmdirSync(r.cgroup); } catch { /* busy or gone: local down removes it */ }
  }
}
