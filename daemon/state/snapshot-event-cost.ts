// Measures what one watch event costs the snapshot in a 10,000-pod cluster (run:
// `node dist/daemon/state/snapshot-event-cost.js [pods]`): the incremental apply against a
// full rebuild from every object, as the source contract did before. Prints microseconds;
// with --expose-gc also the memory each pod costs once trimmed and held.
import { EMPTY_SNAPSHOT, SnapshotChange, applyChanges, buildSnapshot } from './snapshot';
import type { EndpointSlice, Namespace, Pod, Resource, Service } from './resources';
import { convertObject } from '../sources/convert';

const PODS = Number(process.argv[2] ?? 10_000);
const NAMESPACES = 100;
const SERVICES_PER_NS = 10;

function cluster(): Resource[] {
  const out: Resource[] = [];
  for (let n = 0; n < NAMESPACES; n++) {
    out.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `ns${n}`, labels: n % 2 ? { 'nodemesh.io/dataplane-mode': 'ambient' } : {} } } as Namespace);
    for (let s = 0; s < SERVICES_PER_NS; s++) {
      out.push({ apiVersion: 'v1', kind: 'Service', metadata: { name: `svc${s}`, namespace: `ns${n}` }, spec: { selector: { app: `a${s}` }, clusterIP: `10.96.${n}.${s}`, ports: [{ name: 'http', port: 80 }] } } as Service);
    }
  }
  const perSvc = new Map<string, Pod[]>();
  for (let i = 0; i < PODS; i++) {
    const n = i % NAMESPACES;
    const s = Math.floor(i / NAMESPACES) % SERVICES_PER_NS;
    const p: Pod = {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name: `p${i}`, namespace: `ns${n}`, uid: `uid-${i}`, labels: { app: `a${s}` } },
      spec: { nodeName: `node-${i % 50}`, serviceAccountName: 'default', containers: [{ name: 'c' }] },
      status: { phase: 'Running', podIP: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, conditions: [{ type: 'Ready', status: 'True' }] },
    };
    out.push(p);
    const key = `ns${n}/svc${s}`;
    perSvc.set(key, [...(perSvc.get(key) ?? []), p]);
  }
  for (const [key, pods] of perSvc) {
    const [ns, svc] = key.split('/');
    out.push({
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `${svc}-x`, namespace: ns, labels: { 'kubernetes.io/service-name': svc } },
      addressType: 'IPv4', ports: [{ name: 'http', port: 8080 }],
      endpoints: pods.map((p) => ({ addresses: [p.status!.podIP!], conditions: { ready: true }, targetRef: { kind: 'Pod', namespace: ns, name: p.metadata.name, uid: p.metadata.uid } })),
    } as EndpointSlice);
  }
  return out;
}

function time(label: string, runs: number, fn: (i: number) => void): number {
  for (let i = 0; i < Math.min(runs, 5); i++) fn(i); // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) fn(i);
  const us = Number(process.hrtime.bigint() - t0) / 1000 / runs;
  process.stdout.write(`${label}: ${us.toFixed(1)} us per event\n`);
  return us;
}

const objects = cluster();
const t0 = process.hrtime.bigint();
const base = applyChanges(EMPTY_SNAPSHOT, objects.map((resource) => ({ op: 'upsert', resource })), 1);
process.stdout.write(`${PODS} pods, ${objects.length} objects; initial load: ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(0)} ms\n`);
const pods = objects.filter((o): o is Pod => o.kind === 'Pod');
const relabel = (i: number): SnapshotChange => {
  const p = pods[i % pods.length];
  return { op: 'upsert', resource: { ...p, metadata: { ...p.metadata, labels: { ...p.metadata.labels, rev: String(i) } } } };
};
let s = base;
const inc = time('incremental: one pod updated', 2000, (i) => { s = applyChanges(s, [relabel(i)], s.version + 1); });
const slices = objects.filter((o): o is EndpointSlice => o.kind === 'EndpointSlice');
time(`incremental: one EndpointSlice updated (${slices[0].endpoints.length} endpoints)`, 2000, (i) => {
  const sl = slices[i % slices.length];
  s = applyChanges(s, [{ op: 'upsert', resource: { ...sl, metadata: { ...sl.metadata, resourceVersion: String(i) } } }], s.version + 1);
});
time('incremental: a namespace relabelled (100 pods re-derived)', 200, (i) => {
  s = applyChanges(s, [{ op: 'upsert', resource: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ns0', labels: i % 2 ? { 'nodemesh.io/dataplane-mode': 'ambient' } : {} } } }], s.version + 1);
});
const full = time('full rebuild from every object (the old contract)', 5, (i) => { buildSnapshot(objects, i); });
process.stdout.write(`ratio: one pod event is ${(full / inc).toFixed(0)}x cheaper than a rebuild\n`);

// Memory per pod as the Kubernetes source keeps it: a recorded-shape pod (volumes, managedFields,
// tolerations...) trimmed by the edge conversion, then held by the snapshot. Needs --expose-gc.
const gc = (globalThis as { gc?: () => void }).gc;
if (gc) {
  const raw = (i: number) => ({
    kind: 'Pod', apiVersion: 'v1',
    metadata: { name: `api-7d4b9c-${i}`, namespace: `ns${i % 100}`, uid: `f97c76de-adc8-4a08-9a40-${String(i).padStart(12, '0')}`, resourceVersion: String(1000 + i),
      labels: { app: 'api', 'pod-template-hash': '7d4b9c' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'api-7d4b9c', uid: 'x', controller: true, blockOwnerDeletion: true }],
      managedFields: [{ manager: 'kubelet', operation: 'Update', fieldsV1: { 'f:status': { 'f:conditions': {} } } }] },
    spec: { nodeName: `node-${i % 50}`, serviceAccountName: 'api', volumes: [{ name: 'kube-api-access', projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } }],
      containers: [{ name: 'app', image: 'registry.example/api:1.2.3', ports: [{ name: 'http', containerPort: 8080 }], env: [{ name: 'A', value: 'b' }] }],
      tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }] },
    status: { phase: 'Running', podIP: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, podIPs: [{ ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` }], hostIP: '172.30.0.11',
      conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: '2026-11-29T10:38:20Z' }, { type: 'ContainersReady', status: 'True' }], qosClass: 'Burstable' },
  });
  gc();
  const h0 = process.memoryUsage().heapUsed;
  const changes: SnapshotChange[] = [];
  for (let i = 0; i < PODS; i++) {
    const c = convertObject(raw(i));
    if (c?.ok) changes.push({ op: 'upsert', resource: c.resource });
  }
  const held = applyChanges(EMPTY_SNAPSHOT, changes, 1);
  changes.length = 0;
  gc();
  const perPod = (process.memoryUsage().heapUsed - h0) / PODS;
  process.stdout.write(`memory: ${perPod.toFixed(0)} bytes per pod held by the snapshot (${held.workloads.size} pods)\n`);
}
