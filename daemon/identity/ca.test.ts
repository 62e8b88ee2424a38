import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { AddressInfo } from 'node:net';
import { X509Certificate, createPrivateKey, webcrypto } from 'node:crypto';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import {
  CA_CERT_FILE, CA_KEY_FILE, DEFAULT_TRUST_DOMAIN, MeshCA, csrSpiffeId, describeLeaf, generateKeyAndCsr, keyMatchesCert, loadOrCreateMeshCA,
  parseSpiffeId,  spiffeId, verifyPeerChain,
} from './ca';
import { NodemeshError } from '../errors';

const TD = DEFAULT_TRUST_DOMAIN;
const SHOP_API = `spiffe://${TD}/ns/shop/sa/api`;
const SHOP_WEB = `spiffe://${TD}/ns/shop/sa/web`;

function hasCode(code: string): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(NodemeshError.is(e), `expected a NodemeshError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

// One CA for the whole file: generating keys is cheap, but this keeps tests short.
const caPromise = MeshCA.create({ trustDomain: TD });

test('spiffeId builds and parseSpiffeId reads mesh identities', () => {
  assert.equal(spiffeId(TD, 'shop', 'api'), SHOP_API);
  assert.deepEqual(parseSpiffeId(SHOP_API), { trustDomain: TD, namespace: 'shop', serviceAccount: 'api' });
  const bad = [
    'http://cluster.local/ns/a/sa/b',
    'spiffe://Cluster.local/ns/a/sa/b',
    'spiffe://cluster.local',
    'spiffe://cluster.local/',
    'spiffe://cluster.local/ns/a',
    'spiffe://cluster.local/ns/a/sa/b/extra',
    'spiffe://cluster.local/ns//sa/b',
    'spiffe://cluster.local/ns/../sa/b',
    'spiffe://cluster.local/ns/a/sa/b?x=1',
    'spiffe://cluster.local/ns/a/sa/b#frag',
    'spiffe://user@cluster.local/ns/a/sa/b',
    'spiffe://cluster.local:8080/ns/a/sa/b',
    'spiffe://cluster.local/sa/a/ns/b',
  ];
  for (const b of bad) assert.equal(parseSpiffeId(b), undefined, b);
  assert.throws(() => spiffeId(TD, 'a/b', 'c'), hasCode('NODEMESH_E_IDENTITY_INVALID_SPIFFE_ID'));
  assert.throws(() => spiffeId('Bad Domain', 'a', 'b'), hasCode('NODEMESH_E_IDENTITY_INVALID_SPIFFE_ID'));
});

test('a signed CSR yields an X.509-SVID leaf with the expected extensions', async () => {
  const ca = await caPromise;
  const { keyPem, csrPem } = await generateKeyAndCsr(SHOP_API);
  assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----/);
  assert.equal(createPrivateKey(keyPem).asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.equal(await csrSpiffeId(csrPem, TD), SHOP_API);
  const certPem = await ca.signCsr(csrPem, SHOP_API, 3600);
  const cert = new X509Certificate(certPem);
  assert.equal(cert.ca, false);
  assert.equal(cert.subjectAltName, `URI:${SHOP_API}`);
  assert.deepEqual([...(cert.keyUsage ?? [])].sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']); // EKU server+client
  assert.ok(cert.checkIssued(new X509Certificate(ca.rootCertPem)));
  assert.ok(await keyMatchesCert(keyPem, certPem));
  const d = describeLeaf(certPem);
  assert.equal(d.spiffeId, SHOP_API);
  const lifetime = (d.notAfter.getTime() - Date.now()) / 1000;
  assert.ok(lifetime > 3590 && lifetime <= 3601, `lifetime ${lifetime}`); // rounded up to a whole second
  assert.equal(await verifyPeerChain([certPem], [ca.rootCertPem], TD), SHOP_API);
  // DER, and leaf + root in one chain, work too.
  assert.equal(await verifyPeerChain([cert.raw, ca.rootCertPem], [ca.rootCertPem], TD), SHOP_API);
});

test('mutual TLS 1.3 on 127.0.0.1 with mesh certificates, each side checking the other by SPIFFE ID', async () => {
  const ca = await caPromise;
  const server = await ca.issue(SHOP_API, 600);
  const clientKey = await generateKeyAndCsr(SHOP_WEB);
  const client = { keyPem: clientKey.keyPem, certPem: await ca.signCsr(clientKey.csrPem, SHOP_WEB, 600) };

  const seenByServer: string[] = [];
  const srv = tls.createServer({
    key: server.keyPem, cert: server.certPem, ca: [ca.rootCertPem], requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3',
  }, (sock) => {
    const peer = sock.getPeerCertificate(true);
    verifyPeerChain([peer.raw], [ca.rootCertPem], TD).then((id) => {
      seenByServer.push(id);
      sock.end(`hello ${id}`);
    }, (e) => sock.destroy(e as Error));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const port = (srv.address() as AddressInfo).port;
    const { reply, serverId, protocol } = await new Promise<{ reply: string; serverId: string; protocol: string | null }>((resolve, reject) => {
      const sock = tls.connect({
        host: '127.0.0.1', port, key: client.keyPem, cert: client.certPem, ca: [ca.rootCertPem], minVersion: 'TLSv1.3',
        // Mesh peers are named by SPIFFE ID, not by host name: the chain is still verified by
        // TLS (ca + rejectUnauthorized), the identity is checked below.
        checkServerIdentity: () => undefined,
      });
      let data = '';
      let serverId = '';
      sock.on('secureConnect', () => {
        verifyPeerChain([sock.getPeerCertificate(true).raw], [ca.rootCertPem], TD).then((id) => { serverId = id; }, reject);
      });
      sock.on('data', (d) => { data += d.toString(); });
      sock.on('end', () => resolve({ reply: data, serverId, protocol: sock.getProtocol() }));
      sock.on('error', reject);
    });
    assert.equal(protocol, 'TLSv1.3');
    assert.equal(serverId, SHOP_API);
    assert.equal(reply, `hello ${SHOP_WEB}`);
    assert.deepEqual(seenByServer, [SHOP_WEB]);
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
});

test('TLS refuses a client whose certificate comes from another CA', async () => {
  const ca = await caPromise;
  const other = await MeshCA.create({ trustDomain: TD });
  const server = await ca.issue(SHOP_API, 600);
  const intruder = await other.issue(SHOP_WEB, 600);
  const srv = tls.createServer({ key: server.keyPem, cert: server.certPem, ca: [ca.rootCertPem], requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' },
    (sock) => sock.end('should not get here'));
  srv.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const port = (srv.address() as AddressInfo).port;
    const outcome = await new Promise<string>((resolve) => {
      const sock = tls.connect({ host: '127.0.0.1', port, key: intruder.keyPem, cert: intruder.certPem, ca: [ca.rootCertPem], checkServerIdentity: () => undefined });
      let data = '';
      sock.on('data', (d) => { data += d.toString(); });
      sock.on('error', (e) => resolve(`error: ${e.message}`));
      sock.on('close', () => resolve(data ? `data: ${data}` : 'closed without data'));
    });
    assert.doesNotMatch(outcome, /should not get here/);
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
});

test('verifyPeerChain rejects an expired certificate and one that is not yet valid', async () => {
  const ca = await caPromise;
  const expired = await ca.issue(SHOP_API, 60, { notBefore: new Date(Date.now() - 3600_000) });
  await assert.rejects(verifyPeerChain([expired.certPem], [ca.rootCertPem], TD), (e) => {
    hasCode('NODEMESH_E_IDENTITY_CERT_EXPIRED')(e);
    assert.match((e as Error).message, /spiffe:\/\/cluster\.local\/ns\/shop\/sa\/api expired at/);
    return true;
  });
  const fresh = await ca.issue(SHOP_API, 60);
  await assert.rejects(verifyPeerChain([fresh.certPem], [ca.rootCertPem], TD, new Date(Date.now() - 3600_000)),
    hasCode('NODEMESH_E_IDENTITY_CERT_NOT_YET_VALID'));
  await assert.rejects(verifyPeerChain([fresh.certPem], [ca.rootCertPem], TD, new Date(Date.now() + 120_000)),
    hasCode('NODEMESH_E_IDENTITY_CERT_EXPIRED'));
});

test('verifyPeerChain rejects a foreign trust domain, an unknown issuer and a certificate without SPIFFE ID', async () => {
  const ca = await caPromise;
  const foreign = await MeshCA.create({ trustDomain: 'other.example' });
  const f = await foreign.issue('spiffe://other.example/ns/shop/sa/api', 600);
  // Even with the foreign root trusted, the trust domain is wrong.
  await assert.rejects(verifyPeerChain([f.certPem], [ca.rootCertPem, foreign.rootCertPem], TD), (e) => {
    hasCode('NODEMESH_E_IDENTITY_WRONG_TRUST_DOMAIN')(e);
    assert.match((e as Error).message, /other\.example.*not in trust domain cluster\.local/);
    return true;
  });
  // Same trust domain, another CA: unknown issuer.
  const impostorCa = await MeshCA.create({ trustDomain: TD });
  const impostor = await impostorCa.issue(SHOP_API, 600);
  await assert.rejects(verifyPeerChain([impostor.certPem], [ca.rootCertPem], TD), (e) => {
    hasCode('NODEMESH_E_IDENTITY_UNKNOWN_ISSUER')(e);
    // The issuer's name carries its key id, so the operator can tell which CA it was.
    assert.match((e as Error).message, /issuer "O=cluster\.local, CN=nodemesh root CA [0-9a-f]{8}"/);
    assert.notEqual(new X509Certificate(impostorCa.rootCertPem).subject, new X509Certificate(ca.rootCertPem).subject);
    return true;
  });
  // The root itself is not a workload identity.
  await assert.rejects(verifyPeerChain([ca.rootCertPem], [ca.rootCertPem], TD), hasCode('NODEMESH_E_IDENTITY_NO_SPIFFE_ID'));
  await assert.rejects(verifyPeerChain([], [ca.rootCertPem], TD), hasCode('NODEMESH_E_IDENTITY_BAD_CERT'));
  await assert.rejects(verifyPeerChain(['garbage'], [ca.rootCertPem], TD), hasCode('NODEMESH_E_IDENTITY_BAD_CERT'));
});

/** Flips one character of the requested SPIFFE ID inside the CSR's DER, keeping its length. */
function tamper(csrPem: string, from: string, to: string): string {
  const der = Buffer.from(csrPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const at = der.indexOf(Buffer.from(from));
  assert.ok(at >= 0, 'SPIFFE ID not found in the CSR');
  Buffer.from(to).copy(der, at);
  const b64 = der.toString('base64').match(/.{1,64}/g)!.join('\n');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${b64}\n-----END CERTIFICATE REQUEST-----\n`;
}

test('a tampered CSR is rejected because its signature no longer verifies', async () => {
  const ca = await caPromise;
  const { csrPem } = await generateKeyAndCsr(`spiffe://${TD}/ns/shop/sa/aaa`);
  const forged = tamper(csrPem, 'sa/aaa', 'sa/bbb');
  await assert.rejects(ca.signCsr(forged, `spiffe://${TD}/ns/shop/sa/bbb`, 600), (e) => {
    hasCode('NODEMESH_E_IDENTITY_BAD_CSR')(e);
    assert.match((e as Error).message, /signature does not verify/);
    return true;
  });
  await assert.rejects(csrSpiffeId(forged, TD), hasCode('NODEMESH_E_IDENTITY_BAD_CSR'));
});

test('signCsr refuses garbage, a mismatched identity, a foreign trust domain and bad lifetimes', async () => {
  const ca = await caPromise;
  const { csrPem } = await generateKeyAndCsr(SHOP_API);
  await assert.rejects(ca.signCsr('not a csr', SHOP_API, 600), hasCode('NODEMESH_E_IDENTITY_BAD_CSR'));
  await assert.rejects(ca.signCsr('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', SHOP_API, 600),
    hasCode('NODEMESH_E_IDENTITY_BAD_CSR'));
  await assert.rejects(ca.signCsr(csrPem, SHOP_WEB, 600), hasCode('NODEMESH_E_IDENTITY_CSR_SAN'));
  await assert.rejects(ca.signCsr(csrPem, 'spiffe://other.example/ns/shop/sa/api', 600), hasCode('NODEMESH_E_IDENTITY_WRONG_TRUST_DOMAIN'));
  for (const ttl of [0, -1, 1.5, Number.NaN]) await assert.rejects(ca.signCsr(csrPem, SHOP_API, ttl), hasCode('NODEMESH_E_IDENTITY_INVALID_TTL'));
  const foreignCsr = await generateKeyAndCsr('spiffe://other.example/ns/shop/sa/api');
  await assert.rejects(csrSpiffeId(foreignCsr.csrPem, TD), hasCode('NODEMESH_E_IDENTITY_WRONG_TRUST_DOMAIN'));
});

test('save writes ca.key 0600 and load reads the same CA back; load refuses a readable key', async () => {
  const ca = await caPromise;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodemesh-ca-'));
  try {
    await ca.save(dir);
    assert.equal(fs.statSync(path.join(dir, CA_KEY_FILE)).mode & 0o777, 0o600);
    const loaded = await MeshCA.load(dir);
    assert.equal(loaded.trustDomain, TD);
    assert.equal(loaded.rootCertPem, ca.rootCertPem);
    const leaf = await loaded.issue(SHOP_API, 60);
    assert.equal(await verifyPeerChain([leaf.certPem], [ca.rootCertPem], TD), SHOP_API);
    fs.chmodSync(path.join(dir, CA_KEY_FILE), 0o644);
    await assert.rejects(MeshCA.load(dir), (e) => {
      hasCode('NODEMESH_E_IDENTITY_CA_LOAD')(e);
      assert.match((e as Error).message, /chmod 600/);
      return true;
    });
    await assert.rejects(MeshCA.load(path.join(dir, 'missing')), hasCode('NODEMESH_E_IDENTITY_CA_LOAD'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('MeshCA.load refuses a key that does not belong to the certificate', async () => {
  const ca = await caPromise;
  const other = await MeshCA.create({ trustDomain: TD });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodemesh-ca-'));
  const dir2 = fs.mkdtempSync(path.join(os.tmpdir(), 'nodemesh-ca-'));
  try {
    await ca.save(dir);
    await other.save(dir2);
    fs.copyFileSync(path.join(dir2, CA_KEY_FILE), path.join(dir, CA_KEY_FILE));
    await assert.rejects(MeshCA.load(dir), (e) => {
      hasCode('NODEMESH_E_IDENTITY_CA_LOAD')(e);
      assert.match((e as Error).message, /does not belong/);
      return true;
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(dir2, { recursive: true, force: true });
  }
});

test('issue adds DNS and IP SANs for a serving certificate', async () => {
  const ca = await caPromise;
  const id = spiffeId(TD, 'nodemesh-system', 'nodemesh-identity');
  const s = await ca.issue(id, 600, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const cert = new X509Certificate(s.certPem);
  assert.equal(cert.checkHost('localhost'), 'localhost');
  assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
  assert.match(cert.subjectAltName ?? '', new RegExp(`URI:${id}`));
});

test('loadOrCreateMeshCA creates once, then loads; concurrent starts agree on one CA; a trust domain mismatch is refused', async () => {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nodemesh-ca-')), 'ca');
  try {
    const [a, b] = await Promise.all([loadOrCreateMeshCA(dir, TD), loadOrCreateMeshCA(dir, TD)]);
    assert.equal([a.created, b.created].filter(Boolean).length, 1, 'exactly one replica created the CA');
    assert.equal(a.ca.rootCertPem, b.ca.rootCertPem);
    assert.deepEqual(fs.readdirSync(dir).sort(), [CA_CERT_FILE, CA_KEY_FILE], 'no staging leftovers');
    assert.equal(fs.statSync(path.join(dir, CA_KEY_FILE)).mode & 0o777, 0o600);
    const again = await loadOrCreateMeshCA(dir, TD);
    assert.equal(again.created, false);
    assert.equal(again.ca.rootCertPem, a.ca.rootCertPem);
    await assert.rejects(loadOrCreateMeshCA(dir, 'other.example'), (e) => {
      hasCode('NODEMESH_E_IDENTITY_CA_LOAD')(e);
      assert.match((e as Error).message, /trust domain cluster\.local, but NODEMESH_TRUST_DOMAIN is other\.example/);
      return true;
    });
    fs.rmSync(path.join(dir, CA_CERT_FILE));
    await assert.rejects(loadOrCreateMeshCA(dir, TD, { waitMs: 100 }), hasCode('NODEMESH_E_IDENTITY_CA_LOAD'));
  } finally {
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  }
});

test('a remembered verification never hides expiry, another trust domain or other roots', async () => {
  const ca = await caPromise;
  const { certPem } = await ca.issue(`spiffe://${TD}/ns/cache/sa/probe`, 60);
  const der = new X509Certificate(certPem).raw;
  assert.equal(await verifyPeerChain([der], [ca.rootCertPem], TD), `spiffe://${TD}/ns/cache/sa/probe`);
  assert.equal(await verifyPeerChain([der], [ca.rootCertPem], TD), `spiffe://${TD}/ns/cache/sa/probe`, 'second call (remembered)');
  await assert.rejects(verifyPeerChain([der], [ca.rootCertPem], TD, new Date(Date.now() + 120_000)), hasCode('NODEMESH_E_IDENTITY_CERT_EXPIRED'));
  await assert.rejects(verifyPeerChain([der], [ca.rootCertPem], TD, new Date(Date.now() - 3600_000)), hasCode('NODEMESH_E_IDENTITY_CERT_NOT_YET_VALID'));
  await assert.rejects(verifyPeerChain([der], [ca.rootCertPem], 'other.example'), hasCode('NODEMESH_E_IDENTITY_WRONG_TRUST_DOMAIN'));
  const other = await MeshCA.create({ trustDomain: TD });
  await assert.rejects(verifyPeerChain([der], [other.rootCertPem], TD), hasCode('NODEMESH_E_IDENTITY_UNKNOWN_ISSUER'));
  assert.equal(await verifyPeerChain([der], [other.rootCertPem, ca.rootCertPem], TD), `spiffe://${TD}/ns/cache/sa/probe`, 'found among several roots');
});

/** root -> intermediate -> leaf, built by hand: MeshCA itself never issues intermediates. */
async function threeLevelChain(opts: { intermediateIsCa: boolean }): Promise<{ rootPem: string; intermediatePem: string; leafPem: string }> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const gen = async () => (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as never as { privateKey: never; publicKey: never };
  const rootKeys = await gen();
  const interKeys = await gen();
  const leafKeys = await gen();
  const now = Date.now();
  const validity = { notBefore: new Date(now - 60_000), notAfter: new Date(now + 3600_000) };
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    ...validity, name: 'CN=test root', keys: rootKeys, signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  const inter = await x509.X509CertificateGenerator.create({
    ...validity, subject: 'CN=test intermediate', issuer: root.subject, publicKey: interKeys.publicKey, signingKey: rootKeys.privateKey, signingAlgorithm: alg,
    extensions: opts.intermediateIsCa
      ? [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)]
      : [new x509.BasicConstraintsExtension(false, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
  });
  const leaf = await x509.X509CertificateGenerator.create({
    ...validity, subject: '', issuer: inter.subject, publicKey: leafKeys.publicKey, signingKey: interKeys.privateKey, signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${TD}/ns/shop/sa/deep` }], true),
    ],
  });
  return { rootPem: root.toString('pem'), intermediatePem: inter.toString('pem'), leafPem: leaf.toString('pem') };
}

test('verifyPeerChain follows an intermediate CA to the root, and refuses a non-CA "intermediate"', async () => {
  const good = await threeLevelChain({ intermediateIsCa: true });
  assert.equal(await verifyPeerChain([good.leafPem, good.intermediatePem], [good.rootPem], TD), `spiffe://${TD}/ns/shop/sa/deep`);
  assert.equal(await verifyPeerChain([good.leafPem + good.intermediatePem], [good.rootPem], TD), `spiffe://${TD}/ns/shop/sa/deep`, 'one PEM string with both');
  await assert.rejects(verifyPeerChain([good.leafPem], [good.rootPem], TD), hasCode('NODEMESH_E_IDENTITY_UNKNOWN_ISSUER'));
  const bad = await threeLevelChain({ intermediateIsCa: false });
  await assert.rejects(verifyPeerChain([bad.leafPem, bad.intermediatePem], [bad.rootPem], TD), (e) => {
    hasCode('NODEMESH_E_IDENTITY_BAD_CERT')(e);
    assert.match((e as Error).message, /is not a CA certificate/);
    return true;
  });
});
