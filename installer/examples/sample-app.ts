// nodemesh-sample-app: one small program for the sandbox's example workloads.
//
//   http      serves JSON {pod, namespace, version, localAddress, remoteAddress, path, upstream?};
//             with --upstream URL it calls that URL on every request and nests the answer
//             (http://... for HTTP, tcp://host:port for a tcp-echo server)
//   tcp-echo  on connect writes `hello from <pod> <local>:<port> to <remote>:<port>`, then echoes
//   load      a bounded HTTP client (--url --rps --duration --max-requests), prints a summary
//
// Pod identity comes from the environment the sandbox sets (NODEMESH_POD_NAME,
// NODEMESH_POD_NAMESPACE), falling back to the host name.
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import pino from 'pino';

const POD = process.env.NODEMESH_POD_NAME || os.hostname();
const NAMESPACE = process.env.NODEMESH_POD_NAMESPACE || 'default';
const UPSTREAM_TIMEOUT_MS = 5000;

const log = pino({ base: { pod: POD, namespace: NAMESPACE }, level: process.env.LOG_LEVEL || 'info', timestamp: pino.stdTimeFunctions.isoTime });

function intOption(min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`expected a number from ${min} to ${max}`);
    return n;
  };
}

const bare = (a: string | undefined): string => (a ?? '').replace(/^::ffff:/, '');

// --- upstream calls ------------------------------------------------------------------------

function httpGetJson(url: string, timeoutMs: number): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try { body = JSON.parse(text); } catch { /* not JSON: keep the text */ }
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within ${timeoutMs}ms`)));
    req.on('error', reject);
  });
}

/** Talks to a tcp-echo server: reads its hello line, sends one line, reads the echo. */
function tcpExchange(url: URL, timeoutMs: number): Promise<{ hello: string; echo: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: url.hostname, port: Number(url.port) });
    const timer = setTimeout(() => s.destroy(new Error(`no answer from ${url.href} within ${timeoutMs}ms`)), timeoutMs);
    const sent = `ping from ${POD}`;
    let buf = '';
    let hello: string | undefined;
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (hello === undefined) {
          hello = line;
          s.write(`${sent}\n`);
        } else {
          clearTimeout(timer);
          s.end();
          resolve({ hello, echo: line });
          return;
        }
      }
    });
    s.on('error', (e) => { clearTimeout(timer); reject(e); });
    s.on('close', () => { clearTimeout(timer); reject(new Error(`${url.href} closed the connection early`)); });
  });
}

async function callUpstream(upstream: string): Promise<unknown> {
  const url = new URL(upstream);
  if (url.protocol === 'tcp:') return tcpExchange(url, UPSTREAM_TIMEOUT_MS);
  const r = await httpGetJson(upstream, UPSTREAM_TIMEOUT_MS);
  return r.status === 200 ? r.body : { status: r.status, body: r.body };
}

// --- modes -----------------------------------------------------------------------------------

export function serveHttp(o: { port: number; host: string; version: string; upstream?: string }): http.Server {
  const server = http.createServer(async (req, res) => {
    const answer: Record<string, unknown> = {
      pod: POD, namespace: NAMESPACE, version: o.version,
      localAddress: `${bare(req.socket.localAddress)}:${req.socket.localPort}`,
      remoteAddress: `${bare(req.socket.remoteAddress)}:${req.socket.remotePort}`,
      path: req.url ?? '/',
    };
    let status = 200;
    if (o.upstream) {
      try {
        answer.upstream = await callUpstream(o.upstream);
      } catch (e) {
        status = 502;
        answer.upstream = { url: o.upstream, error: (e as Error).message };
        log.warn({ upstream: o.upstream, err: (e as Error).message }, 'upstream call failed');
      }
    }
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(`${JSON.stringify(answer)}\n`);
  });
  server.keepAliveTimeout = 5000;
  server.listen(o.port, o.host, () => log.info({ port: o.port, version: o.version, upstream: o.upstream }, 'http listening'));
  return server;
}

export function serveTcpEcho(o: { port: number; host: string }): net.Server {
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    log.info({ local: `${bare(s.localAddress)}:${s.localPort}`, remote: `${bare(s.remoteAddress)}:${s.remotePort}` }, 'tcp-echo connection');
    s.write(`hello from ${POD} ${bare(s.localAddress)}:${s.localPort} to ${bare(s.remoteAddress)}:${s.remotePort}\n`);
    s.pipe(s);
  });
  server.listen(o.port, o.host, () => log.info({ port: o.port }, 'tcp-echo listening'));
  return server;
}

/** Stop on SIGTERM/SIGINT (what a pod deletion or ^C sends). */
function stopOnSignals(server: net.Server): void {
  const stop = (): void => { server.close(); setTimeout(() => process.exit(0), 200).unref(); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

export interface LoadOptions { url: string; rps: number; duration: number; maxRequests: number; concurrency: number; show: number }

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** A bounded client: at most maxRequests requests, for at most `duration` seconds, at most
 * `rps` per second and `concurrency` in flight. */
export async function runLoad(o: LoadOptions, write: (s: string) => void = (t) => process.stdout.write(t)): Promise<number> {
  const started = Date.now();
  const deadline = started + o.duration * 1000;
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const versions: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const samples: unknown[] = [];
  let sent = 0;
  let inFlight = 0;
  const one = async (): Promise<void> => {
    const t0 = process.hrtime.bigint();
    try {
      const r = await httpGetJson(o.url, 5000);
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      const v = (r.body as { version?: unknown } | undefined)?.version;
      if (typeof v === 'string') versions[v] = (versions[v] ?? 0) + 1;
      if (samples.length < o.show) samples.push(r.body);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      errors[code] = (errors[code] ?? 0) + 1;
    }
  };
  const pending = new Set<Promise<void>>();
  const interval = 1000 / o.rps;
  while (sent < o.maxRequests && Date.now() < deadline) {
    const due = started + sent * interval;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, Math.min(wait, deadline - Date.now())));
    if (Date.now() >= deadline) break;
    if (inFlight >= o.concurrency) {
      await Promise.race(pending);
      continue;
    }
    sent++;
    inFlight++;
    const p = one().finally(() => { inFlight--; pending.delete(p); });
    pending.add(p);
  }
  await Promise.all(pending);
  latencies.sort((a, b) => a - b);
  const ok = statuses['200'] ?? 0;
  const summary = {
    url: o.url, requests: sent, ok, failed: sent - ok,
    seconds: Math.round((Date.now() - started) / 100) / 10,
    statuses, errors, versions,
    latencyMs: {
      p50: round(percentile(latencies, 50)), p90: round(percentile(latencies, 90)),
      p99: round(percentile(latencies, 99)), max: round(latencies[latencies.length - 1] ?? 0),
    },
    ...(samples.length ? { samples } : {}),
  };
  write(`${JSON.stringify(summary, null, 2)}\n`);
  return sent > 0 && ok === sent ? 0 : 1;
}

const round = (n: number): number => Math.round(n * 100) / 100;

export function buildProgram(): Command {
  const program = new Command('nodemesh-sample-app').description('example workload for the nodemesh sandbox').showHelpAfterError();
  program.command('http')
    .description('serve JSON describing this pod and the connection')
    .option('--port <port>', 'listen port', intOption(1, 65535), 8080)
    .option('--host <address>', 'listen address', '0.0.0.0')
    .option('--version <version>', 'version reported in answers', process.env.APP_VERSION || 'v1')
    .option('--upstream <url>', 'call this URL per request (http://... or tcp://host:port) and nest its answer')
    .action((o: { port: number; host: string; version: string; upstream?: string }) => stopOnSignals(serveHttp(o)));
  program.command('tcp-echo')
    .description('greet each connection with one line, then echo')
    .option('--port <port>', 'listen port', intOption(1, 65535), 9000)
    .option('--host <address>', 'listen address', '0.0.0.0')
    .action((o: { port: number; host: string }) => stopOnSignals(serveTcpEcho(o)));
  program.command('load')
    .description('send a bounded number of HTTP GETs and print a summary')
    .requiredOption('--url <url>', 'URL to GET')
    .option('--rps <n>', 'requests per second', intOption(0.1, 1000), 10)
    .option('--duration <seconds>', 'stop after this many seconds', intOption(0.1, 3600), 10)
    .option('--max-requests <n>', 'stop after this many requests', intOption(1, 100_000), 1000)
    .option('--concurrency <n>', 'requests in flight at most', intOption(1, 256), 16)
    .option('--show <n>', 'include the first n answers in the summary', intOption(0, 100), 0)
    .action(async (o: LoadOptions) => { process.exitCode = await runLoad(o); });
  return program;
}

export function main(argv: string[] = process.argv): void {
  buildProgram().parseAsync(argv).catch((e: Error) => {
    process.stderr.write(`error: ${e.message}\n`);
    process.exitCode = 1;
  });
}

if (require.main === module) main();
