// The waypoint pod's command and the profiling flags it may be given (pure parts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waypointGateway, waypointNodeArgs, waypointPod } from './waypoints';

test('waypointNodeArgs: profiling flags only; anything else is refused, naming it', () => {
  assert.deepEqual(waypointNodeArgs(undefined), []);
  assert.deepEqual(waypointNodeArgs('  --cpu-prof   --cpu-prof-dir=/tmp/wp --cpu-prof-interval=500 '), ['--cpu-prof', '--cpu-prof-dir=/tmp/wp', '--cpu-prof-interval=500']);
  assert.deepEqual(waypointNodeArgs('--heap-prof --heap-prof-name=wp.heapprofile'), ['--heap-prof', '--heap-prof-name=wp.heapprofile']);
  for (const bad of ['--inspect', '--require=/tmp/x.js', '--cpu-prof-dir', '-e', '--cpu-profx']) {
    assert.throws(() => waypointNodeArgs(`--cpu-prof ${bad}`), new RegExp(`NODEMESH_SANDBOX_WAYPOINT_NODE_ARGS takes only .*got "${bad}"`), bad);
  }
});

test('waypointPod: the flags go between node and the waypoint script', () => {
  const cmd = waypointPod(waypointGateway('shop', 'waypoint'), '/repo', ['--cpu-prof']).spec.containers[0]!.command!;
  assert.deepEqual(cmd, [process.execPath, '--cpu-prof', '/repo/dist/waypoint/main.js']);
  assert.deepEqual(waypointPod(waypointGateway('shop', 'waypoint'), '/repo').spec.containers[0]!.command, [process.execPath, '/repo/dist/waypoint/main.js']);
});
