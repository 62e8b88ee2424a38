import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { cgroup2RootFromMountinfo } from './cgroups';

test('cgroup2RootFromMountinfo: hybrid host (cgroup2 at /sys/fs/cgroup/unified)', () => {
  const text = [
    '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
    '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
    '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
  ].join('\n');
  assert.equal(cgroup2RootFromMountinfo(text), '/sys/fs/cgroup/unified');
});

test('cgroup2RootFromMountinfo: unified host, optional fields, escaped spaces', () => {
  assert.equal(cgroup2RootFromMountinfo('29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate'), '/sys/fs/cgroup');
  assert.equal(cgroup2RootFromMountinfo('29 23 0:26 / /mnt/cg\\040two rw - cgroup2 none rw'), '/mnt/cg two');
});

test('cgroup2RootFromMountinfo: a bind mount of a sub-cgroup is not the root; none at all is undefined', () => {
  assert.equal(cgroup2RootFromMountinfo('50 23 0:26 /kubepods /host/cg rw - cgroup2 cgroup2 rw'), undefined);
  assert.equal(cgroup2RootFromMountinfo('31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw'), undefined);
});
