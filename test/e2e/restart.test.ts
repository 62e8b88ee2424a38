// Issue 7.5 on the real kernel in the sandbox: restarting node daemons under continuous load
// (new connections at a steady rate and long-lived streams between two nodes) fails no new
// connection; long-lived streams survive or end cleanly (FIN, never a reset) after the drain
// deadline, counted.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { CLI, REPO, down, leftovers, nodemeshOk, requireSandboxPrerequisites, status } from './helpers/sandbox';

const MANIFEST = `
apiVersion: v1
kind: Namespace
metadata: { name: mesh, labels: { nodemesh.io/dataplane-mode: ambient } }
---
apiVersion: v1
kind: Pod
metadata: { name: load, namespace: mesh }
spec: { nodeName: node-1, serviceAccountName: load, containers: [{ name: c, command: [sleep, "3600"] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: echo, namespace: mesh }
spec: { nodeName: node-2, serviceAccountName: echo, containers: [{ name: c, command: [nodemesh-sample-app, tcp-echo, --port, "9000"] }] }
`;

const DRAIN_SECONDS = 3;
const LOAD = { rate: 200, streams: 50, durationMs: 30_000, connectTimeoutMs: 5000 };

/** Runs inside the load pod: `rate` new connections per second (greeting, one echo, close)
 * and `streams` long-lived ones (an echo every 200 ms) for durationMs; prints a JSON summary
 * with every failure's code. Bounded: at most rate * duration connections, 200 in flight. */
const LOAD_JS = `
const net = require('net');
const a = JSON.parse(process.argv[1]);
const t0 = Date.now();
const r = { started: 0, ok: 0, failed: 0, failures: {}, skippedInFlight: 0, streams: { survived: 0, endedFin: 0, endedError: 0, errors: {}, endedAtMs: [] } };
const fail = (code) => { r.failed++; r.failures[code] = (r.failures[code] || 0) + 1; };
function once(host, port) {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    let buf = ''; let stage = 0; let done = false;
    const end = (err) => { if (done) return; done = true; clearTimeout(t); s.destroy(); if (err) fail(err); else r.ok++; resolve(); };
    const t = setTimeout(() => end('TIMEOUT'), a.connectTimeoutMs);
    s.setEncoding('utf8');
    s.on('data', (d) => {
      buf += d;
      if (stage === 0 && buf.includes('\\n')) { stage = 1; buf = ''; s.write('ping\\n'); }
      else if (stage === 1 && buf.includes('\\n')) end(buf.trim() === 'ping' ? undefined : 'BAD_ECHO');
    });
    s.on('error', (e) => end(e.code || 'ERROR'));
    s.on('close', () => end(stage === 1 ? 'CLOSED_BEFORE_ECHO' : 'CLOSED_BEFORE_GREETING'));
  });
}
function stream(host, port) {
  const s = net.connect(port, host);
  const st = { open: true, timer: undefined };
  s.setEncoding('utf8');
  s.on('connect', () => { st.timer = setInterval(() => s.write('tick\\n'), 200); });
  s.on('data', () => {});
  const finish = (how, code) => {
    if (!st.open) return; st.open = false; clearInterval(st.timer);
    if (how === 'fin') r.streams.endedFin++; else { r.streams.endedError++; r.streams.errors[code] = (r.streams.errors[code] || 0) + 1; }
    r.streams.endedAtMs.push(Date.now() - t0);
  };
  s.on('error', (e) => finish('error', e.code || 'ERROR'));
  s.on('end', () => finish('fin'));
  s.on('close', () => finish('fin'));
  return { s, st };
}
const streams = [];
for (let i = 0; i < a.streams; i++) streams.push(stream(a.host, a.port));
let inFlight = 0;
const pending = [];
const tick = setInterval(() => {
  if (Date.now() - t0 >= a.durationMs) return;
  if (inFlight >= 200) { r.skippedInFlight++; return; }
  inFlight++; r.started++;
  pending.push(once(a.host, a.port).then(() => { inFlight--; }));
}, 1000 / a.rate);
setTimeout(async () => {
  clearInterval(tick);
  await Promise.all(pending);
  for (const { s, st } of streams) { if (st.open) { r.streams.survived++; st.open = false; clearInterval(st.timer); } s.destroy(); }
  console.log(JSON.stringify(r));
  process.exit(0);
}, a.durationMs);
`;

interface LoadSummary {
  started: number; ok: number; failed: number; failures: Record<string, number>; skippedInFlight: number;
  streams: { survived: number; endedFin: number; endedError: number; errors: Record<string, number>; endedAtMs: number[] };
}

function runCli(args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODEMESH_DRAIN_TIMEOUT_SECONDS: String(DRAIN_SECONDS) } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`nodemesh ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`)); }, timeoutMs);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code: code ?? 1, stdout, stderr }); });
  });
}

describe('hitless daemon restart under load', () => {
  before(async () => {
    requireSandboxPrerequisites();
    await down();
    await nodemeshOk(['local', 'up', '--nodes', '2', '-f', '-'], { input: MANIFEST, timeoutMs: 180_000, env: { NODEMESH_DRAIN_TIMEOUT_SECONDS: String(DRAIN_SECONDS) } });
  });
  after(async () => {
    await down();
    assert.deepEqual(leftovers(), []);
  });

  test('restarting node-1\'s daemon, then node-2\'s, fails no new connection', async (t) => {
    const st = await status();
    const echoIP = st.pods.find((p) => p.name === 'echo')!.ip;
    const pidsBefore = Object.fromEntries(st.nodes.map((n) => [n.name, n.daemon.pid]));
    const load = runCli(['local', 'exec', 'mesh/load', '--', 'node', '-e', LOAD_JS, JSON.stringify({ ...LOAD, host: echoIP, port: 9000 })], LOAD.durationMs + 60_000);
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 4000));
    const events: string[] = [];
    for (const node of ['node-1', 'node-2']) {
      const at = Date.now() - t0;
      const r = await runCli(['local', 'restart-daemon', node], 90_000);
      assert.equal(r.code, 0, `restart-daemon ${node}: ${r.stdout}${r.stderr}`);
      events.push(`${node} restart began at ${at} ms, done at ${Date.now() - t0} ms: ${r.stdout.trim()}`);
      await new Promise((res) => setTimeout(res, 3000));
    }
    const res = await load;
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const summary = JSON.parse(res.stdout.trim().split('\n').pop()!) as LoadSummary;
    const after = await status();
    for (const n of after.nodes) {
      assert.notEqual(n.daemon.pid, pidsBefore[n.name], `${n.name} runs a new daemon`);
      assert.ok(n.daemon.ready, `${n.name} is ready`);
    }
    const report = {
      newConnections: { started: summary.started, ok: summary.ok, failed: summary.failed, failures: summary.failures, skippedInFlight: summary.skippedInFlight },
      longLivedStreams: { total: LOAD.streams, survived: summary.streams.survived, endedWithFin: summary.streams.endedFin, endedWithError: summary.streams.endedError,
        errors: summary.streams.errors, endedAtMs: [Math.min(...summary.streams.endedAtMs), Math.max(...summary.streams.endedAtMs)] },
      events,
    };
    t.diagnostic(JSON.stringify(report));
    process.stderr.write(`restart under load: ${JSON.stringify(report)}\n`);
    assert.ok(summary.started >= 1000, `the load ran (${summary.started} new connections)`);
    assert.equal(summary.failed, 0, `no new connection failed: ${JSON.stringify(summary.failures)}`);
    assert.equal(summary.streams.survived + summary.streams.endedFin + summary.streams.endedError, LOAD.streams, 'every stream is accounted for');
    // A stream the drain deadline ends is closed cleanly for the app: FIN, not ECONNRESET.
    assert.equal(summary.streams.endedError, 0, `long-lived streams ended with an error: ${JSON.stringify(summary.streams.errors)} (survived ${summary.streams.survived}, ended cleanly ${summary.streams.endedFin})`);
    // A stream that ended did so no earlier than the first restart's drain deadline.
    for (const at of summary.streams.endedAtMs) assert.ok(at >= 4000 + DRAIN_SECONDS * 1000 - 500, `a stream ended at ${at} ms, before the drain deadline`);
  });
});
