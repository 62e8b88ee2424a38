// The eBPF kernel path against the real kernel: EbpfDatapath + bpf/ + native/, driven
// directly, on a fixture of our own (network namespaces, veth pairs, a cgroup, a pin root,
// all named nmt-<pid>-*). Needs root; fails (never skips) when a prerequisite is missing.
//
// Topology (no interface in the root namespace; traffic only inside these namespaces):
//
//   pod A  10.213.1.2, fd00:213:1::2 ──veth── 10.213.1.1, fd00:213:1::1 ┐
//   pod B  10.213.2.2                ──veth── 10.213.2.1                 ├ "srv": the world
//   pod C  10.213.3.2 (never enrolled)──veth── 10.213.3.1                ┘  outside the pods
//
// Clients run as child processes placed in <cgroup2>/nmt-<pid>-node/apps and entered into a
// pod namespace with nsenter --net (ip netns exec would hide /sys/fs/bpf). This process plays
// the daemon: it owns the 15001/15006 listeners inside the pods (native socketInNetns), and
// capture recognises its sockets by its cgroup (registered by EbpfDatapath.start()), never by
// a mark: a pod process that sets the old daemon mark 0x539 is still captured.
import { strict as assert } from 'node:assert';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadNative, nativeCandidates, repoRoot } from '../../native/index';
import type { NativeBinding } from '../../native/native';
import { INBOUND_PASSTHROUGH_SOURCE_V4, MESH_PORTS } from '../../daemon/redirection/datapath';
import type { SocketAddress } from '../../daemon/redirection/datapath';
import { BPF_FS_MAGIC, detectCgroup2Root, ownCgroupDir } from '../../daemon/redirection/cgroup';
import { EbpfDatapath, type DatapathLogger } from '../../daemon/redirection/ebpf-datapath';

const PREFIX = `nmt-${process.pid}-`;
const NS = { a: `${PREFIX}a`, b: `${PREFIX}b`, c: `${PREFIX}c`, srv: `${PREFIX}srv` };
const nsPath = (name: string) => `/run/netns/${name}`;
const BPFFS = '/sys/fs/bpf';
const PIN_ROOT = `${BPFFS}/nodemesh/test-${process.pid}`;
const FIXTURE_PIN_DIR = `${BPFFS}/${PREFIX}fixture`;
const FIXTURE_PROG_PIN = `${FIXTURE_PIN_DIR}/prog`;
const FIXTURE_MAP_PIN = `${FIXTURE_PIN_DIR}/maps/nmt_connects`;
const REPO = repoRoot(__dirname);
const FIXTURE_OBJ = path.join(REPO, 'bpf', 'build', 'fixtures', 'count-connect.bpf.o');

const IP = {
  a: '10.213.1.2', srvA: '10.213.1.1', a6: 'fd00:213:1::2', srvA6: 'fd00:213:1::1',
  b: '10.213.2.2', srvB: '10.213.2.1',
  c: '10.213.3.2', srvC: '10.213.3.1',
};
const PORT = { srv: 8081, srv6: 8086, srvExcluded: 8082, app: 8080, appExcluded: 8090, appOnMetricsPort: 15020, meshHbone: MESH_PORTS.inboundHbone };
/** The mark the daemon's sockets used to carry (and capture trusted): any pod can set it. */
const OLD_DAEMON_MARK = 0x539;
/** An address of srv playing the node's own address (kubelet probes come from it). */
const PROBE_SRC = '10.213.1.100';

// --- small helpers ----------------------------------------------------------------------

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
}

/** Runs a cleanup step, collecting (not throwing) its failure, so every step runs. */
function attempt(errors: string[], what: string, fn: () => void): void {
  try { fn(); } catch (e) { errors.push(`${what}: ${(e as Error).message.split('\n')[0]}`); }
}

async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
    const v = fn();
    if (v !== undefined && v !== false) return v as T;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

const logger: DatapathLogger & { lines: string[] } = {
  lines: [],
  info(o, m) { this.lines.push(`info ${m} ${JSON.stringify(o, (_k, v) => typeof v === 'bigint' ? v.toString() : v)}`); },
  warn(o, m) { this.lines.push(`warn ${m} ${JSON.stringify(o, (_k, v) => typeof v === 'bigint' ? v.toString() : v)}`); },
  error(o, m) { this.lines.push(`error ${m} ${JSON.stringify(o, (_k, v) => typeof v === 'bigint' ? v.toString() : v)}`); },
  debug() { /* quiet */ },
};

// --- the client: a child process in the pods' cgroup and a pod's namespace ------------------

const CLIENT_JS = `
'use strict';
const net = require('net');
const a = JSON.parse(process.env.NMT_ARGS);
let done = false;
const out = (o) => { if (done) return; done = true; process.stdout.write(JSON.stringify(o), () => process.exit(0)); };
setTimeout(() => out({ ok: false, error: 'timeout' }), a.timeoutMs);
let sock;
if (a.mark) {
  // A socket marked like the daemon's, created by this process (so it is in the pod cgroup).
  const n = require(a.nativePath);
  const fd = n.socketInNetns('/proc/self/ns/net', a.family, '', 0, a.mark, -1, 0);
  sock = new net.Socket({ fd, readable: true, writable: true, manualStart: true });
  sock.connect({ host: a.host, port: a.port });
} else {
  const o = { host: a.host, port: a.port };
  if (a.localPort) o.localPort = a.localPort;
  if (a.localAddress) o.localAddress = a.localAddress;
  sock = net.connect(o);
}
let data = '';
let info = {};
sock.setTimeout(a.timeoutMs);
sock.on('connect', () => {
  info = { localAddress: sock.localAddress, localPort: sock.localPort, peerAddress: sock.remoteAddress, peerPort: sock.remotePort };
  sock.write('hello\\n');
});
sock.on('data', (d) => { data += d; });
sock.on('close', () => out(Object.assign({ ok: data.length > 0, data }, info)));
sock.on('error', (e) => out(Object.assign({ ok: false, error: e.code || e.message }, info)));
`;

interface ClientResult {
  ok: boolean; data?: string; error?: string;
  localAddress?: string; localPort?: number; peerAddress?: string; peerPort?: number;
}

const children = new Set<number>();
let tmpDir = '';
let cgroupNode = '';
let cgroupApps = '';

function runClient(ns: string, opts: { host: string; port: number; inCgroup?: boolean; mark?: number; family?: 4 | 6; localPort?: number;
  localAddress?: string; timeoutMs?: number }): Promise<ClientResult> {
  const args = JSON.stringify({ ...opts, family: opts.family ?? 4, timeoutMs: opts.timeoutMs ?? 4000, nativePath: nativeCandidates().find((p) => fs.existsSync(p)) });
  const clientJs = path.join(tmpDir, 'client.js');
  const inCgroup = opts.inCgroup ?? true;
  const child = inCgroup
    ? spawn('sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec nsenter --net="$2" "$3" "$4"', 'sh', cgroupApps, nsPath(ns), process.execPath, clientJs],
      { env: { ...process.env, NMT_ARGS: args }, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn('nsenter', [`--net=${nsPath(ns)}`, process.execPath, clientJs], { env: { ...process.env, NMT_ARGS: args }, stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid as number;
  children.add(pid);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve, reject) => {
    const killer = setTimeout(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }, (opts.timeoutMs ?? 4000) + 10_000);
    child.on('close', (code) => {
      clearTimeout(killer);
      children.delete(pid);
      try {
        resolve(JSON.parse(stdout) as ClientResult);
      } catch {
        reject(new Error(`client in ${ns} exited ${code} without a result: ${stdout} ${stderr}`));
      }
    });
  });
}

const UDP_JS = `
'use strict';
const dgram = require('dgram');
const a = JSON.parse(process.env.NMT_ARGS);
const s = dgram.createSocket('udp4');
const t = setTimeout(() => { process.stdout.write('timeout'); process.exit(0); }, 3000);
s.on('message', (m) => { clearTimeout(t); process.stdout.write(String(m)); process.exit(0); });
s.send('dns?', a.port, a.host);
`;

/** A UDP datagram from a process in pod A's namespace and the pods' cgroup to a responder
 * in srv at host:port; returns what the responder answered (its payload names the source). */
async function udpRoundTrip(host: string, port: number): Promise<string> {
  const responder = spawn('nsenter', [`--net=${nsPath(NS.srv)}`, 'python3', '-c',
    'import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind((sys.argv[1],int(sys.argv[2])))\nprint("up",flush=True)\ns.settimeout(5)\nd,a=s.recvfrom(100)\ns.sendto(d+b" from "+a[0].encode(),a)',
    host, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(responder.pid as number);
  await new Promise<void>((resolve, reject) => {
    responder.stdout.once('data', () => resolve());
    responder.once('exit', (c) => reject(new Error(`UDP responder exited ${c}`)));
  });
  const udpJs = path.join(tmpDir, 'udp.js');
  fs.writeFileSync(udpJs, UDP_JS);
  const child = spawn('sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec nsenter --net="$2" "$3" "$4"', 'sh', cgroupApps, nsPath(NS.a), process.execPath, udpJs],
    { env: { ...process.env, NMT_ARGS: JSON.stringify({ host, port }) }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child.pid as number);
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  await new Promise((r) => child.once('close', r));
  children.delete(child.pid as number);
  try { process.kill(responder.pid as number, 'SIGKILL'); } catch { /* done */ }
  children.delete(responder.pid as number);
  return out;
}

// --- servers: "the world" in srv, and the daemon's listeners inside the pods ---------------

interface Served { server: net.Server; fd: number; connections: number; close(): Promise<void> }

function adopt(fd: number, onConnection: (s: net.Socket) => void): Promise<Served> {
  const open = new Set<net.Socket>();
  const served: Served = {
    server: net.createServer(onConnection), fd, connections: 0,
    close: () => new Promise<void>((r) => {
      served.server.close(() => r());
      for (const s of open) s.destroy();
    }),
  };
  served.server.on('connection', (s: net.Socket) => {
    served.connections++;
    open.add(s);
    s.on('close', () => open.delete(s));
  });
  return new Promise((resolve, reject) => {
    served.server.once('error', reject);
    served.server.listen({ fd }, () => resolve(served));
  });
}

/** A listener inside the namespace at nsName; `greeting` answers each connection. */
async function listenIn(native: NativeBinding, nsName: string, family: 4 | 6, host: string, port: number,
  greeting: (s: net.Socket) => string | undefined, mark = 0, dualStack = false): Promise<Served> {
  // SO_REUSEPORT (16) as the daemon's listeners have it, so the tests see what that allows.
  const fd = native.socketInNetns(nsPath(nsName), family, host, port, mark, 128, 1 | 16 | (family === 6 && !dualStack ? 4 : 0));
  return adopt(fd, (s) => {
    s.on('error', () => { /* client gone */ });
    const g = greeting(s);
    if (g !== undefined) s.end(g);
  });
}

// --- the suite --------------------------------------------------------------------------

describe('kernel path (eBPF capture, sk_lookup steering, pins)', { concurrency: false }, () => {
  let native: NativeBinding;
  let cg2root = '';
  let dp: EbpfDatapath | undefined;
  let dp2: EbpfDatapath | undefined;
  const cookies: Record<string, bigint> = {};
  const served: Served[] = [];
  let srvA: Served, srvA6: Served, srvB: Served, srvC: Served, srvAExcl: Served, appAMetrics: Served;
  let outA: Served, outA6: Served, outB: Served, inA: Served, inB: Served, appA: Served, appAExcl: Served;
  /** The outbound "daemon": answers each captured connection with its original destination. */
  const held: net.Socket[] = [];
  let holdOutbound = false;

  function captureGreeting(ns: 'a' | 'b', family: 4 | 6) {
    return (s: net.Socket): string | undefined => {
      if (holdOutbound) { held.push(s); return undefined; }
      const d = currentDp().takeOriginalDestination(cookies[ns], s.remotePort as number, family);
      return `captured ${d ? fmt(d) : 'none'}\n`;
    };
  }
  const currentDp = () => (dp2 ?? dp) as EbpfDatapath;
  const fmt = (d: SocketAddress) => `${d.family === 6 ? `[${d.address}]` : d.address}:${d.port}`;
  const fixtureCount = (): bigint => {
    const fd = native.mapOpenPinned(FIXTURE_MAP_PIN);
    try {
      const v = native.mapLookup(fd, Buffer.alloc(4), 8);
      return v === null ? 0n : v.readBigUInt64LE(0);
    } finally {
      native.closeFd(fd);
    }
  };
  const mapCount = (pin: string, keySize: number): number => {
    const fd = native.mapOpenPinned(pin);
    try {
      let n = 0;
      for (let k = native.mapNextKey(fd, null, keySize); k !== null && n < 100_000; k = native.mapNextKey(fd, k, keySize)) n++;
      return n;
    } finally {
      native.closeFd(fd);
    }
  };
  const podA = () => ({ uid: 'shop/pod-a', netnsPath: nsPath(NS.a), netnsCookie: cookies.a, ips: [IP.a, IP.a6],
    inboundListenerFd: inA.fd, inboundExcludePorts: [PORT.appExcluded], outboundExcludePorts: [PORT.srvExcluded] });
  const podB = () => ({ uid: 'shop/pod-b', netnsPath: nsPath(NS.b), netnsCookie: cookies.b, ips: [IP.b], inboundListenerFd: inB.fd });

  before(async () => {
    // Prerequisites: fail loudly, never skip.
    assert.equal(process.getuid?.(), 0, 'the kernel-path e2e tests need root (eBPF, network namespaces, cgroups)');
    for (const tool of ['ip', 'nsenter', 'bpftool']) {
      assert.equal(spawnSync(tool, ['--version'], { stdio: 'ignore' }).error, undefined, `${tool} is not installed`);
    }
    for (const f of ['capture.bpf.o', 'inbound.bpf.o']) {
      assert.ok(fs.existsSync(path.join(REPO, 'bpf', 'build', f)), `bpf/build/${f} is missing: run 'make bpf'`);
    }
    assert.ok(fs.existsSync(FIXTURE_OBJ), `${FIXTURE_OBJ} is missing: run 'make bpf'`);
    native = loadNative();
    if (fs.statfsSync(BPFFS).type !== BPF_FS_MAGIC) sh('mount', ['-t', 'bpf', 'bpf', BPFFS]);
    assert.equal(fs.statfsSync(BPFFS).type, BPF_FS_MAGIC, `${BPFFS} is not bpffs`);
    tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), PREFIX));
    fs.writeFileSync(path.join(tmpDir, 'client.js'), CLIENT_JS);

    // Namespaces and veth pairs, created directly inside the namespaces.
    for (const ns of Object.values(NS)) sh('ip', ['netns', 'add', ns]);
    const wire = (pod: string, peer: string, podIp: string, srvIp: string) => {
      sh('ip', ['link', 'add', 'name', 'eth0', 'netns', pod, 'type', 'veth', 'peer', 'name', peer, 'netns', NS.srv]);
      sh('ip', ['-n', pod, 'addr', 'add', `${podIp}/24`, 'dev', 'eth0']);
      sh('ip', ['-n', NS.srv, 'addr', 'add', `${srvIp}/24`, 'dev', peer]);
      sh('ip', ['-n', pod, 'link', 'set', 'lo', 'up']);
      sh('ip', ['-n', pod, 'link', 'set', 'eth0', 'up']);
      sh('ip', ['-n', NS.srv, 'link', 'set', peer, 'up']);
    };
    sh('ip', ['-n', NS.srv, 'link', 'set', 'lo', 'up']);
    wire(NS.a, 'a0', IP.a, IP.srvA);
    wire(NS.b, 'b0', IP.b, IP.srvB);
    wire(NS.c, 'c0', IP.c, IP.srvC);
    sh('ip', ['-n', NS.a, 'addr', 'add', `${IP.a6}/64`, 'dev', 'eth0', 'nodad']);
    sh('ip', ['-n', NS.srv, 'addr', 'add', `${IP.srvA6}/64`, 'dev', 'a0', 'nodad']);
    sh('ip', ['-n', NS.srv, 'addr', 'add', `${PROBE_SRC}/32`, 'dev', 'a0']);
    for (const ns of ['a', 'b', 'c'] as const) cookies[ns] = native.netnsCookie(nsPath(NS[ns]));

    // The node's pod cgroup (attach point) and a child cgroup for the pods' processes.
    cg2root = detectCgroup2Root();
    cgroupNode = path.join(cg2root, `${PREFIX}node`);
    cgroupApps = path.join(cgroupNode, 'apps');
    fs.mkdirSync(cgroupApps, { recursive: true });

    // Someone else's program on the same hook, attached first (like Cilium's socket LB).
    fs.mkdirSync(path.dirname(FIXTURE_MAP_PIN), { recursive: true });
    sh('bpftool', ['prog', 'load', FIXTURE_OBJ, FIXTURE_PROG_PIN, 'pinmaps', path.dirname(FIXTURE_MAP_PIN)]);
    sh('bpftool', ['cgroup', 'attach', cgroupNode, 'connect4', 'pinned', FIXTURE_PROG_PIN, 'multi']);

    // The world: servers in srv that say who they are.
    srvA = await listenIn(native, NS.srv, 4, IP.srvA, PORT.srv, () => `srv ${IP.srvA}:${PORT.srv}\n`);
    srvA6 = await listenIn(native, NS.srv, 6, IP.srvA6, PORT.srv6, () => `srv [${IP.srvA6}]:${PORT.srv6}\n`);
    srvB = await listenIn(native, NS.srv, 4, IP.srvB, PORT.srv, () => `srv ${IP.srvB}:${PORT.srv}\n`);
    srvC = await listenIn(native, NS.srv, 4, IP.srvC, PORT.srv, () => `srv ${IP.srvC}:${PORT.srv}\n`);
    srvAExcl = await listenIn(native, NS.srv, 4, IP.srvA, PORT.srvExcluded, () => `srv ${IP.srvA}:${PORT.srvExcluded}\n`);
    // The apps inside pod A.
    appA = await listenIn(native, NS.a, 4, '0.0.0.0', PORT.app, (s) => `app from ${s.remoteAddress}\n`);
    appAExcl = await listenIn(native, NS.a, 4, '0.0.0.0', PORT.appExcluded, (s) => `app-excluded from ${s.remoteAddress}\n`);
    appAMetrics = await listenIn(native, NS.a, 4, '0.0.0.0', PORT.appOnMetricsPort, (s) => `app-15020 from ${s.remoteAddress}\n`);
    // The daemon's listeners inside the pods (marked like the daemon's).
    outA = await listenIn(native, NS.a, 4, '127.0.0.1', MESH_PORTS.outbound, captureGreeting('a', 4));
    outA6 = await listenIn(native, NS.a, 6, '::1', MESH_PORTS.outbound, captureGreeting('a', 6));
    outB = await listenIn(native, NS.b, 4, '127.0.0.1', MESH_PORTS.outbound, captureGreeting('b', 4));
    // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d; print them as IPv4.
    const v4 = (a: string | undefined) => (a ?? '').replace(/^::ffff:(?=\d+\.)/, '');
    const inbound = (s: net.Socket) => `inbound to ${v4(s.localAddress)}:${s.localPort} from ${v4(s.remoteAddress)}\n`;
    inA = await listenIn(native, NS.a, 6, '::', MESH_PORTS.inboundPlaintext, inbound, 0, true); // dual-stack: v4 and v6 pod IPs
    inB = await listenIn(native, NS.b, 4, '0.0.0.0', MESH_PORTS.inboundPlaintext, inbound);
    served.push(srvA, srvA6, srvB, srvC, srvAExcl, appA, appAExcl, appAMetrics, outA, outA6, outB, inA, inB);
  });

  after(async () => {
    const errors: string[] = [];
    for (const pid of children) attempt(errors, `kill client ${pid}`, () => process.kill(pid, 'SIGKILL'));
    for (const s of held) s.destroy();
    for (const s of served) await Promise.race([s.close(), new Promise((r) => setTimeout(r, 1000))]);
    // Our datapath: detach and unpin whatever is left (also after a failed test).
    for (const d of [dp2, dp]) {
      if (d) await d.stop({ keepAttached: false }).catch((e: Error) => errors.push(`datapath stop: ${e.message}`));
    }
    if (!dp && !dp2 && fs.existsSync(PIN_ROOT)) {
      await new EbpfDatapath({ pinRoot: PIN_ROOT, cgroupPath: cgroupNode || '/', logger, native })
        .stop({ keepAttached: false }).catch((e: Error) => errors.push(`datapath stop: ${e.message}`));
    }
    if (fs.existsSync(FIXTURE_PROG_PIN) && cgroupNode) {
      attempt(errors, 'detach fixture', () => sh('bpftool', ['cgroup', 'detach', cgroupNode, 'connect4', 'pinned', FIXTURE_PROG_PIN]));
    }
    attempt(errors, 'remove fixture pins', () => fs.rmSync(FIXTURE_PIN_DIR, { recursive: true, force: true }));
    attempt(errors, 'remove pin root', () => { if (fs.existsSync(PIN_ROOT)) fs.rmSync(PIN_ROOT, { recursive: true, force: true }); });
    for (const ns of Object.values(NS)) {
      if (fs.existsSync(nsPath(ns))) attempt(errors, `delete netns ${ns}`, () => sh('ip', ['netns', 'del', ns]));
    }
    for (const dir of [cgroupApps, cgroupNode]) {
      if (!dir || !fs.existsSync(dir)) continue;
      await waitFor(`${dir} to empty`, () => fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').trim() === '', 3000)
        .catch(() => errors.push(`${dir} still has processes`));
      attempt(errors, `rmdir ${dir}`, () => fs.rmdirSync(dir));
    }
    if (tmpDir) attempt(errors, 'remove tmp dir', () => fs.rmSync(tmpDir, { recursive: true, force: true }));
    assert.deepEqual(errors, [], 'cleanup');
  });

  it('start(): loads, attaches through bpf_link and pins maps and links', async () => {
    dp = new EbpfDatapath({ pinRoot: PIN_ROOT, cgroupPath: cgroupNode, logger, native, probeSources: [PROBE_SRC] });
    await dp.start();
    await dp.start(); // idempotent
    for (const m of ['nm_enrolled', 'nm_orig_sock', 'nm_orig_conn', 'nm_out_excl', 'nm_pods', 'nm_pod_ips', 'nm_in_listen', 'nm_in_excl', 'nm_daemon_cg', 'nm_udp_stats', 'nm_probe_src']) {
      assert.ok(fs.existsSync(path.join(PIN_ROOT, m)), `map ${m} pinned`);
    }
    for (const p of ['nm_connect4', 'nm_connect6', 'nm_sendmsg4', 'nm_sendmsg6', 'nm_sockops', 'nm_getpeername4', 'nm_getpeername6']) {
      assert.ok(fs.existsSync(path.join(PIN_ROOT, 'links', p)), `link ${p} pinned`);
    }
    const show = sh('bpftool', ['cgroup', 'show', cgroupNode]);
    assert.match(show, /nmt_count_connect4/, 'the fixture program is still attached');
    assert.match(show, /nm_connect4/);
    assert.match(show, /nm_sockops/);
    assert.deepEqual(dp.status().programs.filter((p) => !p.pinned), []);
  });

  it('enrol(): pods A and B are enrolled, with their sk_lookup links pinned', async () => {
    await (dp as EbpfDatapath).enrol(podA());
    await (dp as EbpfDatapath).enrol(podB());
    assert.deepEqual((dp as EbpfDatapath).enrolledUids().sort(), ['shop/pod-a', 'shop/pod-b']);
    assert.ok(fs.existsSync(path.join(PIN_ROOT, 'pods', 'shop%2fpod-a', 'sk_lookup')));
    assert.deepEqual((dp as EbpfDatapath).status().enrolled.find((e) => e.uid === 'shop/pod-a'),
      { uid: 'shop/pod-a', netnsCookie: cookies.a.toString(), ips: [IP.a, IP.a6] });
  });

  it('a pod namespace\'s net sysctls are set from the daemon (tcp_migrate_req, for hitless restarts)', () => {
    const read = () => sh('nsenter', [`--net=${nsPath(NS.b)}`, 'cat', '/proc/sys/net/ipv4/tcp_migrate_req']).trim();
    const own = fs.readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim();
    native.writeNetSysctlInNetns(nsPath(NS.b), 'ipv4/tcp_migrate_req', '1');
    assert.equal(read(), '1');
    assert.equal(fs.readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim(), own, 'this process\'s own namespace is untouched');
  });

  it('an enrolled pod\'s connect lands on 127.0.0.1:15001 in its own namespace, with its original destination', async () => {
    const before = { srv: srvA.connections, out: outA.connections, fixture: fixtureCount() };
    const r = await runClient(NS.a, { host: IP.srvA, port: PORT.srv });
    assert.equal(r.error, undefined, JSON.stringify(r));
    assert.equal(r.data, `captured ${IP.srvA}:${PORT.srv}\n`);
    assert.equal(srvA.connections, before.srv, 'nothing reached the real destination');
    assert.equal(outA.connections, before.out + 1);
    assert.equal(r.peerAddress, IP.srvA, 'getpeername shows the original destination');
    assert.equal(r.peerPort, PORT.srv);
    assert.equal(fixtureCount(), before.fixture + 1n, 'the other program on connect4 still runs');
  });

  it('connect6: IPv6 lands on [::1]:15001, a v4-mapped destination on 127.0.0.1:15001', async () => {
    const r6 = await runClient(NS.a, { host: IP.srvA6, port: PORT.srv6, family: 6 });
    assert.equal(r6.data, `captured [${IP.srvA6}]:${PORT.srv6}\n`, JSON.stringify(r6));
    assert.equal(r6.peerAddress, IP.srvA6);
    const rm = await runClient(NS.a, { host: `::ffff:${IP.srvA}`, port: PORT.srv, family: 6 });
    assert.equal(rm.data, `captured ${IP.srvA}:${PORT.srv}\n`, JSON.stringify(rm));
    assert.equal(rm.peerAddress, `::ffff:${IP.srvA}`);
    assert.equal(srvA6.connections, 0);
  });

  it('an un-enrolled namespace is untouched', async () => {
    const before = srvC.connections;
    const r = await runClient(NS.c, { host: IP.srvC, port: PORT.srv });
    assert.equal(r.data, `srv ${IP.srvC}:${PORT.srv}\n`, JSON.stringify(r));
    assert.equal(srvC.connections, before + 1);
  });

  it('two namespaces connecting at the same moment from the same source port get their own destinations', async () => {
    holdOutbound = true;
    held.length = 0;
    const port = 40000 + (process.pid % 20000);
    const ra = runClient(NS.a, { host: IP.srvA, port: PORT.srv, localPort: port, timeoutMs: 6000 });
    const rb = runClient(NS.b, { host: IP.srvB, port: PORT.srv, localPort: port, timeoutMs: 6000 });
    await waitFor('both connections on the outbound listeners', () => held.length === 2, 5000);
    holdOutbound = false;
    // Both records exist at once; each namespace's key finds its own.
    assert.deepEqual(held.map((s) => s.remotePort), [port, port]);
    const dstA = (dp as EbpfDatapath).takeOriginalDestination(cookies.a, port, 4);
    const dstB = (dp as EbpfDatapath).takeOriginalDestination(cookies.b, port, 4);
    assert.deepEqual(dstA, { family: 4, address: IP.srvA, port: PORT.srv });
    assert.deepEqual(dstB, { family: 4, address: IP.srvB, port: PORT.srv });
    assert.equal((dp as EbpfDatapath).takeOriginalDestination(cookies.a, port, 4), undefined, 'a record is consumed once');
    for (const s of held) s.end('held\n');
    held.length = 0;
    const [a, b] = await Promise.all([ra, rb]);
    assert.equal(a.data, 'held\n');
    assert.equal(b.data, 'held\n');
  });

  it('a pod socket marked 0x539 (the mark the daemon once used) is still captured: only the daemon\'s cgroup is skipped', async () => {
    const before = { srv: srvA.connections, out: outA.connections };
    const r = await runClient(NS.a, { host: IP.srvA, port: PORT.srv, mark: OLD_DAEMON_MARK });
    assert.equal(r.data, `captured ${IP.srvA}:${PORT.srv}\n`, JSON.stringify(r));
    assert.equal(srvA.connections, before.srv, 'nothing reached the destination directly');
    assert.equal(outA.connections, before.out + 1);
    // The daemon's cgroup is what is registered, and nothing else.
    const fd = native.mapOpenPinned(path.join(PIN_ROOT, 'nm_daemon_cg'));
    try {
      const keys: bigint[] = [];
      for (let k = native.mapNextKey(fd, null, 8); k !== null; k = native.mapNextKey(fd, k, 8)) keys.push(k.readBigUInt64LE(0));
      assert.deepEqual(keys, [fs.statSync(ownCgroupDir(), { bigint: true }).ino]);
      assert.notEqual(keys[0], fs.statSync(cgroupApps, { bigint: true }).ino);
    } finally {
      native.closeFd(fd);
    }
  });

  it('per-pod outbound exclusion reaches the destination directly; UDP passes through and is counted', async () => {
    const before = srvAExcl.connections;
    const r = await runClient(NS.a, { host: IP.srvA, port: PORT.srvExcluded });
    assert.equal(r.data, `srv ${IP.srvA}:${PORT.srvExcluded}\n`, JSON.stringify(r));
    assert.equal(srvAExcl.connections, before + 1);
    // Pod B has no such exclusion: the same port is captured there.
    const rb = await runClient(NS.b, { host: IP.srvB, port: PORT.srvExcluded });
    assert.equal(rb.data, `captured ${IP.srvB}:${PORT.srvExcluded}\n`, JSON.stringify(rb));
    // UDP: a DNS-style datagram from pod A reaches srv unchanged; the kernel counts it.
    const d = dp as EbpfDatapath;
    const dns = () => d.udpPassthrough().find((c) => c.family === 4 && c.dns)?.count ?? 0;
    const dnsBefore = dns();
    const got = await udpRoundTrip(IP.srvA, 53);
    assert.equal(got, 'dns? from 10.213.1.2', 'the datagram reached the real destination from the pod');
    assert.ok(dns() >= dnsBefore + 1, `counted (${dnsBefore} -> ${dns()})`);
  });

  it('inbound plaintext to the pod IP lands on the 15006 listener (sk_lookup); exclusions and 127.0.0.6 reach the app', async () => {
    const appBefore = appA.connections;
    const r = await runClient(NS.srv, { host: IP.a, port: PORT.app, inCgroup: false });
    assert.equal(r.data, `inbound to ${IP.a}:${PORT.app} from ${IP.srvA}\n`, JSON.stringify(r));
    const r6 = await runClient(NS.srv, { host: IP.a6, port: PORT.app, family: 6, inCgroup: false });
    assert.equal(r6.data, `inbound to ${IP.a6}:${PORT.app} from ${IP.srvA6}\n`, JSON.stringify(r6));
    // A port nobody listens on is steered too: the daemon decides, not the kernel's RST.
    const rAny = await runClient(NS.srv, { host: IP.a, port: 9999, inCgroup: false });
    assert.equal(rAny.data, `inbound to ${IP.a}:9999 from ${IP.srvA}\n`, JSON.stringify(rAny));
    assert.equal(appA.connections, appBefore, 'plaintext did not reach the app');
    // Excluded port: straight to the app.
    const rx = await runClient(NS.srv, { host: IP.a, port: PORT.appExcluded, inCgroup: false });
    assert.equal(rx.data, `app-excluded from ${IP.srvA}\n`, JSON.stringify(rx));
    // The daemon's own connection to the app, from 127.0.0.6 inside the pod: not steered.
    const fd = native.socketInNetns(nsPath(NS.a), 4, INBOUND_PASSTHROUGH_SOURCE_V4, 0, 0, -1, 0);
    const s = new net.Socket({ fd, readable: true, writable: true, manualStart: true } as net.SocketConstructorOpts);
    const data = await new Promise<string>((resolve, reject) => {
      let buf = '';
      const t = setTimeout(() => { s.destroy(); reject(new Error('timeout')); }, 4000);
      s.on('data', (d: Buffer) => { buf += d.toString(); });
      s.on('close', () => { clearTimeout(t); resolve(buf); });
      s.on('error', (e) => { clearTimeout(t); reject(e); });
      s.connect({ host: IP.a, port: PORT.app });
    });
    assert.equal(data, `app from ${INBOUND_PASSTHROUGH_SOURCE_V4}\n`);
    assert.equal(appA.connections, appBefore + 1);
  });

  it('a pod process that joins the daemon\'s SO_REUSEPORT group on 15006 gets none of the steered plaintext', async () => {
    const intruder = await listenIn(native, NS.a, 6, '::', MESH_PORTS.inboundPlaintext, () => 'intruder\n', 0, true);
    served.push(intruder);
    const before = inA.connections;
    for (let i = 0; i < 8; i++) {
      const r = await runClient(NS.srv, { host: IP.a, port: PORT.app, inCgroup: false });
      assert.equal(r.data, `inbound to ${IP.a}:${PORT.app} from ${IP.srvA}\n`, JSON.stringify(r));
    }
    assert.equal(intruder.connections, 0, 'sk_lookup assigns exactly the daemon\'s socket (BPF_SK_LOOKUP_F_NO_REUSEPORT)');
    assert.equal(inA.connections, before + 8);
    await intruder.close();
    served.splice(served.indexOf(intruder), 1);
  });

  it('kubelet probes: plaintext from the node\'s address reaches the app; an app on a mesh-looking port is still steered', async () => {
    const before = appA.connections;
    const probe = await runClient(NS.srv, { host: IP.a, port: PORT.app, inCgroup: false, localAddress: PROBE_SRC });
    assert.equal(probe.data, `app from ${PROBE_SRC}\n`, JSON.stringify(probe));
    assert.equal(appA.connections, before + 1);
    // Any other source is steered to the daemon, as before.
    const other = await runClient(NS.srv, { host: IP.a, port: PORT.app, inCgroup: false });
    assert.equal(other.data, `inbound to ${IP.a}:${PORT.app} from ${IP.srvA}\n`, JSON.stringify(other));
    // 15020 is the daemon's metrics port on the node, not in the pod: an app there is protected.
    const m = await runClient(NS.srv, { host: IP.a, port: PORT.appOnMetricsPort, inCgroup: false });
    assert.equal(m.data, `inbound to ${IP.a}:${PORT.appOnMetricsPort} from ${IP.srvA}\n`, JSON.stringify(m));
    assert.equal(appAMetrics.connections, 0);
  });

  it('stop({keepAttached:true}) keeps capture working; a new EbpfDatapath on the same pin root adopts everything', async () => {
    await (dp as EbpfDatapath).stop({ keepAttached: true });
    const first = dp as EbpfDatapath;
    dp = undefined;
    assert.deepEqual(first.enrolledUids().sort(), ['shop/pod-a', 'shop/pod-b'], 'readable from the pins before any start()');
    // No daemon handle is open now: capture is still on (fail closed). Keys are read below
    // by the next datapath, so park this connection's record.
    holdOutbound = true;
    const r = runClient(NS.a, { host: IP.srvA, port: PORT.srv });
    await waitFor('the connection on the outbound listener', () => held.length === 1, 5000);
    holdOutbound = false;
    const srvBefore = srvA.connections;

    dp2 = new EbpfDatapath({ pinRoot: PIN_ROOT, cgroupPath: cgroupNode, logger, native });
    await dp2.start();
    assert.match(logger.lines.join('\n'), /adopted pinned links/);
    assert.deepEqual(dp2.enrolledUids().sort(), ['shop/pod-a', 'shop/pod-b']);
    assert.deepEqual(dp2.status().enrolled.find((e) => e.uid === 'shop/pod-b'), { uid: 'shop/pod-b', netnsCookie: cookies.b.toString(), ips: [IP.b] });
    const s = held.pop() as net.Socket;
    const dst = dp2.takeOriginalDestination(cookies.a, s.remotePort as number, 4);
    assert.deepEqual(dst, { family: 4, address: IP.srvA, port: PORT.srv });
    s.end('adopted\n');
    assert.equal((await r).data, 'adopted\n');
    assert.equal(srvA.connections, srvBefore);
    // Exactly one link per hook: adoption replaced programs, it did not attach more.
    const show = sh('bpftool', ['cgroup', 'show', cgroupNode]);
    assert.equal(show.match(/nm_connect4/g)?.length, 1, show);
    // The new daemon re-enrols with its listeners (here: the same ones), and capture and
    // steering go on with the freshly loaded programs.
    await dp2.enrol(podA());
    await dp2.enrol(podB());
    const r2 = await runClient(NS.b, { host: IP.srvB, port: PORT.srv });
    assert.equal(r2.data, `captured ${IP.srvB}:${PORT.srv}\n`, JSON.stringify(r2));
    const r3 = await runClient(NS.srv, { host: IP.a, port: PORT.app, inCgroup: false });
    assert.equal(r3.data, `inbound to ${IP.a}:${PORT.app} from ${IP.srvA}\n`);
  });

  it('unenrol() takes effect for the next connection, and removes only that pod', async () => {
    const d = dp2 as EbpfDatapath;
    await d.unenrol('shop/pod-a');
    await d.unenrol('no/such-pod'); // ignored
    assert.deepEqual(d.enrolledUids(), ['shop/pod-b']);
    assert.ok(!fs.existsSync(path.join(PIN_ROOT, 'pods', 'shop%2fpod-a')));
    const before = srvA.connections;
    const r = await runClient(NS.a, { host: IP.srvA, port: PORT.srv });
    assert.equal(r.data, `srv ${IP.srvA}:${PORT.srv}\n`, JSON.stringify(r));
    assert.equal(srvA.connections, before + 1);
    const rin = await runClient(NS.srv, { host: IP.a, port: PORT.app, inCgroup: false });
    assert.equal(rin.data, `app from ${IP.srvA}\n`, 'inbound to A is no longer steered');
    const rb = await runClient(NS.b, { host: IP.srvB, port: PORT.srv });
    assert.equal(rb.data, `captured ${IP.srvB}:${PORT.srv}\n`, 'B is still captured');
  });

  it('with the daemon\'s listeners gone, an enrolled pod fails closed both ways', async () => {
    await outB.close();
    await inB.close();
    served.splice(served.indexOf(outB), 1);
    served.splice(served.indexOf(inB), 1);
    const before = srvB.connections;
    const r = await runClient(NS.b, { host: IP.srvB, port: PORT.srv });
    assert.equal(r.ok, false);
    assert.equal(r.error, 'ECONNREFUSED', JSON.stringify(r));
    assert.equal(srvB.connections, before, 'nothing reached the destination');
    // Inbound plaintext to B: the SYN is dropped (no listener to steer to), never delivered.
    const bApp = await listenIn(native, NS.b, 4, '0.0.0.0', PORT.app, () => 'app-b\n');
    served.push(bApp);
    const rin = await runClient(NS.srv, { host: IP.b, port: PORT.app, inCgroup: false, timeoutMs: 1500 });
    assert.equal(rin.ok, false, JSON.stringify(rin));
    assert.equal(bApp.connections, 0, 'plaintext never reached the app');
    // Socket-cookie records live as long as their sockets, refused ones included.
    await waitFor('nm_orig_sock to empty once every client socket closed', () => mapCount(path.join(PIN_ROOT, 'nm_orig_sock'), 8) === 0, 5000);
  });

  it('stop({keepAttached:false}) removes all of ours and nothing else', async () => {
    const d = dp2 as EbpfDatapath;
    await d.stop({ keepAttached: false });
    dp2 = undefined;
    assert.ok(!fs.existsSync(PIN_ROOT), `${PIN_ROOT} is gone`);
    const show = sh('bpftool', ['cgroup', 'show', cgroupNode]);
    assert.doesNotMatch(show, /nm_/, 'none of our programs is attached');
    assert.match(show, /nmt_count_connect4/, 'the other program is still attached');
    const before = { srv: srvB.connections, fixture: fixtureCount() };
    const r = await runClient(NS.b, { host: IP.srvB, port: PORT.srv });
    assert.equal(r.data, `srv ${IP.srvB}:${PORT.srv}\n`, JSON.stringify(r));
    assert.equal(srvB.connections, before.srv + 1);
    assert.equal(fixtureCount(), before.fixture + 1n, 'the other program still counts');
    const rin = await runClient(NS.srv, { host: IP.b, port: PORT.app, inCgroup: false });
    assert.equal(rin.data, 'app-b\n', 'sk_lookup of B detached too');
  });
});
