// The sandbox's state directory and its record of what exists (cluster.json). Layout:
//
//   <state>/cluster.json               nodes, daemon pids, pods (pids, IPs), allocations
//   <state>/objects/                   the object directory (daemons watch it)
//   <state>/nodes/<node>/admin.sock    each node daemon's admin API
//   <state>/nodes/<node>/credential    the node's token for nodemesh-identity (0600)
//   <state>/identity/ca/               the mesh CA (ca.key 0600, ca.crt), created by nodemesh-identity
//   <state>/identity/node-credentials.json   every node's token, for nodemesh-identity (0600)
//   <state>/pods/<ns>_<pod>/           per-pod runtime files (container exit codes)
//   <state>/logs/<node>.log            each node daemon's stdout/stderr
//   <state>/logs/identity.log          nodemesh-identity's stdout/stderr
//   <state>/logs/pods/<ns>_<pod>.log   each pod's stdout/stderr
//   <state>.lock                       held by the one nodemesh command changing the sandbox
//
// cluster.json is written before anything it describes is created, so a command killed
// half-way leaves a record the next `local up` or `local down` can clean up from.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { InstallerErrors } from '../errors';
import { isAlive, processRef, type ProcessRef } from './host';
import type { IdentityRecord } from './identity';
import type { ApiServerRecord } from './apiserver-mode';

export const DEFAULT_STATE_DIR = '/run/nodemesh/sandbox';
export const TOP_NETNS = 'nmsb-top';
export const NETNS_PREFIX = 'nmsb-';
export const SERVICE_CIDR = '10.96.0.0/16';
export const BPF_PIN_ROOT = '/sys/fs/bpf/nodemesh/sandbox';

export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.NODEMESH_SANDBOX_DIR || DEFAULT_STATE_DIR);
}

export interface Layout {
  dir: string;
  clusterFile: string;
  objects: string;
  logs: string;
  podLogs: string;
  pods: string;
  nodes: string;
  lock: string;
}

export function layout(dir: string): Layout {
  return {
    dir,
    clusterFile: path.join(dir, 'cluster.json'),
    objects: path.join(dir, 'objects'),
    logs: path.join(dir, 'logs'),
    podLogs: path.join(dir, 'logs', 'pods'),
    pods: path.join(dir, 'pods'),
    nodes: path.join(dir, 'nodes'),
    lock: `${dir}.lock`,
  };
}

/** The entries a sandbox state dir may hold; teardown removes exactly these. */
export const STATE_ENTRIES = ['cluster.json', 'objects', 'logs', 'pods', 'nodes', 'identity', 'apiserver'];

export interface NodeRecord {
  name: string;
  /** 1-based; node-i has IP 172.30.0.(10+i) and pod CIDR 10.244.i.0/24. */
  index: number;
  ip: string;
  netns: string;
  netnsPath: string;
  podCIDR: string;
  /** The node cgroup: the daemon's eBPF programs attach here; pods live below it. */
  cgroup: string;
  daemonCgroup: string;
  adminSocket: string;
  /** This node's token for nodemesh-identity (NODEMESH_NODE_CREDENTIAL_FILE), 0600. */
  credentialFile: string;
  bpfPinRoot: string;
  log: string;
  daemon?: ProcessRef;
}

export interface ContainerProcess {
  container: string;
  argv: string[];
  /** The supervising shell inside the pod's netns and cgroup; it records the exit code. */
  process: ProcessRef;
  exitFile: string;
}

export interface PodRecord {
  uid: string;
  namespace: string;
  name: string;
  node: string;
  ip: string;
  /** fd00:10:244:i::k, for a dual-stack pod (topology.ts ANNOTATION_IP_FAMILIES). */
  ip6?: string;
  /** Host octet k of 10.244.i.k; also names the node-side veth (`vpod<k>`). */
  slot: number;
  netns: string;
  netnsPath: string;
  hostVeth: string;
  cgroup: string;
  log: string;
  runDir: string;
  /** The environment the containers got (also used by `local exec`). */
  env: Record<string, string>;
  containers: ContainerProcess[];
  /** Set when the sandbox refused to start the pod (e.g. the daemon did not confirm it). */
  failure?: { code: string; message: string };
}

export interface ClusterState {
  version: 1;
  phase: 'creating' | 'ready';
  createdAt: string;
  /** The command that created it; while `phase` is 'creating' this tells a crash from a race. */
  creator: ProcessRef;
  repoRoot: string;
  stateDir: string;
  cgroup2Root: string;
  cgroupRoot: string;
  bpfPinRoot: string;
  /** Whether `local up` mounted bpffs itself (it is left mounted: other tools may use it). */
  mountedBpffs: boolean;
  serviceCIDR: string;
  topNetns: string;
  daemonCommand: string[];
  /** The mesh CA service (absent in a cluster.json of a version before it existed). */
  identity?: IdentityRecord;
  /** `local up --apiserver`: the API server the sandbox publishes to and its processes read. */
  apiserver?: ApiServerRecord;
  nodes: NodeRecord[];
  pods: Record<string, PodRecord>;
}

export function readCluster(l: Layout): ClusterState | undefined {
  let text: string;
  try {
    text = fs.readFileSync(l.clusterFile, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as ClusterState;
  } catch {
    return undefined; // a torn write of a crashed command: treated as stale
  }
}

export function writeCluster(l: Layout, c: ClusterState): void {
  fs.mkdirSync(l.dir, { recursive: true });
  const tmp = path.join(l.dir, `.cluster-${randomBytes(4).toString('hex')}.tmp`);
  fs.writeFileSync(tmp, JSON.stringify(c, null, 2) + '\n');
  fs.renameSync(tmp, l.clusterFile);
}

/** Whether a recorded cluster is actually running (some daemon is still alive). */
export function clusterIsLive(c: ClusterState): boolean {
  if (c.phase === 'creating') return isAlive(c.creator);
  return c.nodes.some((n) => isAlive(n.daemon));
}

// --- the lock ----------------------------------------------------------------------------

export interface Lock { release(): void }

/** One nodemesh command changes the sandbox at a time. A lock left by a dead command
 * (SIGKILL) is taken over. */
export function acquireLock(l: Layout): Lock {
  fs.mkdirSync(path.dirname(l.lock), { recursive: true });
  const me = processRef(process.pid)!;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      fs.writeFileSync(l.lock, JSON.stringify(me), { flag: 'wx' });
      let released = false;
      return {
        release: () => {
          if (released) return;
          released = true;
          try {
            const cur = JSON.parse(fs.readFileSync(l.lock, 'utf8')) as ProcessRef;
            if (cur.pid === me.pid && cur.startTime === me.startTime) fs.unlinkSync(l.lock);
          } catch { /* already gone */ }
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw InstallerErrors.NODEMESH_E_SANDBOX_STATE_DIR({ path: l.lock, reason: (e as Error).message }, { cause: e });
      }
    }
    let holder: ProcessRef | undefined;
    try {
      holder = JSON.parse(fs.readFileSync(l.lock, 'utf8')) as ProcessRef;
    } catch { /* torn or vanished: stale */ }
    if (holder && isAlive(holder) && holder.pid !== process.pid) {
      throw InstallerErrors.NODEMESH_E_SANDBOX_BUSY({ pid: holder.pid, lock: l.lock });
    }
    try { fs.unlinkSync(l.lock); } catch { /* raced with another taker */ }
  }
  throw InstallerErrors.NODEMESH_E_SANDBOX_STATE_DIR({ path: l.lock, reason: 'could not take the lock after 5 attempts' });
}
