import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, DecideContext } from './decide';
import { PowerOfTwoChoices } from './balancer';
import { buildSnapshot } from '../state/snapshot';
import type { Resource } from '../state/resources';

const pod = (name: string, node: string, ip: string, ns = 'shop', labels: Record<string, string> = {}): Resource => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, uid: name, labels },
  spec: { nodeName: node, serviceAccountName: name, containers: [{ name: 'c' }] }, status: { phase: 'Running', podIP: ip },
});
const resources: Resource[] = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'nodemesh.io/dataplane-mode': 'ambient' } } },
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'legacy' } },
  pod('web', 'node-1', '10.244.1.2'),
  pod('api', 'node-2', '10.244.2.2', 'shop', { app: 'api' }),
  pod('cache', 'node-1', '10.244.1.3'),
  pod('old', 'node-2', '10.244.2.9', 'legacy', { app: 'old' }),
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'api', namespace: 'shop' },
    spec: { selector: { app: 'api' }, clusterIP: '10.96.0.10', ports: [{ port: 80, targetPort: 8080 }] } },
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'empty', namespace: 'shop' },
    spec: { selector: { app: 'none' }, clusterIP: '10.96.0.11', ports: [{ port: 80 }] } },
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'old', namespace: 'legacy' },
    spec: { selector: { app: 'old' }, clusterIP: '10.96.0.12', ports: [{ port: 80, targetPort: 8080 }] } },
];
const snap = buildSnapshot(resources, 1);
const web = snap.workloads.get('web')!;
const to = (address: string, port: number) => ({ family: 4 as const, address, port });
const ctx: DecideContext = { node: 'node-1', trustDomain: 'cluster.local', picker: new PowerOfTwoChoices(() => 0) };

test('decide: a table of destinations', () => {
  const cases: [string, string, number, string, string?][] = [
    ['VIP of a meshed service on another node: HBONE to the endpoint', '10.96.0.10', 80, 'hbone'],
    ['VIP, port not on the service', '10.96.0.10', 81, 'deny', 'unknown-service-port'],
    ['VIP without endpoints', '10.96.0.11', 80, 'deny', 'no-endpoints'],
    ['VIP of an un-meshed service: plain TCP to the endpoint', '10.96.0.12', 80, 'passthrough'],
    ['meshed pod IP on another node', '10.244.2.2', 8080, 'hbone'],
    ['meshed pod IP on this node: local path', '10.244.1.3', 6379, 'local'],
    ['un-meshed pod IP', '10.244.2.9', 8080, 'passthrough'],
    ['address outside the cluster', '192.0.2.1', 443, 'passthrough'],
    ['mesh port', '10.244.2.2', 15008, 'deny', 'mesh-port'],
  ];
  for (const [name, ip, port, kind, reason] of cases) {
    const d = decide(snap, web, to(ip, port), ctx);
    assert.equal(d.kind, kind, name);
    if (d.kind === 'deny') assert.equal(d.reason, reason, name);
  }
  const viaVip = decide(snap, web, to('10.96.0.10', 80), ctx);
  assert.ok(viaVip.kind === 'hbone');
  assert.deepEqual(viaVip.target, to('10.244.2.2', 15008));
  assert.deepEqual(viaVip.authority, to('10.244.2.2', 8080), ':authority is the endpoint and its target port');
  assert.deepEqual(viaVip.expectedServerIds, ['spiffe://cluster.local/ns/shop/sa/api']);
  assert.equal(viaVip.service?.name, 'api');
  const legacy = decide(snap, web, to('10.96.0.12', 80), ctx);
  assert.ok(legacy.kind === 'passthrough');
  assert.deepEqual(legacy.target, to('10.244.2.9', 8080), 'the VIP is resolved here, not left to kube-proxy');
  const retry = decide(snap, web, to('10.96.0.10', 80), { ...ctx, exclude: new Set(['10.244.2.2:8080']) });
  assert.equal(retry.kind === 'deny' && retry.reason, 'no-healthy-endpoint');
});

test('power of two choices prefers the less loaded endpoint', () => {
  const rolls = [0, 0];
  const p = new PowerOfTwoChoices(() => rolls.shift() ?? 0);
  const eps = [{ workloadUid: 'a', ip: '1.1.1.1', ports: new Map() }, { workloadUid: 'b', ip: '2.2.2.2', ports: new Map() }];
  const done = p.track('1.1.1.1');
  assert.equal(p.pick(eps)?.ip, '2.2.2.2');
  done();
  rolls.push(0, 0);
  assert.equal(p.pick(eps)?.ip, '1.1.1.1');
  assert.equal(p.pick([eps[0]])?.ip, '1.1.1.1');
  assert.equal(p.pick([]), undefined);
});

test('decide: Services bound to a waypoint go to the waypoint with the VIP as :authority', () => {
  const withWaypoint: Resource[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'nodemesh.io/dataplane-mode': 'ambient', 'nodemesh.io/use-waypoint': 'waypoint' } } },
    ...resources.slice(1).filter((r) => r.kind !== 'Service' || r.metadata.name !== 'empty'),
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'opted-out', namespace: 'shop', labels: { 'nodemesh.io/use-waypoint': 'none' } },
      spec: { selector: { app: 'api' }, clusterIP: '10.96.0.20', ports: [{ port: 80, targetPort: 8080 }] } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'other-wp', namespace: 'legacy', labels: { 'nodemesh.io/use-waypoint': 'legacy-wp' } },
      spec: { selector: { app: 'old' }, clusterIP: '10.96.0.21', ports: [{ port: 80, targetPort: 8080 }] } },
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'waypoint-0', namespace: 'shop', uid: 'waypoint-0', labels: { 'gateway.networking.k8s.io/gateway-name': 'waypoint', 'nodemesh.io/dataplane-mode': 'none' } },
      spec: { nodeName: 'node-1', serviceAccountName: 'waypoint', containers: [{ name: 'w' }] }, status: { phase: 'Running', podIP: '10.244.1.9' } },
  ];
  const s = buildSnapshot(withWaypoint, 2);
  const d = decide(s, s.workloads.get('web')!, to('10.96.0.10', 80), ctx);
  assert.ok(d.kind === 'hbone');
  assert.deepEqual(d.target, to('10.244.1.9', 15008), 'even on the same node: the waypoint is reached over HBONE');
  assert.deepEqual(d.authority, to('10.96.0.10', 80), ':authority is the Service VIP and port');
  assert.deepEqual(d.expectedServerIds, ['spiffe://cluster.local/ns/shop/sa/waypoint']);
  assert.deepEqual(d.waypoint, { namespace: 'shop', name: 'waypoint' });
  // The waypoint's own connections are never sent back to it.
  const fromWaypoint = decide(s, s.workloads.get('waypoint-0')!, to('10.96.0.10', 80), ctx);
  assert.ok(fromWaypoint.kind === 'hbone' && fromWaypoint.waypoint === undefined);
  assert.deepEqual(fromWaypoint.target, to('10.244.2.2', 15008));
  // use-waypoint=none on the Service opts it out; pod IPs are not affected.
  const optedOut = decide(s, s.workloads.get('web')!, to('10.96.0.20', 80), ctx);
  assert.ok(optedOut.kind === 'hbone' && optedOut.waypoint === undefined);
  assert.ok(decide(s, s.workloads.get('web')!, to('10.244.2.2', 8080), ctx).kind === 'hbone');
  // A waypoint that does not run: refused (fail closed), never bypassed.
  const missing = decide(s, s.workloads.get('web')!, to('10.96.0.21', 80), ctx);
  assert.equal(missing.kind === 'deny' && missing.reason, 'no-waypoint');
  // Without the label nothing changes (the table above is the same snapshot shape).
  const plain = decide(snap, web, to('10.96.0.10', 80), ctx);
  assert.ok(plain.kind === 'hbone' && plain.waypoint === undefined);
});
