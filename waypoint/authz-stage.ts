// Stage: L7 authorization (l7-authorization.ts) for every request, before any routing, as
// Istio's waypoint does. A refusal answers 403 and the access log says which policy and why.
import type { Snapshot } from '../daemon/state/snapshot';
import { localReply, type Layer } from './exchange';
import { authorizeRequest } from './l7-authorization';

export const authzStage = (deps: { snapshot: () => Snapshot; gateway: { namespace: string; name: string } }): Layer => (next) => (x) => {
  const t = x.tunnel;
  const v = authorizeRequest(deps.snapshot().authorizationPolicies, { principal: t.sourceId, ip: t.sourceAddress },
    { gateway: deps.gateway, service: t.service, port: t.port }, { method: x.method, path: x.path, host: x.authority, headers: x.headers });
  if (v.allow) return next(x);
  return Promise.resolve(localReply(403, `RBAC: access denied: ${v.reason}: ${v.message}`));
};
