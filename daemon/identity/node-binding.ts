// Node binding: a node may obtain an identity only while a pod that runs as it is scheduled
// on that node, so a compromised node cannot mint mesh-wide identities. Pure: reads the
// snapshot, does no I/O.
import type { Snapshot } from '../state/snapshot';

export type BindingDecision =
  | { allowed: true; /** namespace/name of a pod that justifies the identity */ pod: string }
  | { allowed: false; /** for the caller: names the node and identity, nothing about other nodes */ reason: string;
      /** for the log only: how many live pods with this identity run on other nodes */ elsewhere: number };

/** Pods that are done (Succeeded/Failed) or in an unknown phase no longer justify an identity. */
const LIVE_PHASES = new Set(['Pending', 'Running']);

/** What node binding needs to know of a pod (a snapshot workload, or a pod from the API). */
export interface BindingPod { namespace: string; name: string; serviceAccount: string; phase: string; node: string | undefined }

export function checkNodeBinding(snapshot: Snapshot, node: string, namespace: string, serviceAccount: string): BindingDecision {
  return checkPodBinding(snapshot.workloads.values(), node, namespace, serviceAccount);
}

export function checkPodBinding(candidates: Iterable<BindingPod>, node: string, namespace: string, serviceAccount: string): BindingDecision {
  let elsewhere = 0;
  const pods: string[] = [];
  for (const w of candidates) {
    if (w.namespace !== namespace || w.serviceAccount !== serviceAccount || !LIVE_PHASES.has(w.phase)) continue;
    if (w.node === node) pods.push(`${w.namespace}/${w.name}`);
    else elsewhere++;
  }
  if (pods.length > 0) return { allowed: true, pod: pods.sort()[0] };
  return {
    allowed: false,
    reason: `no Pending or Running pod in namespace ${namespace} with serviceAccountName ${serviceAccount} is scheduled on node ${node}`,
    elsewhere,
  };
}
