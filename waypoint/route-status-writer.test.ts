import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readObject, writeObject } from '../daemon/sources/object-directory';
import { buildSnapshot } from '../daemon/state/snapshot';
import { buildRouteTable } from './route-table';
import { writeRouteStatuses } from './route-status-writer';
import { httpRoute } from './route-test-kit';

test('route status is written for parents this waypoint serves, and only when it changed', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodemesh-route-status-'));
  try {
    const route = httpRoute('split', [{ backendRefs: [{ name: 'api', port: 80 }] }]);
    writeObject(dir, route as never);
    const snap = buildSnapshot([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'nodemesh.io/use-waypoint': 'waypoint' } } },
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'api', namespace: 'shop' }, spec: { clusterIP: '10.96.0.10', ports: [{ port: 80 }] } },
    ], 1);
    const table = buildRouteTable([route], snap, '2026-01-01T00:00:00Z');
    assert.deepEqual(writeRouteStatuses(dir, table.entries, () => true), ['HTTPRoute/shop/split']);
    const stored = readObject(dir, 'HTTPRoute', 'shop', 'split') as unknown as { apiVersion: string; kind: string; metadata: object; status: { parents: { conditions: { type: string; status: string }[] }[] } };
    assert.deepEqual(stored.status.parents[0].conditions.map((c) => [c.type, c.status]), [['Accepted', 'True'], ['ResolvedRefs', 'True']]);
    const again = buildRouteTable([stored], snap, '2026-01-02T00:00:00Z', table);
    assert.deepEqual(writeRouteStatuses(dir, again.entries, () => true), []);
    assert.deepEqual(writeRouteStatuses(dir, table.entries, () => false), []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
