// Stage (outermost): request metrics and the access log. One log line per request with both
// identities (the caller's, from its certificate, and the waypoint's own), the route, the
// backend and endpoint, the status, the attempts and, for the waypoint's own answers, why.
import type { Logger } from 'pino';
import type { Layer } from './exchange';
import { codeLabel, type WaypointMetrics } from './waypoint-metrics';

export const metricsStage = (deps: { metrics: WaypointMetrics; log: Logger; waypointId: () => string }): Layer => (next) => async (x) => {
  const reply = await next(x);
  const seconds = (performance.now() - x.startedAt) / 1000;
  const route = x.selection?.route.name ? `${x.selection.route.namespace}/${x.selection.route.name}` : '';
  const backend = x.backend ? `${x.backend.namespace}/${x.backend.name}` : '';
  const code = codeLabel(reply.status);
  const codeClass = `${Math.floor(reply.status / 100)}xx`;
  deps.metrics.requests.inc({ route, backend, code, code_class: codeClass });
  deps.metrics.duration.observe({ route, backend, code_class: codeClass }, seconds);
  if (x.attempts > 1) deps.metrics.retries.inc({ route }, x.attempts - 1);
  deps.log.info({
    caller: x.tunnel.sourceId, waypoint: deps.waypointId(), service: `${x.tunnel.service.namespace}/${x.tunnel.service.name}:${x.tunnel.port}`,
    method: x.method.slice(0, 32), path: x.path.slice(0, 256), protocol: x.tunnel.protocol, route: route || undefined, backend: backend || undefined,
    endpoint: x.endpoint ? `${x.endpoint.ip}:${x.endpoint.port}` : undefined, status: reply.status, attempts: x.attempts,
    durationMs: Math.round(seconds * 1e4) / 10, traceparent: x.traceparent, reason: reply.local,
  }, 'waypoint request');
  return reply;
};
