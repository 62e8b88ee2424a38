// nodemesh-identity in the sandbox: the mesh CA as one process, as the Deployment is in a
// real cluster (DESIGN.md: Identity). It runs detached in the top namespace `nmsb-top`,
// listening on the bridge's address 172.30.0.1:15012, which every node reaches directly on
// its eth0 subnet and nothing outside the sandbox can reach (the top namespace has no uplink;
// pods have no route back to it). Its own cgroup `<sandbox cgroup>/nodemesh-identity` sits
// beside the node cgroups, not under one, so no node's eBPF programs see it, and teardown
// finds it there even when a killed `local up` never recorded its pid.
//
// Node authentication (daemon/identity/node-credentials.ts): `local up` mints one random token
// per node, writes the table for nodemesh-identity and each node's own token for its daemon,
// all 0600 under the state directory; the CA key is created by nodemesh-identity on its first
// start in `<state>/identity/ca` (0700) and never leaves it.
//
// Environment contract with daemon/identity/identity-config.ts:
//   NODEMESH_IDENTITY_LISTEN=172.30.0.1:15012      NODEMESH_CA_DIR=<state>/identity/ca
//   NODEMESH_TRUST_DOMAIN=cluster.local            NODEMESH_SOURCE=sandbox
//   NODEMESH_NODE_CREDENTIALS=<state>/identity/node-credentials.json
//   NODEMESH_SANDBOX_OBJECTS=<state>/objects
// and with daemon/identity/identity-client-config.ts (each node daemon):
//   NODEMESH_IDENTITY_ADDRESS=172.30.0.1:15012     NODEMESH_TRUST_DOMAIN=cluster.local
//   NODEMESH_NODE_CREDENTIAL_FILE=<state>/nodes/<node>/credential
//   NODEMESH_CA_ROOT_FILE=<state>/identity/ca/ca.crt
// Ready when its log has the "nodemesh-identity ready" line (logged once the gRPC server is
// bound with its serving certificate).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CA_CERT_FILE, DEFAULT_TRUST_DOMAIN } from '../../daemon/identity/ca';
import { mintNodeCredentials, writeNodeCredentialsFile, writeNodeTokenFile } from '../../daemon/identity/node-credentials';
import { InstallerErrors } from '../errors';
import { isAlive, logTail, processRef, sleep, type ProcessRef } from './host';
import { launchDetached } from './launch';
import type { NodeRecord } from './state';
import { TOP_IP, netnsPath } from './topology';

export const IDENTITY_IP = TOP_IP;
export const IDENTITY_PORT = 15012;
export const IDENTITY_CGROUP_NAME = 'nodemesh-identity';
export const IDENTITY_READY_MESSAGE = 'nodemesh-identity ready';
export const IDENTITY_READY_TIMEOUT_MS = Number(process.env.NODEMESH_SANDBOX_READY_TIMEOUT_MS) || 60_000;

export interface IdentityRecord {
  /** host:port the node daemons dial (NODEMESH_IDENTITY_ADDRESS). */
  address: string;
  netns: string;
  cgroup: string;
  /** NODEMESH_CA_DIR: ca.key (0600) and ca.crt. */
  caDir: string;
  /** The mesh root every daemon trusts (NODEMESH_CA_ROOT_FILE). */
  caRootFile: string;
  /** JSON {node: token}, 0600 (NODEMESH_NODE_CREDENTIALS). */
  credentialsFile: string;
  trustDomain: string;
  log: string;
  process?: ProcessRef;
}

/** Paths of the identity service under a state directory. */
export function identityRecord(stateDir: string, cgroupRoot: string, logsDir: string, topNetns: string): IdentityRecord {
  const dir = path.join(stateDir, 'identity');
  const caDir = path.join(dir, 'ca');
  return {
    address: `${IDENTITY_IP}:${IDENTITY_PORT}`,
    netns: topNetns,
    cgroup: path.join(cgroupRoot, IDENTITY_CGROUP_NAME),
    caDir,
    caRootFile: path.join(caDir, CA_CERT_FILE),
    credentialsFile: path.join(dir, 'node-credentials.json'),
    trustDomain: DEFAULT_TRUST_DOMAIN,
    log: path.join(logsDir, 'identity.log'),
  };
}

/** Where a node's own credential lives (next to its admin socket). */
export const nodeCredentialFile = (nodesDir: string, node: string): string => path.join(nodesDir, node, 'credential');

/** Mints a fresh token per node and writes the table and each node's file (all 0600). */
export function writeCredentials(id: IdentityRecord, nodes: readonly NodeRecord[]): void {
  fs.mkdirSync(path.dirname(id.credentialsFile), { recursive: true, mode: 0o700 });
  const creds = mintNodeCredentials(nodes.map((n) => n.name));
  writeNodeCredentialsFile(id.credentialsFile, creds);
  for (const n of nodes) writeNodeTokenFile(n.credentialFile, creds[n.name]!);
}

/** Developer knobs that pass through to nodemesh-identity (the rest is set here). */
const PASS_THROUGH = ['NODEMESH_LOG_LEVEL', 'NODEMESH_CERT_MAX_TTL_SECONDS'];

export function identityEnv(id: IdentityRecord, objectsDir: string, extra: NodeJS.ProcessEnv = process.env, source: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {
    PATH: extra.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    NODEMESH_IDENTITY_LISTEN: id.address,
    NODEMESH_CA_DIR: id.caDir,
    NODEMESH_TRUST_DOMAIN: id.trustDomain,
    NODEMESH_NODE_CREDENTIALS: id.credentialsFile,
    NODEMESH_SOURCE: 'sandbox',
    NODEMESH_SANDBOX_OBJECTS: objectsDir,
  };
  for (const k of PASS_THROUGH) if (extra[k] !== undefined) env[k] = extra[k]!;
  // `local up --apiserver` (apiserver-mode.ts): TokenReview and node binding through the API.
  if (source.NODEMESH_SOURCE === 'kube') { delete env.NODEMESH_NODE_CREDENTIALS; delete env.NODEMESH_SANDBOX_OBJECTS; }
  return { ...env, ...source };
}

/** What each node daemon gets to reach nodemesh-identity. */
export function identityClientEnv(id: IdentityRecord, node: NodeRecord): Record<string, string> {
  return {
    NODEMESH_IDENTITY_ADDRESS: id.address,
    NODEMESH_NODE_CREDENTIAL_FILE: node.credentialFile,
    NODEMESH_CA_ROOT_FILE: id.caRootFile,
    NODEMESH_TRUST_DOMAIN: id.trustDomain,
  };
}

export interface StartedIdentity { ref: ProcessRef; exited: Promise<string>; logOffset: number }

export function identityMain(repoRoot: string): string {
  return path.join(repoRoot, 'dist', 'daemon', 'identity-main.js');
}

export function startIdentity(id: IdentityRecord, objectsDir: string, repoRoot: string, source: Record<string, string> = {}): StartedIdentity {
  fs.mkdirSync(id.caDir, { recursive: true, mode: 0o700 });
  fs.mkdirSync(id.cgroup, { recursive: true });
  const argv = [process.execPath, identityMain(repoRoot)];
  fs.writeFileSync(id.log, `--- nodemesh local up: starting ${argv.join(' ')} at ${new Date().toISOString()}\n`, { flag: 'a' });
  const logOffset = fs.statSync(id.log).size;
  const child = launchDetached({ cgroup: id.cgroup, netnsPath: netnsPath(id.netns), argv, env: identityEnv(id, objectsDir, process.env, source), logFile: id.log });
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ? `killed by ${signal}` : `exit status ${code}`));
    child.once('error', (e) => resolve(`could not start: ${e.message}`));
  });
  const ref = child.pid !== undefined ? processRef(child.pid) : undefined;
  if (!ref) throw InstallerErrors.NODEMESH_E_SANDBOX_IDENTITY_EXITED({ code: 'could not start', log: id.log, lines: logTail(id.log) });
  return { ref, exited, logOffset };
}

/** The "ready" line of this start (after `offset` in the log), if logged yet. Pure on the text. */
export function readyLine(logText: string): Record<string, unknown> | undefined {
  for (const line of logText.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const j = JSON.parse(line) as Record<string, unknown>;
      if (j.msg === IDENTITY_READY_MESSAGE) return j;
    } catch { /* a torn last line: not ready yet */ }
  }
  return undefined;
}

function readFrom(file: string, offset: number): string {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    if (size <= offset) return '';
    const buf = Buffer.alloc(Math.min(size - offset, 1 << 20));
    const n = fs.readSync(fd, buf, 0, buf.length, offset);
    return buf.subarray(0, n).toString('utf8');
  } catch {
    return '';
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Waits for the ready line; fails fast when the process exits, and after timeoutMs. */
export async function waitIdentityReady(id: IdentityRecord, s: StartedIdentity, opts: { timeoutMs?: number; checkpoint?: () => void } = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? IDENTITY_READY_TIMEOUT_MS;
  let exitedWith: string | undefined;
  void s.exited.then((r) => { exitedWith = r; });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    opts.checkpoint?.();
    if (readyLine(readFrom(id.log, s.logOffset))) {
      if (!fs.existsSync(id.caRootFile)) {
        throw InstallerErrors.NODEMESH_E_SANDBOX_IDENTITY_NOT_READY({ seconds: 0, last: `it reported ready, but ${id.caRootFile} does not exist`, log: id.log, lines: logTail(id.log) });
      }
      return;
    }
    if (exitedWith !== undefined) {
      await sleep(100); // let the last log lines land
      throw InstallerErrors.NODEMESH_E_SANDBOX_IDENTITY_EXITED({ code: exitedWith, log: id.log, lines: logTail(id.log) });
    }
    if (Date.now() > deadline) {
      throw InstallerErrors.NODEMESH_E_SANDBOX_IDENTITY_NOT_READY({ seconds: Math.round(timeoutMs / 1000), last: `no "${IDENTITY_READY_MESSAGE}" line in its log`, log: id.log, lines: logTail(id.log) });
    }
    await sleep(100);
  }
}

/** `/proc/<pid>/net/tcp` shows the sockets of the process's network namespace: whether the
 * address is in LISTEN there, found without sending a packet from the root namespace. */
export function tcpListening(procNetTcp: string, ip: string, port: number): boolean {
  const hexIp = ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0').toUpperCase()).reverse().join('');
  const want = `${hexIp}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return procNetTcp.split('\n').slice(1).some((line) => {
    const f = line.trim().split(/\s+/);
    return f[1] === want && f[3] === '0A'; // 0A = TCP_LISTEN
  });
}

export interface IdentityStatus {
  address: string;
  pid: number | null;
  alive: boolean;
  /** The service's address is in LISTEN in the top namespace. */
  listening: boolean;
  caRootFile: string;
  log: string;
}

export function identityStatus(id: IdentityRecord): IdentityStatus {
  const alive = isAlive(id.process);
  let listening = false;
  if (alive) {
    try {
      listening = tcpListening(fs.readFileSync(`/proc/${id.process!.pid}/net/tcp`, 'utf8'), IDENTITY_IP, IDENTITY_PORT);
    } catch { /* gone meanwhile */ }
  }
  return { address: id.address, pid: id.process?.pid ?? null, alive, listening, caRootFile: id.caRootFile, log: id.log };
}
