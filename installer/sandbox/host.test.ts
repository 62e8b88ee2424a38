import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isAlive, isBpffsMounted, processRef, processStartTime, tool } from './host';

test('processRef recognises this process; a changed start time is another process', () => {
  const me = processRef(process.pid);
  assert.ok(me && /^\d+$/.test(me.startTime));
  assert.equal(isAlive(me), true);
  assert.equal(isAlive({ pid: process.pid, startTime: '1' }), false, 'same pid, other start time: a reused pid');
  assert.equal(processStartTime(2 ** 22 + 1), undefined);
  assert.equal(isAlive(undefined), false);
});

test('a missing tool names its package', () => {
  assert.throws(() => tool('nft-definitely-not-installed'), (e: unknown) => {
    const err = e as { code?: string; message: string };
    return err.code === 'NODEMESH_E_SANDBOX_MISSING_TOOL' && /apt-get install nft-definitely-not-installed/.test(err.message);
  });
});

test('isBpffsMounted reads mountinfo', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodemesh-host-test-'));
  try {
    const f = path.join(dir, 'mountinfo');
    fs.writeFileSync(f, '43 23 0:39 / /sys/fs/bpf rw,relatime - bpf bpf rw\n');
    assert.equal(isBpffsMounted('/sys/fs/bpf', f), true);
    fs.writeFileSync(f, '31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n');
    assert.equal(isBpffsMounted('/sys/fs/bpf', f), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
