// The whole waypoint (run-waypoint.ts, as main.ts wires it for NODEMESH_SOURCE=kube) on the
// Kubernetes source, against the test API server (real wire format, RBAC enforced), running as
// its own ServiceAccount with only the RBAC the installer and the controller give it: it sees
// an HTTPRoute and an AuthorizationPolicy created after it started and serves by them, through
// real HBONE destinations on loopback, vouching for the caller with the key the controller
// derives for it, which the destinations trust through the published key document.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import pino from 'pino';
import YAML from 'yaml';
import { startTestApiServer } from '../test/k8s-apiserver/test-api-server';
import { gatewayApiCrd } from '../test/k8s-apiserver/gateway-api-crds';
import { MeshCA } from '../daemon/identity/ca';
import { KubeHttp, loadKubeConfig } from '../daemon/sources/kube-client';
import { KubeSource } from '../daemon/sources/kube-source';
import { validateObject } from '../daemon/schema';
import { HboneClient } from '../daemon/tunnel/hbone-client';
import { Destination, LOOPBACK, closeServer, issueIdentity, portOf, startDestination, waitFor } from '../daemon/tunnel/hbone-test-kit';
import { toPlain } from '../installer/manifests/render';
import { defaultValues } from '../installer/manifests/values';
import { waypointClusterRole } from '../installer/manifests/waypoint-rbac';
import { waypointObjects } from '../installer/manifests/waypoint-objects';
import { loadWaypointConfig } from './config';
import { runWaypoint } from './run-waypoint';
import type { Snapshot } from '../daemon/state/snapshot';
import { TunnelSocket } from './tunnel-socket';
import { TunnelDuplex } from '../daemon/tunnel/h2/tunnel-duplex';
import { listenHttp, requestOver } from './waypoint-test-kit';
import { keyMaster, keysDocument, waypointKey } from '../daemon/waypoint-controller/caller-statement-keys';
import { CallerStatementVerifier, TRUST_FILE_NAME } from '../daemon/tunnel/caller-statement-trust';
import * as os from 'node:os';
import { WAYPOINT_KINDS } from './waypoint-kinds';
import { KubePolicyStatusWriter } from './kube-policy-status';

const REPO = path.resolve(__dirname, '..', '..');
const TD = 'cluster.local';
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const PODS = [{ name: 'api-v1-0', ip: '10.244.1.2', version: 'v1' }, { name: 'api-v2-0', ip: '10.244.2.2', version: 'v2' }];

test('waypoint on the Kubernetes source: serves by a route and a policy it learns from the API, with only its own RBAC', async (t) => {
  const api = await startTestApiServer({ bookmarkIntervalMs: 200, crdEstablishDelayMs: 0 });
  t.after(() => api.close());
  const { store } = api;
  for (const [k, p, scope] of [['Gateway', 'gateways', 'Namespaced'], ['HTTPRoute', 'httproutes', 'Namespaced'], ['GRPCRoute', 'grpcroutes', 'Namespaced']] as const) {
    store.create(gatewayApiCrd(k, p, scope) as never);
  }
  for (const f of ['authorizationpolicies.security.nodemesh.io.yaml', 'backendtrafficpolicies.policy.nodemesh.io.yaml', 'peerauthentications.security.nodemesh.io.yaml']) {
    store.create(YAML.parse(fs.readFileSync(path.join(REPO, 'installer', 'crds', f), 'utf8')));
  }
  await waitFor(() => { try { store.list('gateway.networking.k8s.io/v1', 'Gateway'); store.list('policy.nodemesh.io/v1alpha1', 'BackendTrafficPolicy'); return true; } catch { return false; } }, 5000, 'the CRDs served');
  store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'nodemesh.io/dataplane-mode': 'ambient', 'nodemesh.io/use-waypoint': 'waypoint' } } });
  const gw = store.create({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'waypoint', namespace: 'shop' },
    spec: { gatewayClassName: 'nodemesh-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] } }) as { metadata: { uid: string } };
  // What the installer and the controller make: the read-only ClusterRole, the waypoint's
  // ServiceAccount and its binding (the Deployment and Service are not needed here).
  const values = defaultValues();
  store.create(toPlain([waypointClusterRole(values)])[0] as never);
  for (const o of toPlain(waypointObjects(values, { name: 'waypoint', namespace: 'shop', uid: gw.metadata.uid }))) {
    if (o.kind === 'ServiceAccount' || o.kind === 'ClusterRoleBinding') store.create(o as never);
  }
  for (const p of PODS) {
    store.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: p.name, namespace: 'shop', labels: { app: 'api', version: p.version } },
      spec: { nodeName: 'node-1', serviceAccountName: `api-${p.version}`, containers: [{ name: 'app', image: 'registry.example/api:1', ports: [{ name: 'http', containerPort: 8080 }] }] } });
    store.patchStatus('v1', 'Pod', p.name, 'shop', { phase: 'Running', podIP: p.ip, podIPs: [{ ip: p.ip }], conditions: [{ type: 'Ready', status: 'True' }] });
  }
  const service = (name: string, clusterIP: string, selector: Record<string, string>) => store.create({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop' },
    spec: { selector, clusterIP, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } });
  service('api', '10.96.0.10', { app: 'api' });
  service('api-v2', '10.96.0.12', { version: 'v2' });
  const uidOf = (name: string) => (store.get('v1', 'Pod', name, 'shop') as { metadata: { uid: string } }).metadata.uid;
  const slice = (svc: string, pods: typeof PODS) => store.create({
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
    metadata: { name: `${svc}-abc12`, namespace: 'shop', labels: { 'kubernetes.io/service-name': svc } },
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: pods.map((p) => ({ addresses: [p.ip], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'node-1', targetRef: { kind: 'Pod', namespace: 'shop', name: p.name, uid: uidOf(p.name) } })),
  });
  slice('api', PODS);
  slice('api-v2', PODS.filter((p) => p.version === 'v2'));

  // The waypoint's caller-statement key as the controller derives it; the destinations read the
  // published document from the file beside their CA root, as the node daemons do.
  const key = waypointKey(keyMaster('the CA key (test)'), `spiffe://${TD}/ns/shop/sa/waypoint`, gw.metadata.uid);
  const trustDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodemesh-waypoint-kube-'));
  t.after(() => fs.rmSync(trustDir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(trustDir, TRUST_FILE_NAME), keysDocument(new Map([[`spiffe://${TD}/ns/shop/sa/waypoint`, key.publicKey]])));
  const verifier = new CallerStatementVerifier(path.join(trustDir, TRUST_FILE_NAME));
  const judged: string[] = [];

  // Apps behind real HBONE destinations; a pod IP is a name for one of them on loopback.
  const ca = await MeshCA.create({ trustDomain: TD });
  const hbonePorts = new Map<string, number>();
  const dsts: Destination[] = [];
  const apps: net.Server[] = [];
  t.after(async () => { for (const d of dsts) await d.stop(); for (const a of apps) await closeServer(a); });
  for (const p of PODS) {
    const app = await listenHttp((_req, res) => { res.writeHead(200, { 'x-version': p.version }); res.end(p.version); });
    apps.push(app);
    const id = await issueIdentity(ca, 'shop', `api-${p.version}`);
    const dst = await startDestination({
      identity: () => id, trustDomain: TD, podIPs: [p.ip], connectApp: () => net.connect({ host: LOOPBACK, port: portOf(app), allowHalfOpen: true }),
      authorize: (c) => {
        const who = verifier.principalFor(c);
        if (!who.ok) return { allow: false, reason: who.message };
        judged.push(who.principal);
        return { allow: true };
      },
    });
    dsts.push(dst);
    hbonePorts.set(p.ip, dst.hbonePort);
  }

  // The waypoint, configured as its Deployment configures it, with a kubeconfig holding its
  // ServiceAccount's token (in a pod: the mounted token).
  const token = store.issueToken('shop', 'waypoint');
  const cfg = { ...loadWaypointConfig({
    NODEMESH_SOURCE: 'kube', NODEMESH_KUBECONFIG: api.writeKubeconfig(token, 'waypoint'),
    NODEMESH_WAYPOINT_NAME: 'waypoint', NODEMESH_WAYPOINT_NAMESPACE: 'shop', NODEMESH_POD_IP: LOOPBACK, NODEMESH_WAYPOINT_READINESS_PORT: '1',
    NODEMESH_NODE_CREDENTIAL_FILE: '/unused', NODEMESH_CA_ROOT_FILE: '/unused', NODEMESH_TRUST_DOMAIN: TD,
  }), listenPort: 0, readinessPort: 0 };
  assert.equal(cfg.source.kind, 'kube');
  const http = new KubeHttp(loadKubeConfig((cfg.source as { connection: Parameters<typeof loadKubeConfig>[0] }).connection));
  const source = new KubeSource({
    http, log, validate: validateObject, kinds: WAYPOINT_KINDS,
    discoveryIntervalMs: 200, tuning: { backoff: { initialMs: 50, maxMs: 400 } },
  });
  const waypoint = await runWaypoint(cfg, {
    source, log, fetchIdentity: (id) => issueIdentity(ca, id.namespace, id.serviceAccount), signingKey: key.secretKey,
    onState: new KubePolicyStatusWriter(http.kc, { namespace: 'shop' }, log).onState,
    dial: (ip) => net.connect({ host: LOOPBACK, port: hbonePorts.get(ip) ?? 1 }),
  });
  t.after(() => waypoint.stop());
  // It read everything as its own ServiceAccount; nothing it asked was forbidden, and it never
  // asked for a kind it does not need.
  const asWaypoint = api.requests.filter((r) => r.user === 'system:serviceaccount:shop:waypoint');
  assert.ok(asWaypoint.length > 0);
  assert.deepEqual(asWaypoint.filter((r) => r.code === 403).map((r) => r.path), []);
  assert.ok(!asWaypoint.some((r) => r.path.includes('peerauthentications')), 'PeerAuthentication is not watched');
  assert.equal(waypoint.snapshot().services.get('shop/api')?.endpoints.length, 2);

  // Readiness for the kubelet: readiness and metrics only.
  const probe = await fetch(`http://${LOOPBACK}:${waypoint.readinessAddress!.port}/healthz/ready`);
  assert.equal(probe.status, 200);
  assert.equal((await fetch(`http://${LOOPBACK}:${waypoint.readinessAddress!.port}/debug/config`)).status, 404);

  const caller = await issueIdentity(ca, 'shop', 'web');
  const client = new HboneClient({ log });
  t.after(() => client.close({ force: true }));
  const get = async (p: string, headers: Record<string, string> = {}) => requestOver(new TunnelSocket(new TunnelDuplex(await client.connect({
    source: caller, target: { address: LOOPBACK, port: waypoint.hboneAddress.port }, authority: '10.96.0.10:80',
    expectedServerIds: [`spiffe://${TD}/ns/shop/sa/waypoint`], dial: () => net.connect({ host: LOOPBACK, port: waypoint.hboneAddress.port }),
  }))), p, { headers });

  // No route yet: the Service's endpoints, both versions.
  const before = new Set<string>();
  for (let i = 0; i < 20 && before.size < 2; i++) before.add((await get('/', { 'x-version': 'v2' })).body);
  assert.deepEqual([...before].sort(), ['v1', 'v2']);
  // The destinations judged the original caller, vouched for by the waypoint.
  assert.ok(judged.length > 0 && judged.every((j) => j === `spiffe://${TD}/ns/shop/sa/web`), JSON.stringify(judged));

  // A route created now: a header match always lands on v2.
  store.create({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'api-canary', namespace: 'shop' }, spec: {
    parentRefs: [{ group: '', kind: 'Service', name: 'api', port: 80 }],
    rules: [{ matches: [{ headers: [{ name: 'x-version', value: 'v2' }] }], backendRefs: [{ name: 'api-v2', port: 80 }] }],
  } });
  await waitFor(() => waypoint.routes().entries.some((e) => e.route.name === 'api-canary'), 10_000, 'the route at the waypoint');
  for (let i = 0; i < 10; i++) assert.equal((await get('/', { 'x-version': 'v2' })).body, 'v2');

  // A policy created now: L7 deny with the reason.
  store.create({ apiVersion: 'security.nodemesh.io/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'no-admin', namespace: 'shop' },
    spec: { targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }], action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }] } });
  await waitFor(() => waypoint.snapshot().authorizationPolicies.some((p) => p.metadata.name === 'no-admin'), 10_000, 'the policy at the waypoint');
  const denied = await get('/admin/users');
  assert.equal(denied.status, 403);
  assert.match(String(denied.headers['nodemesh-reason']), /denied by AuthorizationPolicy shop\/no-admin/);
  assert.equal((await get('/shop', { 'x-version': 'v2' })).body, 'v2');

  // A BackendTrafficPolicy: enforced (a 100% abort fault), and its status written back through
  // the API as the waypoint's own field manager, with the API's optimistic concurrency.
  const created = store.create({ apiVersion: 'policy.nodemesh.io/v1alpha1', kind: 'BackendTrafficPolicy', metadata: { name: 'abort-v2', namespace: 'shop' },
    spec: { targetRefs: [{ kind: 'Service', name: 'api' }], faultInjection: { abort: { httpStatus: 503, percentage: 100 } } } });
  await waitFor(() => waypoint.snapshot().backendTrafficPolicies.size === 1, 10_000, 'the traffic policy at the waypoint');
  const aborted = await get('/', { 'x-version': 'v2' });
  assert.equal(aborted.status, 503);
  assert.equal(aborted.headers['nodemesh-reason'], 'fault injected by BackendTrafficPolicy shop/abort-v2');
  const btp = () => store.get('policy.nodemesh.io/v1alpha1', 'BackendTrafficPolicy', 'abort-v2', 'shop') as unknown as
    { status?: { ancestors?: { ancestorRef: { name: string }; controllerName: string; conditions: { type: string; status: string }[] }[] }; metadata: { managedFields?: { manager: string; subresource?: string; operation: string }[] } };
  await waitFor(() => (btp().status?.ancestors ?? []).length > 0, 10_000, 'the policy status');
  const [anc] = btp().status!.ancestors!;
  assert.deepEqual([anc.ancestorRef.name, anc.conditions[0].type, anc.conditions[0].status], ['api', 'Accepted', 'True']);
  assert.ok(btp().metadata.managedFields?.some((f) => f.manager === 'nodemesh-waypoint' && f.subresource === 'status' && f.operation === 'Apply'), JSON.stringify(btp().metadata.managedFields));
  // Status computed from an older object (another writer was first): refused by the API (409),
  // not written over the newer status.
  const now = waypoint.snapshot();
  const stale = { ...now, backendTrafficPolicies: new Map([...now.backendTrafficPolicies].map(([k, p]) => [k, { ...p, metadata: { ...p.metadata, resourceVersion: created.metadata!.resourceVersion }, status: undefined }])) } as Snapshot;
  assert.deepEqual(await new KubePolicyStatusWriter(http.kc, { namespace: 'shop' }, log).write(stale, () => true, '2030-01-01T00:00:00Z'), []);
  assert.notEqual((btp().status!.ancestors![0].conditions[0] as unknown as { lastTransitionTime: string }).lastTransitionTime, '2030-01-01T00:00:00Z');
  assert.ok(api.requests.some((r) => r.path.endsWith('/backendtrafficpolicies/abort-v2/status') && r.code === 409), 'the stale apply was refused');
  store.delete('policy.nodemesh.io/v1alpha1', 'BackendTrafficPolicy', 'abort-v2', 'shop');
  await waitFor(() => waypoint.snapshot().backendTrafficPolicies.size === 0, 10_000, 'the traffic policy gone');

  // Deleted from the API: gone at the waypoint too.
  store.delete('security.nodemesh.io/v1alpha1', 'AuthorizationPolicy', 'no-admin', 'shop');
  await waitFor(() => waypoint.snapshot().authorizationPolicies.length === 0, 10_000, 'the policy gone');
  assert.equal((await get('/admin/users', { 'x-version': 'v2' })).body, 'v2');
  // Its own RBAC was enough for all of it.
  assert.deepEqual(api.requests.filter((r) => r.user === 'system:serviceaccount:shop:waypoint' && r.code === 403).map((r) => `${r.method} ${r.path}`), []);
});
