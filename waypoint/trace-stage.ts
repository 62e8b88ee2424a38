// Stage: W3C trace context. The upstream request carries the caller's trace id with a new
// span id (the waypoint's hop); a request without a valid traceparent starts a trace. Sampling
// flags pass through unchanged; tracestate is forwarded as is.
import { randomFillSync } from 'node:crypto';
import type { Layer } from './exchange';

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** The traceparent for the next hop, pure given the new span id (16 hex digits). */
export function nextTraceparent(incoming: string | undefined, newSpanId: string, newTraceId: () => string): string {
  const m = incoming ? TRACEPARENT.exec(incoming.trim()) : null;
  if (m && m[1] !== 'ff' && m[2] !== ZERO_TRACE && m[3] !== ZERO_SPAN) return `00-${m[2]}-${newSpanId}-${m[4]}`;
  return `00-${newTraceId()}-${newSpanId}-01`;
}

/** Random ids from a pool refilled 4 KiB at a time: a randomBytes call per id showed in the
 * waypoint's profile (about 12 us a request for the span and trace ids). */
const POOL = Buffer.alloc(4096);
let used = POOL.length;
export function randomHex(bytes: number): string {
  if (used + bytes > POOL.length) { randomFillSync(POOL); used = 0; }
  const s = POOL.toString('hex', used, used + bytes);
  used += bytes;
  return s;
}

export const traceStage: Layer = (next) => (x) => {
  const incoming = x.headers.traceparent;
  x.traceparent = nextTraceparent(Array.isArray(incoming) ? incoming[0] : incoming, randomHex(8), () => randomHex(16));
  x.headers = { ...x.headers, traceparent: x.traceparent };
  return next(x);
};
