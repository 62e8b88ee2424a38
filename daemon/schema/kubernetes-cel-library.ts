// The functions of the Kubernetes CEL environment (k8s.io/apiserver/pkg/cel/library) that
// our CRDs' rules call, registered with @bufbuild/cel under the names Kubernetes gives them.
// Only what installer/crds uses: a rule that calls any other Kubernetes function is refused
// when its CRD loads (./validation-rule.ts), so adding one here is the way to allow it.
import { BlockList, isIP as nodeIsIP } from 'node:net';
import { CelScalar, celFunc, type CelFunc } from '@bufbuild/cel';

const ipv4MappedIPv6 = new BlockList();
ipv4MappedIPv6.addSubnet('::ffff:0:0', 96, 'ipv6');

/** 4 or 6 for an address Kubernetes' ip() accepts, else 0: as Go's netip.ParseAddr
 * (no leading zeros in IPv4 octets, which node:net refuses too), and, as Kubernetes adds,
 * no zone (fe80::1%eth0) and no IPv4-mapped IPv6 address (::ffff:1.2.3.4). */
export function kubernetesIPFamily(s: string): 0 | 4 | 6 {
  if (s.includes('%')) return 0;
  const family = nodeIsIP(s);
  // A mapped address always spells the group ffff (:: only stands for zeros); the BlockList
  // check, which allocates, runs only then.
  if (family === 6 && /ffff/i.test(s) && ipv4MappedIPv6.check(s, 'ipv6')) return 0;
  return family === 4 || family === 6 ? family : 0;
}

/** Whether Kubernetes' cidr() accepts s: an address as above and a decimal prefix length
 * within the family's bits (host bits after the prefix are allowed, as in Kubernetes). */
export function isKubernetesCIDR(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash < 0) return false;
  const bits = s.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bits)) return false;
  const family = kubernetesIPFamily(s.slice(0, slash));
  return family !== 0 && Number(bits) <= (family === 4 ? 32 : 128);
}

export const kubernetesCelFunctions: readonly CelFunc[] = [
  celFunc('isIP', [CelScalar.STRING], CelScalar.BOOL, (s) => kubernetesIPFamily(s) !== 0),
  celFunc('isCIDR', [CelScalar.STRING], CelScalar.BOOL, (s) => isKubernetesCIDR(s)),
];
