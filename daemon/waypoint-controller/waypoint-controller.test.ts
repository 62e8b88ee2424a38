// The waypoint controller against the test API server (real wire format, RBAC enforced), with
// the RBAC the installer renders for it and nothing more: Gateways become waypoint objects and
// get their status, other classes are left alone, deleting a Gateway removes its objects,
// routes with Service parents get status.parents, the informers ride out an API server that
// goes away and compacts, and of two controllers sharing one Lease only the leader writes.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { startTestApiServer, type TestApiServer } from '../../test/k8s-apiserver/test-api-server';
import { gatewayApiCrd } from '../../test/k8s-apiserver/gateway-api-crds';
import { serviceAccounts } from '../../installer/manifests/rbac';
import { waypointControllerRbac, WAYPOINT_CONTROLLER_NAME } from '../../installer/manifests/waypoint-controller-rbac';
import { toPlain } from '../../installer/manifests/render';
import { defaultValues } from '../../installer/manifests/values';
import { WaypointController } from './waypoint-controller';
import { desiredWaypointObjects } from './gateway-objects';
import { keyMaster } from './caller-statement-keys';
import { parseTrustFile } from '../tunnel/caller-statement-trust';
import nacl from 'tweetnacl';
import type { KubeObject } from './kube-object';

const NS = 'nodemesh-system';
const GW_API = 'gateway.networking.k8s.io/v1';
const SA_USER = `system:serviceaccount:${NS}:nodemesh-identity`;
const B_USER = 'controller-b';
const CA_ROOT_PEM = '-----BEGIN CERTIFICATE-----\nMIIB (the mesh root)\n-----END CERTIFICATE-----\n';
const BINDING = 'nodemesh-waypoint:shop:waypoint';
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

let s: TestApiServer;
const controllers: WaypointController[] = [];

async function until<T>(what: string, f: () => T | undefined | false, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const get = (apiVersion: string, kind: string, name: string, ns?: string): KubeObject | undefined => {
  try {
    return s.store.get(apiVersion, kind, name, ns) as KubeObject;
  } catch {
    return undefined;
  }
};
const condition = (o: KubeObject | undefined, type: string) => (o?.status?.conditions ?? []).find((c: { type: string }) => c.type === type);
const gateway = (name: string, gatewayClassName: unknown) => s.store.create({
  apiVersion: GW_API, kind: 'Gateway', metadata: { name, namespace: 'shop' },
  spec: { gatewayClassName, listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
});
/** The public keys the node daemons read (nodemesh-system/nodemesh-waypoint-keys). */
const keysOf = (): Map<string, Uint8Array> => {
  const cm = get('v1', 'ConfigMap', 'nodemesh-waypoint-keys', NS) as unknown as { data?: Record<string, string> } | undefined;
  return cm?.data?.['caller-statement-keys.json'] ? parseTrustFile(cm.data['caller-statement-keys.json']) : new Map();
};
const writesBy = (user: string) => s.requests.filter((r) => r.user === user && r.method !== 'GET');

function controller(kubeconfig: string, identity: string): WaypointController {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const c = new WaypointController({
    kc, values: defaultValues(), log, leaseNamespace: NS, identity, caRootPem: CA_ROOT_PEM, keyMaster: keyMaster('the CA key (test)'),
    leaseDurationSeconds: 5, retryPeriodMs: 200, backoff: { initialMs: 100, maxMs: 1000 },
  });
  controllers.push(c);
  c.start();
  return c;
}

let a: WaypointController;

before(async () => {
  s = await startTestApiServer({ bookmarkIntervalMs: 200, crdEstablishDelayMs: 0, users: [{ token: 'token-b', username: B_USER }] });
  for (const ns of [NS, 'shop', 'other']) s.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  for (const [k, p, scope] of [['Gateway', 'gateways', 'Namespaced'], ['GatewayClass', 'gatewayclasses', 'Cluster'], ['HTTPRoute', 'httproutes', 'Namespaced'], ['GRPCRoute', 'grpcroutes', 'Namespaced']] as const) {
    s.store.create(gatewayApiCrd(k, p, scope) as never);
  }
  await until('Gateway API served', () => { try { s.store.list(GW_API, 'GRPCRoute'); return true; } catch { return false; } });
  const v = defaultValues();
  for (const o of toPlain([...serviceAccounts(v), ...waypointControllerRbac(v)])) s.store.apply(o as never);
  // The second controller gets the same roles as a user, so the test can tell its requests apart.
  s.store.create({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'controller-b' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: WAYPOINT_CONTROLLER_NAME }, subjects: [{ kind: 'User', name: B_USER }] });
  s.store.create({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'controller-b', namespace: NS },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: WAYPOINT_CONTROLLER_NAME }, subjects: [{ kind: 'User', name: B_USER }] });
  s.store.create({ apiVersion: GW_API, kind: 'GatewayClass', metadata: { name: 'nodemesh-waypoint' }, spec: { controllerName: 'nodemesh.io/waypoint-controller' } });
  a = controller(s.writeKubeconfig(s.store.issueToken(NS, 'nodemesh-identity'), 'identity'), 'controller-a');
  await until('controller A leads', () => a.isLeader());
});

after(async () => {
  for (const c of controllers) await c.stop();
  await s?.close();
});

test('a nodemesh-waypoint Gateway becomes a Deployment, Service and ServiceAccount, then Programmed with the Service address', async () => {
  gateway('waypoint', 'nodemesh-waypoint');
  const gw = get(GW_API, 'Gateway', 'waypoint', 'shop')!;
  const objs = await until('waypoint objects', () => {
    const o = [get('v1', 'ServiceAccount', 'waypoint', 'shop'), get('apps/v1', 'Deployment', 'waypoint', 'shop'), get('v1', 'Service', 'waypoint', 'shop')];
    return o.every(Boolean) && o as KubeObject[];
  });
  for (const o of objs) {
    assert.deepEqual(o.metadata.ownerReferences, [{ apiVersion: GW_API, kind: 'Gateway', name: 'waypoint', uid: gw.metadata.uid, controller: true }]);
    assert.ok((o as unknown as { metadata: { managedFields: { manager: string }[] } }).metadata.managedFields.some((f) => f.manager === 'nodemesh-waypoint-controller'));
  }
  assert.equal(objs[1].spec.template.spec.serviceAccountName, 'waypoint');
  // The CA root beside the waypoint (owned like the rest), and the binding that lets its
  // ServiceAccount read what it watches (cluster-scoped: labelled with the Gateway instead).
  const root = await until('CA root copy', () => get('v1', 'ConfigMap', 'waypoint-ca-root', 'shop'));
  assert.equal((root as unknown as { data: Record<string, string> }).data['ca.crt'], CA_ROOT_PEM);
  assert.equal(root.metadata.ownerReferences?.[0]?.uid, gw.metadata.uid);
  const binding = await until('RBAC binding', () => get('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', BINDING));
  assert.deepEqual((binding as unknown as { subjects: unknown[] }).subjects, [{ kind: 'ServiceAccount', name: 'waypoint', namespace: 'shop' }]);
  assert.deepEqual((binding as unknown as { roleRef: unknown }).roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'nodemesh-waypoint' });
  assert.equal(binding.metadata.labels?.['nodemesh.io/gateway-namespace'], 'shop');
  // Its caller-statement key: the private half in a Secret beside it that only its Deployment
  // mounts, the public half published for the node daemons under its SPIFFE ID.
  const secret = await until('signing key Secret', () => get('v1', 'Secret', 'waypoint-caller-statement-key', 'shop')) as unknown as KubeObject & { data: Record<string, string> };
  assert.equal(secret.metadata.ownerReferences?.[0]?.uid, gw.metadata.uid);
  const secretKey = new Uint8Array(Buffer.from(Buffer.from(secret.data.key, 'base64').toString(), 'base64url'));
  assert.equal(secretKey.length, 64);
  const published = await until('published key', () => keysOf().get('spiffe://cluster.local/ns/shop/sa/waypoint'));
  assert.deepEqual(published, nacl.sign.keyPair.fromSecretKey(secretKey).publicKey, 'the published key is the Secret\'s');
  const pod = objs[1].spec.template.spec;
  assert.deepEqual(pod.volumes.filter((v: { secret?: unknown }) => v.secret).map((v: { secret: { secretName: string } }) => v.secret.secretName), ['waypoint-caller-statement-key']);
  assert.ok(pod.containers[0].env.some((e: { name: string; value: string }) => e.name === 'NODEMESH_WAYPOINT_SIGNING_KEY_FILE' && e.value.endsWith('/key')));
  assert.ok(objs[1].spec.template.metadata.annotations['nodemesh.io/caller-statement-key'], 'a new key rolls the waypoint');
  await until('GatewayClass accepted', () => condition(get(GW_API, 'GatewayClass', 'nodemesh-waypoint'), 'Accepted')?.status === 'True');
  const pending = await until('Programmed=False', () => condition(get(GW_API, 'Gateway', 'waypoint', 'shop'), 'Programmed'));
  assert.deepEqual([pending.status, pending.reason], ['False', 'Pending']);
  assert.deepEqual([condition(get(GW_API, 'Gateway', 'waypoint', 'shop'), 'Accepted')?.status, condition(get(GW_API, 'Gateway', 'waypoint', 'shop'), 'Accepted')?.reason], ['True', 'Accepted']);

  // What the Deployment controller would write once the pod is ready.
  s.store.patchStatus('apps/v1', 'Deployment', 'waypoint', 'shop', { replicas: 1, readyReplicas: 1, availableReplicas: 1 });
  const ready = await until('Programmed=True', () => {
    const g = get(GW_API, 'Gateway', 'waypoint', 'shop');
    return condition(g, 'Programmed')?.status === 'True' && g;
  });
  assert.equal(condition(ready, 'Programmed').reason, 'Programmed');
  assert.equal(condition(ready, 'Programmed').observedGeneration, gw.metadata.generation);
  assert.deepEqual(ready.status.addresses, [{ type: 'IPAddress', value: objs[2].spec.clusterIP }]);
  assert.deepEqual(ready.status.listeners.map((l: { name: string; conditions: { type: string; status: string }[] }) => [l.name, l.conditions.map((c) => `${c.type}=${c.status}`)]),
    [['mesh', ['Accepted=True', 'Programmed=True', 'ResolvedRefs=True']]]);
});

test('a Gateway of another class or without a class gets nothing', async () => {
  const before = { other: a.stats.otherClassGateways, malformed: a.stats.malformedObjects };
  gateway('public', 'example-gateway');
  gateway('classless', undefined);
  await until('both seen', () => a.stats.otherClassGateways > before.other && a.stats.malformedObjects > before.malformed);
  for (const name of ['public', 'classless']) {
    assert.equal(get('apps/v1', 'Deployment', name, 'shop'), undefined);
    assert.equal(get('v1', 'Service', name, 'shop'), undefined);
    assert.equal(get('v1', 'ServiceAccount', name, 'shop'), undefined);
    assert.equal(get(GW_API, 'Gateway', name, 'shop')?.status?.conditions, undefined);
  }
});

test('routes with Service parents: Accepted/ResolvedRefs with a waypoint, NoMatchingParent without', async () => {
  s.store.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'nodemesh.io/use-waypoint': 'waypoint' } } } as never);
  for (const [ns, name] of [['shop', 'api'], ['shop', 'api-v1'], ['other', 'api'], ['other', 'api-v1']]) {
    s.store.create({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec: { ports: [{ port: 80 }] } });
  }
  const route = (kind: string, ns: string) => s.store.create({
    apiVersion: GW_API, kind, metadata: { name: 'api', namespace: ns },
    spec: { parentRefs: [{ group: '', kind: 'Service', name: 'api', port: 80 }], rules: [{ backendRefs: [{ name: 'api-v1', port: 80 }] }] },
  });
  route('HTTPRoute', 'shop');
  route('GRPCRoute', 'shop');
  route('HTTPRoute', 'other');
  const parentsOf = (kind: string, ns: string) => get(GW_API, kind, 'api', ns)?.status?.parents;
  for (const kind of ['HTTPRoute', 'GRPCRoute']) {
    const [p] = await until(`${kind} status`, () => parentsOf(kind, 'shop'));
    assert.equal(p.controllerName, 'nodemesh.io/waypoint-controller');
    assert.deepEqual(p.parentRef, { group: '', kind: 'Service', name: 'api', port: 80 });
    assert.deepEqual(p.conditions.map((c: { type: string; status: string; reason: string }) => [c.type, c.status, c.reason]), [['Accepted', 'True', 'Accepted'], ['ResolvedRefs', 'True', 'ResolvedRefs']]);
  }
  const [none] = await until('route without a waypoint', () => parentsOf('HTTPRoute', 'other'));
  assert.deepEqual(none.conditions.map((c: { type: string; status: string; reason: string }) => [c.type, c.status, c.reason]), [['Accepted', 'False', 'NoMatchingParent'], ['ResolvedRefs', 'True', 'ResolvedRefs']]);
  assert.match(none.conditions[0].message, /has no waypoint/);
});

test('the API server going away and compacting history: the controller relists and catches up', async () => {
  const gatewayLists = () => s.requests.filter((r) => r.resource === 'gateways' && r.method === 'GET' && !/watch=/.test(r.query) && r.code === 200).length;
  const listsBefore = gatewayLists();
  const away = s.faults.goAway(1000); // every connection is dropped at once
  // A change the watches miss, then compaction: resuming a watch from before it is 410 Gone.
  gateway('after-outage', 'nodemesh-waypoint');
  s.faults.compact();
  await away;
  await until('objects for a Gateway made while away', () => get('apps/v1', 'Deployment', 'after-outage', 'shop'));
  assert.ok(gatewayLists() > listsBefore, 'relisted after 410');
  s.store.delete(GW_API, 'Gateway', 'after-outage', 'shop');
  await until('objects gone', () => !get('apps/v1', 'Deployment', 'after-outage', 'shop'));
});

test('deleting the Gateway deletes its waypoint objects', async () => {
  s.store.delete(GW_API, 'Gateway', 'waypoint', 'shop');
  await until('objects deleted', () => ['v1/Service', 'v1/ServiceAccount', 'apps/v1/Deployment']
    .every((k) => !get(k.slice(0, k.lastIndexOf('/')), k.slice(k.lastIndexOf('/') + 1), 'waypoint', 'shop')) &&
    !get('v1', 'ConfigMap', 'waypoint-ca-root', 'shop') && !get('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', BINDING) &&
    !get('v1', 'Secret', 'waypoint-caller-statement-key', 'shop') && !keysOf().has('spiffe://cluster.local/ns/shop/sa/waypoint'));
});

test('objects a Gateway left behind (deleted while no controller ran) are deleted; look-alikes it does not own stay', async () => {
  const [sa, , , , svc, crb] = desiredWaypointObjects(defaultValues(), { metadata: { name: 'ghost', namespace: 'shop', uid: 'gone-uid' } });
  s.store.create(sa as never);
  s.store.create(svc as never);
  s.store.create(crb as never);
  s.store.create({ ...sa, metadata: { ...sa.metadata, name: 'look-alike', ownerReferences: undefined } } as never);
  await until('left-overs deleted', () => !get('v1', 'ServiceAccount', 'ghost', 'shop') && !get('v1', 'Service', 'ghost', 'shop') &&
    !get('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', 'nodemesh-waypoint:shop:ghost'));
  assert.ok(get('v1', 'ServiceAccount', 'look-alike', 'shop'));
});

test('two controllers, one Lease: only the leader writes; the other takes over when it stops', async () => {
  const b = controller(s.writeKubeconfig('token-b', B_USER), 'controller-b');
  const leaseReadsByB = () => s.requests.filter((r) => r.user === B_USER && r.resource === 'leases').length;
  await until('B has campaigned a few times', () => leaseReadsByB() >= 5);
  gateway('second', 'nodemesh-waypoint');
  await until('A made the second waypoint', () => get('apps/v1', 'Deployment', 'second', 'shop'));
  s.store.patchStatus('apps/v1', 'Deployment', 'second', 'shop', { availableReplicas: 1 });
  await until('A programmed it', () => condition(get(GW_API, 'Gateway', 'second', 'shop'), 'Programmed')?.status === 'True');
  assert.equal(a.isLeader(), true);
  assert.equal(b.isLeader(), false);
  assert.deepEqual(writesBy(B_USER), [], 'the follower wrote nothing');
  assert.ok(writesBy(SA_USER).some((r) => r.resource === 'deployments'));
  assert.equal(b.stats.writes, 0);

  await a.stop();
  await until('B leads', () => b.isLeader());
  s.store.delete(GW_API, 'Gateway', 'second', 'shop');
  await until('B deleted the waypoint', () => !get('apps/v1', 'Deployment', 'second', 'shop'));
  assert.ok(writesBy(B_USER).some((r) => r.method === 'DELETE' && r.resource === 'deployments'));
  const lease = get('coordination.k8s.io/v1', 'Lease', WAYPOINT_CONTROLLER_NAME, NS)!;
  assert.equal(lease.spec.holderIdentity, 'controller-b');
  assert.equal(lease.spec.leaseTransitions, 1);
});
