// What EbpfDatapath decides before touching the kernel: configuration, pin names and the
// preflight errors. The kernel behaviour itself is tested in test/e2e/kernel-path.test.ts.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { NodemeshError } from '../errors';
import { BPF_FS_MAGIC } from './cgroup';
import { EbpfDatapath, uidPinName } from './ebpf-datapath';

const logger = { info() {}, warn() {}, error() {}, debug() {} };

describe('uidPinName', () => {
  it('keeps plain uids readable', () => {
    assert.equal(uidPinName('0c5b4c3e-9f7b-4e0f-8b53-5b9f1e2f7a10'), '0c5b4c3e-9f7b-4e0f-8b53-5b9f1e2f7a10');
    assert.equal(uidPinName('shop/api-1'), 'shop%2fapi-1');
  });
  it('never produces a dot or a slash (bpffs refuses dots in names)', () => {
    for (const uid of ['.', '..', 'a.b/c', 'ns/ü', '%2f']) assert.doesNotMatch(uidPinName(uid), /[./]/, uid);
  });
  it('is collision-free on escapes', () => {
    assert.notEqual(uidPinName('a/b'), uidPinName('a%2fb'));
    assert.notEqual(uidPinName('a.b'), uidPinName('a%2eb'));
  });
  it('hashes names too long for a file name', () => {
    const long = `ns/${'x'.repeat(300)}`;
    assert.match(uidPinName(long), /^%h[0-9a-f]{64}$/);
    assert.notEqual(uidPinName(long), uidPinName(`${long}y`));
  });
});

describe('EbpfDatapath configuration and preflight', () => {
  it('refuses relative or empty paths and bad ports', () => {
    const ok = { pinRoot: '/sys/fs/bpf/nodemesh', cgroupPath: '/sys/fs/cgroup', logger };
    for (const bad of [{ ...ok, pinRoot: 'rel' }, { ...ok, cgroupPath: '' }, { ...ok, excludeOutboundPorts: [0] }, { ...ok, excludeOutboundPorts: [70000] }]) {
      assert.throws(() => new EbpfDatapath(bad), (e: unknown) => NodemeshError.is(e, 'NODEMESH_E_CONFIG'));
    }
    assert.ok(new EbpfDatapath(ok));
  });

  it('refuses enrol before start', async () => {
    const dp = new EbpfDatapath({ pinRoot: '/sys/fs/bpf/nodemesh-unit', cgroupPath: '/sys/fs/cgroup', logger });
    await assert.rejects(dp.enrol({ uid: 'x', netnsPath: '/proc/self/ns/net', netnsCookie: 1n, ips: ['10.0.0.1'], inboundListenerFd: 0 }),
      (e: unknown) => NodemeshError.is(e));
    assert.equal(dp.takeOriginalDestination(1n, 1, 4), undefined);
    assert.equal(dp.status().kind, 'ebpf');
  });

  it('start() fails with the catalogue error for the first missing prerequisite', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nm-dp-'));
    try {
      const dp = new EbpfDatapath({ pinRoot: path.join(tmp, 'pins', 'node-1'), cgroupPath: tmp, logger });
      const expected = process.getuid?.() !== 0 ? 'NODEMESH_E_NOT_ROOT'
        : !fs.existsSync('/sys/kernel/btf/vmlinux') ? 'NODEMESH_E_NO_BTF' : 'NODEMESH_E_BPFFS_NOT_MOUNTED';
      await assert.rejects(dp.start(), (e: unknown) => NodemeshError.is(e, expected));
      assert.ok(!fs.existsSync(path.join(tmp, 'pins')), 'nothing created before the checks pass');
      let bpffs = false;
      try { bpffs = fs.statfsSync('/sys/fs/bpf').type === BPF_FS_MAGIC; } catch { /* not mounted */ }
      if (process.getuid?.() === 0 && bpffs) {
        const dp2 = new EbpfDatapath({ pinRoot: '/sys/fs/bpf/nodemesh-unit-never-created', cgroupPath: tmp, logger });
        await assert.rejects(dp2.start(), (e: unknown) => NodemeshError.is(e, 'NODEMESH_E_NO_CGROUP2'));
        assert.ok(!fs.existsSync('/sys/fs/bpf/nodemesh-unit-never-created'));
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
