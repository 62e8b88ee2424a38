// Removing a sandbox, whole: used by `local down`, by `local up` for the remains of a crashed
// or killed run, and to roll back a failed `local up`. It works from cluster.json when there
// is one and from the sandbox's fixed names when there is not (a run killed before it wrote
// anything), and touches only what the sandbox owns: processes it recorded (checked against
// /proc) or that sit in its cgroup subtree, its `nmsb-*` namespaces, its cgroup subtree,
// /sys/fs/bpf/nodemesh/sandbox, and the known entries of its state directory (which include
// the mesh CA and the node credentials: a new sandbox gets new ones).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cgroupPids, cgroupTreeBottomUp, killCgroupTree, removeCgroupTree, sandboxCgroupRoot, SANDBOX_CGROUP_NAME } from './cgroups';
import { stopDaemons } from './daemons';
import { processCgroup, processRef, type ProcessRef } from './host';
import { IDENTITY_CGROUP_NAME } from './identity';
import { BPF_PIN_ROOT, DEFAULT_STATE_DIR, STATE_ENTRIES, clusterIsLive, layout, readCluster, type Layout } from './state';
import { deleteNetns, listSandboxNetns } from './topology';

export interface TeardownReport { leftovers: string[]; removed: string[] }

/** Whether anything of a sandbox exists (to tell "stale remains" from "nothing there"). */
export function sandboxRemains(l: Layout, cgroup2Root: string): string[] {
  const found: string[] = [];
  if (fs.existsSync(l.clusterFile)) found.push(l.clusterFile);
  const ns = listSandboxNetns();
  if (ns.length) found.push(`${ns.length} network namespace(s) (${ns.slice(0, 3).join(', ')}${ns.length > 3 ? ', ...' : ''})`);
  if (fs.existsSync(sandboxCgroupRoot(cgroup2Root))) found.push(sandboxCgroupRoot(cgroup2Root));
  if (fs.existsSync(BPF_PIN_ROOT)) found.push(BPF_PIN_ROOT);
  for (const e of STATE_ENTRIES) if (fs.existsSync(path.join(l.dir, e))) { found.push(l.dir); break; }
  return found;
}

/** Daemons to stop gracefully: recorded ones still in our subtree, plus anything in a
 * node's nodemesh-node cgroup (whatever sits in our cgroups is ours). */
function daemonProcesses(l: Layout, cgRoot: string): ProcessRef[] {
  const refs = new Map<number, ProcessRef>();
  const ours = (pid: number): boolean => (processCgroup(pid) ?? '').includes(`/${SANDBOX_CGROUP_NAME}/`);
  for (const n of readCluster(l)?.nodes ?? []) if (n.daemon && ours(n.daemon.pid)) refs.set(n.daemon.pid, n.daemon);
  let nodes: string[] = [];
  try { nodes = fs.readdirSync(cgRoot); } catch { /* no subtree */ }
  for (const n of nodes) {
    for (const pid of cgroupPids(path.join(cgRoot, n, 'nodemesh-node'))) {
      const ref = processRef(pid);
      if (ref && !refs.has(pid)) refs.set(pid, ref);
    }
  }
  return [...refs.values()];
}

/** nodemesh-identity: the recorded process if still in our subtree, plus whatever sits in
 * its cgroup (a `local up` killed between starting it and recording it). */
function identityProcesses(l: Layout, cgRoot: string): ProcessRef[] {
  const refs = new Map<number, ProcessRef>();
  const rec = readCluster(l)?.identity?.process;
  if (rec && (processCgroup(rec.pid) ?? '').includes(`/${SANDBOX_CGROUP_NAME}/`)) refs.set(rec.pid, rec);
  for (const pid of cgroupPids(path.join(cgRoot, IDENTITY_CGROUP_NAME))) {
    const ref = processRef(pid);
    if (ref && !refs.has(pid)) refs.set(pid, ref);
  }
  return [...refs.values()];
}

/** keepLogs: leave `logs/` (a failed `local up` keeps them for diagnosis; the next up or
 * down removes them). */
/** The state dir of a live sandbox other than this one, if its daemons run in the shared
 * cgroup subtree (found through their NODEMESH_SANDBOX_OBJECTS). Remains that belong to a
 * running sandbox are not "stale". */
export function otherLiveSandbox(l: Layout, cgroup2Root: string): string | undefined {
  const cgRoot = sandboxCgroupRoot(cgroup2Root);
  for (const ref of [...daemonProcesses(l, cgRoot), ...identityProcesses(l, cgRoot)]) {
    let env = '';
    try { env = fs.readFileSync(`/proc/${ref.pid}/environ`, 'latin1'); } catch { continue; }
    const objects = env.split('\0').find((v) => v.startsWith('NODEMESH_SANDBOX_OBJECTS='))?.slice('NODEMESH_SANDBOX_OBJECTS='.length);
    if (!objects) continue;
    const dir = path.dirname(objects);
    if (path.resolve(dir) === path.resolve(l.dir)) continue;
    const other = readCluster(layout(dir));
    if (other && clusterIsLive(other)) return dir;
  }
  return undefined;
}

export async function teardown(l: Layout, cgroup2Root: string, log: (s: string) => void = () => undefined, opts: { keepLogs?: boolean } = {}): Promise<TeardownReport> {
  const report: TeardownReport = { leftovers: [], removed: [] };
  const cgRoot = sandboxCgroupRoot(cgroup2Root);

  // 1. Daemons and nodemesh-identity first and gently (SIGTERM, then SIGKILL after a grace
  //    period), together: the daemons do not need the CA to shut down.
  const daemons = daemonProcesses(l, cgRoot);
  const identity = identityProcesses(l, cgRoot);
  if (daemons.length || identity.length) {
    log(`stopping ${[daemons.length ? `${daemons.length} node daemon(s)` : '', identity.length ? 'nodemesh-identity' : ''].filter(Boolean).join(' and ')}`);
    await stopDaemons([...daemons, ...identity]);
  }
  // 2. Everything else in the subtree: pod processes, `local exec` sessions.
  if (fs.existsSync(cgRoot)) {
    if (!(await killCgroupTree(cgRoot))) report.leftovers.push(`processes in ${cgRoot}`);
  }
  // 3. eBPF pins (the daemons keep programs attached on SIGTERM; unpinning releases them).
  if (fs.existsSync(BPF_PIN_ROOT)) {
    try {
      fs.rmSync(BPF_PIN_ROOT, { recursive: true, force: true });
      report.removed.push(BPF_PIN_ROOT);
    } catch (e) {
      report.leftovers.push(`${BPF_PIN_ROOT} (${(e as Error).message})`);
    }
    try { fs.rmdirSync(path.dirname(BPF_PIN_ROOT)); } catch { /* not empty (another user) or gone */ }
  }
  // 4. cgroups, deepest first.
  if (fs.existsSync(cgRoot)) {
    const n = cgroupTreeBottomUp(cgRoot).length;
    const left = removeCgroupTree(cgRoot);
    report.leftovers.push(...left.map((d) => `cgroup ${d}`));
    if (left.length === 0) report.removed.push(`${n} cgroup(s) under ${cgRoot}`);
  }
  // 5. Network namespaces: pods, nodes, then the top one (veths go with them).
  const netns = listSandboxNetns();
  for (const ns of netns) if (!deleteNetns(ns)) report.leftovers.push(`netns ${ns}`);
  if (netns.length) report.removed.push(`${netns.length} network namespace(s)`);
  // 6. The state directory: only the entries a sandbox writes, then the directory if empty.
  if (fs.existsSync(l.dir)) {
    for (const e of STATE_ENTRIES) if (!(opts.keepLogs && e === 'logs')) fs.rmSync(path.join(l.dir, e), { recursive: true, force: true });
    for (const e of fs.readdirSync(l.dir)) if (/^\.cluster-[0-9a-f]+\.tmp$/.test(e)) fs.rmSync(path.join(l.dir, e), { force: true });
    try {
      fs.rmdirSync(l.dir);
      report.removed.push(l.dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && !(opts.keepLogs && code === 'ENOTEMPTY')) report.leftovers.push(`${l.dir} (holds files the sandbox did not write)`);
    }
    if (l.dir === DEFAULT_STATE_DIR) {
      try { fs.rmdirSync(path.dirname(l.dir)); } catch { /* in use or gone */ }
    }
  }
  // Check, do not assume.
  const still = listSandboxNetns();
  for (const ns of still) if (!report.leftovers.includes(`netns ${ns}`)) report.leftovers.push(`netns ${ns}`);
  if (fs.existsSync(cgRoot) && !report.leftovers.some((x) => x.startsWith('cgroup'))) report.leftovers.push(`cgroup ${cgRoot}`);
  return report;
}
