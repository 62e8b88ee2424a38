// Whether to try a request again, pure (GEP-1731). Connection failures and resets are retried
// whenever the rule has a retry policy; responses only when their code is listed; without a
// policy, a connection failure once, and a reset before the response once for an idempotent
// method (as Istio's default retry on reset/refused-stream). Backoff
// doubles from the configured minimum, capped at ten times it, and never runs past the
// request's deadline.
import type { RetryPolicy } from './route-model';

export type AttemptOutcome =
  | { kind: 'response'; status: number }
  | { kind: 'connect-failure' }
  | { kind: 'reset' }
  /** backendRequest timeout: retried like a reset (the request may be idempotent or not; the spec retries it). */
  | { kind: 'timeout' }
  /** The circuit breaker refused the attempt: never retried (Envoy never retries an overflow; it would feed the overload). */
  | { kind: 'overflow' };

export type RetryVerdict = { retry: true; delayMs: number } | { retry: false; reason: 'no-policy' | 'not-retryable' | 'attempts-exhausted' | 'deadline' | 'success' };

/** Methods a reset may be retried for without a policy: repeating them changes nothing (RFC 9110 9.2.2). */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export function retryDecision(policy: RetryPolicy | undefined, outcome: AttemptOutcome, retriesDone: number, msLeft: number, idempotent = false): RetryVerdict {
  if (outcome.kind === 'response' && outcome.status < 400) return { retry: false, reason: 'success' };
  if (outcome.kind === 'overflow') return { retry: false, reason: 'not-retryable' };
  // Without a policy, a connection that failed before the request left is tried once more on
  // another endpoint (nothing was processed, so it is safe for any method), as Istio and
  // Linkerd do by default.
  // An idempotent request whose upstream reset before answering is tried once more too.
  if (!policy) {
    const once = retriesDone === 0 && (outcome.kind === 'connect-failure' || (outcome.kind === 'reset' && idempotent));
    return once ? { retry: true, delayMs: 0 } : { retry: false, reason: 'no-policy' };
  }
  if (outcome.kind === 'response' && !policy.codes.includes(outcome.status)) return { retry: false, reason: 'not-retryable' };
  if (retriesDone >= policy.attempts) return { retry: false, reason: 'attempts-exhausted' };
  const delayMs = Math.min(policy.backoffMs * 2 ** retriesDone, policy.backoffMs * 10);
  if (delayMs >= msLeft) return { retry: false, reason: 'deadline' };
  return { retry: true, delayMs };
}
