// Waypoint bindings, pure: which Services send their traffic through which waypoint. A
// Gateway of class `nodemesh-waypoint` runs as a pod labelled with the Gateway's name (as
// Istio labels its waypoint pods); `nodemesh.io/use-waypoint=<gateway>` on a Service, or else
// on its Namespace, binds the Service to it (`none` on the Service opts it out). Computed once
// per snapshot (snapshots are immutable) and read on every connection.
import { LABEL_USE_WAYPOINT } from './resources';
import type { ServiceEntry, Snapshot, Workload } from './snapshot';

export const WAYPOINT_GATEWAY_CLASS = 'nodemesh-waypoint';
/** On a waypoint's pod: the name of its Gateway (Gateway API's label for generated resources). */
export const LABEL_GATEWAY_NAME = 'gateway.networking.k8s.io/gateway-name';
export const USE_WAYPOINT_NONE = 'none';

export interface WaypointBinding {
  namespace: string;
  /** The Gateway's name. */
  name: string;
  /** A running waypoint pod; undefined while none runs (traffic is then refused: fail closed). */
  instance: Workload | undefined;
}

interface Index { instances: Map<string, Workload> }
const indexes = new WeakMap<Snapshot, Index>();

function indexOf(s: Snapshot): Index {
  let idx = indexes.get(s);
  if (idx) return idx;
  const instances = new Map<string, Workload>();
  const sorted = [...s.workloads.values()].sort((a, b) => a.uid.localeCompare(b.uid));
  for (const w of sorted) {
    const gw = w.labels[LABEL_GATEWAY_NAME];
    if (!gw || w.phase !== 'Running' || w.ips.length === 0) continue;
    const key = `${w.namespace}/${gw}`;
    if (!instances.has(key)) instances.set(key, w);
  }
  idx = { instances };
  indexes.set(s, idx);
  return idx;
}

/** The waypoint name a Service asks for, if any. */
export function waypointNameOf(s: Snapshot, svc: Pick<ServiceEntry, 'namespace' | 'labels'>): string | undefined {
  const own = svc.labels?.[LABEL_USE_WAYPOINT];
  const name = own ?? s.namespaces.get(svc.namespace)?.metadata.labels?.[LABEL_USE_WAYPOINT];
  return name && name !== USE_WAYPOINT_NONE ? name : undefined;
}

export function waypointFor(s: Snapshot, svc: Pick<ServiceEntry, 'namespace' | 'labels'>): WaypointBinding | undefined {
  const name = waypointNameOf(s, svc);
  if (!name) return undefined;
  return { namespace: svc.namespace, name, instance: indexOf(s).instances.get(`${svc.namespace}/${name}`) };
}

/** Whether this workload is a waypoint pod (its traffic is never sent to a waypoint again). */
export function isWaypointWorkload(w: Pick<Workload, 'labels'>): boolean {
  return w.labels[LABEL_GATEWAY_NAME] !== undefined;
}
