import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { gatewayClassStatus, gatewayStatus } from './gateway-status';
import type { KubeObject } from './kube-object';

const NOW = '2026-01-01T00:00:10Z';
const BEFORE = '2026-01-01T00:00:00Z';
const MESH = [{ name: 'mesh', port: 15008, protocol: 'HBONE' }];
const gw = (status?: unknown, listeners: unknown[] = MESH): KubeObject => ({ metadata: { name: 'wp', namespace: 'shop', generation: 3 }, spec: { gatewayClassName: 'nodemesh-waypoint', listeners }, status });
const dep = (availableReplicas?: number): KubeObject => ({ metadata: { name: 'wp', namespace: 'shop' }, status: { availableReplicas } });
const svc = (clusterIP?: string): KubeObject => ({ metadata: { name: 'wp', namespace: 'shop' }, spec: { clusterIP } });

test('Programmed follows the Deployment and the Service address', () => {
  const cases: [string, KubeObject | undefined, KubeObject | undefined, [string, string], string[]][] = [
    ['nothing yet', undefined, undefined, ['False', 'Pending'], []],
    ['Deployment without available replicas', dep(0), svc('10.96.0.20'), ['False', 'Pending'], ['10.96.0.20']],
    ['Deployment status empty', dep(undefined), svc('10.96.0.20'), ['False', 'Pending'], ['10.96.0.20']],
    ['available, no Service', dep(1), undefined, ['False', 'AddressNotAssigned'], []],
    ['available, headless Service', dep(1), svc('None'), ['False', 'AddressNotAssigned'], []],
    ['available with an address', dep(1), svc('10.96.0.20'), ['True', 'Programmed'], ['10.96.0.20']],
  ];
  for (const [name, d, s, [status, reason], addrs] of cases) {
    const st = gatewayStatus(gw(), d, s, NOW);
    const accepted = st.conditions.find((c) => c.type === 'Accepted')!;
    const programmed = st.conditions.find((c) => c.type === 'Programmed')!;
    assert.deepEqual([accepted.status, accepted.reason, accepted.observedGeneration], ['True', 'Accepted', 3], name);
    assert.deepEqual([programmed.status, programmed.reason, programmed.observedGeneration], [status, reason, 3], name);
    assert.deepEqual(st.addresses, addrs.map((value) => ({ type: 'IPAddress', value })), name);
    const [mesh] = st.listeners;
    assert.deepEqual([mesh.name, mesh.attachedRoutes], ['mesh', 0], name);
    assert.deepEqual(mesh.conditions.map((c) => [c.type, c.status, c.reason]),
      [['Accepted', 'True', 'Accepted'], ['Programmed', status, status === 'True' ? 'Programmed' : 'Pending'], ['ResolvedRefs', 'True', 'ResolvedRefs']], name);
  }
});

test('listeners other than HBONE are not accepted', () => {
  const cases: [string, unknown[], [string, string]][] = [
    ['HBONE only', MESH, ['True', 'Accepted']],
    ['no listeners', [], ['True', 'Accepted']],
    ['one HTTP listener next to HBONE', [...MESH, { name: 'http', port: 80, protocol: 'HTTP' }], ['True', 'ListenersNotValid']],
    ['HTTP only', [{ name: 'http', port: 80, protocol: 'HTTP' }], ['False', 'ListenersNotValid']],
  ];
  for (const [name, listeners, accepted] of cases) {
    const st = gatewayStatus(gw(undefined, listeners), dep(1), svc('10.96.0.20'), NOW);
    assert.deepEqual([st.conditions[0].status, st.conditions[0].reason], accepted, name);
    for (const l of st.listeners) {
      const a = l.conditions.find((c) => c.type === 'Accepted')!;
      assert.deepEqual([a.status, a.reason], l.name === 'mesh' ? ['True', 'Accepted'] : ['False', 'UnsupportedProtocol'], `${name}: ${l.name}`);
    }
  }
});

test('lastTransitionTime moves only when a condition changes status', () => {
  const previous = { conditions: [
    { type: 'Accepted', status: 'True', reason: 'Accepted', message: '', lastTransitionTime: BEFORE },
    { type: 'Programmed', status: 'False', reason: 'Pending', message: '', lastTransitionTime: BEFORE },
  ] };
  const st = gatewayStatus(gw(previous), dep(1), svc('10.96.0.20'), NOW);
  assert.equal(st.conditions[0].lastTransitionTime, BEFORE);
  assert.equal(st.conditions[1].lastTransitionTime, NOW);
});

test('GatewayClass: accepted only when it names this controller', () => {
  const gc = (controllerName: string): KubeObject => ({ metadata: { name: 'nodemesh-waypoint', generation: 1 }, spec: { controllerName } });
  const ours = gatewayClassStatus(gc('nodemesh.io/waypoint-controller'), NOW);
  assert.deepEqual(ours?.conditions.map((c) => [c.type, c.status, c.reason]), [['Accepted', 'True', 'Accepted']]);
  assert.equal(gatewayClassStatus(gc('istio.io/mesh-controller'), NOW), undefined);
});
