// Prometheus metrics of the node daemon (served on 15020). Labels are bounded: every value
// comes from the mesh's own state (workload owners from the snapshot, identities that passed
// verification, causes from a fixed list), never addresses, ports or anything a peer sent.
// Per-connection counts are plain numbers in one record per (direction, workloads,
// identities), found by one map lookup; prom-client reads them when scraped (collect). A
// bound prom-client child hashes its labels on every inc(), which made the four increments
// of a connection cost more than its record and its log line together.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { LiveConnection, Peer, Verdict } from './proxy/connection-table';

export class NodeMetrics {
  readonly registry = new Registry();
  /** Per-connection counts per label set; as bounded as the label values themselves. */
  private readonly series = new Map<string, Series>();
  readonly connectionsOpened = this.counter('nodemesh_connections_opened_total', 'Connections accepted by the daemon', [...SERIES_LABELS, 'verdict'], (s, add) => {
    for (const v of VERDICTS) if (s.opened[v]) add({ ...s.labels, verdict: v }, s.opened[v]);
  });
  readonly connectionsClosed = this.counter('nodemesh_connections_closed_total', 'Connections finished', [...SERIES_LABELS, 'verdict'], (s, add) => {
    for (const v of VERDICTS) if (s.closed[v]) add({ ...s.labels, verdict: v }, s.closed[v]);
  });
  readonly bytesSent = this.counter('nodemesh_sent_bytes_total', 'Bytes from source to destination', SERIES_LABELS, (s, add) => { if (s.sent) add(s.labels, s.sent); });
  readonly bytesReceived = this.counter('nodemesh_received_bytes_total', 'Bytes from destination back to source', SERIES_LABELS, (s, add) => { if (s.received) add(s.labels, s.received); });
  readonly denied = this.counter('nodemesh_connections_denied_total', 'Connections refused, by reason (policy, peer authentication, no endpoints, ...)', ['direction', 'destination_workload', 'reason'], (s, add) => {
    for (const [reason, n] of s.denied) add({ direction: s.labels.direction, destination_workload: s.labels.destination_workload, reason }, n);
  });
  readonly enrolledPods = new Gauge({ name: 'nodemesh_enrolled_pods', help: 'Pods on this node captured by the mesh', registers: [this.registry] });
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

  /** A connection counter whose values are this.series' totals, read at every scrape. */
  private counter(name: string, help: string, labelNames: readonly string[], each: (s: Series, add: (labels: Record<string, string>, n: number) => void) => void): Counter<string> {
    const series = () => this.series;
    return new Counter({
      name, help, registers: [this.registry], labelNames,
      // Labels sharing values across series (e.g. denied) add up: reset, then add every series.
      collect(this: Counter<string>) {
        this.reset();
        for (const s of series().values()) each(s, (labels, n) => this.inc(labels, n));
      },
    });
  }

  private seriesOf(r: LiveConnection): Series {
    const src = name(r.source);
    const dst = name(r.originalDestination);
    const sid = r.sourceIdentity ?? 'none';
    const did = r.destinationIdentity ?? 'none';
    const key = `${r.direction}|${src}|${dst}|${sid}|${did}`;
    let s = this.series.get(key);
    if (!s) {
      s = {
        labels: { direction: r.direction, source_workload: src, destination_workload: dst, source_identity: sid, destination_identity: did },
        opened: { allow: 0, deny: 0, error: 0 }, closed: { allow: 0, deny: 0, error: 0 }, denied: new Map(), sent: 0, received: 0,
      };
      this.series.set(key, s);
    }
    return s;
  }

  opened(r: LiveConnection): void {
    this.seriesOf(r).opened[r.verdict]++;
  }

  closed(r: LiveConnection): void {
    const s = this.seriesOf(r);
    s.closed[r.verdict]++;
    if (r.verdict === 'deny') s.denied.set(r.cause, (s.denied.get(r.cause) ?? 0) + 1);
    s.sent += r.bytesSent;
    s.received += r.bytesReceived;
  }
}

const VERDICTS: readonly Verdict[] = ['allow', 'deny', 'error'];
const SERIES_LABELS = ['direction', 'source_workload', 'destination_workload', 'source_identity', 'destination_identity'] as const;

interface Series {
  labels: { direction: string; source_workload: string; destination_workload: string; source_identity: string; destination_identity: string };
  opened: Record<Verdict, number>;
  closed: Record<Verdict, number>;
  /** Refusals by cause. */
  denied: Map<string, number>;
  sent: number;
  received: number;
}

/** A peer's metric name: `namespace/owner` of its workload, else the Service, else 'unknown'. */
function name(p: Peer): string {
  if (p.workload) return `${p.workload.namespace}/${p.workload.owner ?? p.workload.name}`;
  if (p.service) return `${p.service.namespace}/${p.service.name}`;
  return 'unknown';
}
