import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { ConnectionTable } from './connection-table';

test('connection table keeps the most recent closed records, oldest first', () => {
  const t = new ConnectionTable(pino({ level: 'silent' }), {}, 3);
  const recs = [1, 2, 3, 4, 5].map((i) => t.add({ direction: 'outbound', pod: { uid: 'u', namespace: 'n', name: 'p' }, source: { address: `s${i}` }, originalDestination: { address: `d${i}` }, verdict: 'allow', cause: 'allowed', reason: '' }));
  assert.equal(t.list().open.length, 5);
  for (const r of recs) t.close(r, 1, 2);
  t.close(recs[0], 9, 9); // a second close is ignored
  const l = t.list();
  assert.equal(l.open.length, 0);
  assert.deepEqual(l.closed.map((r) => r.source.address), ['s3', 's4', 's5']);
  assert.equal(l.closed[0].bytesSent, 1);
});

test('listed records carry ISO times and the duration', () => {
  const t = new ConnectionTable(pino({ level: 'silent' }));
  const r = t.addFinished({ direction: 'inbound-hbone', pod: { uid: 'u', namespace: 'n', name: 'p' }, source: { address: 's' }, originalDestination: { address: 'd' }, verdict: 'deny', cause: 'denied-by-policy', reason: 'x' },
    0, 0, Date.parse('2026-01-01T00:00:00.000Z'));
  const [v] = t.list().closed;
  assert.equal(v.id, r.id);
  assert.equal(v.openedAt, '2026-01-01T00:00:00.000Z');
  assert.match(v.closedAt ?? '', /^\d{4}-\d\d-\d\dT/);
  assert.ok((v.durationMs ?? -1) > 0);
  assert.equal((v as unknown as Record<string, unknown>).openedAtMs, undefined);
});
