import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { checkNodeBinding } from './node-binding';
import { buildSnapshot } from '../state/snapshot';
import type { Pod } from '../state/resources';

function pod(ns: string, name: string, sa: string | undefined, node: string | undefined, phase: NonNullable<Pod['status']>['phase'] = 'Running'): Pod {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns },
    spec: { nodeName: node, serviceAccountName: sa, containers: [{ name: 'app' }] }, status: { phase },
  };
}

const snapshot = buildSnapshot([
  pod('shop', 'api-1', 'api', 'node-a'),
  pod('shop', 'api-2', 'api', 'node-b'),
  pod('shop', 'web-1', 'web', 'node-b'),
  pod('shop', 'plain-1', undefined, 'node-a'), // serviceAccountName defaults to "default"
  pod('shop', 'new-1', 'new', 'node-a', 'Pending'),
  pod('shop', 'done-1', 'done', 'node-a', 'Succeeded'),
  pod('shop', 'dead-1', 'dead', 'node-a', 'Failed'),
  pod('shop', 'unscheduled-1', 'floating', undefined, 'Pending'),
  pod('other', 'api-1', 'api', 'node-c'),
], 1);

const cases: { name: string; node: string; ns: string; sa: string; allowed: boolean; pod?: string; elsewhere?: number }[] = [
  { name: 'pod on the node', node: 'node-a', ns: 'shop', sa: 'api', allowed: true, pod: 'shop/api-1' },
  { name: 'same SA on two nodes: each node gets it', node: 'node-b', ns: 'shop', sa: 'api', allowed: true, pod: 'shop/api-2' },
  { name: 'pod only on another node', node: 'node-a', ns: 'shop', sa: 'web', allowed: false, elsewhere: 1 },
  { name: 'default service account', node: 'node-a', ns: 'shop', sa: 'default', allowed: true, pod: 'shop/plain-1' },
  { name: 'Pending pod counts (it is starting)', node: 'node-a', ns: 'shop', sa: 'new', allowed: true, pod: 'shop/new-1' },
  { name: 'Succeeded pod does not', node: 'node-a', ns: 'shop', sa: 'done', allowed: false, elsewhere: 0 },
  { name: 'Failed pod does not', node: 'node-a', ns: 'shop', sa: 'dead', allowed: false, elsewhere: 0 },
  { name: 'unscheduled pod binds to no node', node: 'node-a', ns: 'shop', sa: 'floating', allowed: false, elsewhere: 1 },
  { name: 'namespace must match', node: 'node-c', ns: 'shop', sa: 'api', allowed: false, elsewhere: 2 },
  { name: 'other namespace, its own node', node: 'node-c', ns: 'other', sa: 'api', allowed: true, pod: 'other/api-1' },
  { name: 'unknown node', node: 'node-z', ns: 'shop', sa: 'api', allowed: false, elsewhere: 2 },
];

for (const c of cases) {
  test(`node binding: ${c.name}`, () => {
    const d = checkNodeBinding(snapshot, c.node, c.ns, c.sa);
    assert.equal(d.allowed, c.allowed);
    if (d.allowed) assert.equal(d.pod, c.pod);
    else {
      assert.equal(d.elsewhere, c.elsewhere);
      assert.match(d.reason, new RegExp(`namespace ${c.ns} with serviceAccountName ${c.sa} is scheduled on node ${c.node}`));
    }
  });
}
