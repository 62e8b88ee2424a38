// The waypoint's Prometheus metrics. Labels are bounded by construction: route and backend
// names come from the cluster's own objects (not from requests), response codes from a fixed
// set (anything else is its class, e.g. `5xx`).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const KNOWN_CODES = new Set([200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 405, 408, 409, 413, 429, 500, 502, 503, 504]);

export function codeLabel(status: number): string {
  if (KNOWN_CODES.has(status)) return String(status);
  const cls = Math.floor(status / 100);
  return cls >= 1 && cls <= 5 ? `${cls}xx` : 'other';
}

export class WaypointMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'route' | 'backend' | 'code' | 'code_class'>;
  readonly duration: Histogram<'route' | 'backend' | 'code_class'>;
  readonly retries: Counter<'route'>;
  readonly mirrors: Counter<'result'>;
  readonly tunnels: Counter<'protocol'>;
  /** Resilience (BackendTrafficPolicy): labels are Services and policies of the cluster, and fixed sets. */
  readonly overflows: Counter<'backend' | 'limit'>;
  readonly ejections: Counter<'backend' | 'reason'>;
  readonly ejected: Gauge<'backend'>;
  readonly faults: Counter<'policy' | 'fault'>;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'nodemesh_waypoint_' });
    this.requests = new Counter({ name: 'nodemesh_waypoint_requests_total', help: 'Requests answered, by route, backend Service and response code', labelNames: ['route', 'backend', 'code', 'code_class'], registers: [this.registry] });
    this.duration = new Histogram({
      name: 'nodemesh_waypoint_request_duration_seconds', help: 'Time from the request to the response headers, by route and backend',
      labelNames: ['route', 'backend', 'code_class'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [this.registry],
    });
    this.retries = new Counter({ name: 'nodemesh_waypoint_retries_total', help: 'Attempts after the first, by route', labelNames: ['route'], registers: [this.registry] });
    this.mirrors = new Counter({ name: 'nodemesh_waypoint_mirrored_requests_total', help: 'Mirrored copies, by result (skipped: the request body outgrew the retry buffer)', labelNames: ['result'], registers: [this.registry] });
    this.tunnels = new Counter({ name: 'nodemesh_waypoint_tunnels_total', help: 'HBONE tunnels served, by what they carried', labelNames: ['protocol'], registers: [this.registry] });
    this.overflows = new Counter({ name: 'nodemesh_waypoint_circuit_breaker_overflows_total', help: 'Requests refused (503) by a circuit breaker, by backend Service and the limit that refused them', labelNames: ['backend', 'limit'], registers: [this.registry] });
    this.ejections = new Counter({ name: 'nodemesh_waypoint_outlier_ejections_total', help: 'Endpoints ejected by outlier detection, by backend Service and detector', labelNames: ['backend', 'reason'], registers: [this.registry] });
    this.ejected = new Gauge({ name: 'nodemesh_waypoint_outlier_ejected_endpoints', help: 'Endpoints ejected at the last ejection or return, by backend Service', labelNames: ['backend'], registers: [this.registry] });
    this.faults = new Counter({ name: 'nodemesh_waypoint_faults_injected_total', help: 'Faults injected, by BackendTrafficPolicy and kind (delay, abort)', labelNames: ['policy', 'fault'], registers: [this.registry] });
  }
}
