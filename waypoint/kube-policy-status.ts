// BackendTrafficPolicy status on Kubernetes: the entries policy-status-writer.ts computes, from
// the policy objects as the waypoint's watch last saw them, written with server-side apply on
// the status subresource (field manager nodemesh-waypoint, not the controller's). status.ancestors
// is an atomic list, so each apply carries the whole list (other waypoints' entries kept) and
// the resourceVersion it was computed from: a stale one gets 409 and is computed again when the
// watch delivers the newer object, so no writer removes another's entries.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Snapshot } from '../daemon/state/snapshot';
import { kubeRequest, statusMessage } from '../daemon/identity/kube-rest';
import { boundedError } from '../daemon/sources/source';
import { trafficPolicies } from './backend-traffic-policy';
import { policyStatusUpdates } from './policy-status-writer';
import type { Serves } from './run-waypoint';

export const WAYPOINT_FIELD_MANAGER = 'nodemesh-waypoint';
const API_VERSION = 'policy.nodemesh.io/v1alpha1';

export class KubePolicyStatusWriter {
  /** Applies in flight or done, per policy: `resourceVersion|ancestors`, so one state is written once. */
  private readonly sent = new Map<string, string>();

  constructor(private readonly kc: KubeConfig, private readonly me: { namespace: string }, private readonly log: Logger) {}

  /** For runWaypoint's onState: each new state's policy status, written in the background. */
  readonly onState = (s: Snapshot, _routes: unknown, serves: Serves): void => {
    this.write(s, serves, new Date().toISOString()).then((written) => {
      if (written.length) this.log.info({ policies: written }, 'policy status updated');
    }, (e: Error) => this.log.warn({ err: e.message }, 'policy status not written'));
  };

  /** Writes what changed; resolves with the policies written (`ns/name`). */
  async write(s: Snapshot, serves: Serves, now: string): Promise<string[]> {
    const current = (ns: string, name: string) => s.backendTrafficPolicies.get(`${ns}/${name}`) as never;
    const updates = policyStatusUpdates(trafficPolicies(s).entries, this.me, serves, now, current);
    const written: string[] = [];
    for (const u of updates) {
      const key = `${u.namespace}/${u.name}`;
      const memo = `${u.resourceVersion}|${JSON.stringify(u.ancestors)}`;
      if (this.sent.get(key) === memo) continue;
      this.sent.set(key, memo);
      if (this.sent.size > 10_000) this.sent.clear();
      const path = `/apis/${API_VERSION}/namespaces/${encodeURIComponent(u.namespace)}/backendtrafficpolicies/${encodeURIComponent(u.name)}/status`;
      try {
        const res = await kubeRequest(this.kc, {
          method: 'PATCH', path, contentType: 'application/apply-patch+yaml', query: { fieldManager: WAYPOINT_FIELD_MANAGER, force: true },
          body: { apiVersion: API_VERSION, kind: 'BackendTrafficPolicy', metadata: { name: u.name, namespace: u.namespace, resourceVersion: u.resourceVersion }, status: { ancestors: u.ancestors } },
        });
        if (res.status === 200 || res.status === 201) { written.push(key); continue; }
        this.sent.delete(key);
        // 409: computed from an older object; the watch brings the newer one and this runs again.
        // 404: deleted meanwhile.
        if (res.status !== 409 && res.status !== 404) this.log.warn({ policy: key, status: res.status, err: boundedError(statusMessage(res)) }, 'policy status not written');
      } catch (e) {
        this.sent.delete(key);
        this.log.warn({ policy: key, err: boundedError((e as Error).message) }, 'policy status not written');
      }
    }
    return written;
  }
}
