// Side-by-side on 127.0.0.1: the same request/response load straight to an echo app, through
// a plaintext TCP proxy pair, and through an HBONE pair (HboneClient in one process,
// HboneListener in another, as a source node and a destination node would be). Prints
// requests/s, p50/p99 latency and ratios. Not a test: numbers depend on the machine.
//
//   node dist/bench/hbone-loopback.js [--conns 64] [--size 1024] [--requests 100000] [--seconds 5] [--rounds 3] [--mode persistent|churn]
//
// persistent: each of --conns connections does request/response in a loop (tunnel data path).
// churn: every request opens a new connection (tunnel setup path: one CONNECT stream each).
// Every run is bounded by --requests and by --seconds; the three paths take turns for --rounds
// rounds and the median round is reported (the machine may be shared). Loopback only.
import { ChildProcess, fork } from 'node:child_process';
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { MeshCA, describeLeaf, spiffeId } from '../daemon/identity/ca';
import { HboneClient } from '../daemon/tunnel/hbone-client';
import { HboneListener } from '../daemon/proxy/inbound-hbone';
import { spliceStreamSocket } from '../daemon/tunnel/splice';
import { pipeBoth } from '../daemon/proxy/pipe';
import type { IssuedIdentity } from '../daemon/tunnel/tls-identity';

const HOST = '127.0.0.1';

interface Args { conns: number; size: number; requests: number; seconds: number; rounds: number; mode: 'persistent' | 'churn' }

function parseArgs(argv: string[]): Args {
  const a: Args = { conns: 64, size: 1024, requests: 100_000, seconds: 5, rounds: 3, mode: 'persistent' };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '');
    const v = argv[i + 1];
    if (k === 'mode') { if (v !== 'persistent' && v !== 'churn') throw new Error('--mode persistent|churn'); a.mode = v; continue; }
    if (!(k in a)) throw new Error(`unknown flag --${k}`);
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${k} needs a positive number`);
    (a as unknown as Record<string, number>)[k] = n;
  }
  a.seconds = Math.min(a.seconds, 60);
  a.rounds = Math.min(Math.floor(a.rounds), 10);
  a.conns = Math.min(Math.floor(a.conns), 1000);
  a.requests = Math.min(a.requests, 5_000_000);
  return a;
}

function listen(handler: (s: net.Socket) => void): Promise<net.Server> {
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, handler);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: HOST, port: 0, backlog: 4096 }, () => resolve(server));
  });
}
const portOf = (s: net.Server) => (s.address() as net.AddressInfo).port;

// --- roles run in child processes -------------------------------------------------------

type RoleMessage =
  | { role: 'echo' }
  | { role: 'tcp-proxy'; upstreamPort: number }
  | { role: 'hbone-server'; identity: IssuedIdentity; appPort: number }
  | { role: 'hbone-client'; identity: IssuedIdentity; serverId: string; hbonePort: number; appPort: number };

async function runRole(msg: RoleMessage): Promise<number> {
  const log = pino({ level: 'warn' });
  switch (msg.role) {
    case 'echo':
      return portOf(await listen((s) => { s.on('error', () => undefined); s.pipe(s); }));
    case 'tcp-proxy':
      return portOf(await listen((s) => {
        s.on('error', () => undefined);
        void pipeBoth(s, net.connect({ host: HOST, port: msg.upstreamPort, allowHalfOpen: true, noDelay: true }));
      }));
    case 'hbone-server': {
      const server = new HboneListener({
        identity: () => msg.identity, trustDomain: 'cluster.local', podIPs: [HOST],
        authorize: () => ({ allow: true }),
        connectApp: (port) => net.connect({ host: HOST, port, allowHalfOpen: true, noDelay: true }),
        log, onConnection: () => undefined,
      });
      return portOf(await listen((s) => server.handle(s)));
    }
    case 'hbone-client': {
      const client = new HboneClient({ log });
      const authority = `${HOST}:${msg.appPort}`;
      return portOf(await listen((s) => {
        s.on('error', () => undefined);
        s.pause();
        client.connect({
          source: msg.identity, target: { address: HOST, port: msg.hbonePort }, authority, expectedServerIds: [msg.serverId],
          headers: { forwarded: `for=${HOST}` },
          dial: () => net.connect({ host: HOST, port: msg.hbonePort }),
        }).then((stream) => { void spliceStreamSocket(stream, s); s.resume(); }, () => s.destroy());
      }));
    }
  }
}

// --- load generator ---------------------------------------------------------------------

interface Result {
  requests: number; errors: number; seconds: number; rps: number; p50: number; p99: number;
  /** CPU the two proxy processes spent per request (µs): efficiency, less sensitive to a busy machine. */
  proxyCpuUsPerRequest?: number;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function load(port: number, a: Args): Promise<Result> {
  const payload = Buffer.alloc(a.size, 0x61);
  const latencies = new Float64Array(a.requests);
  let issued = 0;
  let done = 0;
  let errors = 0;
  const deadline = performance.now() + a.seconds * 1000;
  const start = performance.now();
  const more = () => issued < a.requests && performance.now() < deadline;

  // One request: write `size` bytes, wait until `size` bytes came back.
  const exchange = (s: net.Socket): Promise<void> => new Promise((resolve, reject) => {
    let got = 0;
    const t0 = performance.now();
    const onData = (c: Buffer) => {
      got += c.length;
      if (got >= a.size) {
        s.off('data', onData); s.off('error', reject);
        if (done < latencies.length) latencies[done] = performance.now() - t0;
        done++;
        resolve();
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write(payload);
  });
  const open = (): Promise<net.Socket> => new Promise((resolve, reject) => {
    const s = net.connect({ host: HOST, port, noDelay: true });
    s.once('connect', () => { s.off('error', reject); resolve(s); });
    s.once('error', reject);
  });

  const worker = async () => {
    if (a.mode === 'persistent') {
      let s: net.Socket | undefined;
      while (more()) {
        issued++;
        try {
          s ??= await open();
          await exchange(s);
        } catch {
          errors++;
          s?.destroy();
          s = undefined;
        }
      }
      s?.end();
      s?.destroy();
    } else {
      while (more()) {
        issued++;
        let s: net.Socket | undefined;
        try {
          s = await open();
          await exchange(s);
        } catch {
          errors++;
        }
        s?.destroy();
      }
    }
  };
  await Promise.all(Array.from({ length: a.conns }, worker));
  const seconds = (performance.now() - start) / 1000;
  const sorted = latencies.slice(0, Math.min(done, latencies.length)).sort();
  return { requests: done, errors, seconds, rps: done / seconds, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
}

// --- orchestration ----------------------------------------------------------------------

const children: ChildProcess[] = [];

/** CPU time (user+system, µs) a role process has used so far. */
function cpuOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    const onMsg = (m: { cpu?: number }) => { if (m.cpu !== undefined) { child.off('message', onMsg); resolve(m.cpu); } };
    child.on('message', onMsg);
    child.send({ cmd: 'cpu' });
  });
}

async function proxyCpu(procs: ChildProcess[]): Promise<number> {
  return (await Promise.all(procs.map(cpuOf))).reduce((x, y) => x + y, 0);
}

function spawnRole(msg: RoleMessage): Promise<number> {
  // HBONE_BENCH_PROF=<dir> writes a CPU profile per role process into <dir>.
  const prof = process.env.HBONE_BENCH_PROF;
  const child = fork(__filename, ['--role'], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`, `--cpu-prof-name=${msg.role}.cpuprofile`] : [],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.once('message', (m: { port?: number; error?: string }) => (m.port ? resolve(m.port) : reject(new Error(m.error))));
    child.once('exit', (code) => reject(new Error(`${msg.role} exited with ${code}`)));
    child.send(msg);
  });
}

async function issue(ca: MeshCA, ns: string, sa: string): Promise<IssuedIdentity> {
  const id = spiffeId(ca.trustDomain, ns, sa);
  const { keyPem, certPem } = await ca.issue(id, 3600);
  const leaf = describeLeaf(certPem);
  return { spiffeId: id, keyPem, certChainPem: [certPem], trustBundlePem: [ca.rootCertPem], notBefore: leaf.notBefore, notAfter: leaf.notAfter };
}

function fmt(r: Result): string {
  const cpu = r.proxyCpuUsPerRequest === undefined ? '' : `  proxy CPU ${r.proxyCpuUsPerRequest.toFixed(1).padStart(6)} µs/req`;
  return `${r.rps.toFixed(0).padStart(8)} req/s  p50 ${r.p50.toFixed(3).padStart(7)} ms  p99 ${r.p99.toFixed(3).padStart(7)} ms${cpu}  (${r.requests} requests, ${r.errors} errors, ${r.seconds.toFixed(1)} s)`;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const ca = await MeshCA.create({ trustDomain: 'cluster.local' });
  const web = await issue(ca, 'shop', 'web');
  const api = await issue(ca, 'shop', 'api');

  const appPort = await spawnRole({ role: 'echo' });
  const tcpDst = await spawnRole({ role: 'tcp-proxy', upstreamPort: appPort });
  const tcpSrc = await spawnRole({ role: 'tcp-proxy', upstreamPort: tcpDst });
  const tcpProcs = children.slice(1, 3);
  const hboneDst = await spawnRole({ role: 'hbone-server', identity: api, appPort });
  const hboneSrc = await spawnRole({ role: 'hbone-client', identity: web, serverId: api.spiffeId, hbonePort: hboneDst, appPort });
  const hboneProcs = children.slice(3, 5);

  console.log(`hbone-loopback: mode=${a.mode} conns=${a.conns} size=${a.size} B, at most ${a.requests} requests or ${a.seconds} s per run, ${a.rounds} rounds, 127.0.0.1 only`);
  const paths = [
    { name: 'direct to app    ', port: appPort, procs: [] as ChildProcess[], runs: [] as Result[] },
    { name: 'TCP proxy pair   ', port: tcpSrc, procs: tcpProcs, runs: [] as Result[] },
    { name: 'HBONE pair (mTLS)', port: hboneSrc, procs: hboneProcs, runs: [] as Result[] },
  ];
  // Warm-up (JIT, pooled session), then the paths take turns.
  const warm = { ...a, requests: Math.min(2000, a.requests), seconds: 2 };
  for (const p of paths) await load(p.port, warm);
  for (let r = 0; r < a.rounds; r++) {
    for (const p of paths) {
      const cpu0 = await proxyCpu(p.procs);
      const res = await load(p.port, a);
      if (p.procs.length > 0) res.proxyCpuUsPerRequest = ((await proxyCpu(p.procs)) - cpu0) / Math.max(1, res.requests);
      p.runs.push(res);
      console.log(`  round ${r + 1} ${p.name} ${fmt(res)}`);
    }
  }
  const median = (runs: Result[]) => [...runs].sort((x, y) => x.rps - y.rps)[Math.floor(runs.length / 2)];
  const [direct, tcp, hbone] = paths.map((p) => median(p.runs));
  console.log('median round:');
  for (const [p, r] of [[paths[0], direct], [paths[1], tcp], [paths[2], hbone]] as const) console.log(`  ${p.name} ${fmt(r)}`);
  console.log(`ratios: HBONE/direct ${(hbone.rps / direct.rps).toFixed(2)}x req/s, HBONE/TCP-proxy ${(hbone.rps / tcp.rps).toFixed(2)}x req/s; p99 HBONE/TCP-proxy ${(hbone.p99 / tcp.p99).toFixed(2)}x; proxy CPU per request HBONE/TCP-proxy ${(hbone.proxyCpuUsPerRequest! / tcp.proxyCpuUsPerRequest!).toFixed(2)}x`);
}

if (process.argv[2] === '--role') {
  process.once('message', (msg: RoleMessage) => {
    runRole(msg).then((port) => process.send!({ port }), (e: Error) => process.send!({ error: e.message }));
    process.on('message', (m: { cmd?: string }) => {
      if (m.cmd === 'cpu') { const u = process.cpuUsage(); process.send!({ cpu: u.user + u.system }); }
    });
  });
  process.once('disconnect', () => process.exit(0));
} else {
  main().catch((e) => { console.error(e); process.exitCode = 1; }).finally(() => {
    // Disconnecting lets each role exit on its own (and write its profile); the ones that do
    // not are killed. Only our own children are touched.
    for (const c of children) if (c.connected) c.disconnect();
    setTimeout(() => { for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill(); }, 2000).unref();
  });
}
