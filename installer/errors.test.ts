import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { DaemonErrors } from '../daemon/errors';
import { InstallerErrors, NodemeshError } from './errors';

test('installer codes are NODEMESH_E_SANDBOX_*, _MANIFEST_*, _CLI_* or _KUBE_*, and none is the daemon\'s', () => {
  const daemon = new Set<string>(DaemonErrors.codes as string[]);
  for (const code of InstallerErrors.codes as string[]) {
    assert.match(code, /^NODEMESH_E_(SANDBOX|MANIFEST|CLI|KUBE)_[A-Z0-9_]+$/);
    assert.ok(!daemon.has(code), `${code} is also a daemon code`);
  }
});

test('errors carry their code and say what to do', () => {
  const e = InstallerErrors.NODEMESH_E_SANDBOX_MISSING_TOOL({ tool: 'nft', pkg: 'nftables' });
  assert.ok(NodemeshError.is(e, 'NODEMESH_E_SANDBOX_MISSING_TOOL'));
  assert.match(e.message, /apt-get install nftables/);
  assert.match(InstallerErrors.NODEMESH_E_SANDBOX_NOT_ROOT(undefined).message, /root/);
});
