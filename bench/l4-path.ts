// The daemon's L4 path on 127.0.0.1, without a sandbox: the outbound handler (handleOutbound:
// original destination, decide, record, HBONE tunnel) in one process and the pod's inbound
// HBONE (HboneInbound: verify, authorize, connect to the app, splice, record) in another, wired
// as node-1's and node-2's daemons wire them (connection table, metrics, the daemon's JSON log).
// What it leaves out is the kernel part: the eBPF capture (the original destination is given)
// and the pods' network namespaces. Prints the CPU each side spent per connection (new-conn)
// or per request (keepalive): the number to compare before and after a change, with no lock
// to wait for. Not a test: numbers depend on the machine.
//
//   node dist/bench/l4-path.js [--mode new-conn|keepalive] [--count 5000] [--concurrency 32] [--size 1024] [--seconds 30]
//
// L4_PATH_PROF=<dir> writes a CPU profile per side into <dir> (src.cpuprofile, dst.cpuprofile).
// Bounded by --count and --seconds; 127.0.0.1 only.
import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { MeshCA, describeLeaf, spiffeId } from '../daemon/identity/ca';
import { createLogger } from '../daemon/log';
import { NodeMetrics } from '../daemon/metrics';
import { ConnectionTable } from '../daemon/proxy/connection-table';
import { HboneInbound } from '../daemon/proxy/inbound-hbone';
import { OpenInboundSet } from '../daemon/proxy/open-inbound';
import { handleOutbound, type PodContext, type ProxyDeps } from '../daemon/proxy/outbound';
import type { Datapath } from '../daemon/redirection/datapath';
import { LoopbackSocketFactory, type SocketFactory } from '../daemon/redirection/socket-factory';
import { PowerOfTwoChoices } from '../daemon/routing/balancer';
import type { Resource } from '../daemon/state/resources';
import { buildSnapshot } from '../daemon/state/snapshot';
import { CleanEndSet } from '../daemon/tunnel/clean-end';
import { HboneClient } from '../daemon/tunnel/hbone-client';
import { HBONE_PORT } from '../daemon/tunnel/hbone-protocol';
import type { IssuedIdentity } from '../daemon/tunnel/tls-identity';
import { DEFAULT_CLK_TCK, readProcCpu } from './proc-stats';

const HOST = '127.0.0.1';
const TD = 'cluster.local';

export interface PathArgs { mode: 'new-conn' | 'keepalive'; count: number; concurrency: number; size: number; seconds: number }

export function parsePathArgs(argv: string[]): PathArgs {
  const a: PathArgs = { mode: 'new-conn', count: 5000, concurrency: 32, size: 1024, seconds: 30 };
  const ranges: Record<string, [keyof PathArgs, number, number]> = {
    '--count': ['count', 1, 1_000_000], '--concurrency': ['concurrency', 1, 1000], '--size': ['size', 1, 1 << 20], '--seconds': ['seconds', 1, 300],
  };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i]!;
    const v = argv[i + 1];
    if (v === undefined) throw new Error(`${k} needs a value`);
    if (k === '--mode') {
      if (v !== 'new-conn' && v !== 'keepalive') throw new Error(`--mode must be new-conn or keepalive (got ${v})`);
      a.mode = v;
      continue;
    }
    const r = ranges[k];
    if (!r) throw new Error(`unknown option ${k}; options: --mode ${Object.keys(ranges).join(' ')}`);
    const n = Number(v);
    if (!Number.isInteger(n) || n < r[1] || n > r[2]) throw new Error(`${k} must be an integer from ${r[1]} to ${r[2]} (got ${v})`);
    (a as unknown as Record<string, number>)[r[0]] = n;
  }
  return a;
}

/** Two enrolled pods: the client on node-1, the server (127.0.0.1) on node-2. */
function resources(): Resource[] {
  const pod = (name: string, node: string, ip: string): Resource => ({
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'mesh', uid: name, labels: { app: name } },
    spec: { nodeName: node, serviceAccountName: name, containers: [{ name: 'c' }] }, status: { phase: 'Running', podIP: ip },
  });
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'mesh', labels: { 'nodemesh.io/dataplane-mode': 'ambient' } } },
    pod('client', 'node-1', '127.0.0.2'), pod('server', 'node-2', HOST),
  ];
}

// --- the two sides, each in its own process ---------------------------------------------

type Role =
  | { role: 'dst'; identity: IssuedIdentity }
  | { role: 'src'; identity: IssuedIdentity; hbonePort: number; appPort: number };

function listen(handler: (s: net.Socket) => void): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true }, handler);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: HOST, port: 0, backlog: 4096 }, () => resolve((server.address() as net.AddressInfo).port));
  });
}

/** The daemon's connection table, metrics and log (to this process's stdout, discarded). */
function tableOf(node: string): ConnectionTable {
  const metrics = new NodeMetrics();
  const log = createLogger('info', { node });
  return new ConnectionTable(log.child({ component: 'connections' }), { opened: (r) => metrics.opened(r), closed: (r) => metrics.closed(r) });
}

async function runRole(msg: Role): Promise<number> {
  const snapshot = buildSnapshot(resources(), 1);
  const identities = { get: () => msg.identity, whenReady: async () => msg.identity };
  const log = createLogger('warn', { node: msg.role });
  if (msg.role === 'dst') {
    const inbound = new HboneInbound({ trustDomain: TD, identities, sockets: new LoopbackSocketFactory(), snapshot: () => snapshot, connections: tableOf('node-2'), log });
    const ctx: PodContext = { workload: snapshot.workloads.get('server')!, netnsPath: '/proc/self/ns/net', netnsCookie: 2n };
    inbound.ensure(ctx);
    while (!inbound.stats()[0]?.ready) await new Promise((r) => setTimeout(r, 10));
    return listen((s) => inbound.handle(ctx, s));
  }
  // The HBONE port of the server pod is this bench's destination listener.
  const loopback = new LoopbackSocketFactory();
  const sockets: SocketFactory = {
    listen: (ns, o, on) => loopback.listen(ns, o, on),
    connect: (ns, o) => loopback.connect(ns, { ...o, port: o.port === HBONE_PORT ? msg.hbonePort : o.port }),
    netnsCookie: (ns) => loopback.netnsCookie(ns),
    release: (ns) => loopback.release(ns),
  };
  const original = { family: 4 as const, address: HOST, port: msg.appPort };
  const datapath = { takeOriginalDestination: () => original } as unknown as Datapath; // the eBPF capture's answer
  const deps: ProxyDeps = {
    node: 'node-1', trustDomain: TD, datapath, sockets, snapshot: () => snapshot, connections: tableOf('node-1'), log,
    picker: new PowerOfTwoChoices(), identities, hbone: new HboneClient({ log }), localPod: () => undefined,
    openInbound: new OpenInboundSet(), cleanEnds: new CleanEndSet(),
  };
  const pod: PodContext = { workload: snapshot.workloads.get('client')!, netnsPath: '/proc/self/ns/net', netnsCookie: 1n };
  return listen((s) => handleOutbound(deps, pod, s));
}

if (process.argv[2] === '--role') {
  process.once('SIGTERM', () => process.exit(0)); // a clean exit writes the CPU profile
  process.once('message', (m: Role) => {
    runRole(m).then((port) => process.send!({ port }), (e: Error) => { process.send!({ error: e.message }); process.exit(1); });
  });
}

// --- the load -------------------------------------------------------------------------------

const children: ChildProcess[] = [];

function spawnRole(msg: Role): Promise<{ port: number; pid: number }> {
  const prof = process.env.L4_PATH_PROF;
  const child = fork(__filename, ['--role'], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    execArgv: prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`, `--cpu-prof-name=${msg.role}.cpuprofile`] : [],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.once('message', (m: { port?: number; error?: string }) => (m.port ? resolve({ port: m.port, pid: child.pid! }) : reject(new Error(m.error))));
    child.once('exit', (code) => reject(new Error(`${msg.role} exited with ${code}`)));
    child.send(msg);
  });
}

async function issue(ca: MeshCA, sa: string): Promise<IssuedIdentity> {
  const id = spiffeId(ca.trustDomain, 'mesh', sa);
  const { keyPem, certPem } = await ca.issue(id, 3600);
  const leaf = describeLeaf(certPem);
  return { spiffeId: id, keyPem, certChainPem: [certPem], trustBundlePem: [ca.rootCertPem], notBefore: leaf.notBefore, notAfter: leaf.notAfter };
}

/** Writes `size` bytes, resolves once as many came back. */
function exchange(s: net.Socket, payload: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = 0;
    const onData = (c: Buffer) => {
      got += c.length;
      if (got < payload.length) return;
      s.off('data', onData);
      s.off('error', reject);
      resolve();
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write(payload);
  });
}

function open(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: HOST, port, noDelay: true });
    s.once('connect', () => { s.off('error', reject); resolve(s); });
    s.once('error', reject);
  });
}

/** Voluntary context switches of the process's main thread (its event loop going to sleep). */
function loopSleeps(pid: number): number {
  try {
    const m = /^voluntary_ctxt_switches:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Runs `count` units (a new connection each, or a request on one of `concurrency` kept-alive
 * connections), `concurrency` at once, bounded by `seconds`; returns how many succeeded. */
async function load(port: number, a: PathArgs, count: number): Promise<{ ok: number; errors: number; seconds: number }> {
  const payload = Buffer.alloc(a.size, 0x61);
  const deadline = Date.now() + a.seconds * 1000;
  const t0 = process.hrtime.bigint();
  let issued = 0;
  let ok = 0;
  let errors = 0;
  const worker = async () => {
    const kept = a.mode === 'keepalive' ? await open(port) : undefined;
    while (issued < count && Date.now() < deadline) {
      issued++;
      try {
        if (kept) { await exchange(kept, payload); } else {
          const s = await open(port);
          await exchange(s, payload);
          s.end();
          s.destroy();
        }
        ok++;
      } catch {
        errors++;
      }
    }
    kept?.destroy();
  };
  await Promise.all(Array.from({ length: a.concurrency }, worker));
  return { ok, errors, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

async function main(): Promise<void> {
  const a = parsePathArgs(process.argv.slice(2));
  const ca = await MeshCA.create({ trustDomain: TD });
  const [client, server] = [await issue(ca, 'client'), await issue(ca, 'server')];
  const app = net.createServer({ allowHalfOpen: true }, (s) => { s.on('error', () => undefined); s.pipe(s); });
  await new Promise<void>((r) => app.listen({ host: HOST, port: 0, backlog: 4096 }, () => r()));
  const appPort = (app.address() as net.AddressInfo).port;
  try {
    const dst = await spawnRole({ role: 'dst', identity: server });
    const src = await spawnRole({ role: 'src', identity: client, hbonePort: dst.port, appPort });
    console.log(`l4-path: mode ${a.mode}, ${a.count} ${a.mode === 'new-conn' ? 'connections' : 'requests'}, ${a.concurrency} at once, ${a.size} B each way, 127.0.0.1 only`);
    await load(src.port, { ...a, seconds: 10 }, Math.min(a.count, 500)); // warm-up: JIT, the HBONE session
    const cpu = () => [src.pid, dst.pid].map((pid) => readProcCpu(pid, DEFAULT_CLK_TCK)?.cpuSeconds ?? NaN);
    const sleeps = () => [src.pid, dst.pid].map(loopSleeps);
    const before = cpu();
    const sleptBefore = sleeps();
    const r = await load(src.port, a, a.count);
    const after = cpu();
    const sleptAfter = sleeps();
    const wakes = (k: number) => (sleptAfter[k]! - sleptBefore[k]!) / Math.max(1, r.ok);
    const per = (k: number) => ((after[k]! - before[k]!) * 1e6) / Math.max(1, r.ok);
    const unit = a.mode === 'new-conn' ? 'connection' : 'request';
    console.log(`${r.ok} ok, ${r.errors} errors in ${r.seconds.toFixed(1)} s (${(r.ok / r.seconds).toFixed(0)}/s)`);
    console.log(`CPU per ${unit}: source side ${per(0).toFixed(0)} µs, destination side ${per(1).toFixed(0)} µs, both ${(per(0) + per(1)).toFixed(0)} µs` +
      ` (= ms per 1,000)`);
    // Each time a side's event loop had nothing to do it slept (a voluntary context switch of
    // its main thread) and paid a wake-up later: at low load, the fixed cost of every event.
    console.log(`event-loop sleeps per ${unit}: source side ${wakes(0).toFixed(2)}, destination side ${wakes(1).toFixed(2)}`);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    app.close();
  }
}

if (require.main === module && process.argv[2] !== '--role') {
  main().catch((e: Error) => { console.error(`l4-path: ${e.message}`); process.exitCode = 1; });
}
