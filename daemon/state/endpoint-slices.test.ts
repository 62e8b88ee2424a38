import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deriveEndpointSlices } from './endpoint-slices';
import type { Pod, Service } from './resources';

const pod = (name: string, o: { ip?: string; ready?: 'True' | 'False'; phase?: NonNullable<Pod['status']>['phase']; port?: number; deleting?: boolean; labels?: Record<string, string>; ns?: string } = {}): Pod => ({
  apiVersion: 'v1', kind: 'Pod',
  metadata: { name, namespace: o.ns ?? 'shop', uid: `uid-${name}`, labels: o.labels ?? { app: 'api' }, ...(o.deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}) },
  spec: { nodeName: 'node-1', containers: [{ name: 'c', ports: [{ name: 'http', containerPort: o.port ?? 8080 }] }] },
  status: { phase: o.phase ?? 'Running', ...(o.ip === '' ? {} : { podIP: o.ip ?? `10.244.1.${name.length}` }), ...(o.ready ? { conditions: [{ type: 'Ready', status: o.ready }] } : {}) },
});
const svc: Service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'api', namespace: 'shop' }, spec: { selector: { app: 'api' }, clusterIP: '10.96.0.10', ports: [{ name: 'web', port: 80, targetPort: 'http' }] } };

test('derived EndpointSlices: as the controller makes them', () => {
  const cases: { name: string; pods: Pod[]; want: [string, boolean | undefined, boolean | undefined][][] }[] = [
    { name: 'Ready condition decides, not the phase', pods: [pod('a', { ip: '10.0.0.1', ready: 'True' }), pod('b', { ip: '10.0.0.2', ready: 'False' })],
      want: [[['10.0.0.1', true, false], ['10.0.0.2', false, false]]] },
    { name: 'no conditions at all (sandbox): Running counts as ready', pods: [pod('a', { ip: '10.0.0.1' }), pod('b', { ip: '10.0.0.2', phase: 'Pending' })],
      want: [[['10.0.0.1', true, false], ['10.0.0.2', false, false]]] },
    { name: 'terminating: not ready, marked terminating', pods: [pod('a', { ip: '10.0.0.1', ready: 'True', deleting: true })], want: [[['10.0.0.1', false, true]]] },
    { name: 'finished, IP-less, other-namespace and non-matching pods are left out',
      pods: [pod('a', { phase: 'Succeeded' }), pod('b', { ip: '' }), pod('c', { ns: 'other' }), pod('d', { labels: { app: 'web' } })], want: [] },
    { name: 'pods whose named port resolves differently get their own slice', pods: [pod('a', { ip: '10.0.0.1', port: 8080 }), pod('b', { ip: '10.0.0.2', port: 9090 })],
      want: [[['10.0.0.1', true, false]], [['10.0.0.2', true, false]]] },
  ];
  for (const c of cases) {
    const slices = deriveEndpointSlices(svc, c.pods);
    assert.deepEqual(slices.map((s) => s.endpoints.map((e) => [e.addresses[0], e.conditions?.ready, e.conditions?.terminating])), c.want, c.name);
    for (const s of slices) {
      assert.equal(s.metadata.labels?.['kubernetes.io/service-name'], 'api');
      assert.equal(s.ports?.[0].name, 'web', 'slice ports carry the Service port name');
    }
  }
  assert.deepEqual(deriveEndpointSlices(svc, [pod('a', { port: 9090 })])[0].ports, [{ name: 'web', port: 9090, protocol: 'TCP' }]);
  assert.deepEqual(deriveEndpointSlices({ ...svc, spec: { ...svc.spec, selector: undefined } }, [pod('a')]), [], 'no selector: no slices (someone else manages them)');
});
