// Which workload a pod belongs to, for metric labels that survive a rollout (Istio's
// `workload` label): a ReplicaSet made by a Deployment is named `<deployment>-<pod-template-hash>`
// and its pods carry that hash as a label, so the Deployment's name is recovered without
// watching ReplicaSets. Pure.
import type { Pod } from './resources';

export interface WorkloadOwner {
  readonly kind: 'Deployment' | 'ReplicaSet' | 'StatefulSet' | 'DaemonSet' | 'Job' | 'CronJob' | 'ReplicationController';
  readonly name: string;
}

const LABEL_POD_TEMPLATE_HASH = 'pod-template-hash';
const OWNER_KINDS = new Set<string>(['ReplicaSet', 'StatefulSet', 'DaemonSet', 'Job', 'ReplicationController']);

export function workloadOwner(pod: Pick<Pod, 'metadata'>): WorkloadOwner | undefined {
  const refs = pod.metadata.ownerReferences ?? [];
  const ref = refs.find((r) => r.controller === true) ?? refs[0];
  if (!ref || typeof ref.name !== 'string' || !OWNER_KINDS.has(ref.kind)) return undefined;
  if (ref.kind === 'ReplicaSet') {
    const hash = pod.metadata.labels?.[LABEL_POD_TEMPLATE_HASH];
    const suffix = `-${hash}`;
    if (hash && ref.name.endsWith(suffix) && ref.name.length > suffix.length) {
      return { kind: 'Deployment', name: ref.name.slice(0, -suffix.length) };
    }
  }
  return { kind: ref.kind as WorkloadOwner['kind'], name: ref.name };
}
