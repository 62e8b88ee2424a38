import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { IDENTITY_SERVICE_DEFAULTS, loadIdentityConfig } from './identity-config';
import { IDENTITY_CLIENT_DEFAULTS, loadIdentityClientConfig, parseHostPort } from './identity-client-config';
import { NodemeshError } from '../errors';

const SERVICE_ENV = {
  NODEMESH_CA_DIR: '/var/lib/nodemesh/ca', NODEMESH_SOURCE: 'sandbox', NODEMESH_SANDBOX_OBJECTS: '/run/nodemesh/objects',
  NODEMESH_NODE_CREDENTIALS: '/run/nodemesh/node-credentials.json',
};

function configError(field: string): (e: unknown) => boolean {
  return (e) => {
    assert.ok(NodemeshError.is(e, 'NODEMESH_E_CONFIG'), String(e));
    assert.match(e.message, new RegExp(`^invalid configuration ${field}=`));
    return true;
  };
}

test('identity service config: defaults', () => {
  const c = loadIdentityConfig(SERVICE_ENV);
  assert.equal(c.listenHost, '0.0.0.0');
  assert.equal(c.listenPort, 15012);
  assert.equal(c.trustDomain, 'cluster.local');
  assert.equal(c.maxCertTtlSeconds, IDENTITY_SERVICE_DEFAULTS.maxCertTtlSeconds);
  assert.equal(c.maxCertTtlSeconds, 86400);
  assert.deepEqual(c.source, { kind: 'sandbox', objectsDir: '/run/nodemesh/objects' });
  assert.deepEqual(c.servingDnsNames, []);
  assert.ok(Object.isFrozen(c));
});

test('identity service config: explicit values', () => {
  const c = loadIdentityConfig({
    ...SERVICE_ENV, NODEMESH_IDENTITY_LISTEN: '127.0.0.1:0', NODEMESH_TRUST_DOMAIN: 'mesh.example', NODEMESH_CERT_MAX_TTL_SECONDS: '2',
    NODEMESH_IDENTITY_DNS_NAMES: 'nodemesh-identity.nodemesh-system.svc, identity.local',
  });
  assert.equal(c.listenHost, '127.0.0.1');
  assert.equal(c.listenPort, 0);
  assert.equal(c.trustDomain, 'mesh.example');
  assert.equal(c.maxCertTtlSeconds, 2);
  assert.deepEqual(c.servingDnsNames, ['nodemesh-identity.nodemesh-system.svc', 'identity.local']);
  assert.equal(loadIdentityConfig({ ...SERVICE_ENV, NODEMESH_IDENTITY_LISTEN: '[::1]:15012' }).listenHost, '::1');
});

test('identity service config: Kubernetes source defaults (no CA directory, no credential file needed)', () => {
  const c = loadIdentityConfig({ NODEMESH_SOURCE: 'kube' });
  assert.deepEqual(c.source, {
    kind: 'kube', kubeconfig: '', audience: 'nodemesh-identity',
    caSecret: { namespace: 'nodemesh-system', name: 'nodemesh-ca' },
    caRootConfigMap: { namespace: 'nodemesh-system', name: 'nodemesh-ca-root' },
    nodeServiceAccount: { namespace: 'nodemesh-system', name: 'nodemesh-node' },
  });
  assert.equal(c.caDir, '');
  const k = loadIdentityConfig({ NODEMESH_SOURCE: 'kube', NODEMESH_KUBECONFIG: '/k', NODEMESH_TOKEN_AUDIENCE: 'x', NODEMESH_CA_DIR: '/ca' });
  assert.equal(k.caDir, '/ca');
  assert.equal(k.source.kind === 'kube' && k.source.kubeconfig, '/k');
});

test('identity service config: every bad value names its variable', () => {
  const cases: [Record<string, string>, string][] = [
    [{ NODEMESH_CA_DIR: '' }, 'NODEMESH_CA_DIR'],
    [{ NODEMESH_SOURCE: 'kube', NODEMESH_CA_SECRET: 'just-a-name' }, 'NODEMESH_CA_SECRET'],
    [{ NODEMESH_SOURCE: 'kube', NODEMESH_NODE_SERVICE_ACCOUNT: 'a/b/c' }, 'NODEMESH_NODE_SERVICE_ACCOUNT'],
    [{ NODEMESH_SOURCE: 'etcd' }, 'NODEMESH_SOURCE'],
    [{ NODEMESH_SANDBOX_OBJECTS: '' }, 'NODEMESH_SANDBOX_OBJECTS'],
    [{ NODEMESH_NODE_CREDENTIALS: '' }, 'NODEMESH_NODE_CREDENTIALS'],
    [{ NODEMESH_IDENTITY_LISTEN: '15012' }, 'NODEMESH_IDENTITY_LISTEN'],
    [{ NODEMESH_IDENTITY_LISTEN: '0.0.0.0:70000' }, 'NODEMESH_IDENTITY_LISTEN'],
    [{ NODEMESH_TRUST_DOMAIN: 'Cluster.Local' }, 'NODEMESH_TRUST_DOMAIN'],
    [{ NODEMESH_CERT_MAX_TTL_SECONDS: '0' }, 'NODEMESH_CERT_MAX_TTL_SECONDS'],
    [{ NODEMESH_CERT_MAX_TTL_SECONDS: '1.5' }, 'NODEMESH_CERT_MAX_TTL_SECONDS'],
    [{ NODEMESH_CERT_MAX_TTL_SECONDS: '24h' }, 'NODEMESH_CERT_MAX_TTL_SECONDS'],
    [{ NODEMESH_IDENTITY_DNS_NAMES: 'bad name' }, 'NODEMESH_IDENTITY_DNS_NAMES'],
  ];
  for (const [over, field] of cases) assert.throws(() => loadIdentityConfig({ ...SERVICE_ENV, ...over }), configError(field), field);
});

const CLIENT_ENV = { NODEMESH_NODE_CREDENTIAL_FILE: '/run/nodemesh/node.token', NODEMESH_CA_ROOT_FILE: '/run/nodemesh/ca.crt' };

test('identity client config: defaults, explicit values and errors', () => {
  const c = loadIdentityClientConfig(CLIENT_ENV);
  assert.equal(c.address, IDENTITY_CLIENT_DEFAULTS.address);
  assert.equal(c.trustDomain, 'cluster.local');
  assert.equal(c.certTtlSeconds, 86400);
  assert.ok(Object.isFrozen(c));
  const d = loadIdentityClientConfig({ ...CLIENT_ENV, NODEMESH_IDENTITY_ADDRESS: '10.0.0.5:15012', NODEMESH_TRUST_DOMAIN: 'mesh.example', NODEMESH_CERT_TTL_SECONDS: '3600' });
  assert.equal(d.address, '10.0.0.5:15012');
  assert.equal(d.trustDomain, 'mesh.example');
  assert.equal(d.certTtlSeconds, 3600);
  const cases: [Record<string, string>, string][] = [
    [{ NODEMESH_NODE_CREDENTIAL_FILE: '' }, 'NODEMESH_NODE_CREDENTIAL_FILE'],
    [{ NODEMESH_CA_ROOT_FILE: '' }, 'NODEMESH_CA_ROOT_FILE'],
    [{ NODEMESH_IDENTITY_ADDRESS: 'identity' }, 'NODEMESH_IDENTITY_ADDRESS'],
    [{ NODEMESH_IDENTITY_ADDRESS: 'identity:0' }, 'NODEMESH_IDENTITY_ADDRESS'],
    [{ NODEMESH_TRUST_DOMAIN: 'spiffe://x' }, 'NODEMESH_TRUST_DOMAIN'],
    [{ NODEMESH_CERT_TTL_SECONDS: '-1' }, 'NODEMESH_CERT_TTL_SECONDS'],
  ];
  for (const [over, field] of cases) assert.throws(() => loadIdentityClientConfig({ ...CLIENT_ENV, ...over }), configError(field), field);
});

test('parseHostPort', () => {
  assert.deepEqual(parseHostPort('localhost:1', 'X'), { host: 'localhost', port: 1 });
  assert.deepEqual(parseHostPort('[fd00::1]:15012', 'X'), { host: 'fd00::1', port: 15012 });
  assert.deepEqual(parseHostPort('127.0.0.1:0', 'X', { allowPortZero: true }), { host: '127.0.0.1', port: 0 });
  for (const bad of ['', ':80', 'host:', 'host:-1', 'a b:80', 'http://x:80', 'fd00::1:80']) assert.throws(() => parseHostPort(bad, 'X'), configError('X'), bad);
});
