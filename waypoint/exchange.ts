// One request through the waypoint, and the shape every pipeline stage shares: a stage is a
// Layer, `(next) => handler`, so pipeline.ts reads top to bottom like linkerd2-proxy's stack.
// A handler never throws for an outcome it can describe: refusals, timeouts and upstream
// failures are responses (`local` says the waypoint answered itself, and why).
import type { Readable } from 'node:stream';
import type { ServiceEntry, Workload } from '../daemon/state/snapshot';
import type { RequestBody } from './request-body';
import type { RouteSelection } from './route-match';
import type { HeaderModifier, WeightedBackend } from './route-model';

export type HeaderMap = Record<string, string | string[]>;

export interface TunnelContext {
  /** SPIFFE ID of the HBONE client: the caller's identity (its node daemon used the caller's certificate). */
  sourceId: string;
  sourceAddress: string;
  /** The Service whose VIP was the CONNECT `:authority`. */
  service: ServiceEntry;
  vip: string;
  port: number;
  protocol: 'http1' | 'h2';
}

/** The upstream endpoint one attempt goes to. */
export interface EndpointTarget {
  workload: Workload;
  ip: string;
  /** The pod's port (the Service port's targetPort). */
  port: number;
  /** The backend Service it belongs to. */
  service: ServiceEntry;
}

export interface Exchange {
  readonly tunnel: TunnelContext;
  readonly startedAt: number;
  method: string;
  path: string;
  /** Without `?`. */
  query: string;
  /** The inner request's Host / :authority. */
  authority: string;
  /** Lower-case names; no pseudo-headers, no hop-by-hop headers. */
  headers: HeaderMap;
  /** The request body, streamed to each attempt; the first RETRY_BUFFER_LIMIT bytes are kept so
   * retries and mirrors can send it again while it fits (request-body.ts). */
  body: RequestBody;
  /** Aborted when the request is over for the waypoint (timeout, client gone); the timeout
   * stage narrows it for the stages inside. */
  signal: AbortSignal;
  selection?: RouteSelection;
  /** Response header modifiers to apply on the way out, in order. */
  responseModifiers: HeaderModifier[];
  /** Current attempt (set by balance). */
  backend?: WeightedBackend;
  endpoint?: EndpointTarget;
  /** BackendTrafficPolicy circuitBreaker.maxRequestsPerConnection of the chosen backend
   * Service (circuit-breaker stage): a kept upstream tunnel serves at most this many requests. */
  maxRequestsPerConnection?: number;
  /** Endpoints (`ip:port`) that already failed for this request: retries avoid them. */
  failedEndpoints: Set<string>;
  attempts: number;
  /** W3C trace context for the upstream request (trace stage). */
  traceparent?: string;
}

export interface Reply {
  status: number;
  headers: HeaderMap;
  body: Readable | Buffer;
  /** Set when the waypoint answered itself: why (logged, and sent as `nodemesh-reason`). */
  local?: string;
  /** How the upstream attempt failed, for retries (`overflow`: the circuit breaker refused it; never retried). */
  failure?: 'connect-failure' | 'reset' | 'timeout' | 'overflow';
}

export type Handler = (x: Exchange) => Promise<Reply>;
export type Layer = (next: Handler) => Handler;

export const REASON_HEADER = 'nodemesh-reason';

/** A response the waypoint makes itself. */
export function localReply(status: number, reason: string, extra: Partial<Reply> = {}): Reply {
  return {
    status, local: reason, body: Buffer.from(`${reason}\n`),
    headers: { 'content-type': 'text/plain; charset=utf-8', [REASON_HEADER]: reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 256) },
    ...extra,
  };
}

/** Frees a response body nobody will read (a retried or timed-out attempt). */
export function discard(r: Reply): void {
  if (!Buffer.isBuffer(r.body)) r.body.destroy();
}
