import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  CertificateManager, DEFAULT_BACKOFF, DEFAULT_REFRESH, IssuedIdentity, WorkloadIdentityKey, backoffDelay, refreshDelay,
} from './certificate-manager';
import { NodemeshError } from '../errors';

const T0 = Date.parse('2030-01-01T00:00:00Z');

test('refreshDelay: about half the usable lifetime, jittered, never below the minimum', () => {
  const id = { notBefore: new Date(T0 - 60_000), notAfter: new Date(T0 + 3600_000) }; // backdated a minute
  const p = DEFAULT_REFRESH;
  const cases: { name: string; receivedAt: number; now: number; random: number; want: number }[] = [
    { name: 'middle of the jitter range', receivedAt: T0, now: T0, random: 0.5, want: 1800_000 },
    { name: 'earliest', receivedAt: T0, now: T0, random: 0, want: 0.45 * 3600_000 },
    { name: 'latest', receivedAt: T0, now: T0, random: 1, want: 0.55 * 3600_000 },
    { name: 'counted from receipt, not the backdated notBefore', receivedAt: T0, now: T0 + 600_000, random: 0.5, want: 1200_000 },
    { name: 'already past the refresh point: the minimum delay', receivedAt: T0, now: T0 + 3000_000, random: 0.5, want: p.minDelayMs },
  ];
  for (const c of cases) assert.equal(refreshDelay(id, c.receivedAt, c.now, p, c.random), Math.round(c.want), c.name);
  // notBefore later than receipt (clock skew the other way): count from notBefore.
  assert.equal(refreshDelay({ notBefore: new Date(T0 + 10_000), notAfter: new Date(T0 + 20_000) }, T0, T0, p, 0.5), 15_000);
  // A 2 s certificate refreshes after about 1 s.
  assert.equal(refreshDelay({ notBefore: new Date(T0 - 60_000), notAfter: new Date(T0 + 2000) }, T0, T0, p, 0.5), 1000);
});

test('backoffDelay: doubles from the initial delay up to the maximum, equal jitter', () => {
  const p = { initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 0.5 };
  const full = [1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, p, 1));
  assert.deepEqual(full, [100, 200, 400, 800, 1000, 1000]);
  const least = [1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, p, 0));
  assert.deepEqual(least, [50, 100, 200, 400, 500, 500]);
  assert.equal(backoffDelay(1, DEFAULT_BACKOFF, 1), 1000);
  assert.equal(backoffDelay(100, DEFAULT_BACKOFF, 1), 60_000);
});

function fakeIdentity(k: WorkloadIdentityKey, now: number, lifetimeMs: number, serial: number): IssuedIdentity {
  return {
    spiffeId: `spiffe://cluster.local/ns/${k.namespace}/sa/${k.serviceAccount}`, keyPem: `key-${serial}`, certChainPem: [`cert-${serial}`],
    trustBundlePem: ['root'], notBefore: new Date(now - 60_000), notAfter: new Date(now + lifetimeMs),
  };
}

/** A fetcher whose calls the test resolves or rejects by hand. */
function manualFetcher(): { fetch: (k: WorkloadIdentityKey) => Promise<IssuedIdentity>; calls: { key: WorkloadIdentityKey; resolve: (id: IssuedIdentity) => void; reject: (e: Error) => void }[] } {
  const calls: { key: WorkloadIdentityKey; resolve: (id: IssuedIdentity) => void; reject: (e: Error) => void }[] = [];
  return { calls, fetch: (key) => new Promise((resolve, reject) => calls.push({ key, resolve, reject })) };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('ensure fetches each new identity once, keeps existing ones and drops the rest', async () => {
  const f = manualFetcher();
  const m = new CertificateManager({ fetch: f.fetch });
  try {
    assert.deepEqual(m.ensure([{ namespace: 'shop', serviceAccount: 'api' }, { namespace: 'shop', serviceAccount: 'web' }]),
      { added: ['shop/api', 'shop/web'], removed: [] });
    assert.equal(f.calls.length, 2);
    assert.deepEqual(m.ensure([{ namespace: 'shop', serviceAccount: 'api' }, { namespace: 'shop', serviceAccount: 'web' }]), { added: [], removed: [] });
    assert.equal(f.calls.length, 2, 'no second fetch while one is in flight');

    const issued: string[] = [];
    m.on('issued', (id) => issued.push(id.spiffeId));
    const ready = m.whenReady('shop', 'api');
    f.calls[0].resolve(fakeIdentity(f.calls[0].key, Date.now(), 3600_000, 1));
    const id = await ready;
    assert.equal(id.keyPem, 'key-1');
    assert.equal(m.get('shop', 'api'), id);
    assert.ok(Object.isFrozen(id) && Object.isFrozen(id.certChainPem));
    assert.deepEqual(issued, ['spiffe://cluster.local/ns/shop/sa/api']);

    // web is dropped while its fetch is in flight: waiters fail, the late answer is ignored.
    const webReady = m.whenReady('shop', 'web');
    const dropped: string[] = [];
    m.on('dropped', (k) => dropped.push(`${k.namespace}/${k.serviceAccount}`));
    assert.deepEqual(m.ensure([{ namespace: 'shop', serviceAccount: 'api' }]), { added: [], removed: ['shop/web'] });
    await assert.rejects(webReady, (e) => NodemeshError.is(e, 'NODEMESH_E_IDENTITY_DROPPED'));
    f.calls[1].resolve(fakeIdentity(f.calls[1].key, Date.now(), 3600_000, 2));
    await tick();
    assert.equal(m.get('shop', 'web'), undefined);
    assert.deepEqual(issued, ['spiffe://cluster.local/ns/shop/sa/api']);
    assert.deepEqual(dropped, ['shop/web']);
    assert.deepEqual(m.status().map((s) => `${s.namespace}/${s.serviceAccount}`), ['shop/api']);

    await assert.rejects(m.whenReady('shop', 'web'), (e) => NodemeshError.is(e, 'NODEMESH_E_IDENTITY_NOT_MANAGED'));
  } finally {
    m.stop();
  }
});

test('get returns nothing once the certificate has expired; status says so', async () => {
  let now = T0;
  const f = manualFetcher();
  const m = new CertificateManager({ fetch: f.fetch, now: () => now });
  try {
    m.ensure([{ namespace: 'shop', serviceAccount: 'api' }]);
    assert.equal(m.status()[0].state, 'pending');
    f.calls[0].resolve(fakeIdentity(f.calls[0].key, T0, 10_000, 1));
    await m.whenReady('shop', 'api');
    assert.equal(m.status()[0].state, 'ready');
    assert.equal(m.status()[0].notAfter, new Date(T0 + 10_000).toISOString());
    now = T0 + 10_001;
    assert.equal(m.get('shop', 'api'), undefined, 'an expired certificate is never handed to the data path');
    assert.equal(m.status()[0].state, 'expired');
  } finally {
    m.stop();
  }
});

test('a failure retries with backoff, but while the current certificate is valid it retries well before expiry', async () => {
  const f = manualFetcher();
  const failures: { error: Error; retryAt: Date }[] = [];
  const m = new CertificateManager({ fetch: f.fetch, backoff: { initialMs: 50_000, maxMs: 50_000 }, random: () => 1, refresh: { minDelayMs: 10 } });
  m.on('failed', (error, _k, retryAt) => failures.push({ error, retryAt }));
  try {
    m.ensure([{ namespace: 'shop', serviceAccount: 'api' }]);
    f.calls[0].reject(new Error('boom'));
    await tick();
    assert.equal(failures.length, 1);
    const st = m.status()[0];
    assert.equal(st.failures, 1);
    assert.equal(st.lastError?.message, 'boom');
    const wait = Date.parse(st.nextRefresh!) - Date.now();
    assert.ok(wait > 49_000 && wait <= 50_000, `no certificate yet: plain backoff (${wait} ms)`);

    // Now with a valid certificate that has 400 ms left: the retry comes within ~200 ms.
    const m2 = new CertificateManager({ fetch: f.fetch, backoff: { initialMs: 50_000, maxMs: 50_000 }, random: () => 1, refresh: { fraction: 0.1, jitter: 0, minDelayMs: 10 } });
    try {
      m2.ensure([{ namespace: 'shop', serviceAccount: 'web' }]);
      f.calls[1].resolve(fakeIdentity(f.calls[1].key, Date.now(), 400, 1));
      await m2.whenReady('shop', 'web');
      for (let i = 0; i < 100 && f.calls.length < 3; i++) await new Promise((r) => setTimeout(r, 10)); // refresh at 10% = 40 ms
      assert.equal(f.calls.length, 3, 'refresh started');
      f.calls[2].reject(new Error('down'));
      await tick();
      const st2 = m2.status()[0];
      const retryIn = Date.parse(st2.nextRefresh!) - Date.now();
      assert.ok(retryIn <= 200, `retry in ${retryIn} ms, before the certificate expires`);
      assert.equal(st2.state, 'ready', 'the old certificate keeps serving meanwhile');
      assert.equal(m2.get('shop', 'web')?.keyPem, 'key-1');
    } finally {
      m2.stop();
    }
  } finally {
    m.stop();
  }
});

test('stop rejects pending waiters and ignores later answers', async () => {
  const f = manualFetcher();
  const m = new CertificateManager({ fetch: f.fetch });
  m.ensure([{ namespace: 'shop', serviceAccount: 'api' }]);
  const ready = m.whenReady('shop', 'api');
  m.stop();
  await assert.rejects(ready, (e) => NodemeshError.is(e, 'NODEMESH_E_IDENTITY_DROPPED'));
  f.calls[0].resolve(fakeIdentity(f.calls[0].key, Date.now(), 3600_000, 1));
  await tick();
  assert.equal(m.get('shop', 'api'), undefined);
  assert.deepEqual(m.ensure([{ namespace: 'shop', serviceAccount: 'api' }]), { added: [], removed: [] });
  assert.equal(f.calls.length, 1);
});

test('a fetcher that throws synchronously is treated as a failed attempt', async () => {
  const m = new CertificateManager({ fetch: () => { throw new Error('sync boom'); }, backoff: { initialMs: 60_000 } });
  try {
    const failed = new Promise<Error>((r) => m.once('failed', (e) => r(e)));
    m.ensure([{ namespace: 'shop', serviceAccount: 'api' }]);
    assert.equal((await failed).message, 'sync boom');
  } finally {
    m.stop();
  }
});
