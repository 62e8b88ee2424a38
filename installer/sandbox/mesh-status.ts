// `nodemesh status`: the mesh as the node daemons see it: enrolled pods, workload
// certificates, HBONE pools and servers, and the policies in force. Read over the
// daemons' admin sockets.
import { adminGetJson, type DaemonWorkloads } from './admin-client';
import { layout, readCluster, stateDir } from './state';
import type { IdentityStatus } from '../../daemon/identity/certificate-manager';
import type { HboneClientStats } from '../../daemon/tunnel/hbone-client';
import type { AuthorizationPolicy, PeerAuthentication } from '../../daemon/state/resources';
import type { PolicyEnforcement } from '../../daemon/policy/enforcement';

export interface NodeMeshStatus {
  node: string;
  error?: string;
  ready?: boolean;
  workloads?: DaemonWorkloads & { snapshotVersion?: number };
  certificates?: { trustDomain: string; identities: IdentityStatus[] };
  pools?: { client: HboneClientStats | null; servers: { pod: string; ready: boolean; sessions?: number; activeStreams?: number }[] };
  policies?: { authorizationPolicies: AuthorizationPolicy[]; peerAuthentications: PeerAuthentication[]; policyEnforcement?: PolicyEnforcement[] };
}

export async function gatherMeshStatus(): Promise<NodeMeshStatus[]> {
  const out: NodeMeshStatus[] = [];
  for (const n of readCluster(layout(stateDir()))?.nodes ?? []) {
    const s: NodeMeshStatus = { node: n.name };
    try {
      s.workloads = await adminGetJson(n.adminSocket, '/debug/workloads');
      s.certificates = await adminGetJson(n.adminSocket, '/debug/certificates');
      s.pools = await adminGetJson(n.adminSocket, '/debug/pools');
      s.policies = await adminGetJson(n.adminSocket, '/debug/snapshot');
      s.ready = true;
    } catch (e) {
      s.error = (e as Error).message;
      s.ready = false;
    }
    out.push(s);
  }
  return out;
}

function table(rows: string[][], indent = '  '): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => indent + r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]))).join('  ')).join('\n');
}

const ago = (iso: string | undefined) => {
  if (!iso) return '-';
  const s = Math.round((Date.parse(iso) - Date.now()) / 1000);
  const abs = Math.abs(s);
  const t = abs >= 3600 ? `${(abs / 3600).toFixed(1)}h` : abs >= 60 ? `${Math.round(abs / 60)}m` : `${abs}s`;
  return s >= 0 ? `in ${t}` : `${t} ago`;
};

export function formatMeshStatus(all: NodeMeshStatus[]): string {
  const parts: string[] = [];
  for (const n of all) {
    if (n.error) { parts.push(`${n.node}: no answer from the daemon (${n.error})`); continue; }
    const pods = n.workloads?.pods ?? [];
    parts.push(`${n.node}: daemon ready, ${pods.filter((p) => p.enrolled).length} enrolled pod(s), snapshot v${n.workloads?.snapshotVersion ?? '?'}`);
    for (const f of n.workloads?.failed ?? []) parts.push(`  ENROL FAILED ${f.namespace}/${f.name}: ${f.error}`);
    const ids = n.certificates?.identities ?? [];
    if (ids.length > 0) {
      parts.push(table([['CERTIFICATE', 'STATE', 'EXPIRES', 'NEXT REFRESH', 'FAILURES', 'LAST ERROR'],
        ...ids.map((c) => [c.spiffeId ?? `${c.namespace}/${c.serviceAccount}`, c.state, ago(c.notAfter), ago(c.nextRefresh), String(c.failures), c.lastError?.message ?? '-'])]));
    }
    const sessions = n.pools?.client?.sessions ?? [];
    if (sessions.length > 0) {
      parts.push(table([['HBONE SESSION (source -> target)', 'SERVER ID', 'STATE', 'ACTIVE STREAMS', 'STREAMS OPENED'],
        ...sessions.map((x) => [`${x.sourceId} -> ${x.target}`, x.serverId ?? '-', x.state, String(x.activeStreams), String(x.streamsOpened)])]));
    }
    const servers = n.pools?.servers ?? [];
    if (servers.length > 0) {
      parts.push(table([['HBONE SERVER (pod)', 'READY', 'SESSIONS', 'ACTIVE STREAMS'],
        ...servers.map((x) => [x.pod, x.ready ? 'yes' : 'no (no certificate yet)', String(x.sessions ?? 0), String(x.activeStreams ?? 0)])]));
    }
  }
  const first = all.find((n) => n.policies);
  const aps = first?.policies?.authorizationPolicies ?? [];
  const pas = first?.policies?.peerAuthentications ?? [];
  parts.push('');
  if (aps.length + pas.length === 0) parts.push('policies: none (every meshed connection allowed; plaintext PERMISSIVE)');
  else {
    parts.push(table([['POLICY', 'NAME', 'SELECTS', 'ACTION / MODE', 'RULES'],
      ...aps.map((p) => ['AuthorizationPolicy', `${p.metadata.namespace}/${p.metadata.name}`, JSON.stringify(p.spec.selector?.matchLabels ?? (p.spec.targetRefs ? p.spec.targetRefs : 'namespace')),
        p.spec.action ?? 'ALLOW', String(p.spec.rules?.length ?? 0)]),
      ...pas.map((p) => ['PeerAuthentication', `${p.metadata.namespace}/${p.metadata.name}`, JSON.stringify(p.spec.selector?.matchLabels ?? 'namespace'),
        p.spec.mtls?.mode ?? 'UNSET', '-'])], ''));
  }
  // Where each policy holds (daemon/policy/enforcement.ts), and on which workloads, per node.
  const enforcement = new Map<string, { e: PolicyEnforcement; workloads: Set<string> }>();
  for (const n of all) {
    for (const e of n.policies?.policyEnforcement ?? []) {
      const k = `${e.kind} ${e.namespace}/${e.name}`;
      const have = enforcement.get(k) ?? { e, workloads: new Set<string>() };
      for (const w of e.workloads) have.workloads.add(w);
      enforcement.set(k, have);
    }
  }
  if (enforcement.size > 0) {
    parts.push('');
    parts.push(table([['POLICY', 'ENFORCED', 'WORKLOADS'],
      ...[...enforcement].sort(([a], [b]) => a.localeCompare(b)).map(([k, { e, workloads }]) => [k, e.detail, workloads.size ? [...workloads].sort().join(',') : '-'])], ''));
  }
  return parts.join('\n');
}
