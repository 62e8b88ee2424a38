// Issue 3's promises, on the real kernel in the sandbox: traffic between meshed pods on two
// nodes is mutual TLS on port 15008 (the payload never appears on the wire); authorization
// policies admit and refuse identities, also for connections already open; bad HBONE
// clients are refused with a reason and no effect on other traffic; PeerAuthentication
// STRICT refuses plaintext; 20 s certificates rotate under load without a failed request.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import 'reflect-metadata';
import { MeshCA } from '../../daemon/identity/ca';
import {
  REPO, STATE_DIR, adminGet, apply, down, eventually, exec, findFile, leftovers, nodemeshOk, remove, requireSandboxPrerequisites, status,
} from './helpers/sandbox';
import { connections, echoProbe } from './helpers/mesh';

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
spec: { nodeName: node-1, serviceAccountName: client-a, containers: [{ name: c, command: [sleep, "3600"] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: client-b, namespace: mesh }
spec: { nodeName: node-1, serviceAccountName: client-b, containers: [{ name: c, command: [sleep, "3600"] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: client-p, namespace: plain }
spec: { nodeName: node-1, containers: [{ name: c, command: [sleep, "3600"] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: echo, namespace: mesh, labels: { app: echo } }
spec: { nodeName: node-2, serviceAccountName: echo, containers: [{ name: c, command: [nodemesh-sample-app, tcp-echo, --port, "9000"], ports: [{ name: echo, containerPort: 9000 }] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: web, namespace: mesh, labels: { app: web } }
spec: { nodeName: node-2, serviceAccountName: web, containers: [{ name: c, command: [nodemesh-sample-app, http, --port, "8080"], ports: [{ name: http, containerPort: 8080 }] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: echo-near, namespace: mesh, labels: { app: echo-near } }
spec: { nodeName: node-1, serviceAccountName: echo-near, containers: [{ name: c, command: [nodemesh-sample-app, tcp-echo, --port, "9000"] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: flaky-ok, namespace: mesh, labels: { app: flaky } }
spec: { nodeName: node-2, serviceAccountName: flaky, containers: [{ name: c, command: [nodemesh-sample-app, tcp-echo, --port, "9000"], ports: [{ name: echo, containerPort: 9000 }] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: flaky-dead, namespace: mesh, labels: { app: flaky } }
spec: { nodeName: node-2, serviceAccountName: flaky, containers: [{ name: c, command: [sleep, "3600"], ports: [{ name: echo, containerPort: 9000 }] }] }
---
apiVersion: v1
kind: Service
metadata: { name: flaky, namespace: mesh }
spec: { selector: { app: flaky }, clusterIP: 10.96.8.10, ports: [{ port: 80, targetPort: echo }] }
---
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: mesh }
spec: { selector: { app: echo }, clusterIP: 10.96.8.8, ports: [{ port: 80, targetPort: echo }] }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: mesh }
spec: { selector: { app: web }, clusterIP: 10.96.8.9, ports: [{ port: 80, targetPort: http }] }
`;
const ECHO_VIP = '10.96.8.8';
const PROBE = path.join(REPO, 'test', 'e2e', 'fixtures', 'hbone-probe.js');

const nodeLog = (node: string) => fs.readFileSync(path.join(STATE_DIR, 'logs', `${node}.log`), 'utf8');

describe('the zero-trust tunnel in the sandbox', () => {
  let ips: Record<string, string> = {};
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nm-tunnel-'));

  before(async () => {
    requireSandboxPrerequisites();
    assert.equal(spawnSync('sh', ['-c', 'command -v tcpdump'], { encoding: 'utf8' }).status, 0, 'tcpdump is missing: apt-get install tcpdump (make system-deps)');
    assert.equal(spawnSync('sh', ['-c', 'command -v openssl'], { encoding: 'utf8' }).status, 0, 'openssl is missing: apt-get install openssl (make system-deps)');
    await down();
    await nodemeshOk(['local', 'up', '--nodes', '2', '-f', '-'], { input: MANIFEST, timeoutMs: 180_000 });
    const st = await status();
    ips = Object.fromEntries(st.pods.map((p) => [`${p.namespace}/${p.name}`, p.ip]));
    fs.chmodSync(tmp, 0o755);
  });
  after(async () => {
    await down();
    fs.rmSync(tmp, { recursive: true, force: true });
    assert.deepEqual(leftovers(), []);
  });

  test('between nodes the payload never appears on the wire: it is TLS to port 15008', async () => {
    const pcap = path.join(tmp, 'node-link.pcap');
    let tcpdumpSaid = '';
    const dump = spawn('nsenter', ['--net=/run/netns/nmsb-node-1', 'tcpdump', '-Z', 'root', '--immediate-mode', '-i', 'eth0', '-U', '-s', '0', '-w', pcap, 'tcp'], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      dump.stderr.setEncoding('utf8').on('data', (d: string) => { tcpdumpSaid += d; });
      await eventually('tcpdump to listen', () => tcpdumpSaid.includes('listening on'), 10_000);
      const payload = `NODEMESH-SECRET-${randomBytes(8).toString('hex')}`;
      const r = await echoProbe('mesh/client-a', ECHO_VIP, 80, { send: payload });
      assert.equal(r.echo, payload, JSON.stringify(r));
      assert.match(r.greeting ?? '', /^hello from echo .* to 127\.0\.0\.6:/, 'the app is reached by the destination daemon');
      await new Promise((res) => setTimeout(res, 500));
    } finally {
      dump.kill('SIGINT');
      await new Promise((res) => dump.once('close', res));
    }
    const bytes = fs.readFileSync(pcap);
    assert.ok(bytes.length > 100, `the capture holds packets (${bytes.length} bytes; tcpdump said: ${tcpdumpSaid})`);
    assert.equal(bytes.indexOf('NODEMESH-SECRET-'), -1, 'the payload is not on the wire in clear');
    const read = (filter: string) => spawnSync('tcpdump', ['-r', pcap, '-nn', filter], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
    assert.ok(read('tcp dst port 15008').length > 0, 'traffic goes to the HBONE port');
    assert.deepEqual(read('tcp port 9000 or tcp port 80'), [], 'nothing to the app port crosses the link');
    assert.ok(read('tcp dst port 15008 and (tcp[((tcp[12:1] & 0xf0) >> 2):1] = 0x16)').length > 0, 'a TLS handshake record goes to 15008');
    const conns = await connections('node-1');
    const rec = conns.find((c) => c.pod.name === 'client-a' && c.originalDestination.address === `${ECHO_VIP}:80`);
    assert.ok(rec, JSON.stringify(conns));
    assert.equal(rec.path, 'hbone');
    assert.equal(rec.sourceIdentity, 'spiffe://cluster.local/ns/mesh/sa/client-a');
    assert.equal(rec.destinationIdentity, 'spiffe://cluster.local/ns/mesh/sa/echo');
  });

  test('an allowed identity gets through, a denied one is refused with a log line and a metric; a policy change closes an open connection', async (t) => {
    const allowA = `
apiVersion: security.nodemesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: echo-allow-a, namespace: mesh }
spec:
  selector: { matchLabels: { app: echo } }
  action: ALLOW
  rules: [{ from: [{ source: { principals: ["cluster.local/ns/mesh/sa/client-a"] } }] }]
`;
    const cleanup = `${allowA}---
apiVersion: security.nodemesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: echo-deny-a, namespace: mesh }
`;
    let r = await apply(allowA);
    assert.equal(r.code, 0, r.stderr);
    const a = await echoProbe('mesh/client-a', ECHO_VIP, 80);
    assert.match(a.greeting ?? '', /^hello from echo/, JSON.stringify(a));
    const b = await echoProbe('mesh/client-b', ECHO_VIP, 80);
    assert.ok(b.error, `client-b must be refused: ${JSON.stringify(b)}`);
    const denied = await eventually('a deny record on node-2', async () =>
      (await connections('node-2')).find((c) => c.direction === 'inbound-hbone' && c.verdict === 'deny' && c.sourceIdentity === 'spiffe://cluster.local/ns/mesh/sa/client-b'));
    assert.match(denied.reason, /no-allow-policy-matched/);
    await eventually('the deny log line', () => /"verdict":"deny".*no-allow-policy-matched/.test(nodeLog('node-2')));
    const metrics = (await adminGet('node-2', '/metrics')).body;
    assert.match(metrics, /nodemesh_connections_denied_total\{[^}]*direction="inbound-hbone"[^}]*reason="no-allow-policy-matched"[^}]*\} [1-9]/);
    const out = await eventually('a deny record on node-1', async () =>
      (await connections('node-1')).find((c) => c.pod.name === 'client-b' && c.verdict === 'deny'));
    assert.match(out.reason, /refused|denied/);
    assert.match(out.reason, /no-allow-policy-matched/, 'the source side learns why');

    // An open connection from client-a, then a policy that denies it.
    t.after(async () => { await remove(cleanup, { ignoreNotFound: true }); });
    const held = echoProbe('mesh/client-a', ECHO_VIP, 80, { holdMs: 15_000 });
    await eventually('client-a connection open on node-1', async () =>
      (await connections('node-1')).some((c) => c.pod.name === 'client-a' && c.state === 'open' && c.path === 'hbone'));
    r = await apply(`
apiVersion: security.nodemesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: echo-deny-a, namespace: mesh }
spec:
  selector: { matchLabels: { app: echo } }
  action: DENY
  rules: [{ from: [{ source: { principals: ["cluster.local/ns/mesh/sa/client-a"] } }] }]
`);
    assert.equal(r.code, 0, r.stderr);
    const result = await held;
    assert.ok(result.closedAfterMs !== undefined && result.closedAfterMs < 14_000, `the open connection is closed by the policy change: ${JSON.stringify(result)}`);
    assert.ok((await echoProbe('mesh/client-a', ECHO_VIP, 80)).error, 'and new ones are refused');
    r = await remove(cleanup);
    assert.equal(r.code, 0, r.stderr);
    assert.match((await echoProbe('mesh/client-a', ECHO_VIP, 80)).greeting ?? '', /^hello from echo/);
  });

  test('bad HBONE clients are refused with a reason, and other traffic is unaffected', async () => {
    const echoIP = ips['mesh/echo'];
    const caDir = path.dirname(findFile(STATE_DIR, 'ca.key'));
    const ca = await MeshCA.load(caDir);
    const foreign = await MeshCA.create({ trustDomain: 'evil.example' });
    const write = (name: string, c: { keyPem: string; certPem: string }) => {
      fs.writeFileSync(path.join(tmp, `${name}.key`), c.keyPem);
      fs.writeFileSync(path.join(tmp, `${name}.crt`), c.certPem);
      return [path.join(tmp, `${name}.crt`), path.join(tmp, `${name}.key`)];
    };
    const good = write('good', await ca.issue('spiffe://cluster.local/ns/plain/sa/default', 3600));
    const evil = write('evil', await foreign.issue('spiffe://evil.example/ns/mesh/sa/client-a', 3600));
    const expired = write('expired', await ca.issue('spiffe://cluster.local/ns/mesh/sa/client-a', 60, { notBefore: new Date(Date.now() - 3600_000) }));
    const probe = async (mode: string, authority: string, creds?: string[]) => {
      const r = await exec('plain/client-p', ['node', PROBE, mode, echoIP, authority, ...(creds ?? [])]);
      return JSON.parse(r.stdout.trim().split('\n').pop() || '{}') as { result: string; status?: number; reason?: string; line?: string };
    };
    const logBefore = nodeLog('node-2').length;
    const newLog = () => nodeLog('node-2').slice(logBefore);

    const ok = await probe('connect', `${echoIP}:9000`, good);
    assert.equal(ok.status, 200, `a valid client is served: ${JSON.stringify(ok)}`);
    assert.match(ok.line ?? '', /^hello from echo/);

    assert.notEqual((await probe('connect', `${echoIP}:9000`, evil)).status, 200);
    await eventually('the foreign trust domain in the log', () => /evil\.example|trust domain|unknown issuer/i.test(newLog()));
    assert.notEqual((await probe('connect', `${echoIP}:9000`, expired)).status, 200);
    await eventually('the expired certificate in the log', () => /expired/i.test(newLog()));
    const sclient = spawnSync('node', [path.join(REPO, 'dist', 'installer', 'cli.js'), 'local', 'exec', 'plain/client-p', '--',
      'openssl', 's_client', '-connect', `${echoIP}:15008`, '-alpn', 'h2', '-tls1_3'], { input: 'x\n', encoding: 'utf8', timeout: 20_000 });
    assert.doesNotMatch(sclient.stdout, /HTTP\/|hello from/, 'no client certificate: nothing is served');
    await eventually('the missing client certificate in the log', () => /client certificate|certificate required|no certificate/i.test(newLog()));

    const get = await probe('get', `${echoIP}:9000`, good);
    assert.ok(get.status === 405 || get.status === 400, `a non-CONNECT request is refused: ${JSON.stringify(get)}`);
    const other = await probe('connect', `${ips['mesh/client-a']}:9000`, good);
    assert.equal(other.status, 400, `an :authority naming another pod is refused: ${JSON.stringify(other)}`);
    assert.match(other.reason ?? '', /another pod|not this pod|not one of/i);
    const garbage = await probe('garbage', `${echoIP}:9000`, good);
    assert.equal(garbage.result, 'closed');
    await eventually('the garbled preface in the log', () => /NODEMESH_E_HBONE_PROTOCOL|preface/i.test(newLog()));

    // None of it disturbed the mesh.
    assert.match((await echoProbe('mesh/client-a', ECHO_VIP, 80)).greeting ?? '', /^hello from echo/);
  });

  test('same node: no wire, same identities and policy checks, also for open connections', async (t) => {
    const near = ips['mesh/echo-near'];
    const ok = await echoProbe('mesh/client-a', near, 9000, { send: 'same-node' });
    assert.equal(ok.echo, 'same-node', JSON.stringify(ok));
    assert.match(ok.greeting ?? '', /^hello from echo-near .* to 127\.0\.0\.6:/);
    const rec = await eventually('a local record', async () =>
      (await connections('node-1')).find((c) => c.pod.name === 'client-a' && c.originalDestination.address === `${near}:9000` && c.state === 'closed'));
    assert.match(rec.path ?? '', /^local(-splice)?$/, 'the same-node path, relayed or spliced');
    assert.equal(rec.sourceIdentity, 'spiffe://cluster.local/ns/mesh/sa/client-a');
    assert.equal(rec.destinationIdentity, 'spiffe://cluster.local/ns/mesh/sa/echo-near');
    const policy = (name: string, sa: string) => `
apiVersion: security.nodemesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: ${name}, namespace: mesh }
spec:
  selector: { matchLabels: { app: echo-near } }
  action: DENY
  rules: [{ from: [{ source: { principals: ["cluster.local/ns/mesh/sa/${sa}"] } }] }]
`;
    t.after(async () => { await remove(`${policy('near-deny-b', 'client-b')}---\n${policy('near-deny-a', 'client-a')}`, { ignoreNotFound: true }); });
    assert.equal((await apply(policy('near-deny-b', 'client-b'))).code, 0);
    assert.ok((await echoProbe('mesh/client-b', near, 9000)).error, 'client-b is refused on the same node too');
    const held = echoProbe('mesh/client-a', near, 9000, { holdMs: 15_000 });
    await eventually('client-a local connection open', async () =>
      (await connections('node-1')).some((c) => c.pod.name === 'client-a' && c.state === 'open' && c.path?.startsWith('local')));
    assert.equal((await apply(policy('near-deny-a', 'client-a'))).code, 0);
    const closed = await held;
    assert.ok(closed.closedAfterMs !== undefined && closed.closedAfterMs < 14_000, `closed by the policy change: ${JSON.stringify(closed)}`);
  });

  test('a Service endpoint that does not answer is replaced by another before any byte is sent', async () => {
    // Power of two choices between two idle endpoints picks either: over 12 connections the
    // dead one is tried (and replaced) with probability 1 - 2^-12.
    for (let i = 0; i < 12; i++) {
      const r = await echoProbe('mesh/client-a', '10.96.8.10', 80, { send: `try-${i}` });
      assert.equal(r.echo, `try-${i}`, `attempt ${i}: ${JSON.stringify(r)}`);
      assert.match(r.greeting ?? '', /^hello from flaky-ok /);
    }
    const recs = (await connections('node-1')).filter((c) => c.originalDestination.address === '10.96.8.10:80');
    assert.equal(recs.length, 12);
    assert.ok(recs.every((c) => c.verdict === 'allow' && c.originalDestination.workload?.name === 'flaky-ok'), JSON.stringify(recs.map((c) => [c.verdict, c.reason])));
    const tried = await eventually('the dead endpoint to have been tried', async () => {
      const l = (await connections('node-2')).filter((c) => c.direction === 'inbound-hbone' && c.originalDestination.address === `${ips['mesh/flaky-dead']}:9000`);
      return l.length > 0 && l;
    });
    assert.ok(tried.every((c) => c.verdict === 'error'), 'its destination daemon answered 503 (nothing listens)');
  });

  test('PeerAuthentication: STRICT refuses plaintext from an un-enrolled pod, PERMISSIVE admits it', async () => {
    const pa = (mode: string) => `
apiVersion: security.nodemesh.io/v1alpha1
kind: PeerAuthentication
metadata: { name: default, namespace: mesh }
spec: { mtls: { mode: ${mode} } }
`;
    const echoIP = ips['mesh/echo'];
    let r = await apply(pa('STRICT'));
    assert.equal(r.code, 0, r.stderr);
    const refused = await echoProbe('plain/client-p', echoIP, 9000);
    assert.ok(refused.error, `STRICT: ${JSON.stringify(refused)}`);
    const rec = await eventually('a STRICT deny record', async () =>
      (await connections('node-2')).find((c) => c.direction === 'inbound-plaintext' && /peer-authentication-strict/.test(c.reason)));
    assert.equal(rec.verdict, 'deny');
    assert.match((await echoProbe('mesh/client-a', ECHO_VIP, 80)).greeting ?? '', /^hello from echo/, 'mesh traffic still flows');
    r = await apply(pa('PERMISSIVE'));
    assert.equal(r.code, 0, r.stderr);
    const admitted = await echoProbe('plain/client-p', echoIP, 9000);
    assert.match(admitted.greeting ?? '', /^hello from echo .* to 127\.0\.0\.6:/, `PERMISSIVE: ${JSON.stringify(admitted)}`);
  });
});

describe('certificate rotation under load', () => {
  before(async () => {
    requireSandboxPrerequisites();
    await down();
    await nodemeshOk(['local', 'up', '--nodes', '2', '-f', '-'], { input: MANIFEST, timeoutMs: 180_000, env: { NODEMESH_CERT_TTL_SECONDS: '20' } });
  });
  after(async () => {
    await down();
    assert.deepEqual(leftovers(), []);
  });

  test('20 s certificates rotate under continuous traffic with no failed request', async () => {
    const certs = async () => (await adminGet('node-1', '/debug/certificates')).json<{ identities: { spiffeId?: string; issuedAt?: string; notAfter?: string }[] }>().identities;
    const first = await eventually('client-a certificate', async () => (await certs()).find((c) => c.spiffeId?.endsWith('/sa/client-a') && c.issuedAt));
    const lifetime = (Date.parse(first.notAfter!) - Date.now()) / 1000;
    assert.ok(lifetime < 40, `certificates are short-lived here (${lifetime.toFixed(0)} s left)`);
    const r = await exec('mesh/client-a', ['nodemesh-sample-app', 'load', '--url', 'http://10.96.8.9/', '--rps', '20', '--duration', '25', '--max-requests', '500'], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const summary = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { requests: number; ok: number; failed: number };
    assert.ok(summary.requests >= 400, `load ran: ${JSON.stringify(summary)}`);
    assert.equal(summary.failed, 0, `no failed request: ${JSON.stringify(summary)}`);
    const now = (await certs()).find((c) => c.spiffeId?.endsWith('/sa/client-a'));
    assert.ok(now?.issuedAt && Date.parse(now.issuedAt) > Date.parse(first.issuedAt!), `the certificate was rotated: ${JSON.stringify({ first, now })}`);
    const server = (await adminGet('node-2', '/debug/certificates')).json<{ identities: { spiffeId?: string; issuedAt?: string }[] }>().identities.find((c) => c.spiffeId?.endsWith('/sa/web'));
    assert.ok(server?.issuedAt && Date.parse(server.issuedAt) > Date.parse(first.issuedAt!) - 5000, 'the server side rotated too');
    const conns = await connections('node-1');
    assert.equal(conns.filter((c) => c.pod.name === 'client-a' && c.verdict !== 'allow').length, 0, 'every tunnelled connection was allowed');
  });
});
