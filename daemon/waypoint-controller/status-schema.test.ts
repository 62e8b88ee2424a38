// The statuses the controller writes, validated against the Gateway API's own schemas (the
// @kubernetes-models/gateway-api models: required fields, enums, patterns, list bounds), so
// a real API server with the real CRDs accepts them. The integration test serves the kinds
// with open schemas; this is where the shapes are held to the spec.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Gateway } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/Gateway';
import { GatewayClass } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GatewayClass';
import { HTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';
import { GRPCRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1alpha2/GRPCRoute';
import { gatewayClassStatus, gatewayStatus } from './gateway-status';
import { routeParentStatuses } from './route-parent-status';
import type { KubeObject } from './kube-object';

const NOW = '2026-01-01T00:00:00Z';

test('Gateway and GatewayClass statuses match the Gateway API schema', () => {
  const spec = { gatewayClassName: 'nodemesh-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }, { name: 'http', port: 80, protocol: 'HTTP' }] };
  const gw: KubeObject = { metadata: { name: 'wp', namespace: 'shop', generation: 1 }, spec };
  const dep: KubeObject = { metadata: { name: 'wp' }, status: { availableReplicas: 1 } };
  const svc: KubeObject = { metadata: { name: 'wp' }, spec: { clusterIP: '10.96.0.20' } };
  for (const [d, s] of [[undefined, undefined], [dep, undefined], [dep, svc]] as const) {
    const status = gatewayStatus(gw, d, s, NOW);
    assert.doesNotThrow(() => new Gateway({ metadata: { name: 'wp', namespace: 'shop' }, spec, status } as never).validate());
  }
  const gc: KubeObject = { metadata: { name: 'nodemesh-waypoint', generation: 1 }, spec: { controllerName: 'nodemesh.io/waypoint-controller' } };
  const gcStatus = gatewayClassStatus(gc, NOW)!;
  assert.doesNotThrow(() => new GatewayClass({ metadata: { name: 'nodemesh-waypoint' }, spec: gc.spec, status: gcStatus } as never).validate());
});

test('route status.parents match the Gateway API schema (HTTPRoute v1, GRPCRoute)', () => {
  const spec = { parentRefs: [{ group: '', kind: 'Service', name: 'api', port: 80 }], rules: [{ backendRefs: [{ name: 'api-v1', port: 80 }] }] };
  const svc = (name: string): KubeObject => ({ metadata: { name, namespace: 'shop', labels: { 'nodemesh.io/use-waypoint': 'wp' } } });
  for (const withWaypoint of [true, false]) {
    const r = routeParentStatuses({ metadata: { name: 'api', namespace: 'shop', generation: 1 }, spec }, {
      service: (_ns, name) => svc(name),
      namespace: () => undefined,
      gateway: (ns, name) => (withWaypoint ? { metadata: { name, namespace: ns }, spec: { gatewayClassName: 'nodemesh-waypoint' } } : undefined),
    }, NOW);
    assert.equal(r.kind, 'parents');
    if (r.kind !== 'parents') return;
    const status = { parents: r.parents };
    assert.doesNotThrow(() => new HTTPRoute({ metadata: { name: 'api', namespace: 'shop' }, spec, status } as never).validate());
    assert.doesNotThrow(() => new GRPCRoute({ metadata: { name: 'api', namespace: 'shop' }, spec, status } as never).validate());
  }
});
