// The node agent: wires the state source, the snapshot, enrolment, certificates, the
// per-pod handlers and the admin servers. I/O comes in through injected dependencies
// (datapath, socket factory, source, identity), so tests run it with in-memory ones.
import type * as http from 'node:http';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { NodeConfig } from './config';
import type { Datapath } from './redirection/datapath';
import type { SocketFactory } from './redirection/socket-factory';
import { Counter, Gauge } from 'prom-client';
import type { SkippedObject, SourceBatch, StateSource } from './sources/source';
import { EMPTY_SNAPSHOT, PodRuntime, Snapshot, SnapshotChange, Workload, applyChanges, workloadsOnNode } from './state/snapshot';
import { PodFinder, PodSandboxTracker } from './redirection/pod-sandbox-tracker';
import { EnrolmentController } from './redirection/enrolment';
import { ConnectionTable } from './proxy/connection-table';
import { handleOutbound, IdentitySource, ProxyDeps } from './proxy/outbound';
import { handleInboundPlaintext } from './proxy/inbound-plaintext';
import { HboneInbound } from './proxy/inbound-hbone';
import { OpenInboundSet } from './proxy/open-inbound';
import { ReleaseAfterDrop } from './proxy/memory-release';
import { PowerOfTwoChoices } from './routing/balancer';
import { startAdminServers, type BindListener } from './admin/admin-server';
import { readiness } from './admin/readiness';
import { registerUdpPassthroughMetric } from './admin/udp-metric';
import { NodeMetrics } from './metrics';
import { policyEnforcement } from './policy/enforcement';
import type { HboneClient } from './tunnel/hbone-client';
import { CleanEndSet } from './tunnel/clean-end';
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
  /** Finds this node's pods' sandboxes (Kubernetes source); the sandbox's pods carry theirs as annotations. */
  podFinder?: PodFinder;
  /** Creates the admin/metrics/readiness TCP listeners (SO_REUSEPORT, for hitless restarts);
   * default: Node's own listen. */
  bindListener?: BindListener;
  /** Which workloads to enrol (default: every pod on this node); see EnrolmentController. */
  enrolScope?: (s: Snapshot) => Workload[];
  /** Gives freed memory back to the system (native releaseMemory); called after most of a
   * large number of connections closed (proxy/memory-release.ts). */
  releaseMemory?: () => void;
}

/** How often the open connections are sampled for ReleaseAfterDrop. */
const MEMORY_SAMPLE_MS = 2000;
/** Busy, for ReleaseAfterDrop: the event loop worked more than this share of the last sample.
 * An idle daemon (timers only, even holding 10,000 quiet connections) stays well under it;
 * any steady traffic (~100 requests/s and up) is above it. */
const RELEASE_BUSY_ELU = 0.01;

/** Skipped objects kept for /debug/snapshot (the metric counts them all). */
const RECENT_SKIPPED = 50;

export class NodeAgent {
  private snapshot: Snapshot = EMPTY_SNAPSHOT;
  private recentSkipped: SkippedObject[] = [];
  /** Until the source has synced every kind, the snapshot is not acted on (no enrolment, no
   * unenrolment of pods a previous run left enrolled: the cluster is only half known). */
  private synced = false;
  private readonly tracker: PodSandboxTracker | undefined;
  private pendingRuntime: SnapshotChange[] = [];
  private readonly metrics = new NodeMetrics();
  private readonly skippedObjects = new Counter({ name: 'nodemesh_source_objects_skipped_total', help: 'Objects from the state source that failed validation or conversion and were skipped, by kind and reason', labelNames: ['kind', 'reason'], registers: [this.metrics.registry] });
  private readonly sandboxLookupFailures = new Counter({ name: 'nodemesh_pod_sandbox_lookup_failures_total', help: 'Attempts to find a local pod\'s network namespace that failed (retried with backoff)', registers: [this.metrics.registry] });
  private readonly podsUnlocated = new Gauge({ name: 'nodemesh_pods_sandbox_not_found', help: 'Local pods to enrol whose network namespace is not found yet (see /debug/workloads)', registers: [this.metrics.registry] });
  readonly connections: ConnectionTable;
  readonly enrolment: EnrolmentController;
  private readonly openInbound = new OpenInboundSet();
  /** Outbound tunnels, ended cleanly (FIN, not RST) at the drain deadline. */
  private readonly outboundCleanEnds = new CleanEndSet();
  private readonly hboneInbound: HboneInbound | undefined;
  private servers: http.Server[] = [];
  private phase: 'starting' | 'running' | 'draining' = 'starting';
  private resync: NodeJS.Timeout | undefined;
  private memorySampler: NodeJS.Timeout | undefined;

  constructor(private readonly cfg: Readonly<NodeConfig>, private readonly deps: NodeAgentDeps) {
    this.connections = new ConnectionTable(deps.log.child({ component: 'connections' }),
      { opened: (r) => this.metrics.opened(r), closed: (r) => this.metrics.closed(r) });
    const proxy: ProxyDeps = {
      node: cfg.nodeName, trustDomain: cfg.trustDomain, datapath: deps.datapath, sockets: deps.sockets,
      snapshot: () => this.snapshot, connections: this.connections, log: deps.log.child({ component: 'proxy' }),
      picker: new PowerOfTwoChoices(), identities: deps.identities, hbone: deps.hbone,
      localPod: (uid) => this.enrolment.podByUid(uid), openInbound: this.openInbound,
      cleanEnds: this.outboundCleanEnds,
    };
    if (deps.identities) {
      this.hboneInbound = new HboneInbound({
        trustDomain: cfg.trustDomain, identities: deps.identities, sockets: deps.sockets, snapshot: () => this.snapshot,
        connections: this.connections, log: deps.log.child({ component: 'hbone-server' }),
      });
    }
    this.enrolment = new EnrolmentController({
      node: cfg.nodeName, datapath: deps.datapath, sockets: deps.sockets, log: deps.log.child({ component: 'enrolment' }), scope: deps.enrolScope,
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
    if (deps.podFinder) {
      this.tracker = new PodSandboxTracker({
        finder: deps.podFinder, log: deps.log.child({ component: 'pod-locator' }),
        onChange: (uid, runtime) => this.queueRuntime(uid, runtime),
        onFailure: () => this.sandboxLookupFailures.inc(),
      });
    }
    registerUdpPassthroughMetric(this.metrics.registry, () => deps.datapath.udpPassthrough?.() ?? []);
  }

  currentSnapshot(): Snapshot { return this.snapshot; }

  async start(): Promise<void> {
    await this.deps.datapath.start();
    if (!this.deps.identities) this.deps.log.warn('no identity service configured (NODEMESH_IDENTITY_ADDRESS): connections to meshed pods are refused');
    await this.deps.source.start((b) => this.onBatch(b));
    this.synced = true;
    // Pods already running here are located before the first reconcile, so a restart does not
    // unenrol them for want of a network namespace.
    this.trackLocalPods();
    this.flushRuntime();
    await this.enrolment.reconcile(this.snapshot).then(() => this.afterReconcile());
    // Pods that failed to enrol (namespace not there yet, transient errors) are retried.
    this.resync = setInterval(() => {
      if (this.enrolment.status().failed.length > 0) void this.enrolment.reconcile(this.snapshot).then(() => this.afterReconcile());
    }, 2000);
    this.resync.unref();
    const release = this.deps.releaseMemory;
    if (release) {
      const after = new ReleaseAfterDrop(() => {
        const before = process.memoryUsage.rss();
        const t0 = Date.now();
        release();
        this.deps.log.info({ rssBeforeMiB: Math.round(before / 2 ** 20), rssAfterMiB: Math.round(process.memoryUsage.rss() / 2 ** 20), tookMs: Date.now() - t0 }, 'most connections closed: memory given back');
      });
      let elu: EventLoopUtilization = performance.eventLoopUtilization();
      this.memorySampler = setInterval(() => {
        const now = performance.eventLoopUtilization();
        const busy = performance.eventLoopUtilization(now, elu).utilization > RELEASE_BUSY_ELU;
        elu = now;
        after.observe(this.connections.openCount + (this.hboneInbound?.openTunnels() ?? 0), busy);
      }, MEMORY_SAMPLE_MS);
      this.memorySampler.unref();
    }
    this.servers = await startAdminServers(this.cfg, {
      ready: () => readiness({
        phase: this.phase,
        failedPods: this.enrolment.status().failed,
        certificates: this.deps.identities ? this.certificatesOfEnrolledPods() : undefined,
      }),
      json: {
        '/debug/workloads': () => ({ node: this.cfg.nodeName, snapshotVersion: this.snapshot.version, ...this.enrolment.status(), sandboxNotFound: this.tracker?.unlocated() ?? [] }),
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

  private onBatch(b: SourceBatch): void {
    for (const e of b.skipped) {
      this.skippedObjects.inc({ kind: e.kind, reason: e.reason });
      this.deps.log.warn({ kind: e.kind, object: e.object, reason: e.reason, error: e.error }, 'object skipped; the last good state stays in force');
      this.recentSkipped.push(e);
    }
    if (this.recentSkipped.length > RECENT_SKIPPED) this.recentSkipped = this.recentSkipped.slice(-RECENT_SKIPPED);
    this.applySnapshot(b.changes);
  }

  private applySnapshot(changes: readonly SnapshotChange[]): void {
    if (changes.length === 0) return;
    try {
      this.snapshot = applyChanges(this.snapshot, changes, this.snapshot.version + 1);
    } catch (err) {
      // A bug here must not take the node down: the data path keeps the last good snapshot.
      this.deps.log.error({ err, changes: changes.length }, 'cannot apply state changes; keeping the last good snapshot');
      return;
    }
    if (!this.synced) return;
    this.trackLocalPods();
    void this.enrolment.reconcile(this.snapshot).then(() => this.afterReconcile());
  }

  /** Local pods the mesh should capture: the tracker finds their sandboxes (Kubernetes source
   * only). Pods whose sandbox is given by annotation (the sandbox cluster publishing to an API
   * server) are not looked for. */
  private trackLocalPods(): void {
    const tracker = this.tracker;
    if (!tracker) return;
    const want = workloadsOnNode(this.snapshot, this.cfg.nodeName)
      .filter((w) => w.enrolled && (w.phase === 'Pending' || w.phase === 'Running') && (w.netnsPath === undefined || tracker.isTracking(w.uid)));
    tracker.track(want);
    this.podsUnlocated.set(tracker.unlocated().length);
  }

  /** Runtime facts arrive from the tracker while a snapshot is being applied: batch them. */
  private queueRuntime(uid: string, runtime: PodRuntime | undefined): void {
    this.pendingRuntime.push({ op: 'pod-runtime', uid, runtime });
    if (this.pendingRuntime.length === 1) queueMicrotask(() => this.flushRuntime());
  }

  private flushRuntime(): void {
    const changes = this.pendingRuntime;
    this.pendingRuntime = [];
    this.applySnapshot(changes);
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
      skipped: this.recentSkipped,
      workloads: [...s.workloads.values()],
      services: [...s.services.values()].map((e) => ({ ...e, endpoints: e.endpoints.map((x) => ({ ...x, ports: Object.fromEntries(x.ports) })) })),
      authorizationPolicies: s.authorizationPolicies,
      peerAuthentications: s.peerAuthentications,
      gateways: [...s.gateways.values()],
      httpRoutes: [...s.httpRoutes.values()],
      grpcRoutes: [...s.grpcRoutes.values()],
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
    let open = this.connections.openCount;
    while (open > 0 && Date.now() - start < deadlineMs) {
      await new Promise((r) => setTimeout(r, 100));
      open = this.connections.openCount;
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
    if (this.memorySampler) clearInterval(this.memorySampler);
    this.deps.source.stop();
    this.tracker?.stop();
    // Listeners first: the kernel hands what is queued on them to a newer daemon's.
    await this.enrolment.stop();
    const drained = this.drain(drainMs).then(async (left) => {
      this.deps.log.info({ open: left.open, waitedMs: left.waitedMs, deadlineMs: drainMs },
        left.open === 0 ? 'drained: no connection left open' : 'drain deadline reached: ending the connections still open cleanly');
      // Past the deadline, tunnels still open end with FIN toward our apps and END_STREAM toward
      // the peers (whose daemons FIN their apps): a restart must not look like a reset.
      await this.outboundCleanEnds.endAll();
    });
    await Promise.all([drained, this.hboneInbound?.close(drainMs)]);
    for (const s of this.servers) s.close();
    // What did not end within the grace is cancelled: its peers end the app connections at
    // once instead of waiting for a session that will never answer.
    await this.deps.hbone?.close({ force: this.connections.list().open.length > 0 });
    this.deps.identities?.stop();
    await this.deps.datapath.stop(opts);
  }
}
