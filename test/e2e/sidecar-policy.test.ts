// Sidecar mode enforces the same identities and policies as ambient: two pods labelled
// `nodemesh.io/dataplane-mode: sidecar`, each with its own nodemesh-sidecar (eBPF capture on
// its pod's cgroup only), client on node-1 and server on node-2. The client reaches the
// server through a Service over HBONE mTLS; both sidecars record both SPIFFE identities; a
// DENY AuthorizationPolicy on the server for the client's principal then refuses it, and the
// server's sidecar records the denial. Needs root; fails, never skips.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { adminGetJson } from '../../installer/sandbox/admin-client';
import { startSidecars, stopProxies, type ProxyRecord } from '../../installer/sandbox/sidecars';
import { apply, down, eventually, httpProbe, nodemesh, requireSandboxPrerequisites, status, up } from './helpers/sandbox';
import type { ConnectionRecord } from '../../daemon/proxy/connection-table';

const SERVER = `require('http').createServer((q, s) => s.end('hello from server\\n')).listen(8080)`;
const MANIFEST = `apiVersion: v1
kind: Namespace
metadata:
  name: sc
  labels:
    nodemesh.io/dataplane-mode: sidecar
---
apiVersion: v1
kind: Pod
metadata: { name: server, namespace: sc, labels: { app: server } }
spec:
  nodeName: node-2
  serviceAccountName: server
  containers:
  - name: server
    command: ["node", "-e", ${JSON.stringify(SERVER)}]
    ports: [{ name: http, containerPort: 8080 }]
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: sc, labels: { app: client } }
spec:
  nodeName: node-1
  serviceAccountName: client
  containers:
  - name: client
    command: ["sleep", "600"]
---
apiVersion: v1
kind: Service
metadata: { name: server, namespace: sc }
spec:
  selector: { app: server }
  ports: [{ name: http, port: 80, targetPort: 8080 }]
`;
const DENY = `apiVersion: security.nodemesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: deny-client, namespace: sc }
spec:
  selector: { matchLabels: { app: server } }
  action: DENY
  rules:
  - from: [{ source: { principals: ["cluster.local/ns/sc/sa/client"] } }]
`;

let proxies: ProxyRecord[] = [];
const sidecarOf = (pod: string): ProxyRecord => proxies.find((p) => p.pod.name === pod)!;
const records = async (pod: string): Promise<ConnectionRecord[]> => {
  const j = await adminGetJson<{ open: ConnectionRecord[]; closed: ConnectionRecord[] }>(sidecarOf(pod).adminSocket!, '/debug/connections');
  return [...j.open, ...j.closed];
};

before(async () => {
  requireSandboxPrerequisites();
  await up({ nodes: 2, yaml: MANIFEST });
  proxies = await startSidecars([{ namespace: 'sc', name: 'client' }, { namespace: 'sc', name: 'server' }]);
});

after(async () => {
  await stopProxies(proxies).catch(() => undefined);
  await down();
});

test('sidecar mode: mTLS with both identities, and a DENY policy holds', { timeout: 120_000 }, async () => {
  const s = await status();
  // The node daemons leave sidecar pods alone.
  for (const p of s.pods.filter((x) => x.namespace === 'sc')) assert.equal(p.enrolled, false, `${p.name} is not enrolled by its node daemon`);
  const vip = s.services.find((x) => x.namespace === 'sc' && x.name === 'server')!.clusterIP;

  const ok = await httpProbe('sc/client', `http://${vip}/`);
  assert.equal(ok.code, 0, `allowed before the policy: ${ok.stdout} ${ok.stderr}`);
  assert.equal(ok.stdout.trim(), 'hello from server');
  const out = await eventually('the client sidecar records the connection', async () =>
    (await records('client')).find((r) => r.direction === 'outbound' && r.path === 'hbone' && r.verdict === 'allow'));
  assert.equal(out.sourceIdentity, 'spiffe://cluster.local/ns/sc/sa/client');
  assert.equal(out.destinationIdentity, 'spiffe://cluster.local/ns/sc/sa/server');
  const inb = await eventually('the server sidecar records the connection', async () =>
    (await records('server')).find((r) => r.direction === 'inbound-hbone' && r.verdict === 'allow'));
  assert.equal(inb.sourceIdentity, 'spiffe://cluster.local/ns/sc/sa/client');
  assert.equal(inb.destinationIdentity ?? 'spiffe://cluster.local/ns/sc/sa/server', 'spiffe://cluster.local/ns/sc/sa/server');

  const applied = await apply(DENY);
  assert.equal(applied.code, 0, `apply: ${applied.stderr}`);
  await eventually('the server sidecar has the policy', async () => {
    const snap = await adminGetJson<{ authorizationPolicies: { metadata: { name: string } }[] }>(sidecarOf('server').adminSocket!, '/debug/snapshot');
    return snap.authorizationPolicies.some((p) => p.metadata.name === 'deny-client');
  });
  const denied = await httpProbe('sc/client', `http://${vip}/`, 3000);
  assert.notEqual(denied.code, 0, `denied after the policy, got: ${denied.stdout}`);
  assert.ok(!denied.stdout.includes('hello from server'));
  const refusal = await eventually('the server sidecar records the denial', async () =>
    (await records('server')).find((r) => r.direction === 'inbound-hbone' && r.verdict === 'deny'));
  assert.equal(refusal.sourceIdentity, 'spiffe://cluster.local/ns/sc/sa/client');

  const removed = await nodemesh(['local', 'delete', '-f', '-'], { input: DENY });
  assert.equal(removed.code, 0, removed.stderr);
  await eventually('allowed again once the policy is gone', async () => (await httpProbe('sc/client', `http://${vip}/`, 3000)).code === 0, 20_000);
});
