// The sandbox network. Everything lives in network namespaces the sandbox creates; the root
// namespace gets nothing (no interface, no route), and the top namespace has no uplink and
// no default route, so no packet can leave the sandbox.
//
//   nmsb-top            bridge br0 172.30.0.1/24 (nodemesh-identity; no uplink, no default route)
//     |  nd<i> <-> eth0
//   nmsb-node-<i>       eth0 172.30.0.(10+i)/24; 10.244.j.0/24 via node-j; ip_forward=1
//     |  vpod<k> <-> eth0   (routed /32, Calico style: proxy_arp on vpod<k>, /32 route)
//   nmsb-pod-<ns>_<pod> eth0 10.244.i.k/32; 169.254.1.1 dev eth0; default via 169.254.1.1
//
// IPv6 alongside: nodes fd00:172:30::(10+i)/64 on eth0, fd00:10:244:i::/64 via node-i; a
// dual-stack pod (annotation sandbox.nodemesh.io/ip-families: IPv4,IPv6) also gets
// fd00:10:244:i::k/128, default via fe80::1 (the node-side veth). No DAD anywhere: the
// addresses are ours and unique, and a tentative address would delay the pod's start.
//
// Every pod packet therefore crosses its node's L3 (where nftables DNATs Service VIPs and
// the daemon's programs see it), with no bridge hairpin between pods of one node.
import * as fs from 'node:fs';
import { run } from './host';
import { NETNS_PREFIX, SERVICE_CIDR, TOP_NETNS } from './state';

export const BRIDGE = 'br0';
export const NODE_SUBNET_PREFIX = '172.30.0';
/** The top namespace's own address on the node subnet, where nodemesh-identity listens. */
export const TOP_IP = `${NODE_SUBNET_PREFIX}.1`;
/** The pods' gateway address (never assigned; answered by proxy ARP on the node side). */
export const POD_GATEWAY = '169.254.1.1';
export const FIRST_POD_SLOT = 2;
export const LAST_POD_SLOT = 254;

export const nodeName = (i: number): string => `node-${i}`;
export const nodeNetns = (i: number): string => `${NETNS_PREFIX}node-${i}`;
export const nodeIP = (i: number): string => `${NODE_SUBNET_PREFIX}.${10 + i}`;
export const podCIDR = (i: number): string => `10.244.${i}.0/24`;
export const podIP = (i: number, slot: number): string => `10.244.${i}.${slot}`;
export const NODE_SUBNET6_PREFIX = 'fd00:172:30:';
export const nodeIP6 = (i: number): string => `${NODE_SUBNET6_PREFIX}:${(10 + i).toString(16)}`;
export const podCIDR6 = (i: number): string => `fd00:10:244:${i.toString(16)}::/64`;
export const podIP6 = (i: number, slot: number): string => `fd00:10:244:${i.toString(16)}::${slot.toString(16)}`;
/** The pods' IPv6 gateway: the node-side veth's link-local address. */
export const POD_GATEWAY6 = 'fe80::1';
/** Pod annotation asking the sandbox for an IPv6 address too (the sandbox's stand-in for a
 * dual-stack cluster's pod IP families). */
export const ANNOTATION_IP_FAMILIES = 'sandbox.nodemesh.io/ip-families';

/** Whether a pod's annotations ask for IPv6 (pure). */
export function wantsIPv6(annotations: Readonly<Record<string, string>> | undefined): boolean {
  return (annotations?.[ANNOTATION_IP_FAMILIES] ?? '').split(',').map((s) => s.trim().toLowerCase()).includes('ipv6');
}

/** Sysctls for a namespace with IPv6 addresses we assign ourselves. */
const NO_DAD = { 'net.ipv6.conf.all.accept_dad': '0', 'net.ipv6.conf.default.accept_dad': '0' };
/** Node-side veth of a pod; interface names are at most 15 bytes. */
export const hostVethName = (slot: number): string => `vpod${slot}`;
export const netnsPath = (name: string): string => `/run/netns/${name}`;

export function podNetns(namespace: string, name: string, nodeIndex: number, slot: number): string {
  const readable = `${NETNS_PREFIX}pod-${namespace}_${name}`;
  return readable.length <= 200 ? readable : `${NETNS_PREFIX}pod-${nodeIndex}-${slot}`;
}

function ipBatch(netns: string | undefined, lines: string[]): void {
  const args = netns ? ['-n', netns, '-batch', '-'] : ['-batch', '-'];
  run('ip', args, { input: lines.join('\n') + '\n' });
}

/** Writes /proc/sys values inside a namespace (a /proc/sys/net file shows the namespace of
 * the process that opens it, so the writes run under nsenter). */
export function setSysctls(netns: string, values: Record<string, string>): void {
  const script = Object.entries(values)
    .map(([k, v]) => `echo ${v} > /proc/sys/${k.replace(/\./g, '/')}`)
    .join(' && ');
  run('nsenter', [`--net=${netnsPath(netns)}`, '--', 'sh', '-c', script]);
}

export function createTop(): void {
  run('ip', ['netns', 'add', TOP_NETNS]);
  ipBatch(TOP_NETNS, ['link set lo up', `link add ${BRIDGE} type bridge`, `addr add ${TOP_IP}/24 dev ${BRIDGE}`, `link set ${BRIDGE} up`]);
}

/** Creates node i's namespace, plugs it into the top bridge and routes to every other node's
 * pod CIDR through that node. */
export function createNode(i: number, nodeCount: number): void {
  const ns = nodeNetns(i);
  run('ip', ['netns', 'add', ns]);
  setSysctls(ns, NO_DAD);
  ipBatch(TOP_NETNS, [
    `link add nd${i} type veth peer name eth0 netns ${ns}`,
    `link set nd${i} master ${BRIDGE}`,
    `link set nd${i} up`,
  ]);
  const routes: string[] = [];
  for (let j = 1; j <= nodeCount; j++) {
    if (j === i) continue;
    routes.push(`route add ${podCIDR(j)} via ${nodeIP(j)} dev eth0`);
    routes.push(`route add ${podCIDR6(j)} via ${nodeIP6(j)} dev eth0`);
  }
  ipBatch(ns, [
    'link set lo up',
    `addr add ${nodeIP(i)}/24 dev eth0`,
    `addr add ${nodeIP6(i)}/64 dev eth0 nodad`,
    'link set eth0 up',
    // Proxy ARP only answers for addresses the node has a route to through another
    // interface. The node has no default route (isolation), so give the pods' gateway one.
    `route add ${POD_GATEWAY}/32 dev lo`,
    // Service VIPs need a route for the first lookup to succeed (kube-proxy nodes have a
    // default route for that); nftables then DNATs to an endpoint, or rejects the packet in
    // the forward hook when the service has none. It never leaves the sandbox: the bridge
    // has no uplink.
    `route add ${SERVICE_CIDR} dev eth0`,
    ...routes,
  ]);
  setSysctls(ns, {
    'net.ipv4.ip_forward': '1',
    'net.ipv6.conf.all.forwarding': '1',
    'net.ipv4.conf.all.rp_filter': '0',
    'net.ipv4.conf.default.rp_filter': '0',
  });
}

/** Creates a pod's namespace with a routed /32 veth to its node (and a /128 with ip6). */
export function createPodNetwork(p: { netns: string; nodeNetns: string; hostVeth: string; ip: string; ip6?: string }): void {
  if (fs.existsSync(netnsPath(p.netns))) deleteNetns(p.netns); // a leftover of an earlier incarnation
  run('ip', ['netns', 'add', p.netns]);
  setSysctls(p.netns, NO_DAD);
  ipBatch(p.nodeNetns, [
    `link add ${p.hostVeth} type veth peer name eth0 netns ${p.netns}`,
    `link set ${p.hostVeth} up`,
  ]);
  setSysctls(p.nodeNetns, {
    [`net.ipv4.conf.${p.hostVeth}.proxy_arp`]: '1',
    [`net.ipv4.neigh.${p.hostVeth}.proxy_delay`]: '0',
    [`net.ipv4.conf.${p.hostVeth}.rp_filter`]: '0',
  });
  ipBatch(p.nodeNetns, [
    `route add ${p.ip}/32 dev ${p.hostVeth}`,
    ...(p.ip6 ? [`addr add ${POD_GATEWAY6}/64 dev ${p.hostVeth} nodad`, `route add ${p.ip6}/128 dev ${p.hostVeth}`] : []),
  ]);
  ipBatch(p.netns, [
    'link set lo up',
    `addr add ${p.ip}/32 dev eth0`,
    ...(p.ip6 ? [`addr add ${p.ip6}/128 dev eth0 nodad`] : []),
    'link set eth0 up',
    `route add ${POD_GATEWAY} dev eth0 scope link`,
    `route add default via ${POD_GATEWAY} dev eth0`,
    ...(p.ip6 ? [`route add default via ${POD_GATEWAY6} dev eth0`] : []),
  ]);
}

/** Names of all sandbox network namespaces (`nmsb-*`), pods first, then nodes, then top. */
export function listSandboxNetns(): string[] {
  const names = new Set<string>();
  const r = run('ip', ['netns', 'list'], { allowFail: true });
  for (const line of r.stdout.split('\n')) {
    const name = line.split(' ')[0];
    if (name && name.startsWith(NETNS_PREFIX)) names.add(name);
  }
  try {
    for (const n of fs.readdirSync('/run/netns')) if (n.startsWith(NETNS_PREFIX)) names.add(n);
  } catch { /* no /run/netns yet */ }
  const rank = (n: string): number => (n === TOP_NETNS ? 2 : n.startsWith(`${NETNS_PREFIX}node-`) ? 1 : 0);
  return [...names].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** Deletes a network namespace we created; the veth pairs in it go with it. */
export function deleteNetns(name: string): boolean {
  const r = run('ip', ['netns', 'delete', name], { allowFail: true });
  if (r.status === 0) return true;
  // A crash between `ip netns add`'s mkfile and its bind mount can leave a plain file.
  try {
    fs.unlinkSync(netnsPath(name));
    return true;
  } catch {
    return !fs.existsSync(netnsPath(name));
  }
}
