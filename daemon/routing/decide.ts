// The outbound routing decision: pure, synchronous, table-tested (decide.test.ts). It turns
// (source workload, original destination, snapshot) into what the tunnel should do.
import type { SocketAddress } from '../redirection/datapath';
import type { ServiceEntry, Snapshot, Workload } from '../state/snapshot';

export type Decision =
  /** Forward plain TCP to `target` from the source pod's namespace (un-meshed destination). */
  | { kind: 'passthrough'; target: SocketAddress; service?: ServiceRef; destinationWorkload?: WorkloadRef; reason: string }
  /** Refuse the connection (fail closed). */
  | { kind: 'deny'; reason: DenyReason; message: string };

export type DenyReason = 'no-endpoints' | 'unknown-service-port' | 'mesh-port';

export interface ServiceRef { namespace: string; name: string }
export interface WorkloadRef { uid: string; namespace: string; name: string }

const ref = (w: Workload): WorkloadRef => ({ uid: w.uid, namespace: w.namespace, name: w.name });
const svcRef = (s: ServiceEntry): ServiceRef => ({ namespace: s.namespace, name: s.name });

/** Ports the mesh owns: an app never connects to them through the mesh. */
const MESH_PORTS = new Set([15001, 15006, 15008]);

export function decide(snapshot: Snapshot, _source: Workload, dst: SocketAddress): Decision {
  if (MESH_PORTS.has(dst.port)) {
    return { kind: 'deny', reason: 'mesh-port', message: `port ${dst.port} is reserved for the mesh` };
  }
  const svc = snapshot.servicesByVIP.get(dst.address);
  if (svc) {
    if (!svc.ports.some((p) => p.port === dst.port)) {
      return { kind: 'deny', reason: 'unknown-service-port', message: `service ${svc.namespace}/${svc.name} has no port ${dst.port}` };
    }
    if (svc.endpoints.length === 0) {
      return { kind: 'deny', reason: 'no-endpoints', message: `service ${svc.namespace}/${svc.name} has no ready endpoints` };
    }
    // Until the HBONE tunnel lands, the VIP is forwarded as is and the node's service proxy
    // picks the endpoint; the tunnel will balance here itself.
    return { kind: 'passthrough', target: dst, service: svcRef(svc), reason: 'service VIP, plain TCP (no tunnel yet)' };
  }
  const w = snapshot.workloadsByIP.get(dst.address);
  if (w) return { kind: 'passthrough', target: dst, destinationWorkload: ref(w), reason: 'pod IP, plain TCP (no tunnel yet)' };
  return { kind: 'passthrough', target: dst, reason: 'destination outside the mesh' };
}
