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
  p.workload ? `${p.workload.namespace}/${p.workload.name}` : p.service ? `svc ${p.service.namespace}/${p.service.name}` : '-';

export function formatConnections(all: NodeConnections[], limit = 50): string {
  const rows: string[][] = [['NODE', 'DIRECTION', 'SOURCE', 'ORIGINAL DESTINATION', 'DESTINATION', 'UPSTREAM', 'VERDICT', 'SENT', 'RECEIVED', 'STATE']];
  for (const n of all) {
    if (n.error) { rows.push([n.node, `(no answer: ${n.error})`]); continue; }
    for (const c of n.connections.slice(-limit)) {
      rows.push([n.node, c.direction, `${peerName(c.source)} ${c.source.address}`, c.originalDestination.address,
        peerName(c.originalDestination), c.upstream ?? '-', c.verdict === 'allow' ? 'allow' : `${c.verdict} (${c.reason})`,
        String(c.bytesSent), String(c.bytesReceived), c.state]);
    }
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]))).join('  ')).join('\n');
}
