// Gateway API status conditions (metav1.Condition): a condition keeps its lastTransitionTime
// while its status stays the same, so rewriting an unchanged status is not a transition.
export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export function condition(
  type: string, ok: boolean, reason: string, message: string, generation: number | undefined,
  now: string, previous: readonly Condition[] | undefined,
): Condition {
  const status: ConditionStatus = ok ? 'True' : 'False';
  const before = previous?.find((c) => c.type === type);
  const lastTransitionTime = before && before.status === status && typeof before.lastTransitionTime === 'string' ? before.lastTransitionTime : now;
  return { type, status, reason, message, ...(generation !== undefined ? { observedGeneration: generation } : {}), lastTransitionTime };
}

/** Equal but for transition times: whether a write would change anything that matters. */
export function sameIgnoringTimes(a: unknown, b: unknown): boolean {
  return withoutTimes(a) === withoutTimes(b);
}

/** JSON of a status without its transition times. */
export function withoutTimes(v: unknown): string {
  return JSON.stringify(v ?? null, (k, x) => (k === 'lastTransitionTime' ? undefined : x));
}

/** metav1.Time: RFC 3339 in seconds, as the API server stores it. */
export function kubeTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}
