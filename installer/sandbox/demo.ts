// `nodemesh local demo`: the running sandbox at work, for `make demo`. Shows the status, sends
// a short, bounded burst of requests from the shop's load pod through web -> api -> db, and
// prints what each node daemon reports about its pods. Everything happens inside the
// sandbox's namespaces; the CLI only reads the daemons' admin sockets.
import { exec, status, type Output } from './cluster';
import { formatStatus } from './status-format';
import { formatConnections, gatherConnections } from './connections';
import { formatMeshStatus, gatherMeshStatus } from './mesh-status';

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
  if (denied.length > 0) {
    out.result('\ndenied:');
    for (const { node, c } of denied.slice(-4)) out.result(`  ${node} ${c.direction} ${c.sourceIdentity ?? c.source.address} -> ${c.originalDestination.address}: ${c.reason}`);
  }
}
