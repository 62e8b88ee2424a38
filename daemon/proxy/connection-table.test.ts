import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { ConnectionTable } from './connection-table';

test('connection table keeps the most recent closed records, oldest first', () => {
  const t = new ConnectionTable(pino({ level: 'silent' }), {}, 3);
  const recs = [1, 2, 3, 4, 5].map((i) => t.add({ direction: 'outbound', pod: { uid: 'u', namespace: 'n', name: 'p' }, source: { address: `s${i}` }, originalDestination: { address: `d${i}` }, verdict: 'allow', reason: '' }));
  assert.equal(t.list().open.length, 5);
  for (const r of recs) t.close(r, { sent: 1, received: 2 });
  t.close(recs[0], { sent: 9, received: 9 }); // a second close is ignored
  const l = t.list();
  assert.equal(l.open.length, 0);
  assert.deepEqual(l.closed.map((r) => r.source.address), ['s3', 's4', 's5']);
  assert.equal(l.closed[0].bytesSent, 1);
});
