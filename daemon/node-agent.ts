// The node agent: wires the state source, the snapshot, enrolment, the per-pod handlers and
// the admin servers. I/O comes in through injected dependencies (datapath, socket factory,
// source), so tests run it with in-memory ones.
import type * as http from 'node:http';
import type { Logger } from 'pino';
import type { NodeConfig } from './config';
import type { Datapath } from './redirection/datapath';
import type { SocketFactory } from './redirection/socket-factory';
import type { StateSource, SourceUpdate } from './sources/source';
import { EMPTY_SNAPSHOT, Snapshot, buildSnapshot } from './state/snapshot';
import { EnrolmentController } from './redirection/enrolment';
import { ConnectionTable } from './proxy/connection-table';
import { handleOutbound } from './proxy/outbound';
import { handleInboundPlaintext } from './proxy/inbound-plaintext';
import { startAdminServers } from './admin/admin-server';
import { NodeMetrics } from './metrics';

export interface NodeAgentDeps {
  datapath: Datapath;
  sockets: SocketFactory;
  source: StateSource;
  log: Logger;
}

export class NodeAgent {
  private snapshot: Snapshot = EMPTY_SNAPSHOT;
  private sourceErrors: SourceUpdate['errors'] = [];
  private readonly metrics = new NodeMetrics();
  readonly connections: ConnectionTable;
  readonly enrolment: EnrolmentController;
  private servers: http.Server[] = [];
  private ready = false;
  private resync: NodeJS.Timeout | undefined;

  constructor(private readonly cfg: Readonly<NodeConfig>, private readonly deps: NodeAgentDeps) {
    this.connections = new ConnectionTable(deps.log.child({ component: 'connections' }),
      { opened: (r) => this.metrics.opened(r), closed: (r) => this.metrics.closed(r) });
    const handlerDeps = { datapath: deps.datapath, sockets: deps.sockets, snapshot: () => this.snapshot, connections: this.connections, log: deps.log };
    this.enrolment = new EnrolmentController({
      node: cfg.nodeName, datapath: deps.datapath, sockets: deps.sockets, log: deps.log.child({ component: 'enrolment' }),
      handlers: {
        outbound: (pod, s) => handleOutbound(handlerDeps, pod, s),
        inboundPlaintext: (pod, s) => handleInboundPlaintext(handlerDeps, pod, s),
        inboundHbone: (pod, s) => {
          // The HBONE server arrives with the tunnel; until then nothing is accepted here.
          deps.log.warn({ pod: `${pod.workload.namespace}/${pod.workload.name}`, from: s.remoteAddress }, 'HBONE connection refused: the tunnel is not enabled in this build');
          s.destroy();
        },
      },
    });
  }

  currentSnapshot(): Snapshot { return this.snapshot; }

  async start(): Promise<void> {
    await this.deps.datapath.start();
    let version = 0;
    let first: Promise<void> | undefined;
    await this.deps.source.start((u) => {
      this.sourceErrors = u.errors;
      for (const e of u.errors) this.deps.log.warn({ object: e.object, error: e.error }, 'object ignored: cannot be read');
      this.snapshot = buildSnapshot(u.resources, ++version);
      const p = this.enrolment.reconcile(this.snapshot).then(() => this.updateGauges());
      first ??= p;
    });
    await first;
    // Pods that failed to enrol (namespace not there yet, transient errors) are retried.
    this.resync = setInterval(() => {
      if (this.enrolment.status().failed.length > 0) void this.enrolment.reconcile(this.snapshot).then(() => this.updateGauges());
    }, 2000);
    this.resync.unref();
    this.servers = await startAdminServers(this.cfg, {
      ready: () => ({ ready: this.ready, reasons: this.ready ? [] : ['starting'] }),
      json: {
        '/debug/workloads': () => ({ node: this.cfg.nodeName, snapshotVersion: this.snapshot.version, ...this.enrolment.status() }),
        '/debug/connections': () => this.connections.list(),
        '/debug/datapath': () => this.deps.datapath.status(),
        '/debug/snapshot': () => this.snapshotSummary(),
        '/debug/config': () => this.cfg,
      },
    }, this.metrics.registry);
    this.ready = true;
    this.deps.log.info({ node: this.cfg.nodeName, source: this.deps.source.name }, 'nodemesh-node ready');
  }

  private updateGauges(): void {
    const st = this.enrolment.status();
    this.metrics.enrolledPods.set(st.pods.filter((p) => p.enrolled).length);
    this.metrics.enrolFailures.set(st.failed.length);
  }

  private snapshotSummary() {
    const s = this.snapshot;
    return {
      version: s.version,
      sourceErrors: this.sourceErrors,
      workloads: [...s.workloads.values()],
      services: [...s.services.values()].map((e) => ({ ...e, endpoints: e.endpoints.map((x) => ({ ...x, ports: Object.fromEntries(x.ports) })) })),
      authorizationPolicies: s.authorizationPolicies,
      peerAuthentications: s.peerAuthentications,
    };
  }

  /** keepAttached: a restart (programs stay, pods stay captured and fail closed while we are
   * away); false: uninstall from this node. */
  async stop(opts: { keepAttached: boolean }): Promise<void> {
    this.ready = false;
    if (this.resync) clearInterval(this.resync);
    this.deps.source.stop();
    for (const s of this.servers) s.close();
    await this.enrolment.stop();
    await this.deps.datapath.stop(opts);
  }
}
