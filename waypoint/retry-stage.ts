// Stage: retries (GEP-1731). Each attempt runs the stages inside (balance, backendRequest
// timeout, forward) again, so a retry may land on another backend and avoids endpoints that
// already failed. The decision is retry-decision.ts; this only waits and loops. A request whose
// body outgrew the retry buffer (request-body.ts) is not retried.
import { discard, type Layer, type Reply } from './exchange';
import { IDEMPOTENT_METHODS, retryDecision, type AttemptOutcome } from './retry-decision';

const outcomeOf = (r: Reply): AttemptOutcome => (r.failure ? { kind: r.failure } : { kind: 'response', status: r.status });

function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) { resolve(false); return; }
    const t = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(true); }, ms);
    const onAbort = () => { clearTimeout(t); resolve(false); };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export const retryStage: Layer = (next) => async (x) => {
  const policy = x.selection!.rule.retry;
  const deadline = x.selection!.rule.timeouts.requestMs !== undefined ? x.startedAt + x.selection!.rule.timeouts.requestMs : Infinity;
  for (let retries = 0; ; retries++) {
    const reply = await next(x);
    const verdict = retryDecision(policy, outcomeOf(reply), retries, deadline - performance.now(), IDEMPOTENT_METHODS.has(x.method));
    // A body that outgrew the retry buffer went out once, and only once: its failure is the answer.
    if (!verdict.retry || !x.body.replayable) return reply;
    discard(reply);
    if (verdict.delayMs > 0 && !(await sleep(verdict.delayMs, x.signal))) return reply;
  }
};
