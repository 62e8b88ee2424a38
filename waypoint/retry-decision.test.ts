import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttemptOutcome, RetryVerdict, retryDecision } from './retry-decision';
import type { RetryPolicy } from './route-model';

const policy: RetryPolicy = { attempts: 3, backoffMs: 20, codes: [502, 503] };

test('retry decisions: codes, connection failures, attempts, backoff and the deadline', () => {
  const table: [RetryPolicy | undefined, AttemptOutcome, number, number, RetryVerdict][] = [
    [policy, { kind: 'response', status: 200 }, 0, 1000, { retry: false, reason: 'success' }],
    [policy, { kind: 'response', status: 503 }, 0, 1000, { retry: true, delayMs: 20 }],
    [policy, { kind: 'response', status: 503 }, 1, 1000, { retry: true, delayMs: 40 }],
    [policy, { kind: 'response', status: 502 }, 2, 1000, { retry: true, delayMs: 80 }],
    [policy, { kind: 'response', status: 503 }, 3, 1000, { retry: false, reason: 'attempts-exhausted' }],
    [policy, { kind: 'response', status: 500 }, 0, 1000, { retry: false, reason: 'not-retryable' }],
    [policy, { kind: 'response', status: 404 }, 0, 1000, { retry: false, reason: 'not-retryable' }],
    [policy, { kind: 'connect-failure' }, 0, 1000, { retry: true, delayMs: 20 }],
    [policy, { kind: 'reset' }, 0, 1000, { retry: true, delayMs: 20 }],
    [policy, { kind: 'timeout' }, 0, 1000, { retry: true, delayMs: 20 }],
    [policy, { kind: 'reset' }, 0, 15, { retry: false, reason: 'deadline' }],
    [{ attempts: 8, backoffMs: 10, codes: [503] }, { kind: 'reset' }, 7, 1000, { retry: true, delayMs: 100 }], // capped at 10x
    [undefined, { kind: 'reset' }, 0, 1000, { retry: false, reason: 'no-policy' }],
    [undefined, { kind: 'connect-failure' }, 0, 1000, { retry: true, delayMs: 0 }],
    [undefined, { kind: 'connect-failure' }, 1, 1000, { retry: false, reason: 'no-policy' }],
    [undefined, { kind: 'response', status: 503 }, 0, 1000, { retry: false, reason: 'no-policy' }],
  ];
  for (const [p, outcome, done, left, want] of table) assert.deepEqual(retryDecision(p, outcome, done, left), want, `${JSON.stringify(outcome)} after ${done}`);
  // Without a policy an idempotent request is tried once more after a reset; others are not.
  assert.deepEqual(retryDecision(undefined, { kind: 'reset' }, 0, 1000, true), { retry: true, delayMs: 0 });
  assert.deepEqual(retryDecision(undefined, { kind: 'reset' }, 1, 1000, true), { retry: false, reason: 'no-policy' });
  assert.deepEqual(retryDecision(undefined, { kind: 'reset' }, 0, 1000, false), { retry: false, reason: 'no-policy' });
});

test('a circuit breaker overflow is never retried, whatever the policy', () => {
  assert.deepEqual(retryDecision({ attempts: 3, backoffMs: 1, codes: [503] }, { kind: 'overflow' }, 0, 10_000, true), { retry: false, reason: 'not-retryable' });
  assert.deepEqual(retryDecision(undefined, { kind: 'overflow' }, 0, 10_000, true), { retry: false, reason: 'not-retryable' });
});
