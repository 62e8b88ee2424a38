// The verdict for a connection arriving at an enrolled pod, whichever way it came (HBONE,
// the same-node path, or plaintext): peer authentication first (STRICT refuses anything
// without a mesh identity), then AuthorizationPolicy. Pure; used when a connection opens and
// again for every open connection when policies change.
import type { Snapshot, Workload } from '../state/snapshot';
import { authorize, peerAuthenticationMode } from './authorization';
import { targetFacts } from './enforcement';

export type InboundVerdict =
  | { allow: true; policy?: string; mode: string }
  | { allow: false; reason: 'peer-authentication-strict' | 'denied-by-policy' | 'no-allow-policy-matched'; message: string; policy?: string };

export interface InboundSubject {
  /** SPIFFE ID when the peer is authenticated (HBONE or the same-node path). */
  principal?: string;
  ip: string;
}

export function inboundVerdict(s: Snapshot, dest: Workload, subj: InboundSubject, port: number): InboundVerdict {
  const target = { namespace: dest.namespace, labels: dest.labels, port };
  const mode = peerAuthenticationMode(s.peerAuthentications, target);
  if (!subj.principal && mode === 'STRICT') {
    return { allow: false, reason: 'peer-authentication-strict', message: `PeerAuthentication STRICT for ${dest.namespace}/${dest.name} port ${port}: plaintext from ${subj.ip} refused; the client must be in the mesh` };
  }
  // Services and waypoint matter only to targetRefs policies; skip the lookup without them.
  const facts = s.authorizationPolicies.some((p) => (p.spec?.targetRefs ?? []).length > 0) ? targetFacts(s, dest, port) : {};
  const v = authorize(s.authorizationPolicies, subj, { ...target, ...facts });
  if (!v.allow) return v;
  return { allow: true, policy: v.policy, mode };
}
