// The Kubernetes source against the test API server (test/k8s-apiserver: real wire format,
// TLS, bearer token, fault injection): the snapshot stays right through adds, updates,
// deletes, watches the server closes, a 410 Gone after compaction, an API server that is
// away for a while, a bad object, and a CRD that appears after start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import YAML from 'yaml';
import { startTestApiServer } from '../../test/k8s-apiserver/test-api-server';
import { KubeHttp, loadKubeConfig } from './kube-client';
import { KubeSource } from './kube-source';
import { SkippedObject, followSource } from './source';
import { validateObject } from '../schema';
import type { ObjectValidator } from './convert';
import type { Snapshot } from '../state/snapshot';
import { NodemeshError } from '../errors';

const REPO = path.resolve(__dirname, '..', '..', '..');

function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => (cond() ? resolve() : Date.now() > end ? reject(new Error(`timed out waiting for ${what}`)) : setTimeout(tick, 20));
    tick();
  });
}

const pod = (name: string, o: { ip?: string; labels?: Record<string, string>; node?: string } = {}) => ({
  apiVersion: 'v1', kind: 'Pod',
  metadata: { name, namespace: 'shop', labels: o.labels ?? { app: 'api' } },
  spec: { nodeName: o.node ?? 'node-1', serviceAccountName: 'api', containers: [{ name: 'app', image: 'registry.example/api:1', ports: [{ name: 'http', containerPort: 8080 }] }] },
});

test('kube source: the snapshot follows the cluster through faults', async (t) => {
  const api = await startTestApiServer({ bookmarkIntervalMs: 200 });
  t.after(() => api.close());
  const { store, faults } = api;
  store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'nodemesh.io/dataplane-mode': 'ambient' } } });
  const running = (name: string, ip: string) => {
    store.create(pod(name));
    store.patchStatus('v1', 'Pod', name, 'shop', { phase: 'Running', podIP: ip, podIPs: [{ ip }], conditions: [{ type: 'Ready', status: 'True' }] });
  };
  for (let i = 1; i <= 5; i++) running(`api-${i}`, `10.244.1.${i}`);
  store.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'api', namespace: 'shop' }, spec: { selector: { app: 'api' }, clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: 'http' }] } });
  const uidOf = (name: string) => store.get('v1', 'Pod', name, 'shop')!.metadata!.uid as string;
  const slice = (ready: Record<string, boolean>) => ({
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
    metadata: { name: 'api-abc12', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'api', 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' } },
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: Object.entries(ready).map(([name, r]) => ({ addresses: [`10.244.1.${name.split('-')[1]}`], conditions: { ready: r, serving: r, terminating: false }, nodeName: 'node-1', targetRef: { kind: 'Pod', namespace: 'shop', name, uid: uidOf(name) } })),
  });
  store.create(slice({ 'api-1': true, 'api-2': false }));

  // The injected validator: the project's schemas, plus one object we declare bad.
  const validate: ObjectValidator = (o) => ((o as { metadata?: { name?: string } }).metadata?.name === 'bad'
    ? { schemaKnown: true, issues: [{ path: 'spec.containers[0].image', message: 'Required value (test)' }] } : validateObject(o));
  const source = new KubeSource({
    http: new KubeHttp(loadKubeConfig({ kind: 'kubeconfig', path: api.kubeconfigPath })), log: pino({ level: 'silent' }), validate,
    discoveryIntervalMs: 200, tuning: { pageSize: 2, backoff: { initialMs: 50, maxMs: 400 }, watchTimeoutSeconds: () => 60, watchIdleMarginMs: 5000 },
  });
  let snap: Snapshot | undefined;
  const skipped: SkippedObject[] = [];
  await followSource(source, (s) => { snap = s; }, (s) => skipped.push(s));
  t.after(() => source.stop());
  const s = () => snap!;
  const names = () => [...s().workloads.values()].map((w) => w.name).sort();
  const endpoints = () => s().servicesByVIP.get('10.96.0.10')?.endpoints.map((e) => `${e.ip}:${e.ports.get(80)}`).sort();

  // Initial sync: paginated lists (limit=2 over 5 pods), watches from the list's resourceVersion with bookmarks.
  assert.deepEqual(names(), ['api-1', 'api-2', 'api-3', 'api-4', 'api-5']);
  assert.deepEqual(endpoints(), ['10.244.1.1:8080'], 'only the ready endpoint');
  assert.equal(s().workloads.get(uidOf('api-1'))?.serviceAccount, 'api');
  assert.equal(s().workloads.get(uidOf('api-1'))?.enrolled, true);
  const podLists = api.requests.filter((r) => r.path === '/api/v1/pods' && !r.query.includes('watch=true'));
  assert.ok(podLists.length >= 3 && podLists.some((r) => r.query.includes('continue=')), 'pods listed in pages');

  // Add, update, delete.
  running('api-6', '10.244.1.6');
  await until('a new pod', () => s().workloadsByIP.get('10.244.1.6')?.name === 'api-6');
  store.update({ ...store.get('v1', 'Pod', 'api-3', 'shop')!, metadata: { ...store.get('v1', 'Pod', 'api-3', 'shop')!.metadata, labels: { app: 'api', 'nodemesh.io/dataplane-mode': 'none' } } });
  await until('a relabelled pod', () => s().workloads.get(uidOf('api-3'))?.enrolled === false);
  store.update(slice({ 'api-1': true, 'api-2': true }));
  await until('endpoints following Ready', () => endpoints()?.length === 2);
  store.delete('v1', 'Pod', 'api-6', 'shop');
  await until('a deleted pod', () => !names().includes('api-6'));

  // A watch the server closes: the source watches again and keeps following.
  const closed = faults.closeWatches();
  assert.ok(closed >= 4, `every kind had a watch open (${closed})`);
  running('api-7', '10.244.1.7');
  await until('a pod after the watches were closed', () => names().includes('api-7'));
  // (the server records a watch when it ends)
  const podWatch = api.requests.find((r) => r.path === '/api/v1/pods' && r.query.includes('watch=true'));
  assert.ok(podWatch && /allowWatchBookmarks=true/.test(podWatch.query) && /resourceVersion=\d+/.test(podWatch.query) && /fieldSelector=status.phase/.test(podWatch.query), podWatch?.query);

  // A bad object: skipped and reported with its name, the watch goes on.
  store.create({ ...pod('bad'), metadata: { name: 'bad', namespace: 'shop', labels: { app: 'x' } } });
  running('api-8', '10.244.1.8');
  await until('a pod after the bad one', () => names().includes('api-8'));
  assert.ok(!names().includes('bad'));
  assert.deepEqual(skipped.map((x) => [x.kind, x.object, x.reason]), [['Pod', 'Pod shop/bad', 'schema']]);
  assert.match(skipped[0].error, /spec.containers\[0\].image: Required value/);

  // Away for a while: changes made meanwhile, history compacted, so the watch gets 410 Gone
  // and the source relists; the pod deleted while we were away is gone from the snapshot.
  const before = s();
  const away = faults.goAway(1500);
  await new Promise((r) => setTimeout(r, 200));
  store.delete('v1', 'Pod', 'api-4', 'shop');
  running('api-9', '10.244.1.9');
  store.update(slice({ 'api-1': false, 'api-2': true }));
  faults.compact();
  assert.equal(s().workloads.get(uidOf('api-5'))?.name, 'api-5', 'while away, the last good state is served');
  assert.ok(before.workloads.has(uidOf('api-5')));
  await away;
  await until('the state after the server came back', () => names().includes('api-9') && !names().includes('api-4') && endpoints()?.join() === '10.244.1.2:8080', 15_000);
  const relisted = api.requests.filter((r) => r.path === '/api/v1/pods' && !r.query.includes('watch=true')).length;
  assert.ok(relisted > podLists.length, 'a relist after 410 Gone');
  assert.ok(api.requests.some((r) => r.path === '/api/v1/pods' && r.query.includes('watch=true') && r.code === 200), 'watching again');
  assert.ok(skipped.every((x) => x.object === 'Pod shop/bad'), 'the relist reads the bad object again: skipped again, nothing else');

  // A CRD installed after start is found by discovery, and its objects arrive.
  assert.equal(s().authorizationPolicies.length, 0);
  for (const f of ['authorizationpolicies.security.nodemesh.io.yaml', 'peerauthentications.security.nodemesh.io.yaml']) {
    store.create(YAML.parse(fs.readFileSync(path.join(REPO, 'installer', 'crds', f), 'utf8')));
  }
  await new Promise((r) => setTimeout(r, 100));
  store.create({ apiVersion: 'security.nodemesh.io/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'deny-batch', namespace: 'shop' },
    spec: { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['batch'] } }] }] } });
  await until('a policy from a CRD installed after start', () => s().authorizationPolicies.some((p) => p.metadata.name === 'deny-batch'));
});

test('kube client configuration: bad kubeconfig, missing context, no cluster are clear errors', () => {
  const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'nm-kubeconfig-'));
  try {
    const bad = path.join(dir, 'bad');
    fs.writeFileSync(bad, ':: not yaml [');
    const good = path.join(dir, 'good');
    fs.writeFileSync(good, YAML.stringify({ apiVersion: 'v1', kind: 'Config', 'current-context': 'c', clusters: [{ name: 'k', cluster: { server: 'https://127.0.0.1:6443' } }],
      users: [{ name: 'u', user: { token: 't' } }], contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }] }));
    const cases: [string, Parameters<typeof loadKubeConfig>[0], RegExp][] = [
      ['missing file', { kind: 'kubeconfig', path: path.join(dir, 'none') }, /cannot configure the Kubernetes client from .*none/],
      ['not a kubeconfig', { kind: 'kubeconfig', path: bad }, /cannot configure the Kubernetes client/],
      ['missing context', { kind: 'kubeconfig', path: good, context: 'other' }, /no context named "other"/],
    ];
    for (const [name, conn, re] of cases) {
      assert.throws(() => loadKubeConfig(conn), (e: unknown) => NodemeshError.is(e, 'NODEMESH_E_KUBE_CONFIG') && re.test(e.message), name);
    }
    assert.equal(loadKubeConfig({ kind: 'kubeconfig', path: good }).getCurrentCluster()?.server, 'https://127.0.0.1:6443');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
