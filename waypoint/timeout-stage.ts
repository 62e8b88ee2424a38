// Stage: the rule's timeouts. `request` bounds the whole exchange, retries included;
// `backendRequest` bounds one attempt (and a timed-out attempt may be retried). Either gives
// 504. The attempt's upstream stream is torn down through the exchange's abort signal.
import { discard, localReply, type Exchange, type Handler, type Layer, type Reply } from './exchange';

function withDeadline(ms: number, run: (signal: AbortSignal) => Promise<Reply>, onTimeout: () => Reply, outer: AbortSignal): Promise<Reply> {
  const ac = new AbortController();
  const abortFromOuter = () => ac.abort(outer.reason);
  outer.addEventListener('abort', abortFromOuter, { once: true });
  return new Promise<Reply>((resolve) => {
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      ac.abort(new Error(`timeout after ${ms} ms`));
      resolve(onTimeout());
    }, ms);
    run(ac.signal).then((r) => {
      if (done) { discard(r); return; }
      done = true;
      resolve(r);
    }, (e: Error) => {
      if (done) return;
      done = true;
      resolve(localReply(500, `waypoint error: ${e.message}`));
    }).finally(() => {
      clearTimeout(timer);
      outer.removeEventListener('abort', abortFromOuter);
    });
  });
}

/** Runs `next` with `x.signal` swapped for one that also aborts at the deadline. */
function bounded(next: Handler, x: Exchange, ms: number, onTimeout: () => Reply): Promise<Reply> {
  const outer = x.signal;
  return withDeadline(ms, async (signal) => {
    x.signal = signal;
    try { return await next(x); } finally { x.signal = outer; }
  }, onTimeout, outer);
}

export const requestTimeoutStage: Layer = (next) => (x) => {
  const ms = x.selection!.rule.timeouts.requestMs;
  if (ms === undefined) return next(x);
  return bounded(next, x, ms, () => localReply(504, `request timeout ${ms} ms of the route expired`));
};

export const backendRequestTimeoutStage: Layer = (next) => (x) => {
  const ms = x.selection!.rule.timeouts.backendRequestMs;
  if (ms === undefined) return next(x);
  return bounded(next, x, ms, () => localReply(504, `backendRequest timeout ${ms} ms of the route expired`, { failure: 'timeout' }));
};
