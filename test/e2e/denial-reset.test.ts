// Issue 7.4 on the real kernel: a connection the mesh refuses is reset (RST), so the app in
// the enrolled pod sees ECONNRESET, not a clean close as if a server had answered nothing.
// Three ways to be refused: a DENY policy enforced by the destination's daemon on another node
// (HBONE 403), the same DENY on the same-node path, and a destination the routing decision
// refuses (a mesh port). Issue 7.3 alongside: the denial metric carries the workload's owner
// and a reason from the fixed list.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { adminGet, apply, down, eventually, leftovers, nodemeshOk, requireSandboxPrerequisites, status } from './helpers/sandbox';
import { connections, echoProbe } from './helpers/mesh';

const MANIFEST = `
apiVersion: v1
kind: Namespace
metadata: { name: mesh, labels: { nodemesh.io/dataplane-mode: ambient } }
---
apiVersion: v1
kind: Pod
metadata: { name: client-7c9d8f6b5-q2w3e, namespace: mesh, labels: { app: client, pod-template-hash: 7c9d8f6b5 },
  ownerReferences: [{ apiVersion: apps/v1, kind: ReplicaSet, name: client-7c9d8f6b5, uid: 5b0c6f1e-0000-4000-8000-000000000001, controller: true }] }
spec: { nodeName: node-1, serviceAccountName: client, containers: [{ name: c, command: [sleep, "3600"] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: far, namespace: mesh, labels: { app: far } }
spec: { nodeName: node-2, serviceAccountName: far, containers: [{ name: c, command: [nodemesh-sample-app, tcp-echo, --port, "9000"] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: near, namespace: mesh, labels: { app: near } }
spec: { nodeName: node-1, serviceAccountName: near, containers: [{ name: c, command: [nodemesh-sample-app, tcp-echo, --port, "9000"] }] }
`;

const DENY = `
apiVersion: security.nodemesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: deny-client, namespace: mesh }
spec:
  action: DENY
  rules: [{ from: [{ source: { principals: ["cluster.local/ns/mesh/sa/client"] } }] }]
`;

const CLIENT = 'mesh/client-7c9d8f6b5-q2w3e';

describe('refused connections are reset', () => {
  let ips: Record<string, string> = {};

  before(async () => {
    requireSandboxPrerequisites();
    await down();
    await nodemeshOk(['local', 'up', '--nodes', '2', '-f', '-'], { input: MANIFEST, timeoutMs: 180_000 });
    ips = Object.fromEntries((await status()).pods.map((p) => [`${p.namespace}/${p.name}`, p.ip]));
  });
  after(async () => {
    await down();
    assert.deepEqual(leftovers(), []);
  });

  test('allowed first, then a DENY policy: the client gets ECONNRESET on both paths', async () => {
    assert.match((await echoProbe(CLIENT, ips['mesh/far'], 9000)).greeting ?? '', /^hello from far/, 'reachable before the policy');
    assert.match((await echoProbe(CLIENT, ips['mesh/near'], 9000)).greeting ?? '', /^hello from near/);
    const r = await apply(DENY);
    assert.equal(r.code, 0, r.stderr);

    const far = await eventually('the cross-node refusal', async () => {
      const p = await echoProbe(CLIENT, ips['mesh/far'], 9000);
      return p.greeting === undefined && p;
    });
    assert.equal(far.error, 'ECONNRESET', `another node: ${JSON.stringify(far)}`);
    const near = await echoProbe(CLIENT, ips['mesh/near'], 9000);
    assert.equal(near.error, 'ECONNRESET', `same node: ${JSON.stringify(near)}`);

    const recs = await connections('node-1');
    const denied = recs.filter((c) => c.direction === 'outbound' && c.verdict === 'deny');
    assert.ok(denied.some((c) => c.originalDestination.workload?.name === 'far' && c.cause === 'destination-denied'), JSON.stringify(denied.map((c) => [c.originalDestination.address, c.cause])));
    assert.ok(denied.some((c) => c.originalDestination.workload?.name === 'near' && c.cause === 'denied-by-policy'));

    const metrics = (await adminGet('node-1', '/metrics')).body;
    assert.match(metrics, /nodemesh_connections_denied_total\{direction="outbound",destination_workload="mesh\/near",reason="denied-by-policy"\} [1-9]/);
    assert.match(metrics, /nodemesh_connections_opened_total\{[^}]*source_workload="mesh\/client"[^}]*destination_workload="mesh\/far"/, 'the owner, not the pod name, and the real destination');
    assert.doesNotMatch(metrics, /client-7c9d8f6b5-q2w3e/, 'no pod names in labels');
  });

  test('a destination the routing decision refuses (a mesh port) is reset too', async () => {
    const p = await echoProbe(CLIENT, ips['mesh/far'], 15008);
    assert.equal(p.error, 'ECONNRESET', JSON.stringify(p));
    const rec = await eventually('the mesh-port refusal', async () =>
      (await connections('node-1')).find((c) => c.originalDestination.address === `${ips['mesh/far']}:15008`));
    assert.equal(rec.verdict, 'deny');
    assert.equal(rec.cause, 'mesh-port');
  });
});
