// Stage: the backend and endpoint of one attempt. The backend is the rule's weighted choice
// (backend-choice.ts, pure); the endpoint is power of two choices on in-flight requests among
// the backend Service's ready endpoints, skipping ones that failed for this request and, when a
// BackendTrafficPolicy asks for outlier detection, ones ejected (outlier-detection.ts); if that
// leaves none, every ready endpoint is used (Envoy's panic mode: better a doubtful endpoint
// than none). Each attempt's result is recorded for outlier detection. Per-backend filters
// apply here, since they depend on the choice.
import type { PowerOfTwoChoices } from '../daemon/routing/balancer';
import type { Endpoint, Snapshot } from '../daemon/state/snapshot';
import { trafficPolicies } from './backend-traffic-policy';
import { chooseBackend } from './backend-choice';
import { applyHeaderModifier } from './request-filters';
import { localReply, type Layer } from './exchange';
import { classifyAttempt, type OutlierDetectors, type OutlierEvent } from './outlier-detection';

export interface BalanceStageDeps {
  snapshot: () => Snapshot;
  picker: PowerOfTwoChoices;
  random: () => number;
  outliers: OutlierDetectors;
  /** Ejections and returns, by backend Service `ns/name` (a bounded label). */
  onOutlier?: (backend: string, e: OutlierEvent, ejectedNow: number) => void;
  now?: () => number;
}

export const balanceStage = (deps: BalanceStageDeps): Layer => (next) => async (x) => {
  const now = deps.now ?? Date.now;
  const choice = chooseBackend(x.selection!.rule, deps.random);
  if (choice.kind === 'none') return localReply(500, 'the route rule has no usable backend');
  if (choice.kind === 'invalid') return localReply(500, `backend not usable: ${choice.backend.message}`);
  const b = choice.backend;
  const snap = deps.snapshot();
  const svcKey = `${b.namespace}/${b.name}`;
  const svc = snap.services.get(svcKey);
  if (!svc) return localReply(500, `backend Service ${svcKey} does not exist`);
  const port = svc.ports.find((p) => p.port === b.port);
  if (!port) return localReply(500, `backend Service ${svcKey} has no port ${b.port}`);
  const endpointKey = (e: Endpoint) => `${e.ip}:${e.ports.get(b.port)}`;
  const serving = svc.endpoints.filter((e) => e.ports.has(b.port));
  // A retry avoids the endpoints that already failed this request, as best effort (Envoy's
  // previous-hosts predicate): when every one has, it goes to them again rather than nowhere
  // (a backend with a single pod would otherwise turn a retryable reset into a 503).
  const untried = serving.filter((e) => !x.failedEndpoints.has(endpointKey(e)));
  let ready = untried.length > 0 ? untried : serving;
  const od = trafficPolicies(snap).forService(svcKey)?.outlierDetection;
  const detector = od && deps.outliers.for(svcKey, od);
  if (detector) {
    const t = now();
    const onReturn = (e: OutlierEvent) => deps.onOutlier?.(svcKey, e, detector.ejectedCount(t));
    const healthy = ready.filter((e) => !detector.isEjected(endpointKey(e), t, onReturn));
    if (healthy.length > 0) ready = healthy;
    if (detector.size > 2 * serving.length + 16) detector.retain(new Set(serving.map(endpointKey)));
  }
  const ep = deps.picker.pick(ready);
  const workload = ep && snap.workloads.get(ep.workloadUid);
  if (!ep || !workload) {
    return localReply(503, `no ready endpoint of backend Service ${svcKey} port ${b.port}`, { failure: 'connect-failure' });
  }
  x.backend = b;
  x.endpoint = { workload, ip: ep.ip, port: ep.ports.get(b.port)!, service: svc };
  x.attempts++;
  const saved = x.headers;
  for (const f of b.filters) {
    if (f.type === 'RequestHeaderModifier') x.headers = applyHeaderModifier(x.headers, f.modifier);
    else if (f.type === 'ResponseHeaderModifier') x.responseModifiers.push(f.modifier);
  }
  const release = deps.picker.track(ep.ip);
  try {
    const reply = await next(x);
    if (reply.failure && reply.failure !== 'overflow') x.failedEndpoints.add(endpointKey(ep));
    if (detector) {
      const t = now();
      const e = detector.record(endpointKey(ep), classifyAttempt(reply), t, serving.length);
      if (e) deps.onOutlier?.(svcKey, e, detector.ejectedCount(t));
    }
    return reply;
  } finally {
    release();
    x.headers = saved;
  }
};
