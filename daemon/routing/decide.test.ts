import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide } from './decide';
import { buildSnapshot } from '../state/snapshot';
import type { Resource } from '../state/resources';

const resources: Resource[] = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'nodemesh.io/dataplane-mode': 'ambient' } } },
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'shop', uid: 'w', labels: { app: 'web' } },
    spec: { nodeName: 'node-1', containers: [{ name: 'c' }] }, status: { phase: 'Running', podIP: '10.244.1.2' } },
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'api', namespace: 'shop', uid: 'a', labels: { app: 'api' } },
    spec: { nodeName: 'node-2', containers: [{ name: 'c' }] }, status: { phase: 'Running', podIP: '10.244.2.2' } },
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'api', namespace: 'shop' },
    spec: { selector: { app: 'api' }, clusterIP: '10.96.0.10', ports: [{ port: 80, targetPort: 8080 }] } },
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'empty', namespace: 'shop' },
    spec: { selector: { app: 'none' }, clusterIP: '10.96.0.11', ports: [{ port: 80 }] } },
];
const snap = buildSnapshot(resources, 1);
const web = snap.workloads.get('w')!;
const to = (address: string, port: number) => ({ family: 4 as const, address, port });

test('decide: a table of destinations', () => {
  const cases: [string, string, number, string, string?][] = [
    ['service VIP with endpoints', '10.96.0.10', 80, 'passthrough'],
    ['service VIP, port not on the service', '10.96.0.10', 81, 'deny', 'unknown-service-port'],
    ['service VIP without endpoints', '10.96.0.11', 80, 'deny', 'no-endpoints'],
    ['pod IP in the mesh', '10.244.2.2', 8080, 'passthrough'],
    ['address outside the cluster', '192.0.2.1', 443, 'passthrough'],
    ['mesh port', '10.244.2.2', 15008, 'deny', 'mesh-port'],
  ];
  for (const [name, ip, port, kind, reason] of cases) {
    const d = decide(snap, web, to(ip, port));
    assert.equal(d.kind, kind, name);
    if (d.kind === 'deny') assert.equal(d.reason, reason, name);
    if (d.kind === 'passthrough') assert.deepEqual(d.target, to(ip, port), name);
  }
  const d = decide(snap, web, to('10.96.0.10', 80));
  assert.equal(d.kind === 'passthrough' && d.service?.name, 'api');
  const p = decide(snap, web, to('10.244.2.2', 8080));
  assert.equal(p.kind === 'passthrough' && p.destinationWorkload?.name, 'api');
});
