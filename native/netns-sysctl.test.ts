import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { loadNative } from './index';

describe('native addon: writeNetSysctlInNetns', () => {
  const n = loadNative();
  it('refuses names outside /proc/sys/net and empty values, with usage text', () => {
    for (const [name, value] of [['../../kernel/hostname', 'x'], ['/ipv4/tcp_migrate_req', '1'], ['ipv4/tcp_migrate_req', ''], ['ipv4/Tcp', '1'], ['ipv4/x y', '1']]) {
      assert.throws(() => n.writeNetSysctlInNetns('/proc/self/ns/net', name, value), (e: unknown) => e instanceof TypeError && /usage: writeNetSysctlInNetns/.test(e.message), name);
    }
  });
  it('reports errno errors with code and syscall', () => {
    assert.throws(() => n.writeNetSysctlInNetns('/nonexistent/netns', 'ipv4/tcp_migrate_req', '1'), (e: unknown) => {
      assert.equal((e as NodeJS.ErrnoException).code, 'ENOENT');
      assert.equal((e as NodeJS.ErrnoException).syscall, 'open');
      return true;
    });
  });
});
