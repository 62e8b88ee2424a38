// The sandbox source delivers what changed, not the whole directory, and derives slices.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SandboxSource } from './sandbox-source';
import { removeObject, writeObject } from './object-directory';
import type { SourceBatch } from './source';

function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => (cond() ? resolve() : Date.now() > end ? reject(new Error('timed out')) : setTimeout(tick, 10));
    tick();
  });
}

test('sandbox source: incremental batches, derived EndpointSlices, unreadable files reported', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nm-sandbox-src-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const pod = (name: string, ip: string) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'shop', uid: `uid-${name}`, labels: { app: 'api' } },
    spec: { nodeName: 'node-1', containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 8080 }] }] }, status: { phase: 'Running', podIP: ip } });
  writeObject(dir, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } });
  writeObject(dir, pod('a', '10.244.1.2'));
  writeObject(dir, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'api', namespace: 'shop' }, spec: { selector: { app: 'api' }, clusterIP: '10.96.0.9', ports: [{ port: 80, targetPort: 'http' }] } });
  writeObject(dir, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg', namespace: 'shop' } });
  const batches: SourceBatch[] = [];
  const src = new SandboxSource(dir, 50);
  await src.start((b) => batches.push(b));
  t.after(() => src.stop());
  const first = batches[0];
  assert.deepEqual(first.changes.map((c) => (c.op === 'upsert' ? `${c.resource.kind}/${c.resource.metadata.name}` : c.name)).sort(),
    ['EndpointSlice/api-ipv4-0', 'Namespace/shop', 'Pod/a', 'Service/api']);
  assert.ok(first.synced.includes('Pod') && first.synced.includes('EndpointSlice'));

  writeObject(dir, pod('b', '10.244.1.3'));
  await until(() => batches.length >= 2);
  const second = batches[1];
  assert.deepEqual(second.changes.map((c) => (c.op === 'upsert' ? `${c.resource.kind}/${c.resource.metadata.name}` : `-${c.name}`)).sort(),
    ['EndpointSlice/api-ipv4-0', 'Pod/b'], 'only the new pod and the slice it changed');
  assert.deepEqual(second.synced, []);

  removeObject(dir, 'Service', 'shop', 'api');
  fs.writeFileSync(path.join(dir, 'Pod.shop.broken.json'), '{ not json');
  const later = () => batches.slice(2);
  await until(() => later().some((b) => b.skipped.length > 0) && later().flatMap((b) => b.changes).length >= 2);
  assert.deepEqual(later().flatMap((b) => b.changes).map((c) => `${c.op}:${c.op === 'upsert' ? c.resource.metadata.name : c.name}`).sort(), ['delete:api', 'delete:api-ipv4-0']);
  const skipped = later().find((b) => b.skipped.length > 0)!.skipped;
  assert.equal(skipped.length, 1);
  assert.equal(skipped[0].reason, 'unreadable');
});

test('sandbox source: a poll with no file changed reads and validates nothing; any write is still seen', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nm-sandbox-src-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  writeObject(dir, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } });
  let validated = 0;
  const batches: SourceBatch[] = [];
  const src = new SandboxSource(dir, 20, () => { validated++; return { schemaKnown: true, issues: [] }; });
  await src.start((b) => batches.push(b));
  t.after(() => src.stop());
  assert.equal(validated, 1);
  await new Promise((r) => setTimeout(r, 200)); // ~10 polls
  assert.equal(validated, 1, 'an unchanged directory was read again');

  writeObject(dir, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { a: 'b' } } }); // rename: new inode
  await until(() => batches.length >= 2);
  assert.deepEqual(batches[1]!.changes.map((c) => c.op === 'upsert' && c.resource.metadata.labels), [{ a: 'b' }]);
  // Rewritten in place (same inode, other size): still seen.
  const file = path.join(dir, 'Namespace._cluster.shop.json');
  fs.writeFileSync(file, JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { a: 'bc' } } }));
  await until(() => batches.length >= 3);
  assert.deepEqual(batches[2]!.changes.map((c) => c.op === 'upsert' && c.resource.metadata.labels), [{ a: 'bc' }]);
});
