// The side-by-side bench (issues 8 and 9): no mesh, sidecar (nodemesh), sidecar (HAProxy),
// ambient L4 and ambient + waypoint, in one sandbox cluster, in one run, with identical apps
// and the same load generators.
//
//   make bench                                  # = node dist/bench/mesh-compare.js (under the sandbox lock)
//   nodemesh bench [--quick] [--seconds 10] [--rates 500,1000,2000] [--pods 2,10,50] [--conns 1000,10000] ...
//
// Topology (`nodemesh local up --nodes 2`): one namespace per mode, each with a `client` pod
// on node-1, a `server` pod on node-2 and a `server-local` pod on node-1 (the same-node
// path), all running bench/l4-server.ts (1 KiB responses):
//   plain    no label: the nodes' routing and nftables DNAT only
//   ambient  nodemesh.io/dataplane-mode: ambient: the node daemons (eBPF capture, HBONE)
//   sidecar  nodemesh.io/dataplane-mode: sidecar: one nodemesh-sidecar per pod
//            (daemon/sidecar-main.ts, installer/sandbox/sidecars.ts); the node daemons skip them
//   haproxy  one HAProxy per pod (installer/sandbox/haproxy.ts): the client is pointed at its
//            local HAProxy (127.0.0.1:15001, same node: :15002), mTLS to the peer's :15443
//   waypoint ambient, plus a waypoint (`nodemesh waypoint apply -n waypoint`, Gateway of class
//            nodemesh-waypoint; nodemesh.io/use-waypoint on the namespace): client -> its node's
//            daemon -> HBONE -> waypoint (L7: routes, retries, access log) -> HBONE -> the
//            server's node daemon -> server. No route: the waypoint serves each Service as itself.
// Every generator runs INSIDE the client pod (as `nodemesh local exec` runs a command: its cgroup, namespace and environment), so in the meshed namespaces its
// connect() is captured like any app's. Mesh CPU and memory are those of every mesh process
// of the mode (node daemons; sidecars; HAProxies), read from /proc.
//
// Phases, each mode in turn within each scenario (so slow drifts of a shared machine hit all):
// path check (capture + the proxies' own records + HAProxy logs), latency at fixed rates
// (open loop, HDR histograms, coordinated-omission safe: bench/l4-loadgen.ts), new connection
// per request, the same-node path, max req/s with wrk (64 connections) beside ours, new
// connections/s at saturation (wrk, Connection: close), bulk MB/s over one stream, memory
// with N connections held, memory as pods per node grow. Output: bench/results/
// mesh-compare-<date>.{json,md} and the SVG charts beside them (bench/results/README.md).
//
// Safety: traffic only inside the sandbox's namespaces; every phase bounded in requests and
// time; proxies stopped and `local down` in a finally (also on ^C / SIGTERM); a sandbox this
// run did not create is waited for, never torn down.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_CLK_TCK, readProcCpu, readRssBytes } from './proc-stats';
import { RESULT_PREFIX, type LoadMode, type LoadSpec, type PhaseResult } from './l4-loadgen';
import { createdBy, machineFacts, phaseMetrics, waitForForeignSandbox, type StatusJson } from './l4-latency';
import { parseWrk, wrkScript, type WrkResult } from './wrk';
import { BULK_PREFIX, type BulkResult } from './bulk-client';
import { CLOSED_PREFIX, HOLD_PREFIX } from './conn-hold';
import { pairTraffic, parsePcap } from './pcap';
import { UPSTREAM_IDLE_MS } from '../waypoint/forward';
import { checkPath, type ConnRecordLite, type PathEvidence, type WaypointRequestLine } from './path-check';
import { MODES, chartsSvg, markdownReport, type BenchDoc, type LatencyRow, type ModeResult } from './report';
import { startSidecars, stopProxies, type ProxyRecord } from '../installer/sandbox/sidecars';
import { HAPROXY_MTLS_PORT, startHaproxySidecars, type HaproxySidecarSpec } from '../installer/sandbox/haproxy';
import { adminGetJson } from '../installer/sandbox/admin-client';
import { layout, readCluster, stateDir } from '../installer/sandbox/state';
import { enterArgv } from '../installer/sandbox/launch';
import { tool } from '../installer/sandbox/host';

const REPO = path.resolve(__dirname, '..', '..');
const CLI = path.join(REPO, 'dist', 'installer', 'cli.js');
const LOADGEN = path.join(REPO, 'dist', 'bench', 'l4-loadgen.js');
const SERVER = path.join(REPO, 'dist', 'bench', 'l4-server.js');
const BULK = path.join(REPO, 'dist', 'bench', 'bulk-client.js');
const HOLD = path.join(REPO, 'dist', 'bench', 'conn-hold.js');
const RESULTS_DIR = path.join(REPO, 'bench', 'results');

const MESH_MODES = ['plain', 'sidecar', 'haproxy', 'ambient', 'waypoint'] as const;
type RunMode = (typeof MESH_MODES)[number];
const CLIENT_NODE = 'node-1';
const SERVER_NODE = 'node-2';
const APP_PORT = 8080;
const SERVICE_PORT = 80;
const HBONE_PORT = 15008;
const HAPROXY_LOCAL_PORT = { 'cross-node': 15001, 'same-node': 15002 } as const;
/** The waypoint mode's Gateway (and so its service account and pod, installer/sandbox/waypoints.ts). */
const WAYPOINT_NAME = 'waypoint';
const REQUEST_TIMEOUT_MS = 5000;
/** Readable plaintext of the bench's request and response: must never cross a meshed wire. */
const PLAINTEXT_MARKERS = ['POST /bench', 'bbbbbbbbbbbbbbbbbbbbbbbb', 'abcdefghijklmnopqrstuvwxyz'];

// --- arguments ------------------------------------------------------------------------------

export interface CompareArgs {
  quick: boolean;
  seconds: number;
  rates: number[];
  /** New connection per request, at each of these rates (the issue's goal is 1,000/s). */
  newConnRates: number[];
  sameNodeRate: number;
  conns: number;
  wrkSeconds: number;
  bulkMiB: number;
  pods: number[];
  holdConns: number[];
  outDir: string;
  /** The modes to run (default all); the others are reported as not run. */
  modes: RunMode[];
}

const list = (k: string, v: string, min: number, max: number): number[] => {
  const xs = v.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (xs.length === 0 || xs.length > 6 || xs.some((x) => !Number.isInteger(x) || x < min || x > max)) throw new Error(`${k} must be 1 to 6 comma-separated integers from ${min} to ${max} (got ${v})`);
  return xs;
};

export function parseCompareArgs(argv: string[]): CompareArgs {
  const quick = argv.includes('--quick');
  const a: CompareArgs = quick
    ? { quick, seconds: 2, rates: [500], newConnRates: [200], sameNodeRate: 500, conns: 8, wrkSeconds: 1, bulkMiB: 4, pods: [2, 3], holdConns: [100], outDir: RESULTS_DIR, modes: [...MESH_MODES] }
    : { quick, seconds: 10, rates: [500, 1000, 2000], newConnRates: [500, 1000], sameNodeRate: 1000, conns: 8, wrkSeconds: 5, bulkMiB: 256, pods: [2, 10, 50], holdConns: [1000, 10000], outDir: RESULTS_DIR, modes: [...MESH_MODES] };
  const ints: Record<string, [keyof CompareArgs, number, number]> = {
    '--seconds': ['seconds', 1, 60], '--same-node-rate': ['sameNodeRate', 1, 5000],
    '--conns': ['conns', 1, 256], '--wrk-seconds': ['wrkSeconds', 1, 30], '--bulk-mib': ['bulkMiB', 1, 4096],
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    if (k === '--quick') continue;
    const v = argv[++i];
    if (v === undefined) throw new Error(`${k} needs a value`);
    if (k === '--rates') a.rates = list(k, v, 1, 5000);
    else if (k === '--new-conn-rates') a.newConnRates = list(k, v, 1, 5000);
    else if (k === '--pods') a.pods = list(k, v, 2, 60);
    else if (k === '--hold-conns') a.holdConns = list(k, v, 1, 15000);
    else if (k === '--out-dir') a.outDir = path.resolve(v);
    else if (k === '--modes') {
      const ms = v.split(',').map((x) => x.trim()).filter(Boolean);
      const bad = ms.filter((m) => !(MESH_MODES as readonly string[]).includes(m));
      if (ms.length === 0 || bad.length) throw new Error(`--modes takes a comma-separated list of ${MESH_MODES.join(', ')} (got ${v})`);
      a.modes = MESH_MODES.filter((m) => ms.includes(m));
    }
    else if (ints[k]) {
      const [f, min, max] = ints[k]!;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${k} must be an integer from ${min} to ${max} (got ${v})`);
      (a as unknown as Record<string, number>)[f] = n;
    } else {
      throw new Error(`unknown option ${k}; options: --quick ${[...Object.keys(ints), '--rates', '--new-conn-rates', '--pods', '--hold-conns', '--out-dir', '--modes'].join(' ')}`);
    }
  }
  a.pods = [...new Set(a.pods)].sort((x, y) => x - y);
  return a;
}

// --- the cluster ------------------------------------------------------------------------------

export function compareManifest(o: { sleepSeconds: number }): string {
  const docs: string[] = [];
  const labels: Record<RunMode, Record<string, string>> = {
    plain: {}, ambient: { 'nodemesh.io/dataplane-mode': 'ambient' }, sidecar: { 'nodemesh.io/dataplane-mode': 'sidecar' }, haproxy: {},
    waypoint: { 'nodemesh.io/dataplane-mode': 'ambient', 'nodemesh.io/use-waypoint': WAYPOINT_NAME },
  };
  for (const ns of MESH_MODES) {
    const l = Object.entries(labels[ns]);
    docs.push(`apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}${l.length ? `\n  labels:${l.map(([k, v]) => `\n    ${k}: ${v}`).join('')}` : ''}`);
    // The HAProxy mode's apps listen on loopback only: the only way in is through HAProxy.
    const host = ns === 'haproxy' ? '127.0.0.1' : '0.0.0.0';
    for (const [name, node] of [['server', SERVER_NODE], ['server-local', CLIENT_NODE]] as const) {
      docs.push(`apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${ns}
  labels:
    app: ${name}
spec:
  nodeName: ${node}
  serviceAccountName: server
  containers:
  - name: server
    command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(SERVER)}, "--host", "${host}", "--port", "${APP_PORT}", "--size", "1024"]
    ports:
    - name: http
      containerPort: ${APP_PORT}`);
    }
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
    command: ["sleep", "${o.sleepSeconds}"]`);
    if (ns !== 'haproxy') {
      for (const [svc, app] of [['bench', 'server'], ['bench-local', 'server-local']]) {
        docs.push(`apiVersion: v1\nkind: Service\nmetadata:\n  name: ${svc}\n  namespace: ${ns}\nspec:\n  selector:\n    app: ${app}\n  ports:\n  - name: http\n    port: ${SERVICE_PORT}\n    targetPort: ${APP_PORT}`);
      }
    }
  }
  return `${docs.join('\n---\n')}\n`;
}

/** Idle pods that only exist to be enrolled (memory as pods per node grow). */
export function scalePodsManifest(ns: string, from: number, to: number, sleepSeconds: number): string {
  const docs: string[] = [];
  for (let k = from; k < to; k++) {
    docs.push(`apiVersion: v1\nkind: Pod\nmetadata:\n  name: scale-${k}\n  namespace: ${ns}\n  labels:\n    app: scale\nspec:\n  nodeName: ${CLIENT_NODE}\n  serviceAccountName: scale\n  containers:\n  - name: idle\n    command: ["sleep", "${sleepSeconds}"]`);
  }
  return `${docs.join('\n---\n')}\n`;
}

// --- processes ----------------------------------------------------------------------------------

interface Run { code: number; stdout: string; stderr: string; timedOut: boolean }
const children = new Set<ChildProcess>();
let interrupted: NodeJS.Signals | undefined;

function run(argv: string[], opts: { timeoutMs: number; input?: string; echo?: boolean; onLine?: (line: string) => void; env?: Record<string, string> }): Promise<Run> {
  if (interrupted) return Promise.reject(new Error(`interrupted by ${interrupted}`));
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: opts.env ? '/' : REPO, stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    children.add(child);
    let stdout = '';
    let stderr = '';
    let partial = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (opts.echo) process.stdout.write(d);
      if (opts.onLine) {
        partial += d;
        let i: number;
        while ((i = partial.indexOf('\n')) >= 0) { opts.onLine(partial.slice(0, i)); partial = partial.slice(i + 1); }
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; if (opts.echo) process.stderr.write(d); });
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGTERM'); setTimeout(() => child.kill('SIGKILL'), 5000).unref(); }, opts.timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); children.delete(child); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code: code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1), stdout, stderr, timedOut });
    });
    child.stdin!.end(opts.input ?? '');
  });
}

const nodemesh = (args: string[], opts: { timeoutMs: number; input?: string; echo?: boolean; onLine?: (l: string) => void; env?: Record<string, string> }): Promise<Run> => run([process.execPath, CLI, ...args], opts);
/** The node daemons' same-node splice (daemon/redirection/splice.ts): the bench measures it on
 * unless NODEMESH_SAME_NODE_SPLICE says otherwise; the same-node bulk row also runs it off. */
const SPLICE = process.env.NODEMESH_SAME_NODE_SPLICE || 'on';
const withSplice = (v: string): Record<string, string> => ({ ...process.env as Record<string, string>, NODEMESH_SAME_NODE_SPLICE: v });
/** What `nodemesh local exec <pod> -- argv` does (the pod's cgroup, network namespace and
 * environment, through the sandbox's own launcher), without starting the CLI for each of the
 * many short phases. */
function execIn(pod: string, argv: string[], opts: { timeoutMs: number; onLine?: (l: string) => void }): Promise<Run> {
  const [namespace, name] = pod.split('/');
  const rec = Object.values(readCluster(layout(stateDir()))?.pods ?? {}).find((p) => p.namespace === namespace && p.name === name);
  if (!rec) return Promise.reject(new Error(`pod ${pod} is not in the sandbox's cluster.json`));
  return run([tool('sh'), ...enterArgv(rec.cgroup, rec.netnsPath, argv)], { ...opts, env: rec.env.PATH ? rec.env : { ...rec.env, PATH: process.env.PATH ?? '/usr/bin:/bin' } });
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;

async function mustOk(what: string, p: Promise<Run>): Promise<Run> {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what} ${r.timedOut ? 'timed out' : `exited ${r.code}`}\nstdout: ${r.stdout.slice(-1500)}\nstderr: ${r.stderr.slice(-1500)}`);
  return r;
}

// --- topology -------------------------------------------------------------------------------------

interface MeshProc { name: string; pid: number; node: string; adminSocket?: string; log?: string; kind: 'daemon' | 'sidecar' | 'haproxy' | 'waypoint' }

interface Topo {
  status: StatusJson;
  ip: (ns: string, pod: string) => string;
  vip: (ns: string, svc: string) => string;
  daemons: MeshProc[];
  identityPid: number | undefined;
  proxies: ProxyRecord[];
  /** The waypoint mode's waypoint process (its pod's IP, its log: the access log), when run. */
  waypoint: (MeshProc & { ip: string; log: string }) | undefined;
  meshProcs: (mode: RunMode) => MeshProc[];
}

async function readStatus(): Promise<StatusJson> {
  const r = await mustOk('local status', nodemesh(['local', 'status', '-o', 'json'], { timeoutMs: 30_000 }));
  return JSON.parse(r.stdout) as StatusJson;
}

/** The waypoint's node process: in its pod's cgroup, under the sandbox's supervising shell. */
function findWaypoint(status: StatusJson): Topo['waypoint'] {
  const podName = `${WAYPOINT_NAME}-waypoint`;
  const pod = status.pods.find((p) => p.namespace === 'waypoint' && p.name === podName);
  const rec = Object.values(readCluster(layout(stateDir()))?.pods ?? {}).find((p) => p.namespace === 'waypoint' && p.name === podName);
  if (!pod || !rec || pod.phase !== 'Running') throw new Error(`the waypoint pod waypoint/${podName} is ${pod?.phase ?? 'missing'} (log ${pod?.log ?? '?'})`);
  const procs = fs.readFileSync(path.join(rec.cgroup, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  // Node itself, not the supervising shell whose arguments name the script too.
  const pid = procs.find((p) => {
    try {
      const argv = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      return argv[0] === process.execPath && argv.some((a) => a.endsWith(path.join('dist', 'waypoint', 'main.js')));
    } catch { return false; }
  });
  if (pid === undefined) throw new Error(`no nodemesh-waypoint process in ${rec.cgroup} (pids ${procs.join(', ')}; log ${pod.log})`);
  return { name: `waypoint ${pod.node}`, pid, node: pod.node, kind: 'waypoint', ip: pod.ip, log: pod.log };
}

function buildTopo(status: StatusJson, proxies: ProxyRecord[], withWaypoint: boolean): Topo {
  const ip = (ns: string, pod: string): string => {
    const p = status.pods.find((x) => x.namespace === ns && x.name === pod);
    if (!p || p.phase !== 'Running') throw new Error(`pod ${ns}/${pod} is ${p?.phase ?? 'missing'} (log ${p?.log ?? '?'})`);
    return p.ip;
  };
  const vip = (ns: string, svc: string): string => {
    const s = status.services.find((x) => x.namespace === ns && x.name === svc);
    const eps = s?.ports.find((p) => p.port === SERVICE_PORT)?.endpoints ?? [];
    if (!s || eps.length !== 1) throw new Error(`service ${ns}/${svc} has endpoints ${JSON.stringify(eps)}, expected one`);
    return s.clusterIP;
  };
  const daemons: MeshProc[] = status.nodes.map((n) => {
    if (!n.daemon.pid || !n.daemon.alive || !n.daemon.ready) throw new Error(`the daemon of ${n.name} is not running and ready (log ${n.daemon.log})`);
    return { name: `daemon ${n.name}`, pid: n.daemon.pid, node: n.name, kind: 'daemon' as const };
  });
  const proxyProcs = (kind: 'sidecar' | 'haproxy'): MeshProc[] => proxies.filter((p) => p.kind === kind).map((p) => ({
    name: `${kind} ${p.pod.namespace}/${p.pod.name}`, pid: p.process.pid, node: p.pod.node, adminSocket: p.adminSocket, log: p.log, kind,
  }));
  const waypoint = withWaypoint ? findWaypoint(status) : undefined;
  return {
    status, ip, vip, daemons, identityPid: status.identity?.alive ? status.identity.pid ?? undefined : undefined, proxies, waypoint,
    meshProcs: (mode) => (mode === 'ambient' ? daemons : mode === 'waypoint' ? [...daemons, ...(waypoint ? [waypoint] : [])] : mode === 'sidecar' ? proxyProcs('sidecar') : mode === 'haproxy' ? proxyProcs('haproxy') : []),
  };
}

function target(topo: Topo, mode: RunMode, placement: 'cross-node' | 'same-node'): { host: string; port: number } {
  if (mode === 'haproxy') return { host: '127.0.0.1', port: HAPROXY_LOCAL_PORT[placement] };
  return { host: topo.vip(mode, placement === 'cross-node' ? 'bench' : 'bench-local'), port: SERVICE_PORT };
}

const cpuOf = (procs: MeshProc[], clkTck: number): (number | undefined)[] => procs.map((p) => readProcCpu(p.pid, clkTck)?.cpuSeconds);
const cpuDelta = (a: (number | undefined)[], b: (number | undefined)[]): number | null =>
  a.some((x) => x === undefined) || b.some((x) => x === undefined) ? null : round(b.reduce((s, x, i) => s! + x! - a[i]!, 0)!, 4);
const rssMiB = (procs: MeshProc[]): number => round(procs.reduce((s, p) => s + (readRssBytes(p.pid) ?? 0), 0) / 2 ** 20, 1);

// --- phases ----------------------------------------------------------------------------------------

async function loadPhases(topo: Topo, clkTck: number, mode: RunMode, specs: { placement: 'cross-node' | 'same-node'; connMode: LoadMode; rate: number; seconds: number; conns: number; maxRequests?: number }[]): Promise<PhaseResult[]> {
  const procs = topo.meshProcs(mode);
  const full: LoadSpec[] = specs.map((s) => {
    const t = target(topo, mode, s.placement);
    return {
      host: t.host, port: t.port, path: '/bench', rate: s.rate, seconds: s.seconds, maxRequests: s.maxRequests ?? Math.ceil(s.rate * s.seconds),
      mode: s.connMode, conns: s.conns, bodySize: 1024, expectBodySize: 1024, timeoutMs: REQUEST_TIMEOUT_MS, drainMs: REQUEST_TIMEOUT_MS + 1000,
      watchPids: procs.map((p) => ({ name: p.name, pid: p.pid })), watchCgroups: [], clkTck,
    };
  });
  const budget = full.reduce((s, x) => s + x.seconds * 1000 + x.drainMs + 2000, 30_000);
  const r = await execIn(`${mode}/client`, [process.execPath, LOADGEN, JSON.stringify(full)], { timeoutMs: budget });
  const lines = r.stdout.split('\n').filter((l) => l.startsWith(RESULT_PREFIX));
  if (r.code !== 0 || lines.length !== full.length) throw new Error(`the load generator in ${mode}/client ${r.timedOut ? 'timed out' : `exited ${r.code}`} with ${lines.length} of ${full.length} results\nstderr: ${r.stderr.slice(-2000)}`);
  return lines.map((l) => JSON.parse(l.slice(RESULT_PREFIX.length)) as PhaseResult);
}

function latencyRow(scenario: string, placement: 'cross-node' | 'same-node', r: PhaseResult, meshNames: string[], waypointName?: string): LatencyRow {
  const m = phaseMetrics(r);
  const known = r.processes.filter((p) => meshNames.includes(p.name));
  const cpu = known.some((p) => p.cpuSeconds === null) ? null : round(known.reduce((s, p) => s + (p.cpuSeconds ?? 0), 0), 4);
  const per1k = (sec: number | null): number | null => (sec === null || r.ok === 0 ? null : round((sec / r.ok) * 1e6, 2));
  const sleeps = known.some((p) => p.sleeps === null || p.sleeps === undefined) ? null : known.reduce((s, p) => s + p.sleeps!, 0);
  // The waypoint on its own, beside the daemons (both are in meshCpuSeconds).
  const wp = waypointName === undefined ? undefined : r.processes.find((p) => p.name === waypointName);
  return {
    ...(wp ? { waypoint: { cpuSeconds: wp.cpuSeconds, cpuMsPer1k: per1k(wp.cpuSeconds), rssMiB: wp.rssMaxBytes === null ? null : round(wp.rssMaxBytes / 2 ** 20, 1) } } : {}),
    scenario, placement, connMode: r.mode, rate: r.rate, seconds: r.scheduledSeconds,
    latency: { p50Ms: m.p50Ms, p90Ms: m.p90Ms, p99Ms: m.p99Ms, p999Ms: m.p999Ms, maxMs: m.maxMs },
    achievedRate: m.achievedRate, ok: r.ok, errors: r.errorCount, errorKinds: r.errors,
    meshCpuSeconds: cpu, meshCpuMsPer1k: per1k(cpu),
    meshSleepsPerRequest: sleeps === null || r.ok === 0 ? null : round(sleeps / r.ok, 2),
    meshCpuUsPerSleep: sleeps === null || cpu === null || sleeps === 0 ? null : round((cpu / sleeps) * 1e6, 1),
    machineBusyPct: m.machineBusyPct,
  };
}

async function wrkPhase(topo: Topo, clkTck: number, mode: RunMode, o: { seconds: number; close: boolean; scriptFile: string }): Promise<{ w: WrkResult; cpu: number | null; waypointCpu?: number | null }> {
  const t = target(topo, mode, 'cross-node');
  const procs = topo.meshProcs(mode);
  const a = cpuOf(procs, clkTck);
  const wpAt = procs.findIndex((p) => p.kind === 'waypoint');
  const r = await mustOk(`wrk in ${mode}/client`, execIn(`${mode}/client`, ['wrk', '-t1', '-c64', `-d${o.seconds}s`, '--timeout', '5s', '--latency', '-s', o.scriptFile, `http://${t.host}:${t.port}/bench`],
    { timeoutMs: o.seconds * 1000 + 30_000 }));
  const b = cpuOf(procs, clkTck);
  return { w: parseWrk(r.stdout), cpu: procs.length ? cpuDelta(a, b) : 0, ...(wpAt >= 0 ? { waypointCpu: cpuDelta([a[wpAt]], [b[wpAt]]) } : {}) };
}

async function bulkPhase(topo: Topo, clkTck: number, mode: RunMode, mib: number, placement: 'cross-node' | 'same-node' = 'cross-node'): Promise<ModeResult['bulk']> {
  const t = target(topo, mode, placement);
  const procs = topo.meshProcs(mode);
  const a = cpuOf(procs, clkTck);
  const bytes = mib * 2 ** 20;
  const r = await mustOk(`bulk in ${mode}/client`, execIn(`${mode}/client`, [process.execPath, BULK, JSON.stringify({ host: t.host, port: t.port, bytes, timeoutMs: 120_000 })], { timeoutMs: 150_000 }));
  const cpu = procs.length ? cpuDelta(a, cpuOf(procs, clkTck)) : 0;
  const line = r.stdout.split('\n').find((l) => l.startsWith(BULK_PREFIX));
  if (!line) throw new Error(`bulk in ${mode}/client printed no result: ${r.stdout.slice(-500)}`);
  const b = JSON.parse(line.slice(BULK_PREFIX.length)) as BulkResult;
  return { mbPerSecond: b.mbPerSecond, bytes: b.bytes, ok: b.ok, meshCpuSecondsPerGB: cpu === null || b.bytes === 0 ? null : round(cpu / (b.bytes / 1e9), 3) };
}

/** `afterMs`: how long after the connections closed the memory is read again. A node daemon
 * gives memory back on its own schedule (daemon/proxy/memory-release.ts: sampled every 2 s, put
 * off while it is still busy closing them), so this is longer than the settle time. */
async function holdPhase(topo: Topo, mode: RunMode, count: number, settleMs: number, afterMs: number): Promise<ModeResult['memoryVsConns'][number]> {
  const t = target(topo, mode, 'cross-node');
  const procs = topo.meshProcs(mode);
  const before = rssMiB(procs);
  let held: number | undefined;
  let result = { open: 0, failed: 0 };
  const spec = { host: t.host, port: t.port, count, openPerSecond: 2000, holdMs: settleMs, timeoutMs: 60_000 };
  // A run that could not hold them all still reports what it held (counted as failed).
  const r = await (execIn(`${mode}/client`, [process.execPath, HOLD, JSON.stringify(spec)], {
    timeoutMs: 90_000,
    onLine: (l) => {
      if (l.startsWith(HOLD_PREFIX)) {
        result = JSON.parse(l.slice(HOLD_PREFIX.length)) as typeof result;
        held = rssMiB(procs);
      } else if (l.startsWith(CLOSED_PREFIX)) { /* closing: sampled after the exit */ }
    },
  }));
  if (held === undefined) throw new Error(`conn-hold in ${mode}/client ${r.timedOut ? 'timed out' : `exited ${r.code}`} before holding: ${r.stdout.slice(-500)} ${r.stderr.slice(-500)}`);
  await sleep(afterMs);
  const after = rssMiB(procs);
  const heldMiB = held ?? after;
  return { connections: count, open: result.open, failed: result.failed, beforeMiB: before, heldMiB, afterMiB: after, perConnKiB: result.open > 0 ? round(((heldMiB - before) * 1024) / result.open, 2) : null };
}

/** tcpdump in a node's namespace, all interfaces, the first 200 bytes of each TCP packet. */
function startCapture(node: string, file: string): ChildProcess {
  const c = readCluster(layout(stateDir()));
  const n = c?.nodes.find((x) => x.name === node);
  if (!n) throw new Error(`no node ${node} in cluster.json`);
  const child = spawn('nsenter', [`--net=${n.netnsPath}`, '--', 'timeout', '120', 'tcpdump', '-i', 'any', '-nn', '-s', '200', '-U', '-w', file, 'tcp'], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  child.on('close', () => children.delete(child));
  return child;
}

async function stopCapture(child: ChildProcess): Promise<void> {
  await sleep(300);
  const done = new Promise<void>((r) => child.once('close', () => r()));
  child.kill('SIGINT');
  await Promise.race([done, sleep(5000)]);
}

async function gatherRecords(topo: Topo): Promise<{ proxy: string; records: ConnRecordLite[] }[]> {
  const out: { proxy: string; records: ConnRecordLite[] }[] = [];
  const cluster = readCluster(layout(stateDir()));
  const sockets = [...(cluster?.nodes ?? []).map((n) => ({ proxy: `daemon ${n.name}`, socket: n.adminSocket })),
    ...topo.proxies.filter((p) => p.kind === 'sidecar').map((p) => ({ proxy: `sidecar ${p.pod.namespace}/${p.pod.name}`, socket: p.adminSocket! }))];
  for (const s of sockets) {
    const j = await adminGetJson<{ open: ConnRecordLite[]; closed: ConnRecordLite[] }>(s.socket, '/debug/connections', 5000);
    out.push({ proxy: s.proxy, records: [...j.open, ...j.closed] });
  }
  return out;
}

async function pathChecks(topo: Topo, clkTck: number, tmp: string, modes: readonly RunMode[]): Promise<Record<RunMode, ModeResult['pathChecks']>> {
  const files = { [CLIENT_NODE]: path.join(tmp, 'node-1.pcap'), [SERVER_NODE]: path.join(tmp, 'node-2.pcap') };
  const caps = [startCapture(CLIENT_NODE, files[CLIENT_NODE]), startCapture(SERVER_NODE, files[SERVER_NODE])];
  await sleep(1000); // tcpdump opens its sockets
  try {
    for (const mode of modes) {
      const rs = await loadPhases(topo, clkTck, mode, (['cross-node', 'same-node'] as const).map((placement) => ({ placement, connMode: 'keepalive' as const, rate: 50, seconds: 0.5, conns: 2, maxRequests: 20 })));
      rs.forEach((r, k) => { if (r.ok !== r.scheduled) throw new Error(`smoke check ${mode} ${k ? 'same-node' : 'cross-node'}: ${r.ok} of ${r.scheduled} requests ok, errors ${JSON.stringify(r.errors)}`); });
    }
  } finally {
    for (const c of caps) await stopCapture(c);
  }
  const packets = { [CLIENT_NODE]: parsePcap(fs.readFileSync(files[CLIENT_NODE])), [SERVER_NODE]: parsePcap(fs.readFileSync(files[SERVER_NODE])) };
  // The waypoint keeps its upstream tunnels, and a daemon records an inbound tunnel when it
  // ends: wait until the smoke phase's tunnels have ended (the app's keep-alive timeout or the
  // waypoint's idle timeout, both clean ends), then read the records.
  let records = await gatherRecords(topo);
  const fromWaypoint = (pod: string) => records.some((p) => p.records.some((r) => r.direction === 'inbound-hbone' && r.pod.namespace === 'waypoint' && r.pod.name === pod && /\/sa\/waypoint$/.test(r.sourceIdentity ?? '')));
  for (const until = Date.now() + UPSTREAM_IDLE_MS + 5000; topo.waypoint && !(fromWaypoint('server') && fromWaypoint('server-local')) && Date.now() < until;) {
    await sleep(1000);
    records = await gatherRecords(topo);
  }
  const accessLog = topo.waypoint ? waypointRequests(topo.waypoint.log) : [];
  const out = {} as Record<RunMode, ModeResult['pathChecks']>;
  for (const mode of modes) {
    out[mode] = [];
    for (const placement of ['cross-node', 'same-node'] as const) {
      const server = placement === 'cross-node' ? 'server' : 'server-local';
      const ev: PathEvidence = { records, wire: pairTraffic(packets[placement === 'cross-node' ? SERVER_NODE : CLIENT_NODE], topo.ip(mode, 'client'), topo.ip(mode, server), PLAINTEXT_MARKERS) };
      if (mode === 'waypoint' && topo.waypoint) {
        // Three hops, each maybe on either node: both captures (a packet seen twice counts twice).
        const both = [...packets[CLIENT_NODE], ...packets[SERVER_NODE]];
        const wp = topo.waypoint;
        ev.wire = pairTraffic(both, topo.ip(mode, 'client'), topo.ip(mode, server), PLAINTEXT_MARKERS);
        ev.waypoint = {
          pod: `${WAYPOINT_NAME}-waypoint`, serviceAccount: WAYPOINT_NAME, serverIp: topo.ip(mode, server), requests: accessLog,
          toWaypoint: pairTraffic(both, topo.ip(mode, 'client'), wp.ip, PLAINTEXT_MARKERS), fromWaypoint: pairTraffic(both, wp.ip, topo.ip(mode, server), PLAINTEXT_MARKERS),
        };
      }
      if (mode === 'haproxy') {
        const log = (pod: string): string => { const p = topo.proxies.find((x) => x.kind === 'haproxy' && x.pod.namespace === mode && x.pod.name === pod); return p ? fs.readFileSync(p.log, 'utf8') : ''; };
        ev.haproxy = { clientLog: log('client'), serverLog: log(server), serverIp: topo.ip(mode, server) };
      }
      const v = checkPath({ mode, placement, namespace: mode, client: 'client', server, appPort: APP_PORT, meshPort: mode === 'haproxy' ? HAPROXY_MTLS_PORT : HBONE_PORT }, ev);
      out[mode].push({ placement, ...v });
    }
  }
  return out;
}

/** The waypoint's access-log lines (JSON, one per request; daemon/log.ts), the fields the path check reads. */
function waypointRequests(logFile: string): WaypointRequestLine[] {
  const out: WaypointRequestLine[] = [];
  for (const l of fs.readFileSync(logFile, 'utf8').split('\n')) {
    if (!l.includes('"waypoint request"')) continue;
    try {
      const j = JSON.parse(l) as Record<string, unknown>;
      out.push({ caller: String(j.caller ?? ''), waypoint: String(j.waypoint ?? ''), endpoint: String(j.endpoint ?? ''), status: Number(j.status) });
    } catch { /* a line cut by a crash: not evidence */ }
  }
  return out;
}

// --- main ------------------------------------------------------------------------------------------

export async function runCompare(argv: string[]): Promise<number> {
  const args = parseCompareArgs(argv);
  if (os.userInfo().uid !== 0) throw new Error('the bench builds a sandbox cluster (network namespaces, cgroups, eBPF): run it as root');
  for (const f of [CLI, LOADGEN, SERVER, BULK, HOLD, path.join(REPO, 'dist', 'daemon', 'sidecar-main.js')]) if (!fs.existsSync(f)) throw new Error(`${f} is missing: run make build first`);
  for (const t of ['wrk', 'haproxy', 'tcpdump', 'openssl']) if (spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0) throw new Error(`${t} is not installed (apt-get install ${t === 'openssl' ? 'openssl' : t}); make bench installs it`);
  const clkTck = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || DEFAULT_CLK_TCK;
  const machine = machineFacts(clkTck);
  // How long memory is left to settle before it is read (new proxies, connections held, closed).
  const settleMs = args.quick ? 1000 : 3000;
  const startedAt = new Date();
  const log = (s: string): void => { process.stdout.write(`${s}\n`); };
  log(`nodemesh bench${args.quick ? ' --quick' : ''}: ${args.modes.map((m) => MODES.find((x) => x.id === m)!.label).join(' vs ')}`);
  log(`machine: ${machine.nproc} CPUs, ${machine.cpuModel}, ${machine.memTotalMiB} MiB, kernel ${machine.kernel}, node ${machine.node}, commit ${machine.gitCommit}${machine.gitDirty ? ' (dirty)' : ''}`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nodemesh-compare-'));
  fs.chmodSync(tmp, 0o755);
  const sleepSeconds = 3600;
  const manifestFile = path.join(tmp, 'compare.yaml');
  fs.writeFileSync(manifestFile, compareManifest({ sleepSeconds }));
  const scripts = { keep: path.join(tmp, 'post.lua'), close: path.join(tmp, 'post-close.lua') };
  fs.writeFileSync(scripts.keep, wrkScript(1024, false));
  fs.writeFileSync(scripts.close, wrkScript(1024, true));

  let ours = false;
  let upPid: number | undefined;
  let proxies: ProxyRecord[] = [];
  const onSignal = (s: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = s;
    process.stderr.write(`\n${s}: stopping, then tearing the sandbox down\n`);
    for (const c of children) c.kill('SIGTERM');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const notes: string[] = [];
  try {
    await waitForForeignSandbox();
    log(`local up --nodes 2 -f ${manifestFile}`);
    const upRun = nodemesh(['local', 'up', '--nodes', '2', '-f', manifestFile], { timeoutMs: 240_000, env: withSplice(SPLICE) });
    upPid = [...children].at(-1)?.pid;
    const up = await upRun;
    if (up.code !== 0) { ours = createdBy(upPid); throw new Error(`local up failed (exit ${up.code}):\n${up.stderr.slice(-3000)}`); }
    ours = true;
    const run = args.modes;
    const runs = (m: RunMode): boolean => run.includes(m);
    // The waypoint mode's waypoint (its namespace is labelled to use it in the manifest).
    if (runs('waypoint')) {
      const wpApply = await mustOk('waypoint apply', nodemesh(['waypoint', 'apply', '-n', 'waypoint', '--name', WAYPOINT_NAME], { timeoutMs: 90_000 }));
      log(wpApply.stdout.trim());
    }

    // The proxies of the two sidecar modes.
    const t0 = Date.now();
    if (runs('sidecar')) proxies = await startSidecars(['client', 'server', 'server-local'].map((name) => ({ namespace: 'sidecar', name })));
    const hap: HaproxySidecarSpec[] = [
      { pod: { namespace: 'haproxy', name: 'client', serviceAccount: 'client' }, outbound: [
        { localPort: HAPROXY_LOCAL_PORT['cross-node'], peer: { namespace: 'haproxy', name: 'server', serviceAccount: 'server' } },
        { localPort: HAPROXY_LOCAL_PORT['same-node'], peer: { namespace: 'haproxy', name: 'server-local', serviceAccount: 'server' } }] },
      ...['server', 'server-local'].map((name) => ({ pod: { namespace: 'haproxy', name, serviceAccount: 'server' }, inbound: { appPort: APP_PORT, allowClients: [{ namespace: 'haproxy', serviceAccount: 'client' }] }, outbound: [] })),
    ];
    if (runs('haproxy')) proxies.push(...await startHaproxySidecars(hap));
    log(`proxies up in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${proxies.map((p) => `${p.kind} ${p.pod.namespace}/${p.pod.name} pid ${p.process.pid}`).join(', ')}`);
    let topo = buildTopo(await readStatus(), proxies, runs('waypoint'));

    // 1. Path check: every mode's traffic took the path it claims.
    const paths = await pathChecks(topo, clkTck, tmp, run);
    for (const mode of run) for (const c of paths[mode]) log(`path check ${mode} ${c.placement}: ${c.ok ? 'passed' : 'FAILED'}: ${[...c.checks, ...c.problems].join('; ')}`);

    // 2. Latency at fixed rates, new connection per request, the same-node path.
    const scenarios = [
      ...args.rates.map((rate) => ({ scenario: `keepalive@${rate}`, placement: 'cross-node' as const, connMode: 'keepalive' as const, rate })),
      ...args.newConnRates.map((rate) => ({ scenario: `new-conn@${rate}`, placement: 'cross-node' as const, connMode: 'new-conn' as const, rate })),
      { scenario: `same-node keepalive@${args.sameNodeRate}`, placement: 'same-node' as const, connMode: 'keepalive' as const, rate: args.sameNodeRate },
    ];
    const latency: Record<RunMode, LatencyRow[]> = { plain: [], sidecar: [], haproxy: [], ambient: [], waypoint: [] };
    // Warm-up (not reported): each mode's first connections, certificates and JIT.
    for (const mode of run) await loadPhases(topo, clkTck, mode, [{ placement: 'cross-node', connMode: 'keepalive', rate: 200, seconds: args.quick ? 0.5 : 2, conns: args.conns }]);
    // Memory as pods per node grow (node-1 has the client and server-local of each mode),
    // measured early, when every process has only been warmed up; the idle pods and their
    // proxies are removed again so that they cost nothing in the measured phases.
    const pods = { plain: [], sidecar: [], haproxy: [], ambient: [], waypoint: [] } as Record<RunMode, ModeResult['memoryVsPods']>;
    let have = 2;
    const scaleProxies: ProxyRecord[] = [];
    // The waypoint mode shares the node daemons (and their enrolled pods) with ambient: its
    // column adds the namespace's waypoint, wherever it runs (one per namespace, not per pod).
    const node1 = (mode: RunMode): MeshProc[] => topo.meshProcs(mode).filter((p) => p.node === CLIENT_NODE || p.kind === 'waypoint');
    for (const want of args.pods) {
      if (want > have) {
        // The ambient scale pods enrol in the daemons the waypoint mode shares.
        for (const mode of (['ambient', 'sidecar', 'haproxy'] as const).filter((m) => runs(m) || (m === 'ambient' && runs('waypoint')))) {
          await mustOk(`apply scale pods (${mode})`, nodemesh(['local', 'apply', '-f', '-'], { timeoutMs: 300_000, input: scalePodsManifest(mode, have, want, sleepSeconds) }));
        }
        const names = Array.from({ length: want - have }, (_, k) => `scale-${have + k}`);
        const more = [...(runs('sidecar') ? await startSidecars(names.map((name) => ({ namespace: 'sidecar', name }))) : []),
          ...(!runs('haproxy') ? [] : await startHaproxySidecars(names.map((name) => ({ pod: { namespace: 'haproxy', name, serviceAccount: 'scale' }, inbound: { appPort: APP_PORT, allowClients: [{ namespace: 'haproxy', serviceAccount: 'client' }] }, outbound: [] }))))];
        proxies.push(...more); // topo.proxies is this same list
        scaleProxies.push(...more);
        have = want;
        await sleep(settleMs);
      }
      for (const mode of run) {
        const procs = node1(mode);
        pods[mode].push({ podsPerNode: want, meshRssMiB: rssMiB(procs), meshProcesses: procs.length });
      }
      log(`pods ${want} per node: ${run.map((m) => `${m} ${pods[m].at(-1)!.meshRssMiB} MiB (${pods[m].at(-1)!.meshProcesses} processes)`).join(', ')}`);
    }
    if (scaleProxies.length) {
      await stopProxies(scaleProxies);
      proxies.splice(0, proxies.length, ...proxies.filter((p) => !scaleProxies.includes(p)));
      for (const mode of (['ambient', 'sidecar', 'haproxy'] as const).filter((m) => runs(m) || (m === 'ambient' && runs('waypoint')))) {
        await mustOk(`delete scale pods (${mode})`, nodemesh(['local', 'delete', '--ignore-not-found', '-f', '-'], { timeoutMs: 300_000, input: scalePodsManifest(mode, 2, have, sleepSeconds) }));
      }
      log(`removed the ${have - 2} idle pods per mode and their proxies`);
    }

    for (const s of scenarios) {
      for (const mode of run) {
        const [r] = await loadPhases(topo, clkTck, mode, [{ placement: s.placement, connMode: s.connMode, rate: s.rate, seconds: args.seconds, conns: s.connMode === 'keepalive' ? args.conns : 64 }]);
        const row = latencyRow(s.scenario, s.placement, r!, topo.meshProcs(mode).map((p) => p.name), mode === 'waypoint' ? topo.waypoint?.name : undefined);
        latency[mode].push(row);
        const wp = row.waypoint ? ` (waypoint ${row.waypoint.cpuMsPer1k ?? 'n/a'} ms/1k, ${row.waypoint.rssMiB ?? 'n/a'} MiB)` : '';
        log(`${s.scenario.padEnd(26)} ${mode.padEnd(8)} p50 ${row.latency.p50Ms} ms, p90 ${row.latency.p90Ms} ms, p99 ${row.latency.p99Ms} ms, ${row.achievedRate} req/s, ${row.errors} errors, mesh CPU ${row.meshCpuMsPer1k ?? 'n/a'} ms/1k${wp}, machine ${row.machineBusyPct}% busy`);
        if (row.errors) notes.push(`${mode} ${s.scenario}: ${row.errors} errors ${JSON.stringify(row.errorKinds)}`);
        if ((row.machineBusyPct ?? 0) >= 90) notes.push(`${mode} ${s.scenario}: the machine was ${row.machineBusyPct}% busy (saturated: latency includes CPU queueing)`);
      }
    }

    // 3. Saturation: wrk (64 connections) beside ours; new connections/s; bulk.
    const maxRps = {} as Record<RunMode, ModeResult['maxRps']>;
    const newConn = {} as Record<RunMode, ModeResult['newConnSaturation']>;
    const bulk = {} as Record<RunMode, ModeResult['bulk']>;
    let sameBulkRelay: ModeResult['bulk'] = null;
    for (const mode of run) {
      const k = await wrkPhase(topo, clkTck, mode, { seconds: args.wrkSeconds, close: false, scriptFile: scripts.keep });
      const [o] = await loadPhases(topo, clkTck, mode, [{ placement: 'cross-node', connMode: 'keepalive', rate: args.quick ? 2000 : 20_000, seconds: args.wrkSeconds, conns: 64 }]);
      const c = await wrkPhase(topo, clkTck, mode, { seconds: args.wrkSeconds, close: true, scriptFile: scripts.close });
      const errs = (w: WrkResult): number => w.socketErrors.connect + w.socketErrors.read + w.socketErrors.write + w.socketErrors.timeout + w.non2xx;
      maxRps[mode] = {
        wrk: {
          requestsPerSecond: k.w.requestsPerSecond, requests: k.w.requests, errors: errs(k.w), p99Ms: k.w.latencyMs.p99, meshCpuMsPer1k: k.cpu === null || k.w.requests === 0 ? null : round((k.cpu / k.w.requests) * 1e6, 2),
          ...(k.waypointCpu !== undefined ? { waypointCpuMsPer1k: k.waypointCpu === null || k.w.requests === 0 ? null : round((k.waypointCpu / k.w.requests) * 1e6, 2) } : {}),
        },
        ours: { achievedRate: round(o!.achievedRate, 1), ok: o!.ok, errors: o!.errorCount },
      };
      newConn[mode] = { wrk: { connectionsPerSecond: c.w.requestsPerSecond, requests: c.w.requests, errors: errs(c.w), meshCpuMsPer1k: c.cpu === null || c.w.requests === 0 ? null : round((c.cpu / c.w.requests) * 1e6, 2) } };
      bulk[mode] = await bulkPhase(topo, clkTck, mode, args.bulkMiB);
      log(`saturation ${mode.padEnd(8)} wrk ${k.w.requestsPerSecond} req/s (p99 ${k.w.latencyMs.p99} ms), ours ${round(o!.achievedRate, 0)} req/s, new conns ${c.w.requestsPerSecond}/s, bulk ${bulk[mode]!.mbPerSecond} MB/s`);
    }

    // 3b. Same-node bulk, one stream: no mesh, and ambient with the kernel splice and with the
    // daemon's user-space relay (the client's daemon restarted with the splice off, then back).
    const sameBulk = {} as Record<RunMode, ModeResult['bulkSameNode']>;
    if (runs('plain')) sameBulk.plain = await bulkPhase(topo, clkTck, 'plain', args.bulkMiB, 'same-node');
    if (runs('ambient')) {
      const measure = async (splice: string): Promise<ModeResult['bulk']> => {
        const daemonRecords = async () => (await gatherRecords(topo)).filter((p) => p.proxy === `daemon ${CLIENT_NODE}`).flatMap((p) => p.records);
        const since = Math.max(0, ...(await daemonRecords()).map((r) => r.id ?? 0));
        const b = await bulkPhase(topo, clkTck, 'ambient', args.bulkMiB, 'same-node');
        // The numbers must be of the path they claim: the daemon's record of this stream.
        const want = splice === 'on' ? 'local-splice' : 'local';
        const recs = (await daemonRecords()).filter((r) => (r.id ?? 0) > since && r.direction === 'outbound' && r.pod.namespace === 'ambient' && r.originalDestination?.workload?.name === 'server-local');
        if (!recs.some((r) => r.path === want)) throw new Error(`same-node bulk (splice ${splice}): no ${want} record on the daemon, saw ${JSON.stringify(recs.map((r) => r.path))}`);
        return b;
      };
      const setSplice = async (v: string): Promise<void> => {
        await mustOk(`restart-daemon ${CLIENT_NODE} (splice ${v})`, nodemesh(['local', 'restart-daemon', CLIENT_NODE], { timeoutMs: 120_000, env: withSplice(v) }));
        topo = buildTopo(await readStatus(), proxies, runs('waypoint'));
      };
      const first = await measure(SPLICE);
      const other = SPLICE === 'on' ? 'off' : 'on';
      await setSplice(other);
      const second = await measure(other);
      await setSplice(SPLICE);
      const [on, off] = SPLICE === 'on' ? [first, second] : [second, first];
      sameBulk.ambient = on;
      sameBulkRelay = off;
      log(`same-node bulk: ${runs('plain') ? `no mesh ${sameBulk.plain!.mbPerSecond} MB/s, ` : ''}ambient spliced ${on!.mbPerSecond} MB/s (mesh CPU ${on!.meshCpuSecondsPerGB ?? 'n/a'} s/GB), relayed ${off!.mbPerSecond} MB/s (mesh CPU ${off!.meshCpuSecondsPerGB ?? 'n/a'} s/GB)`);
    }

    // 4. Memory with connections held open (no mesh: nothing to measure).
    const conns = { plain: [], sidecar: [], haproxy: [], ambient: [], waypoint: [] } as Record<RunMode, ModeResult['memoryVsConns']>;
    for (const count of args.holdConns) {
      for (const mode of run.filter((m) => m !== 'plain')) {
        const h = await holdPhase(topo, mode, count, settleMs, args.quick ? settleMs : settleMs + 6000);
        conns[mode].push(h);
        log(`hold ${count} ${mode.padEnd(8)} open ${h.open} (failed ${h.failed}): mesh ${h.beforeMiB} -> ${h.heldMiB} -> ${h.afterMiB} MiB, ${h.perConnKiB ?? 'n/a'} KiB/connection`);
        if (h.failed) notes.push(`${mode}: ${h.failed} of ${count} held connections failed`);
      }
    }

    // 5. The report.
    const modes: ModeResult[] = MODES.map(({ id, label }) => {
      const m = id as RunMode;
      if (!runs(m)) {
        return { mode: id, label, available: false, note: 'not run (--modes)', meshProcesses: [], latency: [], maxRps: { wrk: null, ours: null }, newConnSaturation: { wrk: null }, bulk: null, bulkSameNode: null, memoryVsPods: [], memoryVsConns: [], pathChecks: [] };
      }
      return {
        mode: id, label, available: true, meshProcesses: topo.meshProcs(m).map((p) => ({ name: p.name, pid: p.pid, node: p.node })),
        latency: latency[m], maxRps: maxRps[m], newConnSaturation: newConn[m], bulk: bulk[m], bulkSameNode: sameBulk[m] ?? null,
        ...(m === 'ambient' ? { bulkSameNodeRelay: sameBulkRelay } : {}), memoryVsPods: pods[m], memoryVsConns: conns[m], pathChecks: paths[m],
      };
    });
    if (args.quick) notes.push('quick run: a couple of seconds per phase on a shared machine; the numbers show the harness works, not how the modes compare');
    notes.push('HAProxy: one thread per sidecar (nbthread 1), TLS 1.3, the client pointed at its local HAProxy port (no capture), per-connection log lines on; nodemesh sidecars: one Node process per pod, node daemons: one per node');
    notes.push('mesh memory per node counts the node daemon (ambient) or every sidecar of the node; nodemesh-identity (shared by both nodemesh modes) is reported separately');
    if (runs('ambient')) notes.push(`ambient same-node path: the node daemons ran with NODEMESH_SAME_NODE_SPLICE=${SPLICE} (kernel splice ${SPLICE === 'on' ? 'on' : 'off'}) for every phase; the same-node bulk row was also measured with it ${SPLICE === 'on' ? 'off (user-space relay)' : 'on'}, node-1's daemon restarted for it and back`);
    if (topo.waypoint) notes.push(`ambient + waypoint: the same node daemons as ambient L4 plus the namespace's waypoint (one Node process, on ${topo.waypoint.node}; client node-1 -> waypoint -> server); its mesh CPU and memory count both daemons and the waypoint, and the waypoint's own share is in its rows`);
    const doc: BenchDoc = {
      benchmark: 'mesh-compare', version: 1, quick: args.quick, startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(),
      command: ['nodemesh bench', ...argv].join(' '), machine, config: { ...args, outDir: path.relative(REPO, args.outDir) || '.', clientNode: CLIENT_NODE, serverNode: SERVER_NODE, appPort: APP_PORT, requestTimeoutMs: REQUEST_TIMEOUT_MS },
      modes, identity: { rssMiB: topo.identityPid ? round((readRssBytes(topo.identityPid) ?? 0) / 2 ** 20, 1) : null, note: 'nodemesh-identity, the mesh CA, shared by the ambient and sidecar modes' },
      notes,
    };
    const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
    const base = path.join(args.outDir, `mesh-compare-${stamp}`);
    fs.mkdirSync(args.outDir, { recursive: true });
    fs.writeFileSync(`${base}.json`, `${JSON.stringify(doc, null, 2)}\n`);
    const md = markdownReport(doc);
    fs.writeFileSync(`${base}.md`, md);
    const svgs = chartsSvg(doc).map((c) => { const f = `${base}-${c.name}`; fs.writeFileSync(f, c.svg); return f; });
    fs.writeFileSync(path.join(args.outDir, 'latest.json'), `${JSON.stringify({ json: `${base}.json`, markdown: `${base}.md`, svgs }, null, 2)}\n`);
    log(`\n${md}`);
    log(`results: ${base}.json, ${base}.md, ${svgs.map((s) => path.basename(s)).join(', ')}`);
    const failed = modes.flatMap((m) => m.pathChecks.filter((c) => !c.ok).map((c) => `${m.mode} ${c.placement}`));
    if (failed.length) { process.stderr.write(`path check failed for ${failed.join(', ')}: the numbers of those modes are not what they claim\n`); return 1; }
    return 0;
  } finally {
    if (proxies.length) await stopProxies(proxies).catch((e: Error) => process.stderr.write(`stopping proxies: ${e.message}\n`));
    if (ours || createdBy(upPid)) {
      interrupted = undefined; // the teardown must run even after ^C
      // The waypoint is stopped on its own first: SIGTERM and a grace, so a profile asked for
      // with NODEMESH_SANDBOX_WAYPOINT_NODE_ARGS='--cpu-prof ...' is written (local down kills).
      await nodemesh(['waypoint', 'delete', '-n', 'waypoint', '--name', WAYPOINT_NAME], { timeoutMs: 30_000 }).catch(() => undefined);
      const d = await nodemesh(['local', 'down'], { timeoutMs: 120_000 }).catch((e: Error) => ({ code: 1, stdout: '', stderr: e.message, timedOut: false }));
      if (d.code !== 0) process.stderr.write(`local down failed (${d.code}): ${d.stderr}; run 'nodemesh local down' by hand\n`);
    }
    fs.rmSync(tmp, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

if (require.main === module) {
  runCompare(process.argv.slice(2)).then((code) => { process.exitCode = interrupted ? 130 : code; }, (e: Error) => {
    process.stderr.write(`nodemesh bench: ${e.message}\n`);
    process.exitCode = interrupted ? 130 : 1;
  });
}
