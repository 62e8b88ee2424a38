// Where cgroup v2 is mounted on this host. Never assume: a hybrid host has it at
// /sys/fs/cgroup/unified beside v1 controllers, a modern one at /sys/fs/cgroup.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DatapathErrors } from '../errors';

export const CGROUP2_SUPER_MAGIC = 0x63677270;
export const BPF_FS_MAGIC = 0xcafe4a11;

/** Undoes mountinfo's octal escapes (\040 for a space, ...). */
function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * The cgroup2 mount point in mountinfo text (pure). Prefers a mount of the hierarchy's root
 * ("/" in field 4); a container without a cgroup namespace may only see a sub-tree mounted,
 * which is still where its cgroup2 lives.
 */
export function cgroup2MountFromMountinfo(text: string): string | undefined {
  let fallback: string | undefined;
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    if (line.slice(sep + 3).split(' ')[0] !== 'cgroup2') continue;
    const fields = line.slice(0, sep).split(' ');
    if (fields.length < 5) continue;
    const mountPoint = unescapeMountinfo(fields[4]);
    if (fields[3] === '/') return mountPoint;
    fallback ??= mountPoint;
  }
  return fallback;
}

/** The cgroup2 mount point of this process's mount namespace. */
export function detectCgroup2Root(mountinfoPath = '/proc/self/mountinfo'): string {
  let text = '';
  try {
    text = fs.readFileSync(mountinfoPath, 'utf8');
  } catch (cause) {
    throw DatapathErrors.NODEMESH_E_NO_CGROUP2_MOUNT({ mountinfo: mountinfoPath }, { cause });
  }
  const root = cgroup2MountFromMountinfo(text);
  if (root === undefined) throw DatapathErrors.NODEMESH_E_NO_CGROUP2_MOUNT({ mountinfo: mountinfoPath });
  return root;
}

/** True when dir is a directory on a cgroup2 filesystem. */
export function isCgroup2Dir(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory() && fs.statfsSync(dir).type === CGROUP2_SUPER_MAGIC;
  } catch {
    return false;
  }
}

/** The cgroup v2 path of a process from its /proc/<pid>/cgroup text (pure): the `0::` line,
 * relative to the cgroup2 root ('/nodemesh-sandbox/node-1/nodemesh-node'). */
export function cgroupPathFromProcCgroup(text: string): string | undefined {
  const line = text.split('\n').find((l) => l.startsWith('0::'));
  return line === undefined ? undefined : line.slice(3).trim() || '/';
}

/** The cgroup v2 id of a cgroup directory: the kernel's id is the directory's inode number,
 * which is what bpf_get_current_cgroup_id() returns for tasks in it. */
export function cgroupIdOf(dir: string): bigint {
  return fs.statSync(dir, { bigint: true }).ino;
}

/** The cgroup v2 directory this process runs in. */
export function ownCgroupDir(procCgroup = '/proc/self/cgroup', mountinfo = '/proc/self/mountinfo'): string {
  let rel: string | undefined;
  try {
    rel = cgroupPathFromProcCgroup(fs.readFileSync(procCgroup, 'utf8'));
  } catch (cause) {
    throw DatapathErrors.NODEMESH_E_NO_CGROUP2_MOUNT({ mountinfo: procCgroup }, { cause });
  }
  if (rel === undefined) throw DatapathErrors.NODEMESH_E_NO_CGROUP2_MOUNT({ mountinfo: procCgroup });
  return path.join(detectCgroup2Root(mountinfo), rel);
}
