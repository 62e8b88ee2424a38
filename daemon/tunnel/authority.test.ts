import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { canonicalIp, formatAuthority, parseAuthority } from './authority';

test('parseAuthority accepts ip:port and [v6]:port, canonicalised', () => {
  const cases: [string, string, number][] = [
    ['10.1.2.3:8080', '10.1.2.3', 8080],
    ['[fd00::1]:80', 'fd00::1', 80],
    ['[FD00:0:0:0:0:0:0:1]:443', 'fd00::1', 443],
    ['127.0.0.1:65535', '127.0.0.1', 65535],
  ];
  for (const [input, address, port] of cases) {
    assert.deepEqual(parseAuthority(input), { ok: true, value: { address, port } }, input);
  }
});

test('parseAuthority refuses names, missing or bad ports, garbage', () => {
  const bad: [string | undefined, RegExp][] = [
    [undefined, /missing/],
    ['', /missing/],
    ['api.shop:80', /not ip:port/],
    ['10.0.0.1', /no port/],
    ['10.0.0.1:', /no valid port/],
    ['10.0.0.1:0', /out of range/],
    ['10.0.0.1:70000', /out of range/],
    ['10.0.0.1:80x', /no valid port/],
    ['[fd00::1]80', /not \[ipv6\]:port/],
    ['[nope]:80', /IPv6/],
    ['fd00::1:80', /not ip:port/],
  ];
  for (const [input, reason] of bad) {
    const r = parseAuthority(input);
    assert.equal(r.ok, false, String(input));
    if (!r.ok) assert.match(r.reason, reason, String(input));
  }
});

test('formatAuthority and canonicalIp', () => {
  assert.equal(formatAuthority('10.0.0.1', 80), '10.0.0.1:80');
  assert.equal(formatAuthority('fd00::1', 80), '[fd00::1]:80');
  assert.equal(canonicalIp('::ffff:10.0.0.1'), '10.0.0.1');
  assert.equal(canonicalIp('FD00::0001'), 'fd00::1');
});
