// From a pod's UID to its network namespace and cgroup on a real node (hostPID). The
// kubelet names every pod's cgroup after its UID; under it, one cgroup per container (the
// pause sandbox included) holds that container's processes, which all share the pod's
// network namespace. So: find the pod's cgroup, read cgroup.procs of its containers, and
// take /proc/<pid>/ns/net of one of them (the pause process when we can tell).
//
// Layouts covered (cgroup v2, or the v1 hierarchies on hybrid hosts):
//   systemd driver:  kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid with _>.slice/
//                      cri-containerd-<id>.scope | crio-<id>.scope | docker-<id>.scope
//   cgroupfs driver: kubepods/burstable/pod<uid>/<container id>
//   QoS: Guaranteed pods sit directly under kubepods, Burstable and BestEffort in their own level.
// `root` prefixes every path so tests run against fixture trees; `procDir` is where the host's
// processes are visible (the DaemonSet mounts the host's /proc at /host/proc; with hostPID the
// container's own /proc shows them too). The cgroup mounts come from this process's own
// /proc/self/mountinfo, since the DaemonSet mounts the host's cgroup tree into the container.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KubeSourceErrors } from '../errors';
import { cgroup2MountFromMountinfo } from './cgroup';

export interface PodLocation {
  /** /proc/<pid>/ns/net of a process of the pod. */
  readonly netnsPath: string;
  /** The pod-level cgroup directory. */
  readonly cgroupPath: string;
  readonly pid: number;
}

const QOS_CLASSES = ['', 'burstable', 'besteffort'] as const;
/** Bounds the fallback search for kubelets with a custom cgroup root. */
const SEARCH_MAX_DEPTH = 5;
const SEARCH_MAX_DIRS = 20000;

/** Every cgroup mount point in mountinfo text (pure): the cgroup2 one first, then v1 hierarchies. */
export function cgroupMountsFromMountinfo(text: string): string[] {
  const out: string[] = [];
  const v2 = cgroup2MountFromMountinfo(text);
  if (v2 !== undefined) out.push(v2);
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0 || line.slice(sep + 3).split(' ')[0] !== 'cgroup') continue;
    const fields = line.slice(0, sep).split(' ');
    if (fields.length < 5 || fields[3] !== '/') continue;
    const mp = fields[4].replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (!out.includes(mp)) out.push(mp);
  }
  return out;
}

/** Where a pod's cgroup is under a cgroup mount, for both drivers and every QoS class (pure). */
export function podCgroupCandidates(uid: string): string[] {
  const systemdUid = uid.replace(/-/g, '_');
  const out: string[] = [];
  for (const qos of QOS_CLASSES) {
    out.push(qos
      ? `kubepods.slice/kubepods-${qos}.slice/kubepods-${qos}-pod${systemdUid}.slice`
      : `kubepods.slice/kubepods-pod${systemdUid}.slice`);
    out.push(qos ? `kubepods/${qos}/pod${uid}` : `kubepods/pod${uid}`);
  }
  return out;
}

/** Whether a cgroup directory name is this pod's (either driver). */
export function isPodCgroupName(name: string, uid: string): boolean {
  const systemdUid = uid.replace(/-/g, '_');
  return name === `pod${uid}` || (name.endsWith(`-pod${systemdUid}.slice`));
}

/** Container cgroups whose processes are not the pod's: CRI-O's conmon runs in the host's
 * network namespace beside the pod's containers. */
function isContainerCgroup(name: string): boolean {
  return !name.includes('conmon');
}

const UID_RE = /^[0-9a-fA-F-]{1,64}$/;

export class PodLocator {
  private mounts: string[] | undefined;

  private readonly procDir: string;

  constructor(private readonly opts: { root?: string; procDir?: string; mountinfo?: string } = {}) {
    this.procDir = opts.procDir ? this.p(opts.procDir) : this.p('proc');
  }

  private p(...parts: string[]): string {
    return path.join(this.opts.root ?? '/', ...parts);
  }

  private proc(pid: number, ...parts: string[]): string {
    return path.join(this.procDir, String(pid), ...parts);
  }

  /** cgroup mounts of this mount namespace, as paths we can read (cached once found). */
  cgroupMounts(): string[] {
    if (this.mounts) return this.mounts;
    let text: string;
    try {
      text = fs.readFileSync(this.opts.mountinfo ?? this.p('proc', 'self', 'mountinfo'), 'utf8');
    } catch {
      return [];
    }
    const found = cgroupMountsFromMountinfo(text).map((m) => this.p(m));
    if (found.length > 0) this.mounts = found;
    return found;
  }

  /** The pod's cgroup directory, or undefined when it does not exist (yet). */
  findPodCgroup(uid: string): string | undefined {
    for (const mount of this.cgroupMounts()) {
      for (const c of podCgroupCandidates(uid)) {
        const dir = path.join(mount, c);
        if (isDir(dir)) return dir;
      }
    }
    for (const mount of this.cgroupMounts()) {
      const dir = searchPodCgroup(mount, uid);
      if (dir) return dir;
    }
    return undefined;
  }

  /** Throws NODEMESH_E_POD_SANDBOX_NOT_FOUND with the reason when the pod is not (yet) here. */
  locate(uid: string, podName = uid): PodLocation {
    const fail = (reason: string) => KubeSourceErrors.NODEMESH_E_POD_SANDBOX_NOT_FOUND({ pod: podName, uid, reason });
    if (!UID_RE.test(uid)) throw fail('the pod UID is not a UID');
    if (this.cgroupMounts().length === 0) throw fail(`no cgroup filesystem in ${this.opts.mountinfo ?? this.p('proc', 'self', 'mountinfo')}`);
    const cgroup = this.findPodCgroup(uid);
    if (!cgroup) throw fail('no cgroup for this pod under kubepods (not started yet, or another node\'s pod)');
    const pids = this.podPids(cgroup);
    if (pids.length === 0) throw fail(`its cgroup ${cgroup} has no processes yet`);
    const hostNet = this.netnsId(1);
    let best: { pid: number; pause: boolean } | undefined;
    for (const pid of pids) {
      const ns = this.netnsId(pid);
      if (ns === undefined || (hostNet !== undefined && ns === hostNet)) continue;
      const pause = this.comm(pid) === 'pause';
      if (!best || (pause && !best.pause)) best = { pid, pause };
      if (pause) break;
    }
    if (!best) throw fail(`none of its processes (${pids.slice(0, 5).join(', ')}) has a network namespace of its own (a host-network pod, or processes that exited)`);
    return { netnsPath: this.proc(best.pid, 'ns', 'net'), cgroupPath: cgroup, pid: best.pid };
  }

  /** Whether a located pod is still there: its process lives and is still in that cgroup. */
  stillValid(loc: PodLocation): boolean {
    return this.netnsId(loc.pid) !== undefined && this.podPids(loc.cgroupPath).includes(loc.pid);
  }

  private podPids(cgroup: string): number[] {
    const pids: number[] = [];
    let entries: fs.Dirent[] = [];
    try {
      entries = fs.readdirSync(cgroup, { withFileTypes: true });
    } catch {
      return pids;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.isDirectory() && isContainerCgroup(e.name)) pids.push(...readProcs(path.join(cgroup, e.name)));
    }
    pids.push(...readProcs(cgroup));
    return [...new Set(pids)];
  }

  /** The netns identity (`net:[inode]`) of a process, undefined when it is gone. */
  private netnsId(pid: number): string | undefined {
    try {
      return fs.readlinkSync(this.proc(pid, 'ns', 'net'));
    } catch {
      return undefined;
    }
  }

  private comm(pid: number): string | undefined {
    try {
      return fs.readFileSync(this.proc(pid, 'comm'), 'utf8').trim();
    } catch {
      return undefined;
    }
  }
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function readProcs(dir: string): number[] {
  try {
    return fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').map((l) => Number(l.trim()))
      .filter((n) => Number.isInteger(n) && n > 0);
  } catch {
    return [];
  }
}

/** Breadth-first, bounded: kubelets configured with another cgroup root (kind's
 * kubelet.slice/kubelet-kubepods.slice, --cgroup-root) put kubepods deeper. */
function searchPodCgroup(mount: string, uid: string): string | undefined {
  let level = [mount];
  let visited = 0;
  for (let depth = 0; depth < SEARCH_MAX_DEPTH && level.length > 0; depth++) {
    const next: string[] = [];
    for (const dir of level) {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        continue;
      }
      for (const e of entries) {
        if (!e.isDirectory()) continue;
        if (++visited > SEARCH_MAX_DIRS) return undefined;
        if (isPodCgroupName(e.name, uid)) return path.join(dir, e.name);
        // Only descend where pods live, not into every service of the host.
        if (/kube|pod|burstable|besteffort|kubelet/.test(e.name)) next.push(path.join(dir, e.name));
      }
    }
    level = next;
  }
  return undefined;
}
