// Prometheus metrics of the node daemon (served on 15020). Labels are bounded: workload
// names and verdicts, never addresses or ports.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { ConnectionRecord } from './proxy/connection-table';

export class NodeMetrics {
  readonly registry = new Registry();
  readonly connectionsOpened = new Counter({ name: 'nodemesh_connections_opened_total', help: 'Connections accepted by the daemon', labelNames: ['direction', 'source_workload', 'destination_workload', 'source_identity', 'destination_identity', 'verdict'], registers: [this.registry] });
  readonly connectionsClosed = new Counter({ name: 'nodemesh_connections_closed_total', help: 'Connections finished', labelNames: ['direction', 'source_workload', 'destination_workload', 'source_identity', 'destination_identity', 'verdict'], registers: [this.registry] });
  readonly bytesSent = new Counter({ name: 'nodemesh_sent_bytes_total', help: 'Bytes from source to destination', labelNames: ['direction', 'source_workload', 'destination_workload', 'source_identity', 'destination_identity'], registers: [this.registry] });
  readonly bytesReceived = new Counter({ name: 'nodemesh_received_bytes_total', help: 'Bytes from destination back to source', labelNames: ['direction', 'source_workload', 'destination_workload', 'source_identity', 'destination_identity'], registers: [this.registry] });
  readonly enrolledPods = new Gauge({ name: 'nodemesh_enrolled_pods', help: 'Pods on this node captured by the mesh', registers: [this.registry] });
  readonly denied = new Counter({ name: 'nodemesh_connections_denied_total', help: 'Connections refused, by reason (policy, peer authentication, no endpoints, ...)', labelNames: ['direction', 'destination_workload', 'reason'], registers: [this.registry] });
  readonly policyClosed = new Counter({ name: 'nodemesh_connections_closed_by_policy_total', help: 'Open connections closed because a policy change no longer allows them', registers: [this.registry] });
  /** Set by the agent: the certificates held now, read at every scrape. */
  certificates: () => { spiffeId?: string; notAfter?: string }[] = () => [];
  readonly certificateExpiry: Gauge<'identity'> = (() => {
    const metrics = this;
    return new Gauge({
      name: 'nodemesh_certificate_expiry_seconds', help: 'Seconds until each workload certificate held on this node expires',
      labelNames: ['identity'], registers: [this.registry],
      collect(this: Gauge<'identity'>) {
        this.reset();
        for (const c of metrics.certificates()) {
          if (c.spiffeId && c.notAfter) this.set({ identity: c.spiffeId }, (Date.parse(c.notAfter) - Date.now()) / 1000);
        }
      },
    });
  })();
  readonly enrolFailures = new Gauge({ name: 'nodemesh_enrol_failed_pods', help: 'Pods on this node that should be enrolled but are not (see /debug/workloads)', registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'nodemesh_node_' });
  }

  private labels(r: ConnectionRecord) {
    const name = (p?: { workload?: { namespace: string; name: string }; service?: { namespace: string; name: string } }) =>
      p?.workload ? `${p.workload.namespace}/${p.workload.name}` : p?.service ? `${p.service.namespace}/${p.service.name}` : 'unknown';
    return {
      direction: r.direction, source_workload: name(r.source), destination_workload: name(r.originalDestination),
      source_identity: r.sourceIdentity ?? 'none', destination_identity: r.destinationIdentity ?? 'none',
    };
  }

  opened(r: ConnectionRecord): void {
    this.connectionsOpened.inc({ ...this.labels(r), verdict: r.verdict });
  }

  closed(r: ConnectionRecord): void {
    const l = this.labels(r);
    this.connectionsClosed.inc({ ...l, verdict: r.verdict });
    if (r.verdict === 'deny') this.denied.inc({ direction: r.direction, destination_workload: l.destination_workload, reason: r.reason.split(':')[0] });
    if (r.bytesSent) this.bytesSent.inc(l, r.bytesSent);
    if (r.bytesReceived) this.bytesReceived.inc(l, r.bytesReceived);
  }
}
