// Ordinary manifests in the sandbox, for real: a Namespace (enrolled), ServiceAccounts, a
// ConfigMap, a Deployment of 3 replicas, a Service and a CronJob in one `local up`. The
// Deployment's pods are named as a ReplicaSet names them, run, are enrolled by the node
// daemons, and a client pod reaches them through the Service VIP over the mesh (HBONE);
// re-applying with 1 replica leaves 1; the CronJob is stored with a one-line notice. A
// targetRefs policy to the Service is enforced at L4 (a DENY holds), and one to a Gateway is
// refused at apply time. Needs root; a missing prerequisite fails the test.
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connections, echoProbe, parseGreeting } from './helpers/mesh';
import {
  adminGet, apply, down, eventually, leftovers, nodemeshOk, remove, requireSandboxPrerequisites, status,
} from './helpers/sandbox';

const VIP = '10.96.9.9';
const RS_POD = /^echo-[bcdfghjklmnpqrstvwxz2456789]+-[bcdfghjklmnpqrstvwxz2456789]{5}$/;

const deployment = (replicas: number): string => `
apiVersion: apps/v1
kind: Deployment
metadata: { name: echo, namespace: work, labels: { app: echo } }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: echo } }
  template:
    metadata: { labels: { app: echo, tier: backend } }
    spec:
      serviceAccountName: echo
      containers:
      - name: echo
        image: ghcr.io/example/echo:1.0
        command: [nodemesh-sample-app, tcp-echo, --port, "9000"]
        ports: [{ name: echo, containerPort: 9000 }]
`;

const MANIFEST = `
apiVersion: v1
kind: Namespace
metadata: { name: work, labels: { nodemesh.io/dataplane-mode: ambient } }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: echo, namespace: work }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: client, namespace: work }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: echo-settings, namespace: work }
data: { greeting: hello }
---
${deployment(3)}
---
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: work }
spec: { selector: { app: echo }, clusterIP: ${VIP}, ports: [{ name: tcp, port: 80, targetPort: echo }] }
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: work }
spec: { nodeName: node-1, serviceAccountName: client, containers: [{ name: c, command: [sleep, "3600"] }] }
---
apiVersion: batch/v1
kind: CronJob
metadata: { name: nightly, namespace: work }
spec:
  schedule: "0 3 * * *"
  jobTemplate: { spec: { template: { spec: { restartPolicy: Never, containers: [{ name: job, image: busybox, command: [date] }] } } } }
`;

const echoPods = async () => (await status()).pods.filter((p) => p.namespace === 'work' && p.name.startsWith('echo-'));

describe('ordinary manifests in the sandbox: Deployments, stored kinds, targetRefs policies', () => {
  let upOutput = '';

  before(async () => {
    requireSandboxPrerequisites();
    await down();
    const r = await nodemeshOk(['local', 'up', '--nodes', '2', '-f', '-'], { input: MANIFEST, timeoutMs: 180_000 });
    upOutput = `${r.stdout}\n${r.stderr}`;
  });
  after(async () => {
    await down();
    assert.deepEqual(leftovers(), []);
  });

  test('the CronJob is accepted with one line saying it is stored and not acted on', () => {
    const lines = upOutput.split('\n').filter((l) => l.includes('CronJob'));
    assert.deepEqual(lines, ['cronjob.batch/work/nightly: stored; the sandbox does not act on kind CronJob (a cluster would run its controller)'], upOutput);
    assert.match(upOutput, /configmap\/work\/echo-settings created/);
    assert.match(upOutput, /serviceaccount\/work\/echo created/);
    assert.match(upOutput, /deployment\.apps\/work\/echo created/);
  });

  test('3 replicas run, named as a ReplicaSet names them, and the node daemons enrol them', async () => {
    const pods = await echoPods();
    assert.equal(pods.length, 3, JSON.stringify(pods));
    for (const p of pods) {
      assert.match(p.name, RS_POD);
      assert.equal(p.phase, 'Running', `${p.name}: ${JSON.stringify(p)}`);
      assert.equal(p.enrolled, true, `${p.name} enrolled`);
    }
    // the daemons' own view, with the template's service account
    const seen = new Map<string, boolean>();
    for (const node of ['node-1', 'node-2']) {
      const w = (await adminGet(node, '/debug/workloads')).json<{ pods: { uid: string; name: string; enrolled: boolean; serviceAccount?: string }[] }>();
      for (const p of w.pods) if (RS_POD.test(p.name)) seen.set(p.name, p.enrolled);
    }
    assert.deepEqual([...seen.keys()].sort(), pods.map((p) => p.name).sort());
    assert.ok([...seen.values()].every(Boolean));
  });

  test('a client pod reaches the replicas through the Service VIP over the mesh', async () => {
    const names = new Set((await echoPods()).map((p) => p.name));
    const reached = new Set<string>();
    for (let i = 0; i < 12 && reached.size < 2; i++) {
      const r = await echoProbe('work/client', VIP, 80, { send: `hi-${i}` });
      assert.equal(r.echo, `hi-${i}`, JSON.stringify(r));
      reached.add(parseGreeting(r.greeting).pod!);
    }
    for (const n of reached) assert.ok(names.has(n), `${n} is one of ${[...names].join(', ')}`);
    const rec = await eventually('the client connection in node-1\'s table', async () =>
      (await connections('node-1')).find((c) => c.pod.name === 'client' && c.originalDestination.address === `${VIP}:80` && c.verdict === 'allow'));
    assert.ok(rec.path === 'hbone' || rec.path === 'local', `path ${rec.path}`);
    assert.equal(rec.sourceIdentity, 'spiffe://cluster.local/ns/work/sa/client');
    assert.equal(rec.destinationIdentity, 'spiffe://cluster.local/ns/work/sa/echo');
  });

  test('a targetRefs DENY to the Service holds at L4, and shows where it is enforced', async () => {
    const policy = `
apiVersion: security.nodemesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: no-client, namespace: work }
spec:
  targetRefs: [{ kind: Service, name: echo }]
  action: DENY
  rules: [{ from: [{ source: { principals: ["cluster.local/ns/work/sa/client"] } }] }]
`;
    const r = await apply(policy);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /authorizationpolicy\/work\/no-client created \(enforced at L4 by the node daemons, on the pods Service\/echo selects/);
    for (let i = 0; i < 3; i++) {
      const p = await echoProbe('work/client', VIP, 80, { send: 'x' });
      assert.ok(p.error || p.echo === undefined, `connection ${i} must be refused: ${JSON.stringify(p)}`);
    }
    const snap = (await adminGet('node-2', '/debug/snapshot')).json<{ policyEnforcement: { name: string; where: string; workloads: string[] }[] }>();
    const e = snap.policyEnforcement.find((x) => x.name === 'no-client');
    assert.equal(e?.where, 'node-l4-service');
    assert.equal(e?.workloads.length, 3);
    const st = await nodemeshOk(['status']);
    assert.match(st.stdout, /AuthorizationPolicy work\/no-client\s+at L4 by the node daemons, on the pods Service\/echo selects/);
    await nodemeshOk(['local', 'delete', '-f', '-'], { input: policy });
    assert.equal((await echoProbe('work/client', VIP, 80, { send: 'again' })).echo, 'again');
  });

  test('a targetRefs policy to a Gateway is refused at apply time, saying why', async () => {
    const r = await apply(`
apiVersion: security.nodemesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: at-waypoint, namespace: work }
spec:
  targetRefs: [{ kind: Gateway, group: gateway.networking.k8s.io, name: waypoint }]
  action: DENY
  rules: [{}]
`);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /needs a waypoint.*refused rather than stored and ignored/);
    const st = await status();
    assert.ok(!(st.policies ?? []).some((p) => p.name === 'at-waypoint'));
  });

  test('an invalid document is refused with the API server path and changes nothing', async () => {
    const before = (await echoPods()).map((p) => p.name).sort();
    const r = await apply(`${deployment(1)}\n---\napiVersion: security.nodemesh.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: { name: bad, namespace: work }\nspec:\n  rules: [{ from: [{ source: { principal: ["x"] } }] }]\n`);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /spec\.rules\[0\]\.from\[0\]\.source\.principal/);
    assert.deepEqual((await echoPods()).map((p) => p.name).sort(), before, 'the valid Deployment in the same apply was not scaled');
  });

  test('re-applying with 1 replica leaves 1, still reachable; deleting the Deployment removes it', async () => {
    const r = await apply(deployment(1));
    assert.equal(r.code, 0, r.stderr);
    const pods = await echoPods();
    assert.equal(pods.length, 1, JSON.stringify(pods));
    assert.equal(pods[0]!.phase, 'Running');
    const p = await echoProbe('work/client', VIP, 80, { send: 'one' });
    assert.equal(p.echo, 'one', JSON.stringify(p));
    assert.equal(parseGreeting(p.greeting).pod, pods[0]!.name);
    const d = await remove(deployment(1));
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stdout, /replicaset\.apps\/work\/echo-\S+ deleted/);
    assert.deepEqual(await echoPods(), []);
  });
});
