// Leader election for the controller's writers: the replicas of nodemesh-identity all watch,
// only the holder of one coordination.k8s.io/v1 Lease writes. Every retryPeriod a candidate
// reads the Lease and acts (lease-decision.ts); writes carry the resourceVersion read, so a
// 409 means another candidate won. A leader that could not renew within two thirds of the
// Lease's duration (client-go's renew deadline) steps down before anyone else may take over.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { kubeRequest, statusMessage } from '../identity/kube-rest';
import { leaseAction, leaseSpec } from './lease-decision';
import type { KubeObject } from './kube-object';

export interface LeaderLeaseOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds: number;
  retryPeriodMs: number;
  onLeadershipChange: (leader: boolean) => void;
  log: Logger;
}

export class LeaderLease {
  private leader = false;
  private lastRenewMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly kc: KubeConfig, private readonly o: LeaderLeaseOptions) {}

  isLeader(): boolean {
    return this.leader && Date.now() - this.lastRenewMs < (this.o.leaseDurationSeconds * 1000 * 2) / 3;
  }

  start(): void {
    this.stopped = false;
    void this.tick();
  }

  /** Stops campaigning; a leader gives the Lease up so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.leader) {
      this.setLeader(false);
      await this.release().catch(() => undefined);
    }
  }

  private get path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.o.namespace}/leases`;
  }

  private setLeader(v: boolean): void {
    if (v === this.leader) return;
    this.leader = v;
    this.o.log.info({ lease: `${this.o.namespace}/${this.o.name}`, identity: this.o.identity }, v ? 'became the waypoint controller leader' : 'no longer the waypoint controller leader');
    this.o.onLeadershipChange(v);
  }

  private async tick(): Promise<void> {
    try {
      await this.campaign();
    } catch (e) {
      this.o.log.warn({ lease: `${this.o.namespace}/${this.o.name}`, err: (e as Error).message }, 'leader election failed; retrying');
    }
    if (this.leader && !this.isLeader()) this.setLeader(false);
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), this.o.retryPeriodMs);
    this.timer.unref?.();
  }

  private async campaign(): Promise<void> {
    const got = await kubeRequest(this.kc, { method: 'GET', path: `${this.path}/${this.o.name}` });
    if (got.status !== 200 && got.status !== 404) throw new Error(`read Lease: ${statusMessage(got)}`);
    const lease = got.status === 200 ? got.body as KubeObject : undefined;
    const now = Date.now();
    const action = leaseAction(lease, this.o.identity, now);
    if (action.kind === 'follow') { this.setLeader(false); return; }
    if (this.stopped) return;
    const spec = leaseSpec(action, lease, this.o.identity, now, this.o.leaseDurationSeconds);
    const res = action.kind === 'create'
      ? await kubeRequest(this.kc, { method: 'POST', path: this.path, body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.o.name, namespace: this.o.namespace }, spec } })
      : await kubeRequest(this.kc, { method: 'PUT', path: `${this.path}/${this.o.name}`, body: { ...lease, spec } });
    if (res.status === 409) { this.setLeader(false); return; } // another candidate wrote first
    if (res.status !== 200 && res.status !== 201) throw new Error(`write Lease: ${statusMessage(res)}`);
    this.lastRenewMs = now;
    this.setLeader(true);
  }

  private async release(): Promise<void> {
    const got = await kubeRequest(this.kc, { method: 'GET', path: `${this.path}/${this.o.name}` });
    const lease = got.body as KubeObject;
    if (got.status !== 200 || lease.spec?.holderIdentity !== this.o.identity) return;
    await kubeRequest(this.kc, { method: 'PUT', path: `${this.path}/${this.o.name}`, body: { ...lease, spec: { ...lease.spec, holderIdentity: '' } } });
  }
}
