// nodemesh_udp_passthrough_total: enrolled pods' UDP (DNS included) is not captured; the
// kernel counts what went past the mesh and this exports it. Labels are a fixed enum.
import { Counter, type Registry } from 'prom-client';
import type { UdpPassthroughCount } from '../redirection/datapath';

export const UDP_PASSTHROUGH_METRIC = 'nodemesh_udp_passthrough_total';

export function registerUdpPassthroughMetric(registry: Registry, read: () => UdpPassthroughCount[]): Counter<'family' | 'kind'> {
  return new Counter({
    name: UDP_PASSTHROUGH_METRIC,
    help: 'UDP sockets connected, or datagrams sent unconnected, by enrolled pods; UDP is not captured by the mesh and passes through unchanged',
    labelNames: ['family', 'kind'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const c of read()) this.inc({ family: c.family === 6 ? 'ipv6' : 'ipv4', kind: c.dns ? 'dns' : 'other' }, c.count);
    },
  });
}
