// `nodemesh local demo`: the running sandbox at work, for `make demo`. Shows the status, sends
// a short, bounded burst of requests from the shop's load pod through web -> api -> db, shows
// the shop's waypoint splitting api 90/10 between v1 and v2 and refusing /admin (L7), and
// prints what each node daemon reports about its pods. Everything happens inside the
// sandbox's namespaces; the CLI only reads the daemons' admin sockets and the waypoint's log.
// The waypoint parts check what they show: a split far from 90/10, failed requests or a
// missing deny end the demo with exit status 1.
import * as fs from 'node:fs';
import { exec, status, type Output } from './cluster';
import { formatStatus } from './status-format';
import { formatConnections, gatherConnections } from './connections';
import { formatMeshStatus, gatherMeshStatus } from './mesh-status';
import { formatWaypoints, listWaypoints } from './waypoints';
import { layout, readCluster, stateDir } from './state';

/** Requests the split is counted over, and how many of them may fail (an upstream reset the
 * waypoint could not retry) before the demo calls it broken. */
const SPLIT_REQUESTS = 200;
const SPLIT_MAX_FAILED = 2;

/** Run in the load pod: SPLIT_REQUESTS GETs (8 at a time, keep-alive, bounded to 60 s), a line
 * per version with its share, the failures with the waypoint's reason; exit 0 when v2's share
 * is within 4 standard deviations of 10% (Binomial(200, 0.1): 20 +- 4.2, so 4 to 36; a
 * correct split misses that about once in 16,000 runs) and few failed. */
export function splitScript(url: string, n = SPLIT_REQUESTS): string {
  return `
const http = require('http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
const seen = {}; const failed = []; let next = 0; let done = 0;
const end = () => {
  for (const [v, c] of Object.entries(seen).sort()) console.log('  api ' + v + ' ' + String(c).padStart(4) + '  ' + (100 * c / ${n}).toFixed(1).padStart(5) + '%  ' + '#'.repeat(Math.round(50 * c / ${n})));
  if (failed.length) console.log('  failed ' + failed.length + ': ' + failed.slice(0, 3).join('; '));
  const ok = Object.values(seen).reduce((a, b) => a + b, 0);
  const v2 = seen.v2 || 0;
  process.exit(ok + failed.length === ${n} && failed.length <= ${SPLIT_MAX_FAILED} && v2 >= 0.1 * ${n} - 4 * Math.sqrt(${n} * 0.09) && v2 <= 0.1 * ${n} + 4 * Math.sqrt(${n} * 0.09) ? 0 : 1);
};
setTimeout(() => { failed.push('not finished in 60 s'); end(); }, 60000);
const one = () => {
  if (next >= ${n}) return;
  next++;
  http.get(${JSON.stringify(url)}, { agent, timeout: 10000 }, (res) => {
    let b = ''; res.setEncoding('utf8'); res.on('data', (d) => { b += d; });
    res.on('end', () => {
      let v; try { v = JSON.parse(b).version; } catch {}
      if (res.statusCode === 200 && typeof v === 'string') seen[v] = (seen[v] || 0) + 1;
      else failed.push(res.statusCode + ' ' + String(res.headers['nodemesh-reason'] || '').slice(0, 120));
      fin();
    });
  }).on('timeout', function () { this.destroy(new Error('timeout')); }).on('error', (e) => { failed.push(e.code || e.message); fin(); });
};
const fin = () => { if (++done === ${n}) end(); else one(); };
for (let i = 0; i < 8; i++) one();`;
}

/** The waypoint's access-log line for a refused request, once it is flushed (bounded wait). */
async function refusalLogLine(logFile: string, path: string): Promise<Record<string, unknown> | undefined> {
  for (let i = 0; i < 25; i++) {
    let text = '';
    try { text = fs.readFileSync(logFile, 'utf8'); } catch { /* not yet */ }
    const line = text.split('\n').filter((l) => l.includes('"status":403') && l.includes(path)).pop();
    if (line) { try { return JSON.parse(line) as Record<string, unknown>; } catch { return undefined; } }
    await new Promise((r) => setTimeout(r, 200));
  }
  return undefined;
}

export async function demo(out: Output): Promise<void> {
  const s = await status();
  out.result(formatStatus(s));
  const load = s.pods.find((p) => p.namespace === 'shop' && p.name === 'load');
  const web = s.services.find((v) => v.namespace === 'shop' && v.name === 'web');
  if (!load || !web) {
    out.info("the shop example is not applied; run 'nodemesh local apply -f installer/examples/shop' first");
    return;
  }
  out.result(`\n$ nodemesh local exec shop/load -- nodemesh-sample-app load --url http://${web.clusterIP}:${web.ports[0]!.port}/ --rps 5 --duration 3 --max-requests 15 --show 1`);
  const code = await exec('shop/load', ['nodemesh-sample-app', 'load', '--url', `http://${web.clusterIP}:${web.ports[0]!.port}/`,
    '--rps', '5', '--duration', '3', '--max-requests', '15', '--show', '1']);
  if (code !== 0) out.info(`the load run exited with status ${code}`);
  await waypointPart(s, out);
  const db = s.services.find((v) => v.namespace === 'shop' && v.name === 'db');
  if (db) {
    const probe = `const s=require('net').connect(${db.ports[0]!.port},'${db.clusterIP}');let got='';` +
      `s.on('data',d=>{got+=d;s.end()});s.on('close',()=>{console.log(got?'answered: '+got.trim():'refused: the connection was closed without an answer');process.exit(0)});` +
      `s.on('error',e=>{console.log('refused: '+e.code);process.exit(0)});setTimeout(()=>{console.log('no answer');process.exit(0)},5000)`;
    out.result(`\n$ nodemesh local exec shop/load -- node -e "<connect to db ${db.clusterIP}:${db.ports[0]!.port}>"   # policy db-only-from-api: only shop/sa/api may call db`);
    await exec('shop/load', ['node', '-e', probe]);
  }
  out.result('\nthe mesh (nodemesh status):');
  out.result(formatMeshStatus(await gatherMeshStatus()));
  out.result('\nconnections the node daemons handled (nodemesh connections): every hop between pods is an mTLS HBONE tunnel or the same-node path, with both identities');
  const all = await gatherConnections();
  out.result(formatConnections(all, 8));
  const denied = all.flatMap((n) => n.connections.filter((c) => c.verdict === 'deny').map((c) => ({ node: n.node, c })));
  // The load pod starts calling web before the shop's waypoint runs (waypoints start after the
  // pods of an apply): those calls to api are refused, since a Service that uses a waypoint
  // fails closed without it. Counted apart, so the policy denials stay in view.
  const beforeWaypoint = denied.filter(({ c }) => c.cause === 'no-waypoint');
  const byPolicy = denied.filter(({ c }) => c.cause !== 'no-waypoint');
  if (byPolicy.length > 0) {
    out.result('\ndenied:');
    for (const { node, c } of byPolicy.slice(-4)) out.result(`  ${node} ${c.direction} ${c.sourceIdentity ?? c.source.address} -> ${c.originalDestination.address}: ${c.reason}`);
  }
  if (beforeWaypoint.length > 0) {
    out.result(`\n${beforeWaypoint.length} connection(s) to a Service whose waypoint was not running yet were refused (no-waypoint: a Service that uses a waypoint fails closed without it)`);
  }
}

/** The shop's waypoint: its routes, a 90/10 split counted live, and an L7 deny. */
async function waypointPart(s: Awaited<ReturnType<typeof status>>, out: Output): Promise<void> {
  const api = s.services.find((v) => v.namespace === 'shop' && v.name === 'api');
  const c = readCluster(layout(stateDir()));
  const waypoints = c ? listWaypoints(c, layout(stateDir())).filter((w) => w.namespace === 'shop') : [];
  if (!api || waypoints.length === 0) {
    out.info("the shop has no waypoint; apply installer/examples/shop (waypoint.yaml) to see the split and the L7 deny");
    return;
  }
  const base = `http://${api.clusterIP}:${api.ports[0]!.port}`;
  const failures: string[] = [];
  out.result('\nthe shop\'s waypoint (nodemesh waypoint list): the api Service goes through it');
  out.result(formatWaypoints(waypoints));

  out.result(`\n$ nodemesh local exec shop/load -- node -e "<${SPLIT_REQUESTS} GETs to ${base}/, count the versions>"   # HTTPRoute api-split: api-v1 90, api-v2 10`);
  if (await exec('shop/load', ['node', '-e', splitScript(`${base}/`)]) !== 0) failures.push(`the ${SPLIT_REQUESTS} requests did not split 90/10 between v1 and v2 (see the counts above)`);

  out.result(`\n$ nodemesh local exec shop/load -- curl -sS -i --fail-with-body ${base}/admin/users   # AuthorizationPolicy api-no-admin (L7, in the waypoint)`);
  const curl = await exec('shop/load', ['curl', '-sS', '-i', '--max-time', '10', '--fail-with-body', `${base}/admin/users`]);
  // curl's 22: the server answered with an error status (the deny); 0 would be a 2xx.
  if (curl !== 22) failures.push(`GET /admin/users was not refused (curl exit status ${curl})`);
  const wp = s.pods.find((p) => p.namespace === 'shop' && p.name === `${waypoints[0]!.name}-waypoint`);
  const line = wp ? await refusalLogLine(wp.log, '/admin/users') : undefined;
  if (line) out.result(`the waypoint's access log: ${line.caller} -> ${line.method} ${line.path}: ${line.status} (${line.reason})`);

  if (failures.length > 0) {
    for (const f of failures) out.info(`demo: ${f}`);
    process.exitCode = 1;
  }
}
