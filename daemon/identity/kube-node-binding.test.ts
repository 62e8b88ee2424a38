import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { KubeNodeBinding, toBindingPod } from './kube-node-binding';
import type { BindingPod } from './node-binding';
import { NodemeshError } from '../errors';

test('KubeNodeBinding: one list per node while fresh; a refusal is re-checked once with a fresh list; API errors are NOT_READY', async () => {
  let now = 0;
  const lists: string[] = [];
  let pods: BindingPod[] = [{ namespace: 'shop', name: 'web-1', serviceAccount: 'web', phase: 'Running', node: 'n1' }];
  const b = new KubeNodeBinding(async (node) => { lists.push(node); return pods.filter((p) => p.node === node); }, 5000, () => now);
  assert.equal((await b.check('n1', 'shop', 'web')).allowed, true);
  assert.equal((await b.check('n1', 'shop', 'web')).allowed, true);
  assert.deepEqual(lists, ['n1']);
  // A pod that appeared after the cached list: found by the fresh re-check.
  pods = [...pods, { namespace: 'shop', name: 'db-1', serviceAccount: 'db', phase: 'Pending', node: 'n1' }];
  assert.equal((await b.check('n1', 'shop', 'db')).allowed, true);
  assert.deepEqual(lists, ['n1', 'n1']);
  now = 10_000;
  const no = await b.check('n1', 'shop', 'cache');
  assert.equal(no.allowed, false);
  assert.deepEqual(lists, ['n1', 'n1', 'n1'], 'an expired entry is listed once, not twice');
  const failing = new KubeNodeBinding(async () => { throw new Error('HTTP 503'); });
  await assert.rejects(failing.check('n1', 'shop', 'web'), (e: unknown) => NodemeshError.is(e, 'NODEMESH_E_IDENTITY_NOT_READY') && /503/.test(e.message));
});

test('toBindingPod: the API pod shape; no serviceAccountName means default', () => {
  assert.deepEqual(toBindingPod({ metadata: { name: 'p', namespace: 'ns' }, spec: { nodeName: 'n1' }, status: { phase: 'Running' } }),
    { namespace: 'ns', name: 'p', serviceAccount: 'default', phase: 'Running', node: 'n1' });
});
