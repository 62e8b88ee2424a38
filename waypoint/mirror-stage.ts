// Stage: RequestMirror. A copy of the request goes to the mirror backend, fire and forget:
// its answer is read and dropped, its failure never touches the real request. The copy's Host
// gets `-shadow` appended, as Envoy marks mirrored traffic. The copy is sent once the request
// body has ended whole inside the retry buffer (request-body.ts); a body that outgrew it is not
// mirrored at all (`skipped`), never cut short.
import type { Snapshot } from '../daemon/state/snapshot';
import type { PowerOfTwoChoices } from '../daemon/routing/balancer';
import { RequestBody } from './request-body';
import { discard, type EndpointTarget, type Exchange, type Layer, type Reply } from './exchange';

export type Forward = (x: Exchange) => Promise<Reply>;

export type MirrorResult = 'sent' | 'failed' | 'skipped';

export const mirrorStage = (deps: { snapshot: () => Snapshot; picker: PowerOfTwoChoices; forward: Forward; onMirror?: (result: MirrorResult) => void }): Layer => (next) => (x) => {
  for (const f of x.selection!.rule.filters) {
    if (f.type !== 'RequestMirror') continue;
    const svc = deps.snapshot().services.get(`${f.backend.namespace}/${f.backend.name}`);
    const ep = svc && deps.picker.pick(svc.endpoints.filter((e) => e.ports.has(f.backend.port)));
    const workload = ep && deps.snapshot().workloads.get(ep.workloadUid);
    if (!svc || !ep || !workload) { deps.onMirror?.('failed'); continue; }
    const endpoint: EndpointTarget = { workload, ip: ep.ip, port: ep.ports.get(f.backend.port)!, service: svc };
    const headers = { ...x.headers };
    void x.body.whole().then((body) => {
      if (!body) { deps.onMirror?.('skipped'); return undefined; }
      if (headers['content-length'] !== undefined) headers['content-length'] = String(body.length);
      const copy: Exchange = {
        ...x, endpoint, headers, body: RequestBody.of(body), authority: `${x.authority}-shadow`, signal: AbortSignal.timeout(10_000),
        failedEndpoints: new Set(), responseModifiers: [],
      };
      return deps.forward(copy).then((r) => { discard(r); deps.onMirror?.(!r.failure && !r.local ? 'sent' : 'failed'); });
    }).catch(() => deps.onMirror?.('failed'));
  }
  return next(x);
};
