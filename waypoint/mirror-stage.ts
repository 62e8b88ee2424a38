// Stage: RequestMirror. A copy of the request goes to the mirror backend, fire and forget:
// its answer is read and dropped, its failure never touches the real request. The copy's Host
// gets `-shadow` appended, as Envoy marks mirrored traffic.
import type { Snapshot } from '../daemon/state/snapshot';
import type { PowerOfTwoChoices } from '../daemon/routing/balancer';
import { discard, type EndpointTarget, type Exchange, type Layer, type Reply } from './exchange';

export type Forward = (x: Exchange) => Promise<Reply>;

export const mirrorStage = (deps: { snapshot: () => Snapshot; picker: PowerOfTwoChoices; forward: Forward; onMirror?: (ok: boolean) => void }): Layer => (next) => (x) => {
  for (const f of x.selection!.rule.filters) {
    if (f.type !== 'RequestMirror') continue;
    const svc = deps.snapshot().services.get(`${f.backend.namespace}/${f.backend.name}`);
    const ep = svc && deps.picker.pick(svc.endpoints.filter((e) => e.ports.has(f.backend.port)));
    const workload = ep && deps.snapshot().workloads.get(ep.workloadUid);
    if (!svc || !ep || !workload) { deps.onMirror?.(false); continue; }
    const endpoint: EndpointTarget = { workload, ip: ep.ip, port: ep.ports.get(f.backend.port)!, service: svc };
    const copy: Exchange = {
      ...x, endpoint, headers: { ...x.headers }, authority: `${x.authority}-shadow`, signal: AbortSignal.timeout(10_000),
      failedEndpoints: new Set(), responseModifiers: [],
    };
    deps.forward(copy).then((r) => { discard(r); deps.onMirror?.(!r.failure && !r.local); }, () => deps.onMirror?.(false));
  }
  return next(x);
};
