// The server's pure helpers; the service itself is exercised end to end in
// identity-service.test.ts.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { MeshCA } from './ca';
import { grantedTtl, grpcStatusFor, servingSans } from './identity-server';
import { DaemonErrors, NodemeshError } from '../errors';

test('grantedTtl: 0 means the maximum, larger requests are capped, negative or fractional are refused', () => {
  assert.equal(grantedTtl(0, 86400), 86400);
  assert.equal(grantedTtl(2, 86400), 2);
  assert.equal(grantedTtl(100_000, 86400), 86400);
  assert.equal(grantedTtl(5, 1), 1);
  for (const bad of [-1, 1.5, Number.NaN]) assert.throws(() => grantedTtl(bad, 60), (e) => NodemeshError.is(e, 'NODEMESH_E_IDENTITY_INVALID_TTL'));
});

test('grpcStatusFor maps refusals to status codes; anything unexpected is INTERNAL', () => {
  assert.equal(grpcStatusFor(DaemonErrors.NODEMESH_E_IDENTITY_UNAUTHENTICATED({ reason: 'x' })), grpc.status.UNAUTHENTICATED);
  assert.equal(grpcStatusFor(DaemonErrors.NODEMESH_E_IDENTITY_BAD_CSR({ reason: 'x' })), grpc.status.INVALID_ARGUMENT);
  assert.equal(grpcStatusFor(DaemonErrors.NODEMESH_E_IDENTITY_CSR_SAN({ reason: 'x' })), grpc.status.INVALID_ARGUMENT);
  assert.equal(grpcStatusFor(DaemonErrors.NODEMESH_E_IDENTITY_WRONG_TRUST_DOMAIN({ spiffeId: 'x', trustDomain: 'y' })), grpc.status.INVALID_ARGUMENT);
  assert.equal(grpcStatusFor(DaemonErrors.NODEMESH_E_IDENTITY_NODE_BINDING({ node: 'n', spiffeId: 'x', reason: 'r' })), grpc.status.PERMISSION_DENIED);
  assert.equal(grpcStatusFor(DaemonErrors.NODEMESH_E_IDENTITY_NOT_READY({ reason: 'r' })), grpc.status.UNAVAILABLE);
  assert.equal(grpcStatusFor(new Error('boom')), grpc.status.INTERNAL);
  assert.equal(grpcStatusFor(DaemonErrors.NODEMESH_E_CONFIG({ field: 'f', value: 'v', expected: 'e' })), grpc.status.INTERNAL);
});

test('servingSans: the address served on, the service name, plus every local address for a wildcard', () => {
  assert.deepEqual(servingSans('127.0.0.1'), { dnsNames: ['localhost', 'nodemesh-identity.nodemesh-system.svc'], ipAddresses: ['127.0.0.1'] });
  assert.deepEqual(servingSans('identity.example', { dnsNames: ['nodemesh-identity.nodemesh-system.svc'] }),
    { dnsNames: ['localhost', 'nodemesh-identity.nodemesh-system.svc', 'identity.example'], ipAddresses: [] });
  const any = servingSans('0.0.0.0');
  assert.ok(any.ipAddresses.includes('127.0.0.1'));
  assert.ok(any.dnsNames.includes('localhost'));
});

test('a serving certificate for a wildcard address (IPv4 and IPv6 SANs) can be issued', async () => {
  const ca = await MeshCA.create({ trustDomain: 'cluster.local' });
  const sans = servingSans('0.0.0.0');
  const { certPem } = await ca.issue('spiffe://cluster.local/ns/nodemesh-system/sa/nodemesh-identity', 60, sans);
  const cert = new X509Certificate(certPem);
  for (const ip of sans.ipAddresses) assert.equal(cert.checkIP(ip), ip, `IP SAN ${ip}`);
});
