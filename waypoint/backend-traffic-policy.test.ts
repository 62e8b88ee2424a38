import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BackendTrafficPolicy, Resource } from '../daemon/state/resources';
import { buildSnapshot } from '../daemon/state/snapshot';
import { buildTrafficPolicyTable, convertTrafficPolicy, trafficPolicies } from './backend-traffic-policy';

const btp = (name: string, spec: BackendTrafficPolicy['spec'], created = '2026-01-01T00:00:00Z', namespace = 'shop'): BackendTrafficPolicy => ({
  apiVersion: 'policy.nodemesh.io/v1alpha1', kind: 'BackendTrafficPolicy', metadata: { name, namespace, generation: 2, creationTimestamp: created }, spec,
});
const SVC = (name: string) => ({ kind: 'Service' as const, name });

function snapshotWith(extra: Resource[]) {
  const svc = (name: string, labels: Record<string, string> = {}): Resource => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop', labels }, spec: { selector: { app: name }, ports: [{ port: 80 }] } });
  return buildSnapshot([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'nodemesh.io/use-waypoint': 'waypoint' } } },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'plain' } },
    svc('api'), svc('slow'), svc('direct', { 'nodemesh.io/use-waypoint': 'none' }),
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'db', namespace: 'plain' }, spec: { ports: [{ port: 5432 }] } },
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'api', namespace: 'shop' }, spec: { parentRefs: [{ group: '', kind: 'Service', name: 'api' }], rules: [] } },
    ...extra,
  ], 1);
}

test('conversion fills in Envoy\'s and Istio\'s defaults and turns durations into ms', () => {
  const p = convertTrafficPolicy(btp('p', {
    targetRefs: [SVC('api')], circuitBreaker: { maxPendingRequests: 1 }, outlierDetection: { baseEjectionTime: '1m30s' },
    faultInjection: { delay: { fixedDelay: '250ms' }, abort: { grpcStatus: 14, percentage: 12.5 } },
  }));
  assert.deepEqual(p.circuitBreaker, { maxConnections: 1024, maxPendingRequests: 1, maxParallelRequests: 1024, maxRequestsPerConnection: 1024 });
  assert.deepEqual(p.outlierDetection, { consecutive5xxErrors: 5, consecutiveGatewayErrors: 0, intervalMs: 10_000, baseEjectionMs: 90_000, maxEjectionPercent: 10 });
  assert.deepEqual(p.fault, { delay: { ms: 250, percentage: 100 }, abort: { grpcStatus: 14, percentage: 12.5 } });
  assert.deepEqual(p.problems, []);
  assert.equal(p.generation, 2);
  // what the schema would refuse never half-applies: it is a problem, and the policy is Invalid
  const bad = convertTrafficPolicy(btp('bad', { targetRefs: [SVC('api')], outlierDetection: { interval: '0s', baseEjectionTime: 'soon' } }));
  assert.deepEqual(bad.problems, ['spec.outlierDetection.baseEjectionTime: "soon" is not a Gateway API duration', 'spec.outlierDetection.interval: must be longer than 0']);
});

test('attachment: Services and routes, the oldest policy on a target wins, status says why for each target', () => {
  const s = snapshotWith([
    btp('newer', { targetRefs: [SVC('api')], circuitBreaker: { maxParallelRequests: 9 } }, '2026-02-01T00:00:00Z'),
    btp('older', { targetRefs: [SVC('api'), SVC('slow'), SVC('missing'), SVC('direct')], circuitBreaker: { maxParallelRequests: 1 } }, '2026-01-01T00:00:00Z'),
    btp('route-fault', { targetRefs: [{ kind: 'HTTPRoute', name: 'api' }, { kind: 'GRPCRoute', name: 'nope' }], faultInjection: { abort: { httpStatus: 503, percentage: 50 } } }),
    btp('elsewhere', { targetRefs: [SVC('db')], outlierDetection: {} }, '2026-01-01T00:00:00Z', 'plain'),
  ]);
  const t = buildTrafficPolicyTable(s);
  assert.equal(t.forService('shop/api')?.name, 'older');
  assert.equal(t.forService('shop/slow')?.circuitBreaker?.maxParallelRequests, 1);
  assert.equal(t.forService('shop/direct'), undefined);
  assert.equal(t.forService('plain/db'), undefined);
  assert.equal(t.forRoute('HTTPRoute', 'shop', 'api')?.name, 'route-fault');
  const status = Object.fromEntries(t.entries.map((e) => [e.policy.name, e.ancestors.map((a) => `${a.ancestorRef.kind}/${a.ancestorRef.name} ${a.condition.status} ${a.condition.reason}: ${a.condition.message}`)]));
  assert.deepEqual(status, {
    older: [
      'Service/api True Accepted: enforced by waypoint waypoint',
      'Service/slow True Accepted: enforced by waypoint waypoint',
      'Service/missing False TargetNotFound: Service shop/missing does not exist',
      'Service/direct False NoWaypoint: Service shop/direct has no waypoint; label it or its namespace nodemesh.io/use-waypoint=<gateway>',
    ],
    'route-fault': ['HTTPRoute/api True Accepted: enforced by waypoint waypoint', 'GRPCRoute/nope False TargetNotFound: GRPCRoute shop/nope does not exist'],
    newer: ['Service/api False Conflicted: BackendTrafficPolicy shop/older (older) already applies to Service shop/api'],
    elsewhere: ['Service/db False NoWaypoint: Service plain/db has no waypoint; label it or its namespace nodemesh.io/use-waypoint=<gateway>'],
  });
  const route = t.entries.find((e) => e.policy.name === 'route-fault')!.ancestors[0];
  assert.deepEqual(route.ancestorRef, { group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'api', namespace: 'shop' });
  assert.deepEqual(route.services, [{ namespace: 'shop', name: 'api' }]);
  assert.equal(route.condition.observedGeneration, 2);
});

test('an invalid policy is applied nowhere', () => {
  const t = buildTrafficPolicyTable(snapshotWith([btp('bad', { targetRefs: [SVC('api')], outlierDetection: { baseEjectionTime: 'soon' } })]));
  assert.equal(t.forService('shop/api'), undefined);
  assert.equal(t.entries[0].ancestors[0].condition.reason, 'Invalid');
});

test('the table is built once per snapshot', () => {
  const s = snapshotWith([]);
  assert.equal(trafficPolicies(s), trafficPolicies(s));
  assert.deepEqual(trafficPolicies(s).entries, []);
});
