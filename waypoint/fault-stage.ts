// Stage: fault injection from BackendTrafficPolicy (fault-decision.ts decides). A policy on the
// matched route wins over one on the Service the caller addressed. It sits before the request
// timeout and the retries, as Envoy's fault filter sits before its router: a delay does not
// count against the route's timeout, and an injected abort is never retried.
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { Snapshot } from '../daemon/state/snapshot';
import { trafficPolicies } from './backend-traffic-policy';
import { REASON_HEADER, localReply, type Layer, type Reply } from './exchange';
import { decideFault, isGrpcRequest, type FaultAbort } from './fault-decision';

export interface FaultStageDeps {
  snapshot: () => Snapshot;
  random: () => number;
  /** One injected fault, by the policy's `ns/name` (a cluster object: a bounded label). */
  onFault?: (policy: string, fault: 'delay' | 'abort') => void;
}

function abortReply(a: FaultAbort, policy: string): Reply {
  const reason = `fault injected by BackendTrafficPolicy ${policy}`;
  if (a.kind === 'http') return localReply(a.status, reason);
  // gRPC: HTTP 200 and the status in the trailers, as a gRPC server answers a failed call.
  const reply: Reply & { trailers: Record<string, string> } = {
    status: 200, local: reason, body: Readable.from([]),
    headers: { 'content-type': 'application/grpc', [REASON_HEADER]: reason },
    trailers: { 'grpc-status': String(a.code), 'grpc-message': `${a.name}: ${reason}` },
  };
  return reply;
}

export const faultStage = (deps: FaultStageDeps): Layer => (next) => async (x) => {
  const table = trafficPolicies(deps.snapshot());
  const route = x.selection!.route;
  const svc = x.tunnel.service;
  const onRoute = route.name ? table.forRoute(route.kind, route.namespace, route.name) : undefined;
  const policy = onRoute?.fault ? onRoute : table.forService(`${svc.namespace}/${svc.name}`);
  if (!policy?.fault) return next(x);
  const name = `${policy.namespace}/${policy.name}`;
  const v = decideFault(policy.fault, deps.random, isGrpcRequest(x.headers['content-type']));
  if (v.delayMs > 0) {
    deps.onFault?.(name, 'delay');
    try { await delay(v.delayMs, undefined, { signal: x.signal }); } catch { return localReply(499, 'the caller went away during an injected delay'); }
  }
  if (v.abort) {
    deps.onFault?.(name, 'abort');
    return abortReply(v.abort, name);
  }
  return next(x);
};
