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
// Ready when GET /healthz/ready on the admin socket answers 200.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InstallerErrors } from '../errors';
import { adminGet } from './admin-client';
import { isAlive, logTail, processRef, signalIfOurs, sleep, type ProcessRef } from './host';
import { launchDetached } from './launch';
import type { NodeRecord } from './state';

export const DAEMON_READY_TIMEOUT_MS = Number(process.env.NODEMESH_SANDBOX_READY_TIMEOUT_MS) || 60_000;
export const DAEMON_STOP_GRACE_MS = 5_000;

/** The daemon command: `node <repo>/dist/daemon/main.js`, or NODEMESH_DAEMON_COMMAND
 * (space-separated argv) for development against a stand-in. */
export function daemonCommand(repoRoot: string, env: NodeJS.ProcessEnv = process.env): { argv: string[]; main?: string } {
  const override = env.NODEMESH_DAEMON_COMMAND?.trim();
  if (override) return { argv: override.split(/\s+/) };
  const main = path.join(repoRoot, 'dist', 'daemon', 'main.js');
  return { argv: [process.execPath, main], main };
}

export function daemonEnv(node: NodeRecord, objectsDir: string, extra: NodeJS.ProcessEnv = process.env, identity: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {
    ...identity,
    PATH: extra.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    NODEMESH_NODE_NAME: node.name,
    NODEMESH_SOURCE: 'sandbox',
    NODEMESH_SANDBOX_OBJECTS: objectsDir,
    NODEMESH_CGROUP: node.cgroup,
    NODEMESH_BPF_PIN_ROOT: node.bpfPinRoot,
    NODEMESH_ADMIN_SOCKET: node.adminSocket,
  };
  // Developer knobs pass through (log level, datapath choice, timeouts of the daemon).
  for (const [k, v] of Object.entries(extra)) {
    if (v !== undefined && k.startsWith('NODEMESH_') && !(k in env) && !k.startsWith('NODEMESH_SANDBOX') && k !== 'NODEMESH_DAEMON_COMMAND') env[k] = v;
  }
  return env;
}

export interface StartedDaemon { ref: ProcessRef; exited: Promise<string> }

export function startDaemon(node: NodeRecord, objectsDir: string, argv: readonly string[], identity: Record<string, string> = {}): StartedDaemon {
  fs.mkdirSync(path.dirname(node.adminSocket), { recursive: true });
  fs.writeFileSync(node.log, `--- nodemesh local up: starting ${argv.join(' ')} at ${new Date().toISOString()}\n`, { flag: 'a' });
  const child = launchDetached({ cgroup: node.daemonCgroup, netnsPath: node.netnsPath, argv, env: daemonEnv(node, objectsDir, process.env, identity), logFile: node.log });
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
