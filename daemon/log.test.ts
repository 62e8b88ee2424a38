import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isoTimeAt } from './log';

test('isoTimeAt writes what Date#toISOString writes, across seconds, days and back in time', () => {
  const starts = [Date.UTC(2026, 10, 29, 14, 59, 58, 990), Date.UTC(2026, 11, 31, 23, 59, 59, 0), Date.UTC(2024, 1, 29, 0, 0, 0, 0), 0];
  for (const start of starts) {
    for (let t = start; t < start + 2_500; t += 7) assert.equal(isoTimeAt(t), `,"time":"${new Date(t).toISOString()}"`);
    // the clock stepping back re-formats rather than writing a negative millisecond count
    assert.equal(isoTimeAt(start - 1), `,"time":"${new Date(start - 1).toISOString()}"`);
  }
});
