// The test API server driven by @kubernetes/client-node 1.x through the kubeconfig it writes,
// as nodemesh's own code will use it: typed list calls with limit/continue, errors as
// ApiException with a Status body, Watch, an informer through add/update/delete, a watch the
// server closes, and a 410 Gone that makes the informer relist.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { startTestApiServer, type TestApiServer } from './test-api-server';
import { recordedJson } from './wire-fixtures';

/** Polls `cond` until it holds; fails after `ms` (a deadline, not a timing assertion). */
async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const pod = (name: string, labels: Record<string, string> = { app: 'web' }) => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'wire', labels }, spec: { containers: [{ name: 'c', image: 'x' }] },
});

describe('test API server with @kubernetes/client-node 1.x', () => {
  let s: TestApiServer;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  before(async () => {
    s = await startTestApiServer({ bookmarkIntervalMs: 0 });
    kc = new k8s.KubeConfig();
    kc.loadFromFile(s.kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);
    s.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'wire' } });
    for (let i = 0; i < 7; i++) s.store.create(pod(`p${i}`));
  });
  after(async () => s.close());

  test('the kubeconfig names the server, its CA and the admin token', () => {
    assert.equal(kc.getCurrentCluster()?.server, s.url);
    assert.equal(Buffer.from(kc.getCurrentCluster()!.caData!, 'base64').toString(), s.caPem);
    assert.equal(kc.getCurrentUser()?.token, s.adminToken);
  });

  test('CoreV1Api: limit/continue pages through every pod, all at one resourceVersion', async () => {
    const names: string[] = [];
    const versions = new Set<string>();
    let cont: string | undefined;
    let pages = 0;
    do {
      const page = await core.listNamespacedPod({ namespace: 'wire', limit: 3, _continue: cont });
      names.push(...page.items.map((p) => p.metadata!.name!));
      versions.add(page.metadata!.resourceVersion!);
      cont = page.metadata!._continue;
      pages++;
    } while (cont);
    assert.equal(pages, 3);
    assert.deepEqual(names, ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
    assert.equal(versions.size, 1);
  });

  test('errors arrive as ApiException with the Status body', async () => {
    await assert.rejects(core.readNamespacedPod({ namespace: 'wire', name: 'nope' }), (e: any) => {
      assert.equal(e.code, 404);
      assert.deepEqual(JSON.parse(e.body), recordedJson('06-get-missing-404'));
      return true;
    });
    await assert.rejects(core.createNamespacedServiceAccount({ namespace: 'wire', body: { metadata: { name: 'sa1' } } }).then(() => core.createNamespacedServiceAccount({ namespace: 'wire', body: { metadata: { name: 'sa1' } } })), (e: any) => {
      assert.equal(e.code, 409);
      assert.deepEqual(JSON.parse(e.body), recordedJson('07-create-conflict-409'));
      return true;
    });
  });

  test('server-side apply and TokenReview through the typed clients', async () => {
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg', namespace: 'wire' }, data: { a: '1' } };
    const applied = await core.patchNamespacedConfigMap({ name: 'cfg', namespace: 'wire', body: cm, fieldManager: 'nodemesh', force: true },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply));
    assert.equal(applied.metadata?.managedFields?.[0].manager, 'nodemesh');
    assert.equal(applied.metadata?.managedFields?.[0].operation, 'Apply');

    const token = s.store.issueToken('wire', 'sa1', { audiences: ['nodemesh-identity'] });
    const authn = kc.makeApiClient(k8s.AuthenticationV1Api);
    const review = await authn.createTokenReview({ body: { spec: { token, audiences: ['nodemesh-identity'] } } });
    assert.equal(review.status?.authenticated, true);
    assert.equal(review.status?.user?.username, 'system:serviceaccount:wire:sa1');
    const wrong = await authn.createTokenReview({ body: { spec: { token, audiences: ['other'] } } });
    assert.equal(wrong.status?.authenticated, undefined);
    assert.equal(wrong.status?.error, '[invalid bearer token, token audiences ["nodemesh-identity"] is invalid for the target audiences ["other"]]');
  });

  test('Watch: events from a resourceVersion, then done(null) when the server closes the watch', async () => {
    const list = await core.listNamespacedPod({ namespace: 'wire' });
    const seen: string[] = [];
    let doneWith: unknown = 'not yet';
    await new k8s.Watch(kc).watch('/api/v1/namespaces/wire/pods', { resourceVersion: list.metadata!.resourceVersion, allowWatchBookmarks: true },
      (type, obj) => seen.push(`${type} ${obj.metadata?.name ?? ''}`), (err) => { doneWith = err; });
    await until('the watch to be open', () => s.openWatches() === 1);
    s.store.create(pod('w1'));
    s.store.apply({ ...pod('w1'), metadata: { ...pod('w1').metadata, labels: { app: 'web', v: '2' } } });
    s.store.delete('v1', 'Pod', 'w1', 'wire');
    s.faults.sendBookmarks();
    await until('four events', () => seen.length >= 4);
    assert.deepEqual(seen, ['ADDED w1', 'MODIFIED w1', 'DELETED w1', 'BOOKMARK ']);
    s.faults.closeWatches();
    await until('done', () => doneWith !== 'not yet');
    assert.equal(doneWith, null);
  });

  test('informer: add/update/delete, a watch the server closes, a 410 Gone that makes it relist', async () => {
    const informer = k8s.makeInformer(kc, '/api/v1/namespaces/wire/pods', () => core.listNamespacedPod({ namespace: 'wire' }));
    const log: string[] = [];
    const errors: unknown[] = [];
    informer.on('add', (p) => log.push(`add ${p.metadata!.name}`));
    informer.on('update', (p) => log.push(`update ${p.metadata!.name}`));
    informer.on('delete', (p) => log.push(`delete ${p.metadata!.name}`));
    informer.on('error', (e) => errors.push(e));
    await informer.start();
    try {
      await until('the initial list', () => informer.list().length === 7);
      await until('the watch to be open', () => s.openWatches() === 1);

      s.store.create(pod('i1'));
      await until('add i1', () => log.includes('add i1'));
      s.store.apply({ ...pod('i1'), metadata: { ...pod('i1').metadata, labels: { app: 'web', v: '2' } } });
      await until('update i1', () => log.includes('update i1'));
      assert.equal(informer.get('i1', 'wire')?.metadata?.labels?.v, '2');
      s.store.delete('v1', 'Pod', 'i1', 'wire');
      await until('delete i1', () => log.includes('delete i1'));

      // The server ends the watch: the informer watches again from where it was, no relist.
      const listsBefore = s.requests.filter((r) => r.verb === 'list').length;
      s.faults.closeWatches();
      await until('a new watch', () => s.requests.filter((r) => r.verb === 'watch').length >= 2 && s.openWatches() === 1);
      s.store.create(pod('i2'));
      await until('add i2', () => log.includes('add i2'));
      assert.equal(s.requests.filter((r) => r.verb === 'list').length, listsBefore);

      // Changes while it is not watching, then compaction: its resourceVersion is gone, it gets
      // a 410 in the watch, relists, and catches up (p0 deleted, i3 added).
      s.faults.closeWatches();
      s.store.create(pod('i3'));
      s.store.delete('v1', 'Pod', 'p0', 'wire');
      s.store.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'bump', namespace: 'wire' } });
      s.faults.compact();
      await until('catch-up after 410', () => log.includes('add i3') && log.includes('delete p0'));
      assert.ok(s.requests.filter((r) => r.verb === 'list').length > listsBefore, 'it relisted');
      assert.deepEqual(informer.list().map((p) => p.metadata!.name).sort(), ['i2', 'i3', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
      assert.deepEqual(errors, []);
    } finally {
      await informer.stop();
    }
  });
});
