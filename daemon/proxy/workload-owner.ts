// The name a pod's metrics are labelled with: its controller (Deployment, StatefulSet,
// DaemonSet, Job), as Istio's `workload` label, so a rollout or a restart does not mint new
// series. Until the snapshot carries the owner from ownerReferences, it is recovered from the
// labels the controllers set and the names they generate; a bare pod is its own owner.
import type { Workload } from '../state/snapshot';

const GENERATED_SUFFIX = /^(.+)-[a-z0-9]{5}$/;

export function workloadOwner(w: Pick<Workload, 'name' | 'labels'> & { owner?: string }): string {
  if (w.owner) return w.owner;
  const l = w.labels ?? {};
  const hash = l['pod-template-hash'];
  if (hash) {
    // Deployment -> ReplicaSet <deployment>-<hash> -> pod <replicaset>-<5 chars>.
    const rs = GENERATED_SUFFIX.exec(w.name)?.[1];
    if (rs?.endsWith(`-${hash}`)) return rs.slice(0, -hash.length - 1);
    if (rs) return rs;
  }
  if (l['statefulset.kubernetes.io/pod-name'] === w.name) {
    const m = /^(.+)-\d+$/.exec(w.name);
    if (m) return m[1];
  }
  if (l['job-name']) return l['job-name'];
  if (l['controller-revision-hash'] && l['pod-template-generation']) {
    const ds = GENERATED_SUFFIX.exec(w.name)?.[1];
    if (ds) return ds;
  }
  return w.name;
}
