import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { run } from '@bufbuild/cel';
import { kubernetesCelFunctions } from './kubernetes-cel-library';

const evaluate = (expr: string, self: string): unknown => run(expr, { self }, { funcs: [...kubernetesCelFunctions] });

// Expected answers as Kubernetes' library documents them (netip parsing, plus no zones and
// no IPv4-mapped IPv6 addresses).
const cases: [input: string, isIP: boolean, isCIDR: boolean][] = [
  ['127.0.0.1', true, false],
  ['::1', true, false],
  ['2001:db8::abcd', true, false],
  ['10.244.0.0/16', false, true],
  ['10.244.1.7/24', false, true], // host bits after the prefix are allowed
  ['0.0.0.0/0', false, true],
  ['fd00::/64', false, true],
  ['::/128', false, true],
  ['127.0.0.256', false, false],
  [':::1', false, false],
  ['010.0.0.1', false, false],
  ['fe80::1%eth0', false, false],
  ['fe80::1%eth0/64', false, false],
  ['::ffff:1.2.3.4', false, false],
  ['::ffff:102:304', false, false],
  ['::FFFF:102:304', false, false],
  ['fd00:ffff::1', true, false],
  ['::ffff:1.2.3.0/120', false, false],
  ['10.0.0.0/33', false, false],
  ['fd00::/129', false, false],
  ['10.0.0.0/08', false, false],
  ['10.0.0.0/', false, false],
  ['10.0.0.0/8/8', false, false],
  ['web.shop', false, false],
  ['', false, false],
];

for (const [input, ip, cidr] of cases) {
  test(`isIP/isCIDR(${JSON.stringify(input)})`, () => {
    assert.equal(evaluate('isIP(self)', input), ip);
    assert.equal(evaluate('isCIDR(self)', input), cidr);
  });
}

test('isIP on a non-string is a CEL error (no matching overload), which fails a rule', () => {
  const r = run('isIP(self)', { self: 1n }, { funcs: [...kubernetesCelFunctions] });
  assert.ok(r instanceof Error, String(r));
});
