// Prometheus metrics of the node daemon (served on 15020). Labels are bounded: every value
// comes from the mesh's own state (workload owners from the snapshot, identities that passed
// verification, causes from a fixed list), never addresses, ports or anything a peer sent.
// The label children of each (direction, workloads, identities) are bound once and kept, so a
// connection costs a map lookup and a few increments, not a label hash per counter.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { LiveConnection, Peer, Verdict } from './proxy/connection-table';

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

  /** Bound label children per connection kind; as bounded as the label values themselves. */
  private readonly series = new Map<string, Series>();

  private seriesOf(r: LiveConnection): Series {
    const src = name(r.source);
    const dst = name(r.originalDestination);
    const sid = r.sourceIdentity ?? 'none';
    const did = r.destinationIdentity ?? 'none';
    const key = `${r.direction}|${src}|${dst}|${sid}|${did}`;
    let s = this.series.get(key);
    if (!s) {
      const l = { direction: r.direction, source_workload: src, destination_workload: dst, source_identity: sid, destination_identity: did };
      s = {
        labels: l, opened: {}, closed: {}, denied: new Map(),
        sent: this.bytesSent.labels(l), received: this.bytesReceived.labels(l),
      };
      this.series.set(key, s);
    }
    return s;
  }

  opened(r: LiveConnection): void {
    const s = this.seriesOf(r);
    (s.opened[r.verdict] ??= this.connectionsOpened.labels({ ...s.labels, verdict: r.verdict })).inc();
  }

  closed(r: LiveConnection): void {
    const s = this.seriesOf(r);
    (s.closed[r.verdict] ??= this.connectionsClosed.labels({ ...s.labels, verdict: r.verdict })).inc();
    if (r.verdict === 'deny') {
      let d = s.denied.get(r.cause);
      if (!d) {
        d = this.denied.labels({ direction: r.direction, destination_workload: s.labels.destination_workload, reason: r.cause });
        s.denied.set(r.cause, d);
      }
      d.inc();
    }
    if (r.bytesSent) s.sent.inc(r.bytesSent);
    if (r.bytesReceived) s.received.inc(r.bytesReceived);
  }
}

interface Bound { inc(v?: number): void }
interface Series {
  labels: { direction: string; source_workload: string; destination_workload: string; source_identity: string; destination_identity: string };
  opened: Partial<Record<Verdict, Bound>>;
  closed: Partial<Record<Verdict, Bound>>;
  denied: Map<string, Bound>;
  sent: Bound;
  received: Bound;
}

/** A peer's metric name: `namespace/owner` of its workload, else the Service, else 'unknown'. */
function name(p: Peer): string {
  if (p.workload) return `${p.workload.namespace}/${p.workload.owner ?? p.workload.name}`;
  if (p.service) return `${p.service.namespace}/${p.service.name}`;
  return 'unknown';
}
