// Services in the sandbox, for pods that are not in the mesh: virtual IPs DNATed to ready
// endpoints by nftables in every node namespace, the way kube-proxy's nftables mode does
// (a verdict map from VIP . proto . port to a per-service chain, `numgen random mod N` over
// the endpoints, a reject for services without endpoints). The ruleset is rendered whole
// from the objects (pure) and loaded in one `nft -f -` transaction on each change.
// Also here: Kubernetes' service environment variables for pods.
import { labelsMatch, resolveTargetPort, type Pod, type Service, type ServicePort } from '../../daemon/state/resources';
import { cidrContains, formatIPv4, parseCidr, parseIPv4 } from '../../daemon/state/manifest';
import { InstallerErrors } from '../errors';
import { run } from './host';
import { netnsPath } from './topology';

export const NFT_TABLE = 'nodemesh-sandbox';

export interface EndpointAddress { pod: string; ip: string; port: number }

export interface ServicePortEndpoints {
  port: ServicePort;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  endpoints: EndpointAddress[];
}

/** Ready endpoints of each port of a service: Running pods of its namespace matching the
 * selector, with the targetPort resolved (named ports through the pod's container ports). */
export function serviceEndpoints(svc: Service, pods: readonly Pod[]): ServicePortEndpoints[] {
  const ns = svc.metadata.namespace ?? 'default';
  const ready = pods
    .filter((p) => (p.metadata.namespace ?? 'default') === ns && p.status?.phase === 'Running' && p.status.podIP)
    .filter((p) => labelsMatch(svc.spec.selector, p.metadata.labels))
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  return svc.spec.ports.map((sp) => {
    const endpoints: EndpointAddress[] = [];
    for (const p of ready) {
      const port = resolveTargetPort(sp, p);
      if (port !== undefined) endpoints.push({ pod: `${ns}/${p.metadata.name}`, ip: p.status!.podIP!, port });
    }
    return { port: sp, protocol: sp.protocol ?? 'TCP', endpoints };
  });
}

const nftProto = (p: string): string => p.toLowerCase();

/** The whole nftables ruleset for Service VIPs; replaces the previous one atomically. */
export function renderServiceRules(services: readonly Service[], pods: readonly Pod[]): string {
  const vmap: string[] = [];
  const noEndpoints: string[] = [];
  const chains: string[] = [];
  const endpointChains = new Map<string, string>();
  const sorted = [...services].sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
  for (const svc of sorted) {
    const vip = svc.spec.clusterIP;
    if (!vip || parseIPv4(vip) === undefined) continue;
    const id = `${svc.metadata.namespace ?? 'default'}/${svc.metadata.name}`;
    for (const pe of serviceEndpoints(svc, pods)) {
      const proto = nftProto(pe.protocol);
      const key = `${vip} . ${proto} . ${pe.port.port}`;
      if (pe.endpoints.length === 0) {
        noEndpoints.push(key);
        continue;
      }
      const chain = `svc-${id}/${proto}/${pe.port.port}`;
      vmap.push(`${key} : goto ${chain}`);
      const targets = pe.endpoints.map((e) => {
        const ep = `ep-${e.ip}-${proto}-${e.port}`;
        endpointChains.set(ep, `\tchain ${ep} {\n\t\tcomment "${e.pod}"\n\t\tmeta l4proto ${proto} dnat to ${e.ip}:${e.port}\n\t}`);
        return ep;
      });
      const pick = targets.length === 1
        ? `goto ${targets[0]}`
        : `numgen random mod ${targets.length} vmap { ${targets.map((t, i) => `${i} : goto ${t}`).join(', ')} }`;
      chains.push(`\tchain ${chain} {\n\t\tcomment "${id} port ${pe.port.name ?? pe.port.port}"\n\t\t${pick}\n\t}`);
    }
  }
  const elements = (xs: string[]): string => (xs.length ? `\t\telements = { ${xs.join(',\n\t\t\t')} }\n` : '');
  return [
    // `table; delete table; table {...}` in one transaction: create-if-missing, then replace.
    `table ip ${NFT_TABLE}`,
    `delete table ip ${NFT_TABLE}`,
    `table ip ${NFT_TABLE} {`,
    `\tcomment "nodemesh sandbox: Service VIPs for pods outside the mesh; regenerated whole on each change"`,
    `\tmap service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n${elements(vmap)}\t}`,
    `\tset no-endpoint-services {\n\t\ttype ipv4_addr . inet_proto . inet_service\n${elements(noEndpoints)}\t}`,
    '\tchain nat-prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tip daddr . meta l4proto . th dport vmap @service-ips\n\t}',
    '\tchain nat-output {\n\t\ttype nat hook output priority -100; policy accept;\n\t\tip daddr . meta l4proto . th dport vmap @service-ips\n\t}',
    '\tchain filter-forward {\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tct state new ip daddr . meta l4proto . th dport @no-endpoint-services reject with icmp type host-unreachable\n\t}',
    '\tchain filter-output {\n\t\ttype filter hook output priority filter; policy accept;\n\t\tct state new ip daddr . meta l4proto . th dport @no-endpoint-services reject with icmp type host-unreachable\n\t}',
    ...chains,
    ...endpointChains.values(),
    '}',
    '',
  ].join('\n');
}

/** Loads the ruleset into each node namespace. */
export function loadServiceRules(nodeNetnsNames: readonly string[], ruleset: string): void {
  for (const ns of nodeNetnsNames) run('nsenter', [`--net=${netnsPath(ns)}`, '--', 'nft', '-f', '-'], { input: ruleset });
}

// --- VIP allocation ----------------------------------------------------------------------

/** The lowest free address of the range, skipping the first ten (as Kubernetes reserves
 * the first for the API server). */
export function allocateClusterIP(cidrText: string, used: ReadonlySet<string>): string {
  const cidr = parseCidr(cidrText)!;
  for (let n = cidr.base + 10; n < cidr.base + cidr.size - 1; n++) {
    const ip = formatIPv4(n);
    if (!used.has(ip)) return ip;
  }
  throw InstallerErrors.NODEMESH_E_SANDBOX_EXHAUSTED({ what: `service IPs in ${cidrText}` });
}

export function inServiceCIDR(cidrText: string, ip: string): boolean {
  const c = parseCidr(cidrText);
  const n = parseIPv4(ip);
  return !!c && n !== undefined && cidrContains(c, n);
}

// --- environment variables ---------------------------------------------------------------

const envName = (s: string): string => s.toUpperCase().replace(/-/g, '_');

/** Kubernetes' service environment variables (kubelet envvars.FromServices) for the
 * services of one namespace: API_SERVICE_HOST, API_SERVICE_PORT, API_SERVICE_PORT_HTTP,
 * and the Docker-link style API_PORT, API_PORT_80_TCP{,_PROTO,_PORT,_ADDR}. */
export function serviceEnvVars(services: readonly Service[]): Record<string, string> {
  const env: Record<string, string> = {};
  const sorted = [...services].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  for (const svc of sorted) {
    const ip = svc.spec.clusterIP;
    if (!ip || ip === 'None' || svc.spec.ports.length === 0) continue;
    const name = envName(svc.metadata.name);
    const first = svc.spec.ports[0]!;
    env[`${name}_SERVICE_HOST`] = ip;
    env[`${name}_SERVICE_PORT`] = String(first.port);
    for (const p of svc.spec.ports) if (p.name) env[`${name}_SERVICE_PORT_${envName(p.name)}`] = String(p.port);
    const proto = (first.protocol ?? 'TCP').toLowerCase();
    env[`${name}_PORT`] = `${proto}://${ip}:${first.port}`;
    for (const p of svc.spec.ports) {
      const pr = (p.protocol ?? 'TCP');
      const prefix = `${name}_PORT_${p.port}_${pr}`;
      env[prefix] = `${pr.toLowerCase()}://${ip}:${p.port}`;
      env[`${prefix}_PROTO`] = pr.toLowerCase();
      env[`${prefix}_PORT`] = String(p.port);
      env[`${prefix}_ADDR`] = ip;
    }
  }
  return env;
}

/** Kubernetes' `$(VAR)` expansion (third_party/forked/golang/expansion): `$(NAME)` becomes the
 * variable's value when it is defined and stays as written when it is not; `$$` is a literal
 * `$` (so `$$(NAME)` yields `$(NAME)`). */
export function expandVars(input: string, lookup: (name: string) => string | undefined): string {
  let out = '';
  for (let i = 0; i < input.length; i++) {
    const c = input[i];
    if (c !== '$' || i + 1 >= input.length) {
      out += c;
      continue;
    }
    const next = input[i + 1];
    if (next === '$') {
      out += '$';
      i++;
    } else if (next === '(') {
      const close = input.indexOf(')', i + 2);
      if (close < 0) {
        out += input.slice(i);
        break;
      }
      const name = input.slice(i + 2, close);
      const v = name ? lookup(name) : undefined;
      out += v ?? `$(${name})`;
      i = close;
    } else {
      out += c + next;
      i++;
    }
  }
  return out;
}
