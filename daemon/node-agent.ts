// The node agent: wires the state source, the snapshot, enrolment, certificates, the
// per-pod handlers and the admin servers. I/O comes in through injected dependencies
// (datapath, socket factory, source, identity), so tests run it with in-memory ones.
import type * as http from 'node:http';
import type { Logger } from 'pino';
import type { NodeConfig } from './config';
import type { Datapath } from './redirection/datapath';
import type { SocketFactory } from './redirection/socket-factory';
import type { StateSource, SourceUpdate } from './sources/source';
import { EMPTY_SNAPSHOT, Snapshot, buildSnapshot } from './state/snapshot';
import { EnrolmentController } from './redirection/enrolment';
import { ConnectionTable } from './proxy/connection-table';
import { handleOutbound, IdentitySource, ProxyDeps } from './proxy/outbound';
import { handleInboundPlaintext } from './proxy/inbound-plaintext';
import { HboneInbound } from './proxy/inbound-hbone';
import { OpenInboundSet } from './proxy/open-inbound';
import { PowerOfTwoChoices } from './routing/balancer';
import { startAdminServers, type BindListener } from './admin/admin-server';
import { readiness } from './admin/readiness';
import { registerUdpPassthroughMetric } from './admin/udp-metric';
import { NodeMetrics } from './metrics';
import { policyEnforcement } from './policy/enforcement';
import type { HboneClient } from './tunnel/hbone-client';
import type { WorkloadIdentityKey, IdentityStatus } from './identity/certificate-manager';

/** What the agent needs of the certificate manager. */
export interface NodeIdentities extends IdentitySource {
  ensure(ids: readonly WorkloadIdentityKey[]): unknown;
  status(): IdentityStatus[];
  stop(): void;
}

export interface NodeAgentDeps {
  datapath: Datapath;
  sockets: SocketFactory;
  source: StateSource;
  log: Logger;
  /** Certificates and the tunnel; without them meshed destinations are refused. */
  identities?: NodeIdentities;
  hbone?: HboneClient;
  /** Creates the admin/metrics/readiness TCP listeners (SO_REUSEPORT, for hitless restarts);
   * default: Node's own listen. */
  bindListener?: BindListener;
}

export class NodeAgent {
  private snapshot: Snapshot = EMPTY_SNAPSHOT;
  private sourceErrors: SourceUpdate['errors'] = [];
  private readonly metrics = new NodeMetrics();
  readonly connections: ConnectionTable;
  readonly enrolment: EnrolmentController;
  private readonly openInbound = new OpenInboundSet();
  private readonly hboneInbound: HboneInbound | undefined;
  private servers: http.Server[] = [];
  private phase: 'starting' | 'running' | 'draining' = 'starting';
  private resync: NodeJS.Timeout | undefined;

  constructor(private readonly cfg: Readonly<NodeConfig>, private readonly deps: NodeAgentDeps) {
    this.connections = new ConnectionTable(deps.log.child({ component: 'connections' }),
      { opened: (r) => this.metrics.opened(r), closed: (r) => this.metrics.closed(r) });
    const proxy: ProxyDeps = {
      node: cfg.nodeName, trustDomain: cfg.trustDomain, datapath: deps.datapath, sockets: deps.sockets,
      snapshot: () => this.snapshot, connections: this.connections, log: deps.log.child({ component: 'proxy' }),
      picker: new PowerOfTwoChoices(), identities: deps.identities, hbone: deps.hbone,
      localPod: (uid) => this.enrolment.podByUid(uid), openInbound: this.openInbound,
    };
    if (deps.identities) {
      this.hboneInbound = new HboneInbound({
        trustDomain: cfg.trustDomain, identities: deps.identities, sockets: deps.sockets, snapshot: () => this.snapshot,
        connections: this.connections, log: deps.log.child({ component: 'hbone-server' }),
      });
    }
    this.enrolment = new EnrolmentController({
      node: cfg.nodeName, datapath: deps.datapath, sockets: deps.sockets, log: deps.log.child({ component: 'enrolment' }),
      handlers: {
        outbound: (pod, s) => handleOutbound(proxy, pod, s),
        inboundPlaintext: (pod, s) => handleInboundPlaintext(proxy, pod, s),
        inboundHbone: (pod, s) => {
          if (this.hboneInbound) return this.hboneInbound.handle(pod, s);
          deps.log.warn({ pod: `${pod.workload.namespace}/${pod.workload.name}`, from: s.remoteAddress }, 'HBONE connection refused: no identity service configured on this node');
          s.destroy();
        },
      },
    });
    this.metrics.certificates = () => deps.identities?.status() ?? [];
    registerUdpPassthroughMetric(this.metrics.registry, () => deps.datapath.udpPassthrough?.() ?? []);
  }

  currentSnapshot(): Snapshot { return this.snapshot; }

  async start(): Promise<void> {
    await this.deps.datapath.start();
    if (!this.deps.identities) this.deps.log.warn('no identity service configured (NODEMESH_IDENTITY_ADDRESS): connections to meshed pods are refused');
    let version = 0;
    let first: Promise<void> | undefined;
    await this.deps.source.start((u) => {
      this.sourceErrors = u.errors;
      for (const e of u.errors) this.deps.log.warn({ object: e.object, error: e.error }, 'object ignored: cannot be read');
      this.snapshot = buildSnapshot(u.resources, ++version);
      const p = this.enrolment.reconcile(this.snapshot).then(() => this.afterReconcile());
      first ??= p;
    });
    await first;
    // Pods that failed to enrol (namespace not there yet, transient errors) are retried.
    this.resync = setInterval(() => {
      if (this.enrolment.status().failed.length > 0) void this.enrolment.reconcile(this.snapshot).then(() => this.afterReconcile());
    }, 2000);
    this.resync.unref();
    this.servers = await startAdminServers(this.cfg, {
      ready: () => readiness({
        phase: this.phase,
        failedPods: this.enrolment.status().failed,
        certificates: this.deps.identities ? this.certificatesOfEnrolledPods() : undefined,
      }),
      json: {
        '/debug/workloads': () => ({ node: this.cfg.nodeName, snapshotVersion: this.snapshot.version, ...this.enrolment.status() }),
        '/debug/connections': () => this.connections.list(),
        '/debug/datapath': () => this.deps.datapath.status(),
        '/debug/snapshot': () => this.snapshotSummary(),
        '/debug/certificates': () => ({ trustDomain: this.cfg.trustDomain, identities: this.deps.identities?.status() ?? [] }),
        '/debug/pools': () => ({ client: this.deps.hbone?.stats() ?? null, servers: this.hboneInbound?.stats() ?? [] }),
        '/debug/config': () => this.cfg,
        // Which process answers (a hitless restart waits until the new one does).
        '/debug/process': () => ({ pid: process.pid, phase: this.phase }),
      },
    }, this.metrics.registry, this.deps.bindListener);
    this.phase = 'running';
    this.deps.log.info({ node: this.cfg.nodeName, source: this.deps.source.name }, 'nodemesh-node ready');
  }

  /** After enrolment caught up with a snapshot: certificates for the enrolled pods' service
   * accounts, an HBONE server per enrolled pod, and open connections re-checked against the
   * policies now in force. */
  private afterReconcile(): void {
    const pods = this.enrolment.enrolledPods();
    const seen = new Set<string>();
    const ids: WorkloadIdentityKey[] = [];
    for (const p of pods) {
      const key = `${p.workload.namespace}/${p.workload.serviceAccount}`;
      if (!seen.has(key)) { seen.add(key); ids.push({ namespace: p.workload.namespace, serviceAccount: p.workload.serviceAccount }); }
    }
    this.deps.identities?.ensure(ids);
    if (this.hboneInbound) {
      const live = new Set(pods.map((p) => p.workload.uid));
      for (const p of pods) this.hboneInbound.ensure(p);
      for (const uid of this.hboneInbound.uids()) if (!live.has(uid)) void this.hboneInbound.remove(uid);
    }
    const closed = this.openInbound.recheck(this.snapshot) + (this.hboneInbound?.recheck(this.snapshot) ?? 0);
    if (closed > 0) {
      this.metrics.policyClosed.inc(closed);
      this.deps.log.info({ closed, snapshot: this.snapshot.version }, 'closed open connections the new policies refuse');
    }
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
      policyEnforcement: policyEnforcement(s),
    };
  }

  /** Certificates of the service accounts of enrolled pods (readiness). */
  private certificatesOfEnrolledPods() {
    const want = new Set(this.enrolment.enrolledPods().map((p) => `${p.workload.namespace}/${p.workload.serviceAccount}`));
    return (this.deps.identities?.status() ?? []).filter((c) => want.has(`${c.namespace}/${c.serviceAccount}`));
  }

  /** Waits until no connection is open, or the deadline; returns how many were left. */
  private async drain(deadlineMs: number): Promise<{ open: number; waitedMs: number }> {
    const start = Date.now();
    let open = this.connections.list().open.length;
    while (open > 0 && Date.now() - start < deadlineMs) {
      await new Promise((r) => setTimeout(r, 100));
      open = this.connections.list().open.length;
    }
    return { open, waitedMs: Date.now() - start };
  }

  /** keepAttached: a restart (programs stay, pods stay captured and fail closed while we are
   * away, or are served by the newer daemon that already listens beside us); false:
   * uninstall from this node. drainMs: how long open connections may take to finish after
   * the listeners closed (new connections go to the newer daemon); then they are closed. */
  async stop(opts: { keepAttached: boolean; drainMs?: number }): Promise<void> {
    const drainMs = opts.drainMs ?? 0;
    this.phase = 'draining';
    if (this.resync) clearInterval(this.resync);
    this.deps.source.stop();
    // Listeners first: the kernel hands what is queued on them to a newer daemon's.
    await this.enrolment.stop();
    const [left] = await Promise.all([this.drain(drainMs), this.hboneInbound?.close(drainMs)]);
    this.deps.log.info({ open: left.open, waitedMs: left.waitedMs, deadlineMs: drainMs },
      left.open === 0 ? 'drained: no connection left open' : 'drain deadline reached: closing the connections still open');
    for (const s of this.servers) s.close();
    // Past the deadline, tunnels still open are cancelled: their peers end the app
    // connections at once instead of waiting for a session that will never answer.
    await this.deps.hbone?.close({ force: left.open > 0 });
    this.deps.identities?.stop();
    await this.deps.datapath.stop(opts);
  }
}
