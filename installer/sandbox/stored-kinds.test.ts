import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { resourceLabel, storedKindRole } from './stored-kinds';

test('storedKindRole: workloads run, what mesh components read is kept, the rest is stored and not acted on', () => {
  const cases: [string, string, string][] = [
    ['apps/v1', 'Deployment', 'workload'],
    ['apps/v1', 'ReplicaSet', 'workload'],
    ['v1', 'ServiceAccount', 'kept'],
    ['v1', 'ConfigMap', 'kept'],
    ['v1', 'Secret', 'kept'],
    ['gateway.networking.k8s.io/v1', 'HTTPRoute', 'kept'],
    ['gateway.networking.k8s.io/v1alpha2', 'GRPCRoute', 'kept'],
    ['networking.nodemesh.io/v1alpha1', 'ResiliencePolicy', 'kept'],
    ['policy.nodemesh.io/v1alpha1', 'BackendTrafficPolicy', 'kept'],
    ['batch/v1', 'CronJob', 'not-acted-on'],
    ['apps/v1', 'DaemonSet', 'not-acted-on'],
    ['example.io/v1', 'Thing', 'not-acted-on'],
    ['evilnodemesh.io/v1', 'Thing', 'not-acted-on'],
  ];
  for (const [apiVersion, kind, role] of cases) assert.equal(storedKindRole({ apiVersion, kind }), role, `${apiVersion} ${kind}`);
});

test('resourceLabel: kubectl style, with the group', () => {
  assert.equal(resourceLabel({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop' } }), 'deployment.apps/shop/web');
  assert.equal(resourceLabel({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'shop' } }), 'configmap/shop/c');
  assert.equal(resourceLabel({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'w' } }), 'gatewayclass.gateway.networking.k8s.io/w');
});
