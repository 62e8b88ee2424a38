// `nodemesh install` / `upgrade` / `uninstall` / `enroll` / `status` against the test API server
// (real wire format, TLS + bearer token, SSA, CRDs with Established, no controllers): the test
// plays the DaemonSet controller and the kubelets by writing pods and statuses.
import { test, after, before } from 'node:test';
import * as assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { startTestApiServer, type TestApiServer } from '../../test/k8s-apiserver/test-api-server';
import { KubeApi } from './api-client';
import { installOrUpgrade, uninstall } from './install';
import { setEnrolment } from './enroll';
import { clusterStatus } from './cluster-status';
import type { Output } from './apply';
import { defaultValues, resolveValues } from '../manifests/values';
import { installObjects } from '../manifests/render';
import { MeshCA } from '../../daemon/identity/ca';
import { NodemeshError } from '../errors';

const NS = 'nodemesh-system';
let server: TestApiServer;
let api: KubeApi;

function recorder(): Output & { lines: string[]; progressLines: string[] } {
  const lines: string[] = [];
  const progressLines: string[] = [];
  return { lines, progressLines, line: (t) => lines.push(t), progress: (t) => progressLines.push(t), done: () => undefined };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, f: () => T | undefined, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

type Ds = { metadata: { generation: number }; spec: { template: { spec: { containers: { image: string }[] } } } };

/** What the DaemonSet controller and the kubelets would write for `nodes`. */
function daemonPod(node: string, generation: number, ready: boolean, waiting?: string) {
  const name = `nodemesh-node-${node}`;
  const existing = server.store.get('v1', 'Pod', name, NS);
  if (existing) server.store.delete('v1', 'Pod', name, NS);
  server.store.create({
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: NS, labels: { 'app.kubernetes.io/name': 'nodemesh-node', 'app.kubernetes.io/part-of': 'nodemesh', 'pod-template-generation': String(generation) } },
    spec: { nodeName: node, serviceAccountName: 'nodemesh-node', containers: [{ name: 'nodemesh-node', image: 'x' }] },
  });
  server.store.patchStatus('v1', 'Pod', name, NS, {
    phase: ready ? 'Running' : 'Pending',
    conditions: [{ type: 'PodScheduled', status: 'True' }, { type: 'Ready', status: ready ? 'True' : 'False', reason: ready ? undefined : 'ContainersNotReady' }],
    containerStatuses: [{ name: 'nodemesh-node', ready, restartCount: 0, image: 'x', imageID: '', state: waiting ? { waiting: { reason: waiting, message: 'Back-off pulling image' } } : { running: { startedAt: new Date().toISOString() } } }],
  });
}

function dsStatus(generation: number, desired: number, ready: number, updated: number) {
  server.store.patchStatus('apps/v1', 'DaemonSet', 'nodemesh-node', NS, {
    observedGeneration: generation, desiredNumberScheduled: desired, currentNumberScheduled: desired, numberMisscheduled: 0,
    updatedNumberScheduled: updated, numberReady: ready, numberAvailable: ready, numberUnavailable: desired - ready,
  });
}

before(async () => {
  server = await startTestApiServer();
  const kc = new KubeConfig();
  kc.loadFromFile(server.kubeconfigPath);
  api = new KubeApi(kc);
});
after(async () => { await server?.close(); });

test('install: SSA as nodemesh, CRDs established first, a CA generated, then waits for the rollout and names the lagging node', async () => {
  const out = recorder();
  const values = defaultValues();
  const done = installOrUpgrade(api, 'install', { values, forceConflicts: false, timeoutSeconds: 60, out, pollMs: 20 });
  const ds = await until('the DaemonSet', () => server.store.get('apps/v1', 'DaemonSet', 'nodemesh-node', NS) as unknown as Ds | undefined);
  const gen = ds.metadata.generation;
  daemonPod('node-1', gen, true);
  daemonPod('node-2', gen, false, 'ImagePullBackOff');
  dsStatus(gen, 2, 1, 2);
  await until('progress naming node-2', () => out.progressLines.find((l) => /1\/2 nodes ready/.test(l) && /node-2 \(nodemesh-node-node-2\): nodemesh-node: ImagePullBackOff/.test(l)));
  daemonPod('node-2', gen, true);
  dsStatus(gen, 2, 2, 2);
  const p = await done;
  assert.equal(p.done, true);
  assert.equal(p.ready, 2);
  assert.match(out.progressLines[out.progressLines.length - 1], /2\/2 nodes ready, 2\/2 updated: rollout complete/);

  // Every object is there, written by server-side apply with the nodemesh field manager.
  for (const o of installObjects(values)) {
    assert.ok(server.store.get(o.apiVersion, o.kind, o.metadata.name, o.metadata.namespace), `${o.kind}/${o.metadata.name}`);
  }
  const applies = server.requests.filter((r) => r.method === 'PATCH' && new URLSearchParams(r.query).get('fieldManager') === 'nodemesh');
  assert.equal(applies.length, installObjects(values).length, 'one server-side apply per object');
  assert.ok(applies.every((r) => new URLSearchParams(r.query).get('force') === null), 'no force without --force-conflicts');
  const firstNonCrd = server.requests.findIndex((r) => r.method === 'PATCH' && !r.path.includes('customresourcedefinitions'));
  const lastCrdGet = server.requests.map((r, i) => (r.method === 'GET' && r.path.includes('customresourcedefinitions') ? i : -1)).reduce((a, b) => Math.max(a, b));
  assert.ok(lastCrdGet < firstNonCrd, 'the CRDs were waited for before anything else was applied');
  assert.ok(out.lines.some((l) => /customresourcedefinition\/authorizationpolicies.security.nodemesh.io established/.test(l)));

  // The CA: in the Secret (written by its own manager), the root in the ConfigMap, never printed.
  const secret = server.store.get('v1', 'Secret', 'nodemesh-ca', NS) as unknown as { data: Record<string, string>; metadata: { managedFields: { manager: string }[] } };
  const key = Buffer.from(secret.data['ca.key'], 'base64').toString();
  const cert = Buffer.from(secret.data['ca.crt'], 'base64').toString();
  const ca = await MeshCA.fromPem(key, cert, { where: 'test' });
  assert.equal(ca.trustDomain, 'cluster.local');
  assert.ok(secret.metadata.managedFields.some((f) => f.manager === 'nodemesh-ca'));
  const cm = server.store.get('v1', 'ConfigMap', 'nodemesh-ca-root', NS) as unknown as { data: Record<string, string> };
  assert.equal(cm.data['ca.crt'], cert);
  assert.ok(!out.lines.join('\n').includes('PRIVATE KEY'));
});

test('upgrade: a new version is applied, the CA is kept, the rollout is waited for again', async () => {
  const before = (server.store.get('v1', 'Secret', 'nodemesh-ca', NS) as unknown as { data: Record<string, string> }).data['ca.crt'];
  const out = recorder();
  const values = resolveValues({ version: '0.2.0' });
  const done = installOrUpgrade(api, 'upgrade', { values, forceConflicts: false, timeoutSeconds: 60, out, pollMs: 20 });
  const ds = await until('the new spec', () => {
    const d = server.store.get('apps/v1', 'DaemonSet', 'nodemesh-node', NS) as unknown as Ds;
    return d.spec.template.spec.containers[0].image.endsWith(':0.2.0') ? d : undefined;
  });
  await until('progress naming the old pods', () => out.progressLines.find((l) => /runs the previous version/.test(l)));
  daemonPod('node-1', ds.metadata.generation, true);
  daemonPod('node-2', ds.metadata.generation, true);
  dsStatus(ds.metadata.generation, 2, 2, 2);
  await done;
  assert.equal((server.store.get('v1', 'Secret', 'nodemesh-ca', NS) as unknown as { data: Record<string, string> }).data['ca.crt'], before);
  assert.ok(out.lines.includes('mesh CA kept (secret/nodemesh-ca already holds one)'));
});

test('install: a field owned by another manager is a conflict unless --force-conflicts', async () => {
  server.store.apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'nodemesh-node', namespace: NS, labels: { 'app.kubernetes.io/version': 'hand-edited' } } }, { manager: 'kubectl-edit', force: true });
  const out = recorder();
  await assert.rejects(installOrUpgrade(api, 'install', { values: resolveValues({ version: '0.2.0' }), forceConflicts: false, timeoutSeconds: 5, out, pollMs: 20 }),
    (e: unknown) => NodemeshError.is(e, 'NODEMESH_E_KUBE_APPLY_CONFLICT') && /ServiceAccount\/nodemesh-system\/nodemesh-node/.test(e.message) && /--force-conflicts/.test(e.message));
  const ok = installOrUpgrade(api, 'install', { values: resolveValues({ version: '0.2.0' }), forceConflicts: true, timeoutSeconds: 30, out, pollMs: 20 });
  await ok;
  const sa = server.store.get('v1', 'ServiceAccount', 'nodemesh-node', NS) as unknown as { metadata: { labels: Record<string, string> } };
  assert.equal(sa.metadata.labels['app.kubernetes.io/version'], '0.2.0');
});

test('rollout wait: a timeout names the lagging node and why', async () => {
  const ds = server.store.get('apps/v1', 'DaemonSet', 'nodemesh-node', NS) as unknown as Ds;
  daemonPod('node-2', ds.metadata.generation, false, 'CrashLoopBackOff');
  dsStatus(ds.metadata.generation, 2, 1, 2);
  await assert.rejects(installOrUpgrade(api, 'upgrade', { values: resolveValues({ version: '0.2.0' }), forceConflicts: false, timeoutSeconds: 1, out: recorder(), pollMs: 20 }),
    (e: unknown) => NodemeshError.is(e, 'NODEMESH_E_KUBE_TIMEOUT') && /1\/2 nodes ready/.test(e.message) && /node-2: nodemesh-node: CrashLoopBackOff/.test(e.message));
  daemonPod('node-2', ds.metadata.generation, true);
  dsStatus(ds.metadata.generation, 2, 2, 2);
});

test('enroll / unenroll label the namespace; status counts enrolled pods per node from the API', async () => {
  server.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { team: 'a' } } });
  for (const [name, node] of [['web-1', 'node-1'], ['web-2', 'node-2'], ['db-1', 'node-2']]) {
    server.store.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'shop', labels: name === 'db-1' ? { 'nodemesh.io/dataplane-mode': 'none' } : {} }, spec: { nodeName: node, containers: [{ name: 'c', image: 'x' }] } });
    server.store.patchStatus('v1', 'Pod', name, 'shop', { phase: 'Running' });
  }
  assert.equal(await setEnrolment(api, 'shop', true), 'changed');
  assert.equal(await setEnrolment(api, 'shop', true), 'unchanged');
  const ns = server.store.get('v1', 'Namespace', 'shop') as unknown as { metadata: { labels: Record<string, string> } };
  assert.deepEqual(ns.metadata.labels, { team: 'a', 'kubernetes.io/metadata.name': 'shop', 'nodemesh.io/dataplane-mode': 'ambient' });
  const s = await clusterStatus(api);
  assert.deepEqual(s.nodes.map((n) => [n.node, n.daemonReady, n.enrolledPods]), [['node-1', true, 1], ['node-2', true, 1]]);
  assert.equal(await setEnrolment(api, 'shop', false), 'changed');
  assert.equal((server.store.get('v1', 'Namespace', 'shop') as unknown as { metadata: { labels: Record<string, string> } }).metadata.labels['nodemesh.io/dataplane-mode'], undefined);
  await assert.rejects(setEnrolment(api, 'nope', true), (e: unknown) => NodemeshError.is(e, 'NODEMESH_E_KUBE_NAMESPACE_NOT_FOUND'));
});

test('uninstall: the daemons go, a detach DaemonSet runs on every node, then everything else in reverse; CRDs stay without --purge', async () => {
  const out = recorder();
  const done = uninstall(api, { values: defaultValues(), purge: false, timeoutSeconds: 60, out, pollMs: 20 });
  const detach = await until('the detach DaemonSet', () => server.store.get('apps/v1', 'DaemonSet', 'nodemesh-node-uninstall', NS) as unknown as Ds | undefined);
  assert.equal(server.store.get('apps/v1', 'DaemonSet', 'nodemesh-node', NS), undefined, 'the node DaemonSet is gone first');
  assert.deepEqual((detach.spec.template.spec as unknown as { initContainers: { command: string[] }[] }).initContainers[0].command.slice(-1), ['--uninstall']);
  server.store.patchStatus('apps/v1', 'DaemonSet', 'nodemesh-node-uninstall', NS, { observedGeneration: detach.metadata.generation, desiredNumberScheduled: 2, currentNumberScheduled: 2, numberMisscheduled: 0, numberReady: 2 });
  await done;
  assert.equal(server.store.get('apps/v1', 'DaemonSet', 'nodemesh-node-uninstall', NS), undefined);
  assert.equal(server.store.get('v1', 'Namespace', NS)?.metadata.deletionTimestamp !== undefined || server.store.get('v1', 'Namespace', NS) === undefined, true);
  assert.equal(server.store.get('rbac.authorization.k8s.io/v1', 'ClusterRole', 'nodemesh-node'), undefined);
  assert.ok(server.store.get('apiextensions.k8s.io/v1', 'CustomResourceDefinition', 'authorizationpolicies.security.nodemesh.io'));
  const deleted = out.lines.filter((l) => l.endsWith(' deleted'));
  assert.equal(deleted[0], 'daemonset/nodemesh-node deleted');
  assert.equal(deleted[deleted.length - 1], 'namespace/nodemesh-system deleted');
});
