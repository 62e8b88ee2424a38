import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { DAEMON_NODE_FLAGS } from './node-flags';
import { daemonCommand } from '../installer/sandbox/daemons';
import { NODE_COMMAND, nodePodSpec } from '../installer/manifests/node-daemonset';
import { defaultValues } from '../installer/manifests/values';

test('this node accepts the daemon flags (a typo would stop every daemon at start)', () => {
  const r = spawnSync(process.execPath, [...DAEMON_NODE_FLAGS, '-e', '0'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
});

test('the sandbox daemon and the DaemonSet run main.js with the daemon flags', () => {
  const sandbox = daemonCommand('/repo', {});
  assert.deepEqual(sandbox.argv, [process.execPath, ...DAEMON_NODE_FLAGS, '/repo/dist/daemon/main.js']);
  assert.deepEqual(NODE_COMMAND, ['node', ...DAEMON_NODE_FLAGS, '/opt/nodemesh/dist/daemon/main.js']);
  assert.deepEqual(nodePodSpec(defaultValues()).containers[0]!.command, NODE_COMMAND);
  // A development stand-in is run as given.
  assert.deepEqual(daemonCommand('/repo', { NODEMESH_DAEMON_COMMAND: '/bin/x --y' }).argv, ['/bin/x', '--y']);
});
