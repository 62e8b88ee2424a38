import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGatewayDuration } from './gateway-duration';

test('Gateway API durations: the GEP-2257 grammar and nothing else', () => {
  const table: [string, number | undefined][] = [
    ['0s', 0], ['1h', 3_600_000], ['500ms', 500], ['1m30s', 90_000], ['1h2m3s4ms', 3_723_004], ['10s', 10_000],
    ['', undefined], ['1', undefined], ['1.5s', undefined], ['-1s', undefined], ['1us', undefined],
    ['123456s', undefined], ['1h1h1h1h1h', undefined], ['1 s', undefined], ['1d', undefined],
  ];
  for (const [text, want] of table) assert.equal(parseGatewayDuration(text), want, text);
});
