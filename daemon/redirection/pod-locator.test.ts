// The pod locator against fixture trees of real node layouts (test/fixtures/pod-locator/:
// each a fake root with /proc/self/mountinfo, the cgroup tree and /proc/<pid>/{comm,ns/net}).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { NodemeshError } from '../errors';
import { PodLocator, cgroupMountsFromMountinfo, isPodCgroupName, podCgroupCandidates } from './pod-locator';

const FIXTURES = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'pod-locator');
const root = (name: string) => path.join(FIXTURES, name);

test('pod locator: finds the netns and cgroup for each driver, runtime and QoS class', () => {
  const cases: { name: string; tree: string; uid: string; pid: number; cgroup: string }[] = [
    { name: 'systemd + containerd, Burstable: the pause process is chosen', tree: 'systemd-containerd', uid: '6f1d2c3a-1111-4c5d-9e8f-0a1b2c3d4e5f', pid: 4242,
      cgroup: 'sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6f1d2c3a_1111_4c5d_9e8f_0a1b2c3d4e5f.slice' },
    { name: 'systemd + containerd, Guaranteed (no QoS level)', tree: 'systemd-containerd', uid: '7a2b3c4d-2222-4e5f-8a9b-1c2d3e4f5a6b', pid: 5100,
      cgroup: 'sys/fs/cgroup/kubepods.slice/kubepods-pod7a2b3c4d_2222_4e5f_8a9b_1c2d3e4f5a6b.slice' },
    { name: 'systemd + containerd, BestEffort: pause preferred over the app listed first', tree: 'systemd-containerd', uid: '8b3c4d5e-3333-4f6a-9b8c-2d3e4f5a6b7c', pid: 5201,
      cgroup: 'sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod8b3c4d5e_3333_4f6a_9b8c_2d3e4f5a6b7c.slice' },
    { name: 'systemd + CRI-O: conmon (host netns) is skipped', tree: 'systemd-crio', uid: 'b1c2d3e4-6666-4c9d-8e0f-5a6b7c8d9e0f', pid: 701,
      cgroup: 'sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podb1c2d3e4_6666_4c9d_8e0f_5a6b7c8d9e0f.slice' },
    { name: 'cgroupfs + containerd on a hybrid host (v1 hierarchy)', tree: 'cgroupfs-containerd-hybrid', uid: 'c2d3e4f5-7777-4d0e-9f1a-6b7c8d9e0f1a', pid: 801,
      cgroup: 'sys/fs/cgroup/systemd/kubepods/besteffort/podc2d3e4f5-7777-4d0e-9f1a-6b7c8d9e0f1a' },
    { name: 'cgroupfs, Guaranteed', tree: 'cgroupfs-containerd-hybrid', uid: 'd3e4f5a6-8888-4e1f-8a2b-7c8d9e0f1a2b', pid: 810,
      cgroup: 'sys/fs/cgroup/systemd/kubepods/podd3e4f5a6-8888-4e1f-8a2b-7c8d9e0f1a2b' },
    { name: 'kubelet with its own cgroup root (kind): found by the bounded search', tree: 'systemd-nested-root', uid: 'e4f5a6b7-9999-4f2a-9b3c-8d9e0f1a2b3c', pid: 950,
      cgroup: 'sys/fs/cgroup/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pode4f5a6b7_9999_4f2a_9b3c_8d9e0f1a2b3c.slice' },
  ];
  for (const c of cases) {
    const loc = new PodLocator({ root: root(c.tree) }).locate(c.uid);
    assert.equal(loc.pid, c.pid, c.name);
    assert.equal(loc.netnsPath, path.join(root(c.tree), 'proc', String(c.pid), 'ns', 'net'), c.name);
    assert.equal(loc.cgroupPath, path.join(root(c.tree), c.cgroup), c.name);
  }
});

test('pod locator: the host\'s /proc mounted elsewhere (the DaemonSet\'s /host/proc)', () => {
  const loc = new PodLocator({ root: root('systemd-crio'), procDir: '/host/proc' }).locate('b1c2d3e4-6666-4c9d-8e0f-5a6b7c8d9e0f');
  assert.equal(loc.pid, 701);
  assert.equal(loc.netnsPath, path.join(root('systemd-crio'), 'host', 'proc', '701', 'ns', 'net'));
});

test('pod locator: pods that are not (yet) there are reported with the reason, never a crash', () => {
  const cases: { name: string; tree: string; uid: string; reason: RegExp }[] = [
    { name: 'unknown pod', tree: 'systemd-containerd', uid: '00000000-0000-4000-8000-000000000000', reason: /no cgroup for this pod/ },
    { name: 'containers not started', tree: 'systemd-containerd', uid: 'aaaa0000-5555-4b8c-9d0e-4f5a6b7c8d9e', reason: /has no processes yet/ },
    { name: 'host-network pod', tree: 'systemd-containerd', uid: '9c4d5e6f-4444-4a7b-8c9d-3e4f5a6b7c8d', reason: /network namespace of its own/ },
    { name: 'not a UID (path tricks)', tree: 'systemd-containerd', uid: '../../etc', reason: /not a UID/ },
    { name: 'no cgroup mount', tree: 'does-not-exist', uid: '6f1d2c3a-1111-4c5d-9e8f-0a1b2c3d4e5f', reason: /no cgroup filesystem/ },
  ];
  for (const c of cases) {
    assert.throws(() => new PodLocator({ root: root(c.tree) }).locate(c.uid, 'shop/web'), (e: unknown) =>
      NodemeshError.is(e, 'NODEMESH_E_POD_SANDBOX_NOT_FOUND') && c.reason.test(e.message) && e.message.includes('shop/web'), c.name);
  }
});

test('pod locator: a located pod stays valid while its process lives in its cgroup', () => {
  const l = new PodLocator({ root: root('systemd-containerd') });
  const loc = l.locate('6f1d2c3a-1111-4c5d-9e8f-0a1b2c3d4e5f');
  assert.equal(l.stillValid(loc), true);
  assert.equal(l.stillValid({ ...loc, pid: 5100 }), false, 'a process of another pod');
  assert.equal(l.stillValid({ ...loc, pid: 999999 }), false, 'a process that exited');
});

test('cgroup mounts: cgroup2 first (also at /sys/fs/cgroup/unified), then v1 hierarchies', () => {
  const hybrid = [
    '25 22 0:23 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755',
    '26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate',
    '27 25 0:25 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd',
    '28 25 0:26 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids',
  ].join('\n');
  assert.deepEqual(cgroupMountsFromMountinfo(hybrid), ['/sys/fs/cgroup/unified', '/sys/fs/cgroup/systemd', '/sys/fs/cgroup/pids']);
  assert.deepEqual(cgroupMountsFromMountinfo('25 22 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw'), ['/sys/fs/cgroup']);
  assert.deepEqual(cgroupMountsFromMountinfo(''), []);
});

test('pod cgroup names for both drivers', () => {
  const uid = '6f1d2c3a-1111-4c5d-9e8f-0a1b2c3d4e5f';
  assert.ok(podCgroupCandidates(uid).includes('kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6f1d2c3a_1111_4c5d_9e8f_0a1b2c3d4e5f.slice'));
  assert.ok(podCgroupCandidates(uid).includes('kubepods/besteffort/pod6f1d2c3a-1111-4c5d-9e8f-0a1b2c3d4e5f'));
  assert.equal(isPodCgroupName('kubepods-pod6f1d2c3a_1111_4c5d_9e8f_0a1b2c3d4e5f.slice', uid), true);
  assert.equal(isPodCgroupName(`pod${uid}`, uid), true);
  assert.equal(isPodCgroupName(`pod${uid}x`, uid), false);
});
