import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endToEndHeaders } from './http-headers';

test('hop-by-hop and pseudo-headers stay on their hop', () => {
  assert.deepEqual(endToEndHeaders({
    ':method': 'GET', ':path': '/', host: 'api', connection: 'keep-alive, x-private', 'keep-alive': 'timeout=5', 'x-private': '1',
    'transfer-encoding': 'chunked', te: 'trailers', upgrade: 'h2c', 'x-keep': 'yes', 'set-cookie': ['a', 'b'], skipped: undefined,
  }), { 'x-keep': 'yes', 'set-cookie': ['a', 'b'] });
});
