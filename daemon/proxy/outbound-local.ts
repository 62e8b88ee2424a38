// Outbound branch: the destination pod is enrolled on this same node, so both ends are this
// daemon. No TLS (there is no wire); the same checks as the destination's HBONE server makes,
// then plain TCP into the destination pod's namespace from 127.0.0.6. Policy changes can
// close it later (open-inbound.ts).
//
// Once connected, the kernel carries the bytes (daemon/redirection/splice*.ts): the two
// sockets go into a sockhash whose verdict program sends each one's bytes out of the other,
// and the daemon only passes half-closes on. Neither socket is read before that, so the
// kernel sees every byte in order. Only with NODEMESH_SAME_NODE_SPLICE=on (off by default:
// the kernel queue between the two sockets is unbounded, see daemon/redirection/splice.ts).
// Where the splice cannot be had (off, no eBPF datapath, the object failed to load, a socket
// already read from or half-closed) the bytes are relayed in user space as before; the
// record's path says which.
import type * as net from 'node:net';
import * as path from 'node:path';
import type { Decision } from '../routing/decide';
import { appConnection } from '../redirection/datapath';
import { inboundVerdict } from '../policy/inbound';
import { formatAuthority } from '../tunnel/authority';
import { CONNECT_TIMEOUT_MS, type OutboundCall, type Outcome, type ProxyDeps } from './outbound';
import { pipeBoth } from './pipe';
import { whenConnected } from './connect';
import { Splicer, spliceSetting } from '../redirection/splice';
import { holdReads, resumeReads, runSplice, unread } from '../redirection/splice-pipe';
import { loadNative, repoRoot } from '../../native/index';

export async function viaLocal(c: OutboundCall, d: Extract<Decision, { kind: 'local' }>): Promise<Outcome> {
  const { deps, client } = c;
  const dest = deps.localPod(d.destination.uid);
  if (!dest) throw Object.assign(new Error(`destination pod ${d.destination.namespace}/${d.destination.name} is not enrolled on this node yet`), { code: 'ECONNREFUSED' });
  const subject = { principal: c.rec.sourceIdentity, ip: c.pod.workload.ips[0] ?? '' };
  const v = inboundVerdict(c.snapshot, d.destination, subject, d.authority.port);
  if (!v.allow) return { verdict: 'deny', cause: v.reason, reason: `${v.reason}: ${v.message}` };
  const where = formatAuthority(d.authority.address, d.authority.port);
  const app = deps.sockets.connect(dest.netnsPath, { ...appConnection(d.authority.address), host: d.authority.address, port: d.authority.port });
  // Still the tick the client was accepted in (or a retry): nothing read yet unless a retry read it.
  const splicer = splicerFor(deps);
  if (splicer) { holdReads(client); holdReads(app); }
  await whenConnected(app, CONNECT_TIMEOUT_MS, where);
  c.rec.upstream = where;
  let closedBy: string | undefined;
  let destroyBoth = () => { client.destroy(); app.destroy(); };
  const forget = deps.openInbound.add({
    destinationUid: d.destination.uid, subject, port: d.authority.port,
    close: (why) => { closedBy = why; destroyBoth(); },
  });
  const spliced = splicer ? trySplice(deps, splicer, client, app) : undefined;
  if (spliced) {
    c.rec.path = 'local-splice';
    destroyBoth = spliced.destroy;
    const r = await spliced.done;
    forget();
    if (r.relayed > 0) fallback(deps, 'half-relayed');
    if (r.stalled > 0) fallback(deps, 'drain-stalled');
    const bytes = r.bytesKnown ? { sent: r.sent, received: r.received } : undefined;
    const how = r.bytesKnown ? 'spliced' : 'spliced; bytes unknown';
    return closedBy
      ? { verdict: 'deny', cause: 'closed-by-policy', reason: `closed: ${closedBy}`, bytes }
      : { verdict: 'allow', cause: 'same-node', reason: `same node (${how})`, error: r.error, bytes };
  }
  c.rec.path = 'local';
  resumeReads(client);
  resumeReads(app);
  const r = await pipeBoth(client, app);
  forget();
  return closedBy ? { verdict: 'deny', cause: 'closed-by-policy', reason: `closed: ${closedBy}` } : { verdict: 'allow', cause: 'same-node', reason: 'same node', error: r.error };
}

// --- the splice, once per daemon --------------------------------------------------------

/** Why a same-node connection was relayed in user space although the splice is on (a fixed
 * list: counted, each logged once). */
export type SpliceFallback = 'unavailable' | 'already-read' | 'refused' | 'half-relayed' | 'drain-stalled';
const fallbacks = new Map<SpliceFallback, number>();
let loaded: { splicer?: Splicer; failed?: boolean } | undefined;

/** How often each fallback happened in this process (admin/debug, tests). */
export function spliceFallbacks(): Record<string, number> { return Object.fromEntries(fallbacks); }

function fallback(deps: ProxyDeps, why: SpliceFallback, err?: unknown): void {
  const n = (fallbacks.get(why) ?? 0) + 1;
  fallbacks.set(why, n);
  if (n === 1) deps.log.warn({ why, err: err instanceof Error ? err.message : undefined }, 'same-node splice not used; relaying in user space (logged once per reason)');
}

/** The process's splicer: loaded on first use when the setting is on and the datapath is eBPF. */
function splicerFor(deps: ProxyDeps): Splicer | undefined {
  if (loaded) {
    if (loaded.failed) fallback(deps, 'unavailable');
    return loaded.splicer;
  }
  loaded = {};
  const setting = spliceSetting(process.env);
  if (setting.invalid) deps.log.warn({ NODEMESH_SAME_NODE_SPLICE: setting.invalid }, "NODEMESH_SAME_NODE_SPLICE is neither 'on' nor 'off': splice off");
  const status = deps.datapath.status();
  if (!setting.enabled || status.kind !== 'ebpf' || !status.pinRoot) {
    deps.log.info({ setting: setting.enabled ? 'on' : 'off', datapath: status.kind }, 'same-node splice off: relaying in user space');
    return undefined;
  }
  try {
    const splicer = Splicer.load({
      native: loadNative(), pinRoot: status.pinRoot, log: deps.log,
      objectDir: process.env.NODEMESH_BPF_OBJECT_DIR || path.join(repoRoot(), 'bpf', 'build'),
      kick: process.env.NODEMESH_SPLICE_KICK !== 'off',
    });
    process.once('exit', () => splicer.close());
    loaded.splicer = splicer;
  } catch (e) {
    loaded.failed = true;
    fallback(deps, 'unavailable', e);
  }
  return loaded.splicer;
}

function trySplice(deps: ProxyDeps, splicer: Splicer, client: net.Socket, app: net.Socket) {
  if (!unread(client) || !unread(app)) {
    fallback(deps, 'already-read');
    return undefined;
  }
  try {
    return runSplice(splicer, client, app);
  } catch (e) {
    fallback(deps, 'refused', e);
    return undefined;
  }
}
