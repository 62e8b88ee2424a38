// `nodemesh connections`: what every node daemon reports about the connections it handled,
// open and recently closed, gathered over the daemons' admin sockets.
import { adminGetJson } from './admin-client';
import { layout, readCluster, stateDir } from './state';
import type { ConnectionRecord } from '../../daemon/proxy/connection-table';

export interface NodeConnections { node: string; error?: string; connections: ConnectionRecord[] }

export async function gatherConnections(onlyNode?: string): Promise<NodeConnections[]> {
  const out: NodeConnections[] = [];
  for (const n of readCluster(layout(stateDir()))?.nodes ?? []) {
    if (onlyNode && n.name !== onlyNode) continue;
    try {
      const j = await adminGetJson<{ open: ConnectionRecord[]; closed: ConnectionRecord[] }>(n.adminSocket, '/debug/connections');
      out.push({ node: n.name, connections: [...j.open, ...j.closed].sort((a, b) => a.openedAt.localeCompare(b.openedAt)) });
    } catch (e) {
      out.push({ node: n.name, error: (e as Error).message, connections: [] });
    }
  }
  return out;
}

const peerName = (p: ConnectionRecord['source']) =>
  p.workload ? `${p.workload.namespace}/${p.workload.name}` : p.service ? `svc/${p.service.namespace}/${p.service.name}` : '-';
/** `spiffe://cluster.local/ns/shop/sa/web` -> `shop/sa/web` (the trust domain is the mesh's). */
const shortId = (id: string | undefined) => (id ? id.replace(/^spiffe:\/\/[^/]+\/ns\//, '') : '-');

export function formatConnections(all: NodeConnections[], limit = 50): string {
  const rows: string[][] = [['NODE', 'DIRECTION', 'SOURCE', 'SOURCE ID', 'ORIGINAL DESTINATION', 'DESTINATION', 'DESTINATION ID', 'PATH', 'BYTES OUT/IN', 'STATE', 'VERDICT']];
  for (const n of all) {
    if (n.error) { rows.push([n.node, `(no answer: ${n.error})`]); continue; }
    for (const c of n.connections.slice(-limit)) {
      const dest = c.originalDestination.service
        ? `svc/${c.originalDestination.service.namespace}/${c.originalDestination.service.name}${c.originalDestination.workload ? ` -> ${c.originalDestination.workload.name}` : ''}`
        : peerName(c.originalDestination);
      rows.push([n.node, c.direction, `${peerName(c.source)} ${c.source.address}`, shortId(c.sourceIdentity), c.originalDestination.address,
        dest, shortId(c.destinationIdentity), c.path ?? '-', `${c.bytesSent}/${c.bytesReceived}`, c.state,
        c.verdict === 'allow' ? 'allow' : `${c.verdict}: ${c.reason.length > 90 ? `${c.reason.slice(0, 87)}...` : c.reason}`]);
    }
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]))).join('  ')).join('\n');
}
