// The test API server against the recorded responses of a real kube-apiserver v1.35
// (shared/k8s-wire), over plain HTTPS: the same status codes, Status reasons and bodies, list
// and watch shapes, headers. Where the recorded request can be replayed exactly (same names,
// same bad values) the bodies must be equal as JSON; elsewhere the shapes must be.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import YAML from 'yaml';
import { startTestApiServer, type TestApiServer } from './test-api-server';
import { keysOf, request, watch } from './https-client';
import { recorded, recordedEvents, recordedFile, recordedJson } from './wire-fixtures';

const pod = (name: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'v1', kind: 'Pod',
  metadata: { name, namespace: 'wire', labels: { run: name } },
  spec: { containers: [{ name, image: 'x' }], restartPolicy: 'Never', serviceAccountName: 'sa1', nodeName: 'node-1' },
  ...extra,
});

describe('test API server: the wire format of a real kube-apiserver', () => {
  let s: TestApiServer;
  let admin: string;
  before(async () => {
    s = await startTestApiServer({ bookmarkIntervalMs: 0 });
    admin = s.adminToken;
    s.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'wire' } });
    s.store.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'sa1', namespace: 'wire' } });
    s.store.create({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-1' } });
    for (const n of ['p1', 'p2', 'p3']) s.store.create(pod(n));
  });
  after(async () => s.close());

  test('01/02: a paginated list carries continue and remainingItemCount, both pages one resourceVersion', async () => {
    const page1 = await request(s, 'GET', '/api/v1/namespaces/wire/pods?limit=2', { token: admin });
    const want1 = recordedJson('01-list-pods-paginated-page1');
    assert.equal(page1.status, 200);
    assert.equal(page1.headers['content-type'], 'application/json');
    assert.ok(page1.headers['audit-id']);
    assert.deepEqual(keysOf(page1.json), keysOf(want1));
    assert.deepEqual(keysOf(page1.json.metadata), keysOf(want1.metadata));
    assert.equal(page1.json.kind, 'PodList');
    assert.equal(page1.json.metadata.remainingItemCount, 1);
    assert.deepEqual(page1.json.items.map((p: any) => p.metadata.name), ['p1', 'p2']);
    // List items carry no kind/apiVersion, as recorded.
    assert.deepEqual(keysOf(page1.json.items[0]), keysOf(want1.items[0]));
    const token = JSON.parse(Buffer.from(page1.json.metadata.continue, 'base64').toString());
    const recordedToken = JSON.parse(Buffer.from(want1.metadata.continue, 'base64').toString());
    assert.deepEqual(keysOf(token), keysOf(recordedToken));

    const page2 = await request(s, 'GET', `/api/v1/namespaces/wire/pods?limit=2&continue=${encodeURIComponent(page1.json.metadata.continue)}`, { token: admin });
    const want2 = recordedJson('02-list-pods-paginated-page2');
    assert.deepEqual(keysOf(page2.json.metadata), keysOf(want2.metadata));
    assert.equal(page2.json.metadata.resourceVersion, page1.json.metadata.resourceVersion);
    assert.deepEqual(page2.json.items.map((p: any) => p.metadata.name), ['p3']);
    // Large bodies are chunked, as Go's server sends them.
    assert.equal(page1.headers['transfer-encoding'], 'chunked');
  });

  test('a pod as created: defaults, generation, the kubectl-shaped metadata', async () => {
    const r = await request(s, 'GET', '/api/v1/namespaces/wire/pods/p1', { token: admin });
    const want = recordedJson('01-list-pods-paginated-page1').items[0];
    assert.equal(r.json.kind, 'Pod');
    for (const k of ['name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'labels', 'managedFields']) {
      assert.ok(k in r.json.metadata, `metadata.${k}`);
      assert.equal(typeof r.json.metadata[k], typeof want.metadata[k], `metadata.${k} type`);
    }
    assert.equal(r.json.status.phase, want.status.phase);
    assert.equal(r.json.spec.dnsPolicy, want.spec.dnsPolicy);
    assert.equal(r.json.spec.serviceAccount, 'sa1');
    assert.match(r.json.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  test('06, 07, 08: NotFound, AlreadyExists and Invalid Status objects equal the recorded ones', async () => {
    const missing = await request(s, 'GET', '/api/v1/namespaces/wire/pods/nope', { token: admin });
    assert.equal(missing.status, recorded('06-get-missing-404').status);
    assert.deepEqual(missing.json, recordedJson('06-get-missing-404'));

    const dup = await request(s, 'POST', '/api/v1/namespaces/wire/serviceaccounts', { token: admin, body: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'sa1' } } });
    assert.equal(dup.status, 409);
    assert.deepEqual(dup.json, recordedJson('07-create-conflict-409'));

    const bad = await request(s, 'POST', '/api/v1/namespaces/wire/services', {
      token: admin,
      body: { apiVersion: 'v1', kind: 'Service', metadata: { name: 'Bad_Name' }, spec: { ports: [{ port: 99999, targetPort: 99999 }], selector: { app: 'x' } } },
    });
    assert.equal(bad.status, 422);
    assert.deepEqual(bad.json, recordedJson('08-create-invalid-422'));
  });

  test('19, 20, 21: anonymous 403, a token of another audience 401, a token without RBAC 403', async () => {
    const anon = await request(s, 'GET', '/api/v1/pods');
    assert.equal(anon.status, 403);
    assert.deepEqual(anon.json, recordedJson('19-anonymous-403'));
    assert.equal(anon.headers['x-content-type-options'], 'nosniff');

    const otherAudience = s.store.issueToken('wire', 'sa1', { audiences: ['nodemesh-identity'] });
    const unauth = await request(s, 'GET', '/api/v1/pods', { token: otherAudience });
    assert.equal(unauth.status, 401);
    assert.deepEqual(unauth.json, recordedJson('20-token-wrong-audience-401'));

    const apiToken = s.store.issueToken('wire', 'sa1');
    const forbidden = await request(s, 'GET', '/api/v1/pods', { token: apiToken });
    assert.equal(forbidden.status, 403);
    assert.deepEqual(forbidden.json, recordedJson('21-forbidden-403'));

    // RBAC objects grant what they say, and nothing more.
    s.store.create({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'pod-reader', namespace: 'wire' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }] });
    s.store.create({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'sa1-reads-pods', namespace: 'wire' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' }, subjects: [{ kind: 'ServiceAccount', name: 'sa1', namespace: 'wire' }] });
    assert.equal((await request(s, 'GET', '/api/v1/namespaces/wire/pods', { token: apiToken })).status, 200);
    const del = await request(s, 'DELETE', '/api/v1/namespaces/wire/pods/p1', { token: apiToken });
    assert.equal(del.status, 403);
    assert.equal(del.json.message, 'pods "p1" is forbidden: User "system:serviceaccount:wire:sa1" cannot delete resource "pods" in API group "" in the namespace "wire"');
  });

  test('09, 10, 11, 12: TokenRequest and TokenReview, right audience, wrong audience, garbage', async () => {
    const tr = await request(s, 'POST', '/api/v1/namespaces/wire/serviceaccounts/sa1/token', {
      token: admin, userAgent: 'curl/8.5.0', body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: ['nodemesh-identity'], expirationSeconds: 3600 } },
    });
    const wantTr = recordedJson('09-token-request');
    assert.equal(tr.status, 201);
    assert.deepEqual(keysOf(tr.json), keysOf(wantTr));
    assert.deepEqual(keysOf(tr.json.metadata), keysOf(wantTr.metadata));
    assert.deepEqual(tr.json.spec, wantTr.spec);
    assert.deepEqual(tr.json.metadata.managedFields[0].fieldsV1, wantTr.metadata.managedFields[0].fieldsV1);
    assert.equal(tr.json.metadata.managedFields[0].subresource, 'token');
    assert.equal(tr.json.metadata.managedFields[0].manager, 'curl');
    assert.equal(tr.json.status.token.split('.').length, 3);
    const ttl = Date.parse(tr.json.status.expirationTimestamp) - Date.now();
    assert.ok(ttl > 3500_000 && ttl <= 3600_000, `expirationTimestamp ${tr.json.status.expirationTimestamp}`);
    const jwt = tr.json.status.token as string;

    const review = (audiences: string[] | undefined, token = jwt) => request(s, 'POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
      token: admin, userAgent: 'curl/8.5.0', body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, ...(audiences ? { audiences } : {}) } },
    });
    const ok = await review(['nodemesh-identity']);
    const wantOk = recordedJson('10-token-review-ok');
    assert.equal(ok.status, 201);
    assert.deepEqual(keysOf(ok.json.status), keysOf(wantOk.status));
    assert.equal(ok.json.status.authenticated, true);
    assert.equal(ok.json.status.user.username, wantOk.status.user.username);
    assert.deepEqual(ok.json.status.user.groups, wantOk.status.user.groups);
    assert.deepEqual(keysOf(ok.json.status.user.extra), keysOf(wantOk.status.user.extra));
    assert.deepEqual(ok.json.status.audiences, ['nodemesh-identity']);
    assert.deepEqual(ok.json.metadata.managedFields[0].fieldsV1, wantOk.metadata.managedFields[0].fieldsV1);

    const wrong = await review(['someone-else']);
    assert.equal(wrong.status, 201);
    assert.deepEqual(wrong.json.status, recordedJson('11-token-review-wrong-audience').status);

    const garbage = await review(undefined, 'not-a-token');
    const wantGarbage = recordedJson('12-token-review-garbage');
    assert.equal(garbage.status, 201);
    assert.deepEqual(garbage.json.status, wantGarbage.status);
    assert.deepEqual(garbage.json.spec, wantGarbage.spec);
    assert.deepEqual(garbage.json.metadata.managedFields[0].fieldsV1, wantGarbage.metadata.managedFields[0].fieldsV1);
  });

  test('29, 30: a pod-bound token names pod and node; TokenReview reports them in user.extra', async () => {
    const p1 = s.store.get('v1', 'Pod', 'p1', 'wire')!;
    const tr = await request(s, 'POST', '/api/v1/namespaces/wire/serviceaccounts/sa1/token', {
      token: admin,
      body: { spec: { audiences: ['nodemesh-identity'], expirationSeconds: 3600, boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'p1', uid: p1.metadata.uid } } },
    });
    assert.equal(tr.status, 201);
    assert.deepEqual(keysOf(tr.json.spec.boundObjectRef), keysOf(recordedJson('29-token-request-pod-bound').spec.boundObjectRef));
    const claims = JSON.parse(Buffer.from(tr.json.status.token.split('.')[1], 'base64url').toString());
    const wantClaims = JSON.parse(recordedFile('29-token-request-pod-bound.claims.json'));
    assert.deepEqual(keysOf(claims), keysOf(wantClaims));
    assert.deepEqual(keysOf(claims['kubernetes.io']), keysOf(wantClaims['kubernetes.io']));
    assert.equal(claims['kubernetes.io'].node.name, 'node-1');
    assert.equal(claims['kubernetes.io'].pod.uid, p1.metadata.uid);
    assert.equal(claims.exp - claims.iat, 3600);

    const review = await request(s, 'POST', '/apis/authentication.k8s.io/v1/tokenreviews', { token: admin, body: { spec: { token: tr.json.status.token, audiences: ['nodemesh-identity'] } } });
    const want = recordedJson('30-token-review-pod-bound');
    assert.deepEqual(keysOf(review.json.status.user.extra), keysOf(want.status.user.extra));
    assert.deepEqual(review.json.status.user.extra['authentication.kubernetes.io/pod-name'], ['p1']);
    assert.deepEqual(review.json.status.user.extra['authentication.kubernetes.io/node-name'], ['node-1']);

    // A token bound to a pod stops working when the pod is gone.
    const bound = s.store.issueToken('wire', 'sa1', { audiences: ['nodemesh-identity'], boundPod: 'p3' });
    s.store.delete('v1', 'Pod', 'p3', 'wire');
    const stale = await request(s, 'POST', '/apis/authentication.k8s.io/v1/tokenreviews', { token: admin, body: { spec: { token: bound, audiences: ['nodemesh-identity'] } } });
    assert.equal(stale.json.status.authenticated, undefined);
    assert.match(stale.json.status.error, /invalid bearer token/);
    s.store.create(pod('p3'));
  });

  test('14: discovery lists the served groups in the recorded shape; a CRD-less group is a plain 404 (15)', async () => {
    const apis = await request(s, 'GET', '/apis', { token: admin });
    const want = recordedJson('14-discovery-apis');
    assert.deepEqual(keysOf(apis.json), keysOf(want));
    for (const name of ['apps', 'policy', 'rbac.authorization.k8s.io', 'discovery.k8s.io', 'authentication.k8s.io', 'apiextensions.k8s.io']) {
      const mine = apis.json.groups.find((g: any) => g.name === name);
      assert.deepEqual(mine, want.groups.find((g: any) => g.name === name), name);
    }
    const core = await request(s, 'GET', '/api/v1', { token: admin });
    const pods = core.json.resources.find((r: any) => r.name === 'pods');
    assert.equal(pods.namespaced, true);
    assert.ok(core.json.resources.some((r: any) => r.name === 'pods/status'));
    assert.ok(core.json.resources.some((r: any) => r.name === 'serviceaccounts/token'));

    const missing = await request(s, 'GET', '/apis/gateway.networking.k8s.io/v1/namespaces/wire/gateways', { token: admin });
    const want404 = recorded('15-crd-missing-404');
    assert.equal(missing.status, 404);
    assert.equal(missing.text, want404.body);
    assert.equal(missing.headers['content-type'], want404.headers['content-type'][0]);
  });

  test('16, 17: server-side apply records managedFields; another manager changing the field is a 409 Conflict', async () => {
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg', namespace: 'wire' }, data: { a: '1' } };
    const applied = await request(s, 'PATCH', '/api/v1/namespaces/wire/configmaps/cfg?fieldManager=nodemesh', { token: admin, body: YAML.stringify(cm), contentType: 'application/apply-patch+yaml' });
    const want = recordedJson('16-ssa-apply');
    assert.equal(applied.status, 201);
    assert.deepEqual(keysOf(applied.json.metadata), keysOf(want.metadata));
    const { time: _t1, ...mf } = applied.json.metadata.managedFields[0];
    const { time: _t2, ...wantMf } = want.metadata.managedFields[0];
    void _t1; void _t2;
    assert.deepEqual(mf, wantMf);
    assert.deepEqual(applied.json.data, want.data);

    const again = await request(s, 'PATCH', '/api/v1/namespaces/wire/configmaps/cfg?fieldManager=nodemesh', { token: admin, body: YAML.stringify(cm), contentType: 'application/apply-patch+yaml' });
    assert.equal(again.status, 200);
    assert.equal(again.json.metadata.resourceVersion, applied.json.metadata.resourceVersion, 'a no-op apply writes nothing');

    const other = { ...cm, data: { a: '2' } };
    const conflict = await request(s, 'PATCH', '/api/v1/namespaces/wire/configmaps/cfg?fieldManager=someone', { token: admin, body: YAML.stringify(other), contentType: 'application/apply-patch+yaml' });
    assert.equal(conflict.status, 409);
    assert.deepEqual(conflict.json, recordedJson('17-ssa-conflict-409'));

    const forced = await request(s, 'PATCH', '/api/v1/namespaces/wire/configmaps/cfg?fieldManager=someone&force=true', { token: admin, body: YAML.stringify(other), contentType: 'application/apply-patch+yaml' });
    assert.equal(forced.status, 200);
    assert.equal(forced.json.data.a, '2');
    const owners = forced.json.metadata.managedFields.map((e: any) => e.manager);
    assert.deepEqual(owners, ['someone'], 'force takes the field from nodemesh, which then owns nothing');

    const noManager = await request(s, 'PATCH', '/api/v1/namespaces/wire/configmaps/cfg', { token: admin, body: YAML.stringify(other), contentType: 'application/apply-patch+yaml' });
    assert.equal(noManager.status, 422);
    assert.equal(noManager.json.reason, 'Invalid');
  });

  test('a field no longer applied is removed; a field another manager owns stays', async () => {
    const base = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'owned', namespace: 'wire' } };
    const apply = (manager: string, data: Record<string, string>) => request(s, 'PATCH', `/api/v1/namespaces/wire/configmaps/owned?fieldManager=${manager}`, { token: admin, body: YAML.stringify({ ...base, data }), contentType: 'application/apply-patch+yaml' });
    await apply('one', { a: '1', b: '1' });
    await apply('two', { b: '1', c: '1' });
    const r = await apply('one', { a: '1' });
    assert.deepEqual(r.json.data, { a: '1', b: '1', c: '1' });
    const r2 = await apply('two', { c: '1' });
    assert.deepEqual(r2.json.data, { a: '1', c: '1' });
  });

  test('23: a merge patch of pods/status changes status only, and records a status-subresource manager', async () => {
    const want = recordedJson('23-pod-status-patch');
    const patch = { status: { phase: 'Running', podIP: '10.244.1.7', podIPs: [{ ip: '10.244.1.7' }], hostIP: '172.18.0.3', conditions: [{ type: 'Ready', status: 'True' }, { type: 'ContainersReady', status: 'True' }] }, spec: { nodeName: 'elsewhere' } };
    const r = await request(s, 'PATCH', '/api/v1/namespaces/wire/pods/p2/status', { token: admin, userAgent: 'curl/8.5.0', body: patch, contentType: 'application/merge-patch+json' });
    assert.equal(r.status, 200);
    assert.equal(r.json.status.phase, 'Running');
    assert.equal(r.json.spec.nodeName, 'node-1', 'a status write does not change spec');
    assert.equal(r.json.metadata.generation, 1, 'status does not bump generation');
    const entry = r.json.metadata.managedFields.find((e: any) => e.subresource === 'status');
    const wantEntry = want.metadata.managedFields.find((e: any) => e.subresource === 'status');
    assert.deepEqual(keysOf(entry), keysOf(wantEntry));
    assert.ok(entry.fieldsV1['f:status']['f:conditions']['k:{"type":"Ready"}']);
    assert.ok(entry.fieldsV1['f:status']['f:podIPs']['k:{"ip":"10.244.1.7"}']);

    // And the main resource ignores status.
    const main = await request(s, 'PATCH', '/api/v1/namespaces/wire/pods/p2', { token: admin, body: { status: { phase: 'Failed' } }, contentType: 'application/merge-patch+json' });
    assert.equal(main.json.status.phase, 'Running');
  });

  test('13: an EndpointSlice as the controller writes it is stored and listed in the recorded shape', async () => {
    const want = recordedJson('13-list-endpointslices').items[0];
    const slice = { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { generateName: 'p3svc-', namespace: 'wire', labels: want.metadata.labels }, addressType: 'IPv4', endpoints: want.endpoints, ports: want.ports };
    const created = await request(s, 'POST', '/apis/discovery.k8s.io/v1/namespaces/wire/endpointslices', { token: admin, body: slice });
    assert.equal(created.status, 201);
    assert.match(created.json.metadata.name, /^p3svc-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    const list = await request(s, 'GET', '/apis/discovery.k8s.io/v1/namespaces/wire/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dp3svc', { token: admin });
    assert.equal(list.json.kind, 'EndpointSliceList');
    assert.equal(list.json.apiVersion, 'discovery.k8s.io/v1');
    assert.deepEqual(list.json.items[0].endpoints, want.endpoints);
    assert.deepEqual(keysOf(list.json.items[0]), keysOf(want));
  });

  test('selectors: =, !=, in, notin, exists; fieldSelector on spec.nodeName and status.phase; unknown field refused', async () => {
    s.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sel' } });
    const mk = (name: string, labels: Record<string, string>, nodeName: string) => s.store.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'sel', labels }, spec: { containers: [{ name: 'c', image: 'x' }], nodeName } });
    mk('a', { app: 'web', tier: 'front' }, 'n1');
    mk('b', { app: 'web' }, 'n2');
    mk('c', { app: 'db' }, 'n1');
    const names = async (qs: string) => (await request(s, 'GET', `/api/v1/namespaces/sel/pods?${qs}`, { token: admin })).json.items.map((p: any) => p.metadata.name);
    assert.deepEqual(await names('labelSelector=app%3Dweb'), ['a', 'b']);
    assert.deepEqual(await names('labelSelector=app!%3Dweb'), ['c']);
    assert.deepEqual(await names(`labelSelector=${encodeURIComponent('app in (db, web),!tier')}`), ['b', 'c']);
    assert.deepEqual(await names(`labelSelector=${encodeURIComponent('app notin (web)')}`), ['c']);
    assert.deepEqual(await names('labelSelector=tier'), ['a']);
    assert.deepEqual(await names('fieldSelector=spec.nodeName%3Dn1'), ['a', 'c']);
    assert.deepEqual(await names('fieldSelector=status.phase%3DPending,metadata.name!%3Da'), ['b', 'c']);
    const bad = await request(s, 'GET', '/api/v1/namespaces/sel/pods?fieldSelector=spec.image%3Dx', { token: admin });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.reason, 'BadRequest');
    const paged = await request(s, 'GET', '/api/v1/namespaces/sel/pods?limit=1&labelSelector=app%3Dweb', { token: admin });
    assert.equal(paged.json.items.length, 1);
    assert.ok(paged.json.metadata.continue);
    assert.equal(paged.json.metadata.remainingItemCount, undefined, 'not known when a selector filters');
  });

  test('update: a stale resourceVersion is a 409 Conflict; generation follows spec only', async () => {
    const created = s.store.create({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'wire' }, spec: { selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'nginx' }] } } } });
    assert.equal(created.metadata.generation, 1);
    const next = structuredClone(created);
    next.spec.replicas = 3;
    const ok = await request(s, 'PUT', '/apis/apps/v1/namespaces/wire/deployments/web', { token: admin, body: next });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.metadata.generation, 2);
    const stale = await request(s, 'PUT', '/apis/apps/v1/namespaces/wire/deployments/web', { token: admin, body: next });
    assert.equal(stale.status, 409);
    assert.equal(stale.json.reason, 'Conflict');
    assert.equal(stale.json.message, 'Operation cannot be fulfilled on deployments.apps "web": the object has been modified; please apply your changes to the latest version and try again');
    assert.deepEqual(stale.json.details, { name: 'web', group: 'apps', kind: 'deployments' });
    const labelled = await request(s, 'PATCH', '/apis/apps/v1/namespaces/wire/deployments/web', { token: admin, body: { metadata: { labels: { x: 'y' } } }, contentType: 'application/merge-patch+json' });
    assert.equal(labelled.json.metadata.generation, 2, 'metadata changes do not bump generation');
    const mismatch = await request(s, 'POST', '/apis/apps/v1/namespaces/wire/deployments', { token: admin, body: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'bad' }, spec: { selector: { matchLabels: { app: 'a' } }, template: { metadata: { labels: { app: 'b' } }, spec: { containers: [{ name: 'c', image: 'x' }] } } } } });
    assert.equal(mismatch.status, 422);
    assert.equal(mismatch.json.details.causes[0].field, 'spec.template.metadata.labels');
  });

  test('patch types: JSON patch, strategic merge of containers by name, unsupported type 415', async () => {
    const jp = await request(s, 'PATCH', '/api/v1/namespaces/wire/pods/p1', { token: admin, body: [{ op: 'add', path: '/metadata/labels/version', value: 'v2' }], contentType: 'application/json-patch+json' });
    assert.equal(jp.status, 200);
    assert.equal(jp.json.metadata.labels.version, 'v2');
    const smp = await request(s, 'PATCH', '/apis/apps/v1/namespaces/wire/deployments/web', { token: admin, body: { spec: { template: { spec: { containers: [{ name: 'web', image: 'nginx:2' }] } } } }, contentType: 'application/strategic-merge-patch+json' });
    assert.equal(smp.status, 200);
    assert.equal(smp.json.spec.template.spec.containers.length, 1);
    assert.equal(smp.json.spec.template.spec.containers[0].image, 'nginx:2');
    assert.equal(smp.json.spec.template.spec.containers[0].terminationMessagePolicy, 'File', 'merged by name, not replaced');
    const weird = await request(s, 'PATCH', '/api/v1/namespaces/wire/pods/p1', { token: admin, body: {}, contentType: 'text/plain' });
    assert.equal(weird.status, 415);
  });

  test('delete: a scheduled pod is only marked (03), grace 0 removes it; others answer a Success Status', async () => {
    s.store.create(pod('gone'));
    const marked = await request(s, 'DELETE', '/api/v1/namespaces/wire/pods/gone', { token: admin });
    assert.equal(marked.status, 200);
    assert.ok(marked.json.metadata.deletionTimestamp);
    assert.equal(marked.json.metadata.deletionGracePeriodSeconds, 30);
    assert.equal(marked.json.metadata.generation, 2);
    const removed = await request(s, 'DELETE', '/api/v1/namespaces/wire/pods/gone?gracePeriodSeconds=0', { token: admin });
    assert.equal(removed.status, 200);
    assert.equal(removed.json.kind, 'Pod');
    assert.equal((await request(s, 'GET', '/api/v1/namespaces/wire/pods/gone', { token: admin })).status, 404);
    const cm = await request(s, 'DELETE', '/api/v1/namespaces/wire/configmaps/cfg', { token: admin });
    assert.equal(cm.json.kind, 'Status');
    assert.equal(cm.json.status, 'Success');
    assert.deepEqual(keysOf(cm.json.details), ['kind', 'name', 'uid']);
  });

  test('namespace deletion: Terminating, then every object in it is deleted, then the namespace', async () => {
    s.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'doomed' } });
    s.store.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'doomed' } });
    const w = watch(s, `/api/v1/namespaces/doomed/configmaps?watch=1&resourceVersion=${s.store.revision}`, admin);
    assert.equal(await w.status, 200);
    const r = await request(s, 'DELETE', '/api/v1/namespaces/doomed', { token: admin });
    assert.equal(r.json.status.phase, 'Terminating');
    await w.waitFor(1);
    assert.equal(w.events[0].type, 'DELETED');
    w.abort();
    for (let i = 0; i < 50 && (await request(s, 'GET', '/api/v1/namespaces/doomed', { token: admin })).status !== 404; i++) await new Promise((res) => setTimeout(res, 10));
    assert.equal((await request(s, 'GET', '/api/v1/namespaces/doomed', { token: admin })).status, 404);
    const created = await request(s, 'POST', '/api/v1/namespaces/doomed/configmaps', { token: admin, body: { metadata: { name: 'x' } } });
    assert.equal(created.status, 404);
    assert.deepEqual(created.json.details, { name: 'doomed', kind: 'namespaces' });
  });

  test('08-like: names are validated with the real rules; generateName makes one', async () => {
    const r = await request(s, 'POST', '/api/v1/namespaces/wire/configmaps', { token: admin, body: { metadata: { name: 'UPPER' } } });
    assert.equal(r.status, 422);
    assert.equal(r.json.details.causes[0].field, 'metadata.name');
    assert.equal(r.json.details.kind, 'ConfigMap');
    const none = await request(s, 'POST', '/api/v1/namespaces/wire/configmaps', { token: admin, body: { metadata: {} } });
    assert.equal(none.status, 422);
    assert.equal(none.json.details.causes[0].message, 'Required value: name or generateName is required');
  });
});

describe('test API server: watches', () => {
  let s: TestApiServer;
  before(async () => {
    s = await startTestApiServer({ bookmarkIntervalMs: 0 });
    s.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'wire' } });
    s.store.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'sa1', namespace: 'wire' } });
    for (const n of ['p1', 'p2', 'p3']) s.store.create(pod(n));
  });
  after(async () => s.close());

  test('03: from a list resourceVersion: relabel, delete (marked), create, bookmark, end at timeoutSeconds', async () => {
    const list = await request(s, 'GET', '/api/v1/namespaces/wire/pods', { token: s.adminToken });
    const rv = list.json.metadata.resourceVersion;
    const w = watch(s, `/api/v1/namespaces/wire/pods?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true&timeoutSeconds=1`, s.adminToken);
    assert.equal(await w.status, 200);
    const headers = await w.headers;
    const want = recorded('03-watch-pods');
    assert.equal(headers['content-type'], want.headers['content-type'][0]);
    assert.equal(headers['transfer-encoding'], 'chunked');
    await request(s, 'PATCH', '/api/v1/namespaces/wire/pods/p1', { token: s.adminToken, body: { metadata: { labels: { version: 'v2' } } }, contentType: 'application/merge-patch+json' });
    await request(s, 'DELETE', '/api/v1/namespaces/wire/pods/p2', { token: s.adminToken });
    s.store.create(pod('p4'));
    await w.waitFor(3);
    s.faults.sendBookmarks();
    assert.equal(await w.ended, 'end', 'the server ends the stream at timeoutSeconds');
    const recordedEv = recordedEvents('03-watch-pods');
    assert.deepEqual(w.events.map((e) => e.type), recordedEv.map((e) => e.type));
    assert.ok(w.events[1].object.metadata.deletionTimestamp);
    assert.deepEqual(keysOf(w.events[0].object), keysOf(recordedEv[0].object));
    const bm = w.events[3].object;
    const wantBm = recordedEv[3].object;
    assert.deepEqual({ ...bm, metadata: {} }, { ...wantBm, metadata: {} });
    assert.deepEqual(keysOf(bm.metadata), keysOf(wantBm.metadata));
    assert.ok(Number(bm.metadata.resourceVersion) >= Number(w.events[2].object.metadata.resourceVersion));
  });

  test('18, 22: without a resourceVersion (and with sendInitialEvents) the current objects, then the initial-events-end bookmark', async () => {
    for (const path of ['/api/v1/namespaces?watch=1&allowWatchBookmarks=true&timeoutSeconds=1',
      '/api/v1/namespaces?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1']) {
      const w = watch(s, path, s.adminToken);
      await w.ended;
      const types = w.events.map((e) => e.type);
      const want = recordedEvents('18-watch-namespaces-short-timeout');
      assert.deepEqual(types, [...Array(types.length - 1).fill('ADDED'), 'BOOKMARK']);
      assert.deepEqual(w.events.filter((e) => e.type === 'ADDED').map((e) => e.object.metadata.name), ['default', 'kube-node-lease', 'kube-public', 'kube-system', 'wire']);
      const bm = w.events[w.events.length - 1].object;
      const wantBm = want[want.length - 1].object;
      assert.deepEqual({ ...bm, metadata: { ...bm.metadata, resourceVersion: 'x' } }, { ...wantBm, metadata: { ...wantBm.metadata, resourceVersion: 'x' } });
      assert.deepEqual(keysOf(w.events[0].object), keysOf(want[0].object));
    }
    const refused = await request(s, 'GET', '/api/v1/namespaces?watch=1&sendInitialEvents=true', { token: s.adminToken });
    assert.equal(refused.status, 422);
  });

  test('24: ADDED, MODIFIED, DELETED of services with their bookmarks', async () => {
    const w = watch(s, '/api/v1/namespaces/wire/services?watch=1&allowWatchBookmarks=true&timeoutSeconds=1', s.adminToken);
    assert.equal(await w.status, 200);
    await w.waitFor(1); // the initial-events-end bookmark
    s.store.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'p3svc', namespace: 'wire', labels: { app: 'p3svc' } }, spec: { ports: [{ name: '80-8080', port: 80, targetPort: 8080 }], selector: { app: 'p3svc' } } });
    await request(s, 'PATCH', '/api/v1/namespaces/wire/services/p3svc', { token: s.adminToken, body: { spec: { selector: { run: 'p3' } } }, contentType: 'application/merge-patch+json' });
    await request(s, 'DELETE', '/api/v1/namespaces/wire/services/p3svc', { token: s.adminToken });
    await w.waitFor(4);
    s.faults.sendBookmarks();
    await w.ended;
    const want = recordedEvents('24-watch-services');
    assert.deepEqual(w.events.map((e) => e.type), ['BOOKMARK', 'ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK']);
    const added = w.events[1].object;
    const wantAdded = want.find((e) => e.type === 'ADDED' && e.object.metadata.name === 'p3svc')!.object;
    assert.deepEqual(keysOf(added.spec), keysOf(wantAdded.spec));
    assert.deepEqual(added.status, wantAdded.status);
    assert.match(added.spec.clusterIP, /^10\.96\./);
    const del = w.events[3].object;
    assert.ok(Number(del.metadata.resourceVersion) > Number(w.events[2].object.metadata.resourceVersion), 'DELETED carries the deletion revision');
    const wantBm = want.filter((e) => e.type === 'BOOKMARK')[1].object;
    assert.deepEqual({ ...w.events[4].object, metadata: {} }, { ...wantBm, metadata: {} });
  });

  test('a labelSelector watch: an object that stops matching is DELETED, one that starts matching ADDED', async () => {
    const rv = s.store.revision;
    const w = watch(s, `/api/v1/namespaces/wire/pods?watch=1&resourceVersion=${rv}&labelSelector=tier%3Dfront&timeoutSeconds=1`, s.adminToken);
    assert.equal(await w.status, 200);
    await request(s, 'PATCH', '/api/v1/namespaces/wire/pods/p3', { token: s.adminToken, body: { metadata: { labels: { tier: 'front' } } }, contentType: 'application/merge-patch+json' });
    await request(s, 'PATCH', '/api/v1/namespaces/wire/pods/p3', { token: s.adminToken, body: { metadata: { labels: { tier: null } } }, contentType: 'application/merge-patch+json' });
    await w.ended;
    assert.deepEqual(w.events.map((e) => e.type), ['ADDED', 'DELETED']);
    assert.equal(w.events[1].object.metadata.labels.tier, 'front', 'the DELETED object is the last matching state');
  });

  test('04, 05: after compaction a watch from an old resourceVersion gets one ERROR 410 event, an exact list a 410', async () => {
    const old = s.store.revision;
    s.store.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'later', namespace: 'wire' } });
    s.faults.compact();
    const w = watch(s, `/api/v1/namespaces/wire/pods?watch=1&resourceVersion=${old - 1}`, s.adminToken);
    assert.equal(await w.status, 200);
    await w.ended;
    const want = recordedEvents('04-watch-too-old-rv-410');
    assert.equal(w.events.length, 1);
    assert.equal(w.events[0].type, 'ERROR');
    assert.deepEqual(keysOf(w.events[0].object), keysOf(want[0].object));
    assert.deepEqual({ ...w.events[0].object, message: '' }, { ...want[0].object, message: '' });
    assert.match(w.events[0].object.message, /^too old resource version: \d+ \(\d+\)$/);

    const list = await request(s, 'GET', `/api/v1/namespaces/wire/pods?resourceVersion=${old - 1}&resourceVersionMatch=Exact`, { token: s.adminToken });
    assert.equal(list.status, 410);
    assert.deepEqual(list.json, recordedJson('05-list-too-old-rv-410'));
  });

  test('an exact list at a retained revision shows the objects as they were', async () => {
    const before = s.store.revision;
    s.store.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'newer', namespace: 'wire' } });
    const then = await request(s, 'GET', `/api/v1/namespaces/wire/configmaps?resourceVersion=${before}&resourceVersionMatch=Exact`, { token: s.adminToken });
    const now = await request(s, 'GET', '/api/v1/namespaces/wire/configmaps', { token: s.adminToken });
    assert.equal(then.json.metadata.resourceVersion, String(before));
    assert.ok(!then.json.items.some((c: any) => c.metadata.name === 'newer'));
    assert.ok(now.json.items.some((c: any) => c.metadata.name === 'newer'));
  });
});

describe('test API server: custom resources (25-28)', () => {
  let s: TestApiServer;
  before(async () => {
    s = await startTestApiServer({ bookmarkIntervalMs: 0 });
    s.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'wire' } });
  });
  after(async () => s.close());

  const widgets = '/apis/example.com/v1/namespaces/wire/widgets';

  test('a CRD is Established, then served and discoverable; objects are validated, pruned, refused under Strict', async () => {
    assert.equal((await request(s, 'GET', widgets, { token: s.adminToken })).status, 404);
    const crd = YAML.parse(recordedFile('25-widget-crd.yaml'));
    const created = await request(s, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', { token: s.adminToken, body: crd });
    assert.equal(created.status, 201);
    let established = false;
    for (let i = 0; i < 100 && !established; i++) {
      const r = await request(s, 'GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com', { token: s.adminToken });
      established = (r.json.status.conditions ?? []).some((c: any) => c.type === 'Established' && c.status === 'True');
      if (!established) await new Promise((res) => setTimeout(res, 10));
    }
    assert.ok(established);
    const disc = await request(s, 'GET', '/apis/example.com/v1', { token: s.adminToken });
    assert.equal(disc.json.resources[0].name, 'widgets');

    const invalid = await request(s, 'POST', widgets, { token: s.adminToken, body: { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' }, spec: { mode: 'MAYBE' } } });
    assert.equal(invalid.status, 422);
    assert.deepEqual(invalid.json, recordedJson('25-crd-invalid-422'));

    const unknown = { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w3' }, spec: { mode: 'ALLOW', sources: [{ principal: 'x' }] } };
    const strict = await request(s, 'POST', `${widgets}?fieldValidation=Strict`, { token: s.adminToken, body: unknown });
    const wantStrict = recorded('26-crd-unknown-field-strict-422');
    assert.equal(strict.status, wantStrict.status);
    assert.deepEqual(strict.json, JSON.parse(wantStrict.body));

    const pruned = await request(s, 'POST', widgets, { token: s.adminToken, body: unknown });
    const wantPruned = recorded('27-crd-unknown-field-default-pruned');
    assert.equal(pruned.status, 201);
    assert.equal(pruned.headers.warning, wantPruned.headers.warning[0]);
    assert.deepEqual(pruned.json.spec, JSON.parse(wantPruned.body).spec);
    assert.deepEqual(keysOf(pruned.json), keysOf(JSON.parse(wantPruned.body)));
    assert.equal(pruned.json.metadata.generation, 1);

    const list = await request(s, 'GET', widgets, { token: s.adminToken });
    assert.equal(list.json.kind, 'WidgetList');
    assert.equal(list.json.items[0].kind, 'Widget', 'custom resource list items keep kind');

    const typed = await request(s, 'POST', widgets, { token: s.adminToken, body: { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w5' }, spec: { mode: 'DENY', min: 'one' } } });
    assert.equal(typed.status, 422);
    assert.equal(typed.json.details.causes[0].field, 'spec.min');
    assert.equal(typed.json.details.causes[0].reason, 'FieldValueTypeInvalid');
    const missing = await request(s, 'POST', widgets, { token: s.adminToken, body: { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w6' }, spec: {} } });
    assert.equal(missing.json.details.causes[0].field, 'spec.mode');
    assert.equal(missing.json.details.causes[0].reason, 'FieldValueRequired');
  });

  test('a structural-schema violation refuses the CRD; deleting a CRD deletes its objects and stops serving it', async () => {
    const bad = YAML.parse(recordedFile('25-widget-crd.yaml'));
    bad.metadata.name = 'gadgets.example.com';
    bad.spec.names = { plural: 'gadgets', singular: 'gadget', kind: 'Gadget' };
    bad.spec.versions[0].schema.openAPIV3Schema.properties.spec.additionalProperties = false;
    const r = await request(s, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', { token: s.adminToken, body: bad });
    assert.equal(r.status, 422);
    assert.match(r.json.message, /additionalProperties and properties are mutual exclusive/);

    const w = watch(s, `${widgets}?watch=1&resourceVersion=${s.store.revision}`, s.adminToken);
    assert.equal(await w.status, 200);
    await request(s, 'DELETE', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com', { token: s.adminToken });
    await w.waitFor(1);
    assert.equal(w.events[0].type, 'DELETED');
    w.abort();
    for (let i = 0; i < 50 && (await request(s, 'GET', widgets, { token: s.adminToken })).status !== 404; i++) await new Promise((res) => setTimeout(res, 10));
    const gone = await request(s, 'GET', widgets, { token: s.adminToken });
    assert.equal(gone.status, 404);
    assert.equal(gone.text, '404 page not found\n');
  });
});

describe('test API server: fault injection', () => {
  let s: TestApiServer;
  before(async () => {
    s = await startTestApiServer({ bookmarkIntervalMs: 0, users: [{ token: 'reader', username: 'reader', rules: [{ verbs: ['get', 'list', 'watch'], apiGroups: [''], resources: ['pods'] }] }] });
  });
  after(async () => s.close());

  test('failNext: 429 with Retry-After, then 500, then normal again', async () => {
    s.faults.failNext({ resource: 'pods', count: 1, code: 429, retryAfterSeconds: 2 });
    s.faults.failNext({ resource: 'pods', count: 1, code: 500 });
    const a = await request(s, 'GET', '/api/v1/pods', { token: s.adminToken });
    assert.equal(a.status, 429);
    assert.equal(a.headers['retry-after'], '2');
    assert.equal(a.json.reason, 'TooManyRequests');
    assert.equal(a.json.details.retryAfterSeconds, 2);
    const b = await request(s, 'GET', '/api/v1/pods', { token: s.adminToken });
    assert.equal(b.status, 500);
    assert.equal(b.json.reason, 'InternalError');
    assert.equal((await request(s, 'GET', '/api/v1/pods', { token: s.adminToken })).status, 200);
  });

  test('a user limited by rules gets 403 beyond them', async () => {
    assert.equal((await request(s, 'GET', '/api/v1/pods', { token: 'reader' })).status, 200);
    const r = await request(s, 'GET', '/api/v1/namespaces/default/services', { token: 'reader' });
    assert.equal(r.status, 403);
    assert.equal(r.json.message, 'services is forbidden: User "reader" cannot list resource "services" in API group "" in the namespace "default"');
  });

  test('closeWatches ends open watches; goAway refuses connections, drops watches, and comes back on the same port', async () => {
    const w = watch(s, '/api/v1/pods?watch=1', s.adminToken);
    assert.equal(await w.status, 200);
    assert.equal(s.faults.closeWatches(), 1);
    assert.equal(await w.ended, 'end');

    const w2 = watch(s, '/api/v1/pods?watch=1', s.adminToken);
    assert.equal(await w2.status, 200);
    const port = s.port;
    const away = s.faults.goAway(300);
    assert.equal(await w2.ended, 'error', 'the connection drops, the body never ends cleanly');
    await new Promise((r) => setTimeout(r, 50));
    await assert.rejects(request(s, 'GET', '/version'), /ECONNREFUSED/);
    await away;
    assert.equal(s.port, port);
    const v = await request(s, 'GET', '/version');
    assert.equal(v.status, 200);
    assert.equal(v.json.gitVersion, 'v1.35.0');
  });
});
