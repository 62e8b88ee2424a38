import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { NodemeshError } from '../errors';
import { cgroup2MountFromMountinfo, cgroupIdOf, cgroupPathFromProcCgroup, detectCgroup2Root, ownCgroupDir } from './cgroup';

const HYBRID = [
  '25 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw',
  '31 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755',
  '32 31 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate',
  '33 31 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd',
].join('\n');

const UNIFIED = '35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot';

describe('cgroup2 detection', () => {
  it('finds the hybrid layout mount', () => assert.equal(cgroup2MountFromMountinfo(HYBRID), '/sys/fs/cgroup/unified'));
  it('finds the unified layout mount', () => assert.equal(cgroup2MountFromMountinfo(UNIFIED), '/sys/fs/cgroup'));
  it('prefers the hierarchy root over a sub-tree mount', () => {
    const sub = '40 24 0:30 /kubepods /host/kubepods rw - cgroup2 cgroup2 rw';
    assert.equal(cgroup2MountFromMountinfo(`${sub}\n${UNIFIED}`), '/sys/fs/cgroup');
    assert.equal(cgroup2MountFromMountinfo(sub), '/host/kubepods');
  });
  it('unescapes mount points', () => {
    assert.equal(cgroup2MountFromMountinfo('40 24 0:30 / /mnt/cg\\040two rw - cgroup2 none rw'), '/mnt/cg two');
  });
  it('reports a missing cgroup2 with the catalogue error', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nm-cg-'));
    const f = path.join(dir, 'mountinfo');
    fs.writeFileSync(f, HYBRID.split('\n').filter((l) => !l.includes('cgroup2')).join('\n'));
    try {
      assert.throws(() => detectCgroup2Root(f), (e: unknown) => NodemeshError.is(e, 'NODEMESH_E_NO_CGROUP2_MOUNT'));
      assert.throws(() => detectCgroup2Root(path.join(dir, 'absent')), (e: unknown) => NodemeshError.is(e, 'NODEMESH_E_NO_CGROUP2_MOUNT'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('own cgroup', () => {
  it('reads the v2 line of /proc/<pid>/cgroup (hybrid and unified)', () => {
    assert.equal(cgroupPathFromProcCgroup('12:memory:/x\n1:name=systemd:/y\n0::/nodemesh-sandbox/node-1/nodemesh-node\n'), '/nodemesh-sandbox/node-1/nodemesh-node');
    assert.equal(cgroupPathFromProcCgroup('0::/\n'), '/');
    assert.equal(cgroupPathFromProcCgroup('4:cpu:/a\n'), undefined);
  });
  it('the id of this process\'s cgroup is its directory\'s inode', () => {
    const dir = ownCgroupDir();
    assert.ok(fs.existsSync(dir), dir);
    assert.equal(cgroupIdOf(dir), fs.statSync(dir, { bigint: true }).ino);
    assert.ok(cgroupIdOf(dir) > 0n);
  });
});
