// nodemesh-identity on Kubernetes, against the test API server (real wire format, TLS, bearer
// tokens, TokenRequest/TokenReview): the node daemon's pod-bound projected token is accepted
// and names its node; another ServiceAccount's token, a token for another audience and a
// garbage token are refused; node binding reads the pods on the caller's node; two replicas
// reading one empty CA Secret end up with the same CA.
import { test, after, before } from 'node:test';
import * as assert from 'node:assert/strict';
import 'reflect-metadata';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { KubeConfig } from '@kubernetes/client-node';
import { startTestApiServer, type TestApiServer } from '../../test/k8s-apiserver/test-api-server';
import { TokenReviewAuthenticator, decideTokenReview, kubeTokenReviewApi } from './token-review';
import { KubeNodeBinding, kubeListNodePods } from './kube-node-binding';
import { loadOrCreateCaFromSecret, publishCaRoot } from './kube-ca';
import { IdentityServer } from './identity-server';
import { generateKeyAndCsr, spiffeId } from './ca';
import { requestProjectedToken } from './projected-token';
import { NodemeshError } from '../errors';
import { gatewayApiCrd } from '../../test/k8s-apiserver/gateway-api-crds';

const NS = 'nodemesh-system';
const policy = { audience: 'nodemesh-identity', serviceAccount: { namespace: NS, name: 'nodemesh-node' } };
let api: TestApiServer;
let kc: KubeConfig;

function pod(namespace: string, name: string, serviceAccountName: string, nodeName: string, phase = 'Running') {
  api.store.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace }, spec: { nodeName, serviceAccountName, containers: [{ name: 'c', image: 'x' }] } });
  api.store.patchStatus('v1', 'Pod', name, namespace, { phase });
}

function md(token: string): grpc.Metadata {
  const m = new grpc.Metadata();
  m.set('authorization', `Bearer ${token}`);
  return m;
}

before(async () => {
  api = await startTestApiServer();
  kc = new KubeConfig();
  kc.loadFromFile(api.kubeconfigPath);
  for (const ns of [NS, 'shop']) api.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  for (const sa of ['nodemesh-node', 'other']) api.store.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: NS } });
  api.store.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'web', namespace: 'shop' } });
  pod(NS, 'nodemesh-node-a', 'nodemesh-node', 'node-1');
  pod(NS, 'nodemesh-node-b', 'nodemesh-node', 'node-2');
  pod(NS, 'other-a', 'other', 'node-1');
  pod('shop', 'web-1', 'web', 'node-1');
  pod('shop', 'web-done', 'web', 'node-2', 'Succeeded');
});
after(async () => { await api?.close(); });

test('decideTokenReview: the recorded response shapes (10, 11, 12, 30)', () => {
  const user = (username: string, extra: Record<string, string[]> = {}) => ({ username, uid: 'u', groups: ['system:authenticated'], extra });
  const cases: [unknown, RegExp | { node?: string; pod?: string; waypoint?: object }][] = [
    [{ authenticated: true, user: user('system:serviceaccount:nodemesh-system:nodemesh-node', { 'authentication.kubernetes.io/node-name': ['node-1'] }), audiences: ['nodemesh-identity'] }, { node: 'node-1' }],
    [{ authenticated: true, user: user('system:serviceaccount:nodemesh-system:nodemesh-node', { 'authentication.kubernetes.io/pod-name': ['p'] }), audiences: ['nodemesh-identity'] }, { pod: 'p' }],
    [{ authenticated: true, user: user('system:serviceaccount:nodemesh-system:nodemesh-node'), audiences: ['nodemesh-identity'] }, /not bound to a pod/],
    [{ authenticated: true, user: user('system:serviceaccount:wire:sa1', { 'authentication.kubernetes.io/node-name': ['node-1'] }), audiences: ['nodemesh-identity'] }, /belongs to system:serviceaccount:wire:sa1.*nor to a waypoint's \(not bound to a pod\)/],
    // Another service account's pod-bound token: a waypoint's if its pod says so (checked next).
    [{ authenticated: true, user: user('system:serviceaccount:shop:waypoint', { 'authentication.kubernetes.io/pod-name': ['waypoint-7d9-x'], 'authentication.kubernetes.io/pod-uid': ['u-1'] }), audiences: ['nodemesh-identity'] },
      { waypoint: { namespace: 'shop', serviceAccount: 'waypoint', pod: 'waypoint-7d9-x', podUid: 'u-1' } }],
    [{ authenticated: true, user: user('alice', { 'authentication.kubernetes.io/pod-name': ['p'] }), audiences: ['nodemesh-identity'] }, /belongs to alice.*not a service account/],
    [{ authenticated: true, user: user('system:serviceaccount:nodemesh-system:nodemesh-node', { 'authentication.kubernetes.io/node-name': ['node-1'] }) }, /not for audience/],
    [{ user: {}, error: '[invalid bearer token, token audiences ["nodemesh-identity"] is invalid for the target audiences ["someone-else"]]' }, /did not authenticate.*someone-else/],
    [{ user: {}, error: 'invalid bearer token' }, /did not authenticate/],
    [undefined, /did not authenticate/],
  ];
  for (const [status, want] of cases) {
    const d = decideTokenReview(status as never, policy);
    if (want instanceof RegExp) assert.ok(!d.ok && want.test(d.reason), JSON.stringify(d));
    else if (want.node) assert.deepEqual(d, { ok: true, node: want.node });
    else if (want.waypoint) assert.deepEqual(d, { ok: true, waypoint: want.waypoint });
    else assert.deepEqual(d, { ok: true, pod: { namespace: NS, name: want.pod } });
  }
});

test('TokenReview: the daemon\'s pod-bound token is accepted and names its node', async () => {
  const auth = new TokenReviewAuthenticator(kubeTokenReviewApi(kc), policy);
  const token = api.store.issueToken(NS, 'nodemesh-node', { audiences: ['nodemesh-identity'], boundPod: 'nodemesh-node-b' });
  assert.deepEqual(await auth.authenticate(md(token)), { node: 'node-2' });
  const reviews = api.requests.filter((r) => r.path === '/apis/authentication.k8s.io/v1/tokenreviews');
  assert.ok(reviews.length >= 1 && reviews.every((r) => r.method === 'POST' && r.code === 201));
});

test('TokenReview: another service account, another audience, an unbound token and garbage are refused', async () => {
  const auth = new TokenReviewAuthenticator(kubeTokenReviewApi(kc), policy);
  const refused = (re: RegExp) => (e: unknown) => NodemeshError.is(e, 'NODEMESH_E_IDENTITY_UNAUTHENTICATED') && re.test(e.message);
  const other = api.store.issueToken(NS, 'other', { audiences: ['nodemesh-identity'], boundPod: 'other-a' });
  await assert.rejects(auth.authenticate(md(other)), refused(/system:serviceaccount:nodemesh-system:other/));
  const wrongAudience = api.store.issueToken(NS, 'nodemesh-node', { audiences: ['someone-else'], boundPod: 'nodemesh-node-a' });
  await assert.rejects(auth.authenticate(md(wrongAudience)), refused(/did not authenticate/));
  const apiAudience = api.store.issueToken(NS, 'nodemesh-node', { boundPod: 'nodemesh-node-a' });
  await assert.rejects(auth.authenticate(md(apiAudience)), refused(/did not authenticate/));
  const unbound = api.store.issueToken(NS, 'nodemesh-node', { audiences: ['nodemesh-identity'] });
  await assert.rejects(auth.authenticate(md(unbound)), refused(/not bound to a pod/));
  await assert.rejects(auth.authenticate(md('not-a-token')), refused(/did not authenticate/));
});

test('identity on Kubernetes: a certificate for a pod on the caller\'s node, refused for one elsewhere; one CA from one Secret', async () => {
  api.store.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'nodemesh-ca', namespace: NS }, type: 'Opaque' });
  api.store.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'nodemesh-ca-root', namespace: NS } });
  // Two replicas starting at once on an empty Secret: one CA.
  const [a, b] = await Promise.all([0, 1].map(() => loadOrCreateCaFromSecret(kc, { namespace: NS, name: 'nodemesh-ca' }, 'cluster.local')));
  assert.equal(a.ca.rootCertPem, b.ca.rootCertPem);
  assert.equal([a.created, b.created].filter(Boolean).length <= 1, true);
  const again = await loadOrCreateCaFromSecret(kc, { namespace: NS, name: 'nodemesh-ca' }, 'cluster.local');
  assert.equal(again.created, false);
  assert.equal(again.ca.rootCertPem, a.ca.rootCertPem);
  await publishCaRoot(kc, { namespace: NS, name: 'nodemesh-ca-root' }, a.ca.rootCertPem);
  assert.equal((api.store.get('v1', 'ConfigMap', 'nodemesh-ca-root', NS) as unknown as { data: Record<string, string> }).data['ca.crt'], a.ca.rootCertPem);

  const binding = new KubeNodeBinding(kubeListNodePods(kc));
  const server = new IdentityServer({
    ca: a.ca, authenticator: new TokenReviewAuthenticator(kubeTokenReviewApi(kc), policy),
    binding: (n, ns, sa) => binding.check(n, ns, sa), logger: pino({ level: 'silent' }),
  });
  const node1 = api.store.issueToken(NS, 'nodemesh-node', { audiences: ['nodemesh-identity'], boundPod: 'nodemesh-node-a' });
  const node2 = api.store.issueToken(NS, 'nodemesh-node', { audiences: ['nodemesh-identity'], boundPod: 'nodemesh-node-b' });
  const { csrPem } = await generateKeyAndCsr(spiffeId('cluster.local', 'shop', 'web'));
  const res = await server.createCertificate(md(node1), { csr: csrPem, validitySeconds: 600 });
  assert.equal(res.certChain.length, 1);
  assert.equal(res.trustBundle[0], a.ca.rootCertPem);
  // node-2 only has a Succeeded pod of shop/web: no live pod, no identity.
  await assert.rejects(server.createCertificate(md(node2), { csr: csrPem, validitySeconds: 600 }),
    (e: unknown) => NodemeshError.is(e, 'NODEMESH_E_IDENTITY_NODE_BINDING') && /node-2/.test(e.message));
  const lists = api.requests.filter((r) => r.path === '/api/v1/pods' && r.query.includes('fieldSelector'));
  assert.ok(lists.some((r) => decodeURIComponent(r.query).includes('spec.nodeName=node-1')), JSON.stringify(lists));
});

test('a token from TokenRequest bound to the daemon pod (what a kubelet projects) is accepted', async () => {
  const p = api.store.get('v1', 'Pod', 'nodemesh-node-a', NS)!;
  const { token, expiresAt } = await requestProjectedToken(kc, {
    namespace: NS, serviceAccount: 'nodemesh-node', pod: { name: 'nodemesh-node-a', uid: p.metadata.uid as string }, audience: 'nodemesh-identity', expirationSeconds: 600,
  });
  assert.ok(expiresAt.getTime() > Date.now());
  const auth = new TokenReviewAuthenticator(kubeTokenReviewApi(kc), policy);
  assert.deepEqual(await auth.authenticate(md(token)), { node: 'node-1' });
  await assert.rejects(requestProjectedToken(kc, { namespace: NS, serviceAccount: 'nodemesh-node', pod: { name: 'gone', uid: 'x' }, audience: 'nodemesh-identity' }), /TokenRequest .* failed: HTTP 404/);
});

test('a waypoint\'s token obtains its own certificate and nothing else; a pod that is no waypoint\'s is refused', async () => {
  api.store.create(gatewayApiCrd('Gateway', 'gateways', 'Namespaced') as never);
  await new Promise((r) => setTimeout(r, 100)); // the CRD is established after a moment
  api.store.create({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'waypoint', namespace: 'shop' }, spec: { gatewayClassName: 'nodemesh-waypoint' } } as never);
  api.store.create({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'public', namespace: 'shop' }, spec: { gatewayClassName: 'example' } } as never);
  const waypointLabels = (gw: string) => ({ 'app.kubernetes.io/component': 'nodemesh-waypoint', 'gateway.networking.k8s.io/gateway-name': gw });
  for (const [name, sa, labels] of [['waypoint-7d9-x', 'waypoint', waypointLabels('waypoint')], ['public-1', 'public', waypointLabels('public')], ['web-2', 'web', { app: 'web' }]] as const) {
    if (!api.store.list('v1', 'ServiceAccount', 'shop').some((o) => o.metadata?.name === sa)) api.store.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: 'shop' } });
    api.store.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'shop', labels }, spec: { nodeName: 'node-1', serviceAccountName: sa, containers: [{ name: 'c', image: 'x' }] } });
  }
  const ca = (await loadOrCreateCaFromSecret(kc, { namespace: NS, name: 'nodemesh-ca' }, 'cluster.local')).ca;
  const server = new IdentityServer({
    ca, authenticator: new TokenReviewAuthenticator(kubeTokenReviewApi(kc), policy),
    binding: () => Promise.reject(new Error('a waypoint is not node-bound')), logger: pino({ level: 'silent' }),
  });
  const tokenOf = (sa: string, pod: string) => api.store.issueToken('shop', sa, { audiences: ['nodemesh-identity'], boundPod: pod });
  const csrFor = async (sa: string) => (await generateKeyAndCsr(spiffeId('cluster.local', 'shop', sa))).csrPem;

  // Its own identity: issued, with the waypoint's SPIFFE ID.
  const res = await server.createCertificate(md(tokenOf('waypoint', 'waypoint-7d9-x')), { csr: await csrFor('waypoint'), validitySeconds: 600 });
  assert.match(new (await import('node:crypto')).X509Certificate(res.certChain[0]).subjectAltName ?? '', /URI:spiffe:\/\/cluster.local\/ns\/shop\/sa\/waypoint/);
  // Anything else with that token: refused, naming what it may have.
  await assert.rejects(server.createCertificate(md(tokenOf('waypoint', 'waypoint-7d9-x')), { csr: await csrFor('web'), validitySeconds: 600 }),
    (e: unknown) => NodemeshError.is(e, 'NODEMESH_E_IDENTITY_WAYPOINT_BINDING') && /only its own identity, spiffe:\/\/cluster.local\/ns\/shop\/sa\/waypoint/.test(e.message));
  const unauthenticated = (re: RegExp) => (e: unknown) => NodemeshError.is(e, 'NODEMESH_E_IDENTITY_UNAUTHENTICATED') && re.test(e.message);
  // An app's token: not a waypoint's.
  await assert.rejects(server.createCertificate(md(tokenOf('web', 'web-2')), { csr: await csrFor('web'), validitySeconds: 600 }),
    unauthenticated(/system:serviceaccount:shop:web.*not a waypoint pod/));
  // Waypoint labels, but for a Gateway of another class.
  await assert.rejects(server.createCertificate(md(tokenOf('public', 'public-1')), { csr: await csrFor('public'), validitySeconds: 600 }),
    unauthenticated(/Gateway shop\/public is of class "example"/));
  // The waypoint pod gone: its token no longer works (the API refuses a token of a deleted pod, or the pod check does).
  const stale = tokenOf('waypoint', 'waypoint-7d9-x');
  api.store.delete('v1', 'Pod', 'waypoint-7d9-x', 'shop');
  await assert.rejects(server.createCertificate(md(stale), { csr: await csrFor('waypoint'), validitySeconds: 600 }), unauthenticated(/./));
});
