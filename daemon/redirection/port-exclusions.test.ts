import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { MAX_EXCLUDED_PORTS, portExclusions } from './port-exclusions';

describe('port exclusions from annotations', () => {
  const cases: { name: string; annotations: Record<string, string> | undefined; inbound: number[]; outbound: number[]; problems: number }[] = [
    { name: 'none', annotations: undefined, inbound: [], outbound: [], problems: 0 },
    { name: 'Istio names', annotations: { 'traffic.sidecar.istio.io/excludeInboundPorts': '8080, 9090', 'traffic.sidecar.istio.io/excludeOutboundPorts': '5432' }, inbound: [8080, 9090], outbound: [5432], problems: 0 },
    { name: 'nodemesh names merge with Istio\'s', annotations: { 'nodemesh.io/exclude-inbound-ports': '9090,7000', 'traffic.sidecar.istio.io/excludeInboundPorts': '9090' }, inbound: [7000, 9090], outbound: [], problems: 0 },
    { name: 'bad entries dropped, good kept', annotations: { 'nodemesh.io/exclude-outbound-ports': '53,abc,0,70000,-1,1e3, 443' }, inbound: [], outbound: [53, 443], problems: 5 },
    { name: 'empty items ignored', annotations: { 'nodemesh.io/exclude-inbound-ports': ',,8080,' }, inbound: [8080], outbound: [], problems: 0 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = portExclusions(c.annotations);
      assert.deepEqual(r.inbound, c.inbound);
      assert.deepEqual(r.outbound, c.outbound);
      assert.equal(r.problems.length, c.problems, r.problems.join('; '));
    });
  }
  it('bounded per pod, and problems quote at most a short excerpt', () => {
    const many = Array.from({ length: 100 }, (_, i) => String(i + 1)).join(',');
    const r = portExclusions({ 'nodemesh.io/exclude-inbound-ports': many, 'nodemesh.io/exclude-outbound-ports': 'x'.repeat(10_000) });
    assert.equal(r.inbound.length, MAX_EXCLUDED_PORTS);
    assert.ok(r.problems.every((p) => p.length < 200));
  });
});
