// `nodemesh status` on a cluster: per node, the daemon pod and its readiness, how many pods
// the API says are enrolled there, and the node's workload certificates (from the daemon's
// metrics through the API server's pod proxy, where that is reachable).
import { KubeApi } from './api-client';
import { getOrUndefined } from './apply';
import { InstallerErrors } from '../errors';
import { selectorLabels } from '../manifests/labels';
import { ENROL_LABEL, NAMESPACE, NODE_NAME } from '../manifests/values';

interface Pod {
  metadata: { name: string; namespace: string; labels?: Record<string, string> };
  spec?: { nodeName?: string; hostNetwork?: boolean };
  status?: { phase?: string; conditions?: { type: string; status: string }[]; containerStatuses?: { restartCount?: number }[] };
}
interface Ns { metadata: { name: string; labels?: Record<string, string> } }

export interface CertificateState { reachable: boolean; certificates?: number; soonestExpirySeconds?: number; error?: string }
export interface NodeStatus { node: string; daemonPod?: string; daemonReady: boolean; restarts: number; enrolledPods: number; certificates: CertificateState }
export interface ClusterStatus { server: string; nodes: NodeStatus[] }

/** Whether the API objects say a pod is enrolled: the pod's label wins, then its namespace's. */
export function isEnrolled(pod: Pod, nsLabels: Map<string, Record<string, string>>): boolean {
  if (pod.spec?.hostNetwork) return false;
  if (pod.status?.phase !== 'Running' && pod.status?.phase !== 'Pending') return false;
  const own = pod.metadata.labels?.[ENROL_LABEL];
  if (own !== undefined) return own === 'ambient';
  return nsLabels.get(pod.metadata.namespace)?.[ENROL_LABEL] === 'ambient';
}

export function enrolledPerNode(pods: Pod[], namespaces: Ns[]): Map<string, number> {
  const nsLabels = new Map(namespaces.map((n) => [n.metadata.name, n.metadata.labels ?? {}]));
  const out = new Map<string, number>();
  for (const p of pods) {
    if (!p.spec?.nodeName || !isEnrolled(p, nsLabels)) continue;
    out.set(p.spec.nodeName, (out.get(p.spec.nodeName) ?? 0) + 1);
  }
  return out;
}

/** nodemesh_certificate_expiry_seconds samples from a Prometheus text exposition. */
export function certificatesFromMetrics(text: string): CertificateState {
  const values = text.split('\n').filter((l) => l.startsWith('nodemesh_certificate_expiry_seconds')).map((l) => Number(l.trim().split(/\s+/).pop()));
  const finite = values.filter(Number.isFinite);
  return { reachable: true, certificates: finite.length, soonestExpirySeconds: finite.length ? Math.min(...finite) : undefined };
}

async function certificateState(api: KubeApi, pod: string): Promise<CertificateState> {
  try {
    const res = await api.request<string>('GET', `/api/v1/namespaces/${NAMESPACE}/pods/${pod}:15020/proxy/metrics`, { timeoutMs: 5000 });
    return certificatesFromMetrics(typeof res.body === 'string' ? res.body : '');
  } catch (e) {
    return { reachable: false, error: (e as Error).message.split('\n')[0] };
  }
}

export async function clusterStatus(api: KubeApi, opts: { namespace?: string } = {}): Promise<ClusterStatus> {
  const ds = await getOrUndefined(api, `/apis/apps/v1/namespaces/${NAMESPACE}/daemonsets/${NODE_NAME}`);
  if (!ds) throw InstallerErrors.NODEMESH_E_KUBE_NOT_INSTALLED({ what: `daemonset/${NODE_NAME} in ${NAMESPACE}` });
  const sel = Object.entries(selectorLabels(NODE_NAME)).map(([k, v]) => `${k}=${v}`).join(',');
  const daemons = (await api.request<{ items: Pod[] }>('GET', `/api/v1/namespaces/${NAMESPACE}/pods`, { query: { labelSelector: sel } })).body.items ?? [];
  const podsPath = opts.namespace ? `/api/v1/namespaces/${encodeURIComponent(opts.namespace)}/pods` : '/api/v1/pods';
  const pods = (await api.request<{ items: Pod[] }>('GET', podsPath)).body.items ?? [];
  const namespaces = (await api.request<{ items: Ns[] }>('GET', '/api/v1/namespaces')).body.items ?? [];
  const enrolled = enrolledPerNode(pods, namespaces);
  const nodes: NodeStatus[] = [];
  for (const d of daemons) {
    const node = d.spec?.nodeName ?? '(unscheduled)';
    const ready = d.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    nodes.push({
      node, daemonPod: d.metadata.name, daemonReady: ready,
      restarts: (d.status?.containerStatuses ?? []).reduce((a, c) => a + (c.restartCount ?? 0), 0),
      enrolledPods: enrolled.get(node) ?? 0,
      certificates: ready ? await certificateState(api, d.metadata.name) : { reachable: false, error: 'daemon not ready' },
    });
  }
  for (const [node, n] of enrolled) if (!nodes.some((s) => s.node === node)) nodes.push({ node, daemonReady: false, restarts: 0, enrolledPods: n, certificates: { reachable: false, error: 'no nodemesh-node pod on this node' } });
  nodes.sort((a, b) => a.node.localeCompare(b.node));
  return { server: api.server, nodes };
}

export function formatClusterStatus(s: ClusterStatus): string {
  const rows = [['NODE', 'DAEMON', 'READY', 'RESTARTS', 'ENROLLED PODS', 'CERTIFICATES']];
  for (const n of s.nodes) {
    const c = n.certificates;
    const certs = c.reachable
      ? `${c.certificates ?? 0}${c.soonestExpirySeconds !== undefined ? `, first expires in ${Math.round(c.soonestExpirySeconds / 60)}m` : ''}`
      : `unknown (${c.error ?? 'unreachable'})`;
    rows.push([n.node, n.daemonPod ?? '-', n.daemonReady ? 'yes' : 'no', String(n.restarts), String(n.enrolledPods), certs]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return [`cluster ${s.server}`, ...rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  '))].join('\n');
}
