// The outbound routing decision: pure, synchronous, table-tested (decide.test.ts). It turns
// (source workload, original destination, snapshot) into what the tunnel should do, as
// ztunnel's build_request does. Service VIPs are balanced here, through the injected picker.
import { isMeshPort, type SocketAddress } from '../redirection/datapath';
import { HBONE_PORT } from '../tunnel/hbone-protocol';
import { endpointKey } from '../tunnel/authority';
import type { Endpoint, ServiceEntry, Snapshot, Workload } from '../state/snapshot';
import type { EndpointPicker } from './balancer';
import { isWaypointWorkload, waypointFor } from '../state/waypoints';

export interface ServiceRef { namespace: string; name: string }
export interface WorkloadRef { uid: string; namespace: string; name: string }

export type Decision =
  /** Mutual-TLS tunnel (HTTP/2 CONNECT) to the destination pod's HBONE port on another node. */
  | {
    kind: 'hbone';
    /** Where the HBONE connection goes: podIP:15008. */
    target: SocketAddress;
    /** The real destination, sent as :authority. */
    authority: SocketAddress;
    destination: Workload;
    /** SPIFFE IDs the destination may present (from its service account). */
    expectedServerIds: string[];
    service?: ServiceRef;
    /** Set when the Service uses a waypoint: `target` is the waypoint pod, `authority` the VIP. */
    waypoint?: ServiceRef;
  }
  /** Destination pod enrolled on this same node: no network, same policy checks. */
  | { kind: 'local'; authority: SocketAddress; destination: Workload; service?: ServiceRef }
  /** Plain TCP from the source pod's namespace (destination outside the mesh). */
  | { kind: 'passthrough'; target: SocketAddress; destination?: Workload; service?: ServiceRef; reason: string }
  /** Refuse the connection (fail closed). */
  | { kind: 'deny'; reason: DenyReason; message: string; service?: ServiceRef };

export type DenyReason = 'no-endpoints' | 'unknown-service-port' | 'mesh-port' | 'no-healthy-endpoint' | 'no-waypoint';

export interface DecideContext {
  /** This daemon's node: destinations here take the local path. */
  node: string;
  trustDomain: string;
  picker: EndpointPicker;
  /** Endpoints (ip:port) that already failed for this connection: a retry avoids them. */
  exclude?: ReadonlySet<string>;
}


export const spiffeIdOf = (td: string, w: Pick<Workload, 'namespace' | 'serviceAccount'>) => `spiffe://${td}/ns/${w.namespace}/sa/${w.serviceAccount}`;
const svcRef = (s: ServiceEntry): ServiceRef => ({ namespace: s.namespace, name: s.name });
export const workloadRef = (w: Workload): WorkloadRef => ({ uid: w.uid, namespace: w.namespace, name: w.name });

function toWorkload(source: Workload, dst: SocketAddress, w: Workload | undefined, ctx: DecideContext, service?: ServiceRef): Decision {
  if (!w || !w.enrolled) {
    return { kind: 'passthrough', target: dst, destination: w, service, reason: w ? 'destination pod is not in the mesh' : 'destination outside the mesh' };
  }
  if (w.node === ctx.node && source.node === ctx.node) return { kind: 'local', authority: dst, destination: w, service };
  return {
    kind: 'hbone', target: { family: dst.family, address: dst.address, port: HBONE_PORT }, authority: dst, destination: w,
    expectedServerIds: [spiffeIdOf(ctx.trustDomain, w)], service,
  };
}

export function decide(snapshot: Snapshot, source: Workload, dst: SocketAddress, ctx: DecideContext): Decision {
  if (isMeshPort(dst.port)) {
    return { kind: 'deny', reason: 'mesh-port', message: `port ${dst.port} is reserved for the mesh` };
  }
  const svc = snapshot.servicesByVIP.get(dst.address);
  if (svc) {
    const service = svcRef(svc);
    if (!svc.ports.some((p) => p.port === dst.port)) {
      return { kind: 'deny', reason: 'unknown-service-port', message: `service ${svc.namespace}/${svc.name} has no port ${dst.port}`, service };
    }
    // A Service bound to a waypoint: HBONE to the waypoint with the VIP as :authority; the
    // waypoint picks the endpoint. Its own traffic (it is not captured, but a waypoint pod
    // could be enrolled by mistake) never goes back to a waypoint.
    const waypoint = isWaypointWorkload(source) ? undefined : waypointFor(snapshot, svc);
    if (waypoint) {
      const wp = waypoint.instance;
      const ref = { namespace: waypoint.namespace, name: waypoint.name };
      if (!wp) {
        return { kind: 'deny', reason: 'no-waypoint', message: `service ${svc.namespace}/${svc.name} uses waypoint ${ref.namespace}/${ref.name}, which has no running pod`, service };
      }
      return {
        kind: 'hbone', target: { family: dst.family, address: wp.ips[0], port: HBONE_PORT }, authority: dst, destination: wp,
        expectedServerIds: [spiffeIdOf(ctx.trustDomain, wp)], service, waypoint: ref,
      };
    }
    const ready = svc.endpoints.filter((e: Endpoint) => e.ports.has(dst.port));
    if (ready.length === 0) {
      return { kind: 'deny', reason: 'no-endpoints', message: `service ${svc.namespace}/${svc.name} has no ready endpoints for port ${dst.port}`, service };
    }
    const left = ctx.exclude ? ready.filter((e) => !ctx.exclude!.has(endpointKey(e.ip, e.ports.get(dst.port) ?? 0))) : ready;
    const ep = ctx.picker.pick(left);
    if (!ep) {
      return { kind: 'deny', reason: 'no-healthy-endpoint', message: `every endpoint of service ${svc.namespace}/${svc.name} failed for this connection`, service };
    }
    const target: SocketAddress = { family: dst.family, address: ep.ip, port: ep.ports.get(dst.port)! };
    return toWorkload(source, target, snapshot.workloads.get(ep.workloadUid), ctx, service);
  }
  return toWorkload(source, dst, snapshot.workloadsByIP.get(dst.address), ctx);
}
