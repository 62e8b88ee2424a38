// The inbound plaintext listener's handler (15006 inside each enrolled pod): connections
// that reached the pod without HBONE, steered here by sk_lookup. The local address of the
// accepted socket is the original destination. PeerAuthentication decides whether plaintext
// is accepted at all (STRICT: no; PERMISSIVE: yes, as an unauthenticated peer), then
// AuthorizationPolicy. Allowed connections reach the app from 127.0.0.6, which the steering
// program lets through.
import type * as net from 'node:net';
import { appConnection, isMeshPort } from '../redirection/datapath';
import { inboundVerdict } from '../policy/inbound';
import { formatAuthority } from '../tunnel/authority';
import { peerWorkload, reset, type PodContext, type ProxyDeps } from './outbound';
import type { ConnectionCause } from './connection-table';
import { pipeBoth } from './pipe';
import { whenConnected } from './connect';

const bare = (ip: string) => (ip.startsWith('::ffff:') ? ip.slice(7) : ip);

export function handleInboundPlaintext(deps: Pick<ProxyDeps, 'sockets' | 'snapshot' | 'log' | 'connections' | 'openInbound'>, pod: PodContext, client: net.Socket): void {
  client.on('error', () => undefined);
  const snapshot = deps.snapshot();
  const w = snapshot.workloads.get(pod.workload.uid) ?? pod.workload;
  const podRef = peerWorkload(w);
  const srcIP = bare(client.remoteAddress ?? '');
  const from = snapshot.workloadsByIP.get(srcIP);
  const source = { address: formatAuthority(srcIP, client.remotePort ?? 0), workload: from && peerWorkload(from) };
  const dstIP = bare(client.localAddress ?? '');
  const dstPort = client.localPort ?? 0;
  const originalDestination = { address: formatAuthority(dstIP, dstPort), workload: podRef };
  const deny = (cause: ConnectionCause, reason: string) => {
    const rec = deps.connections.add({ direction: 'inbound-plaintext', pod: podRef, source, originalDestination, verdict: 'deny', cause, reason });
    reset(client);
    deps.connections.close(rec, 0, 0);
  };
  if (isMeshPort(dstPort) || !w.ips.includes(dstIP)) return deny('not-an-app-port', 'destination is not an app port of this pod');
  const subject = { ip: srcIP };
  const v = inboundVerdict(snapshot, w, subject, dstPort);
  if (!v.allow) return deny(v.reason, `${v.reason}: ${v.message}`);

  const rec = deps.connections.add({
    direction: 'inbound-plaintext', pod: podRef, source, originalDestination, upstream: originalDestination.address, path: 'passthrough',
    verdict: 'allow', cause: 'allowed', reason: `plaintext accepted (PeerAuthentication ${v.mode}${v.policy ? `, AuthorizationPolicy ${v.policy}` : ''})`,
  });
  client.pause();
  let closedBy: string | undefined;
  const app = deps.sockets.connect(pod.netnsPath, { ...appConnection(dstIP), host: dstIP, port: dstPort });
  const forget = deps.openInbound.add({ destinationUid: w.uid, subject, port: dstPort, close: (why) => { closedBy = why; client.destroy(); app.destroy(); } });
  whenConnected(app, 5_000, originalDestination.address).then(() => client.resume(), () => undefined);
  void pipeBoth(client, app).then(({ error }) => {
    forget();
    if (closedBy) { rec.verdict = 'deny'; rec.cause = 'closed-by-policy'; rec.reason = `closed: ${closedBy}`; }
    else if (error && !app.bytesWritten && !app.bytesRead) { rec.verdict = 'error'; rec.cause = 'upstream-failed'; }
    deps.connections.close(rec, client.bytesRead, client.bytesWritten, error);
  });
}
