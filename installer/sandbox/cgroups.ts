// cgroup v2 for the sandbox: one subtree `<cgroup2 root>/nodemesh-sandbox/`, a cgroup per
// node (the daemon's eBPF programs attach there), `pods/<ns>_<pod>` and `nodemesh-node`
// below it. Everything in the subtree is ours, which is what makes cleanup safe: kill by
// cgroup, remove bottom-up.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InstallerErrors } from '../errors';
import { sleep } from './host';

export const SANDBOX_CGROUP_NAME = 'nodemesh-sandbox';

/** Unescapes the octal escapes mountinfo uses for spaces and the like. */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The cgroup2 mount point, from mountinfo text (pure: takes the text). */
export function cgroup2RootFromMountinfo(mountinfo: string): string | undefined {
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(' ')[0];
    if (fstype !== 'cgroup2') continue;
    const fields = line.slice(0, sep).split(' ');
    if (fields[3] !== '/') continue; // a bind mount of a sub-cgroup: not the root
    return unescapeMountPath(fields[4]!);
  }
  return undefined;
}

export function detectCgroup2Root(mountinfoPath = '/proc/self/mountinfo'): string {
  let text = '';
  try {
    text = fs.readFileSync(mountinfoPath, 'utf8');
  } catch { /* reported below */ }
  const root = cgroup2RootFromMountinfo(text);
  if (!root) throw InstallerErrors.NODEMESH_E_SANDBOX_NO_CGROUP2({ mountinfo: mountinfoPath });
  return root;
}

export function sandboxCgroupRoot(cgroup2Root: string): string {
  return path.join(cgroup2Root, SANDBOX_CGROUP_NAME);
}

export function createCgroup(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
}

/** Moves a process into a cgroup. */
export function moveToCgroup(dir: string, pid: number): void {
  fs.writeFileSync(path.join(dir, 'cgroup.procs'), `${pid}\n`);
}

export function cgroupPids(dir: string): number[] {
  try {
    return fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Whether the cgroup or any descendant still has a process (cgroup.events "populated"). */
export function isPopulated(dir: string): boolean {
  try {
    return /^populated 1$/m.test(fs.readFileSync(path.join(dir, 'cgroup.events'), 'utf8'));
  } catch {
    return false;
  }
}

/** Every cgroup below (and including) dir, deepest first. */
export function cgroupTreeBottomUp(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(path.join(d, e.name));
    out.push(d);
  };
  if (fs.existsSync(dir)) walk(dir);
  return out;
}

/** SIGKILLs every process in the subtree (cgroup.kill, Linux 5.14+; else one by one), and
 * waits until it is empty. Only call this on cgroups the sandbox created. */
export async function killCgroupTree(dir: string, timeoutMs = 5000): Promise<boolean> {
  if (!fs.existsSync(dir)) return true;
  try {
    fs.writeFileSync(path.join(dir, 'cgroup.kill'), '1\n');
  } catch {
    for (const d of cgroupTreeBottomUp(dir)) {
      for (const pid of cgroupPids(d)) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
  }
  const deadline = Date.now() + timeoutMs;
  while (isPopulated(dir)) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

/** rmdir the subtree deepest first; returns the cgroups that could not be removed. */
export function removeCgroupTree(dir: string): string[] {
  const left: string[] = [];
  for (const d of cgroupTreeBottomUp(dir)) {
    try {
      fs.rmdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') left.push(d);
    }
  }
  return left;
}
