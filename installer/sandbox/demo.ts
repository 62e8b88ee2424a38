// `nodemesh local demo`: the running sandbox at work, for `make demo`. Shows the status, sends
// a short, bounded burst of requests from the shop's load pod through web -> api -> db, and
// prints what each node daemon reports about its pods. Everything happens inside the
// sandbox's namespaces; the CLI only reads the daemons' admin sockets.
import { adminGetJson, type DaemonWorkloads } from './admin-client';
import { exec, status, type Output } from './cluster';
import { layout, readCluster, stateDir } from './state';
import { formatStatus } from './status-format';
import { formatConnections, gatherConnections } from './connections';

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
  out.result('\nwhat the node daemons report:');
  for (const n of readCluster(layout(stateDir()))?.nodes ?? []) {
    try {
      const w = await adminGetJson<DaemonWorkloads>(n.adminSocket, '/debug/workloads');
      for (const p of w.pods) out.result(`  ${n.name}: ${p.namespace}/${p.name} ${p.enrolled ? `enrolled (${p.enrolledBy ?? ''})` : 'not enrolled'}`);
      for (const f of w.failed ?? []) out.result(`  ${n.name}: ${f.namespace}/${f.name} FAILED: ${f.error}`);
    } catch (e) {
      out.result(`  ${n.name}: no answer (${(e as Error).message})`);
    }
  }
  out.result('\nconnections captured by the node daemons (nodemesh connections):');
  out.result(formatConnections(await gatherConnections(), 12));
}
