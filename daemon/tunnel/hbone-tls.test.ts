// Who may talk HBONE: the client certificate must chain to the trust bundle, be current and
// name this trust domain; the server must be one of the identities the client expects; and
// anything that is not HTTP/2 CONNECT over TLS 1.3 is refused without touching other tunnels.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { MeshCA } from '../identity/ca';
import { NodemeshError } from '../errors';
import { openTunnel,
  Destination, LOOPBACK, closeServer, echoApp, issueIdentity, listen, newClient, portOf, readAll, request, startDestination, waitFor,
  startMeshFixture, stopMeshFixture,
} from './hbone-test-kit';
import type { IssuedIdentity } from './tls-identity';

let ca: MeshCA;
let clientId: IssuedIdentity;
let serverId: IssuedIdentity;
let app: net.Server;
let dst: Destination;

before(async () => { ({ ca, clientId, serverId, app, dst } = await startMeshFixture()); });
after(() => stopMeshFixture({ app, dst }));

/** Server log lines about refused handshakes/clients since `from`. */
function refusals(from: number): string[] {
  return dst.sink.lines.slice(from).map((l) => String(l.msg)).filter((m) => /refused/.test(m));
}

async function expectRefused(source: IssuedIdentity, serverLog: RegExp, clientMessage: RegExp): Promise<void> {
  const from = dst.sink.lines.length;
  const { client } = newClient({ connectTimeoutMs: 3000 });
  try {
    await assert.rejects(openTunnel(client, request(source, dst, portOf(app), [serverId.spiffeId])), (e: unknown) => {
      assert.ok(NodemeshError.is(e), String(e));
      assert.equal(e.code, 'NODEMESH_E_HBONE_TLS', e.message);
      assert.match(e.message, clientMessage);
      return true;
    });
    await waitFor(() => refusals(from).length > 0, 3000, 'a server log line');
    assert.match(refusals(from).join('\n'), serverLog);
  } finally {
    await client.close({ force: true });
  }
}

test('a client certificate from another mesh CA (another trust domain) is refused in the handshake', { timeout: 20_000 }, async () => {
  const foreignCa = await MeshCA.create({ trustDomain: 'evil.example' });
  const foreign = await issueIdentity(foreignCa, 'shop', 'web', { trustBundlePem: [ca.rootCertPem] });
  await expectRefused(foreign, /not issued by a CA in our trust bundle/, /the destination refused our certificate: .*not issued by a CA in our trust bundle/);
});

test('a trusted root that vouches for another trust domain is still refused: the SPIFFE ID must be ours', { timeout: 20_000 }, async () => {
  const otherTd = await MeshCA.create({ trustDomain: 'partner.example' });
  // The server trusts both roots (as a federated bundle would), but serves cluster.local only.
  const both = [ca.rootCertPem, otherTd.rootCertPem];
  const fedServerId = { ...serverId, trustBundlePem: both };
  const fed = await startDestination({ identity: () => fedServerId, trustDomain: 'cluster.local' });
  const partner = await issueIdentity(otherTd, 'shop', 'web', { trustBundlePem: [ca.rootCertPem] });
  const { client } = newClient();
  try {
    await assert.rejects(openTunnel(client, request(partner, fed, portOf(app), [serverId.spiffeId])), (e: unknown) => {
      assert.ok(NodemeshError.is(e), String(e));
      return true;
    });
    await waitFor(() => fed.sink.find(/HBONE client refused/) !== undefined, 3000, 'log line');
    assert.match(String(fed.sink.find(/HBONE client refused/)!.msg), /spiffe:\/\/partner.example\/ns\/shop\/sa\/web.*trust domain|trust domain.*partner.example/);
    assert.equal(fed.events.length, 0, 'no stream was served');
  } finally {
    await client.close({ force: true });
    await fed.stop();
  }
});

test('an expired client certificate is refused, and the log says it expired', { timeout: 20_000 }, async () => {
  const expired = await issueIdentity(ca, 'shop', 'web', { notBefore: new Date(Date.now() - 2 * 86400_000), ttlSeconds: 3600 });
  await expectRefused(expired, /the certificate has expired \(CERT_HAS_EXPIRED\)/, /refused our certificate: the certificate has expired/);
});

test('a client without a certificate is refused', { timeout: 20_000 }, async () => {
  const from = dst.sink.lines.length;
  const sock = tls.connect({ host: LOOPBACK, port: dst.hbonePort, ca: [ca.rootCertPem], ALPNProtocols: ['h2'], checkServerIdentity: () => undefined, minVersion: 'TLSv1.3' });
  const outcome = await new Promise<string>((resolve) => {
    sock.on('error', (e: Error & { code?: string }) => resolve(`error ${e.code ?? e.message}`));
    sock.on('close', () => resolve('closed'));
    sock.resume();
  });
  assert.match(outcome, /CERTIFICATE_REQUIRED|closed|ECONNRESET/);
  await waitFor(() => refusals(from).length > 0, 3000, 'a server log line');
  assert.match(refusals(from).join('\n'), /no client certificate/);
});

test('TLS 1.2 is refused, even with a valid client certificate', { timeout: 20_000 }, async () => {
  const from = dst.sink.lines.length;
  const sock = tls.connect({
    host: LOOPBACK, port: dst.hbonePort, key: clientId.keyPem, cert: clientId.certChainPem.join('\n'), ca: clientId.trustBundlePem,
    ALPNProtocols: ['h2'], checkServerIdentity: () => undefined, maxVersion: 'TLSv1.2',
  });
  const outcome = await new Promise<string>((resolve) => {
    sock.on('error', (e: Error & { code?: string }) => resolve(`error ${e.code ?? e.message}`));
    sock.on('secureConnect', () => resolve('connected'));
    sock.on('close', () => resolve('closed'));
  });
  sock.destroy();
  assert.match(outcome, /^error .*(PROTOCOL_VERSION|VERSION)/);
  await waitFor(() => refusals(from).length > 0, 3000, 'a server log line');
  assert.match(refusals(from).join('\n'), /older than 1\.3|no TLS version we accept/);
});

test('a client that does not negotiate HTTP/2 (no ALPN, or http/1.1 only) is closed with a log line', { timeout: 20_000 }, async () => {
  for (const alpn of [undefined, ['http/1.1']]) {
    const from = dst.sink.lines.length;
    const sock = tls.connect({
      host: LOOPBACK, port: dst.hbonePort, key: clientId.keyPem, cert: clientId.certChainPem.join('\n'), ca: clientId.trustBundlePem,
      checkServerIdentity: () => undefined, ...(alpn ? { ALPNProtocols: alpn } : {}),
    });
    sock.on('error', () => undefined);
    sock.resume();
    await new Promise((r) => sock.once('close', r));
    await waitFor(() => dst.sink.lines.slice(from).some((l) => /HTTP\/2/.test(String(l.msg))), 3000, `log line for ALPN ${alpn}`);
  }
});

test('non-TLS bytes and a garbled HTTP/2 preface close only that connection', { timeout: 20_000 }, async () => {
  const { client } = newClient();
  try {
    // A tunnel that must survive everything below.
    const survivor = await openTunnel(client, request(clientId, dst, portOf(app), [serverId.spiffeId]));
    survivor.write('before ');

    const from = dst.sink.lines.length;
    const plain = net.connect({ host: LOOPBACK, port: dst.hbonePort });
    plain.on('error', () => undefined);
    plain.resume();
    plain.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((r) => plain.once('close', r));
    await waitFor(() => dst.sink.find(/plaintext HTTP|not TLS/) !== undefined, 3000, 'log line');
    assert.ok(refusals(from).some((m) => /did not speak HTTP\/2 over mutual TLS/.test(m)), refusals(from).join('\n'));

    // Mutual TLS is fine, but what follows is not the HTTP/2 connection preface.
    const garbled = tls.connect({
      host: LOOPBACK, port: dst.hbonePort, key: clientId.keyPem, cert: clientId.certChainPem.join('\n'), ca: clientId.trustBundlePem,
      ALPNProtocols: ['h2'], checkServerIdentity: () => undefined, minVersion: 'TLSv1.3',
    });
    garbled.on('error', () => undefined);
    garbled.resume();
    await new Promise((r) => garbled.once('secureConnect', r));
    garbled.write('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n' + 'garbage'.repeat(20));
    await new Promise((r) => garbled.once('close', r));
    await waitFor(() => dst.sink.find(/HTTP\/2 connection preface/) !== undefined, 3000, 'log line');
    assert.match(String(dst.sink.find(/HTTP\/2 connection preface/)!.msg), /HBONE session refused: .*did not speak HTTP\/2/);

    // Non-CONNECT over a valid session: 405.
    const h2 = http2.connect(`https://${LOOPBACK}:${dst.hbonePort}`, {
      key: clientId.keyPem, cert: clientId.certChainPem.join('\n'), ca: clientId.trustBundlePem, checkServerIdentity: () => undefined, minVersion: 'TLSv1.3',
    });
    h2.on('error', () => undefined);
    const get = h2.request({ ':method': 'GET', ':path': '/', ':authority': `${LOOPBACK}:${portOf(app)}` });
    const headers = await new Promise<http2.IncomingHttpHeaders>((r) => get.once('response', r));
    assert.equal(headers[':status'], 405);
    assert.match(String(headers['nodemesh-reason']), /only tunnels CONNECT/);
    get.close();
    h2.close();

    survivor.end('after');
    assert.equal((await readAll(survivor)).toString(), 'before after');
  } finally {
    await client.close({ force: true });
  }
});

test('a server presenting an unexpected SPIFFE ID is refused by the client', { timeout: 20_000 }, async () => {
  const { client } = newClient();
  try {
    await assert.rejects(openTunnel(client, request(clientId, dst, portOf(app), ['spiffe://cluster.local/ns/shop/sa/payments'])), (e: unknown) => {
      assert.ok(NodemeshError.is(e, 'NODEMESH_E_HBONE_IDENTITY_MISMATCH'), String(e));
      assert.match(e.message, /presented spiffe:\/\/cluster.local\/ns\/shop\/sa\/api, but the destination may only be spiffe:\/\/cluster.local\/ns\/shop\/sa\/payments/);
      return true;
    });
    assert.equal(client.stats().totals.sessions, 0, 'the failed session is not pooled');
  } finally {
    await client.close({ force: true });
  }
});

test('a server whose certificate the client does not trust is refused', { timeout: 20_000 }, async () => {
  const otherCa = await MeshCA.create({ trustDomain: 'cluster.local' });
  const imposter = await issueIdentity(otherCa, 'shop', 'api', { trustBundlePem: [ca.rootCertPem] });
  const fake = await startDestination({ identity: () => imposter, trustDomain: 'cluster.local' });
  const { client } = newClient();
  try {
    await assert.rejects(openTunnel(client, request(clientId, fake, portOf(app), [serverId.spiffeId])), (e: unknown) => {
      assert.ok(NodemeshError.is(e, 'NODEMESH_E_HBONE_TLS'), String(e));
      assert.match(e.message, /trust bundle/);
      return true;
    });
  } finally {
    await client.close({ force: true });
    await fake.stop();
  }
});

test('nothing listening -> NODEMESH_E_HBONE_CONNECT; a listener that never answers -> NODEMESH_E_HBONE_CONNECT_TIMEOUT', { timeout: 20_000 }, async () => {
  const gone = await echoApp();
  const port = portOf(gone);
  await closeServer(gone);
  const silentSockets: net.Socket[] = [];
  const silent = await listen((s) => { silentSockets.push(s); });
  const { client } = newClient({ connectTimeoutMs: 300 });
  try {
    await assert.rejects(openTunnel(client, request(clientId, { hbonePort: port }, 80, [serverId.spiffeId])), (e: unknown) => {
      assert.ok(NodemeshError.is(e, 'NODEMESH_E_HBONE_CONNECT'), String(e));
      assert.match(e.message, /connection refused/);
      return true;
    });
    await assert.rejects(openTunnel(client, request(clientId, { hbonePort: portOf(silent) }, 80, [serverId.spiffeId])), (e: unknown) => {
      assert.ok(NodemeshError.is(e, 'NODEMESH_E_HBONE_CONNECT_TIMEOUT'), String(e));
      assert.match(e.message, /NetworkPolicy/);
      return true;
    });
  } finally {
    await client.close({ force: true });
    for (const s of silentSockets) s.destroy();
    await closeServer(silent);
  }
});
