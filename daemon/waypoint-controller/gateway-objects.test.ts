import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { classifyGateway, desiredWaypointObjects, owningGateway } from './gateway-objects';
import { defaultValues } from '../../installer/manifests/values';
import type { KubeObject } from './kube-object';

const gw = (spec: unknown, meta: Partial<KubeObject['metadata']> = {}): KubeObject =>
  ({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'waypoint', namespace: 'shop', uid: 'u-1', ...meta }, spec });

test('which Gateways are waypoints', () => {
  const cases: [string, KubeObject, ReturnType<typeof classifyGateway>][] = [
    ['our class', gw({ gatewayClassName: 'nodemesh-waypoint' }), { kind: 'waypoint' }],
    ['another class', gw({ gatewayClassName: 'istio-waypoint' }), { kind: 'other-class', className: 'istio-waypoint' }],
    ['no class', gw({}), { kind: 'malformed', reason: 'spec.gatewayClassName missing' }],
    ['no spec', gw(undefined), { kind: 'malformed', reason: 'spec.gatewayClassName missing' }],
    ['class not a string', gw({ gatewayClassName: 7 }), { kind: 'malformed', reason: 'spec.gatewayClassName missing' }],
    ['no uid (cannot own)', gw({ gatewayClassName: 'nodemesh-waypoint' }, { uid: undefined }), { kind: 'malformed', reason: 'metadata.uid missing' }],
  ];
  for (const [name, g, want] of cases) assert.deepEqual(classifyGateway(g), want, name);
});

test('desired objects: the installer template, in the Gateway namespace, owned by it', () => {
  const objs = desiredWaypointObjects(defaultValues(), gw({ gatewayClassName: 'nodemesh-waypoint' }));
  assert.deepEqual(objs.map((o) => `${o.apiVersion}/${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`),
    ['v1/ServiceAccount shop/waypoint', 'v1/ConfigMap shop/waypoint-ca-root', 'v1/Secret shop/waypoint-caller-statement-key', 'apps/v1/Deployment shop/waypoint', 'v1/Service shop/waypoint',
      'rbac.authorization.k8s.io/v1/ClusterRoleBinding /nodemesh-waypoint:shop:waypoint']);
  // Cluster-scoped: no owner reference to a namespaced Gateway (the API's garbage collector
  // would never resolve it); its labels name the Gateway.
  assert.equal(objs[5].metadata.ownerReferences, undefined);
  assert.equal(owningGateway(objs[5]), 'shop/waypoint');
  for (const o of objs.slice(0, 5)) {
    assert.deepEqual(o.metadata.ownerReferences, [{ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', name: 'waypoint', uid: 'u-1', controller: true }]);
    assert.equal(owningGateway(o), 'shop/waypoint');
  }
  assert.equal(objs[3].spec.template.spec.serviceAccountName, 'waypoint');
  // Never captured by the node daemons: it speaks HBONE itself.
  assert.equal(objs[3].spec.template.metadata.labels['nodemesh.io/dataplane-mode'], 'none');
  assert.equal(objs[3].spec.selector.matchLabels['nodemesh.io/dataplane-mode'], undefined);
});

test('only objects the controller made have an owning Gateway', () => {
  const [, , , d] = desiredWaypointObjects(defaultValues(), gw({ gatewayClassName: 'nodemesh-waypoint' }));
  const cases: [string, KubeObject, string | undefined][] = [
    ['made by the controller', d, 'shop/waypoint'],
    ['no owner reference', { ...d, metadata: { ...d.metadata, ownerReferences: undefined } }, undefined],
    ['owned, not as controller', { ...d, metadata: { ...d.metadata, ownerReferences: [{ ...d.metadata.ownerReferences![0], controller: false }] } }, undefined],
    ['another component', { ...d, metadata: { ...d.metadata, labels: { ...d.metadata.labels, 'app.kubernetes.io/component': 'api' } } }, undefined],
  ];
  for (const [name, o, want] of cases) assert.equal(owningGateway(o), want, name);
});
