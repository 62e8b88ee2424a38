// Outbound branch: plain TCP from the source pod's namespace, for a destination outside the
// mesh (or a pod that is not enrolled).
import type { Decision } from '../routing/decide';
import { formatAuthority } from '../tunnel/authority';
import { CONNECT_TIMEOUT_MS, type OutboundCall, type Outcome } from './outbound';
import { pipeBoth } from './pipe';
import { whenConnected } from './connect';

export async function viaPassthrough(c: OutboundCall, d: Extract<Decision, { kind: 'passthrough' }>): Promise<Outcome> {
  const t = d.target;
  const where = formatAuthority(t.address, t.port);
  const up = await whenConnected(c.deps.sockets.connect(c.pod.netnsPath, { family: t.family, host: t.address, port: t.port }), CONNECT_TIMEOUT_MS, where);
  c.rec.upstream = where;
  c.rec.path = 'passthrough';
  c.client.resume();
  const r = await pipeBoth(c.client, up);
  return { verdict: 'allow', cause: 'passthrough', reason: d.reason, error: r.error };
}
