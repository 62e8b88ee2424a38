// The inbound plaintext listener's handler (15006 inside each enrolled pod): connections
// that reached the pod without HBONE, steered here by sk_lookup. The local address of the
// accepted socket is the original destination. The daemon connects to the app from
// 127.0.0.6, which the steering program lets through, and splices.
// (PeerAuthentication STRICT/PERMISSIVE is decided here once the tunnel lands.)
import type * as net from 'node:net';
import { INBOUND_PASSTHROUGH_SOURCE_V4, MESH_PORTS } from '../redirection/datapath';
import type { ConnectionTable } from './connection-table';
import type { OutboundDeps, PodContext } from './outbound';
import { pipeBoth } from './pipe';

const MESH = new Set<number>(Object.values(MESH_PORTS));

export function handleInboundPlaintext(deps: Pick<OutboundDeps, 'sockets' | 'snapshot' | 'log'> & { connections: ConnectionTable }, pod: PodContext, client: net.Socket): void {
  const w = pod.workload;
  const podRef = { uid: w.uid, namespace: w.namespace, name: w.name };
  const srcIP = client.remoteAddress ?? '';
  const from = deps.snapshot().workloadsByIP.get(srcIP);
  const source = { address: `${srcIP}:${client.remotePort}`, workload: from && { uid: from.uid, namespace: from.namespace, name: from.name } };
  const dstIP = client.localAddress ?? '';
  const dstPort = client.localPort ?? 0;
  const original = `${dstIP}:${dstPort}`;
  if (MESH.has(dstPort) || !w.ips.includes(dstIP)) {
    const rec = deps.connections.add({ direction: 'inbound-plaintext', pod: podRef, source, originalDestination: { address: original, workload: podRef }, verdict: 'deny', reason: 'destination is not an app port of this pod' });
    client.destroy();
    deps.connections.close(rec, { sent: 0, received: 0 });
    return;
  }
  const rec = deps.connections.add({
    direction: 'inbound-plaintext', pod: podRef, source, originalDestination: { address: original, workload: podRef },
    upstream: original, verdict: 'allow', reason: 'plaintext inbound (no peer authentication yet)',
  });
  client.pause();
  const app = deps.sockets.connect(pod.netnsPath, { family: 4, host: dstIP, port: dstPort, localAddress: INBOUND_PASSTHROUGH_SOURCE_V4 });
  app.once('connect', () => client.resume());
  void pipeBoth(client, app).then(({ error }) => {
    if (error && !app.bytesWritten && !app.bytesRead) rec.verdict = 'error';
    deps.connections.close(rec, { sent: client.bytesRead, received: client.bytesWritten }, error);
  });
}
