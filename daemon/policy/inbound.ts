// The verdict for a connection arriving at an enrolled pod, whichever way it came (HBONE,
// the same-node path, or plaintext): peer authentication first (STRICT refuses anything
// without a mesh identity), then AuthorizationPolicy. Pure; used when a connection opens and
// again for every open connection when policies change.
//
// What applies to a (workload, port) depends only on the snapshot, so it is worked out once
// per snapshot (the PeerAuthentication mode and the policies that select the workload, split
// by action) and a connection only runs the rules of those. Snapshots and their workloads
// are immutable, so the cache hangs off them and goes with them.
import type { Snapshot, Workload } from '../state/snapshot';
import { compilePolicies, evaluate, peerAuthenticationMode, type CompiledPolicies } from './authorization';
import { targetFacts } from './enforcement';

export type InboundVerdict =
  | { allow: true; policy?: string; mode: string }
  | { allow: false; reason: 'peer-authentication-strict' | 'denied-by-policy' | 'no-allow-policy-matched'; message: string; policy?: string };

export interface InboundSubject {
  /** SPIFFE ID when the peer is authenticated (HBONE or the same-node path). */
  principal?: string;
  ip: string;
}

interface Compiled { mode: string; policies: CompiledPolicies; waypoint?: string }

/** Ports cached per workload and snapshot: the port comes from the peer (HBONE `:authority`),
 * so the cache must not grow with what a peer sends; past this, verdicts are made uncached. */
const MAX_PORTS_PER_WORKLOAD = 64;

const compiled = new WeakMap<Snapshot, WeakMap<Workload, Map<number, Compiled>>>();

/** The policies and mTLS mode for a workload's port in this snapshot, made once. */
function compiledFor(s: Snapshot, dest: Workload, port: number): Compiled {
  let byWorkload = compiled.get(s);
  if (!byWorkload) { byWorkload = new WeakMap(); compiled.set(s, byWorkload); }
  let byPort = byWorkload.get(dest);
  if (!byPort) { byPort = new Map(); byWorkload.set(dest, byPort); }
  let c = byPort.get(port);
  if (!c) {
    c = compile(s, dest, port);
    if (byPort.size < MAX_PORTS_PER_WORKLOAD) byPort.set(port, c);
  }
  return c;
}

function compile(s: Snapshot, dest: Workload, port: number): Compiled {
  const target = { namespace: dest.namespace, labels: dest.labels, port };
  // Services and waypoint matter only to targetRefs policies; skip the lookup without them.
  const facts: { services?: string[]; waypoint?: string } = s.authorizationPolicies.some((p) => (p.spec?.targetRefs ?? []).length > 0) ? targetFacts(s, dest, port) : {};
  return { mode: peerAuthenticationMode(s.peerAuthentications, target), policies: compilePolicies(s.authorizationPolicies, { ...target, ...facts }), waypoint: facts.waypoint };
}

export function inboundVerdict(s: Snapshot, dest: Workload, subj: InboundSubject, port: number): InboundVerdict {
  const c = compiledFor(s, dest, port);
  if (!subj.principal && c.mode === 'STRICT') {
    return { allow: false, reason: 'peer-authentication-strict', message: `PeerAuthentication STRICT for ${dest.namespace}/${dest.name} port ${port}: plaintext from ${subj.ip} refused; the client must be in the mesh` };
  }
  const v = evaluate(c.policies, subj, port, c.waypoint);
  if (!v.allow) return v;
  return { allow: true, policy: v.policy, mode: c.mode };
}
