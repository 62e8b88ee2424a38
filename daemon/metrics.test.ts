import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { NodeMetrics } from './metrics';
import { ConnectionTable } from './proxy/connection-table';

test('connection counters: opened, closed, bytes and refusals by cause, summed per label set at scrape', async () => {
  const m = new NodeMetrics();
  const t = new ConnectionTable(pino({ level: 'silent' }), { opened: (r) => m.opened(r), closed: (r) => m.closed(r) });
  const client = { uid: 'c', namespace: 'shop', name: 'web-1', owner: 'web' };
  const api = { uid: 'a', namespace: 'shop', name: 'api-1', owner: 'api' };
  const one = (src: typeof client, verdict: 'allow' | 'deny', cause: 'allowed' | 'denied-by-policy', sent: number, received: number) => {
    const r = t.add({ direction: 'inbound-hbone', pod: api, source: { address: '10.0.0.1', workload: src }, originalDestination: { address: '10.0.0.2:80', workload: api },
      sourceIdentity: `spiffe://cluster.local/ns/shop/sa/${src.owner}`, destinationIdentity: 'spiffe://cluster.local/ns/shop/sa/api', verdict, cause, reason: cause });
    t.close(r, sent, received);
  };
  one(client, 'allow', 'allowed', 100, 200);
  one(client, 'allow', 'allowed', 1, 2);
  one(client, 'deny', 'denied-by-policy', 0, 0);
  one({ ...client, uid: 'd', owner: 'db' }, 'deny', 'denied-by-policy', 0, 0);
  const text = await m.registry.metrics();
  const web = 'direction="inbound-hbone",source_workload="shop/web",destination_workload="shop/api",source_identity="spiffe://cluster.local/ns/shop/sa/web",destination_identity="spiffe://cluster.local/ns/shop/sa/api"';
  assert.match(text, new RegExp(`nodemesh_connections_opened_total\\{${web},verdict="allow"\\} 2\\n`));
  assert.match(text, new RegExp(`nodemesh_connections_closed_total\\{${web},verdict="deny"\\} 1\\n`));
  assert.match(text, new RegExp(`nodemesh_sent_bytes_total\\{${web}\\} 101\\n`));
  assert.match(text, new RegExp(`nodemesh_received_bytes_total\\{${web}\\} 202\\n`));
  // Two source series, one refusal label set: they add up.
  assert.match(text, /nodemesh_connections_denied_total\{direction="inbound-hbone",destination_workload="shop\/api",reason="denied-by-policy"\} 2\n/);
  // A second scrape reports the same totals (not doubled).
  assert.equal((await m.registry.metrics()).match(/nodemesh_connections_denied_total\{[^}]*\} (\d+)/)?.[1], '2');
});
