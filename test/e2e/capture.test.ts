// Issue 2's promises, on the real kernel in the sandbox cluster: enrolled pods' connections
// are captured by eBPF into the node daemon with the right original destination; nothing
// else is; enrolment changes apply to the next connection; the daemon never captures
// itself; inbound plaintext lands on the daemon; a dead daemon fails closed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import {
  apply, down, eventually, leftovers, pod, requireSandboxPrerequisites, status, up,
} from './helpers/sandbox';
import { connections, echoProbe, parseGreeting } from './helpers/mesh';

const MANIFEST = `
apiVersion: v1
kind: Namespace
metadata: { name: mesh, labels: { nodemesh.io/dataplane-mode: ambient } }
---
apiVersion: v1
kind: Namespace
metadata: { name: plain }
---
apiVersion: v1
kind: Pod
metadata: { name: client-a, namespace: mesh }
spec: { nodeName: node-1, containers: [{ name: c, command: [sleep, "3600"] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: client-b, namespace: mesh }
spec: { nodeName: node-1, containers: [{ name: c, command: [sleep, "3600"] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: client-p, namespace: plain }
spec: { nodeName: node-1, containers: [{ name: c, command: [sleep, "3600"] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: echo-m, namespace: mesh, labels: { app: echo-m } }
spec: { nodeName: node-2, containers: [{ name: c, command: [nodemesh-sample-app, tcp-echo, --port, "9000"], ports: [{ name: echo, containerPort: 9000 }] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: echo-p, namespace: plain, labels: { app: echo-p } }
spec: { nodeName: node-2, containers: [{ name: c, command: [nodemesh-sample-app, tcp-echo, --port, "9000"] }] }
---
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: mesh }
spec: { selector: { app: echo-m }, clusterIP: 10.96.7.7, ports: [{ port: 80, targetPort: echo }] }
`;
const VIP = '10.96.7.7';

/** A probe that must succeed: the line the server sent first, and the client's own port. */
async function probe(podRef: string, host: string, port: number, localPort?: number): Promise<{ localPort: number; line: string }> {
  const r = await echoProbe(podRef, host, port, { localPort });
  if (r.error) throw Object.assign(new Error(`${podRef} -> ${host}:${port}: ${r.error}`), { code: r.error });
  return { localPort: r.localPort ?? 0, line: r.greeting ?? '' };
}
const greeting = parseGreeting;

describe('eBPF capture in the sandbox', () => {
  let ips: Record<string, string> = {};

  before(async () => {
    requireSandboxPrerequisites();
    await down();
    await up({ nodes: 2, yaml: MANIFEST });
    const st = await status();
    ips = Object.fromEntries(st.pods.map((p) => [`${p.namespace}/${p.name}`, p.ip]));
    assert.equal(pod(st, 'mesh/client-a').enrolled, true);
    assert.equal(pod(st, 'plain/client-p').enrolled, false);
  });
  after(async () => {
    await down();
    assert.deepEqual(leftovers(), []);
  });

  test('an enrolled pod: Service VIP and pod IP land on the daemon with the right original destination', async () => {
    const before = (await connections('node-1')).length;
    const viaVip = await probe('mesh/client-a', VIP, 80);
    assert.equal(greeting(viaVip.line).pod, 'echo-m');
    const viaIP = await probe('mesh/client-a', ips['plain/echo-p'], 9000);
    assert.equal(greeting(viaIP.line).pod, 'echo-p');
    // The server saw the daemon's socket, not the app's: another source port.
    assert.notEqual(greeting(viaIP.line).remotePort, viaIP.localPort);
    const conns = await eventually('two new records on node-1', async () => {
      const c = await connections('node-1');
      return c.length >= before + 2 && c;
    });
    const mine = conns.filter((c) => c.pod.name === 'client-a' && c.direction === 'outbound');
    const vipRec = mine.find((c) => c.originalDestination.address === `${VIP}:80`);
    assert.ok(vipRec, `no record for ${VIP}:80 in ${JSON.stringify(mine)}`);
    assert.equal(vipRec.originalDestination.service?.name, 'echo');
    assert.equal(vipRec.verdict, 'allow');
    const ipRec = mine.find((c) => c.originalDestination.address === `${ips['plain/echo-p']}:9000`);
    assert.ok(ipRec);
    assert.equal(ipRec.originalDestination.workload?.name, 'echo-p');
  });

  test('an un-enrolled pod is untouched', async () => {
    const before = (await connections('node-1')).length;
    const r = await probe('plain/client-p', ips['plain/echo-p'], 9000);
    const g = greeting(r.line);
    assert.equal(g.pod, 'echo-p');
    assert.equal(g.remoteIP, ips['plain/client-p']);
    assert.equal(g.remotePort, r.localPort, 'the server sees the app socket itself');
    assert.equal((await connections('node-1')).length, before, 'the daemon saw nothing');
  });

  test('two pods connecting at the same moment from the same source port get their own destinations', async () => {
    for (let round = 0; round < 5; round++) {
      const port = 40000 + round;
      const [a, b] = await Promise.all([
        probe('mesh/client-a', VIP, 80, port),
        probe('mesh/client-b', ips['plain/echo-p'], 9000, port),
      ]);
      assert.equal(a.localPort, port);
      assert.equal(b.localPort, port);
      assert.equal(greeting(a.line).pod, 'echo-m', `round ${round}: client-a`);
      assert.equal(greeting(b.line).pod, 'echo-p', `round ${round}: client-b`);
    }
  });

  test("the daemon's own connections from inside a pod are not captured again (no loop)", async () => {
    const count = async () => (await connections('node-1')).filter((c) => c.originalDestination.address === `${ips['plain/echo-p']}:9000` && c.pod.name === 'client-a').length;
    const before = await count();
    for (let i = 0; i < 3; i++) await probe('mesh/client-a', ips['plain/echo-p'], 9000);
    await eventually('three records', async () => (await count()) >= before + 3);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await count(), before + 3, 'exactly one daemon record per app connection');
  });

  test('plaintext inbound to an enrolled pod reaches the daemon, not the app directly', async () => {
    const r = await probe('plain/client-p', ips['mesh/echo-m'], 9000);
    const g = greeting(r.line);
    assert.equal(g.pod, 'echo-m');
    assert.equal(g.remoteIP, '127.0.0.6', 'the app is reached by the daemon, from the passthrough address');
    const rec = await eventually('an inbound record on node-2', async () =>
      (await connections('node-2')).find((c) => c.direction === 'inbound-plaintext' && c.source.address === `${ips['plain/client-p']}:${r.localPort}`));
    assert.equal(rec.originalDestination.address, `${ips['mesh/echo-m']}:9000`);
  });

  test('enrol and unenrol take effect for the next connection, without restarts', async () => {
    const podYaml = (mode: string) => `
apiVersion: v1
kind: Pod
metadata: { name: client-p, namespace: plain, labels: { nodemesh.io/dataplane-mode: ${mode} } }
spec: { nodeName: node-1, containers: [{ name: c, command: [sleep, "3600"] }] }
`;
    const pidBefore = (await status()).nodes.find((n) => n.name === 'node-1')?.daemon.pid;
    const captured = async () => {
      const r = await probe('plain/client-p', ips['plain/echo-p'], 9000);
      return greeting(r.line).remotePort !== r.localPort;
    };
    assert.equal(await captured(), false);
    let r = await apply(podYaml('ambient'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await captured(), true, 'captured after opting in');
    r = await apply(podYaml('none'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await captured(), false, 'untouched after opting out');
    assert.equal((await status()).nodes.find((n) => n.name === 'node-1')?.daemon.pid, pidBefore, 'no restart');
  });

  test('daemon stopped: an enrolled pod fails closed and nothing reaches the destination', async () => {
    const st = await status();
    const node1 = st.nodes.find((n) => n.name === 'node-1');
    assert.ok(node1?.daemon.pid);
    const echoLog = pod(st, 'plain/echo-p').log;
    const seen = () => fs.readFileSync(echoLog, 'utf8').split('\n').filter((l) => l.includes('tcp-echo connection')).length;
    const seenBefore = seen();
    process.kill(node1.daemon.pid, 'SIGKILL'); // a crash: no clean shutdown
    await eventually('the daemon to be gone', () => !fs.existsSync(`/proc/${node1.daemon.pid}`));
    await assert.rejects(probe('mesh/client-a', ips['plain/echo-p'], 9000), (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED');
    await assert.rejects(probe('mesh/client-a', VIP, 80), (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(seen(), seenBefore, 'the destination saw no connection');
    // The un-enrolled pod on the same node is unaffected.
    assert.equal(greeting((await probe('plain/client-p', ips['plain/echo-p'], 9000)).line).pod, 'echo-p');
  });
});
