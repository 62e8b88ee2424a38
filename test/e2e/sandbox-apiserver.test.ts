// The Kubernetes path end to end on one machine: `nodemesh local up --apiserver KUBECONFIG`
// against the test API server running as its own process. The sandbox publishes its nodes and
// pods (with status) and creates what controllers would (EndpointSlices, ServiceAccounts,
// tokens by TokenRequest); its node daemons read the API server (NODEMESH_SOURCE=kube) and
// nodemesh-identity authenticates them by TokenReview. Flipping the namespace's label enrols
// the pods (a client->server call goes over HBONE with certificates from the identity
// service); flipping it back unenrols them (the next connection is not captured). `local down`
// removes what was published. Needs root; a missing prerequisite fails the test.
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { connections, echoProbe, parseGreeting } from './helpers/mesh';
import {
  REPO, STATE_DIR, adminGet, apply, down, eventually, leftovers, nodemeshOk, processAlive, requireSandboxPrerequisites, status,
} from './helpers/sandbox';

const VIP = '10.96.7.7';
const PUBLISHED = 'sandbox.nodemesh.io/published=true';
const namespace = (ambient: boolean): string => `
apiVersion: v1
kind: Namespace
metadata: { name: shop${ambient ? ', labels: { nodemesh.io/dataplane-mode: ambient }' : ''} }
`;
const MANIFEST = `${namespace(false)}
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: server, namespace: shop }
---
apiVersion: v1
kind: Pod
metadata: { name: server, namespace: shop, labels: { app: echo } }
spec:
  nodeName: node-2
  serviceAccountName: server
  containers: [{ name: echo, command: [nodemesh-sample-app, tcp-echo, --port, "9000"], ports: [{ name: echo, containerPort: 9000 }] }]
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: shop }
spec: { nodeName: node-1, serviceAccountName: client, containers: [{ name: c, command: [sleep, "3600"] }] }
---
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: shop }
spec: { selector: { app: echo }, clusterIP: ${VIP}, ports: [{ name: tcp, port: 80, targetPort: echo }] }
`;

interface Workloads { pods: { uid: string; namespace: string; name: string; enrolled: boolean }[] }
interface ClusterJson {
  nodes: { name: string; daemon?: { pid: number; startTime: string } }[];
  identity?: { process?: { pid: number; startTime: string } };
  apiserver?: { relay?: { pid: number; startTime: string }; dir: string };
}

const environ = (pid: number): Record<string, string> => Object.fromEntries(
  fs.readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));

describe('local up --apiserver: the sandbox on the Kubernetes path', () => {
  let tmp = '';
  let server: ChildProcess | undefined;
  let kubeconfig = '';
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let recorded: ClusterJson;

  before(async () => {
    requireSandboxPrerequisites();
    await down();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nodemesh-sandbox-apiserver-'));
    kubeconfig = path.join(tmp, 'kubeconfig');
    // The API server on the host's loopback; the sandbox reaches it through its relay.
    server = spawn(process.execPath, [path.join(REPO, 'dist', 'test', 'k8s-apiserver', 'main.js'), '--port', '0', '--kubeconfig-out', kubeconfig, '--bookmark-interval-ms', '1000'],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<string>((resolve, reject) => {
      let out = '';
      server!.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
      });
      server!.on('exit', (code) => reject(new Error(`the test API server exited (${code}) before printing its URL`)));
    });
    kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfig);
    core = kc.makeApiClient(k8s.CoreV1Api);
    await nodemeshOk(['local', 'up', '--nodes', '2', '--apiserver', kubeconfig, '-f', '-'], { input: MANIFEST, timeoutMs: 240_000 });
    recorded = JSON.parse(fs.readFileSync(path.join(STATE_DIR, 'cluster.json'), 'utf8')) as ClusterJson;
  });

  after(async () => {
    try {
      await down();
    } finally {
      if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGTERM');
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    }
    assert.deepEqual(leftovers(), []);
    for (const p of [recorded?.apiserver?.relay, recorded?.identity?.process, ...(recorded?.nodes ?? []).map((n) => n.daemon)]) {
      assert.equal(processAlive(p), false, `process ${p?.pid} is gone`);
    }
  });

  test('the daemons and nodemesh-identity run on the Kubernetes source', () => {
    for (const n of recorded.nodes) {
      const env = environ(n.daemon!.pid);
      assert.equal(env.NODEMESH_SOURCE, 'kube', n.name);
      assert.ok(env.NODEMESH_KUBECONFIG && fs.existsSync(env.NODEMESH_KUBECONFIG), `${n.name} has a kubeconfig`);
      assert.equal(env.NODEMESH_SANDBOX_OBJECTS, undefined, `${n.name} does not read the object directory`);
    }
    const id = environ(recorded.identity!.process!.pid);
    assert.equal(id.NODEMESH_SOURCE, 'kube');
    assert.equal(id.NODEMESH_NODE_CREDENTIALS, undefined, 'no static node credentials: TokenReview');
    // The node's identity credential is a pod-bound projected token from TokenRequest (a JWT).
    const cred = fs.readFileSync(path.join(STATE_DIR, 'nodes', 'node-1', 'credential'), 'utf8');
    const claims = JSON.parse(Buffer.from(cred.split('.')[1]!, 'base64url').toString()) as { aud: string[]; sub: string; 'kubernetes.io': { pod: { name: string } } };
    assert.deepEqual(claims.aud, ['nodemesh-identity']);
    assert.equal(claims.sub, 'system:serviceaccount:nodemesh-system:nodemesh-node');
    assert.equal(claims['kubernetes.io'].pod.name, 'nodemesh-node-node-1');
  });

  test('pods appear in the API server with status, with EndpointSlices, Nodes and ServiceAccounts', async () => {
    const local = await status();
    for (const name of ['client', 'server']) {
      const p = await core.readNamespacedPod({ name, namespace: 'shop' });
      const mine = local.pods.find((x) => x.namespace === 'shop' && x.name === name)!;
      assert.equal(p.status?.phase, 'Running', name);
      assert.equal(p.status?.podIP, mine.ip, name);
      assert.equal(p.spec?.nodeName, mine.node);
      assert.equal(p.metadata?.uid, mine.uid, 'the sandbox records the uid the API server gave');
      assert.equal(p.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True', name);
    }
    const server = local.pods.find((x) => x.name === 'server')!;
    const slices = await kc.makeApiClient(k8s.DiscoveryV1Api).listNamespacedEndpointSlice({ namespace: 'shop', labelSelector: 'kubernetes.io/service-name=echo' });
    assert.equal(slices.items.length, 1);
    assert.deepEqual(slices.items[0]!.endpoints.map((e) => [e.addresses[0], e.conditions?.ready, e.targetRef?.name]), [[server.ip, true, 'server']]);
    assert.deepEqual(slices.items[0]!.ports?.map((p) => p.port), [9000]);
    const nodes = await core.listNode();
    assert.deepEqual(nodes.items.map((n) => n.metadata?.name).sort(), ['node-1', 'node-2']);
    const sas = await core.listNamespacedServiceAccount({ namespace: 'shop' });
    assert.deepEqual(sas.items.map((s) => s.metadata?.name).sort(), ['client', 'default', 'server']);
  });

  const clientRecords = async () => (await connections('node-1')).filter((c) => c.pod.name === 'client' && c.originalDestination.address === `${VIP}:80`);
  const enrolled = async (want: boolean) => {
    for (const [node, pod] of [['node-1', 'client'], ['node-2', 'server']] as const) {
      await eventually(`${pod} ${want ? 'enrolled' : 'unenrolled'} on ${node}`, async () => {
        const w = (await adminGet(node, '/debug/workloads')).json<Workloads>();
        return w.pods.find((p) => p.namespace === 'shop' && p.name === pod)?.enrolled === want;
      }, 30_000);
    }
  };

  test('not enrolled at first: the call is not captured', async () => {
    await enrolled(false);
    const r = await echoProbe('shop/client', VIP, 80, { send: 'plain' });
    assert.equal(r.echo, 'plain', JSON.stringify(r));
    assert.deepEqual(await clientRecords(), []);
  });

  test('the label flips to ambient: enrolled from the API server, the call goes over HBONE with certificates from TokenReview', async () => {
    const r = await apply(namespace(true));
    assert.equal(r.code, 0, r.stderr);
    const ns = await core.readNamespace({ name: 'shop' });
    assert.equal(ns.metadata?.labels?.['nodemesh.io/dataplane-mode'], 'ambient', 'the label went to the API server');
    await enrolled(true);
    const p = await echoProbe('shop/client', VIP, 80, { send: 'meshed' });
    assert.equal(p.echo, 'meshed', JSON.stringify(p));
    assert.equal(parseGreeting(p.greeting).pod, 'server');
    const rec = await eventually('the client connection in node-1\'s table', async () => (await clientRecords()).find((c) => c.verdict === 'allow'));
    assert.equal(rec.path, 'hbone');
    assert.equal(rec.sourceIdentity, 'spiffe://cluster.local/ns/shop/sa/client');
    assert.equal(rec.destinationIdentity, 'spiffe://cluster.local/ns/shop/sa/server');
    // nodemesh-identity (Kubernetes mode) issued them to the nodes their TokenReviewed
    // pod-bound tokens name.
    const log = fs.readFileSync(path.join(STATE_DIR, 'logs', 'identity.log'), 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const issued = log.filter((l) => l.msg === 'certificate issued').map((l) => `${l.node as string} ${l.spiffeId as string}`);
    assert.ok(issued.includes('node-1 spiffe://cluster.local/ns/shop/sa/client'), issued.join('; '));
    assert.ok(issued.includes('node-2 spiffe://cluster.local/ns/shop/sa/server'), issued.join('; '));
    // No daemon's token was refused (a node-binding refusal in a race with the API is retried).
    assert.deepEqual(log.filter((l) => l.msg === 'certificate refused' && l.status === 'UNAUTHENTICATED'), []);
  });

  test('the label flips back: unenrolled, the next connection is not captured', async () => {
    const r = await apply(namespace(false));
    assert.equal(r.code, 0, r.stderr);
    const ns = await core.readNamespace({ name: 'shop' });
    assert.equal(ns.metadata?.labels?.['nodemesh.io/dataplane-mode'], undefined);
    await enrolled(false);
    const before = (await clientRecords()).length;
    const p = await echoProbe('shop/client', VIP, 80, { send: 'plain again' });
    assert.equal(p.echo, 'plain again', JSON.stringify(p));
    assert.equal((await clientRecords()).length, before, 'no new connection record');
  });

  test('local down removes what the sandbox published', async () => {
    await nodemeshOk(['local', 'down'], { timeoutMs: 120_000 });
    const pods = await core.listPodForAllNamespaces({ labelSelector: PUBLISHED });
    assert.deepEqual(pods.items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`), []);
    assert.deepEqual((await core.listNode()).items.map((n) => n.metadata?.name), []);
    const nss = (await core.listNamespace()).items.map((n) => n.metadata?.name);
    assert.ok(!nss.includes('shop') && !nss.includes('nodemesh-system'), nss.join(' '));
  });
});
