// The load generator of the l4-latency bench (bench/l4-latency.ts). It runs INSIDE the client
// pod (`nodemesh local exec <ns>/client -- node <repo>/dist/bench/l4-loadgen.js '<spec json>'`),
// so in the meshed namespace its connect() calls are captured by the node daemon's eBPF
// programs exactly as an app's would be.
//
// Open loop: request i is due at t0 + i/rate, whatever happened to earlier requests, and its
// latency is measured from that intended send time (not from when a connection was free), so
// queueing behind a slow request counts (coordinated-omission safe). Two modes:
//   keepalive  HTTP/1.1 keep-alive connections, a pool of at most `conns`, opened lazily (the
//              first requests of a phase pay for the connects, in both arms of the comparison);
//              a request that finds no idle connection waits in a FIFO queue
//   new-conn   a new TCP connection per request (`Connection: close`), at most `conns` open at
//              once; the server closes first, so TIME_WAIT stays on the server side
// Every request is a POST with a `bodySize` body; a response counts as ok only if it is a 200
// with exactly `expectBodySize` body bytes. Bounded: at most min(maxRequests, rate*seconds)
// requests; each fails as `timeout` `timeoutMs` after its intended send time; the phase ends by
// t0 + seconds + drainMs whatever is left (counted as `unfinished`). Every failure is counted by
// kind, none is dropped.
//
// It also samples, over exactly the measured window [t0, end]: its own CPU (process.cpuUsage),
// the CPU (utime+stime from /proc/<pid>/stat) and VmRSS of the processes it is told to watch
// (the node daemons, nodemesh-identity; same pid namespace as the root, only the network
// namespace differs), the CPU of the cgroups it is told to watch (the server pod), and the whole
// machine's busy share (/proc/stat). One JSON line, prefixed `L4RESULT `, goes to stdout.
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import { readCgroupCpuSeconds, readMachineCpu, readProcCpu, readRssBytes, readVoluntarySwitches, DEFAULT_CLK_TCK } from './proc-stats';

export const RESULT_PREFIX = 'L4RESULT ';
const MAX_HEAD_BYTES = 16 * 1024;

export type LoadMode = 'keepalive' | 'new-conn';

export interface LoadSpec {
  host: string;
  port: number;
  path: string;
  rate: number;
  seconds: number;
  maxRequests: number;
  mode: LoadMode;
  conns: number;
  bodySize: number;
  expectBodySize: number;
  timeoutMs: number;
  drainMs: number;
  watchPids: { name: string; pid: number }[];
  watchCgroups: { name: string; dir: string }[];
  clkTck: number;
}

/** Checks a spec from the command line, naming the field that is wrong; clamps nothing silently. */
export function validateSpec(raw: unknown): LoadSpec {
  const s = raw as Partial<LoadSpec>;
  const num = (k: keyof LoadSpec, min: number, max: number): void => {
    const v = s[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw new Error(`spec.${k} must be a number from ${min} to ${max} (got ${JSON.stringify(v)})`);
  };
  if (typeof s.host !== 'string' || net.isIP(s.host) === 0) throw new Error(`spec.host must be an IP address (got ${JSON.stringify(s.host)})`);
  if (typeof s.path !== 'string' || !s.path.startsWith('/')) throw new Error('spec.path must start with /');
  if (s.mode !== 'keepalive' && s.mode !== 'new-conn') throw new Error(`spec.mode must be keepalive or new-conn (got ${JSON.stringify(s.mode)})`);
  num('port', 1, 65535);
  num('rate', 1, 20_000);
  num('seconds', 0.5, 120);
  num('maxRequests', 1, 2_000_000);
  num('conns', 1, 1024);
  num('bodySize', 0, 1 << 20);
  num('expectBodySize', 0, 1 << 20);
  num('timeoutMs', 100, 60_000);
  num('drainMs', 0, 120_000);
  num('clkTck', 1, 10_000);
  if (!Array.isArray(s.watchPids) || !s.watchPids.every((w) => typeof w?.name === 'string' && Number.isInteger(w.pid) && w.pid > 0)) throw new Error('spec.watchPids must be [{name, pid}]');
  if (!Array.isArray(s.watchCgroups) || !s.watchCgroups.every((w) => typeof w?.name === 'string' && typeof w.dir === 'string')) throw new Error('spec.watchCgroups must be [{name, dir}]');
  return s as LoadSpec;
}

// --- HTTP/1.1 response head parsing (pure) ----------------------------------------------------

export type HeadParse =
  | { kind: 'incomplete' }
  | { kind: 'error'; reason: string }
  | { kind: 'head'; status: number; contentLength: number; headerBytes: number; close: boolean };

/** Parses the status line and headers at the start of buf. Only what the bench server sends is
 * supported: a Content-Length body (chunked is an error, not a guess). */
export function parseResponseHead(buf: Buffer): HeadParse {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return buf.length > MAX_HEAD_BYTES ? { kind: 'error', reason: 'head-too-large' } : { kind: 'incomplete' };
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? '');
  if (!m) return { kind: 'error', reason: 'bad-status-line' };
  let contentLength: number | undefined;
  let close = lines[0]!.startsWith('HTTP/1.0');
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return { kind: 'error', reason: 'bad-header' };
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length') {
      if (!/^\d+$/.test(value) || (contentLength !== undefined && contentLength !== Number(value))) return { kind: 'error', reason: 'bad-content-length' };
      contentLength = Number(value);
    } else if (name === 'transfer-encoding') {
      return { kind: 'error', reason: 'unsupported-transfer-encoding' };
    } else if (name === 'connection') {
      const v = value.toLowerCase();
      if (v.includes('close')) close = true;
      else if (v.includes('keep-alive')) close = false;
    }
  }
  if (contentLength === undefined) return { kind: 'error', reason: 'no-content-length' };
  return { kind: 'head', status: Number(m[1]), contentLength, headerBytes: end + 4, close };
}

export function buildRequest(host: string, port: number, path: string, bodySize: number, close: boolean): Buffer {
  const head = `POST ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${bodySize}\r\n` +
    `${close ? 'Connection: close\r\n' : ''}\r\n`;
  const body = Buffer.alloc(bodySize, 0x62);
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

// --- the open-loop schedule (pure) ------------------------------------------------------------

/** How many requests a phase has and when request i is due (ms after t0). */
export function schedule(rate: number, seconds: number, maxRequests: number): { total: number; dueMs: (i: number) => number } {
  const total = Math.max(0, Math.min(Math.floor(maxRequests), Math.floor(rate * seconds)));
  return { total, dueMs: (i) => (i * 1000) / rate };
}

// --- one connection -----------------------------------------------------------------------------

interface Req { i: number; intended: number; written: number; done: boolean }

type Outcome = { ok: true } | { ok: false; kind: string };

class HttpConn {
  readonly sock: net.Socket;
  connected = false;
  dead = false;
  /** Set before a request is failed on a connection we are about to destroy: never reuse it. */
  closing = false;
  current: Req | undefined;
  private buf: Buffer | undefined;
  private head: Extract<HeadParse, { kind: 'head' }> | undefined;

  constructor(
    spec: LoadSpec,
    private readonly request: Buffer,
    private readonly expectBodySize: number,
    private readonly onReady: (c: HttpConn) => void,
    private readonly onResult: (c: HttpConn, r: Req, o: Outcome) => void,
    private readonly onGone: (c: HttpConn, err: string | undefined) => void,
  ) {
    this.sock = net.connect({ host: spec.host, port: spec.port, noDelay: true });
    this.sock.on('connect', () => { this.connected = true; this.onReady(this); });
    this.sock.on('data', (d: Buffer) => this.onData(d));
    let err: string | undefined;
    this.sock.on('error', (e: NodeJS.ErrnoException) => { err = e.code ?? e.message; });
    this.sock.on('close', () => this.gone(err ?? (this.connected ? 'closed-by-peer' : 'connect-failed')));
  }

  send(r: Req): void {
    this.current = r;
    r.written = performance.now();
    this.buf = undefined;
    this.head = undefined;
    this.sock.write(this.request);
  }

  /** Ends this connection, failing its current request (if any) with `kind`. */
  kill(kind: string): void {
    this.closing = true;
    const r = this.current;
    this.current = undefined;
    if (r) this.onResult(this, r, { ok: false, kind });
    this.sock.destroy();
  }

  private gone(err: string): void {
    if (this.dead) return;
    this.dead = true;
    const r = this.current;
    this.current = undefined;
    if (r) this.onResult(this, r, { ok: false, kind: err });
    this.onGone(this, this.connected ? undefined : err);
  }

  private onData(d: Buffer): void {
    if (!this.current) { this.kill('unexpected-data'); return; }
    this.buf = this.buf ? Buffer.concat([this.buf, d]) : d;
    if (!this.head) {
      const h = parseResponseHead(this.buf);
      if (h.kind === 'incomplete') return;
      if (h.kind === 'error') { this.kill(h.reason); return; }
      this.head = h;
    }
    const want = this.head.headerBytes + this.head.contentLength;
    if (this.buf.length < want) return;
    const r = this.current;
    const h = this.head;
    this.current = undefined;
    if (this.buf.length > want) { this.closing = true; this.onResult(this, r, { ok: false, kind: 'extra-bytes' }); this.sock.destroy(); return; }
    this.buf = undefined;
    this.head = undefined;
    if (h.status !== 200) this.onResult(this, r, { ok: false, kind: `http-${h.status}` });
    else if (h.contentLength !== this.expectBodySize) this.onResult(this, r, { ok: false, kind: 'bad-length' });
    else this.onResult(this, r, { ok: true });
  }
}

// --- the phase --------------------------------------------------------------------------------

export interface Percentiles { count: number; min: number; p50: number; p90: number; p99: number; p999: number; max: number; mean: number }

function summarize(h: hdr.Histogram): Percentiles {
  if (h.totalCount === 0) return { count: 0, min: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
  return {
    count: h.totalCount, min: h.minNonZeroValue, p50: h.getValueAtPercentile(50), p90: h.getValueAtPercentile(90),
    p99: h.getValueAtPercentile(99), p999: h.getValueAtPercentile(99.9), max: h.maxValue, mean: Math.round(h.mean),
  };
}

const newHistogram = (): hdr.Histogram => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false });

export interface ProcessSample {
  name: string; pid: number; alive: boolean; cpuSeconds: number | null; rssStartBytes: number | null; rssEndBytes: number | null; rssMaxBytes: number | null;
  /** Times the main thread went to sleep during the phase (voluntary context switches). */
  sleeps: number | null;
}

export interface PhaseResult {
  mode: LoadMode;
  rate: number;
  conns: number;
  bodySize: number;
  expectBodySize: number;
  startedAt: string;
  scheduled: number;
  scheduledSeconds: number;
  /** From the first intended send to the last answer (or the last intended send, if later). */
  elapsedSeconds: number;
  /** From t0 to the end of the phase (drain included). */
  wallSeconds: number;
  sent: number;
  ok: number;
  errors: Record<string, number>;
  errorCount: number;
  offeredRate: number;
  achievedRate: number;
  connectionsOpened: number;
  /** Latency from the intended send time to the last response byte, microseconds. */
  latencyUs: Percentiles;
  /** From writing the request to the last response byte (no queueing for a connection, no
   * connect, no generator lag): not coordinated-omission safe, shown beside latencyUs. */
  serviceUs: Percentiles;
  /** How late the generator's timer issued each request after its intended time (its own lag,
   * part of latencyUs in both arms alike). */
  sendLagUs: Percentiles;
  loadgen: { pid: number; cpuSeconds: number; rssMaxBytes: number };
  processes: ProcessSample[];
  cgroups: { name: string; cpuSeconds: number | null }[];
  machine: { cores: number; busyShare: number | null };
}

export function runPhase(spec: LoadSpec, cores: number): Promise<PhaseResult> {
  const { total, dueMs } = schedule(spec.rate, spec.seconds, spec.maxRequests);
  const request = buildRequest(spec.host, spec.port, spec.path, spec.bodySize, spec.mode === 'new-conn');
  const latency = newHistogram();
  const sendLag = newHistogram();
  const service = newHistogram();
  const errors: Record<string, number> = {};
  const queue: Req[] = [];
  let qHead = 0;
  const conns = new Set<HttpConn>();
  const idle: HttpConn[] = [];
  let sent = 0;
  let ok = 0;
  let failed = 0;
  let resolved = 0;
  let opened = 0;
  let next = 0;
  let lastDone = 0;

  // Samples at t0.
  const t0 = performance.now() + 20;
  const startedAt = new Date(Date.now() + 20).toISOString();
  const deadline = t0 + spec.seconds * 1000 + spec.drainMs;
  const selfCpu0 = process.cpuUsage();
  const machine0 = readMachineCpu();
  const proc0 = spec.watchPids.map((w) => readProcCpu(w.pid, spec.clkTck));
  const sleeps0 = spec.watchPids.map((w) => readVoluntarySwitches(w.pid));
  const cg0 = spec.watchCgroups.map((c) => readCgroupCpuSeconds(c.dir));
  const rssStart = spec.watchPids.map((w) => readRssBytes(w.pid));
  const rssMax = rssStart.map((v) => v ?? 0);
  let selfRssMax = process.memoryUsage.rss();
  const sampleRss = (): void => {
    spec.watchPids.forEach((w, k) => { const v = readRssBytes(w.pid); if (v !== undefined && v > rssMax[k]!) rssMax[k] = v; });
    selfRssMax = Math.max(selfRssMax, process.memoryUsage.rss());
  };

  return new Promise<PhaseResult>((resolve) => {
    let finished = false;
    let pumpTimer: NodeJS.Timeout | undefined;

    const fail = (r: Req, kind: string): void => {
      if (r.done) return;
      r.done = true;
      failed++;
      resolved++;
      errors[kind] = (errors[kind] ?? 0) + 1;
      lastDone = performance.now();
    };
    const succeed = (r: Req): void => {
      if (r.done) return;
      r.done = true;
      const now = performance.now();
      latency.recordValue(Math.max(1, Math.round((now - r.intended) * 1000)));
      service.recordValue(Math.max(1, Math.round((now - r.written) * 1000)));
      ok++;
      resolved++;
      lastDone = now;
    };
    const dequeue = (): Req | undefined => {
      while (qHead < queue.length) {
        const r = queue[qHead++]!;
        if (!r.done) return r;
      }
      return undefined;
    };
    const queued = (): number => queue.length - qHead;
    const handOut = (c: HttpConn, r: Req): void => {
      sent++;
      c.send(r);
    };

    const onReady = (c: HttpConn): void => {
      if (finished) { c.sock.destroy(); return; }
      const r = dequeue();
      if (r) handOut(c, r);
      else if (spec.mode === 'keepalive') idle.push(c);
      else c.sock.destroy();
    };
    const onResult = (c: HttpConn, r: Req, o: Outcome): void => {
      if (o.ok) succeed(r); else fail(r, o.kind);
      if (spec.mode === 'new-conn') {
        // The server closes first (Connection: close); answer its FIN, or give up after 1 s.
        if (!c.dead) setTimeout(() => c.sock.destroy(), 1000).unref();
      } else if (!c.dead && !c.closing && !c.sock.destroyed) {
        onReady(c);
      }
      maybeEnd();
    };
    const onGone = (c: HttpConn, connectErr: string | undefined): void => {
      conns.delete(c);
      const k = idle.indexOf(c);
      if (k >= 0) idle.splice(k, 1);
      // A connect that failed before carrying a request costs the oldest waiting request, so a
      // refusing server cannot make us reconnect without bound.
      if (connectErr) { const r = dequeue(); if (r) fail(r, connectErr); }
      if (!finished) fillPool();
      maybeEnd();
    };
    const open = (): void => {
      opened++;
      conns.add(new HttpConn(spec, request, spec.expectBodySize, onReady, onResult, onGone));
    };
    const fillPool = (): void => {
      // new-conn: one connection per waiting request; keepalive: as many as wait, up to the pool size.
      let want = queued();
      for (const c of conns) if (!c.connected) want--;
      while (want > 0 && conns.size < spec.conns) { open(); want--; }
    };
    const dispatch = (r: Req): void => {
      if (spec.mode === 'keepalive') {
        const c = idle.pop();
        if (c) { handOut(c, r); return; }
      }
      queue.push(r);
      fillPool();
    };

    const pump = (): void => {
      pumpTimer = undefined;
      if (finished) return;
      const now = performance.now();
      while (next < total && t0 + dueMs(next) <= now) {
        const intended = t0 + dueMs(next);
        sendLag.recordValue(Math.max(1, Math.round((now - intended) * 1000)));
        dispatch({ i: next, intended, written: 0, done: false });
        next++;
      }
      if (next < total) pumpTimer = setTimeout(pump, Math.max(0, t0 + dueMs(next) - performance.now()));
      if (queue.length > 4096 && qHead > queue.length / 2) { queue.splice(0, qHead); qHead = 0; }
    };

    const sweeper = setInterval(() => {
      const now = performance.now();
      for (let k = qHead; k < queue.length; k++) {
        const r = queue[k]!;
        if (now - r.intended < spec.timeoutMs) break; // FIFO: the rest are younger
        fail(r, 'timeout');
      }
      for (const c of conns) if (c.current && now - c.current.intended >= spec.timeoutMs) c.kill('timeout');
      if (now >= deadline) finish();
      maybeEnd();
    }, 50);
    const rssTimer = setInterval(sampleRss, 250);

    function maybeEnd(): void {
      if (!finished && next >= total && resolved >= total) finish();
    }

    function finish(): void {
      if (finished) return;
      finished = true;
      const end = performance.now();
      // Samples at the end, before tearing anything down.
      const selfCpu = process.cpuUsage(selfCpu0);
      const machine1 = readMachineCpu();
      sampleRss();
      const processes: ProcessSample[] = spec.watchPids.map((w, k) => {
        const a = proc0[k];
        const b = readProcCpu(w.pid, spec.clkTck);
        const same = !!a && !!b && a.startTime === b.startTime;
        const rssEnd = readRssBytes(w.pid);
        const sleeps = readVoluntarySwitches(w.pid);
        const s0 = sleeps0[k];
        return {
          name: w.name, pid: w.pid, alive: same,
          cpuSeconds: same ? round6(b!.cpuSeconds - a!.cpuSeconds) : null,
          rssStartBytes: rssStart[k] ?? null, rssEndBytes: rssEnd ?? null, rssMaxBytes: same ? rssMax[k]! : null,
          sleeps: same && sleeps !== undefined && s0 !== undefined ? sleeps - s0 : null,
        };
      });
      const cgroups = spec.watchCgroups.map((c, k) => {
        const b = readCgroupCpuSeconds(c.dir);
        const a = cg0[k];
        return { name: c.name, cpuSeconds: a !== undefined && b !== undefined ? round6(b - a) : null };
      });
      clearInterval(sweeper);
      clearInterval(rssTimer);
      if (pumpTimer) clearTimeout(pumpTimer);
      // Whatever was never sent or never answered by the deadline is an error, not a gap.
      const unsent = total - next;
      if (unsent > 0) { errors.unsent = (errors.unsent ?? 0) + unsent; failed += unsent; resolved += unsent; }
      for (let k = qHead; k < queue.length; k++) fail(queue[k]!, 'unfinished');
      for (const c of conns) { if (c.current) fail(c.current, 'unfinished'); c.current = undefined; c.sock.destroy(); }
      const elapsed = (Math.max(lastDone || end, t0 + dueMs(Math.max(0, total - 1))) - t0) / 1000;
      const wall = (end - t0) / 1000;
      resolve({
        mode: spec.mode, rate: spec.rate, conns: spec.conns, bodySize: spec.bodySize, expectBodySize: spec.expectBodySize,
        startedAt, scheduled: total, scheduledSeconds: round6(total / spec.rate), elapsedSeconds: round6(elapsed),
        sent, ok, errors, errorCount: failed, offeredRate: spec.rate,
        achievedRate: elapsed > 0 ? round6(ok / elapsed) : 0,
        connectionsOpened: opened,
        latencyUs: summarize(latency), serviceUs: summarize(service), sendLagUs: summarize(sendLag),
        loadgen: { pid: process.pid, cpuSeconds: round6((selfCpu.user + selfCpu.system) / 1e6), rssMaxBytes: selfRssMax },
        processes, cgroups,
        machine: {
          cores,
          busyShare: machine0 && machine1 && machine1.total > machine0.total ? round6((machine1.busy - machine0.busy) / (machine1.total - machine0.total)) : null,
        },
        wallSeconds: round6(wall),
      });
    }

    pumpTimer = setTimeout(pump, Math.max(0, t0 - performance.now()));
  });
}

const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;

export async function main(argv: string[]): Promise<number> {
  if (argv.length !== 1) {
    process.stderr.write('usage: l4-loadgen.js \'<spec json | [spec json, ...]>\' (run by the benches inside a client pod)\n');
    return 2;
  }
  // One spec, or several run one after the other (one process start per pod and mode: the
  // phases of a short bench are not dominated by `local exec` and Node start-up).
  const raw = JSON.parse(argv[0]!) as unknown;
  const specs = (Array.isArray(raw) ? raw : [raw]).map((x) => validateSpec({ clkTck: DEFAULT_CLK_TCK, ...(x as object) }));
  if (specs.length === 0 || specs.length > 32) throw new Error('give 1 to 32 specs');
  const os = await import('node:os');
  for (const spec of specs) {
    const r = await runPhase(spec, os.availableParallelism());
    process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(r)}\n`);
  }
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: Error) => { process.stderr.write(`l4-loadgen: ${e.message}\n`); process.exitCode = 1; });
}
