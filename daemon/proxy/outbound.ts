// The outbound listener's handler (15001 inside each enrolled pod): recover where the app
// wanted to go, decide, execute. Until the HBONE tunnel lands, allowed connections are
// forwarded as plain TCP from the pod's own namespace (marked, so not captured again).
import type * as net from 'node:net';
import type { Logger } from 'pino';
import type { Datapath } from '../redirection/datapath';
import type { SocketFactory } from '../redirection/socket-factory';
import { decide } from '../routing/decide';
import type { Snapshot, Workload } from '../state/snapshot';
import type { ConnectionTable } from './connection-table';
import { pipeBoth } from './pipe';
import { DaemonErrors } from '../errors';

export interface OutboundDeps {
  datapath: Datapath;
  sockets: SocketFactory;
  snapshot: () => Snapshot;
  connections: ConnectionTable;
  log: Logger;
}

export interface PodContext {
  workload: Workload;
  netnsPath: string;
  netnsCookie: bigint;
}

const addr = (host: string, port: number) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
const family = (s: net.Socket): 4 | 6 => (s.remoteFamily === 'IPv6' && !s.remoteAddress?.startsWith('::ffff:') ? 6 : 4);

export function handleOutbound(deps: OutboundDeps, pod: PodContext, client: net.Socket): void {
  const w = pod.workload;
  const podRef = { uid: w.uid, namespace: w.namespace, name: w.name };
  const source = { workload: podRef, address: `${w.ips[0] ?? ''}:${client.remotePort ?? 0}` };
  const dst = deps.datapath.takeOriginalDestination(pod.netnsCookie, client.remotePort ?? 0, family(client));
  if (!dst) {
    const err = DaemonErrors.NODEMESH_E_ORIGINAL_DST_MISSING({ pod: `${w.namespace}/${w.name}`, port: client.remotePort ?? 0 });
    const rec = deps.connections.add({ direction: 'outbound', pod: podRef, source, originalDestination: { address: 'unknown' }, verdict: 'deny', reason: err.code });
    client.destroy();
    deps.connections.close(rec, { sent: 0, received: 0 });
    return;
  }
  const original = addr(dst.address, dst.port);
  const decision = decide(deps.snapshot(), w, dst);
  if (decision.kind === 'deny') {
    const rec = deps.connections.add({ direction: 'outbound', pod: podRef, source, originalDestination: { address: original }, verdict: 'deny', reason: `${decision.reason}: ${decision.message}` });
    client.destroy();
    deps.connections.close(rec, { sent: 0, received: 0 });
    return;
  }
  const rec = deps.connections.add({
    direction: 'outbound', pod: podRef, source,
    originalDestination: { address: original, service: decision.service, workload: decision.destinationWorkload },
    upstream: addr(decision.target.address, decision.target.port), verdict: 'allow', reason: decision.reason,
  });
  client.pause();
  let upstream: net.Socket;
  try {
    upstream = deps.sockets.connect(pod.netnsPath, { family: decision.target.family, host: decision.target.address, port: decision.target.port });
  } catch (e) {
    rec.verdict = 'error';
    client.destroy();
    deps.connections.close(rec, { sent: 0, received: 0 }, e as Error);
    return;
  }
  upstream.once('connect', () => client.resume());
  void pipeBoth(client, upstream).then(({ error }) => {
    if (error && !upstream.bytesWritten && !upstream.bytesRead && rec.verdict === 'allow') rec.verdict = 'error';
    deps.connections.close(rec, { sent: client.bytesRead, received: client.bytesWritten }, error);
  });
}
