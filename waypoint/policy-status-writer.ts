// BackendTrafficPolicy status (Gateway API PolicyStatus: status.ancestors, condition Accepted),
// computed here (pure) and written back into the object directory in the sandbox (on
// Kubernetes: kube-policy-status.ts, through the API): the
// entries for targets this waypoint serves, and, for policies of its namespace, the entries no
// waypoint serves (TargetNotFound, NoWaypoint), so every refusal is visible. Only written when
// the conditions changed; an unchanged condition keeps its lastTransitionTime.
import { readObject, writeObject, type StoredObject } from '../daemon/sources/object-directory';
import type { PolicyAncestorStatus, PolicyEntry } from './backend-traffic-policy';
import { ROUTE_CONTROLLER_NAME } from './route-model';

export interface StoredAncestor {
  ancestorRef: PolicyAncestorStatus['ancestorRef'];
  controllerName: string;
  conditions: (PolicyAncestorStatus['condition'] & { lastTransitionTime: string })[];
}

const sameRef = (a: StoredAncestor['ancestorRef'], b: StoredAncestor['ancestorRef']) =>
  a.kind === b.kind && a.name === b.name && a.namespace === b.namespace && (a.group ?? '') === (b.group ?? '');
const comparable = (s: readonly StoredAncestor[] | undefined) =>
  JSON.stringify((s ?? []).map((a) => ({ ...a, conditions: a.conditions.map(({ lastTransitionTime: _t, ...c }) => c) })));

/** A policy's next status.ancestors, and the version of the object it was computed from. */
export interface PolicyStatusUpdate { namespace: string; name: string; resourceVersion: string | undefined; ancestors: StoredAncestor[] }

type CurrentPolicy = { metadata?: { resourceVersion?: string }; status?: { ancestors?: StoredAncestor[] } };

/** Pure: the policies whose status should change, from the objects as they are now. */
export function policyStatusUpdates(
  entries: readonly PolicyEntry[], me: { namespace: string }, serves: (svc: { namespace: string; name: string }) => boolean, now: string,
  current: (namespace: string, name: string) => CurrentPolicy | undefined,
): PolicyStatusUpdate[] {
  const out: PolicyStatusUpdate[] = [];
  for (const { policy, ancestors } of entries) {
    const mine = ancestors.filter((a) => a.services.some(serves) ||
      (policy.namespace === me.namespace && (a.condition.reason === 'TargetNotFound' || a.condition.reason === 'NoWaypoint')));
    if (mine.length === 0) continue;
    const obj = current(policy.namespace, policy.name);
    if (!obj) continue;
    const before = obj.status?.ancestors ?? [];
    const fresh: StoredAncestor[] = mine.map((a) => {
      const old = before.find((b) => sameRef(b.ancestorRef, a.ancestorRef))?.conditions.find((c) => c.type === a.condition.type);
      return {
        ancestorRef: a.ancestorRef, controllerName: ROUTE_CONTROLLER_NAME,
        conditions: [{ ...a.condition, lastTransitionTime: old && old.status === a.condition.status ? old.lastTransitionTime : now }],
      };
    });
    // Targets the policy no longer names are dropped; others' entries are kept.
    const others = before.filter((b) => !fresh.some((f) => sameRef(f.ancestorRef, b.ancestorRef)) &&
      ancestors.some((a) => sameRef(a.ancestorRef, b.ancestorRef)));
    const next = [...others, ...fresh];
    if (comparable(next) === comparable(before)) continue;
    out.push({ namespace: policy.namespace, name: policy.name, resourceVersion: obj.metadata?.resourceVersion, ancestors: next });
  }
  return out;
}

/** Sandbox: written into the object directory. Returns the policies whose status was written. */
export function writePolicyStatuses(
  dir: string, entries: readonly PolicyEntry[], me: { namespace: string }, serves: (svc: { namespace: string; name: string }) => boolean, now: string,
): string[] {
  const read = (ns: string, name: string) => readObject(dir, 'BackendTrafficPolicy', ns, name) as (StoredObject & CurrentPolicy) | undefined;
  const written: string[] = [];
  for (const u of policyStatusUpdates(entries, me, serves, now, read)) {
    const obj = read(u.namespace, u.name)!;
    writeObject(dir, { ...obj, status: { ...(obj.status ?? {}), ancestors: u.ancestors } });
    written.push(`BackendTrafficPolicy/${u.namespace}/${u.name}`);
  }
  return written;
}
