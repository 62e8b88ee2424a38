// Where each policy holds (pure): no policy is accepted and then silently ignored. For
// `nodemesh status`, the admin snapshot (/debug/snapshot) and `local apply`'s refusal of
// what nothing can enforce. Semantics: ./authorization.ts.
import { LABEL_USE_WAYPOINT, ROOT_NAMESPACE, type AuthorizationPolicy, type PeerAuthentication } from '../state/resources';
import type { Snapshot, Workload } from '../state/snapshot';
import { hasL7, selects, targetsWaypoint } from './authorization';

export type EnforcementPoint =
  /** By the node daemons at L4, on the workloads it selects (or its namespace, or mesh-wide). */
  | 'node-l4'
  /** By the node daemons at L4, on the pods its targetRefs Services select, on their target ports. */
  | 'node-l4-service'
  /** Needs a waypoint (targetRefs to a Gateway): the node daemons deny what it governs. */
  | 'waypoint';

export interface Enforcement {
  where: EnforcementPoint;
  /** One line for people: where, and what of the policy cannot be checked there. */
  detail: string;
}

export interface PolicyEnforcement extends Enforcement {
  kind: 'AuthorizationPolicy' | 'PeerAuthentication';
  namespace: string;
  name: string;
  /** Workloads (`ns/name`) it applies to in the snapshot. */
  workloads: string[];
}

const refText = (p: AuthorizationPolicy, kind: string): string =>
  (p.spec?.targetRefs ?? []).filter((r) => r.kind === kind).map((r) => `${kind}/${r.name}`).join(', ');

/** Where an AuthorizationPolicy is enforced, from the policy alone. */
export function enforcementOf(p: AuthorizationPolicy): Enforcement {
  const l7 = (p.spec?.rules ?? []).some((r) => (r.when ?? []).length > 0 || (r.to ?? []).some((t) => hasL7(t.operation ?? {})));
  const action = p.spec?.action ?? 'ALLOW';
  const l7Note = !l7 ? '' : action === 'ALLOW'
    ? '; its rules with methods/paths/hosts/when need a waypoint and match nothing at L4 (fail closed)'
    : '; its methods/paths/hosts/when need a waypoint: at L4 its DENY rules match on their ports alone (fail closed)';
  const gateways = refText(p, 'Gateway');
  if (gateways) {
    return { where: 'waypoint', detail: `targetRefs ${gateways} needs a waypoint: enforced there, at L7, on the traffic it carries; the node daemons deny the connections it governs that bypass the waypoint (fail closed)` };
  }
  const services = refText(p, 'Service');
  if (services) {
    return { where: 'node-l4-service', detail: `at L4 by the node daemons, on the pods ${services} selects, on its target ports${l7Note}` };
  }
  const ns = p.metadata.namespace ?? 'default';
  const sel = Object.entries(p.spec?.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
  const scope = sel ? `workloads with ${sel}${ns === ROOT_NAMESPACE ? ' in any namespace' : ` in ${ns}`}` : ns === ROOT_NAMESPACE ? 'every workload (mesh-wide)' : `every workload in ${ns}`;
  return { where: 'node-l4', detail: `at L4 by the node daemons, on ${scope}${l7Note}` };
}

function waypointOf(s: Snapshot, w: Workload): string | undefined {
  return w.labels[LABEL_USE_WAYPOINT] ?? s.namespaces.get(w.namespace)?.metadata.labels?.[LABEL_USE_WAYPOINT];
}

/** Per policy in the snapshot: where it is enforced and on which workloads. */
export function policyEnforcement(s: Snapshot): PolicyEnforcement[] {
  const workloads = [...s.workloads.values()];
  const id = (w: Workload): string => `${w.namespace}/${w.name}`;
  const out: PolicyEnforcement[] = [];
  for (const p of s.authorizationPolicies) {
    const e = enforcementOf(p);
    const ns = p.metadata.namespace ?? 'default';
    let applies: Workload[];
    if (e.where === 'waypoint') {
      applies = workloads.filter((w) => targetsWaypoint(p, { namespace: w.namespace, waypoint: waypointOf(s, w) }));
    } else if (e.where === 'node-l4-service') {
      const names = new Set((p.spec?.targetRefs ?? []).filter((r) => r.kind === 'Service').map((r) => `${ns}/${r.name}`));
      const uids = new Set<string>();
      for (const svc of s.services.values()) if (names.has(`${svc.namespace}/${svc.name}`)) for (const ep of svc.endpoints) uids.add(ep.workloadUid);
      applies = workloads.filter((w) => uids.has(w.uid));
    } else {
      applies = workloads.filter((w) => selects(p, w));
    }
    out.push({ kind: 'AuthorizationPolicy', namespace: ns, name: p.metadata.name, ...e, workloads: applies.map(id).sort() });
  }
  for (const p of s.peerAuthentications as readonly PeerAuthentication[]) {
    const ns = p.metadata.namespace ?? 'default';
    out.push({
      kind: 'PeerAuthentication', namespace: ns, name: p.metadata.name, where: 'node-l4',
      detail: 'by the node daemons on inbound connections (STRICT refuses plaintext)',
      workloads: workloads.filter((w) => selects(p, w)).map(id).sort(),
    });
  }
  return out;
}

/** The target facts authorize() needs about a workload beyond its labels: the Services that
 * send it `port`, and the waypoint it uses. */
export function targetFacts(s: Snapshot, w: Workload, port: number): { services: string[]; waypoint?: string } {
  const services: string[] = [];
  for (const svc of s.services.values()) {
    if (svc.namespace !== w.namespace) continue;
    if (svc.endpoints.some((ep) => ep.workloadUid === w.uid && [...ep.ports.values()].includes(port))) services.push(`${svc.namespace}/${svc.name}`);
  }
  const waypoint = waypointOf(s, w);
  return { services, ...(waypoint ? { waypoint } : {}) };
}
