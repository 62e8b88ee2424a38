// The edge conversion, table-tested with object shapes recorded from a real kube-apiserver
// (test/fixtures/kube-objects/) and with broken variants of them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ObjectValidator, convertObject } from './convert';
import { applyChanges, EMPTY_SNAPSHOT } from '../state/snapshot';
import type { EndpointSlice, Pod, Resource, Service } from '../state/resources';

const FIX = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'kube-objects');
const json = (f: string) => JSON.parse(fs.readFileSync(path.join(FIX, f), 'utf8'));
const events = (f: string) => fs.readFileSync(path.join(FIX, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
// List items come without kind and apiVersion: the informer adds them from the list.
const podList = json('pod-list-page1.json');
const listedPod = { kind: 'Pod', apiVersion: 'v1', ...podList.items[0] };
const runningPod = json('pod-running-ready.json');
const sliceList = json('endpointslice-list.json');
const listedSlice = { kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1', ...sliceList.items[0] };
const serviceAdded = events('service-watch-events.jsonl')[0].object;
const nsEvents = events('namespace-watch-events.jsonl');
const clone = <T>(o: T): T => JSON.parse(JSON.stringify(o));
const ok = (raw: unknown, v?: ObjectValidator): Resource => {
  const c = convertObject(raw, v);
  assert.ok(c && c.ok, `expected a resource, got ${JSON.stringify(c)}`);
  return c.resource;
};

test('convert: recorded objects become trimmed mesh resources', () => {
  const p = ok(listedPod) as Pod;
  assert.deepEqual(p, {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: 'p1', namespace: 'wire', uid: 'f97c76de-adc8-4a08-9a40-b0f291b55f87', resourceVersion: '254', generation: 1, labels: { run: 'p1' } },
    spec: { containers: [{ name: 'p1' }], nodeName: 'node-1', serviceAccountName: 'sa1' },
    status: { phase: 'Pending' },
  });
  assert.ok(JSON.stringify(p).length * 5 < JSON.stringify(listedPod).length, 'volumes, managedFields, tolerations... are dropped');

  const r = ok(runningPod) as Pod;
  assert.deepEqual(r.status, { phase: 'Running', podIP: '10.244.1.7', podIPs: [{ ip: '10.244.1.7' }], hostIP: '172.30.0.11', conditions: [{ type: 'Ready', status: 'True' }] });

  const s = ok(listedSlice) as EndpointSlice;
  assert.deepEqual(s.endpoints, [{ addresses: ['10.244.1.7'], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'node-1',
    targetRef: { kind: 'Pod', namespace: 'wire', name: 'p3', uid: '70991e1b-37be-4a62-a387-f340bfc089f1' } }]);
  assert.deepEqual(s.ports, [{ name: '80-8080', port: 8080, protocol: 'TCP' }]);
  assert.equal(s.metadata.labels?.['kubernetes.io/service-name'], 'p3svc');

  const svc = ok(serviceAdded) as Service;
  assert.equal(svc.metadata.name, 'web');
  assert.ok(svc.spec.ports.length > 0 && svc.spec.ports.every((x) => typeof x.port === 'number'));

  const n = ok(nsEvents[0].object);
  assert.deepEqual(n, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default', uid: 'e2da5ddb-089d-477b-94e3-f8f25613acbd', resourceVersion: '24', labels: { 'kubernetes.io/metadata.name': 'default' } } });
});

test('convert: the recorded slice and pod give a Service endpoint that follows Ready', () => {
  const svc: Service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'p3svc', namespace: 'wire' }, spec: { clusterIP: '10.96.0.50', selector: { run: 'p3' }, ports: [{ name: '80-8080', port: 80, targetPort: 8080 }] } };
  const s = applyChanges(EMPTY_SNAPSHOT, [ok(runningPod), ok(listedSlice), svc].map((resource) => ({ op: 'upsert' as const, resource })), 1);
  const e = s.servicesByVIP.get('10.96.0.50')?.endpoints;
  assert.deepEqual(e?.map((x) => [x.ip, x.workloadUid, x.ports.get(80)]), [['10.244.1.7', '70991e1b-37be-4a62-a387-f340bfc089f1', 8080]]);
  assert.equal(s.workloads.get('70991e1b-37be-4a62-a387-f340bfc089f1')?.serviceAccount, 'sa1');
});

test('convert: bad objects become a reason (kind, name, bounded message), never an exception', () => {
  const noSpec = clone(listedPod); delete noSpec.spec;
  const badLabels = clone(listedPod); badLabels.metadata.labels = { run: 7 };
  const badPort = clone(serviceAdded); badPort.spec.ports[0].port = 70000;
  const badSlice = clone(listedSlice); badSlice.addressType = 'IPv5';
  const badEndpoints = clone(listedSlice); badEndpoints.endpoints = [{ conditions: {} }];
  const noName = nsEvents[nsEvents.length - 1].object; // a BOOKMARK's object: kind and resourceVersion only
  const huge = clone(listedPod); huge.spec.containers = 'x'.repeat(10_000);
  const foreignGateway = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'edge', namespace: 'infra' }, spec: { gatewayClassName: 'istio' } };
  const cases: [string, unknown, string, RegExp, string][] = [
    ['pod without spec', noSpec, 'malformed', /spec is missing/, 'Pod wire/p1'],
    ['labels that are not strings', badLabels, 'malformed', /metadata.labels must be a map of strings/, 'Pod wire/p1'],
    ['service port out of range', badPort, 'malformed', /spec.ports\[0\].port must be a port number/, 'Service wire/web'],
    ['slice address type', badSlice, 'malformed', /addressType/, 'EndpointSlice wire/p3svc-tkk8z'],
    ['slice endpoint without addresses', badEndpoints, 'malformed', /endpoints\[0\].addresses/, 'EndpointSlice wire/p3svc-tkk8z'],
    ['object without a name', noName, 'malformed', /metadata.name is missing/, 'Namespace ?'],
    ['containers not a list', huge, 'malformed', /spec.containers must be a list/, 'Pod wire/p1'],
    ['not an object', 'garbage', 'malformed', /no kind/, '(string)'],
    ['a Gateway of another class', foreignGateway, 'gateway-class', /"istio" is not nodemesh-waypoint/, 'Gateway infra/edge'],
  ];
  for (const [name, raw, reason, msg, object] of cases) {
    const c = convertObject(raw);
    assert.ok(c && !c.ok, name);
    assert.equal(c.reason, reason, name);
    assert.match(c.error, msg, name);
    assert.equal(c.object, object, name);
    assert.ok(c.error.length <= 303, name);
  }
  assert.equal(convertObject({ kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'x' } }), null, 'kinds the daemon does not read are not errors');
});

test('convert: the schema validator is applied first; its issues name the field', () => {
  const rejectSelector: ObjectValidator = (o) => ({ schemaKnown: true, issues: (o as { kind: string }).kind === 'AuthorizationPolicy' ? [{ path: '/spec/action', message: 'must be equal to one of the allowed values' }] : [] });
  const ap = { apiVersion: 'security.nodemesh.io/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'deny', namespace: 'shop' }, spec: { action: 'MAYBE' } };
  const c = convertObject(ap, rejectSelector);
  assert.ok(c && !c.ok);
  assert.equal(c.reason, 'schema');
  assert.equal(c.error, '/spec/action: must be equal to one of the allowed values');
  assert.ok(ok(listedPod, rejectSelector));
  const throwing: ObjectValidator = () => { throw new Error('boom'); };
  const t = convertObject(listedPod, throwing);
  assert.ok(t && !t.ok && t.reason === 'schema' && /validator failed: boom/.test(t.error));
  const many: ObjectValidator = () => ({ schemaKnown: true, issues: Array.from({ length: 50 }, (_, i) => ({ path: `/f${i}`, message: 'x'.repeat(100) })) });
  const m = convertObject(listedPod, many);
  assert.ok(m && !m.ok && m.error.length <= 303);
});

test('convert: owners for metric labels (Deployment through its ReplicaSet, others as they are)', () => {
  const withOwner = (kind: string, name: string, hash?: string) => {
    const p = clone(runningPod);
    p.metadata.ownerReferences = [{ apiVersion: 'apps/v1', kind, name, uid: 'x', controller: true, blockOwnerDeletion: true }];
    if (hash) p.metadata.labels['pod-template-hash'] = hash;
    const s = applyChanges(EMPTY_SNAPSHOT, [{ op: 'upsert', resource: ok(p) }], 1);
    return s.workloads.get(p.metadata.uid)?.owner;
  };
  assert.deepEqual(withOwner('ReplicaSet', 'api-5d8f9c7b6', '5d8f9c7b6'), { kind: 'Deployment', name: 'api' });
  assert.deepEqual(withOwner('ReplicaSet', 'standalone'), { kind: 'ReplicaSet', name: 'standalone' });
  assert.deepEqual(withOwner('StatefulSet', 'db'), { kind: 'StatefulSet', name: 'db' });
  assert.deepEqual(withOwner('DaemonSet', 'agent'), { kind: 'DaemonSet', name: 'agent' });
  assert.deepEqual(withOwner('Job', 'migrate-28391234'), { kind: 'Job', name: 'migrate-28391234' });
  assert.equal(withOwner('Node', 'node-1'), undefined, 'a static pod mirrored from a node has no workload owner');
});

test('convert: policies come through whole (minus managedFields), as the sandbox checks them', () => {
  const ap = { apiVersion: 'security.nodemesh.io/v1alpha1', kind: 'AuthorizationPolicy',
    metadata: { name: 'allow-web', namespace: 'shop', uid: 'u1', resourceVersion: '7', annotations: { team: 'payments' }, managedFields: [{ manager: 'kubectl' }] },
    spec: { selector: { matchLabels: { app: 'api' } }, action: 'ALLOW', rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/web'] } }] }] } };
  const { managedFields: _m, ...meta } = ap.metadata;
  void _m;
  assert.deepEqual(ok(ap), { ...ap, metadata: meta });
  const badSpec = convertObject({ ...ap, spec: 'ALLOW' });
  assert.ok(badSpec && !badSpec.ok && badSpec.reason === 'malformed');
  const btp = { apiVersion: 'policy.nodemesh.io/v1alpha1', kind: 'BackendTrafficPolicy', metadata: { name: 'api', namespace: 'shop', managedFields: [{ manager: 'kubectl' }] },
    spec: { targetRefs: [{ kind: 'Service', name: 'api' }], faultInjection: { abort: { httpStatus: 503, percentage: 50 } } } };
  assert.deepEqual(ok(btp), { ...btp, metadata: { name: 'api', namespace: 'shop' } });
  const noSpec = convertObject({ ...btp, spec: undefined });
  assert.ok(noSpec && !noSpec.ok && noSpec.reason === 'malformed');
});
