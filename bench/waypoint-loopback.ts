// The waypoint alone on loopback (waypoint/waypoint-test-kit.ts: real mTLS HBONE in and out,
// real HTTP apps behind real HBONE destinations, one process): N callers, each on its own kept
// tunnel (or a fresh tunnel per request with --fresh), M sequential GETs each. Reports the
// answers (non-200 counted by reason), req/s, and the process's CPU per 1,000 requests (caller,
// waypoint, destinations and apps together: an A/B number, not the waypoint's alone). Profile it
// with `node --cpu-prof --cpu-prof-dir=DIR dist/bench/waypoint-loopback.js`.
//
//   node dist/bench/waypoint-loopback.js [--callers 8] [--requests 2500] [--fresh]
import * as http from 'node:http';
import type * as net from 'node:net';
import { API_VIP, startWaypointRig, type WaypointRig } from '../waypoint/waypoint-test-kit';

export interface LoopbackArgs { callers: number; requests: number; fresh: boolean }

export function parseLoopbackArgs(argv: string[]): LoopbackArgs {
  const a: LoopbackArgs = { callers: 8, requests: 2500, fresh: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    if (k === '--fresh') { a.fresh = true; continue; }
    const v = Number(argv[++i]);
    const bound = k === '--callers' ? 256 : k === '--requests' ? 100_000 : 0;
    if (!bound) throw new Error(`unknown option ${k}; options: --callers N, --requests N, --fresh`);
    if (!Number.isInteger(v) || v < 1 || v > bound) throw new Error(`${k} must be an integer from 1 to ${bound} (got ${argv[i]})`);
    if (k === '--callers') a.callers = v; else a.requests = v;
  }
  return a;
}

type Answer = { status: number; reason?: string };

function getOn(agent: http.Agent): Promise<Answer> {
  return new Promise((resolve) => {
    const req = http.request({ agent, method: 'GET', path: '/bench', headers: { host: 'api.shop' }, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, reason: res.headers['nodemesh-reason'] as string | undefined }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', (e) => resolve({ status: 0, reason: e.message }));
    req.end();
  });
}

async function caller(rig: WaypointRig, a: LoopbackArgs, out: Answer[]): Promise<void> {
  if (a.fresh) {
    for (let i = 0; i < a.requests; i++) {
      const r = await rig.get('/bench').then((x) => ({ status: x.status, reason: x.headers['nodemesh-reason'] as string | undefined }), (e: Error) => ({ status: 0, reason: e.message }));
      out.push(r);
    }
    return;
  }
  const sock = await rig.tunnel(API_VIP, 80);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  (agent as unknown as { createConnection: () => net.Socket }).createConnection = () => sock as unknown as net.Socket;
  for (let i = 0; i < a.requests; i++) out.push(await getOn(agent));
  agent.destroy();
}

export async function runLoopback(a: LoopbackArgs): Promise<Record<string, unknown>> {
  const rig = await startWaypointRig();
  try {
    const answers: Answer[] = [];
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await Promise.all(Array.from({ length: a.callers }, () => caller(rig, a, answers)));
    const wallS = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const bad: Record<string, number> = {};
    for (const r of answers) if (r.status !== 200) { const k = `${r.status} ${(r.reason ?? '').slice(0, 200)}`; bad[k] = (bad[k] ?? 0) + 1; }
    return {
      callers: a.callers, requestsPerCaller: a.requests, freshTunnelPerRequest: a.fresh, total: answers.length,
      ok: answers.filter((r) => r.status === 200).length, notOk: bad, wallSeconds: Math.round(wallS * 1000) / 1000,
      requestsPerSecond: Math.round(answers.length / wallS), processCpuMsPer1k: Math.round(((cpu.user + cpu.system) / answers.length) * 10) / 10,
      upstream: rig.upstream(),
    };
  } finally {
    await rig.stop();
  }
}

if (require.main === module) {
  (async () => {
    const r = await runLoopback(parseLoopbackArgs(process.argv.slice(2)));
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  })().catch((e: Error) => { process.stderr.write(`waypoint-loopback: ${e.message}\n`); process.exitCode = 1; });
}
