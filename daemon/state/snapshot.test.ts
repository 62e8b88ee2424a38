import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSnapshot, enrolmentOf, workloadsOnNode } from './snapshot';
import type { Namespace, Pod, Resource, Service } from './resources';

const ns = (name: string, labels: Record<string, string> = {}): Namespace =>
  ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
const pod = (namespace: string, name: string, o: Partial<{ labels: Record<string, string>; ip: string; node: string; phase: Pod['status'] extends infer S ? S extends { phase?: infer P } ? P : never : never; ports: { name: string; containerPort: number }[] }> = {}): Pod => ({
  apiVersion: 'v1', kind: 'Pod',
  metadata: { name, namespace, uid: `uid-${namespace}-${name}`, labels: o.labels ?? {} },
  spec: { nodeName: o.node ?? 'node-1', containers: [{ name: 'c', command: ['x'], ports: o.ports }] },
  status: { phase: o.phase ?? 'Running', podIP: o.ip ?? '10.244.1.2' },
});
const svc = (namespace: string, name: string, vip: string, selector: Record<string, string>, ports: Service['spec']['ports']): Service =>
  ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: { selector, clusterIP: vip, ports } });

test('enrolment: pod label wins over namespace label', () => {
  const cases: [string, Record<string, string>, Record<string, string>, boolean, string][] = [
    ['namespace ambient', { 'nodemesh.io/dataplane-mode': 'ambient' }, {}, true, 'namespace-label'],
    ['pod opts out of ambient namespace', { 'nodemesh.io/dataplane-mode': 'ambient' }, { 'nodemesh.io/dataplane-mode': 'none' }, false, 'pod-label'],
    ['pod opts in, namespace not', {}, { 'nodemesh.io/dataplane-mode': 'ambient' }, true, 'pod-label'],
    ['nothing labelled', {}, {}, false, 'default'],
    ['unknown namespace value', { 'nodemesh.io/dataplane-mode': 'sidecar' }, {}, false, 'default'],
  ];
  for (const [name, nsLabels, podLabels, enrolled, by] of cases) {
    const r = enrolmentOf(pod('a', 'p', { labels: podLabels }), ns('a', nsLabels));
    assert.deepEqual(r, { enrolled, enrolledBy: by }, name);
  }
});

test('snapshot: services resolve endpoints by selector, named target ports, running pods only', () => {
  const resources: Resource[] = [
    ns('shop', { 'nodemesh.io/dataplane-mode': 'ambient' }),
    pod('shop', 'api-1', { labels: { app: 'api' }, ip: '10.244.1.5', ports: [{ name: 'http', containerPort: 8080 }] }),
    pod('shop', 'api-2', { labels: { app: 'api' }, ip: '10.244.2.5', node: 'node-2', ports: [{ name: 'http', containerPort: 8081 }] }),
    pod('shop', 'api-3', { labels: { app: 'api' }, ip: '10.244.2.6', node: 'node-2', phase: 'Pending' }),
    pod('other', 'api-x', { labels: { app: 'api' }, ip: '10.244.2.7' }),
    svc('shop', 'api', '10.96.0.10', { app: 'api' }, [{ port: 80, targetPort: 'http' }]),
  ];
  const s = buildSnapshot(resources, 7);
  assert.equal(s.version, 7);
  const api = s.servicesByVIP.get('10.96.0.10');
  assert.ok(api);
  assert.deepEqual(api.endpoints.map((e) => [e.ip, e.ports.get(80)]), [['10.244.1.5', 8080], ['10.244.2.5', 8081]]);
  assert.equal(s.workloadsByIP.get('10.244.2.6')?.name, 'api-3', 'pending pods are addressable');
  assert.equal(s.workloads.get('uid-shop-api-1')?.enrolled, true);
  assert.equal(s.workloads.get('uid-other-api-x')?.enrolled, false);
  assert.deepEqual(workloadsOnNode(s, 'node-2').map((w) => w.name), ['api-2', 'api-3']);
  assert.ok(Object.isFrozen(s));
});

// --- incremental updates ------------------------------------------------------------------

import { EMPTY_SNAPSHOT, Snapshot, SnapshotChange, applyChanges } from './snapshot';
import type { EndpointSlice, SliceEndpoint } from './resources';

const up = (resource: Resource): SnapshotChange => ({ op: 'upsert', resource });
const del = (kind: Resource['kind'], namespace: string | undefined, name: string): SnapshotChange => ({ op: 'delete', kind, namespace, name });
const ep = (ip: string, uid: string, conditions: SliceEndpoint['conditions'] = { ready: true }): SliceEndpoint =>
  ({ addresses: [ip], conditions, targetRef: { kind: 'Pod', namespace: 'shop', name: uid, uid } });
const slice = (name: string, service: string, endpoints: SliceEndpoint[], ports = [{ name: 'http', port: 8080 }]): EndpointSlice => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
  metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': service } }, addressType: 'IPv4', endpoints, ports,
});
const endpointsOf = (s: Snapshot, key: string) => s.services.get(key)?.endpoints.map((e) => `${e.ip}:${e.ports.get(80) ?? '-'}`);

test('incremental snapshot: endpoints follow EndpointSlices (ready, terminating, ports by name) as they change', () => {
  const web = svc('shop', 'web', '10.96.0.20', { app: 'web' }, [{ name: 'http', port: 80, targetPort: 'http' }]);
  const steps: { name: string; changes: SnapshotChange[]; endpoints: string[] | undefined; vip?: boolean }[] = [
    { name: 'service without slices has no endpoints', changes: [up(web)], endpoints: [], vip: true },
    { name: 'a slice with a ready endpoint', changes: [up(slice('web-a', 'web', [ep('10.244.1.5', 'p1')]))], endpoints: ['10.244.1.5:8080'] },
    { name: 'ready unset counts as ready (API conventions)', changes: [up(slice('web-b', 'web', [ep('10.244.2.5', 'p2', {})]))], endpoints: ['10.244.1.5:8080', '10.244.2.5:8080'] },
    { name: 'not ready: dropped, whatever the pod phase', changes: [up(slice('web-a', 'web', [ep('10.244.1.5', 'p1', { ready: false, serving: true })]))], endpoints: ['10.244.2.5:8080'] },
    { name: 'terminating: dropped', changes: [up(slice('web-b', 'web', [ep('10.244.2.5', 'p2', { ready: true, terminating: true })]))], endpoints: [] },
    { name: 'ports matched by name only', changes: [up(slice('web-b', 'web', [ep('10.244.2.5', 'p2')], [{ name: 'metrics', port: 9090 }]))], endpoints: ['10.244.2.5:-'] },
    { name: 'slice deleted', changes: [del('EndpointSlice', 'shop', 'web-b')], endpoints: [] },
    { name: 'same address in two slices counts once', changes: [up(slice('web-c', 'web', [ep('10.244.3.5', 'p3')])), up(slice('web-d', 'web', [ep('10.244.3.5', 'p3')]))], endpoints: ['10.244.3.5:8080'] },
    { name: 'a slice relabelled to another service leaves this one', changes: [up(slice('web-c', 'other', [ep('10.244.3.5', 'p3')])), del('EndpointSlice', 'shop', 'web-d')], endpoints: [] },
    { name: 'service deleted: gone, VIP free', changes: [del('Service', 'shop', 'web')], endpoints: undefined, vip: false },
    { name: 'service back: its slices still known', changes: [up(web), up(slice('web-e', 'web', [ep('10.244.4.5', 'p4')]))], endpoints: ['10.244.4.5:8080'], vip: true },
  ];
  let s = EMPTY_SNAPSHOT;
  for (const st of steps) {
    const before = s;
    const beforeEndpoints = endpointsOf(before, 'shop/web');
    s = applyChanges(s, st.changes, s.version + 1);
    assert.deepEqual(endpointsOf(s, 'shop/web'), st.endpoints, st.name);
    if (st.vip !== undefined) assert.equal(s.servicesByVIP.has('10.96.0.20'), st.vip, st.name);
    assert.deepEqual(endpointsOf(before, 'shop/web'), beforeEndpoints, `${st.name}: the previous snapshot is unchanged`);
    assert.ok(Object.isFrozen(s));
  }
});

test('incremental snapshot: pods added, updated, deleted; IPs, enrolment, owners, host network, runtime', () => {
  const ambient = ns('shop', { 'nodemesh.io/dataplane-mode': 'ambient' });
  const p1 = pod('shop', 'api-1', { ip: '10.244.1.5', labels: { app: 'api', 'pod-template-hash': '7d4b9c' } });
  p1.metadata.ownerReferences = [{ kind: 'ReplicaSet', name: 'api-7d4b9c', controller: true }];
  let s = applyChanges(EMPTY_SNAPSHOT, [up(ambient), up(p1)], 1);
  const uid = 'uid-shop-api-1';
  assert.equal(s.workloads.get(uid)?.enrolled, true);
  assert.deepEqual(s.workloads.get(uid)?.owner, { kind: 'Deployment', name: 'api' });
  assert.equal(s.workloadsByIP.get('10.244.1.5')?.name, 'api-1');

  // New IP: the old one no longer points at the pod.
  s = applyChanges(s, [up({ ...p1, status: { phase: 'Running', podIP: '10.244.1.6' } })], 2);
  assert.equal(s.workloadsByIP.has('10.244.1.5'), false);
  assert.equal(s.workloadsByIP.get('10.244.1.6')?.uid, uid);

  // The namespace label flips: enrolment follows, and the IP index holds the new workload.
  s = applyChanges(s, [up(ns('shop'))], 3);
  assert.equal(s.workloads.get(uid)?.enrolled, false);
  assert.equal(s.workloadsByIP.get('10.244.1.6')?.enrolled, false);

  // Two pods on one IP (a finished pod's IP reused): Running wins over Pending, in any order.
  const p2 = pod('shop', 'api-2', { ip: '10.244.1.6', phase: 'Pending' });
  const a = applyChanges(s, [up(p2)], 4);
  assert.equal(a.workloadsByIP.get('10.244.1.6')?.name, 'api-1');
  const b = applyChanges(applyChanges(EMPTY_SNAPSHOT, [up(p2)], 1), [up(ns('shop')), up({ ...p1, status: { phase: 'Running', podIP: '10.244.1.6' } })], 2);
  assert.equal(b.workloadsByIP.get('10.244.1.6')?.name, 'api-1');

  // Finished: no longer addressable, still known.
  s = applyChanges(a, [up({ ...p1, status: { phase: 'Succeeded', podIP: '10.244.1.6' } })], 5);
  assert.equal(s.workloadsByIP.get('10.244.1.6')?.name, 'api-2');

  // Deleted by name.
  s = applyChanges(s, [del('Pod', 'shop', 'api-2')], 6);
  assert.equal(s.workloads.has('uid-shop-api-2'), false);
  assert.equal(s.workloadsByIP.has('10.244.1.6'), false);

  // Recreated under the same name with a new UID (StatefulSet), the delete missed.
  const again = pod('shop', 'api-1', { ip: '10.244.1.7' });
  again.metadata.uid = 'uid-new';
  s = applyChanges(s, [up(again)], 7);
  assert.deepEqual([...s.workloads.keys()], ['uid-new']);

  // Host network: never enrolled, never addressed by IP (the node's address).
  const hostNet = pod('shop', 'agent', { ip: '172.30.0.11', labels: { 'nodemesh.io/dataplane-mode': 'ambient' } });
  hostNet.spec.hostNetwork = true;
  s = applyChanges(s, [up(hostNet)], 8);
  assert.deepEqual(enrolmentOf(hostNet, undefined), { enrolled: false, enrolledBy: 'host-network' });
  assert.equal(s.workloadsByIP.has('172.30.0.11'), false);

  // Runtime facts found on the node; the sandbox's annotations win where present.
  s = applyChanges(s, [{ op: 'pod-runtime', uid: 'uid-new', runtime: { netnsPath: '/proc/42/ns/net', cgroupPath: '/sys/fs/cgroup/kubepods/podx' } }], 9);
  assert.equal(s.workloads.get('uid-new')?.netnsPath, '/proc/42/ns/net');
  s = applyChanges(s, [up({ ...again, status: { phase: 'Running', podIP: '10.244.1.7' } })], 10);
  assert.equal(s.workloads.get('uid-new')?.netnsPath, '/proc/42/ns/net', 'a pod update keeps what was found');
  s = applyChanges(s, [{ op: 'pod-runtime', uid: 'uid-new', runtime: undefined }], 11);
  assert.equal(s.workloads.get('uid-new')?.netnsPath, undefined);
  assert.deepEqual(workloadsOnNode(s, 'node-1').map((w) => w.name).sort(), ['agent', 'api-1']);
  assert.deepEqual(workloadsOnNode(s, 'node-9'), []);
});

test('incremental snapshot: policies and waypoint kinds are kept by name, in a stable order', () => {
  const ap = (name: string) => ({ apiVersion: 'security.nodemesh.io/v1alpha1' as const, kind: 'AuthorizationPolicy' as const, metadata: { name, namespace: 'shop' }, spec: { action: 'DENY' as const } });
  let s = applyChanges(EMPTY_SNAPSHOT, [up(ap('b')), up(ap('a'))], 1);
  assert.deepEqual(s.authorizationPolicies.map((p) => p.metadata.name), ['a', 'b']);
  s = applyChanges(s, [del('AuthorizationPolicy', 'shop', 'a')], 2);
  assert.deepEqual(s.authorizationPolicies.map((p) => p.metadata.name), ['b']);
  s = applyChanges(s, [up({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'waypoint', namespace: 'shop' }, spec: { gatewayClassName: 'nodemesh-waypoint' } })], 3);
  assert.equal(s.gateways.get('shop/waypoint')?.spec.gatewayClassName, 'nodemesh-waypoint');
  const btp = { apiVersion: 'policy.nodemesh.io/v1alpha1' as const, kind: 'BackendTrafficPolicy' as const, metadata: { name: 'api', namespace: 'shop' }, spec: { targetRefs: [{ kind: 'Service' as const, name: 'api' }], circuitBreaker: { maxParallelRequests: 2 } } };
  s = applyChanges(s, [up(btp)], 4);
  assert.equal(s.backendTrafficPolicies.get('shop/api')?.spec.circuitBreaker?.maxParallelRequests, 2);
  const gateways = s.gateways;
  s = applyChanges(s, [del('BackendTrafficPolicy', 'shop', 'api')], 5);
  assert.equal(s.backendTrafficPolicies.size, 0);
  assert.equal(s.gateways, gateways, 'what a change does not touch is shared');
});

test('incremental snapshot: any sequence of events ends where a full build of the final objects does', () => {
  // Deterministic pseudo-random sequence over a small universe, so collisions happen.
  let seed = 7;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const live = new Map<string, Resource>();
  let s = EMPTY_SNAPSHOT;
  for (let i = 0; i < 400; i++) {
    const n = rnd(6);
    const which = rnd(8);
    let r: Resource;
    if (n === 0) r = ns(`ns${which % 2}`, rnd(2) ? { 'nodemesh.io/dataplane-mode': 'ambient' } : {});
    else if (n <= 2) r = pod(`ns${which % 2}`, `p${which}`, { ip: `10.244.0.${rnd(5)}`, phase: rnd(3) ? 'Running' : 'Pending', labels: { app: `a${rnd(2)}` }, node: `node-${rnd(2)}` });
    else if (n === 3) r = svc(`ns${which % 2}`, `s${which % 3}`, `10.96.0.${which % 3}${which % 2}`, { app: `a${rnd(2)}` }, [{ name: 'http', port: 80 }]);
    else r = { ...slice(`sl${which}`, `s${rnd(3)}`, [ep(`10.244.0.${rnd(5)}`, `uid-ns0-p${rnd(8)}`, { ready: rnd(2) === 0 })], [{ name: 'http', port: 80 + rnd(2) }]), metadata: { name: `sl${which}`, namespace: `ns${which % 2}`, labels: { 'kubernetes.io/service-name': `s${rnd(3)}` } } } as EndpointSlice;
    const key = `${r.kind}/${r.metadata.namespace ?? ''}/${r.metadata.name}`;
    if (rnd(5) === 0 && live.has(key)) {
      live.delete(key);
      s = applyChanges(s, [del(r.kind, r.metadata.namespace, r.metadata.name)], s.version + 1);
    } else {
      live.set(key, r);
      s = applyChanges(s, [up(r)], s.version + 1);
    }
  }
  const full = applyChanges(EMPTY_SNAPSHOT, [...live.values()].map(up), 1);
  const view = (x: Snapshot) => JSON.stringify({
    ns: [...x.namespaces.keys()].sort(),
    w: [...x.workloads.values()].sort((a, b) => a.uid.localeCompare(b.uid)),
    ip: [...x.workloadsByIP.entries()].map(([k, w]) => [k, w.uid]).sort(),
    svc: [...x.services.entries()].sort().map(([k, e]) => [k, e.vips, e.endpoints.map((p) => [p.ip, p.workloadUid, [...p.ports]]).sort()]),
    vip: [...x.servicesByVIP.entries()].map(([k, e]) => [k, e.name]).sort(),
  });
  assert.equal(view(s), view(full));
});
