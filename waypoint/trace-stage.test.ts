import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextTraceparent, randomHex } from './trace-stage';

test('traceparent: keep the trace and flags, new span; start a trace when missing or invalid', () => {
  const span = 'b7ad6b7169203331';
  const trace = () => '11111111111111111111111111111111';
  const table: [string | undefined, string][] = [
    ['00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01', `00-0af7651916cd43dd8448eb211c80319c-${span}-01`],
    ['00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-00', `00-0af7651916cd43dd8448eb211c80319c-${span}-00`],
    [undefined, `00-${trace()}-${span}-01`],
    ['garbage', `00-${trace()}-${span}-01`],
    ['00-00000000000000000000000000000000-00f067aa0ba902b7-01', `00-${trace()}-${span}-01`],
    ['00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01', `00-${trace()}-${span}-01`],
    ['ff-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01', `00-${trace()}-${span}-01`],
    ['00-0AF7651916CD43DD8448EB211C80319C-00f067aa0ba902b7-01', `00-${trace()}-${span}-01`],
  ];
  for (const [incoming, want] of table) assert.equal(nextTraceparent(incoming, span, trace), want, String(incoming));
});

test('randomHex: the asked length, hex, different each time across pool refills', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const h = randomHex(i % 2 ? 8 : 16);
    assert.match(h, i % 2 ? /^[0-9a-f]{16}$/ : /^[0-9a-f]{32}$/);
    seen.add(h);
  }
  assert.equal(seen.size, 1000);
});
