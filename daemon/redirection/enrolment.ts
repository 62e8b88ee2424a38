// Keeps the kernel and the in-pod listeners in line with the snapshot: every enrolled pod on
// this node gets its listeners (15001 outbound, 15006 inbound plaintext, 15008 HBONE; each
// also on IPv6 when the pod has an IPv6 address) created inside its network namespace, then
// is enrolled in the datapath with its port exclusions (annotations); pods that leave the
// mesh (label change, deletion) are unenrolled. Reconciles run one at a time, newest state
// wins.
import type * as net from 'node:net';
import type { Logger } from 'pino';
import { Datapath, MESH_PORTS } from './datapath';
import type { SocketFactory } from './socket-factory';
import type { Snapshot, Workload } from '../state/snapshot';
import { workloadsOnNode } from '../state/snapshot';
import type { PodContext } from '../proxy/outbound';
import { DaemonErrors, NodemeshError } from '../errors';
import { portExclusions } from './port-exclusions';

export interface PodHandlers {
  outbound(pod: PodContext, s: net.Socket): void;
  inboundPlaintext(pod: PodContext, s: net.Socket): void;
  inboundHbone(pod: PodContext, s: net.Socket): void;
}

interface EnrolledPod {
  ctx: PodContext;
  servers: net.Server[];
  /** What enrolment was based on: a change re-enrols. */
  key: string;
  enrolledAt: string;
}

export interface WorkloadStatus {
  uid: string;
  namespace: string;
  name: string;
  ips: readonly string[];
  enrolled: boolean;
  enrolledBy: Workload['enrolledBy'];
  netnsCookie?: string;
  listeners?: number[];
  enrolledAt?: string;
}

export interface FailedWorkload { uid: string; namespace: string; name: string; error: string; code?: string; at: string }

const enrolKey = (w: Workload) => {
  const x = portExclusions(w.annotations);
  return `${w.netnsPath}|${w.ips.join(',')}|${x.inbound.join(',')}|${x.outbound.join(',')}`;
};
const hasV6 = (w: Workload) => w.ips.some((ip) => ip.includes(':') && !ip.startsWith('::ffff:'));

export class EnrolmentController {
  private readonly pods = new Map<string, EnrolledPod>();
  /** Local pods processed and intentionally not enrolled. */
  private readonly skipped = new Map<string, Workload>();
  private readonly failed = new Map<string, FailedWorkload>();
  private running: Promise<void> = Promise.resolve();
  private pending: Snapshot | undefined;
  private adopted = false;

  constructor(private readonly deps: {
    node: string; datapath: Datapath; sockets: SocketFactory; handlers: PodHandlers; log: Logger;
    /** The workloads this controller is responsible for (default: every pod on `node`); a
     * sidecar proxy narrows it to its one pod (daemon/sidecar-main.ts). */
    scope?: (s: Snapshot) => Workload[];
  }) {}

  /** Queue a reconcile against this snapshot; resolves when the state it asked for is applied. */
  reconcile(s: Snapshot): Promise<void> {
    this.pending = s;
    this.running = this.running.then(async () => {
      const next = this.pending;
      this.pending = undefined;
      if (next) await this.apply(next);
    });
    return this.running;
  }

  enrolledPods(): PodContext[] {
    return [...this.pods.values()].map((p) => p.ctx);
  }

  podByUid(uid: string): PodContext | undefined {
    return this.pods.get(uid)?.ctx;
  }

  status(): { pods: WorkloadStatus[]; failed: FailedWorkload[] } {
    const pods: WorkloadStatus[] = [];
    for (const p of this.pods.values()) {
      const w = p.ctx.workload;
      pods.push({ uid: w.uid, namespace: w.namespace, name: w.name, ips: w.ips, enrolled: true, enrolledBy: w.enrolledBy,
        netnsCookie: p.ctx.netnsCookie.toString(), listeners: [MESH_PORTS.outbound, MESH_PORTS.inboundPlaintext, MESH_PORTS.inboundHbone], enrolledAt: p.enrolledAt });
    }
    for (const w of this.skipped.values()) {
      pods.push({ uid: w.uid, namespace: w.namespace, name: w.name, ips: w.ips, enrolled: false, enrolledBy: w.enrolledBy });
    }
    return { pods: pods.sort((a, b) => a.uid.localeCompare(b.uid)), failed: [...this.failed.values()] };
  }

  private async apply(s: Snapshot): Promise<void> {
    const local = (this.deps.scope ? this.deps.scope(s) : workloadsOnNode(s, this.deps.node)).filter((w) => w.phase === 'Pending' || w.phase === 'Running');
    const want = new Map<string, Workload>();
    this.skipped.clear();
    for (const w of local) {
      if (w.enrolled && w.netnsPath && w.ips.length > 0) want.set(w.uid, w);
      else if (!w.enrolled) this.skipped.set(w.uid, w);
      else this.fail(w, DaemonErrors.NODEMESH_E_POD_NETNS({ pod: `${w.namespace}/${w.name}`, netns: w.netnsPath ?? '(unknown)', reason: 'the pod has no network namespace or IP yet' }));
    }
    for (const uid of [...this.pods.keys()]) {
      const w = want.get(uid);
      if (!w || this.pods.get(uid)!.key !== enrolKey(w)) await this.unenrol(uid);
    }
    for (const [uid, w] of want) {
      const cur = this.pods.get(uid);
      if (cur) { cur.ctx.workload = w; continue; }
      await this.enrol(w);
    }
    for (const uid of this.failed.keys()) if (!want.has(uid) || this.pods.has(uid)) this.failed.delete(uid);
    if (!this.adopted) {
      // After a restart, the kernel may still steer pods that left while we were down.
      this.adopted = true;
      for (const uid of this.deps.datapath.enrolledUids()) {
        if (!this.pods.has(uid)) {
          this.deps.log.info({ uid }, 'unenrolling a pod left enrolled by a previous run');
          await this.deps.datapath.unenrol(uid);
        }
      }
    }
  }

  private fail(w: Workload, e: unknown): void {
    const err = e as Error;
    this.failed.set(w.uid, { uid: w.uid, namespace: w.namespace, name: w.name, error: err.message, code: NodemeshError.is(e) ? e.code : (e as NodeJS.ErrnoException).code, at: new Date().toISOString() });
    this.deps.log.error({ pod: `${w.namespace}/${w.name}`, err }, 'cannot enrol pod; it stays out of service until this is fixed (fail closed)');
  }

  private async enrol(w: Workload): Promise<void> {
    const netnsPath = w.netnsPath!;
    const servers: net.Server[] = [];
    try {
      const ctx: PodContext = { workload: w, netnsPath, netnsCookie: this.deps.sockets.netnsCookie(netnsPath) };
      const h = this.deps.handlers;
      try {
        this.deps.sockets.prepareNamespace?.(netnsPath);
      } catch (e) {
        // Not fatal: the pod is served; only a restart may reset connections queued at the
        // moment the old daemon's listeners close.
        this.deps.log.warn({ pod: `${w.namespace}/${w.name}`, err: (e as Error).message }, 'cannot set net.ipv4.tcp_migrate_req in the pod namespace; a daemon restart may reset connections being accepted');
      }
      const listen = async (family: 4 | 6, host: string, port: number, handler: (pod: PodContext, s: net.Socket) => void) => {
        const l = await this.deps.sockets.listen(netnsPath, { family, host, port }, (c) => handler(ctx, c));
        servers.push(l.server);
        return l;
      };
      await listen(4, '127.0.0.1', MESH_PORTS.outbound, h.outbound);
      const inbound = await listen(4, '127.0.0.1', MESH_PORTS.inboundPlaintext, h.inboundPlaintext);
      await listen(4, '0.0.0.0', MESH_PORTS.inboundHbone, h.inboundHbone);
      let inbound6: { fd: number } | undefined;
      if (hasV6(w)) {
        // connect6 sends IPv6 to [::1]:15001; sk_lookup steers IPv6 to the IPv6 listener.
        await listen(6, '::1', MESH_PORTS.outbound, h.outbound);
        inbound6 = await listen(6, '::1', MESH_PORTS.inboundPlaintext, h.inboundPlaintext);
        await listen(6, '::', MESH_PORTS.inboundHbone, h.inboundHbone);
      }
      const excl = portExclusions(w.annotations);
      for (const p of excl.problems) this.deps.log.warn({ pod: `${w.namespace}/${w.name}`, problem: p }, 'port exclusion annotation entry ignored');
      await this.deps.datapath.enrol({
        uid: w.uid, netnsPath, netnsCookie: ctx.netnsCookie, ips: [...w.ips], inboundListenerFd: inbound.fd, inboundListenerFd6: inbound6?.fd,
        inboundExcludePorts: excl.inbound, outboundExcludePorts: excl.outbound,
      });
      this.pods.set(w.uid, { ctx, servers, key: enrolKey(w), enrolledAt: new Date().toISOString() });
      this.failed.delete(w.uid);
      this.deps.log.info({ pod: `${w.namespace}/${w.name}`, uid: w.uid, ips: w.ips, netnsCookie: ctx.netnsCookie.toString() }, 'pod enrolled');
    } catch (e) {
      for (const s of servers) s.close();
      await this.deps.datapath.unenrol(w.uid).catch(() => undefined);
      this.fail(w, e);
    }
  }

  private async unenrol(uid: string): Promise<void> {
    const p = this.pods.get(uid);
    if (!p) return;
    this.pods.delete(uid);
    // Kernel first, so no new connection is steered to a listener that is going away.
    await this.deps.datapath.unenrol(uid);
    for (const s of p.servers) s.close(); // open connections finish on their own
    this.deps.sockets.release(p.ctx.netnsPath);
    const w = p.ctx.workload;
    this.deps.log.info({ pod: `${w.namespace}/${w.name}`, uid }, 'pod unenrolled');
  }

  /** Closes listeners; the datapath decides whether the kernel keeps capturing (restart). */
  async stop(): Promise<void> {
    await this.running;
    for (const p of this.pods.values()) for (const s of p.servers) s.close();
    this.pods.clear();
  }
}
