// Weighted choice among a rule's backendRefs, pure: the random source is a parameter, so tests
// pick exact points on the weight line. Invalid backendRefs keep their share of the weight and
// that share answers 500, as the Gateway API requires.
import type { InvalidBackend, RouteRule, WeightedBackend } from './route-model';

export type BackendChoice =
  | { kind: 'backend'; backend: WeightedBackend }
  /** The chosen share belongs to a backendRef that cannot be used (500). */
  | { kind: 'invalid'; backend: InvalidBackend }
  /** No backendRefs, or every weight is 0 (500). */
  | { kind: 'none' };

/** `random` returns a number in [0, 1), like Math.random. */
export function chooseBackend(rule: Pick<RouteRule, 'backends' | 'invalidBackends'>, random: () => number): BackendChoice {
  let total = 0;
  for (const b of rule.backends) total += b.weight;
  for (const b of rule.invalidBackends) total += b.weight;
  if (total === 0) return { kind: 'none' };
  let point = Math.min(Math.floor(random() * total), total - 1);
  for (const backend of rule.backends) {
    if (point < backend.weight) return { kind: 'backend', backend };
    point -= backend.weight;
  }
  for (const backend of rule.invalidBackends) {
    if (point < backend.weight) return { kind: 'invalid', backend };
    point -= backend.weight;
  }
  return { kind: 'none' };
}
