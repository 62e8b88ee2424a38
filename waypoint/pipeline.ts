// The waypoint's request pipeline, in the order a request meets the stages (outermost
// first). Each stage is one file; this is the one place they are put together.
//
//   metrics        count, duration, access log (both identities)
//   trace          W3C traceparent: the caller's trace, a new span id
//   authz          L7 AuthorizationPolicy (targetRefs: this Gateway or the Service); 403
//   match          which route rule (Gateway API precedence); 404 when none
//   filters        redirect / header modifiers / URL rewrite; response header modifiers
//   fault          BackendTrafficPolicy faultInjection: delay, abort (never retried)
//   request timeout   504 when the whole exchange, retries included, runs out
//   mirror         fire-and-forget copy to the mirror backend (skipped when the body
//                  outgrew the retry buffer)
//   retry          again on connect failure, reset, backendRequest timeout or listed codes,
//                  while the request body fits the retry buffer (request-body.ts)
//   balance        weighted backend, then an endpoint (power of two choices) that outlier
//                  detection has not ejected; records each attempt's result
//   circuit breaker   per backend Service limits; 503 + nodemesh-overloaded when over
//   backend timeout   504 for one attempt (retryable)
//   forward        HBONE with the waypoint's identity to the endpoint
import type { Logger } from 'pino';
import type { PowerOfTwoChoices } from '../daemon/routing/balancer';
import type { Snapshot } from '../daemon/state/snapshot';
import { authzStage } from './authz-stage';
import { balanceStage } from './balance-stage';
import { CircuitBreakers } from './circuit-breaker';
import { circuitBreakerStage } from './circuit-breaker-stage';
import type { Handler, Layer } from './exchange';
import { faultStage } from './fault-stage';
import { filterStage } from './filter-stage';
import { matchStage } from './match-stage';
import { metricsStage } from './metrics-stage';
import { mirrorStage } from './mirror-stage';
import { OutlierDetectors } from './outlier-detection';
import { retryStage } from './retry-stage';
import type { RouteTable } from './route-table';
import { backendRequestTimeoutStage, requestTimeoutStage } from './timeout-stage';
import { traceStage } from './trace-stage';
import type { WaypointMetrics } from './waypoint-metrics';

export interface PipelineDeps {
  snapshot: () => Snapshot;
  routes: () => RouteTable;
  picker: PowerOfTwoChoices;
  random: () => number;
  metrics: WaypointMetrics;
  log: Logger;
  waypointId: () => string;
  forward: Handler;
  /** This waypoint's Gateway (AuthorizationPolicy targetRefs name it). */
  gateway: { namespace: string; name: string };
}

export function buildPipeline(d: PipelineDeps): Handler {
  const m = d.metrics;
  const stages: Layer[] = [
    metricsStage({ metrics: d.metrics, log: d.log, waypointId: d.waypointId }),
    traceStage,
    authzStage({ snapshot: d.snapshot, gateway: d.gateway }),
    matchStage(d.routes),
    filterStage,
    faultStage({ snapshot: d.snapshot, random: d.random, onFault: (policy, fault) => m.faults.inc({ policy, fault }) }),
    requestTimeoutStage,
    mirrorStage({ snapshot: d.snapshot, picker: d.picker, forward: d.forward, onMirror: (result) => d.metrics.mirrors.inc({ result }) }),
    retryStage,
    balanceStage({
      snapshot: d.snapshot, picker: d.picker, random: d.random, outliers: new OutlierDetectors(),
      onOutlier: (backend, e, ejectedNow) => {
        if (e.kind === 'ejected') {
          m.ejections.inc({ backend, reason: e.reason });
          d.log.warn({ backend, endpoint: e.endpoint, reason: e.reason, forMs: e.forMs, ejections: e.ejections }, 'outlier detection ejected an endpoint');
        } else {
          d.log.info({ backend, endpoint: e.endpoint }, 'outlier detection brought an endpoint back');
        }
        m.ejected.set({ backend }, ejectedNow);
      },
    }),
    circuitBreakerStage({ snapshot: d.snapshot, breakers: new CircuitBreakers(), onOverflow: (backend, limit) => m.overflows.inc({ backend, limit }) }),
    backendRequestTimeoutStage,
  ];
  return stages.reduceRight<Handler>((next, stage) => stage(next), d.forward);
}
