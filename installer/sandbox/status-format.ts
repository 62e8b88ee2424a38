// `nodemesh local status` as text: tables of the identity service, nodes, pods, services and
// policies.
import type { StatusReport } from './cluster';

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

export function formatStatus(s: StatusReport): string {
  if (s.phase === 'none') return `no sandbox is running (state dir ${s.stateDir}); start one with 'nodemesh local up'`;
  const yn = (b: boolean | null): string => (b === null ? '?' : b ? 'yes' : 'no');
  const out: string[] = [];
  const phase = {
    up: 'up',
    creating: 'being created (a local up is still running)',
    incomplete: "INCOMPLETE (a local up did not finish; 'nodemesh local up' or 'local down' cleans it up)",
    down: "DOWN (no node daemon is running; 'nodemesh local down', then 'local up')",
  }[s.phase];
  out.push(`sandbox ${phase}; state in ${s.stateDir}`, '');
  if (s.identity) {
    const i = s.identity;
    out.push(table([['IDENTITY SERVICE', 'ADDRESS', 'PID', 'ALIVE', 'LISTENING'],
      ['nodemesh-identity', i.address, String(i.pid ?? '-'), yn(i.alive), yn(i.listening)]]), '');
  }
  out.push(table([['NODE', 'IP', 'POD CIDR', 'DAEMON PID', 'ALIVE', 'READY'],
    ...s.nodes.map((n) => [n.name, n.ip, n.podCIDR, String(n.daemon.pid ?? '-'), yn(n.daemon.alive), yn(n.daemon.ready)])]));
  out.push('');
  if (s.pods.length) {
    out.push(table([['NAMESPACE', 'POD', 'NODE', 'IP', 'PHASE', 'ENROLLED'],
      ...s.pods.map((p) => [p.namespace, p.name, p.node, p.ip, p.detail && p.phase !== 'Running' ? `${p.phase} (${p.detail})` : p.phase, yn(p.enrolled)])]));
    for (const p of s.pods) if (p.message) out.push(`  ${p.namespace}/${p.name}: ${p.message}`);
  } else {
    out.push('no pods');
  }
  out.push('');
  if (s.services.length) {
    out.push(table([['NAMESPACE', 'SERVICE', 'VIP', 'PORTS', 'ENDPOINTS'],
      ...s.services.map((v) => [v.namespace, v.name, v.clusterIP,
        v.ports.map((p) => `${p.name ? `${p.name}:` : ''}${p.port}->${p.targetPort}/${p.protocol}`).join(','),
        v.ports.map((p) => p.endpoints.join(',') || '<none>').join(' ')])]));
  } else {
    out.push('no services');
  }
  out.push('');
  if (s.policies.length) {
    out.push(table([['KIND', 'NAMESPACE', 'NAME', 'APPLIES TO', 'SUMMARY'],
      ...s.policies.map((p) => [p.kind, p.namespace, p.name, p.appliesTo, p.summary])]));
  } else {
    out.push('no policies');
  }
  return out.join('\n');
}
