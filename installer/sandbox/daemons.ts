// The node daemons: one real nodemesh-node per sandbox node, started detached inside the
// node's network namespace and its `nodemesh-node` cgroup (so its eBPF programs, attached
// at the node cgroup, see the pods and the daemon itself, as a DaemonSet pod would).
//
// Environment contract with daemon/config.ts:
//   NODEMESH_NODE_NAME=node-i              NODEMESH_SOURCE=sandbox
//   NODEMESH_SANDBOX_OBJECTS=<state>/objects
//   NODEMESH_CGROUP=<cgroup2>/nodemesh-sandbox/node-i
//   NODEMESH_BPF_PIN_ROOT=/sys/fs/bpf/nodemesh/sandbox/node-i
//   NODEMESH_ADMIN_SOCKET=<state>/nodes/node-i/admin.sock
//   NODEMESH_IDENTITY_ADDRESS, NODEMESH_NODE_CREDENTIAL_FILE, NODEMESH_CA_ROOT_FILE,
//   NODEMESH_TRUST_DOMAIN: how to reach nodemesh-identity (identity.ts)
//   NODEMESH_DRAIN_TIMEOUT_SECONDS: how long a stopping daemon drains (sandbox default below)
// Ready when GET /healthz/ready on the admin socket answers 200.
//
// restartDaemon() is a hitless restart, as a DaemonSet rolling update should be: the new
// daemon starts beside the old one (same netns and cgroup), binds the same in-pod listeners
// (SO_REUSEPORT), adopts the pinned eBPF state and takes the admin socket over; once it
// answers ready, the old one gets SIGTERM, closes its listeners (queued connections move to
// the new daemon's, net.ipv4.tcp_migrate_req), drains open connections up to the deadline
// and exits.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InstallerErrors } from '../errors';
import { adminGet, adminGetJson } from './admin-client';
import { checkRoot, isAlive, logTail, processRef, signalIfOurs, sleep, type ProcessRef } from './host';
import { identityClientEnv } from './identity';
import { daemonSourceEnv } from './apiserver-mode';
import { launchDetached } from './launch';
import { DAEMON_NODE_FLAGS } from '../../daemon/node-flags';
import { acquireLock, layout, readCluster, stateDir, writeCluster, type NodeRecord } from './state';

export const DAEMON_READY_TIMEOUT_MS = Number(process.env.NODEMESH_SANDBOX_READY_TIMEOUT_MS) || 60_000;
/** The sandbox daemons' drain deadline (a real node's comes from terminationGracePeriodSeconds). */
export const SANDBOX_DRAIN_SECONDS = 3;
export const drainSeconds = (env: NodeJS.ProcessEnv = process.env): number => {
  const n = Number(env.NODEMESH_DRAIN_TIMEOUT_SECONDS);
  return env.NODEMESH_DRAIN_TIMEOUT_SECONDS !== undefined && Number.isFinite(n) && n >= 0 ? n : SANDBOX_DRAIN_SECONDS;
};
/** SIGKILL only after the daemon's own deadline (drain, then at most 5 s more) has passed. */
export const DAEMON_STOP_GRACE_MS = (drainSeconds() + 6) * 1000;

/** The daemon command: `node <flags> <repo>/dist/daemon/main.js` (the flags every data-path
 * process runs with, daemon/node-flags.ts), or NODEMESH_DAEMON_COMMAND (space-separated argv)
 * for development against a stand-in. */
export function daemonCommand(repoRoot: string, env: NodeJS.ProcessEnv = process.env): { argv: string[]; main?: string } {
  const override = env.NODEMESH_DAEMON_COMMAND?.trim();
  if (override) return { argv: override.split(/\s+/) };
  const main = path.join(repoRoot, 'dist', 'daemon', 'main.js');
  return { argv: [process.execPath, ...DAEMON_NODE_FLAGS, main], main };
}

export function daemonEnv(node: NodeRecord, objectsDir: string, extra: NodeJS.ProcessEnv = process.env, identity: Record<string, string> = {}, source: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {
    ...identity,
    PATH: extra.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    NODEMESH_NODE_NAME: node.name,
    NODEMESH_SOURCE: 'sandbox',
    NODEMESH_SANDBOX_OBJECTS: objectsDir,
    NODEMESH_CGROUP: node.cgroup,
    NODEMESH_BPF_PIN_ROOT: node.bpfPinRoot,
    NODEMESH_ADMIN_SOCKET: node.adminSocket,
    NODEMESH_DRAIN_TIMEOUT_SECONDS: String(drainSeconds(extra)),
  };
  // Developer knobs pass through (log level, datapath choice, timeouts of the daemon).
  for (const [k, v] of Object.entries(extra)) {
    if (v !== undefined && k.startsWith('NODEMESH_') && !(k in env) && !k.startsWith('NODEMESH_SANDBOX') && k !== 'NODEMESH_DAEMON_COMMAND') env[k] = v;
  }
  // `local up --apiserver` (apiserver-mode.ts): the Kubernetes source instead of the directory.
  if (source.NODEMESH_SOURCE === 'kube') delete env.NODEMESH_SANDBOX_OBJECTS;
  return { ...env, ...source };
}

export interface StartedDaemon { ref: ProcessRef; exited: Promise<string> }

export function startDaemon(node: NodeRecord, objectsDir: string, argv: readonly string[], identity: Record<string, string> = {}, source: Record<string, string> = {}): StartedDaemon {
  fs.mkdirSync(path.dirname(node.adminSocket), { recursive: true });
  fs.writeFileSync(node.log, `--- nodemesh local up: starting ${argv.join(' ')} at ${new Date().toISOString()}\n`, { flag: 'a' });
  const child = launchDetached({ cgroup: node.daemonCgroup, netnsPath: node.netnsPath, argv, env: daemonEnv(node, objectsDir, process.env, identity, source), logFile: node.log });
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ? `killed by ${signal}` : `exit status ${code}`));
    child.once('error', (e) => resolve(`could not start: ${e.message}`));
  });
  const ref = child.pid !== undefined ? processRef(child.pid) : undefined;
  if (!ref) throw InstallerErrors.NODEMESH_E_SANDBOX_DAEMON_EXITED({ node: node.name, code: 'could not start', log: node.log, lines: logTail(node.log) });
  return { ref, exited };
}

/** Polls GET /healthz/ready until 200; fails fast when the daemon exits. */
export async function waitReady(node: NodeRecord, d: StartedDaemon, opts: { timeoutMs?: number; checkpoint?: () => void } = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? DAEMON_READY_TIMEOUT_MS;
  let exitedWith: string | undefined;
  void d.exited.then((s) => { exitedWith = s; });
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    opts.checkpoint?.();
    if (exitedWith !== undefined) {
      await sleep(100); // let the last log lines land
      throw InstallerErrors.NODEMESH_E_SANDBOX_DAEMON_EXITED({ node: node.name, code: exitedWith, log: node.log, lines: logTail(node.log) });
    }
    try {
      const r = await adminGet(node.adminSocket, '/healthz/ready', 1000);
      if (r.status === 200) return;
      last = `${r.status} ${r.body.trim().slice(0, 200)}`;
    } catch (e) {
      last = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    }
    if (Date.now() > deadline) {
      throw InstallerErrors.NODEMESH_E_SANDBOX_DAEMON_NOT_READY({ node: node.name, seconds: Math.round(timeoutMs / 1000), last, log: node.log, lines: logTail(node.log) });
    }
    await sleep(150);
  }
}

export async function isReady(node: NodeRecord): Promise<boolean> {
  if (!isAlive(node.daemon)) return false;
  try {
    return (await adminGet(node.adminSocket, '/healthz/ready', 1000)).status === 200;
  } catch {
    return false;
  }
}

/** SIGTERM the recorded daemons (only if still the same processes), SIGKILL after a grace
 * period. The daemons keep their eBPF programs pinned on SIGTERM; teardown unpins them. */
export async function stopDaemons(refs: readonly ProcessRef[], graceMs = DAEMON_STOP_GRACE_MS): Promise<void> {
  const live = refs.filter((r) => signalIfOurs(r, 'SIGTERM'));
  const deadline = Date.now() + graceMs;
  while (live.some(isAlive) && Date.now() < deadline) await sleep(50);
  for (const r of live) signalIfOurs(r, 'SIGKILL');
}

export interface RestartResult { node: string; old: ProcessRef | undefined; new: ProcessRef; oldExit: string; tookOverMs: number; oldStoppedMs: number }

/** Hitless restart of one node's daemon (see the top of this file). The old daemon is only
 * stopped once the new one answers ready on the admin socket; if the new one does not, it
 * is stopped instead and the old one keeps serving. */
export async function restartDaemon(nodeName: string, log: (line: string) => void = () => undefined): Promise<RestartResult> {
  checkRoot();
  const l = layout(stateDir());
  const lock = acquireLock(l);
  try {
    const c = readCluster(l);
    if (!c || c.phase !== 'ready') throw InstallerErrors.NODEMESH_E_SANDBOX_NOT_UP({ stateDir: l.dir });
    const node = c.nodes.find((n) => n.name === nodeName);
    if (!node) throw InstallerErrors.NODEMESH_E_SANDBOX_NODE_NOT_FOUND({ node: nodeName, nodes: c.nodes.map((n) => n.name) });
    const old = isAlive(node.daemon) ? node.daemon : undefined;
    const t0 = Date.now();
    log(`${node.name}: starting a new nodemesh-node beside pid ${old?.pid ?? '(none running)'}`);
    const started = startDaemon(node, l.objects, c.daemonCommand, c.identity ? identityClientEnv(c.identity, node) : {}, c.apiserver ? daemonSourceEnv(c.apiserver, node.name) : {});
    try {
      await waitTakeOver(node, started);
    } catch (e) {
      await stopDaemons([started.ref]);
      throw e;
    }
    const tookOverMs = Date.now() - t0;
    node.daemon = started.ref;
    writeCluster(l, c);
    log(`${node.name}: new daemon pid ${started.ref.pid} ready after ${tookOverMs} ms; stopping pid ${old?.pid ?? '-'} (drain up to ${drainSeconds()} s)`);
    const t1 = Date.now();
    let oldExit = 'not running';
    if (old) {
      signalIfOurs(old, 'SIGTERM');
      const deadline = Date.now() + DAEMON_STOP_GRACE_MS;
      while (isAlive(old) && Date.now() < deadline) await sleep(50);
      oldExit = isAlive(old) ? 'killed after the grace period' : 'exited';
      if (isAlive(old)) signalIfOurs(old, 'SIGKILL');
    }
    const oldStoppedMs = Date.now() - t1;
    log(`${node.name}: old daemon ${oldExit} after ${oldStoppedMs} ms`);
    return { node: node.name, old, new: started.ref, oldExit, tookOverMs, oldStoppedMs };
  } finally {
    lock.release();
  }
}

/** Until the admin socket is answered by the new process (it renames its socket over the
 * old one's once it serves) and that process is ready. */
async function waitTakeOver(node: NodeRecord, d: StartedDaemon): Promise<void> {
  let exitedWith: string | undefined;
  void d.exited.then((s) => { exitedWith = s; });
  const deadline = Date.now() + DAEMON_READY_TIMEOUT_MS;
  let last = 'no answer yet';
  for (;;) {
    if (exitedWith !== undefined) {
      await sleep(100);
      throw InstallerErrors.NODEMESH_E_SANDBOX_DAEMON_EXITED({ node: node.name, code: exitedWith, log: node.log, lines: logTail(node.log) });
    }
    try {
      const who = await adminGetJson<{ pid: number }>(node.adminSocket, '/debug/process', 1000);
      if (who.pid === d.ref.pid) {
        const r = await adminGet(node.adminSocket, '/healthz/ready', 1000);
        if (r.status === 200) return;
        last = `${r.status} ${r.body.trim().slice(0, 200)}`;
      } else {
        last = `answered by pid ${who.pid}, the old daemon`;
      }
    } catch (e) {
      last = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    }
    if (Date.now() > deadline) {
      throw InstallerErrors.NODEMESH_E_SANDBOX_RESTART_NOT_TAKEN_OVER({ node: node.name, seconds: Math.round(DAEMON_READY_TIMEOUT_MS / 1000), last, log: node.log });
    }
    await sleep(100);
  }
}
