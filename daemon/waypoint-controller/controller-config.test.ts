import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { loadWaypointControllerConfig } from './controller-config';
import { NodemeshError } from '../errors';

const BASE = { trustDomain: 'example.org', logLevel: 'info' };

test('waypoint controller configuration from the environment', () => {
  const c = loadWaypointControllerConfig({ NODEMESH_IMAGE_REPOSITORY: 'registry.local/mesh', NODEMESH_VERSION: '1.2.3', NODEMESH_IMAGE_PULL_POLICY: 'Always', POD_NAME: 'nodemesh-identity-abc' }, BASE);
  assert.equal(c.enabled, true);
  assert.deepEqual([c.values.imageRepository, c.values.version, c.values.imagePullPolicy, c.values.trustDomain], ['registry.local/mesh', '1.2.3', 'Always', 'example.org']);
  assert.match(c.identity, /^nodemesh-identity-abc_[0-9a-f]{8}$/);
  assert.notEqual(loadWaypointControllerConfig({ POD_NAME: 'p' }, BASE).identity, loadWaypointControllerConfig({ POD_NAME: 'p' }, BASE).identity);
  assert.equal(loadWaypointControllerConfig({ NODEMESH_WAYPOINT_CONTROLLER: 'off' }, BASE).enabled, false);
});

test('a bad value names the variable', () => {
  const cases: [Record<string, string>, string][] = [
    [{ NODEMESH_WAYPOINT_CONTROLLER: 'yes' }, 'NODEMESH_WAYPOINT_CONTROLLER'],
    [{ NODEMESH_IMAGE_REPOSITORY: 'Registry/UPPER:tag' }, 'NODEMESH_IMAGE_REPOSITORY'],
    [{ NODEMESH_VERSION: 'no spaces' }, 'NODEMESH_VERSION'],
    [{ NODEMESH_IMAGE_PULL_POLICY: 'Sometimes' }, 'NODEMESH_IMAGE_PULL_POLICY'],
  ];
  for (const [env, field] of cases) {
    assert.throws(() => loadWaypointControllerConfig(env, BASE), (e: unknown) => NodemeshError.is(e, 'NODEMESH_E_CONFIG') && e.message.includes(field), field);
  }
});
