import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import type { Pod, Service } from '../../daemon/state/resources';
import { ANNOTATION_SANDBOX_NETNS } from '../../daemon/state/resources';
import { NodemeshError } from '../errors';
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { ApiServerPublisher, ENDPOINTSLICE_MANAGED_BY, FIELD_MANAGER, desiredObjects, endpointSlicesFor, sandboxViewOf, type SandboxView } from './apiserver-publisher';
import { startTestApiServer, type TestApiServer } from '../../test/k8s-apiserver/test-api-server';
import { recordedJson } from '../../test/k8s-apiserver/wire-fixtures';

const NOW = '2026-11-29T11:00:00Z';

function pod(name: string, phase: 'Pending' | 'Running' | 'Succeeded', ip: string | undefined, labels: Record<string, string> = { app: 'web' }, extra: Partial<Pod['spec']> = {}): Pod {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: 'shop', uid: `sandbox-${name}`, labels, annotations: { [ANNOTATION_SANDBOX_NETNS]: `/run/netns/nmsb-${name}` } },
    spec: { nodeName: 'node-1', containers: [{ name: 'app', command: ['sleep', 'infinity'], ports: [{ name: 'http', containerPort: 8080 }] }], ...extra },
    status: { phase, ...(ip ? { podIP: ip, podIPs: [{ ip }] } : {}), hostIP: '172.30.0.11' },
  } as Pod;
}

const web: Service = {
  apiVersion: 'v1', kind: 'Service',
  metadata: { name: 'web', namespace: 'shop', labels: { app: 'web' } },
  spec: { selector: { app: 'web' }, clusterIP: '10.96.0.20', ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
};

function view(pods: Pod[], services: Service[] = [web]): SandboxView {
  return {
    nodes: [{ name: 'node-1', ip: '172.30.0.11', podCIDR: '10.244.1.0/24' }, { name: 'node-2', ip: '172.30.0.12', podCIDR: '10.244.2.0/24' }],
    namespaces: [{ name: 'shop', labels: { 'nodemesh.io/mesh': 'enabled' } }],
    pods, services,
    serviceAccounts: [{ namespace: 'shop', name: 'api' }],
  };
}

describe('apiserver-publisher (pure)', () => {
  test('desired objects: namespace labels, a default ServiceAccount per namespace, pods with Ready from their phase', () => {
    const d = desiredObjects(view([pod('a', 'Running', '10.244.1.10'), pod('b', 'Pending', '10.244.1.11', { app: 'web' }, { serviceAccountName: 'worker' })]), NOW);
    assert.deepEqual(d.namespaces, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'nodemesh.io/mesh': 'enabled' } } }]);
    assert.deepEqual(d.serviceAccounts.map((s) => `${s.metadata.namespace}/${s.metadata.name}`), ['shop/api', 'shop/default', 'shop/worker']);
    const [a, b] = d.pods;
    const ready = (p: typeof a) => (p.status!.conditions as { type: string; status: string }[]).find((c) => c.type === 'Ready')!.status;
    assert.equal(ready(a), 'True');
    assert.equal(ready(b), 'False');
    assert.equal(a.status!.podIP, '10.244.1.10');
    assert.deepEqual(a.status!.hostIPs, [{ ip: '172.30.0.11' }]);
    assert.equal(a.object.metadata.uid, undefined, 'the API server assigns uids');
    assert.equal(a.object.metadata.annotations[ANNOTATION_SANDBOX_NETNS], '/run/netns/nmsb-a');
    assert.equal((d.nodes[0].status!.addresses as { address: string }[])[0].address, '172.30.0.11');
  });

  test('EndpointSlices follow the Ready condition, skip pods without IP or finished, resolve named ports', () => {
    const pods = [pod('a', 'Running', '10.244.1.10'), pod('b', 'Pending', '10.244.1.11'), pod('c', 'Pending', undefined), pod('d', 'Succeeded', '10.244.1.13'), pod('e', 'Running', '10.244.1.14', { app: 'db' })];
    const slices = endpointSlicesFor(view(pods), { pods: new Map([['shop/a', 'uid-a']]), services: new Map([['shop/web', 'uid-web']]) });
    assert.equal(slices.length, 1);
    const s = slices[0];
    assert.equal(s.metadata.labels['kubernetes.io/service-name'], 'web');
    assert.equal(s.metadata.labels['endpointslice.kubernetes.io/managed-by'], ENDPOINTSLICE_MANAGED_BY);
    assert.deepEqual(s.metadata.ownerReferences[0], { apiVersion: 'v1', kind: 'Service', name: 'web', uid: 'uid-web', controller: true, blockOwnerDeletion: true });
    assert.deepEqual(s.endpoints.map((e: any) => [e.targetRef.name, e.conditions.ready]), [['a', true], ['b', false]]);
    assert.deepEqual(s.ports, [{ name: 'http', protocol: 'TCP', port: 8080 }]);
    // The same shape as the controller's slice in the recording (13).
    const want = recordedJson('13-list-endpointslices').items[0];
    assert.deepEqual(Object.keys(s.endpoints[0]).sort(), Object.keys(want.endpoints[0]).sort());
    assert.deepEqual(Object.keys(s.endpoints[0].conditions).sort(), Object.keys(want.endpoints[0].conditions).sort());
    assert.deepEqual(Object.keys(s.endpoints[0].targetRef).sort(), Object.keys(want.endpoints[0].targetRef).sort());
  });

  test('a service without matching pods gets an empty slice; a selector-less one none', () => {
    const bare: Service = { ...web, metadata: { name: 'external', namespace: 'shop' }, spec: { ports: [{ port: 443 }] } };
    const slices = endpointSlicesFor(view([], [web, bare]), { pods: new Map(), services: new Map() });
    assert.deepEqual(slices.map((s) => [s.metadata.name, s.endpoints.length]), [['web-sandbox', 0]]);
  });
});

describe('apiserver-publisher against the test API server', () => {
  let s: TestApiServer;
  let kc: k8s.KubeConfig;
  before(async () => {
    s = await startTestApiServer({ bookmarkIntervalMs: 0 });
    kc = new k8s.KubeConfig();
    kc.loadFromFile(s.kubeconfigPath);
  });
  after(async () => s.close());

  test('publishes nodes, pods with status, services, EndpointSlices and ServiceAccounts; republishing removes what is gone', async () => {
    const publisher = new ApiServerPublisher(kc);
    const first = await publisher.publish(view([pod('a', 'Running', '10.244.1.10'), pod('b', 'Pending', '10.244.1.11')]));
    assert.deepEqual(first.deleted, []);

    const node = s.store.get('v1', 'Node', 'node-1')!;
    assert.equal(node.status.conditions[0].type, 'Ready');
    assert.equal((node.status.addresses as { address: string }[])[0].address, '172.30.0.11');
    const a = s.store.get('v1', 'Pod', 'a', 'shop')!;
    assert.equal(a.status.phase, 'Running');
    assert.equal(a.status.podIP, '10.244.1.10');
    assert.equal(a.status.conditions.find((c: any) => c.type === 'Ready').status, 'True');
    assert.equal(a.spec.nodeName, 'node-1');
    assert.ok(a.metadata.managedFields.some((e: any) => e.manager === FIELD_MANAGER && e.operation === 'Apply' && e.subresource === 'status'));
    assert.ok(a.metadata.managedFields.some((e: any) => e.manager === FIELD_MANAGER && e.operation === 'Apply' && e.subresource === undefined));
    assert.deepEqual(s.store.list('v1', 'ServiceAccount', 'shop').map((x) => x.metadata.name), ['api', 'default']);
    assert.equal(s.store.get('v1', 'Namespace', 'shop')!.metadata.labels['nodemesh.io/mesh'], 'enabled');
    const svc = s.store.get('v1', 'Service', 'web', 'shop')!;
    assert.equal(svc.spec.clusterIP, '10.96.0.20');
    const slice = s.store.get('discovery.k8s.io/v1', 'EndpointSlice', 'web-sandbox', 'shop')!;
    assert.deepEqual(slice.endpoints.map((e: any) => [e.targetRef.name, e.targetRef.uid, e.conditions.ready]), [['a', a.metadata.uid, true], ['b', s.store.get('v1', 'Pod', 'b', 'shop')!.metadata.uid, false]]);
    assert.equal(slice.metadata.ownerReferences[0].uid, svc.metadata.uid);

    // b becomes ready, a goes away, the namespace label flips.
    const v2 = view([pod('b', 'Running', '10.244.1.11')]);
    const second = await publisher.publish({ ...v2, namespaces: [{ name: 'shop', labels: {} }] });
    assert.deepEqual(second.deleted, ['Pod shop/a']);
    assert.equal(s.store.get('v1', 'Pod', 'a', 'shop'), undefined);
    const slice2 = s.store.get('discovery.k8s.io/v1', 'EndpointSlice', 'web-sandbox', 'shop')!;
    assert.deepEqual(slice2.endpoints.map((e: any) => [e.targetRef.name, e.conditions.ready]), [['b', true]]);
    assert.equal(s.store.get('v1', 'Namespace', 'shop')!.metadata.labels['nodemesh.io/mesh'], undefined, 'a label no longer applied is removed');

    // Another process (a later `nodemesh local` command) deletes what this one published.
    const later = new ApiServerPublisher(kc);
    const third = await later.publish({ ...view([]), namespaces: [{ name: 'shop', labels: {} }] });
    assert.deepEqual(third.deleted, ['Pod shop/b']);
    assert.equal(s.store.get('v1', 'Pod', 'b', 'shop'), undefined);
    await later.publish({ ...v2, namespaces: [{ name: 'shop', labels: {} }] });

    // An unchanged view writes nothing.
    const rv = s.store.revision;
    await later.publish({ ...v2, namespaces: [{ name: 'shop', labels: {} }] }, '2026-11-29T11:00:00Z');
    await later.publish({ ...v2, namespaces: [{ name: 'shop', labels: {} }] }, '2026-11-29T11:00:00Z');
    const before = s.store.revision;
    await later.publish({ ...v2, namespaces: [{ name: 'shop', labels: {} }] }, '2026-11-29T11:00:00Z');
    assert.equal(s.store.revision, before, `no writes for an unchanged view (revision ${rv} -> ${before})`);
  });

  test('the object directory as a view: ServiceAccounts, CRDs (waited for until Established), their objects and stored kinds', async () => {
    const crdDir = path.resolve(__dirname, '..', '..', '..', 'installer', 'crds');
    const crds = fs.readdirSync(crdDir).filter((f) => f.endsWith('.yaml')).map((f) => YAML.parse(fs.readFileSync(path.join(crdDir, f), 'utf8')));
    const policy = { apiVersion: 'security.nodemesh.io/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'deny-all', namespace: 'shop', uid: 'sandbox-uid', resourceVersion: '7' }, spec: { action: 'DENY', rules: [{}] } };
    const others = [...crds, policy, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'web', namespace: 'shop' } }, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg', namespace: 'shop' }, data: { a: '1' } }];
    const nodes = [{ name: 'node-1', ip: '172.30.0.11', podCIDR: '10.244.1.0/24', netns: 'ignored' }];
    const v = sandboxViewOf(nodes, { namespaces: [{ metadata: { name: 'shop' } }], pods: [], services: [], others });
    assert.deepEqual(v.serviceAccounts, [{ namespace: 'shop', name: 'web' }]);
    const publisher = new ApiServerPublisher(kc);
    await publisher.publish(v);
    const ap = s.store.get('security.nodemesh.io/v1alpha1', 'AuthorizationPolicy', 'deny-all', 'shop')!;
    assert.equal(ap.spec.action, 'DENY');
    assert.notEqual(ap.metadata.uid, 'sandbox-uid', 'the API server assigns its own uid');
    assert.equal(s.store.get('v1', 'ConfigMap', 'cfg', 'shop')!.data.a, '1');
    assert.ok(s.store.get('v1', 'ServiceAccount', 'web', 'shop'));
    const second = await publisher.publish(sandboxViewOf(nodes, { namespaces: [{ metadata: { name: 'shop' } }], pods: [], services: [], others: [...crds] }));
    assert.ok(second.deleted.includes('AuthorizationPolicy shop/deny-all'));
    assert.equal(s.store.get('security.nodemesh.io/v1alpha1', 'AuthorizationPolicy', 'deny-all', 'shop'), undefined);
  });

  test('an API server that refuses is a NODEMESH_E_SANDBOX_APISERVER_PUBLISH naming the object and the reason', async () => {
    const publisher = new ApiServerPublisher(kc);
    s.faults.failNext({ resource: 'namespaces', count: 1, code: 500, verbs: ['patch'] });
    await assert.rejects(publisher.publish(view([])), (e: unknown) => {
      assert.ok(NodemeshError.is(e, 'NODEMESH_E_SANDBOX_APISERVER_PUBLISH'));
      assert.match((e as Error).message, /Namespace shop/);
      assert.match((e as Error).message, /injected failure/);
      return true;
    });
  });
});
