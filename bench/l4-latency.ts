// The first side-by-side benchmark: no mesh vs nodemesh L4 (mTLS HBONE between nodes).
//
//   make bench                      # = make build && node dist/bench/l4-latency.js
//   node dist/bench/l4-latency.js [--rounds 3] [--seconds 15] [--warmup 5]
//        [--scenarios keepalive@200,keepalive@1000,new-conn@200,new-conn@1000]
//        [--conns 8] [--new-conn-concurrency 64] [--size 1024] [--hold 5000] [--out FILE]
//
// It brings up its own sandbox cluster (`nodemesh local up --nodes 2`) with two namespaces:
// `plain` (not enrolled) and `mesh` (nodemesh.io/dataplane-mode: ambient). Each has a client
// pod on node-1, a server pod on node-2 (bench/l4-server.ts: 1 KiB responses) and a Service.
// The load generator (bench/l4-loadgen.ts) runs INSIDE the client pod through `local exec`, so
// in `mesh` its connections are captured by eBPF and carried node-1 -> node-2 over HBONE, and
// in `plain` they go straight through the nodes' routing (nftables DNAT for the Service VIP).
//
// Phases alternate plain / mesh within each round, every scenario in every round, so slow
// drifts of a shared machine hit both arms; the table shows the median over rounds. A
// separate warm-up (both arms, reported, never in the numbers) runs first. Results: a table on
// stdout and bench/results/l4-latency-<date>.json (fields: bench/results/README.md).
//
// `--hold N` then holds N keep-alive connections through the mesh at once (bench/conn-hold.ts
// in mesh/client) and reports each daemon's RSS growth per held connection, and what is left
// of it a few seconds after they closed.
//
// Safety: all traffic stays inside the sandbox's network namespaces (the generator only talks
// to a Service VIP from inside a pod; this process sends no packet itself). Every phase is
// bounded in requests and time, and so is every wait. `local down` runs in a finally, also on
// ^C / SIGTERM. Only one sandbox can exist (fixed nmsb-* names): if one is there that this run
// did not create, it waits (polls every 20 s, up to 10 min) and never tears it down.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_CLK_TCK, readProcCpu, readRssBytes } from './proc-stats';
import { RESULT_PREFIX, type LoadMode, type LoadSpec, type PhaseResult } from './l4-loadgen';
import { HOLD_PREFIX } from './conn-hold';

const REPO = path.resolve(__dirname, '..', '..');
const CLI = path.join(REPO, 'dist', 'installer', 'cli.js');
const LOADGEN = path.join(REPO, 'dist', 'bench', 'l4-loadgen.js');
const SERVER = path.join(REPO, 'dist', 'bench', 'l4-server.js');
const HOLD = path.join(REPO, 'dist', 'bench', 'conn-hold.js');
/** How long held connections stay open, and how long after they close RSS is read again. */
const HOLD_MS = 4_000;
const HOLD_SETTLE_MS = 5_000;
const STATE_DIR = path.resolve(process.env.NODEMESH_SANDBOX_DIR || '/run/nodemesh/sandbox');
const RESULTS_DIR = path.join(REPO, 'bench', 'results');

const ARMS = ['plain', 'mesh'] as const;
type Arm = (typeof ARMS)[number];
const CLIENT_NODE = 'node-1';
const SERVER_NODE = 'node-2';
const SERVICE_PORT = 80;
const SERVER_PORT = 8080;
const FOREIGN_POLL_MS = 20_000;
const FOREIGN_WAIT_MS = 10 * 60_000;
const REQUEST_TIMEOUT_MS = 5000;

// --- arguments ------------------------------------------------------------------------------

export interface Scenario { mode: LoadMode; rate: number }
export interface Args {
  rounds: number;
  seconds: number;
  warmup: number;
  scenarios: Scenario[];
  conns: number;
  newConnConcurrency: number;
  size: number;
  /** Connections to hold at once after the phases (0: none). */
  hold: number;
  out?: string;
}

export const DEFAULT_SCENARIOS = 'keepalive@200,keepalive@1000,new-conn@200,new-conn@1000';

export function parseScenarios(text: string): Scenario[] {
  const out: Scenario[] = [];
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(keepalive|new-conn)@(\d+)$/.exec(part);
    if (!m) throw new Error(`--scenarios: '${part}' is not <keepalive|new-conn>@<requests per second>`);
    const rate = Number(m[2]);
    if (rate < 1 || rate > 5000) throw new Error(`--scenarios: rate ${rate} in '${part}' must be from 1 to 5000 requests/s`);
    out.push({ mode: m[1] as LoadMode, rate });
  }
  if (out.length === 0 || out.length > 8) throw new Error('--scenarios: give 1 to 8 scenarios');
  return out;
}

export function parseArgs(argv: string[]): Args {
  const a: Args = { rounds: 3, seconds: 15, warmup: 5, scenarios: parseScenarios(DEFAULT_SCENARIOS), conns: 8, newConnConcurrency: 64, size: 1024, hold: 0 };
  const ranges: Record<string, [keyof Args, number, number]> = {
    '--rounds': ['rounds', 1, 7], '--seconds': ['seconds', 2, 60], '--warmup': ['warmup', 1, 30],
    '--conns': ['conns', 1, 256], '--new-conn-concurrency': ['newConnConcurrency', 1, 512], '--size': ['size', 0, 65536],
    '--hold': ['hold', 0, 15_000],
  };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i]!;
    const v = argv[i + 1];
    if (v === undefined) throw new Error(`${k} needs a value`);
    if (k === '--scenarios') { a.scenarios = parseScenarios(v); continue; }
    if (k === '--out') { a.out = path.resolve(v); continue; }
    const r = ranges[k];
    if (!r) throw new Error(`unknown option ${k}; options: ${[...Object.keys(ranges), '--scenarios', '--out'].join(' ')}`);
    const n = Number(v);
    if (!Number.isInteger(n) || n < r[1] || n > r[2]) throw new Error(`${k} must be an integer from ${r[1]} to ${r[2]} (got ${v})`);
    (a as unknown as Record<string, number>)[r[0]] = n;
  }
  return a;
}

// --- statistics (pure) ----------------------------------------------------------------------

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export const ratio = (mesh: number, plain: number): number | null => (plain > 0 && Number.isFinite(mesh) ? round(mesh / plain, 3) : null);
const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;

/** The per-phase numbers the summary takes medians of. */
export interface PhaseMetrics {
  p50Ms: number; p90Ms: number; p99Ms: number; p999Ms: number; maxMs: number; meanMs: number;
  serviceP50Ms: number; serviceP99Ms: number; sendLagP99Ms: number;
  achievedRate: number; ok: number; errors: number;
  /** CPU-seconds per 1000 ok requests and % of one core, per watched process. */
  cpuPer1k: Record<string, number | null>;
  cpuPct: Record<string, number | null>;
  rssMaxMiB: Record<string, number | null>;
  /** Both node daemons together. */
  daemonsCpuPer1k: number | null;
  daemonsCpuPct: number | null;
  serverPodCpuPer1k: number | null;
  serverPodCpuPct: number | null;
  /** Where the machine's busy CPU went, in cores: daemons, identity, loadgen, server pod, and
   * the rest (kernel softirq work not charged to a process, the CLI, anything else running). */
  cpuCores: Record<string, number | null>;
  loadgenCpuPct: number;
  loadgenCpuPer1k: number | null;
  machineBusyPct: number | null;
}

export function phaseMetrics(r: PhaseResult): PhaseMetrics {
  const ms = (us: number): number => round(us / 1000, 3);
  const per1k = (cpu: number | null): number | null => (cpu === null || r.ok === 0 ? null : round((cpu / r.ok) * 1000, 4));
  const pct = (cpu: number | null): number | null => (cpu === null || r.wallSeconds <= 0 ? null : round((cpu / r.wallSeconds) * 100, 2));
  const cpuPer1k: Record<string, number | null> = {};
  const cpuPct: Record<string, number | null> = {};
  const rssMaxMiB: Record<string, number | null> = {};
  let daemons = 0;
  let daemonsKnown = true;
  for (const p of r.processes) {
    cpuPer1k[p.name] = per1k(p.cpuSeconds);
    cpuPct[p.name] = pct(p.cpuSeconds);
    rssMaxMiB[p.name] = p.rssMaxBytes === null ? null : round(p.rssMaxBytes / 2 ** 20, 1);
    if (p.name.startsWith('daemon ')) { if (p.cpuSeconds === null) daemonsKnown = false; else daemons += p.cpuSeconds; }
  }
  const server = r.cgroups.find((c) => c.name === 'server pod')?.cpuSeconds ?? null;
  const cores = (cpu: number | null): number | null => (cpu === null || r.wallSeconds <= 0 ? null : round(cpu / r.wallSeconds, 3));
  const identity = r.processes.find((p) => p.name === 'identity')?.cpuSeconds ?? null;
  const cpuCores: Record<string, number | null> = {
    busy: r.machine.busyShare === null ? null : round(r.machine.busyShare * r.machine.cores, 3),
    daemons: daemonsKnown ? cores(daemons) : null, identity: cores(identity), loadgen: cores(r.loadgen.cpuSeconds), serverPod: cores(server),
  };
  const known = [cpuCores.daemons, cpuCores.identity, cpuCores.loadgen, cpuCores.serverPod];
  cpuCores.other = cpuCores.busy === null || known.some((x) => x === null) ? null : round(cpuCores.busy - known.reduce((a, b) => a! + b!, 0)!, 3);
  return {
    p50Ms: ms(r.latencyUs.p50), p90Ms: ms(r.latencyUs.p90), p99Ms: ms(r.latencyUs.p99), p999Ms: ms(r.latencyUs.p999),
    maxMs: ms(r.latencyUs.max), meanMs: ms(r.latencyUs.mean),
    serviceP50Ms: ms(r.serviceUs.p50), serviceP99Ms: ms(r.serviceUs.p99), sendLagP99Ms: ms(r.sendLagUs.p99),
    achievedRate: round(r.achievedRate, 1), ok: r.ok, errors: r.errorCount,
    cpuPer1k, cpuPct, rssMaxMiB,
    daemonsCpuPer1k: daemonsKnown ? per1k(daemons) : null,
    daemonsCpuPct: daemonsKnown ? pct(daemons) : null,
    serverPodCpuPer1k: per1k(server),
    serverPodCpuPct: pct(server),
    cpuCores,
    loadgenCpuPct: pct(r.loadgen.cpuSeconds)!,
    loadgenCpuPer1k: per1k(r.loadgen.cpuSeconds),
    machineBusyPct: r.machine.busyShare === null ? null : round(r.machine.busyShare * 100, 1),
  };
}

/** Median over rounds of every numeric field (null when any round lacks it). */
export function medianMetrics(ms: readonly PhaseMetrics[]): PhaseMetrics {
  const med = (get: (m: PhaseMetrics) => number | null | undefined): number | null => {
    const xs = ms.map(get);
    return xs.some((x) => x === null || x === undefined) ? null : round(median(xs as number[]), 4);
  };
  const keysOf = (get: (m: PhaseMetrics) => Record<string, number | null>): string[] => [...new Set(ms.flatMap((m) => Object.keys(get(m))))];
  const rec = (get: (m: PhaseMetrics) => Record<string, number | null>): Record<string, number | null> =>
    Object.fromEntries(keysOf(get).map((k) => [k, med((m) => get(m)[k])]));
  const out = {} as Record<string, unknown>;
  for (const k of Object.keys(ms[0]!) as (keyof PhaseMetrics)[]) {
    const v = ms[0]![k];
    out[k] = v !== null && typeof v === 'object' ? rec((m) => m[k] as Record<string, number | null>) : med((m) => m[k] as number | null);
  }
  return out as unknown as PhaseMetrics;
}

/** Saturation and trust notes for one phase, in words a reader can act on. */
export function saturationNotes(label: string, r: PhaseResult, m: PhaseMetrics): string[] {
  const notes: string[] = [];
  if (m.machineBusyPct !== null && m.machineBusyPct >= 80) {
    const users = Object.entries(m.cpuCores).filter(([k, v]) => k !== 'busy' && v !== null && v > 0.01).sort((a, b) => b[1]! - a[1]!).map(([k, v]) => `${k} ${v!.toFixed(2)}`);
    notes.push(`${label}: the machine was ${m.machineBusyPct >= 95 ? 'CPU-saturated' : 'near CPU saturation'} (${m.machineBusyPct}% of all ${r.machine.cores} cores busy on average; cores used: ${users.join(', ')})`);
  }
  for (const [name, pct] of Object.entries(m.cpuPct)) if (pct !== null && pct >= 85) notes.push(`${label}: ${name} used ${pct}% of one core (a Node event loop is one core: it is the bottleneck)`);
  if (m.loadgenCpuPct >= 85) notes.push(`${label}: the load generator used ${m.loadgenCpuPct}% of one core; latency includes its own queueing`);
  if (m.sendLagP99Ms >= 5) notes.push(`${label}: the generator issued requests up to ${m.sendLagP99Ms} ms late at p99 (its timer lag is inside the latency)`);
  if (r.scheduled > 0 && r.ok < 0.99 * r.scheduled) notes.push(`${label}: only ${r.ok} of ${r.scheduled} requests succeeded (${JSON.stringify(r.errors)})`);
  else if (r.errorCount > 0) notes.push(`${label}: ${r.errorCount} errors ${JSON.stringify(r.errors)}`);
  if (r.achievedRate < 0.95 * r.offeredRate) notes.push(`${label}: achieved ${round(r.achievedRate, 1)} of ${r.offeredRate} req/s offered: did not keep up`);
  return notes;
}

// --- processes and the sandbox --------------------------------------------------------------

interface Run { code: number; stdout: string; stderr: string; timedOut: boolean }

let current: ChildProcess | undefined;
let interrupted: NodeJS.Signals | undefined;

/** Runs argv, bounded by timeoutMs (SIGTERM, then SIGKILL 5 s later); never throws on exit code. */
function run(argv: string[], opts: { timeoutMs: number; input?: string; echo?: boolean; onStdout?: (d: string) => void }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
    current = child;
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; if (opts.echo) process.stdout.write(d); opts.onStdout?.(d); });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; if (opts.echo) process.stderr.write(d); });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }, opts.timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); current = undefined; reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (current === child) current = undefined;
      resolve({ code: code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1), stdout, stderr, timedOut });
    });
    child.stdin!.end(opts.input ?? '');
  });
}

const nodemesh = (args: string[], opts: { timeoutMs: number; input?: string; echo?: boolean; onStdout?: (d: string) => void }): Promise<Run> => run([process.execPath, CLI, ...args], opts);

function checkInterrupted(): void {
  if (interrupted) throw new Error(`interrupted by ${interrupted}`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function sandboxNetns(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith('nmsb'));
}

/** Waits (polls) while a sandbox this run did not create exists; never touches it. */
export async function waitForForeignSandbox(): Promise<void> {
  const deadline = Date.now() + FOREIGN_WAIT_MS;
  for (;;) {
    const found = sandboxNetns();
    if (found.length === 0) return;
    if (Date.now() >= deadline) {
      throw new Error(`another sandbox has been up for over ${FOREIGN_WAIT_MS / 60_000} min (network namespaces ${found.slice(0, 4).join(', ')}...). ` +
        `This bench needs the sandbox to itself and never removes one it did not create; if it is a leftover, run 'nodemesh local down' and retry`);
    }
    console.log(`waiting: a sandbox this run did not create is up (${found.length} nmsb-* network namespaces); polling every ${FOREIGN_POLL_MS / 1000} s, ${Math.round((deadline - Date.now()) / 1000)} s left`);
    await sleep(FOREIGN_POLL_MS);
    checkInterrupted();
  }
}

export function manifest(o: { size: number; clientSleepSeconds: number }): string {
  const docs: string[] = [];
  for (const ns of ARMS) {
    docs.push(`apiVersion: v1
kind: Namespace
metadata:
  name: ${ns}${ns === 'mesh' ? '\n  labels:\n    nodemesh.io/dataplane-mode: ambient' : ''}`);
    docs.push(`apiVersion: v1
kind: Pod
metadata:
  name: server
  namespace: ${ns}
  labels:
    app: server
spec:
  nodeName: ${SERVER_NODE}
  serviceAccountName: server
  containers:
  - name: server
    command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(SERVER)}, "--port", "${SERVER_PORT}", "--size", "${o.size}"]
    ports:
    - name: http
      containerPort: ${SERVER_PORT}`);
    // The client pod only has to exist (the generator runs in it via local exec); it sleeps
    // for a bounded time, longer than the whole bench can take.
    docs.push(`apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: ${ns}
  labels:
    app: client
spec:
  nodeName: ${CLIENT_NODE}
  serviceAccountName: client
  containers:
  - name: client
    command: [${JSON.stringify(process.execPath)}, "-e", "setTimeout(() => {}, ${o.clientSleepSeconds * 1000})"]`);
    docs.push(`apiVersion: v1
kind: Service
metadata:
  name: bench
  namespace: ${ns}
spec:
  selector:
    app: server
  ports:
  - name: http
    port: ${SERVICE_PORT}
    targetPort: ${SERVER_PORT}`);
  }
  return `${docs.join('\n---\n')}\n`;
}

export interface StatusJson {
  identity?: { pid: number | null; alive: boolean } | null;
  nodes: { name: string; daemon: { pid: number | null; alive: boolean; ready: boolean; log: string } }[];
  pods: { namespace: string; name: string; node: string; ip: string; phase: string; enrolled: boolean | null; log: string }[];
  services: { namespace: string; name: string; clusterIP: string; ports: { port: number; endpoints: string[] }[] }[];
}

interface Topology {
  vip: Record<Arm, string>;
  watchPids: { name: string; pid: number }[];
  serverCgroup: Record<Arm, string>;
  pods: StatusJson['pods'];
}

async function topology(): Promise<Topology> {
  const r = await nodemesh(['local', 'status', '-o', 'json'], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`local status failed (${r.code}): ${r.stderr || r.stdout}`);
  const s = JSON.parse(r.stdout) as StatusJson;
  const problems: string[] = [];
  const vip = {} as Record<Arm, string>;
  for (const ns of ARMS) {
    for (const name of ['client', 'server']) {
      const p = s.pods.find((x) => x.namespace === ns && x.name === name);
      if (!p || p.phase !== 'Running') problems.push(`${ns}/${name} is ${p ? p.phase : 'missing'} (log ${p?.log ?? '?'})`);
      else if (p.enrolled !== (ns === 'mesh')) problems.push(`${ns}/${name} enrolled=${p.enrolled}, expected ${ns === 'mesh'}`);
    }
    const svc = s.services.find((x) => x.namespace === ns && x.name === 'bench');
    const eps = svc?.ports.find((p) => p.port === SERVICE_PORT)?.endpoints ?? [];
    if (!svc || eps.length !== 1) problems.push(`service ${ns}/bench has endpoints ${JSON.stringify(eps)}, expected one`);
    else vip[ns] = svc.clusterIP;
  }
  const watchPids: { name: string; pid: number }[] = [];
  for (const n of s.nodes) {
    if (!n.daemon.pid || !n.daemon.alive || !n.daemon.ready) problems.push(`the daemon of ${n.name} is not running and ready (log ${n.daemon.log})`);
    else watchPids.push({ name: `daemon ${n.name}`, pid: n.daemon.pid });
  }
  if (s.identity?.pid && s.identity.alive) watchPids.push({ name: 'identity', pid: s.identity.pid });
  else problems.push('nodemesh-identity is not running');
  if (problems.length) throw new Error(`the bench cluster is not as expected:\n  ${problems.join('\n  ')}`);
  const cluster = JSON.parse(fs.readFileSync(path.join(STATE_DIR, 'cluster.json'), 'utf8')) as { pods: Record<string, { namespace: string; name: string; cgroup: string }> };
  const serverCgroup = {} as Record<Arm, string>;
  for (const ns of ARMS) {
    const rec = Object.values(cluster.pods).find((p) => p.namespace === ns && p.name === 'server');
    if (!rec) throw new Error(`${STATE_DIR}/cluster.json has no record of ${ns}/server`);
    serverCgroup[ns] = rec.cgroup;
  }
  return { vip, watchPids, serverCgroup, pods: s.pods };
}

// --- which path the traffic took -----------------------------------------------------------

interface ConnRec { direction: string; pod: { namespace: string; name: string }; path?: string; verdict: string; sourceIdentity?: string; destinationIdentity?: string }

/** Checks, from the daemons' own connection tables (`nodemesh connections -o json`), that the
 * mesh arm's connections went node-1 -> node-2 over HBONE with the expected identities, and
 * that no daemon saw the plain arm's. Without this a "mesh" number could be a plaintext one. */
export function checkPaths(all: { node: string; error?: string; connections: ConnRec[] }[]): { ok: boolean; summary: string } {
  const problems: string[] = [];
  const count = (node: string, pred: (c: ConnRec) => boolean): number => all.find((n) => n.node === node)?.connections.filter(pred).length ?? 0;
  for (const n of all) if (n.error) problems.push(`${n.node} did not answer: ${n.error}`);
  const out = count(CLIENT_NODE, (c) => c.direction === 'outbound' && c.pod.namespace === 'mesh' && c.pod.name === 'client' && c.path === 'hbone' &&
    c.verdict === 'allow' && /\/ns\/mesh\/sa\/server$/.test(c.destinationIdentity ?? ''));
  const inb = count(SERVER_NODE, (c) => c.direction === 'inbound-hbone' && c.pod.namespace === 'mesh' && c.pod.name === 'server' &&
    c.verdict === 'allow' && /\/ns\/mesh\/sa\/client$/.test(c.sourceIdentity ?? ''));
  const other = all.flatMap((n) => n.connections.filter((c) => c.pod.namespace === 'mesh' && c.path !== undefined && c.path !== 'hbone').map((c) => `${n.node} ${c.direction} path ${c.path}`));
  const plain = all.reduce((a, n) => a + n.connections.filter((c) => c.pod.namespace === 'plain').length, 0);
  if (out === 0) problems.push(`${CLIENT_NODE} recorded no outbound HBONE connection from mesh/client to sa/server`);
  if (inb === 0) problems.push(`${SERVER_NODE} recorded no inbound HBONE connection to mesh/server from sa/client`);
  if (other.length) problems.push(`mesh connections took other paths: ${[...new Set(other)].join(', ')}`);
  if (plain) problems.push(`the daemons recorded ${plain} connection(s) of the plain namespace, which must bypass them`);
  return {
    ok: problems.length === 0,
    summary: problems.length ? problems.join('; ') :
      `mesh: ${out} outbound hbone on ${CLIENT_NODE} (sa/client -> sa/server), ${inb} inbound-hbone on ${SERVER_NODE} (in the daemons' recent-connection tables); plain: none seen by any daemon`,
  };
}

async function verifyPaths(): Promise<string> {
  const r = await nodemesh(['connections', '-o', 'json'], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`nodemesh connections failed (${r.code}): ${r.stderr || r.stdout}`);
  const c = checkPaths(JSON.parse(r.stdout) as Parameters<typeof checkPaths>[0]);
  if (!c.ok) throw new Error(`the traffic did not take the paths this bench compares: ${c.summary}`);
  return c.summary;
}

// --- one phase ------------------------------------------------------------------------------

interface PhaseOpts { arm: Arm; scenario: Scenario; seconds: number; maxRequests?: number }

async function runLoad(args: Args, topo: Topology, clkTck: number, o: PhaseOpts): Promise<PhaseResult> {
  checkInterrupted();
  const drainMs = REQUEST_TIMEOUT_MS + 1000;
  const spec: LoadSpec = {
    host: topo.vip[o.arm], port: SERVICE_PORT, path: '/bench',
    rate: o.scenario.rate, seconds: o.seconds, maxRequests: o.maxRequests ?? Math.ceil(o.scenario.rate * o.seconds),
    mode: o.scenario.mode, conns: o.scenario.mode === 'keepalive' ? args.conns : args.newConnConcurrency,
    bodySize: args.size, expectBodySize: args.size, timeoutMs: REQUEST_TIMEOUT_MS, drainMs,
    watchPids: topo.watchPids, watchCgroups: [{ name: 'server pod', dir: topo.serverCgroup[o.arm] }], clkTck,
  };
  const r = await nodemesh(['local', 'exec', `${o.arm}/client`, '--', process.execPath, LOADGEN, JSON.stringify(spec)],
    { timeoutMs: o.seconds * 1000 + drainMs + 30_000 });
  checkInterrupted();
  const line = r.stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
  if (r.code !== 0 || !line) {
    throw new Error(`the load generator in ${o.arm}/client ${r.timedOut ? 'timed out' : `exited ${r.code}`} without a result\nstdout: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr.slice(-2000)}`);
  }
  return JSON.parse(line.slice(RESULT_PREFIX.length)) as PhaseResult;
}

// --- held connections -------------------------------------------------------------------------

export interface HoldResult {
  connections: number; open: number; failed: number;
  /** Per daemon: RSS before, while all are held, and HOLD_SETTLE_MS after they closed. */
  daemons: { name: string; beforeMiB: number | null; heldMiB: number | null; afterMiB: number | null; heldKiBPerConn: number | null; afterKiBPerConn: number | null }[];
}

async function holdPhase(topo: Topology, count: number): Promise<HoldResult> {
  checkInterrupted();
  const daemons = topo.watchPids.filter((w) => w.name.startsWith('daemon '));
  const rss = (): (number | null)[] => daemons.map((d) => { const b = readRssBytes(d.pid); return b === undefined ? null : b / 2 ** 20; });
  const before = rss();
  let held: (number | null)[] | undefined;
  let seen = '';
  const spec = { host: topo.vip.mesh, port: SERVICE_PORT, count, openPerSecond: 2000, holdMs: HOLD_MS, timeoutMs: 90_000 };
  const r = await nodemesh(['local', 'exec', 'mesh/client', '--', process.execPath, HOLD, JSON.stringify(spec)], {
    timeoutMs: 120_000,
    // Sampled as soon as every connection answered: the connections are all open then.
    onStdout: (d) => { seen += d; if (!held && seen.includes(HOLD_PREFIX)) held = rss(); },
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith(HOLD_PREFIX));
  if (!held || !line) throw new Error(`conn-hold in mesh/client ${r.timedOut ? 'timed out' : `exited ${r.code}`} before holding: ${r.stdout.slice(-500)} ${r.stderr.slice(-500)}`);
  const { open, failed } = JSON.parse(line.slice(HOLD_PREFIX.length)) as { open: number; failed: number };
  await sleep(HOLD_SETTLE_MS);
  const after = rss();
  const perConn = (x: number | null | undefined, b: number | null | undefined): number | null => (x == null || b == null || open === 0 ? null : round(((x - b) * 1024) / open, 2));
  return {
    connections: count, open, failed,
    daemons: daemons.map((d, k) => ({
      name: d.name, beforeMiB: before[k] === null ? null : round(before[k]!, 1), heldMiB: held![k] === null ? null : round(held![k]!, 1), afterMiB: after[k] === null ? null : round(after[k]!, 1),
      heldKiBPerConn: perConn(held![k], before[k]), afterKiBPerConn: perConn(after[k], before[k]),
    })),
  };
}

// --- output ---------------------------------------------------------------------------------

export function machineFacts(clkTck: number): Record<string, unknown> {
  const nproc = spawnSync('nproc', [], { encoding: 'utf8' }).stdout?.trim();
  const git = (a: string[]): string | undefined => { const r = spawnSync('git', a, { cwd: REPO, encoding: 'utf8' }); return r.status === 0 ? r.stdout.trim() : undefined; };
  return {
    hostname: os.hostname(),
    nproc: nproc ? Number(nproc) : os.availableParallelism(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    kernel: `${os.type()} ${os.release()}`,
    arch: os.arch(),
    node: process.version,
    memTotalMiB: Math.round(os.totalmem() / 2 ** 20),
    loadavgAtStart: os.loadavg().map((x) => round(x, 2)),
    clkTck,
    gitCommit: git(['rev-parse', '--short', 'HEAD']),
    gitDirty: (git(['status', '--porcelain', '--untracked-files=no']) ?? '') !== '',
  };
}

export function table(rows: (string | number)[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => String(r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? String(c).padEnd(w[i]!) : String(c).padStart(w[i]!))).join('  ')).join('\n');
}

const f = (x: number | null | undefined, d = 2): string => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(d));
const signed = (x: number | null, d = 2): string => (x === null ? 'n/a' : `${x >= 0 ? '+' : ''}${x.toFixed(d)}`);
const fx = (x: number | null): string => (x === null ? 'n/a' : `${x.toFixed(2)}x`);
const scenarioLabel = (s: Scenario, args: Args): string =>
  `${s.mode} @ ${s.rate} req/s (${s.mode === 'keepalive' ? `pool of ${args.conns} keep-alive connections` : `new connection per request, at most ${args.newConnConcurrency} open`})`;

export interface Summary { scenario: Scenario; label: string; rounds: number; plain: PhaseMetrics; mesh: PhaseMetrics; ratio: Record<string, number | null>; delta: Record<string, number | null> }

export function summarize(scenario: Scenario, label: string, plain: PhaseMetrics[], mesh: PhaseMetrics[]): Summary {
  const p = medianMetrics(plain);
  const m = medianMetrics(mesh);
  const r: Record<string, number | null> = {};
  for (const k of ['p50Ms', 'p90Ms', 'p99Ms', 'p999Ms', 'maxMs', 'meanMs', 'serviceP50Ms', 'serviceP99Ms', 'achievedRate', 'serverPodCpuPer1k', 'loadgenCpuPer1k', 'machineBusyPct'] as const) {
    r[k] = ratio(m[k] as number, p[k] as number);
  }
  const sub = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : round(a - b, 4));
  // Daemon CPU has no meaningful ratio (idle in the plain arm); the mesh's cost is the difference.
  const delta: Record<string, number | null> = {
    p50Ms: sub(m.p50Ms, p.p50Ms), p99Ms: sub(m.p99Ms, p.p99Ms),
    daemonsCpuPer1k: sub(m.daemonsCpuPer1k, p.daemonsCpuPer1k), daemonsCpuPct: sub(m.daemonsCpuPct, p.daemonsCpuPct),
    machineBusyPct: sub(m.machineBusyPct, p.machineBusyPct),
  };
  return { scenario, label, rounds: plain.length, plain: p, mesh: m, ratio: r, delta };
}

function renderSummary(s: Summary, daemonNames: string[]): string {
  const rows: (string | number)[][] = [['', 'plain', 'mesh', 'mesh/plain']];
  const lat = (name: string, k: keyof PhaseMetrics): void => { rows.push([name, f(s.plain[k] as number), f(s.mesh[k] as number), fx(s.ratio[k] ?? null)]); };
  lat('latency p50 (ms)', 'p50Ms');
  lat('latency p90 (ms)', 'p90Ms');
  lat('latency p99 (ms)', 'p99Ms');
  lat('latency p99.9 (ms)', 'p999Ms');
  lat('latency max (ms)', 'maxMs');
  lat('service time p50 (ms, from write)', 'serviceP50Ms');
  lat('service time p99 (ms, from write)', 'serviceP99Ms');
  rows.push(['generator send lag p99 (ms)', f(s.plain.sendLagP99Ms), f(s.mesh.sendLagP99Ms), '']);
  rows.push(['achieved req/s', f(s.plain.achievedRate, 1), f(s.mesh.achievedRate, 1), fx(s.ratio.achievedRate ?? null)]);
  rows.push(['errors', f(s.plain.errors, 0), f(s.mesh.errors, 0), '']);
  rows.push(['daemons CPU ms per 1000 req (both nodes)', f(s.plain.daemonsCpuPer1k === null ? null : s.plain.daemonsCpuPer1k * 1000, 1), f(s.mesh.daemonsCpuPer1k === null ? null : s.mesh.daemonsCpuPer1k * 1000, 1), signed(s.delta.daemonsCpuPer1k === null ? null : s.delta.daemonsCpuPer1k * 1000, 1)]);
  for (const d of daemonNames) {
    rows.push([`${d} CPU % of one core`, f(s.plain.cpuPct[d]), f(s.mesh.cpuPct[d]), '']);
    rows.push([`${d} RSS max (MiB)`, f(s.plain.rssMaxMiB[d], 1), f(s.mesh.rssMaxMiB[d], 1), '']);
  }
  rows.push(['identity CPU % of one core', f(s.plain.cpuPct.identity), f(s.mesh.cpuPct.identity), '']);
  rows.push(['identity RSS max (MiB)', f(s.plain.rssMaxMiB.identity, 1), f(s.mesh.rssMaxMiB.identity, 1), '']);
  rows.push(['server pod CPU ms per 1000 req', f(s.plain.serverPodCpuPer1k === null ? null : s.plain.serverPodCpuPer1k * 1000, 1), f(s.mesh.serverPodCpuPer1k === null ? null : s.mesh.serverPodCpuPer1k * 1000, 1), fx(s.ratio.serverPodCpuPer1k ?? null)]);
  rows.push(['load generator CPU % of one core', f(s.plain.loadgenCpuPct), f(s.mesh.loadgenCpuPct), '']);
  rows.push(['machine CPU busy (% of all cores)', f(s.plain.machineBusyPct, 1), f(s.mesh.machineBusyPct, 1), fx(s.ratio.machineBusyPct ?? null)]);
  const split = (c: Record<string, number | null>): string => ['daemons', 'loadgen', 'serverPod', 'other'].map((k) => f(c[k])).join('/');
  rows.push(['cores used: daemons/loadgen/server/other', split(s.plain.cpuCores), split(s.mesh.cpuCores), '']);
  return table(rows);
}

function renderRounds(phases: { round: number; arm: Arm; metrics: PhaseMetrics; result: PhaseResult }[]): string {
  const rows: (string | number)[][] = [['round', 'arm', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'req/s', 'ok', 'errors', 'daemons %core', 'loadgen %core', 'machine %']];
  for (const p of phases) {
    const m = p.metrics;
    rows.push([String(p.round), p.arm, f(m.p50Ms), f(m.p90Ms), f(m.p99Ms), f(m.p999Ms), f(m.maxMs), f(m.achievedRate, 1), m.ok, m.errors, f(m.daemonsCpuPct, 1), f(m.loadgenCpuPct, 1), f(m.machineBusyPct, 1)]);
  }
  return table(rows);
}

function sampleIdle(topo: Topology, clkTck: number, seconds: number): Promise<{ seconds: number; processes: { name: string; cpuPct: number | null; rssMiB: number | null }[] }> {
  const a = topo.watchPids.map((w) => readProcCpu(w.pid, clkTck));
  const t0 = process.hrtime.bigint();
  return sleep(seconds * 1000).then(() => {
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    return {
      seconds: round(wall, 3),
      processes: topo.watchPids.map((w, k) => {
        const b = readProcCpu(w.pid, clkTck);
        const x = a[k];
        const rss = readRssBytes(w.pid);
        return {
          name: w.name,
          cpuPct: x && b && x.startTime === b.startTime ? round(((b.cpuSeconds - x.cpuSeconds) / wall) * 100, 2) : null,
          rssMiB: rss === undefined ? null : round(rss / 2 ** 20, 1),
        };
      }),
    };
  });
}

// --- main -----------------------------------------------------------------------------------

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (os.userInfo().uid !== 0) throw new Error('the bench builds a sandbox cluster (network namespaces, cgroups, eBPF): run it as root');
  for (const f of [CLI, LOADGEN, SERVER, path.join(REPO, 'dist', 'daemon', 'main.js')]) {
    if (!fs.existsSync(f)) throw new Error(`${f} is missing: run make build first`);
  }
  const clkTckOut = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim();
  const clkTck = Number(clkTckOut) > 0 ? Number(clkTckOut) : DEFAULT_CLK_TCK;
  const machine = machineFacts(clkTck);
  const startedAt = new Date();
  console.log('nodemesh bench: l4-latency (no mesh vs nodemesh L4, HBONE mTLS node-1 -> node-2)');
  console.log(`machine: nproc ${machine.nproc}, ${machine.cpuModel}, kernel ${machine.kernel} ${machine.arch}, node ${machine.node}, ${machine.memTotalMiB} MiB, load average ${JSON.stringify(machine.loadavgAtStart)}, commit ${machine.gitCommit}${machine.gitDirty ? ' (dirty)' : ''}`);
  const phaseSeconds = args.seconds + (REQUEST_TIMEOUT_MS + 1000) / 1000 + 2;
  const budgetSeconds = Math.ceil(args.rounds * args.scenarios.length * 2 * phaseSeconds + 4 * (args.warmup + 10) + 600);
  console.log(`plan: ${args.rounds} round(s) x ${args.scenarios.length} scenario(s) x (plain, mesh), ${args.seconds} s each, ${args.size} B request and response bodies; warm-up ${args.warmup} s per arm and mode first (reported, not in the numbers)\n`);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nodemesh-bench-'));
  const manifestFile = path.join(tmp, 'l4-latency.yaml');
  fs.writeFileSync(manifestFile, manifest({ size: args.size, clientSleepSeconds: budgetSeconds }));

  let ours = false;
  let upPid: number | undefined;
  const onSignal = (s: NodeJS.Signals): void => {
    if (interrupted) { console.error(`${s} again: still tearing down the sandbox, please wait`); return; }
    interrupted = s;
    console.error(`\n${s}: stopping the current phase, then 'local down'`);
    try { current?.kill('SIGTERM'); } catch { /* gone */ }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);

  try {
    // 1. The sandbox, our own.
    const waitDeadline = Date.now() + FOREIGN_WAIT_MS;
    for (;;) {
      await waitForForeignSandbox();
      checkInterrupted();
      console.log(`local up --nodes 2 -f ${manifestFile}`);
      const upChild = nodemesh(['local', 'up', '--nodes', '2', '-f', manifestFile], { timeoutMs: 240_000, echo: true });
      upPid = current?.pid;
      const up = await upChild;
      if (up.code === 0) { ours = true; break; }
      const lostRace = /NODEMESH_E_SANDBOX_(ALREADY_UP|OTHER_INSTANCE|BUSY)/.test(up.stderr + up.stdout);
      if (!lostRace) {
        // A failed `up` rolls back by itself; if it left a cluster.json that it created, take it down.
        ours = createdBy(upPid);
        throw new Error(`local up failed (exit ${up.code}${up.timedOut ? ', timed out' : ''}):\n${up.stderr.slice(-3000)}`);
      }
      if (Date.now() >= waitDeadline) throw new Error('another sandbox kept coming up before ours for 10 min; giving up (nothing was torn down)');
      console.log('another sandbox came up first; waiting for it to go');
    }
    checkInterrupted();
    const topo = await topology();
    console.log(`\ncluster: Service VIPs plain ${topo.vip.plain}, mesh ${topo.vip.mesh} (port ${SERVICE_PORT} -> ${SERVER_PORT}); clients on ${CLIENT_NODE}, servers on ${SERVER_NODE}`);
    console.log(`watching: ${topo.watchPids.map((w) => `${w.name} pid ${w.pid}`).join(', ')}; server pods by cgroup cpu.stat`);

    // 2. Idle baseline of the daemons (no traffic at all).
    const idle = await sampleIdle(topo, clkTck, 3);
    console.log(`idle (${idle.seconds} s, no traffic): ${idle.processes.map((p) => `${p.name} ${f(p.cpuPct)}% core, ${f(p.rssMiB, 1)} MiB`).join('; ')}`);

    // 3. Smoke check, then the separate warm-up: both arms, both modes.
    for (const arm of ARMS) {
      const r = await runLoad(args, topo, clkTck, { arm, scenario: { mode: 'keepalive', rate: 20 }, seconds: 1, maxRequests: 20 });
      if (r.ok !== r.scheduled) throw new Error(`smoke check ${arm}: ${r.ok} of ${r.scheduled} requests ok, errors ${JSON.stringify(r.errors)}; pod logs: ${topo.pods.filter((p) => p.namespace === arm).map((p) => p.log).join(', ')}`);
    }
    const pathsBefore = await verifyPaths();
    console.log(`path check: ${pathsBefore}`);
    const modes = [...new Set(args.scenarios.map((s) => s.mode))];
    const warmRate = Math.min(...args.scenarios.map((s) => s.rate));
    const warmup: { arm: Arm; scenario: Scenario; metrics: PhaseMetrics; result: PhaseResult }[] = [];
    for (const mode of modes) {
      for (const arm of ARMS) {
        const scenario = { mode, rate: warmRate };
        const result = await runLoad(args, topo, clkTck, { arm, scenario, seconds: args.warmup });
        warmup.push({ arm, scenario, metrics: phaseMetrics(result), result });
      }
    }
    console.log(`\nwarm-up (${args.warmup} s per row, NOT in the numbers below):`);
    console.log(table([['arm', 'mode', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'ok', 'errors'],
      ...warmup.map((w) => [w.arm, w.scenario.mode, w.scenario.rate, f(w.metrics.p50Ms), f(w.metrics.p99Ms), f(w.metrics.maxMs), w.metrics.ok, w.metrics.errors])]));

    // 4. The measured phases: round by round, each scenario plain then mesh.
    const phases: { round: number; arm: Arm; scenario: Scenario; metrics: PhaseMetrics; result: PhaseResult }[] = [];
    const total = args.rounds * args.scenarios.length * 2;
    for (let round = 1; round <= args.rounds; round++) {
      for (const scenario of args.scenarios) {
        for (const arm of ARMS) {
          const result = await runLoad(args, topo, clkTck, { arm, scenario, seconds: args.seconds });
          const metrics = phaseMetrics(result);
          phases.push({ round, arm, scenario, metrics, result });
          console.log(`[${phases.length}/${total}] round ${round} ${scenario.mode}@${scenario.rate} ${arm.padEnd(5)}: p50 ${f(metrics.p50Ms)} ms, p99 ${f(metrics.p99Ms)} ms, ` +
            `${f(metrics.achievedRate, 1)} req/s, ${metrics.errors} errors, daemons ${f(metrics.daemonsCpuPct, 1)}% core, loadgen ${f(metrics.loadgenCpuPct, 1)}% core, machine ${f(metrics.machineBusyPct, 1)}% busy`);
        }
      }
    }

    const hold = args.hold > 0 ? await holdPhase(topo, args.hold) : undefined;
    if (hold) {
      console.log(`hold ${hold.connections} mesh connections (open ${hold.open}, failed ${hold.failed}): ` +
        hold.daemons.map((d) => `${d.name} ${f(d.beforeMiB, 1)} -> ${f(d.heldMiB, 1)} -> ${f(d.afterMiB, 1)} MiB, ${f(d.heldKiBPerConn)} KiB per held connection, ${f(d.afterKiBPerConn)} KiB left after close`).join('; '));
    }
    const pathsAfter = await verifyPaths();
    console.log(`path check after the phases: ${pathsAfter}`);
    const idleAfter = await sampleIdle(topo, clkTck, 3);
    console.log(`idle after the phases (${idleAfter.seconds} s, no traffic): ${idleAfter.processes.map((p) => `${p.name} ${f(p.cpuPct)}% core, ${f(p.rssMiB, 1)} MiB`).join('; ')}`);

    // 5. Summary.
    const daemonNames = topo.watchPids.filter((w) => w.name.startsWith('daemon ')).map((w) => w.name);
    const summaries: Summary[] = [];
    const notes: string[] = [];
    for (const scenario of args.scenarios) {
      const of = (arm: Arm) => phases.filter((p) => p.arm === arm && p.scenario === scenario);
      const label = scenarioLabel(scenario, args);
      const s = summarize(scenario, label, of('plain').map((p) => p.metrics), of('mesh').map((p) => p.metrics));
      summaries.push(s);
      console.log(`\n== ${label}: median of ${s.rounds} round(s), ${args.seconds} s each ==`);
      console.log(renderSummary(s, daemonNames));
      console.log('\nrounds:');
      console.log(renderRounds([...of('plain'), ...of('mesh')].sort((a, b) => a.round - b.round || a.arm.localeCompare(b.arm) * -1)));
      for (const p of [...of('plain'), ...of('mesh')]) notes.push(...saturationNotes(`round ${p.round} ${scenario.mode}@${scenario.rate} ${p.arm}`, p.result, p.metrics));
    }
    console.log('\nsaturation and errors:');
    console.log(notes.length ? notes.map((n) => `  - ${n}`).join('\n') : '  - none flagged (no process above 85% of one core, machine below 80% busy, generator lag under 5 ms, no errors, every rate achieved)');

    const finishedAt = new Date();
    const out = args.out ?? path.join(RESULTS_DIR, `l4-latency-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const doc = {
      benchmark: 'l4-latency', version: 1,
      startedAt: startedAt.toISOString(), finishedAt: finishedAt.toISOString(),
      command: ['node', path.relative(REPO, process.argv[1] ?? ''), ...process.argv.slice(2)].join(' '),
      machine, config: { ...args, requestTimeoutMs: REQUEST_TIMEOUT_MS, clientNode: CLIENT_NODE, serverNode: SERVER_NODE, servicePort: SERVICE_PORT, serverPort: SERVER_PORT },
      topology: { vip: topo.vip, watched: topo.watchPids },
      idle,
      idleAfter,
      hold,
      pathCheck: { beforeWarmup: pathsBefore, afterPhases: pathsAfter },
      warmup: warmup.map((w) => ({ arm: w.arm, scenario: w.scenario, metrics: w.metrics, result: w.result })),
      phases: phases.map((p) => ({ round: p.round, arm: p.arm, scenario: p.scenario, metrics: p.metrics, result: p.result })),
      summary: summaries,
      notes,
    };
    fs.writeFileSync(out, `${JSON.stringify(doc, null, 2)}\n`);
    console.log(`\nresults: ${path.relative(process.cwd(), out) || out}`);
    return 0;
  } finally {
    if (ours || createdBy(upPid)) {
      console.log('\nlocal down');
      const d = await nodemesh(['local', 'down'], { timeoutMs: 120_000, echo: true }).catch((e: Error) => ({ code: 1, stdout: '', stderr: e.message, timedOut: false }));
      if (d.code !== 0) console.error(`local down failed (${d.code}): ${d.stderr}; run 'node dist/installer/cli.js local down' by hand`);
    }
    fs.rmSync(tmp, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
  }
}

/** Whether the sandbox's cluster.json was written by the `local up` we started. */
export function createdBy(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    const c = JSON.parse(fs.readFileSync(path.join(STATE_DIR, 'cluster.json'), 'utf8')) as { creator?: { pid?: number } };
    return c.creator?.pid === pid;
  } catch {
    return false;
  }
}

if (require.main === module) {
  main().then((code) => { process.exitCode = interrupted ? 130 : code; }, (e: Error) => {
    console.error(`l4-latency: ${e.message}`);
    process.exitCode = interrupted ? 130 : 1;
  });
}
