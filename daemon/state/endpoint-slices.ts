// EndpointSlices derived from Services and Pods as the Kubernetes EndpointSlice controller
// makes them, for places with no controller (the sandbox's object directory, a test API
// server without kube-controller-manager). The snapshot builds Service endpoints only from
// EndpointSlices, so a real cluster and the sandbox feed the same code. Pure.
import {
  EndpointPort, EndpointSlice, LABEL_MANAGED_BY, LABEL_SERVICE_NAME, Pod, Service, SliceEndpoint, labelsMatch, podIPs, podReadyCondition,
  resolveTargetPort,
} from './resources';

/** Who made a derived slice (the controller itself writes endpointslice-controller.k8s.io). */
export const DERIVED_SLICE_MANAGER = 'nodemesh.io/derived';

const TERMINAL = new Set(['Succeeded', 'Failed']);

/**
 * A pod's readiness as the controller sees it: its Ready condition. A pod with no
 * conditions at all (the sandbox has no kubelet writing them) counts as ready when Running.
 */
export function podIsReady(pod: Pod): boolean {
  return podReadyCondition(pod) ?? pod.status?.phase === 'Running';
}

function podUidOf(p: Pod): string {
  return p.metadata.uid ?? `${p.metadata.namespace ?? 'default'}/${p.metadata.name}`;
}

/** The slices one Service would have: one per (address family, resolved port set), as the
 * controller groups pods whose named ports resolve alike. */
export function deriveEndpointSlices(svc: Service, pods: readonly Pod[]): EndpointSlice[] {
  const namespace = svc.metadata.namespace ?? 'default';
  const selector = svc.spec.selector;
  if (!selector || Object.keys(selector).length === 0) return [];
  const groups = new Map<string, { family: 'IPv4' | 'IPv6'; ports: EndpointPort[]; endpoints: SliceEndpoint[] }>();
  for (const p of pods) {
    if ((p.metadata.namespace ?? 'default') !== namespace) continue;
    if (TERMINAL.has(p.status?.phase ?? '')) continue;
    if (!labelsMatch(selector, p.metadata.labels)) continue;
    const ips = podIPs(p);
    if (ips.length === 0) continue;
    const terminating = p.metadata.deletionTimestamp !== undefined;
    const ready = !terminating && podIsReady(p);
    const ports: EndpointPort[] = [];
    for (const sp of svc.spec.ports) {
      const t = resolveTargetPort(sp, p);
      if (t !== undefined) ports.push({ name: sp.name ?? '', port: t, protocol: sp.protocol ?? 'TCP' });
    }
    for (const ip of ips) {
      const family = ip.includes(':') ? 'IPv6' : 'IPv4';
      const key = `${family}|${JSON.stringify(ports)}`;
      let g = groups.get(key);
      if (!g) { g = { family, ports, endpoints: [] }; groups.set(key, g); }
      g.endpoints.push({
        addresses: [ip],
        conditions: { ready, serving: podIsReady(p), terminating },
        ...(p.spec.nodeName ? { nodeName: p.spec.nodeName } : {}),
        targetRef: { kind: 'Pod', namespace, name: p.metadata.name, uid: podUidOf(p) },
      });
    }
  }
  const out: EndpointSlice[] = [];
  let i = 0;
  for (const g of groups.values()) {
    out.push({
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: {
        name: `${svc.metadata.name}-${g.family.toLowerCase()}-${i++}`, namespace,
        labels: { [LABEL_SERVICE_NAME]: svc.metadata.name, [LABEL_MANAGED_BY]: DERIVED_SLICE_MANAGER },
      },
      addressType: g.family, endpoints: g.endpoints, ports: g.ports,
    });
  }
  return out;
}
