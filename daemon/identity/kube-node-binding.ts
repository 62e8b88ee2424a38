// Node binding against the Kubernetes API: the pods on the caller's node (a list with a
// spec.nodeName field selector, so the answer stays small in a large cluster), cached a few
// seconds per node because a daemon asks for several identities at once on start-up.
import type { KubeConfig } from '@kubernetes/client-node';
import { checkPodBinding, type BindingDecision, type BindingPod } from './node-binding';
import { kubeRequest, statusMessage } from './kube-rest';
import { DaemonErrors } from '../errors';

export const NODE_PODS_CACHE_MS = 5000;

interface ApiPod { metadata?: { name?: string; namespace?: string }; spec?: { serviceAccountName?: string; nodeName?: string }; status?: { phase?: string } }

export function toBindingPod(p: ApiPod): BindingPod {
  return {
    namespace: p.metadata?.namespace ?? '', name: p.metadata?.name ?? '',
    serviceAccount: p.spec?.serviceAccountName || 'default', phase: p.status?.phase ?? 'Unknown', node: p.spec?.nodeName ?? '',
  };
}

export type ListNodePods = (node: string) => Promise<BindingPod[]>;

export function kubeListNodePods(kc: KubeConfig): ListNodePods {
  return async (node) => {
    const res = await kubeRequest(kc, { method: 'GET', path: '/api/v1/pods', query: { fieldSelector: `spec.nodeName=${node}` } });
    if (res.status !== 200) throw new Error(`listing the pods of node ${node} failed: HTTP ${res.status}: ${statusMessage(res)}`);
    return ((res.body as { items?: ApiPod[] }).items ?? []).map(toBindingPod);
  };
}

export class KubeNodeBinding {
  private readonly cache = new Map<string, { at: number; pods: Promise<BindingPod[]> }>();

  constructor(private readonly list: ListNodePods, private readonly ttlMs = NODE_PODS_CACHE_MS, private readonly now: () => number = Date.now) {}

  async check(node: string, namespace: string, serviceAccount: string): Promise<BindingDecision> {
    try {
      const first = this.podsOf(node, false);
      const d = checkPodBinding(await first.pods, node, namespace, serviceAccount);
      // A pod scheduled a moment ago may not be in a cached list yet: look once more, fresh.
      if (d.allowed || first.fresh) return d;
      return checkPodBinding(await this.podsOf(node, true).pods, node, namespace, serviceAccount);
    } catch (e) {
      throw DaemonErrors.NODEMESH_E_IDENTITY_NOT_READY({ reason: (e as Error).message }, { cause: e });
    }
  }

  private podsOf(node: string, forceFresh: boolean): { pods: Promise<BindingPod[]>; fresh: boolean } {
    const hit = this.cache.get(node);
    if (!forceFresh && hit && this.now() - hit.at < this.ttlMs) return { pods: hit.pods, fresh: false };
    const pods = this.list(node);
    this.cache.set(node, { at: this.now(), pods });
    pods.catch(() => this.cache.delete(node));
    if (this.cache.size > 10_000) this.cache.delete(this.cache.keys().next().value as string);
    return { pods, fresh: true };
  }
}
