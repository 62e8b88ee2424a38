// Side-by-side on 127.0.0.1: the same load straight to an echo app, through a plaintext TCP
// proxy pair, through a node:http2 CONNECT pair over mTLS (what HBONE ran on before
// daemon/tunnel/h2), and through our HBONE pair (HboneClient in one process, HboneListener in
// another, as a source node and a destination node would be). Not a test: numbers depend on
// the machine; the A/B is in one run so they share its noise.
//
//   node dist/bench/hbone-loopback.js [--conns 64] [--size 1024] [--requests 100000] [--seconds 5] [--rounds 3]
//        [--mode persistent|churn|held|bulk] [--bulk-mb 256] [--paths direct,tcp,node-h2,hbone]
//
// persistent: each of --conns connections does request/response in a loop (tunnel data path);
//   proxy CPU per request in µs is the same number as ms per 1,000 requests.
// churn: every request opens a new connection (tunnel setup path: one CONNECT stream each).
// held: --conns connections are opened, used once and held; memory of both proxies per held
//   connection (RSS and JS heap, after GC), then again after they close.
// bulk: one connection carries --bulk-mb MiB to the echo app and back; MB/s one way.
// Every run is bounded by --requests and by --seconds; the paths take turns for --rounds
// rounds and the median round is reported (the machine may be shared). Loopback only.
import { ChildProcess, fork } from 'node:child_process';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { MeshCA, describeLeaf, spiffeId } from '../daemon/identity/ca';
import { HboneClient } from '../daemon/tunnel/hbone-client';
import { HboneListener } from '../daemon/proxy/inbound-hbone';
import { spliceStreamSocket } from '../daemon/tunnel/splice';
import { pipeBoth } from '../daemon/proxy/pipe';
import { secureContextOptions, type IssuedIdentity } from '../daemon/tunnel/tls-identity';
import { DEFAULT_TUNING } from '../daemon/tunnel/hbone-protocol';

const HOST = '127.0.0.1';

type Mode = 'persistent' | 'churn' | 'held' | 'bulk';
const MODES: Mode[] = ['persistent', 'churn', 'held', 'bulk'];
const PATHS = ['direct', 'tcp', 'node-h2', 'hbone'] as const;
type PathName = typeof PATHS[number];

interface Args { conns: number; size: number; requests: number; seconds: number; rounds: number; mode: Mode; 'bulk-mb': number; paths: PathName[] }

function parseArgs(argv: string[]): Args {
  const a: Args = { conns: 64, size: 1024, requests: 100_000, seconds: 5, rounds: 3, mode: 'persistent', 'bulk-mb': 256, paths: [...PATHS] };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '');
    const v = argv[i + 1];
    if (k === 'mode') { if (!MODES.includes(v as Mode)) throw new Error(`--mode ${MODES.join('|')}`); a.mode = v as Mode; continue; }
    if (k === 'paths') {
      const list = v.split(',');
      for (const p of list) if (!PATHS.includes(p as PathName)) throw new Error(`--paths takes ${PATHS.join(',')}`);
      a.paths = list as PathName[];
      continue;
    }
    if (!(k in a)) throw new Error(`unknown flag --${k}`);
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${k} needs a positive number`);
    (a as unknown as Record<string, number>)[k] = n;
  }
  a.seconds = Math.min(a.seconds, 60);
  a.rounds = Math.min(Math.floor(a.rounds), 10);
  a.conns = Math.min(Math.floor(a.conns), a.mode === 'held' ? 20_000 : 1000);
  a['bulk-mb'] = Math.min(a['bulk-mb'], 4096);
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
  | { role: 'hbone-client'; identity: IssuedIdentity; serverId: string; hbonePort: number; appPort: number }
  | { role: 'node-h2-server'; identity: IssuedIdentity; appPort: number }
  | { role: 'node-h2-client'; identity: IssuedIdentity; hbonePort: number; appPort: number };

/** The same windows, frame size and stream limit for the node:http2 pair as HBONE uses. */
const t = DEFAULT_TUNING;
const nodeSettings = (maxConcurrentStreams: number): http2.Settings => ({ enablePush: false, initialWindowSize: t.streamWindowBytes, maxFrameSize: t.maxFrameSize, maxConcurrentStreams });

/** node:http2 CONNECT server, as HboneServer was before daemon/tunnel/h2: mTLS, connect to
 * the app, 200, then pipe both ways. */
function nodeH2Server(msg: Extract<RoleMessage, { role: 'node-h2-server' }>): Promise<number> {
  const server = http2.createSecureServer({ ...secureContextOptions(msg.identity), requestCert: true, rejectUnauthorized: true, settings: nodeSettings(1000), maxSessionMemory: 128 });
  server.on('session', (session) => {
    session.on('error', () => undefined);
    session.setLocalWindowSize(t.connectionWindowBytes);
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const [host, port] = String(headers[':authority']).split(':');
    const app = net.connect({ host, port: Number(port), allowHalfOpen: true, noDelay: true });
    app.on('error', () => stream.close(http2.constants.NGHTTP2_CONNECT_ERROR));
    app.once('connect', () => {
      stream.respond({ ':status': 200 });
      stream.pipe(app);
      app.pipe(stream);
    });
    stream.on('close', () => app.destroy());
    app.on('close', () => { if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL); });
  });
  return listen((s) => server.emit('connection', s)).then(portOf);
}

/** node:http2 CONNECT client with pooled sessions of at most 100 streams, as HboneClient was. */
function nodeH2Client(msg: Extract<RoleMessage, { role: 'node-h2-client' }>): Promise<number> {
  const secureContext = tls.createSecureContext(secureContextOptions(msg.identity));
  const sessions: { s: http2.ClientHttp2Session; streams: number }[] = [];
  const session = () => {
    let e = sessions.find((x) => !x.s.closed && !x.s.destroyed && x.streams < 100);
    if (!e) {
      const s = http2.connect(`https://${HOST}:${msg.hbonePort}`, {
        createConnection: () => tls.connect({ host: HOST, port: msg.hbonePort, secureContext, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined }),
        settings: nodeSettings(0), maxSessionMemory: 128, peerMaxConcurrentStreams: 100,
      });
      s.on('error', () => undefined);
      s.once('connect', () => s.setLocalWindowSize(t.connectionWindowBytes));
      e = { s, streams: 0 };
      const entry = e;
      s.once('close', () => sessions.splice(sessions.indexOf(entry), 1));
      sessions.push(e);
    }
    return e;
  };
  const authority = `${HOST}:${msg.appPort}`;
  return listen((sock) => {
    sock.on('error', () => undefined);
    sock.pause();
    const e = session();
    e.streams++;
    const stream = e.s.request({ ':method': 'CONNECT', ':authority': authority, forwarded: `for=${HOST}` }, { endStream: false });
    stream.on('error', () => undefined);
    stream.once('close', () => { e.streams--; sock.destroy(); });
    stream.once('response', (h) => {
      if (h[':status'] !== 200) { sock.destroy(); return; }
      stream.pipe(sock);
      sock.pipe(stream);
      sock.resume();
    });
    sock.on('close', () => { if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL); });
  }).then(portOf);
}

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
    case 'node-h2-server': return nodeH2Server(msg);
    case 'node-h2-client': return nodeH2Client(msg);
  }
}

// --- load generator ---------------------------------------------------------------------

interface Result {
  requests: number; errors: number; seconds: number; rps: number; p50: number; p99: number;
  /** CPU the two proxy processes spent per request (µs): efficiency, less sensitive to a busy machine. */
  proxyCpuUsPerRequest?: number;
  /** held: KiB of both proxies per held connection (RSS, JS heap), and RSS KiB per connection still up after they closed. */
  heldKiB?: { rss: number; heap: number; rssAfterClose: number };
  /** bulk: MB/s one way. */
  mbps?: number;
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

/** held: open --conns connections, one exchange each, keep them; memory is measured by the caller. */
async function openHeld(port: number, a: Args): Promise<{ sockets: net.Socket[]; errors: number }> {
  const payload = Buffer.alloc(a.size, 0x61);
  const sockets: net.Socket[] = [];
  let errors = 0;
  const deadline = performance.now() + a.seconds * 1000 * 4;
  const one = (): Promise<void> => new Promise((resolve) => {
    const s = net.connect({ host: HOST, port, noDelay: true });
    let got = 0;
    s.on('error', () => { errors++; resolve(); });
    s.on('data', (c: Buffer) => { got += c.length; if (got >= a.size) { sockets.push(s); resolve(); } });
    s.once('connect', () => s.write(payload));
  });
  // 50 at a time: a burst of thousands of connects would measure the accept backlog instead.
  for (let i = 0; i < a.conns && performance.now() < deadline; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, a.conns - i) }, one));
  }
  return { sockets, errors };
}

/** bulk: one connection, --bulk-mb MiB out and echoed back; MB/s is bytes one way / time. */
function bulk(port: number, a: Args): Promise<Result> {
  const total = a['bulk-mb'] * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 0x62);
  return new Promise((resolve) => {
    const s = net.connect({ host: HOST, port, noDelay: true });
    const start = performance.now();
    let sent = 0, got = 0;
    const deadline = setTimeout(() => s.destroy(), a.seconds * 1000 * 6);
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!s.write(chunk)) { s.once('drain', pump); return; }
      }
    };
    s.once('connect', pump);
    s.on('data', (c: Buffer) => { got += c.length; if (got >= total) s.destroy(); });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(deadline);
      const seconds = (performance.now() - start) / 1000;
      resolve({ requests: 1, errors: got >= total ? 0 : 1, seconds, rps: 0, p50: NaN, p99: NaN, mbps: got / 1e6 / seconds });
    });
  });
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

/** RSS and JS heap (bytes) of role processes after a full GC. */
async function proxyMem(procs: ChildProcess[]): Promise<{ rss: number; heap: number }> {
  const all = await Promise.all(procs.map((child) => new Promise<{ rss: number; heap: number }>((resolve) => {
    const onMsg = (m: { mem?: { rss: number; heap: number } }) => { if (m.mem) { child.off('message', onMsg); resolve(m.mem); } };
    child.on('message', onMsg);
    child.send({ cmd: 'mem' });
  })));
  return all.reduce((x, y) => ({ rss: x.rss + y.rss, heap: x.heap + y.heap }), { rss: 0, heap: 0 });
}

async function runOnce(p: { port: number; procs: ChildProcess[] }, a: Args): Promise<Result> {
  if (a.mode === 'bulk') {
    const cpu0 = await proxyCpu(p.procs);
    const r = await bulk(p.port, a);
    if (p.procs.length > 0) r.proxyCpuUsPerRequest = ((await proxyCpu(p.procs)) - cpu0) / a['bulk-mb'];
    return r;
  }
  if (a.mode === 'held') {
    const m0 = await proxyMem(p.procs);
    const start = performance.now();
    const { sockets, errors } = await openHeld(p.port, a);
    await new Promise((r) => setTimeout(r, 500));
    const m1 = await proxyMem(p.procs);
    for (const s of sockets) s.destroy();
    await new Promise((r) => setTimeout(r, 1500));
    const m2 = await proxyMem(p.procs);
    const n = Math.max(1, sockets.length);
    return {
      requests: sockets.length, errors, seconds: (performance.now() - start) / 1000, rps: 0, p50: NaN, p99: NaN,
      heldKiB: { rss: (m1.rss - m0.rss) / 1024 / n, heap: (m1.heap - m0.heap) / 1024 / n, rssAfterClose: (m2.rss - m0.rss) / 1024 / n },
    };
  }
  const cpu0 = await proxyCpu(p.procs);
  const res = await load(p.port, a);
  if (p.procs.length > 0) res.proxyCpuUsPerRequest = ((await proxyCpu(p.procs)) - cpu0) / Math.max(1, res.requests);
  return res;
}

function spawnRole(msg: RoleMessage): Promise<number> {
  // HBONE_BENCH_PROF=<dir> writes a CPU profile per role process into <dir>.
  const prof = process.env.HBONE_BENCH_PROF;
  const child = fork(__filename, ['--role'], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: ['--expose-gc', ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`, `--cpu-prof-name=${msg.role}.cpuprofile`] : [])],
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

function fmt(r: Result, mode: Mode): string {
  if (mode === 'held') {
    const h = r.heldKiB!;
    return `${h.rss.toFixed(1).padStart(7)} KiB RSS/conn  ${h.heap.toFixed(1).padStart(6)} KiB heap/conn  after close ${h.rssAfterClose.toFixed(1).padStart(6)} KiB RSS/conn  (${r.requests} held, ${r.errors} errors)`;
  }
  const cpuUnit = mode === 'bulk' ? 'µs/MiB' : mode === 'churn' ? 'µs/conn' : 'µs/req (= ms/1,000 req)';
  const cpu = r.proxyCpuUsPerRequest === undefined ? '' : `  proxy CPU ${r.proxyCpuUsPerRequest.toFixed(1).padStart(7)} ${cpuUnit}`;
  if (mode === 'bulk') return `${r.mbps!.toFixed(1).padStart(7)} MB/s one way${cpu}  (${r.seconds.toFixed(1)} s, ${r.errors} errors)`;
  return `${r.rps.toFixed(0).padStart(8)} req/s  p50 ${r.p50.toFixed(3).padStart(7)} ms  p99 ${r.p99.toFixed(3).padStart(7)} ms${cpu}  (${r.requests} requests, ${r.errors} errors, ${r.seconds.toFixed(1)} s)`;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const ca = await MeshCA.create({ trustDomain: 'cluster.local' });
  const web = await issue(ca, 'shop', 'web');
  const api = await issue(ca, 'shop', 'api');

  const appPort = await spawnRole({ role: 'echo' });
  const paths: { name: PathName; label: string; port: number; procs: ChildProcess[]; runs: Result[] }[] = [];
  const add = async (name: PathName, label: string, start: () => Promise<number>): Promise<void> => {
    if (!a.paths.includes(name)) return;
    const from = children.length;
    const port = await start();
    paths.push({ name, label, port, procs: children.slice(from), runs: [] });
  };
  await add('direct', 'direct to app      ', async () => appPort);
  await add('tcp', 'TCP proxy pair     ', async () => spawnRole({ role: 'tcp-proxy', upstreamPort: await spawnRole({ role: 'tcp-proxy', upstreamPort: appPort }) }));
  await add('node-h2', 'node:http2 pair    ', async () => spawnRole({ role: 'node-h2-client', identity: web, appPort, hbonePort: await spawnRole({ role: 'node-h2-server', identity: api, appPort }) }));
  await add('hbone', 'HBONE pair (h2/)   ', async () => spawnRole({ role: 'hbone-client', identity: web, serverId: api.spiffeId, appPort, hbonePort: await spawnRole({ role: 'hbone-server', identity: api, appPort }) }));

  console.log(`hbone-loopback: mode=${a.mode} conns=${a.conns} size=${a.size} B${a.mode === 'bulk' ? ` bulk ${a['bulk-mb']} MiB` : ''}, at most ${a.requests} requests or ${a.seconds} s per run, ${a.rounds} rounds, 127.0.0.1 only`);
  // Warm-up (JIT, pooled session), then the paths take turns.
  const warm = { ...a, mode: 'persistent' as Mode, requests: Math.min(2000, a.requests), seconds: 2 };
  for (const p of paths) await load(p.port, warm);
  for (let r = 0; r < a.rounds; r++) {
    for (const p of paths) {
      const res = await runOnce(p, a);
      p.runs.push(res);
      console.log(`  round ${r + 1} ${p.label} ${fmt(res, a.mode)}`);
    }
  }
  const key = (x: Result) => (a.mode === 'held' ? -x.heldKiB!.rss : a.mode === 'bulk' ? x.mbps! : x.rps);
  const median = (runs: Result[]) => [...runs].sort((x, y) => key(x) - key(y))[Math.floor(runs.length / 2)];
  console.log('median round:');
  const med = new Map(paths.map((p) => [p.name, median(p.runs)]));
  for (const p of paths) console.log(`  ${p.label} ${fmt(med.get(p.name)!, a.mode)}`);
  const ours = med.get('hbone'), before = med.get('node-h2');
  if (ours && before) {
    if (a.mode === 'held') console.log(`ratio h2/ vs node:http2: RSS per held connection ${(ours.heldKiB!.rss / before.heldKiB!.rss).toFixed(2)}x`);
    else if (a.mode === 'bulk') console.log(`ratio h2/ vs node:http2: ${(ours.mbps! / before.mbps!).toFixed(2)}x MB/s, proxy CPU per MiB ${(ours.proxyCpuUsPerRequest! / before.proxyCpuUsPerRequest!).toFixed(2)}x`);
    else console.log(`ratio h2/ vs node:http2: ${(ours.rps / before.rps).toFixed(2)}x req/s, p99 ${(ours.p99 / before.p99).toFixed(2)}x, proxy CPU per request ${(ours.proxyCpuUsPerRequest! / before.proxyCpuUsPerRequest!).toFixed(2)}x`);
  }
}

if (process.argv[2] === '--role') {
  process.once('message', (msg: RoleMessage) => {
    runRole(msg).then((port) => process.send!({ port }), (e: Error) => process.send!({ error: e.message }));
    process.on('message', (m: { cmd?: string }) => {
      if (m.cmd === 'cpu') { const u = process.cpuUsage(); process.send!({ cpu: u.user + u.system }); }
      if (m.cmd === 'mem') {
        (globalThis as { gc?: () => void }).gc?.();
        const mu = process.memoryUsage();
        process.send!({ mem: { rss: mu.rss, heap: mu.heapUsed + mu.external } });
      }
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
