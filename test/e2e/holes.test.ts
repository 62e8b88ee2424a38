// Issue 7's ways around the mesh, closed, on the real kernel in the sandbox: a pod that sets
// the mark the daemon's sockets once carried is still captured (and its payload is mTLS on
// the wire); the admin socket and ports are exposed only where they should be; an IPv6 pod
// pair talks through the mesh both ways, and IPv6 plaintext reaches an enrolled pod through
// the daemon; kubelet probes pass under STRICT while another pod's plaintext is refused;
// UDP passes through, counted; readiness turns 503 with a reason when certificates cannot
// be had.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  STATE_DIR, adminGet, adminSocket, apply, down, eventually, exec, identityRecord, inNodeNetns, leftovers, nodemeshOk, processAlive,
  requireSandboxPrerequisites, status,
} from './helpers/sandbox';
import { connections, echoProbe } from './helpers/mesh';

const DUAL = '{ sandbox.nodemesh.io/ip-families: "IPv4,IPv6" }';
const UDP_ECHO = 'import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(("0.0.0.0",53))\nwhile True:\n  d,a=s.recvfrom(512)\n  s.sendto(d+b" from "+a[0].encode(),a)\n';
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
metadata: { name: client, namespace: mesh, annotations: ${DUAL} }
spec: { nodeName: node-1, serviceAccountName: client, containers: [{ name: c, command: [nodemesh-sample-app, tcp-echo, --port, "9000", --host, "::"] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: echo, namespace: mesh, labels: { app: echo }, annotations: ${DUAL} }
spec: { nodeName: node-2, serviceAccountName: echo, containers: [{ name: c, command: [nodemesh-sample-app, tcp-echo, --port, "9000", --host, "::"] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: web, namespace: mesh, labels: { app: web }, annotations: ${DUAL} }
spec: { nodeName: node-2, serviceAccountName: web, containers: [{ name: c, command: [nodemesh-sample-app, http, --port, "8080", --host, "::"] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: client-p, namespace: plain, annotations: ${DUAL} }
spec: { nodeName: node-1, containers: [{ name: c, command: [sleep, "3600"] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: spoofer, namespace: plain, annotations: ${DUAL} }
spec: { nodeName: node-2, containers: [{ name: c, command: [sleep, "3600"] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: udp, namespace: plain }
spec: { nodeName: node-2, containers: [{ name: c, command: [python3, -c, ${JSON.stringify(UDP_ECHO)}] }] }
`;

/** Python in a pod: a TCP connection whose socket carries SO_MARK 0x539 (the mark capture
 * used to trust), greeting read, payload sent, echo read; prints JSON. */
const MARKED_CLIENT = `
import json, socket, sys
host, port, payload = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, 36, 0x539)  # SO_MARK
s.settimeout(5)
s.connect((host, port))
f = s.makefile('rwb')
greeting = f.readline().decode().strip()
f.write((payload + '\\n').encode()); f.flush()
echo = f.readline().decode().strip()
print(json.dumps({'mark': s.getsockopt(socket.SOL_SOCKET, 36), 'localPort': s.getsockname()[1], 'greeting': greeting, 'echo': echo}))
`;

const UDP_CLIENT = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(b'dns?', (sys.argv[1], 53))
print(s.recvfrom(512)[0].decode())
`;

function metricValue(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describe('ways around the mesh, closed', () => {
  let ips: Record<string, string> = {};
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nm-holes-'));
  const v6 = (pod: string) => {
    const [ns, name] = pod.split('/');
    const c = JSON.parse(fs.readFileSync(path.join(STATE_DIR, 'cluster.json'), 'utf8')) as { pods: Record<string, { ip6?: string }> };
    const ip = c.pods[`${ns}/${name}`]?.ip6;
    assert.ok(ip, `${pod} has no IPv6 address`);
    return ip;
  };

  before(async () => {
    requireSandboxPrerequisites();
    for (const t of ['tcpdump', 'python3', 'curl', 'ss']) {
      assert.equal(spawnSync('sh', ['-c', `command -v ${t}`]).status, 0, `${t} is missing (make system-deps)`);
    }
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

  test('a pod socket with SO_MARK 0x539 still goes through the daemon, and its payload is not on the wire', async () => {
    const pcap = path.join(tmp, 'marked.pcap');
    let said = '';
    const dump = spawn('nsenter', ['--net=/run/netns/nmsb-node-1', 'tcpdump', '-Z', 'root', '--immediate-mode', '-i', 'eth0', '-U', '-s', '0', '-w', pcap, 'tcp'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const payload = `NODEMESH-MARKED-${randomBytes(8).toString('hex')}`;
    let out: { mark: number; localPort: number; greeting: string; echo: string };
    try {
      dump.stderr.setEncoding('utf8').on('data', (d: string) => { said += d; });
      await eventually('tcpdump to listen', () => said.includes('listening on'), 10_000);
      const r = await exec('mesh/client', ['python3', '-c', MARKED_CLIENT, ips['mesh/echo']!, '9000', payload]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      out = JSON.parse(r.stdout.trim()) as typeof out;
      await new Promise((res) => setTimeout(res, 500));
    } finally {
      dump.kill('SIGINT');
      await new Promise((res) => dump.once('close', res));
    }
    assert.equal(out.mark, 0x539, 'the socket really carried the mark');
    assert.equal(out.echo, payload);
    assert.match(out.greeting, /^hello from echo .* to 127\.0\.0\.6:/, 'the app was reached by the destination daemon, not by the client');
    const rec = (await connections('node-1')).find((c) => c.direction === 'outbound' && c.source.address.endsWith(`:${out.localPort}`)
      && c.originalDestination.address === `${ips['mesh/echo']}:9000`);
    assert.ok(rec, 'the marked connection is in node-1\'s connection table');
    assert.equal(rec.path, 'hbone');
    const bytes = fs.readFileSync(pcap);
    assert.ok(bytes.length > 100, `the capture holds packets (${said})`);
    assert.equal(bytes.indexOf('NODEMESH-MARKED-'), -1, 'the payload is not on the wire in clear');
    const read = (filter: string) => spawnSync('tcpdump', ['-r', pcap, '-nn', filter], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
    assert.ok(read('tcp dst port 15008').length > 0, 'it went to the HBONE port');
    assert.deepEqual(read('tcp port 9000'), [], 'nothing to the app port crossed the link');
  });

  test('admin socket 0600 in a 0700 directory; admin port on loopback only; metrics and readiness on IPv4 and IPv6', async () => {
    const sock = adminSocket('node-1');
    const st = fs.statSync(sock);
    assert.ok(st.isSocket());
    assert.equal((st.mode & 0o777).toString(8), '600');
    assert.equal((fs.statSync(path.dirname(sock)).mode & 0o777).toString(8), '700');
    const ss = await inNodeNetns('node-1', ['ss', '-ltnH']);
    const listeners = ss.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/)[3]).filter(Boolean).sort();
    assert.deepEqual(listeners, ['*:15020', '*:15021', '127.0.0.1:15000'], `'*' is a dual-stack [::] socket: ${ss.stdout}`);
    const c = JSON.parse(fs.readFileSync(path.join(STATE_DIR, 'cluster.json'), 'utf8')) as { nodes: { name: string; ip: string }[] };
    const node1 = c.nodes.find((n) => n.name === 'node-1')!.ip;
    const curl = (url: string) => inNodeNetns('node-2', ['curl', '-gs', '--max-time', '3', '-o', '/dev/null', '-w', '%{http_code}', url]);
    assert.equal((await curl(`http://${node1}:15021/healthz/ready`)).stdout, '200', 'readiness over IPv4');
    assert.equal((await curl('http://[fd00:172:30::b]:15021/healthz/ready')).stdout, '200', 'readiness over IPv6');
    assert.equal((await curl(`http://${node1}:15020/metrics`)).stdout, '200', 'metrics over IPv4');
    assert.equal((await curl('http://[fd00:172:30::b]:15020/metrics')).stdout, '200', 'metrics over IPv6');
    const admin = await curl(`http://${node1}:15000/debug/config`);
    assert.equal(admin.stdout, '000', 'the admin port does not answer on the node address');
    assert.notEqual(admin.code, 0);
  });

  test('IPv6: a dual-stack pod pair talks through the mesh both ways; IPv6 plaintext reaches an enrolled pod through its daemon', async () => {
    const ab = await echoProbe('mesh/client', v6('mesh/echo'), 9000, { send: 'six' });
    assert.equal(ab.echo, 'six', JSON.stringify(ab));
    const ba = await echoProbe('mesh/echo', v6('mesh/client'), 9000, { send: 'xis' });
    assert.equal(ba.echo, 'xis', JSON.stringify(ba));
    const out1 = (await connections('node-1')).find((c) => c.direction === 'outbound' && c.originalDestination.address === `[${v6('mesh/echo')}]:9000`);
    assert.ok(out1, 'node-1 carried client -> echo over IPv6');
    assert.equal(out1.path, 'hbone');
    assert.equal(out1.verdict, 'allow');
    const out2 = (await connections('node-2')).find((c) => c.direction === 'outbound' && c.originalDestination.address === `[${v6('mesh/client')}]:9000`);
    assert.ok(out2, 'node-2 carried echo -> client over IPv6');
    assert.equal(out2.path, 'hbone');
    // Plaintext from an un-enrolled pod over IPv6 (PERMISSIVE): steered to [::1]:15006.
    const plain = await echoProbe('plain/client-p', v6('mesh/echo'), 9000, { send: 'p6' });
    assert.equal(plain.echo, 'p6', JSON.stringify(plain));
    assert.match(plain.greeting ?? '', / to ::1:\d+$/, 'the app was reached by the daemon from ::1');
    const rec = (await connections('node-2')).find((c) => c.direction === 'inbound-plaintext' && c.originalDestination.address.includes(v6('mesh/echo')));
    assert.ok(rec, 'node-2 recorded the IPv6 plaintext connection');
  });

  test('UDP of an enrolled pod passes through unchanged (DNS included), counted in nodemesh_udp_passthrough_total', async () => {
    const metric = async () => metricValue((await adminGet('node-1', '/metrics')).body, 'nodemesh_udp_passthrough_total', 'family="ipv4",kind="dns"');
    const before = await metric();
    const r = await exec('mesh/client', ['python3', '-c', UDP_CLIENT, ips['plain/udp']!]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout.trim(), `dns? from ${ips['mesh/client']}`, 'the datagram reached the destination from the pod itself');
    assert.ok((await metric()) >= before + 1, 'counted');
  });

  test('kubelet probes from the node address pass under STRICT; plaintext from another pod is refused', async () => {
    const r = await apply(`
apiVersion: security.nodemesh.io/v1alpha1
kind: PeerAuthentication
metadata: { name: default, namespace: mesh }
spec: { mtls: { mode: STRICT } }
`);
    assert.equal(r.code, 0, r.stderr);
    const probe = await inNodeNetns('node-2', ['curl', '-s', '--max-time', '3', '-o', '/dev/null', '-w', '%{http_code}', `http://${ips['mesh/web']}:8080/`]);
    assert.equal(probe.stdout, '200', `kubelet-style probe from node-2's address: ${probe.stdout} ${probe.stderr}`);
    const refused = await echoProbe('plain/client-p', ips['mesh/echo']!, 9000);
    assert.ok(refused.error, `plaintext from a pod under STRICT: ${JSON.stringify(refused)}`);
    // A pod on the same node that takes the node's addresses as its own: node-2 drops its IPv4
    // packets (a local address as source), and IPv6 node addresses are not probe sources.
    const web = ips['mesh/web']!;
    for (const [addr, url] of [['172.30.0.12/32', `http://${web}:8080/`], ['fd00:172:30::c/128', `http://[${v6('mesh/web')}]:8080/`]] as const) {
      const src = addr.split('/')[0]!;
      const add = await exec('plain/spoofer', ['ip', 'addr', 'add', addr, 'dev', 'eth0', ...(src.includes(':') ? ['nodad'] : [])]);
      assert.equal(add.code, 0, add.stdout + add.stderr);
      const spoofed = await exec('plain/spoofer', ['curl', '-gs', '--max-time', '3', '--interface', src, '-o', '/dev/null', '-w', '%{http_code}', url]);
      assert.notEqual(spoofed.stdout, '200', `a pod sending from the node's address ${src} is not let through as a probe: ${spoofed.stdout} ${spoofed.stderr}`);
    }
    const v6probe = await inNodeNetns('node-2', ['curl', '-gs', '--max-time', '3', '-o', '/dev/null', '-w', '%{http_code}', `http://[${v6('mesh/web')}]:8080/`]);
    assert.notEqual(v6probe.stdout, '200', 'IPv6 probes are not exempted (documented)');
    const fromNode1 = await inNodeNetns('node-1', ['curl', '-s', '--max-time', '3', '-o', '/dev/null', '-w', '%{http_code}', `http://${ips['mesh/web']}:8080/`]);
    assert.notEqual(fromNode1.stdout, '200', 'another node\'s address is not a probe source for node-2\'s pods');
    const rec = await eventually('a STRICT deny record', async () =>
      (await connections('node-2')).find((c) => c.direction === 'inbound-plaintext' && /peer-authentication-strict/.test(c.reason)));
    assert.equal(rec.verdict, 'deny');
  });

  test('readiness is 503 with a reason while a pod\'s certificate cannot be had', async () => {
    assert.equal((await adminGet('node-1', '/healthz/ready')).status, 200);
    const id = identityRecord();
    assert.ok(processAlive(id.process), 'nodemesh-identity runs');
    process.kill(id.process!.pid, 'SIGTERM');
    await eventually('nodemesh-identity to stop', () => !processAlive(id.process), 10_000);
    const r = await apply(`
apiVersion: v1
kind: Pod
metadata: { name: lonely, namespace: mesh }
spec: { nodeName: node-1, serviceAccountName: lonely, containers: [{ name: c, command: [sleep, "3600"] }] }
`);
    assert.equal(r.code, 0, r.stderr);
    const ready = await eventually('node-1 not ready', async () => {
      const a = await adminGet('node-1', '/healthz/ready');
      return a.status === 503 ? a : undefined;
    }, 15_000);
    assert.match(ready.body, /certificate for mesh\/lonely is pending/);
  });
});
