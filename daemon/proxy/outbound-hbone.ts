// Outbound branch: an HTTP/2 CONNECT stream over mutual TLS to the destination pod's HBONE
// port on another node, with the source pod's certificate (pooled sessions: tunnel/).
import type { Decision } from '../routing/decide';
import { spiffeIdOf } from '../routing/decide';
import { formatAuthority } from '../tunnel/authority';
import { spliceStreamSocket } from '../tunnel/splice';
import { withTimeout } from './connect';
import type { OutboundCall, Outcome } from './outbound';

const IDENTITY_WAIT_MS = 5_000;

export async function viaHbone(c: OutboundCall, d: Extract<Decision, { kind: 'hbone' }>): Promise<Outcome> {
  const { deps, pod, client } = c;
  const w = pod.workload;
  if (!deps.identities || !deps.hbone) {
    return { verdict: 'deny', cause: 'no-identity', reason: 'no-identity: this node has no identity service configured, so meshed destinations are refused (fail closed)' };
  }
  const src = deps.identities.get(w.namespace, w.serviceAccount) ??
    await withTimeout(deps.identities.whenReady(w.namespace, w.serviceAccount), IDENTITY_WAIT_MS, `certificate for ${spiffeIdOf(deps.trustDomain, w)}`);
  const authority = formatAuthority(d.authority.address, d.authority.port);
  const t = d.target;
  const stream = await deps.hbone.connect({
    source: src, target: t, authority, expectedServerIds: d.expectedServerIds,
    headers: { forwarded: `for="${c.rec.source.address}"` },
    dial: () => deps.sockets.connect(pod.netnsPath, { family: t.family, host: t.address, port: t.port }),
  });
  c.rec.upstream = `${formatAuthority(t.address, t.port)} (HBONE)`;
  c.rec.path = 'hbone';
  client.resume();
  const r = await spliceStreamSocket(stream, client, authority, deps.cleanEnds);
  return { verdict: 'allow', cause: 'allowed', reason: 'mTLS tunnel', error: r.error };
}
