// Whether to try a request again, pure (GEP-1731). Connection failures and resets are retried
// whenever the rule has a retry policy; responses only when their code is listed; without a
// policy, only a connection failure, once. Backoff
// doubles from the configured minimum, capped at ten times it, and never runs past the
// request's deadline.
import type { RetryPolicy } from './route-model';

export type AttemptOutcome =
  | { kind: 'response'; status: number }
  | { kind: 'connect-failure' }
  | { kind: 'reset' }
  /** backendRequest timeout: retried like a reset (the request may be idempotent or not; the spec retries it). */
  | { kind: 'timeout' };

export type RetryVerdict = { retry: true; delayMs: number } | { retry: false; reason: 'no-policy' | 'not-retryable' | 'attempts-exhausted' | 'deadline' | 'success' };

export function retryDecision(policy: RetryPolicy | undefined, outcome: AttemptOutcome, retriesDone: number, msLeft: number): RetryVerdict {
  if (outcome.kind === 'response' && outcome.status < 400) return { retry: false, reason: 'success' };
  // Without a policy, a connection that failed before the request left is tried once more on
  // another endpoint (nothing was processed, so it is safe for any method), as Istio and
  // Linkerd do by default.
  if (!policy) return outcome.kind === 'connect-failure' && retriesDone === 0 ? { retry: true, delayMs: 0 } : { retry: false, reason: 'no-policy' };
  if (outcome.kind === 'response' && !policy.codes.includes(outcome.status)) return { retry: false, reason: 'not-retryable' };
  if (retriesDone >= policy.attempts) return { retry: false, reason: 'attempts-exhausted' };
  const delayMs = Math.min(policy.backoffMs * 2 ** retriesDone, policy.backoffMs * 10);
  if (delayMs >= msLeft) return { retry: false, reason: 'deadline' };
  return { retry: true, delayMs };
}
