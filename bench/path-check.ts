// The path check of the side-by-side bench (pure): proof, per mode, that the measured traffic
// took the path the mode claims. Three sources, each read by bench/mesh-compare.ts:
//   - the nodemesh proxies' own connection records (node daemons, or sidecars): outbound over
//     HBONE with the destination's SPIFFE ID, inbound-hbone with the source's, allowed; for
//     the ambient same-node path, `local` with both identities;
//   - HAProxy's per-connection log lines (installer/sandbox/haproxy.ts): the server side saw
//     a verified client certificate of the client's name over TLS, the client side dialled
//     the peer's mTLS port over TLS;
//   - a capture on the nodes (bench/pcap.ts): between the client pod and the server pod,
//     which ports carried payload, whether it was TLS, and whether any plaintext of the
//     request or response was readable. No mesh: plaintext to the app port, and no proxy
//     recorded the connection;
//   - ambient + waypoint: the client's daemon tunnelled to the waypoint pod (the waypoint's
//     identity), the server's daemon took a tunnel from the waypoint's identity, the waypoint's
//     access log has the requests with the caller's identity and the server as endpoint; on the
//     wire, only TLS to 15008 on both hops and nothing between the client and the server.
import type { PairTraffic } from './pcap';

export type ModeId = 'plain' | 'sidecar' | 'haproxy' | 'ambient' | 'waypoint';

export interface ConnRecordLite {
  /** The proxy's record number (grows with each connection). */
  id?: number;
  direction: string;
  pod: { namespace: string; name: string };
  path?: string;
  verdict: string;
  sourceIdentity?: string;
  destinationIdentity?: string;
  /** Outbound: the workload the connection went to (a Service VIP resolved to a pod). */
  originalDestination?: { workload?: { name: string } };
}

export interface PathExpectation {
  mode: ModeId;
  /** cross-node (client node-1, server node-2) or same-node (both on node-1). */
  placement: 'cross-node' | 'same-node';
  /** Ambient same-node: the path the daemon must have recorded, 'local' (relayed in user
   * space) or 'local-splice' (kernel splice); unset, either. */
  sameNodePath?: 'local' | 'local-splice';
  namespace: string;
  client: string;
  server: string;
  /** Port the app listens on (plaintext must be seen there, and only there, without a mesh). */
  appPort: number;
  /** Port the mesh carries the traffic on (15008 HBONE, 15443 HAProxy). */
  meshPort?: number;
}

/** One request in the waypoint's access log (waypoint/metrics-stage.ts). */
export interface WaypointRequestLine { caller: string; waypoint: string; endpoint: string; status: number }

export interface PathEvidence {
  /** Connection records of every nodemesh proxy of the cluster (node daemons and sidecars). */
  records?: { proxy: string; records: ConnRecordLite[] }[];
  /** HAProxy log lines of the client's and the server's proxies. */
  haproxy?: { clientLog: string; serverLog: string; serverIp: string };
  /** What the capture saw between the two pods. */
  wire?: PairTraffic;
  /** Ambient + waypoint: the waypoint's pod and log, and the capture of both hops through it. */
  waypoint?: { pod: string; serviceAccount: string; serverIp: string; requests: WaypointRequestLine[]; toWaypoint: PairTraffic; fromWaypoint: PairTraffic };
}

export interface PathVerdict { ok: boolean; checks: string[]; problems: string[] }

const idOf = (ns: string, sa: string) => new RegExp(`/ns/${ns}/sa/${sa}$`);

export function checkPath(e: PathExpectation, ev: PathEvidence): PathVerdict {
  const checks: string[] = [];
  const problems: string[] = [];
  const all = (ev.records ?? []).flatMap((p) => p.records.map((r) => ({ ...r, proxy: p.proxy })));
  const mine = all.filter((r) => r.pod.namespace === e.namespace);
  // The client's outbound connections to this server (it also talks to the other one).
  const toServer = mine.filter((r) => r.direction === 'outbound' && r.pod.name === e.client && r.originalDestination?.workload?.name === e.server);
  const clientId = idOf(e.namespace, 'client');
  const serverId = idOf(e.namespace, 'server');
  if (e.mode === 'plain') {
    if (mine.length) problems.push(`a mesh proxy recorded ${mine.length} connection(s) of namespace ${e.namespace}, which has no mesh`);
    else checks.push('no mesh proxy recorded any connection of this namespace');
  } else if (e.mode === 'ambient' || e.mode === 'sidecar') {
    const isOut = (r: typeof mine[number], path: string) => r.path === path && r.verdict === 'allow' &&
      clientId.test(r.sourceIdentity ?? '') && serverId.test(r.destinationIdentity ?? '');
    const sameNodePaths = e.sameNodePath ? [e.sameNodePath] : ['local', 'local-splice'];
    if (e.mode === 'ambient' && e.placement === 'same-node') {
      const local = toServer.filter((r) => sameNodePaths.some((p) => isOut(r, p)));
      if (local.length) checks.push(`${local.length} same-node connection(s) (${[...new Set(local.map((r) => r.path))].join(', ')}) on ${local[0]!.proxy}: sa/client -> sa/server, allowed by the destination's policy`);
      else problems.push(`no proxy recorded a same-node (${sameNodePaths.join(' or ')}) connection ${e.client} -> ${e.server} with both identities`);
    } else {
      const out = toServer.filter((r) => isOut(r, 'hbone'));
      const inb = mine.filter((r) => r.direction === 'inbound-hbone' && r.pod.name === e.server && r.verdict === 'allow' && clientId.test(r.sourceIdentity ?? ''));
      if (out.length) checks.push(`${out.length} outbound HBONE connection(s) on ${out[0]!.proxy}: ${out[0]!.sourceIdentity} -> ${out[0]!.destinationIdentity}`);
      else problems.push(`no proxy recorded an outbound HBONE connection from ${e.client} with identities sa/client -> sa/server`);
      if (inb.length) checks.push(`${inb.length} inbound HBONE connection(s) on ${inb[0]!.proxy} from ${inb[0]!.sourceIdentity}`);
      else problems.push(`no proxy recorded an inbound HBONE connection to ${e.server} from sa/client`);
    }
    const expected = e.mode === 'ambient' && e.placement === 'same-node' ? sameNodePaths : ['hbone'];
    const other = toServer.filter((r) => r.path !== undefined && !expected.includes(r.path));
    if (other.length) problems.push(`connections of ${e.client} took other paths: ${[...new Set(other.map((r) => `${r.proxy} ${r.path}`))].join(', ')}`);
  } else if (e.mode === 'haproxy') {
    const h = ev.haproxy;
    if (!h) problems.push('no HAProxy logs to check');
    else {
      const inOk = h.serverLog.split('\n').filter((l) => /nm-haproxy in client=client\.\S+ verify=0 tls=1/.test(l)).length;
      const outOk = h.clientLog.split('\n').filter((l) => l.includes(`nm-haproxy out server=${h.serverIp}:${e.meshPort} tls=1`)).length;
      if (inOk) checks.push(`the server's HAProxy logged ${inOk} TLS connection(s) with a verified client certificate of client.${e.namespace}`);
      else problems.push("the server's HAProxy logged no verified mTLS connection from the client");
      if (outOk) checks.push(`the client's HAProxy logged ${outOk} TLS connection(s) to ${h.serverIp}:${e.meshPort}`);
      else problems.push(`the client's HAProxy logged no TLS connection to ${h.serverIp}:${e.meshPort}`);
    }
  } else if (e.mode === 'waypoint') {
    checkWaypointPath(e, ev, mine, checks, problems);
  }
  const w = ev.wire;
  if (w && e.mode === 'waypoint') {
    if (w.packets === 0) checks.push('wire: no packet between the client and the server (every byte went through the waypoint)');
    else problems.push(`wire: ${w.packets} packet(s) straight between the client and the server, expected none`);
  } else if (w) {
    const local = e.mode === 'ambient' && e.placement === 'same-node';
    if (local) {
      if (w.packets === 0) checks.push('wire: no packet between the two pods (the node proxy joined them inside the node)');
      else problems.push(`wire: ${w.packets} packet(s) between the pods on the same-node path, expected none`);
    } else if (e.mode === 'plain') {
      if (w.plaintextHits > 0 && w.serverPorts.every((p) => p === e.appPort)) checks.push(`wire: plaintext HTTP to port ${e.appPort} (${w.plaintextHits} packet(s) readable), untouched`);
      else problems.push(`wire: expected plaintext to port ${e.appPort} only, saw ports ${w.serverPorts.join(',') || 'none'} with ${w.plaintextHits} readable packet(s)`);
    } else {
      const portsOk = w.packets > 0 && w.serverPorts.every((p) => p === e.meshPort);
      if (portsOk && w.clientHello && w.plaintextHits === 0) checks.push(`wire: ${w.packets} packet(s), all to port ${e.meshPort}, TLS (ClientHello seen, ${w.tlsRecords} record starts), no readable plaintext`);
      else problems.push(`wire: expected only TLS to port ${e.meshPort}; saw ${w.packets} packet(s) on port(s) ${w.serverPorts.join(',') || 'none'}, ClientHello ${w.clientHello}, ${w.plaintextHits} with readable plaintext`);
    }
  }
  return { ok: problems.length === 0 && checks.length > 0, checks, problems };
}

type Rec = ConnRecordLite & { proxy: string };

function checkWaypointPath(e: PathExpectation, ev: PathEvidence, mine: Rec[], checks: string[], problems: string[]): void {
  const wp = ev.waypoint;
  if (!wp) { problems.push('no waypoint evidence (pod, access log, capture)'); return; }
  const clientId = idOf(e.namespace, 'client');
  const wpId = idOf(e.namespace, wp.serviceAccount);
  const out = mine.filter((r) => r.direction === 'outbound' && r.pod.name === e.client && r.path === 'hbone' && r.verdict === 'allow' &&
    r.originalDestination?.workload?.name === wp.pod && clientId.test(r.sourceIdentity ?? '') && wpId.test(r.destinationIdentity ?? ''));
  if (out.length) checks.push(`${out.length} outbound HBONE connection(s) on ${out[0]!.proxy} to the waypoint: ${out[0]!.sourceIdentity} -> ${out[0]!.destinationIdentity}`);
  else problems.push(`no proxy recorded an outbound HBONE connection from ${e.client} (sa/client) to the waypoint pod ${wp.pod} (sa/${wp.serviceAccount})`);
  const direct = mine.filter((r) => r.direction === 'outbound' && r.pod.name === e.client && r.originalDestination?.workload?.name === e.server);
  if (direct.length) problems.push(`${direct.length} connection(s) of ${e.client} went to ${e.server} without the waypoint`);
  const inb = mine.filter((r) => r.direction === 'inbound-hbone' && r.pod.name === e.server && r.verdict === 'allow' && wpId.test(r.sourceIdentity ?? ''));
  if (inb.length) checks.push(`${inb.length} inbound HBONE connection(s) on ${inb[0]!.proxy} to ${e.server} from ${inb[0]!.sourceIdentity}`);
  else problems.push(`no proxy recorded an inbound HBONE connection to ${e.server} from the waypoint's identity sa/${wp.serviceAccount}`);
  const served = wp.requests.filter((l) => clientId.test(l.caller) && wpId.test(l.waypoint) && l.endpoint.startsWith(`${wp.serverIp}:`) && l.status === 200);
  if (served.length) checks.push(`the waypoint logged ${served.length} request(s) from ${served[0]!.caller} forwarded to ${served[0]!.endpoint} as ${served[0]!.waypoint}`);
  else problems.push(`the waypoint's access log has no request from sa/client answered 200 by ${wp.serverIp}`);
  for (const [hop, t] of [['client -> waypoint', wp.toWaypoint], ['waypoint -> server', wp.fromWaypoint]] as const) {
    if (t.packets > 0 && t.serverPorts.every((p) => p === e.meshPort) && t.clientHello && t.plaintextHits === 0) {
      checks.push(`wire ${hop}: ${t.packets} packet(s), all to port ${e.meshPort}, TLS (ClientHello seen), no readable plaintext`);
    } else {
      problems.push(`wire ${hop}: expected only TLS to port ${e.meshPort}; saw ${t.packets} packet(s) on port(s) ${t.serverPorts.join(',') || 'none'}, ClientHello ${t.clientHello}, ${t.plaintextHits} with readable plaintext`);
    }
  }
}
