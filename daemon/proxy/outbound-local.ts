// Outbound branch: the destination pod is enrolled on this same node, so both ends are this
// daemon. No TLS (there is no wire); the same checks as the destination's HBONE server makes,
// then plain TCP into the destination pod's namespace from 127.0.0.6. Policy changes can
// close it later (open-inbound.ts).
import type { Decision } from '../routing/decide';
import { appConnection } from '../redirection/datapath';
import { inboundVerdict } from '../policy/inbound';
import { formatAuthority } from '../tunnel/authority';
import { CONNECT_TIMEOUT_MS, type OutboundCall, type Outcome } from './outbound';
import { pipeBoth } from './pipe';
import { whenConnected } from './connect';

export async function viaLocal(c: OutboundCall, d: Extract<Decision, { kind: 'local' }>): Promise<Outcome> {
  const { deps, client } = c;
  const dest = deps.localPod(d.destination.uid);
  if (!dest) throw Object.assign(new Error(`destination pod ${d.destination.namespace}/${d.destination.name} is not enrolled on this node yet`), { code: 'ECONNREFUSED' });
  const subject = { principal: c.rec.sourceIdentity, ip: c.pod.workload.ips[0] ?? '' };
  const v = inboundVerdict(c.snapshot, d.destination, subject, d.authority.port);
  if (!v.allow) return { verdict: 'deny', cause: v.reason, reason: `${v.reason}: ${v.message}` };
  const where = formatAuthority(d.authority.address, d.authority.port);
  const app = await whenConnected(deps.sockets.connect(dest.netnsPath, { ...appConnection(d.authority.address), host: d.authority.address, port: d.authority.port }), CONNECT_TIMEOUT_MS, where);
  c.rec.upstream = where;
  c.rec.path = 'local';
  let closedBy: string | undefined;
  const forget = deps.openInbound.add({
    destinationUid: d.destination.uid, subject, port: d.authority.port,
    close: (why) => { closedBy = why; client.destroy(); app.destroy(); },
  });
  client.resume();
  const r = await pipeBoth(client, app);
  forget();
  return closedBy ? { verdict: 'deny', cause: 'closed-by-policy', reason: `closed: ${closedBy}` } : { verdict: 'allow', cause: 'same-node', reason: 'same node', error: r.error };
}
