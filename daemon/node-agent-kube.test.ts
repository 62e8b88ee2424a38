// The agent on the Kubernetes source (test API server) with an in-memory datapath: this
// node's pods are located on the node (a finder standing in for the /proc and cgroup walk,
// which pod-locator.test.ts covers with fixture trees), enrolled when their namespace is
// labelled, unenrolled when the label flips back; a pod whose sandbox is not there yet is
// retried and reported, then enrolled.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { NodeAgent } from './node-agent';
import { loadConfig } from './config';
import { MemoryDatapath } from './redirection/memory-datapath';
import { LoopbackSocketFactory } from './redirection/socket-factory';
import { KubeSource } from './sources/kube-source';
import { KubeHttp, loadKubeConfig } from './sources/kube-client';
import { startTestApiServer } from '../test/k8s-apiserver/test-api-server';
import { KubeSourceErrors } from './errors';
import type { PodFinder } from './redirection/pod-sandbox-tracker';
import { validateObject } from './schema';

function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => (cond() ? resolve() : Date.now() > end ? reject(new Error(`timed out waiting for ${what}`)) : setTimeout(tick, 20));
    tick();
  });
}

test('node agent on the kube source: locate, enrol on label, retry a missing sandbox, unenrol on label flip', async (t) => {
  const api = await startTestApiServer();
  t.after(() => api.close());
  const { store } = api;
  store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } });
  const running = (name: string, node: string, ip: string) => {
    store.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'shop', labels: { app: name } },
      spec: { nodeName: node, serviceAccountName: 'default', containers: [{ name: 'app', image: 'example/app:1' }] } });
    store.patchStatus('v1', 'Pod', name, 'shop', { phase: 'Running', podIP: ip, podIPs: [{ ip }], conditions: [{ type: 'Ready', status: 'True' }] });
    return store.get('v1', 'Pod', name, 'shop')!.metadata!.uid as string;
  };
  const web = running('web', 'node-1', '10.244.1.2');
  const late = running('late', 'node-1', '10.244.1.3');
  running('remote', 'node-2', '10.244.2.2');
  // A pod the sandbox publishes (local up --apiserver) names its namespace by annotation: used as is.
  store.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'published', namespace: 'shop', annotations: { 'sandbox.nodemesh.io/netns': '/run/netns/published' } },
    spec: { nodeName: 'node-1', containers: [{ name: 'app', image: 'example/app:1' }] } });
  store.patchStatus('v1', 'Pod', 'published', 'shop', { phase: 'Running', podIP: '10.244.1.4', podIPs: [{ ip: '10.244.1.4' }] });
  const published = store.get('v1', 'Pod', 'published', 'shop')!.metadata!.uid as string;

  // The sandbox of `late` shows up only after a few looks.
  const looked = new Map<string, number>();
  const finder: PodFinder = {
    locate(uid, pod) {
      const n = (looked.get(uid) ?? 0) + 1;
      looked.set(uid, n);
      if (uid === late && n < 3) throw KubeSourceErrors.NODEMESH_E_POD_SANDBOX_NOT_FOUND({ pod: pod ?? uid, uid, reason: 'its cgroup has no processes yet' });
      return { netnsPath: `/proc/${1000 + n}/ns/net`, cgroupPath: `/sys/fs/cgroup/kubepods/pod${uid}`, pid: 1000 + n };
    },
    stillValid: () => true,
  };
  const cfg = loadConfig({ NODEMESH_NODE_NAME: 'node-1', NODEMESH_KUBECONFIG: api.kubeconfigPath,
    NODEMESH_ADMIN_PORT: '0', NODEMESH_METRICS_PORT: '0', NODEMESH_READINESS_PORT: '0' });
  assert.equal(cfg.source.kind, 'kube', 'the default source');
  const datapath = new MemoryDatapath();
  const source = new KubeSource({ http: new KubeHttp(loadKubeConfig({ kind: 'kubeconfig', path: api.kubeconfigPath })), log: pino({ level: 'silent' }), validate: validateObject });
  const agent = new NodeAgent(cfg, { datapath, sockets: new LoopbackSocketFactory(), source, podFinder: finder, log: pino({ level: 'silent' }) });
  await agent.start();
  t.after(() => agent.stop({ keepAttached: false }));
  assert.deepEqual([...datapath.pods.keys()], [], 'nothing enrolled while the namespace is not');
  assert.equal(looked.size, 0, 'pods outside the mesh are not looked for');

  store.update({ ...store.get('v1', 'Namespace', 'shop')!, metadata: { ...store.get('v1', 'Namespace', 'shop')!.metadata, labels: { 'nodemesh.io/dataplane-mode': 'ambient' } } });
  await until('the first pod enrolled', () => datapath.pods.has(web));
  assert.equal(agent.currentSnapshot().workloads.get(web)?.netnsPath, '/proc/1001/ns/net');
  assert.ok(!looked.has(agent.currentSnapshot().workloadsByIP.get('10.244.2.2')!.uid), 'another node\'s pod is not looked for');
  await until('the late pod enrolled after retries', () => datapath.pods.has(late));
  assert.equal(looked.get(late), 3);
  await until('the published pod enrolled', () => datapath.pods.has(published));
  assert.equal(datapath.pods.get(published)?.netnsPath, '/run/netns/published');
  assert.equal(looked.has(published), false, 'a pod whose sandbox is annotated is not looked for');

  store.update({ ...store.get('v1', 'Namespace', 'shop')!, metadata: { ...store.get('v1', 'Namespace', 'shop')!.metadata, labels: {} } });
  await until('unenrolled when the label flips back', () => datapath.pods.size === 0);
  const metrics = await (agent as unknown as { metrics: { registry: { metrics(): Promise<string> } } }).metrics.registry.metrics();
  assert.match(metrics, /nodemesh_pod_sandbox_lookup_failures_total 2/);
});
