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
