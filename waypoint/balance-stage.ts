// Stage: the backend and endpoint of one attempt. The backend is the rule's weighted choice
// (backend-choice.ts, pure); the endpoint is power of two choices on in-flight requests among
// the backend Service's ready endpoints, skipping ones that failed for this request. Per-backend
// filters apply here, since they depend on the choice.
import type { PowerOfTwoChoices } from '../daemon/routing/balancer';
import type { Snapshot } from '../daemon/state/snapshot';
import { chooseBackend } from './backend-choice';
import { applyHeaderModifier } from './request-filters';
import { localReply, type Layer } from './exchange';

export const balanceStage = (deps: { snapshot: () => Snapshot; picker: PowerOfTwoChoices; random: () => number }): Layer => (next) => async (x) => {
  const choice = chooseBackend(x.selection!.rule, deps.random);
  if (choice.kind === 'none') return localReply(500, 'the route rule has no usable backend');
  if (choice.kind === 'invalid') return localReply(500, `backend not usable: ${choice.backend.message}`);
  const b = choice.backend;
  const svc = deps.snapshot().services.get(`${b.namespace}/${b.name}`);
  if (!svc) return localReply(500, `backend Service ${b.namespace}/${b.name} does not exist`);
  const port = svc.ports.find((p) => p.port === b.port);
  if (!port) return localReply(500, `backend Service ${b.namespace}/${b.name} has no port ${b.port}`);
  const ready = svc.endpoints.filter((e) => e.ports.has(b.port) && !x.failedEndpoints.has(`${e.ip}:${e.ports.get(b.port)}`));
  const ep = deps.picker.pick(ready);
  const workload = ep && deps.snapshot().workloads.get(ep.workloadUid);
  if (!ep || !workload) {
    return localReply(503, `no ready endpoint of backend Service ${b.namespace}/${b.name} port ${b.port}${x.failedEndpoints.size ? ' left to try' : ''}`, { failure: 'connect-failure' });
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
    if (reply.failure) x.failedEndpoints.add(`${ep.ip}:${x.endpoint.port}`);
    return reply;
  } finally {
    release();
    x.headers = saved;
  }
};
