// The sandbox cluster's life cycle, for real: `nodemesh local up/down` with real network
// namespaces, cgroups and node daemons. Needs root; a missing prerequisite fails the test.
// Checks that up/down cycles and a `local up` killed half-way leave nothing behind, that
// pods reach each other across nodes and un-enrolled pods reach Services by VIP, and that a
// malformed manifest is rejected naming the field while the running cluster stays as it was.
// nodemesh-identity (the mesh CA) runs with the cluster and goes with it; from inside a node's
// network namespace it issues certificates with node binding; policies go through
// `local apply`/`local delete` into every daemon's snapshot.
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CLI, REPO, STATE_DIR, adminGet, apply, down, eventually, exec, identityRecord, leftovers, nodemesh, nodemeshOk, pod, processAlive, remove,
  requestIdentities, requireSandboxPrerequisites, status, tcpProbe, up,
} from './helpers/sandbox';

const PLAIN = `
apiVersion: v1
kind: Namespace
metadata:
  name: plain
---
apiVersion: v1
kind: Pod
metadata:
  name: server
  namespace: plain
  labels: { app: echo }
spec:
  nodeName: node-2
  serviceAccountName: echo-server
  containers:
  - name: echo
    command: ["nodemesh-sample-app", "tcp-echo", "--port", "7000"]
    ports: [{ name: echo, containerPort: 7000 }]
---
apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: plain
spec:
  nodeName: node-1
  serviceAccountName: echo-client
  containers:
  - name: client
    command: ["sleep", "infinity"]
---
apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: plain
spec:
  selector: { app: echo }
  ports: [{ name: tcp, port: 80, targetPort: echo }]
`;

function assertClean(when: string): void {
  assert.deepEqual(leftovers(), [], `the sandbox left things behind ${when}`);
}

/** nodemesh-identity runs, is reported by status, in its own cgroup beside the nodes. */
async function assertIdentityUp(): Promise<{ pid: number; startTime: string }> {
  const id = identityRecord();
  assert.ok(processAlive(id.process), `nodemesh-identity (${JSON.stringify(id.process)}) is not running; log ${id.log}`);
  assert.match(fs.readFileSync(`/proc/${id.process!.pid}/cgroup`, 'utf8'), /^0::\/nodemesh-sandbox\/nodemesh-identity$/m);
  assert.equal(fs.statSync(id.credentialsFile).mode & 0o777, 0o600);
  for (const f of Object.values(id.nodeCredentials)) assert.equal(fs.statSync(f).mode & 0o777, 0o600);
  const s = await status();
  assert.deepEqual(s.identity && [s.identity.address, s.identity.pid, s.identity.alive, s.identity.listening], ['172.30.0.1:15012', id.process!.pid, true, true]);
  return id.process!;
}

describe('sandbox cluster lifecycle', { timeout: 600_000 }, () => {
  before(async () => {
    requireSandboxPrerequisites();
    await down(); // a previous run's remains must not decide this one
  });
  after(async () => {
    const r = await down();
    if (r.code !== 0) process.stderr.write(`local down in after(): ${r.stderr}\n`);
  });

  it('up then down, twice in a row, leaves nothing behind', async () => {
    for (let round = 1; round <= 2; round++) {
      const u = await up({ nodes: 2 });
      assert.match(u.stderr, /sandbox is up/);
      assert.match(u.stderr, /^nodemesh-identity ready: 172\.30\.0\.1:15012/m);
      // The CA is up before any node daemon starts.
      assert.ok(u.stderr.indexOf('nodemesh-identity ready') < u.stderr.indexOf('starting 2 nodemesh-node daemon(s)'), u.stderr);
      const s = await status();
      assert.equal(s.up, true);
      assert.deepEqual(s.nodes.map((n) => [n.name, n.daemon.alive, n.daemon.ready]), [['node-1', true, true], ['node-2', true, true]]);
      const identity = await assertIdentityUp();
      const d = await nodemeshOk(['local', 'down']);
      assert.match(d.stderr, /sandbox removed/);
      assert.equal(processAlive(identity), false, 'nodemesh-identity must be gone after local down');
      assert.equal(fs.existsSync(path.join(STATE_DIR, 'identity')), false, 'the CA and the credentials go with the state dir');
      assertClean(`after round ${round}`);
    }
  });

  it('a second local up while one runs is a clear error and changes nothing', async () => {
    await up({ nodes: 1 });
    const before = await status();
    const r = await nodemesh(['local', 'up', '--nodes', '2']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: a sandbox cluster is already running .*\(NODEMESH_E_SANDBOX_ALREADY_UP\)/m);
    const afterStatus = await status();
    assert.deepEqual(afterStatus.nodes.map((n) => n.daemon.pid), before.nodes.map((n) => n.daemon.pid));
    await nodemeshOk(['local', 'down']);
    assertClean('after down');
  });

  it('a local up killed with SIGKILL half-way is cleaned up by the next up, and by down', async () => {
    for (const next of ['up', 'down'] as const) {
      // Kill it once node daemons exist (the richest half-built state), or after 20 s.
      const child = spawn(process.execPath, [CLI, 'local', 'up', '--nodes', '2', '-f', path.join(REPO, 'installer', 'examples', 'shop')], {
        cwd: REPO, stdio: 'ignore',
      });
      const exited = new Promise<void>((r) => child.on('exit', () => r()));
      await eventually('local up to start node daemons', () => {
        try {
          const c = JSON.parse(fs.readFileSync(path.join(STATE_DIR, 'cluster.json'), 'utf8')) as { nodes: { daemon?: unknown }[] };
          return c.nodes.some((n) => n.daemon);
        } catch {
          return false;
        }
      }, 20_000).catch(() => undefined);
      child.kill('SIGKILL');
      await exited;
      assert.notDeepEqual(leftovers(), [], 'the killed local up should have left remains to clean up');
      // nodemesh-identity starts before the node daemons, so the killed up left it running.
      const orphan = identityRecord().process;
      assert.ok(processAlive(orphan), 'the killed local up should have left nodemesh-identity running');

      if (next === 'up') {
        const u = await up({ nodes: 2 });
        assert.match(u.stderr, /cleaning up the remains of an earlier sandbox/);
        const s = await status();
        assert.equal(s.up, true);
        assert.equal(s.pods.length, 0, 'the new cluster must not inherit the killed one\'s pods');
      }
      const d = await nodemeshOk(['local', 'down']);
      assert.match(d.stderr, /sandbox removed/);
      assert.equal(processAlive(orphan), false, `the killed up's nodemesh-identity must be gone after local ${next} and down`);
      assertClean(`after a killed local up followed by local ${next}`);
    }
  });

  describe('a running cluster', () => {
    before(async () => {
      await up({ nodes: 2, yaml: PLAIN });
    });
    after(async () => {
      await down();
    });

    it('places pods as asked and reports them', async () => {
      const s = await status();
      const server = pod(s, 'plain/server');
      const client = pod(s, 'plain/client');
      assert.equal(server.node, 'node-2');
      assert.equal(client.node, 'node-1');
      assert.match(server.ip, /^10\.244\.2\.\d+$/);
      assert.match(client.ip, /^10\.244\.1\.\d+$/);
      assert.equal(server.phase, 'Running');
      assert.equal(server.enrolled, false, 'namespace plain has no dataplane-mode label');
      const svc = s.services.find((x) => x.name === 'echo');
      assert.ok(svc);
      assert.match(svc.clusterIP, /^10\.96\./);
      assert.deepEqual(svc.ports[0]!.endpoints, [`${server.ip}:7000`]);
    });

    it('a pod on node-1 reaches a pod on node-2 by pod IP', async () => {
      const s = await status();
      const server = pod(s, 'plain/server');
      const client = pod(s, 'plain/client');
      const r = await tcpProbe('plain/client', server.ip, 7000);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const esc = (ip: string): string => ip.replace(/\./g, '\\.');
      // Routed /32s, no NAT: the server sees the client's own pod IP.
      assert.match(r.stdout, new RegExp(`^hello from server ${esc(server.ip)}:7000 to ${esc(client.ip)}:\\d+$`, 'm'));
    });

    it('an un-enrolled pod reaches a Service by its VIP', async () => {
      const s = await status();
      const vip = s.services.find((x) => x.name === 'echo')!.clusterIP;
      const server = pod(s, 'plain/server');
      const r = await tcpProbe('plain/client', vip, 80);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`^hello from server ${server.ip.replace(/\./g, '\\.')}:7000 to `, 'm'));
    });

    it('local exec runs in the pod\'s netns and cgroup and passes the exit code through', async () => {
      const r = await exec('plain/client', ['sh', '-c', 'grep "^0::" /proc/self/cgroup; ip -4 -o addr show dev eth0; echo "svc=$ECHO_SERVICE_HOST:$ECHO_SERVICE_PORT"; exit 3']);
      assert.equal(r.code, 3);
      assert.match(r.stdout, /^0::\/nodemesh-sandbox\/node-1\/pods\/plain_client$/m);
      const s = await status();
      assert.match(r.stdout, new RegExp(`inet ${pod(s, 'plain/client').ip.replace(/\./g, '\\.')}/32`));
      assert.match(r.stdout, new RegExp(`^svc=${s.services.find((x) => x.name === 'echo')!.clusterIP.replace(/\./g, '\\.')}:80$`, 'm'));
      const missing = await exec('plain/nope', ['true']);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /NODEMESH_E_SANDBOX_POD_NOT_FOUND/);
    });

    it('a malformed manifest is rejected naming the field, and the cluster is unchanged', async () => {
      const before = await status();
      const objectsBefore = fs.readdirSync(path.join(STATE_DIR, 'objects')).sort();
      const bad = `
apiVersion: v1
kind: Pod
metadata: { name: fine, namespace: plain }
spec:
  containers: [{ name: c, command: ["sleep", "60"] }]
---
apiVersion: v1
kind: Pod
metadata: { name: broken, namespace: plain }
spec:
  containers:
  - name: c
    command: ["sleep", "60"]
    ports: [{ containerPort: 99999 }]
`;
      const r = await apply(bad);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: /);
      assert.match(r.stderr, /document 2 .*Pod plain\/broken: spec\.containers\[0\]\.ports\[0\]\.containerPort: got 99999/);
      assert.match(r.stderr, /NODEMESH_E_MANIFEST_INVALID/);
      const afterStatus = await status();
      assert.deepEqual(afterStatus.pods.map((p) => [p.namespace, p.name, p.ip, p.phase]), before.pods.map((p) => [p.namespace, p.name, p.ip, p.phase]));
      assert.deepEqual(fs.readdirSync(path.join(STATE_DIR, 'objects')).sort(), objectsBefore);
      // And the cluster still works.
      const probe = await tcpProbe('plain/client', pod(afterStatus, 'plain/server').ip, 7000);
      assert.equal(probe.code, 0, probe.stdout + probe.stderr);
    });

    it('relabelling the namespace enrols its running pods, and traffic still flows', async () => {
      const r = await apply('apiVersion: v1\nkind: Namespace\nmetadata: { name: plain, labels: { nodemesh.io/dataplane-mode: ambient } }\n');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^namespace\/plain configured$/m);
      const s = await status();
      assert.equal(pod(s, 'plain/server').enrolled, true);
      assert.equal(pod(s, 'plain/client').enrolled, true);
      const probe = await tcpProbe('plain/client', pod(s, 'plain/server').ip, 7000);
      assert.equal(probe.code, 0, probe.stdout + probe.stderr);
      assert.match(probe.stdout, /^hello from server /m);
      const back = await apply('apiVersion: v1\nkind: Namespace\nmetadata: { name: plain }\n');
      assert.equal(back.code, 0, back.stderr);
      assert.equal(pod(await status(), 'plain/client').enrolled, false);
    });

    it('nodemesh-identity issues a certificate to a node for a service account with a pod there, and refuses one that only runs elsewhere', async () => {
      await assertIdentityUp();
      // From inside node-1's network namespace, with node-1's credential, as its daemon asks.
      const answers = await requestIdentities('node-1', ['plain/echo-client', 'plain/echo-server']);
      assert.deepEqual(answers[0], { identity: 'plain/echo-client', ok: true, spiffeId: 'spiffe://cluster.local/ns/plain/sa/echo-client' });
      const refused = answers[1]!;
      assert.equal(refused.ok, false);
      assert.equal(refused.grpcCode, 7, `expected PERMISSION_DENIED: ${refused.message}`);
      assert.equal(refused.serverCode, 'NODEMESH_E_IDENTITY_NODE_BINDING');
      assert.match(refused.message!, /PERMISSION_DENIED/);
      // node-2 may have echo-server (its pod runs there) and not echo-client.
      const fromNode2 = await requestIdentities('node-2', ['plain/echo-server', 'plain/echo-client']);
      assert.deepEqual(fromNode2.map((a) => [a.identity, a.ok, a.grpcCode ?? null]), [['plain/echo-server', true, null], ['plain/echo-client', false, 7]]);
    });

    it('policies: a malformed one is rejected naming the field; a good one is in every daemon\'s snapshot when apply returns, and gone when delete returns', async () => {
      const objectsBefore = fs.readdirSync(path.join(STATE_DIR, 'objects')).sort();
      const typo = `
apiVersion: security.nodemesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: deny-nowhere, namespace: plain }
spec:
  action: DENY
  rules:
  - from: [{ source: { namespace: ["nowhere"] } }]
`;
      const bad = await apply(typo);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /AuthorizationPolicy plain\/deny-nowhere: spec\.rules\[0\]\.from\[0\]\.source\.namespace: got "namespace": unknown field .*did you mean namespaces\?/);
      assert.match(bad.stderr, /NODEMESH_E_MANIFEST_INVALID/);
      assert.deepEqual(fs.readdirSync(path.join(STATE_DIR, 'objects')).sort(), objectsBefore, 'a rejected policy must not be stored');

      const good = typo.replace('namespace: ["nowhere"]', 'namespaces: ["nowhere"]') + `---
apiVersion: security.nodemesh.io/v1alpha1
kind: PeerAuthentication
metadata: { name: mesh-default, namespace: nodemesh-system }
spec:
  mtls: { mode: PERMISSIVE }
`;
      const r = await apply(good);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^namespace\/nodemesh-system created \(implicitly/m);
      assert.match(r.stdout, /^authorizationpolicy\/plain\/deny-nowhere created$/m);
      assert.match(r.stdout, /^peerauthentication\/nodemesh-system\/mesh-default created$/m);
      // No polling: apply returned, so every daemon must show them now.
      const names = (list: { metadata: { namespace: string; name: string }; spec?: unknown }[]) => list.map((p) => `${p.metadata.namespace}/${p.metadata.name}`).sort();
      for (const node of ['node-1', 'node-2']) {
        const snap = (await adminGet(node, '/debug/snapshot')).json<{ authorizationPolicies: { metadata: { namespace: string; name: string }; spec: unknown }[]; peerAuthentications: { metadata: { namespace: string; name: string } }[] }>();
        assert.deepEqual(names(snap.authorizationPolicies), ['plain/deny-nowhere'], node);
        assert.deepEqual(names(snap.peerAuthentications), ['nodemesh-system/mesh-default'], node);
        assert.deepEqual(snap.authorizationPolicies[0]!.spec, { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['nowhere'] } }] }] }, node);
      }
      const s = await status();
      assert.deepEqual(s.policies?.map((p) => [p.kind, p.namespace, p.name, p.appliesTo]),
        [['AuthorizationPolicy', 'plain', 'deny-nowhere', 'namespace plain'], ['PeerAuthentication', 'nodemesh-system', 'mesh-default', 'mesh-wide']]);
      // Same again: unchanged. Traffic still flows (the policy matches no one here).
      assert.match((await apply(good)).stdout, /^authorizationpolicy\/plain\/deny-nowhere unchanged$/m);
      const probe = await tcpProbe('plain/client', pod(s, 'plain/server').ip, 7000);
      assert.equal(probe.code, 0, probe.stdout + probe.stderr);

      const del = await remove(good);
      assert.equal(del.code, 0, del.stderr);
      assert.match(del.stdout, /^authorizationpolicy\/plain\/deny-nowhere deleted$/m);
      for (const node of ['node-1', 'node-2']) {
        const snap = (await adminGet(node, '/debug/snapshot')).json<{ authorizationPolicies: unknown[]; peerAuthentications: unknown[] }>();
        assert.deepEqual([snap.authorizationPolicies, snap.peerAuthentications], [[], []], node);
      }
      assert.deepEqual((await status()).policies, []);
    });

    it('local delete removes a pod: its namespace, cgroup and Service endpoint go', async () => {
      const s = await status();
      const server = pod(s, 'plain/server');
      const r = await nodemesh(['local', 'delete', '-f', '-'], { input: 'apiVersion: v1\nkind: Pod\nmetadata: { name: server, namespace: plain }\nspec: { containers: [{ name: echo, command: ["x"] }] }\n' });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^pod\/plain\/server deleted$/m);
      const after = await status();
      assert.equal(after.pods.some((p) => p.name === 'server'), false);
      assert.deepEqual(after.services.find((x) => x.name === 'echo')!.ports[0]!.endpoints, []);
      assert.equal(leftovers().some((x) => x.includes('plain_server')), false);
      const probe = await tcpProbe('plain/client', server.ip, 7000, 2000);
      assert.notEqual(probe.code, 0, 'the deleted pod must not answer');
    });

    it('wrong flags get usage, not a stack trace', async () => {
      const r = await nodemesh(['local', 'up', '--nodez', '3']);
      assert.equal(r.code, 2, 'usage errors exit 2, as the cluster commands do');
      assert.match(r.stderr, /unknown option '--nodez'/);
      assert.match(r.stderr, /Usage: nodemesh local up/);
    });
  });

  it('leaves nothing behind at the end', async () => {
    await down();
    assertClean('at the end');
  });
});
