// nodemesh-identity and its clients end to end, on 127.0.0.1 with ephemeral ports: the real
// gRPC server over TLS, the sandbox node credentials, node binding from a SandboxSource over
// a temporary object directory, the real client and CertificateManager.
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { webcrypto } from 'node:crypto';
import { MeshCA, generateKeyAndCsr, verifyPeerChain } from './ca';
import { IdentityServer } from './identity-server';
import { IdentityClient } from './identity-client';
import { NodeCredentialAuthenticator, mintNodeCredentials, writeNodeCredentialsFile } from './node-credentials';
import { CertificateManager, IssuedIdentity } from './certificate-manager';
import { SandboxSource } from '../sources/sandbox-source';
import { removeObject, writeObject } from '../sources/object-directory';
import type { Snapshot } from '../state/snapshot';
import { followSource } from '../sources/source';
import { NodemeshError } from '../errors';

const TD = 'cluster.local';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nodemesh-identity-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function pod(ns: string, name: string, sa: string, node: string, phase = 'Running'): Parameters<typeof writeObject>[1] {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns },
    spec: { nodeName: node, serviceAccountName: sa, containers: [{ name: 'app' }] }, status: { phase },
  };
}

/** Polls `cond` every 20 ms for at most `ms`. */
async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  for (let waited = 0; waited <= ms; waited += 20) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out after ${ms} ms waiting for ${what}`);
}

interface Harness {
  ca: MeshCA;
  creds: Record<string, string>;
  objects: string;
  logs: Record<string, unknown>[];
  server: IdentityServer;
  port: number;
  snapshot: () => Snapshot | undefined;
  client(node: string, opts?: { root?: string; token?: string }): IdentityClient;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const caPromise = MeshCA.create({ trustDomain: TD });

async function startHarness(name: string, opts: { maxTtlSeconds?: number; servingTtlSeconds?: number } = {}): Promise<Harness> {
  const ca = await caPromise;
  const dir = path.join(tmp, name);
  const objects = path.join(dir, 'objects');
  writeObject(objects, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } });
  writeObject(objects, pod('shop', 'api-1', 'api', 'node-a'));
  writeObject(objects, pod('shop', 'web-1', 'web', 'node-b'));
  writeObject(objects, pod('shop', 'batch-1', 'batch', 'node-a', 'Succeeded'));
  const creds = mintNodeCredentials(['node-a', 'node-b']);
  const credFile = path.join(dir, 'node-credentials.json');
  writeNodeCredentialsFile(credFile, creds);

  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { for (const l of String(chunk).split('\n')) if (l) logs.push(JSON.parse(l)); cb(); } });
  const logger = pino({ level: 'info' }, sink);

  let snapshot: Snapshot | undefined;
  const source = new SandboxSource(objects, 50);
  await followSource(source, (s) => { snapshot = s; });

  const clients: IdentityClient[] = [];
  const make = (): IdentityServer => new IdentityServer({
    ca, authenticator: new NodeCredentialAuthenticator(credFile), snapshot: () => snapshot, logger,
    maxTtlSeconds: opts.maxTtlSeconds, serving: { ttlSeconds: opts.servingTtlSeconds },
  });
  const h: Harness = {
    ca, creds, objects, logs, snapshot: () => snapshot,
    server: make(),
    port: 0,
    client(node, o = {}) {
      const c = new IdentityClient({
        address: `127.0.0.1:${h.port}`, trustDomain: TD, caRootPem: o.root ?? ca.rootCertPem, token: () => o.token ?? creds[node],
        requestTimeoutMs: 3000, reconnectBackoffMs: { initial: 50, max: 200 },
      });
      clients.push(c);
      return c;
    },
    async restart() {
      h.server = make();
      await h.server.listen('127.0.0.1', h.port);
    },
    async stop() {
      for (const c of clients) c.close();
      await h.server.stop(1000);
      source.stop();
    },
  };
  h.port = await h.server.listen('127.0.0.1', 0);
  return h;
}

function requestFailure(grpcCode: grpc.status, serverCode?: string): (e: unknown) => boolean {
  return (e) => {
    assert.ok(NodemeshError.is(e, 'NODEMESH_E_IDENTITY_REQUEST_FAILED'), `unexpected error ${String(e)}`);
    assert.equal(e.details?.grpcCode, grpcCode, `${grpc.status[e.details?.grpcCode as number]}: ${e.message}`);
    if (serverCode) assert.equal(e.details?.serverCode, serverCode);
    return true;
  };
}

test('identity service: issues an allowed identity, refuses the rest with clear status codes', async (t) => {
  const h = await startHarness('basic', { maxTtlSeconds: 3600 });
  t.after(() => h.stop());
  const a = h.client('node-a');

  await t.test('an identity with a pod on the caller\'s node is issued and verifies', async () => {
    const id = await a.fetchIdentity({ namespace: 'shop', serviceAccount: 'api' }, 600);
    assert.equal(id.spiffeId, 'spiffe://cluster.local/ns/shop/sa/api');
    assert.equal(await verifyPeerChain([...id.certChainPem], [h.ca.rootCertPem], TD), id.spiffeId);
    assert.deepEqual(id.trustBundlePem.map((p) => p.trim()), [h.ca.rootCertPem.trim()]);
    const life = (id.notAfter.getTime() - Date.now()) / 1000;
    assert.ok(life > 590 && life <= 601, `lifetime ${life}`);
    const line = h.logs.find((l) => l.msg === 'certificate issued');
    assert.ok(line, 'issuance is logged');
    assert.equal(line.node, 'node-a');
    assert.equal(line.spiffeId, id.spiffeId);
    assert.equal(line.pod, 'shop/api-1');
  });

  await t.test('requested validity is capped at the maximum; 0 asks for the maximum', async () => {
    for (const asked of [0, 999_999]) {
      const id = await a.fetchIdentity({ namespace: 'shop', serviceAccount: 'api' }, asked);
      const life = (id.notAfter.getTime() - Date.now()) / 1000;
      assert.ok(life > 3590 && life <= 3601, `asked ${asked}, lifetime ${life}`);
    }
  });

  await t.test('an identity whose pod is on another node is PERMISSION_DENIED', async () => {
    await assert.rejects(a.fetchIdentity({ namespace: 'shop', serviceAccount: 'web' }, 600), (e) => {
      requestFailure(grpc.status.PERMISSION_DENIED, 'NODEMESH_E_IDENTITY_NODE_BINDING')(e);
      assert.match((e as Error).message, /node node-a may not obtain spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web/);
      return true;
    });
    const refusal = h.logs.find((l) => l.msg === 'certificate refused' && l.spiffeId === 'spiffe://cluster.local/ns/shop/sa/web');
    assert.ok(refusal, 'refusal is logged');
    assert.equal(refusal.node, 'node-a');
    assert.equal(refusal.status, 'PERMISSION_DENIED');
    assert.equal(refusal.podsOnOtherNodes, 1);
    // node-b, where that pod runs, gets it.
    const b = h.client('node-b');
    assert.equal((await b.fetchIdentity({ namespace: 'shop', serviceAccount: 'web' }, 600)).spiffeId, 'spiffe://cluster.local/ns/shop/sa/web');
  });

  await t.test('finished pods and unknown service accounts do not justify an identity', async () => {
    await assert.rejects(a.fetchIdentity({ namespace: 'shop', serviceAccount: 'batch' }, 600), requestFailure(grpc.status.PERMISSION_DENIED));
    await assert.rejects(a.fetchIdentity({ namespace: 'kube-system', serviceAccount: 'default' }, 600), requestFailure(grpc.status.PERMISSION_DENIED));
  });

  await t.test('node binding follows the cluster state: a pod that leaves takes the identity with it', async () => {
    const b = h.client('node-b');
    writeObject(h.objects, pod('shop', 'cart-1', 'cart', 'node-b'));
    await waitFor('cart-1 in the snapshot', () => [...(h.snapshot()?.workloads.values() ?? [])].some((w) => w.name === 'cart-1'));
    await b.fetchIdentity({ namespace: 'shop', serviceAccount: 'cart' }, 60);
    removeObject(h.objects, 'Pod', 'shop', 'cart-1');
    await waitFor('cart-1 gone from the snapshot', () => ![...(h.snapshot()?.workloads.values() ?? [])].some((w) => w.name === 'cart-1'));
    await assert.rejects(b.fetchIdentity({ namespace: 'shop', serviceAccount: 'cart' }, 60), requestFailure(grpc.status.PERMISSION_DENIED));
  });

  await t.test('a bad or missing token is UNAUTHENTICATED', async () => {
    const { csrPem } = await generateKeyAndCsr('spiffe://cluster.local/ns/shop/sa/api');
    const wrong = h.client('node-a', { token: 'x'.repeat(43) });
    await assert.rejects(wrong.createCertificate(csrPem, 60), (e) => {
      requestFailure(grpc.status.UNAUTHENTICATED, 'NODEMESH_E_IDENTITY_UNAUTHENTICATED')(e);
      assert.match((e as Error).message, /not a known node credential/);
      return true;
    });
    const empty = h.client('node-a', { token: '' });
    await assert.rejects(empty.createCertificate(csrPem, 60), requestFailure(grpc.status.UNAUTHENTICATED));
  });

  await t.test('a garbled CSR, a CSR with two URI SANs, a foreign trust domain and a negative validity are INVALID_ARGUMENT', async () => {
    await assert.rejects(a.createCertificate('garbage', 60), requestFailure(grpc.status.INVALID_ARGUMENT, 'NODEMESH_E_IDENTITY_BAD_CSR'));
    await assert.rejects(a.createCertificate('-----BEGIN CERTIFICATE REQUEST-----\nMIIBAAAA\n-----END CERTIFICATE REQUEST-----\n', 60),
      requestFailure(grpc.status.INVALID_ARGUMENT, 'NODEMESH_E_IDENTITY_BAD_CSR'));

    const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
    const two = await x509.Pkcs10CertificateRequestGenerator.create({
      keys: keys as never, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x509.SubjectAlternativeNameExtension([
        { type: 'url', value: 'spiffe://cluster.local/ns/shop/sa/api' }, { type: 'url', value: 'spiffe://cluster.local/ns/shop/sa/web' },
      ])],
    });
    await assert.rejects(a.createCertificate(two.toString('pem'), 60), (e) => {
      requestFailure(grpc.status.INVALID_ARGUMENT, 'NODEMESH_E_IDENTITY_CSR_SAN')(e);
      assert.match((e as Error).message, /2 URI SANs/);
      return true;
    });

    const foreign = await generateKeyAndCsr('spiffe://other.example/ns/shop/sa/api');
    await assert.rejects(a.createCertificate(foreign.csrPem, 60), requestFailure(grpc.status.INVALID_ARGUMENT, 'NODEMESH_E_IDENTITY_WRONG_TRUST_DOMAIN'));

    const ok = await generateKeyAndCsr('spiffe://cluster.local/ns/shop/sa/api');
    await assert.rejects(a.createCertificate(ok.csrPem, -5), requestFailure(grpc.status.INVALID_ARGUMENT, 'NODEMESH_E_IDENTITY_INVALID_TTL'));
  });

  await t.test('a client that trusts another root refuses to talk to the service', async () => {
    const other = await MeshCA.create({ trustDomain: TD });
    const c = h.client('node-a', { root: other.rootCertPem });
    await assert.rejects(c.fetchIdentity({ namespace: 'shop', serviceAccount: 'api' }, 60), requestFailure(grpc.status.UNAVAILABLE));
  });
});

test('identity service: the serving certificate rotates without a restart', async (t) => {
  const h = await startHarness('serving', { servingTtlSeconds: 2 });
  t.after(() => h.stop());
  await h.client('node-a').fetchIdentity({ namespace: 'shop', serviceAccount: 'api' }, 60);
  await waitFor('a second serving certificate', () => h.logs.filter((l) => l.msg === 'serving certificate issued').length >= 2, 4000);
  // The first serving certificate has expired by now; a new connection must still work.
  await new Promise((r) => setTimeout(r, 2200));
  const id = await h.client('node-a').fetchIdentity({ namespace: 'shop', serviceAccount: 'api' }, 60);
  assert.equal(id.spiffeId, 'spiffe://cluster.local/ns/shop/sa/api');
});

test('certificate manager: a 2 s certificate is rotated before it expires, and \'rotated\' is emitted', async (t) => {
  const h = await startHarness('rotation', { maxTtlSeconds: 2 });
  const client = h.client('node-a');
  const mgr = new CertificateManager({ fetch: (k) => client.fetchIdentity(k, 3600) });
  t.after(async () => { mgr.stop(); await h.stop(); });

  mgr.ensure([{ namespace: 'shop', serviceAccount: 'api' }]);
  assert.equal(mgr.get('shop', 'api'), undefined, 'not issued synchronously');
  const first = await mgr.whenReady('shop', 'api');
  assert.equal(mgr.get('shop', 'api'), first);
  const keyBefore = first.keyPem;
  const rotated = await new Promise<{ next: IssuedIdentity; prev: IssuedIdentity; at: number }>((resolve) => {
    mgr.once('rotated', (next, prev) => resolve({ next, prev, at: Date.now() }));
  });
  assert.equal(rotated.prev, first);
  assert.ok(rotated.at < first.notAfter.getTime(), `rotated at ${new Date(rotated.at).toISOString()}, old expiry ${first.notAfter.toISOString()}`);
  assert.ok(rotated.next.notAfter.getTime() > first.notAfter.getTime());
  assert.notEqual(rotated.next.keyPem, first.keyPem, 'a new key each time');
  assert.equal(first.keyPem, keyBefore, 'the old identity object is untouched');
  assert.ok(Object.isFrozen(first));
  assert.equal(mgr.get('shop', 'api'), rotated.next);
  const [st] = mgr.status();
  assert.equal(st.state, 'ready');
  assert.equal(st.notAfter, rotated.next.notAfter.toISOString());
  assert.ok(st.nextRefresh && Date.parse(st.nextRefresh) < rotated.next.notAfter.getTime());
});

test('certificate manager: backs off while the service is down and recovers when it is back', async (t) => {
  const h = await startHarness('outage', { maxTtlSeconds: 60 });
  const client = h.client('node-a');
  const mgr = new CertificateManager({
    fetch: (k) => client.fetchIdentity(k, 60), backoff: { initialMs: 100, maxMs: 800 },
  });
  t.after(async () => { mgr.stop(); await h.stop(); });

  await h.server.stop(500);
  const failures: { at: number; retryAt: number }[] = [];
  mgr.on('failed', (_e, _k, retryAt) => failures.push({ at: Date.now(), retryAt: retryAt.getTime() }));
  mgr.ensure([{ namespace: 'shop', serviceAccount: 'api' }]);
  const ready = mgr.whenReady('shop', 'api');
  await waitFor('four failed attempts', () => failures.length >= 4, 8000);

  const delays = failures.map((f) => f.retryAt - f.at);
  // Equal jitter over a doubling base: every delay is at least the one before (100..800 ms).
  for (let i = 1; i < delays.length; i++) assert.ok(delays[i] >= delays[i - 1] - 5, `delays ${delays.join(', ')}`);
  assert.ok(delays[0] >= 45 && delays[0] <= 105, `first delay ${delays[0]}`);
  const [st] = mgr.status();
  assert.equal(st.state, 'pending');
  assert.ok(st.failures >= 4);
  assert.equal(st.lastError?.code, 'NODEMESH_E_IDENTITY_REQUEST_FAILED');
  assert.match(st.lastError?.message ?? '', /UNAVAILABLE/);
  assert.ok(st.nextRefresh);

  await h.restart();
  const id = await ready;
  assert.equal(id.spiffeId, 'spiffe://cluster.local/ns/shop/sa/api');
  const [after] = mgr.status();
  assert.equal(after.state, 'ready');
  assert.equal(after.failures, 0);
  assert.equal(after.lastError, undefined);
});
