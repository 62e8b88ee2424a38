// nodemesh-identity as processes in Kubernetes mode against the test API server: two replicas
// with the RBAC of the rendered manifests (and nothing more) share one CA from one Secret,
// publish its root, authenticate a node daemon's pod-bound projected token through
// TokenReview (re-read from its file, so a rotated token works), and check node binding
// against the API's pods. This is how `local up --apiserver` runs the identity service.
import { test, after, before } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ChildProcess, spawn } from 'node:child_process';
import { startTestApiServer, type TestApiServer } from '../../test/k8s-apiserver/test-api-server';
import { IdentityClient } from './identity-client';
import { loadIdentityClientConfig } from './identity-client-config';
import { verifyPeerChain } from './ca';
import { identityRbac, serviceAccounts } from '../../installer/manifests/rbac';
import { waypointControllerRbac } from '../../installer/manifests/waypoint-controller-rbac';
import { toPlain } from '../../installer/manifests/render';
import { defaultValues } from '../../installer/manifests/values';
import { NodemeshError } from '../errors';
import { gatewayApiCrd } from '../../test/k8s-apiserver/gateway-api-crds';

const MAIN = path.resolve(__dirname, '..', 'identity-main.js');
const NS = 'nodemesh-system';
let server: TestApiServer;
let tmp: string;
const children: ChildProcess[] = [];

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nodemesh-identity-kube-'));
  server = await startTestApiServer();
  const s = server.store;
  for (const ns of [NS, 'shop']) s.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  const v = defaultValues();
  for (const o of toPlain([...serviceAccounts(v), ...identityRbac(v), ...waypointControllerRbac(v)])) s.apply(o as never);
  s.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'api', namespace: 'shop' } });
  s.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'nodemesh-ca', namespace: NS }, type: 'Opaque' });
  s.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'nodemesh-ca-root', namespace: NS } });
  const pod = (namespace: string, name: string, sa: string, node: string) => {
    s.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace }, spec: { nodeName: node, serviceAccountName: sa, containers: [{ name: 'c', image: 'x' }] } });
    s.patchStatus('v1', 'Pod', name, namespace, { phase: 'Running' });
  };
  pod(NS, 'nodemesh-node-a', 'nodemesh-node', 'node-a');
  pod(NS, 'nodemesh-node-b', 'nodemesh-node', 'node-b');
  pod('shop', 'api-1', 'api', 'node-a');
  // A waypoint as the controller makes it: Gateway, ServiceAccount, a pod with its labels.
  s.create(gatewayApiCrd('Gateway', 'gateways', 'Namespaced') as never);
  for (let i = 0; i < 50 && !(() => { try { s.list('gateway.networking.k8s.io/v1', 'Gateway'); return true; } catch { return false; } })(); i++) await new Promise((r) => setTimeout(r, 20));
  s.create({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'waypoint', namespace: 'shop' }, spec: { gatewayClassName: 'nodemesh-waypoint' } } as never);
  s.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'waypoint', namespace: 'shop' } });
  s.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'waypoint-5f7-q', namespace: 'shop', labels: { 'app.kubernetes.io/component': 'nodemesh-waypoint', 'gateway.networking.k8s.io/gateway-name': 'waypoint' } },
    spec: { nodeName: 'node-b', serviceAccountName: 'waypoint', containers: [{ name: 'c', image: 'x' }] } });
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await server?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function startIdentity(kubeconfig: string): { child: ChildProcess; ready: Promise<Record<string, unknown>>; lines: Record<string, unknown>[] } {
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', NODEMESH_SOURCE: 'kube', NODEMESH_KUBECONFIG: kubeconfig, NODEMESH_IDENTITY_LISTEN: '127.0.0.1:0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: Record<string, unknown>[] = [];
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const l = JSON.parse(buf.slice(0, i)) as Record<string, unknown>;
        buf = buf.slice(i + 1);
        lines.push(l);
        if (l.msg === 'nodemesh-identity ready') resolve(l);
      }
    });
    child.on('exit', (code) => reject(new Error(`nodemesh-identity exited (${code}): ${err}`)));
  });
  return { child, ready, lines };
}

test('two kube-mode replicas, least-privilege RBAC, one CA; TokenReview and node binding through the API', async () => {
  // The identity service's own credentials: its ServiceAccount's token, for the API audience.
  const kubeconfig = server.writeKubeconfig(server.store.issueToken(NS, 'nodemesh-identity'), 'nodemesh-identity');
  const replicas = [startIdentity(kubeconfig), startIdentity(kubeconfig)];
  const ready = await Promise.all(replicas.map((r) => r.ready));
  const root = (server.store.get('v1', 'ConfigMap', 'nodemesh-ca-root', NS) as unknown as { data: Record<string, string> }).data['ca.crt'];
  assert.match(root, /BEGIN CERTIFICATE/);
  const created = replicas.flatMap((r) => r.lines.filter((l) => l.msg === 'mesh CA created'));
  assert.ok(created.length <= 1, 'at most one replica generated the CA');
  fs.writeFileSync(path.join(tmp, 'ca.crt'), root);

  const tokenFile = path.join(tmp, 'token');
  const mint = (pod: string) => server.store.issueToken(NS, 'nodemesh-node', { audiences: ['nodemesh-identity'], boundPod: pod, expirationSeconds: 3600 });
  fs.writeFileSync(tokenFile, mint('nodemesh-node-a'));
  for (const r of ready) {
    const cfg = loadIdentityClientConfig({
      NODEMESH_IDENTITY_ADDRESS: `127.0.0.1:${r.port}`, NODEMESH_NODE_CREDENTIAL_FILE: tokenFile, NODEMESH_CA_ROOT_FILE: path.join(tmp, 'ca.crt'),
    });
    const client = IdentityClient.fromConfig(cfg);
    try {
      const id = await client.fetchIdentity({ namespace: 'shop', serviceAccount: 'api' }, 600);
      assert.equal(await verifyPeerChain([...id.certChainPem], [root], 'cluster.local'), 'spiffe://cluster.local/ns/shop/sa/api');
      // The kubelet rotates the projected token: the next request reads the new one.
      fs.writeFileSync(tokenFile, mint('nodemesh-node-a'));
      await client.fetchIdentity({ namespace: 'shop', serviceAccount: 'api' }, 600);
      // node-b runs no pod of shop/api: refused.
      fs.writeFileSync(tokenFile, mint('nodemesh-node-b'));
      await assert.rejects(client.fetchIdentity({ namespace: 'shop', serviceAccount: 'api' }, 600),
        (e: unknown) => NodemeshError.is(e) && e.details?.grpcCode === grpc.status.PERMISSION_DENIED && e.details?.serverCode === 'NODEMESH_E_IDENTITY_NODE_BINDING');
      // Not the node daemon's service account: unauthenticated.
      fs.writeFileSync(tokenFile, server.store.issueToken('shop', 'api', { audiences: ['nodemesh-identity'], boundPod: 'api-1' }));
      await assert.rejects(client.fetchIdentity({ namespace: 'shop', serviceAccount: 'api' }, 600),
        (e: unknown) => NodemeshError.is(e) && e.details?.grpcCode === grpc.status.UNAUTHENTICATED);
      // A waypoint with its own projected token: its identity, nothing else.
      fs.writeFileSync(tokenFile, server.store.issueToken('shop', 'waypoint', { audiences: ['nodemesh-identity'], boundPod: 'waypoint-5f7-q' }));
      const wp = await client.fetchIdentity({ namespace: 'shop', serviceAccount: 'waypoint' }, 600);
      assert.equal(await verifyPeerChain([...wp.certChainPem], [root], 'cluster.local'), 'spiffe://cluster.local/ns/shop/sa/waypoint');
      await assert.rejects(client.fetchIdentity({ namespace: 'shop', serviceAccount: 'api' }, 600),
        (e: unknown) => NodemeshError.is(e) && e.details?.grpcCode === grpc.status.PERMISSION_DENIED && e.details?.serverCode === 'NODEMESH_E_IDENTITY_WAYPOINT_BINDING');
      fs.writeFileSync(tokenFile, mint('nodemesh-node-a'));
    } finally {
      client.close();
    }
  }
  // The waypoint controller inside: of the two replicas exactly one holds its Lease.
  const leaders = () => replicas.filter((r) => r.lines.some((l) => l.msg === 'became the waypoint controller leader')).length;
  for (const end = Date.now() + 10_000; leaders() === 0 && Date.now() < end;) await new Promise((res) => setTimeout(res, 100));
  assert.equal(leaders(), 1);
  // Nothing was refused for lack of RBAC: the rendered Roles are enough.
  const forbidden = server.requests.filter((r) => r.user.includes('nodemesh-identity') && r.code === 403);
  assert.deepEqual(forbidden, []);
  for (const r of replicas) r.child.kill('SIGTERM');
});
