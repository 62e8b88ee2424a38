import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseManifest, type ManifestEntry } from '../../daemon/state/manifest';
import type { AuthorizationPolicy, Namespace, PeerAuthentication, Pod, Service } from '../../daemon/state/resources';
import { firstDifference, planApply, planDelete, type ClusterView, type Policy } from './apply-plan';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { validateObject } from '../../daemon/schema';
import { loadManifests } from './manifests';

/** `local apply -f` of this text: the sandbox's real entry point for manifests. */
function loadManifestsFromText(yaml: string): unknown {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apply-'));
  try {
    fs.writeFileSync(path.join(dir, 'in.yaml'), yaml);
    return loadManifests([path.join(dir, 'in.yaml')]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function entries(yaml: string): ManifestEntry[] {
  const r = parseManifest(yaml, 'in.yaml', { sandbox: true });
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues));
  return r.entries;
}

const ns = (name: string, labels?: Record<string, string>): Namespace => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, uid: `ns-${name}`, ...(labels ? { labels } : {}) } });
const storedPod = (name: string, node: string, labels: Record<string, string> = {}): Pod => ({
  apiVersion: 'v1', kind: 'Pod',
  metadata: { name, namespace: 'shop', uid: `pod-${name}`, labels, annotations: { 'sandbox.nodemesh.io/netns': `/run/netns/x-${name}`, 'sandbox.nodemesh.io/cgroup': '/cg' } },
  spec: { nodeName: node, containers: [{ name: 'c', command: ['sleep', '1'] }] },
  status: { phase: 'Running', podIP: '10.244.1.2' },
});
const storedSvc = (name: string, ip: string): Service => ({
  apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop', uid: `svc-${name}` },
  spec: { selector: { app: name }, clusterIP: ip, clusterIPs: [ip], ports: [{ port: 80 }] },
});

const base = (over: Partial<ClusterView> = {}): ClusterView => ({
  namespaces: [ns('default'), ns('shop')], pods: [], services: [], policies: [], nodes: ['node-1', 'node-2'], serviceCIDR: '10.96.0.0/16', ...over,
});

const podYaml = (name: string, extra = '', labels = '{}') => `apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: shop, labels: ${labels} }
spec:
${extra}  containers: [{ name: c, command: ["sleep", "1"] }]
`;

test('new pods are spread over the least loaded nodes; spec.nodeName is honoured', () => {
  const plan = planApply(base({ pods: [storedPod('old', 'node-1')] }),
    entries([podYaml('a'), podYaml('b'), podYaml('c', '  nodeName: node-1\n'), podYaml('d')].join('---\n')));
  assert.deepEqual(plan.errors, []);
  assert.deepEqual(plan.pods.map((p) => [p.object.metadata.name, p.object.spec.nodeName, p.action]),
    [['a', 'node-2', 'created'], ['b', 'node-1', 'created'], ['c', 'node-1', 'created'], ['d', 'node-2', 'created']]);
  assert.ok(plan.pods.every((p) => typeof p.object.metadata.uid === 'string' && p.object.metadata.uid.length > 10));
});

test('an unknown node is an error naming the nodes', () => {
  const plan = planApply(base(), entries(podYaml('a', '  nodeName: node-9\n')));
  assert.equal(plan.errors.length, 1);
  assert.equal(plan.errors[0]!.code, 'NODEMESH_E_SANDBOX_UNKNOWN_NODE');
  assert.match(plan.errors[0]!.message, /in\.yaml: document 1 .*node-9.*node-1, node-2/);
});

test('a missing namespace is an error, unless the same apply creates it', () => {
  const yaml = podYaml('a').replace('namespace: shop', 'namespace: new');
  const plan = planApply(base(), entries(yaml));
  assert.equal(plan.errors[0]?.code, 'NODEMESH_E_SANDBOX_NAMESPACE_NOT_FOUND');
  const ok = planApply(base(), entries(`apiVersion: v1\nkind: Namespace\nmetadata: { name: new }\n---\n${yaml}`));
  assert.deepEqual(ok.errors, []);
  assert.equal(ok.namespaces[0]!.action, 'created');
});

test('relabelling a pod is "configured" and keeps uid, node, status and sandbox annotations', () => {
  const stored = storedPod('a', 'node-2', { app: 'a' });
  const plan = planApply(base({ pods: [stored] }), entries(podYaml('a', '', '{ app: a, nodemesh.io/dataplane-mode: none }')));
  assert.deepEqual(plan.errors, []);
  const p = plan.pods[0]!;
  assert.equal(p.action, 'configured');
  assert.equal(p.object.metadata.uid, 'pod-a');
  assert.equal(p.object.spec.nodeName, 'node-2');
  assert.equal(p.object.status?.podIP, '10.244.1.2');
  assert.equal(p.object.metadata.annotations?.['sandbox.nodemesh.io/netns'], '/run/netns/x-a');
  assert.equal(p.object.metadata.labels?.['nodemesh.io/dataplane-mode'], 'none');
});

test('re-applying the same pod is "unchanged"', () => {
  const plan = planApply(base({ pods: [storedPod('a', 'node-2', { app: 'a' })] }), entries(podYaml('a', '', '{ app: a }')));
  assert.deepEqual(plan.pods.map((p) => p.action), ['unchanged']);
});

test('changing a running pod\'s spec is refused, naming the field', () => {
  const plan = planApply(base({ pods: [storedPod('a', 'node-2')] }), entries(podYaml('a').replace('"sleep", "1"', '"sleep", "2"')));
  assert.equal(plan.errors[0]?.code, 'NODEMESH_E_SANDBOX_IMMUTABLE');
  assert.match(plan.errors[0]!.message, /Pod shop\/a: spec\.containers\[0\]\.command\[1\] cannot be changed/);
  assert.deepEqual(plan.pods, []);
});

test('services: allocation skips taken and requested addresses; existing VIPs are kept', () => {
  const yaml = ['web', 'api'].map((n) => `apiVersion: v1\nkind: Service\nmetadata: { name: ${n}, namespace: shop }\nspec: { selector: { app: ${n} }, ports: [{ port: 80 }] }\n`).join('---\n') +
    '---\napiVersion: v1\nkind: Service\nmetadata: { name: fixed, namespace: shop }\nspec: { clusterIP: 10.96.0.11, ports: [{ port: 80 }] }\n';
  const plan = planApply(base({ services: [storedSvc('web', '10.96.0.50'), storedSvc('x', '10.96.0.10')] }), entries(yaml));
  assert.deepEqual(plan.errors, []);
  assert.deepEqual(plan.services.map((s) => [s.object.metadata.name, s.object.spec.clusterIP, s.action]),
    [['web', '10.96.0.50', 'unchanged'], ['fixed', '10.96.0.11', 'created'], ['api', '10.96.0.12', 'created']]);
  assert.deepEqual(plan.services[2]!.object.spec.clusterIPs, ['10.96.0.12']);
});

test('services: a requested VIP owned by another service is a conflict; changing a VIP is refused', () => {
  const conflict = planApply(base({ services: [storedSvc('x', '10.96.0.10')] }),
    entries('apiVersion: v1\nkind: Service\nmetadata: { name: y, namespace: shop }\nspec: { clusterIP: 10.96.0.10, ports: [{ port: 80 }] }\n'));
  assert.equal(conflict.errors[0]?.code, 'NODEMESH_E_SANDBOX_IP_CONFLICT');
  assert.match(conflict.errors[0]!.message, /already allocated to Service shop\/x/);
  const change = planApply(base({ services: [storedSvc('x', '10.96.0.10')] }),
    entries('apiVersion: v1\nkind: Service\nmetadata: { name: x, namespace: shop }\nspec: { clusterIP: 10.96.0.20, ports: [{ port: 80 }] }\n'));
  assert.equal(change.errors[0]?.code, 'NODEMESH_E_SANDBOX_IMMUTABLE');
  assert.match(change.errors[0]!.message, /spec\.clusterIP/);
});

test('namespace relabel is "configured"; status in input is ignored', () => {
  const plan = planApply(base(), entries('apiVersion: v1\nkind: Namespace\nmetadata: { name: shop, labels: { nodemesh.io/dataplane-mode: ambient } }\nstatus: { phase: Active }\n'));
  assert.equal(plan.namespaces[0]!.action, 'configured');
  assert.equal((plan.namespaces[0]!.object as unknown as { status?: unknown }).status, undefined);
});

test('the same object in two files is reported', () => {
  const e = [...entries(podYaml('a')), ...entries(podYaml('a')).map((x) => ({ ...x, file: 'other.yaml' }))];
  const plan = planApply(base(), e);
  assert.equal(plan.errors[0]?.code, 'NODEMESH_E_SANDBOX_APPLY_REJECTED');
  assert.match(plan.errors[0]!.message, /other\.yaml.*also defined in in\.yaml/);
});

test('planDelete: a namespace takes its pods and services; missing objects are listed', () => {
  const view = base({ pods: [storedPod('a', 'node-1'), storedPod('b', 'node-2')], services: [storedSvc('web', '10.96.0.10')] });
  const plan = planDelete(view, entries('apiVersion: v1\nkind: Namespace\nmetadata: { name: shop }\n---\n' + podYaml('a') + '---\n' + podYaml('zz')));
  assert.deepEqual(plan.pods.map((p) => p.metadata.name), ['a', 'b']);
  assert.deepEqual(plan.services.map((s) => s.metadata.name), ['web']);
  assert.deepEqual(plan.namespaces.map((n) => n.metadata.name), ['shop']);
  assert.deepEqual(plan.notFound, ['Pod shop/zz']);
});

test('firstDifference', () => {
  assert.equal(firstDifference({ a: [1, 2] }, { a: [1, 2] }), undefined);
  assert.equal(firstDifference({ a: [1, 2] }, { a: [1, 3] }), 'a[1]');
  assert.equal(firstDifference({ a: 1, b: { c: 1 } }, { b: { c: 2 }, a: 1 }), 'b.c');
});

// --- policies ----------------------------------------------------------------------------

const apYaml = (name: string, namespace = 'shop', spec = 'spec: { action: DENY, rules: [{ from: [{ source: { namespaces: ["evil"] } }] }] }', labels = '{}') =>
  `apiVersion: security.nodemesh.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: { name: ${name}, namespace: ${namespace}, labels: ${labels} }\n${spec}\n`;
const paYaml = (name: string, namespace = 'shop', mode = 'STRICT') =>
  `apiVersion: security.nodemesh.io/v1alpha1\nkind: PeerAuthentication\nmetadata: { name: ${name}, namespace: ${namespace} }\nspec: { mtls: { mode: ${mode} } }\n`;

/** What the sandbox stored for an apply of `yaml` on an empty shop. */
function stored(yaml: string): Policy[] {
  const plan = planApply(base(), entries(yaml));
  assert.deepEqual(plan.errors, []);
  return plan.policies.map((p) => p.object);
}

test('policies: created with a uid and generation 1, in input order, next to other kinds', () => {
  const plan = planApply(base(), entries([apYaml('deny-evil'), podYaml('a'), paYaml('strict')].join('---\n')));
  assert.deepEqual(plan.errors, []);
  assert.deepEqual(plan.policies.map((p) => [p.object.kind, p.object.metadata.name, p.action, p.object.metadata.generation]),
    [['AuthorizationPolicy', 'deny-evil', 'created', 1], ['PeerAuthentication', 'strict', 'created', 1]]);
  assert.ok(plan.policies.every((p) => typeof p.object.metadata.uid === 'string' && p.object.metadata.uid.length > 10));
  assert.equal(plan.pods.length, 1);
});

test('policies: re-applying is "unchanged"; a spec change is "configured" with the next generation; a relabel keeps the generation', () => {
  const [ap] = stored(apYaml('deny-evil')) as [AuthorizationPolicy];
  const view = base({ policies: [ap] });
  const same = planApply(view, entries(apYaml('deny-evil')));
  assert.deepEqual(same.policies.map((p) => [p.action, p.object.metadata.uid, p.object.metadata.generation]), [['unchanged', ap.metadata.uid, 1]]);
  const changed = planApply(view, entries(apYaml('deny-evil', 'shop', 'spec: { action: DENY, rules: [{ from: [{ source: { namespaces: ["evil", "worse"] } }] }] }')));
  assert.deepEqual(changed.policies.map((p) => [p.action, p.object.metadata.uid, p.object.metadata.generation]), [['configured', ap.metadata.uid, 2]]);
  const relabelled = planApply(view, entries(apYaml('deny-evil', 'shop', undefined, '{ team: a }')));
  assert.deepEqual(relabelled.policies.map((p) => [p.action, p.object.metadata.generation]), [['configured', 1]]);
});

test('policies: the namespace must exist, or be created by the same apply', () => {
  const missing = planApply(base(), entries(apYaml('p', 'nowhere')));
  assert.equal(missing.errors[0]?.code, 'NODEMESH_E_SANDBOX_NAMESPACE_NOT_FOUND');
  assert.match(missing.errors[0]!.message, /AuthorizationPolicy nowhere\/p: namespace "nowhere" does not exist/);
  assert.deepEqual(missing.policies, []);
  const ok = planApply(base(), entries(`apiVersion: v1\nkind: Namespace\nmetadata: { name: nowhere }\n---\n${paYaml('p', 'nowhere')}`));
  assert.deepEqual(ok.errors, []);
  assert.equal(ok.policies[0]!.action, 'created');
});

test('policies: nodemesh-system is created implicitly, once, for policies only', () => {
  const plan = planApply(base(), entries([apYaml('mesh-deny', 'nodemesh-system'), paYaml('mesh-strict', 'nodemesh-system')].join('---\n')));
  assert.deepEqual(plan.errors, []);
  assert.deepEqual(plan.namespaces.map((n) => [n.object.metadata.name, n.action, n.implicit]), [['nodemesh-system', 'created', true]]);
  assert.ok(plan.namespaces[0]!.object.metadata.uid);
  assert.equal(plan.policies.length, 2);
  // Already there: nothing implicit.
  const there = planApply(base({ namespaces: [ns('default'), ns('nodemesh-system')] }), entries(apYaml('mesh-deny', 'nodemesh-system')));
  assert.deepEqual(there.namespaces, []);
  // A pod there is not a policy: the namespace must exist.
  const pod = planApply(base(), entries(podYaml('a').replace('namespace: shop', 'namespace: nodemesh-system')));
  assert.equal(pod.errors[0]?.code, 'NODEMESH_E_SANDBOX_NAMESPACE_NOT_FOUND');
});

test('policies: a policy without spec is stored with an empty spec', () => {
  const [ap] = stored(apYaml('deny-all', 'shop', ''));
  assert.deepEqual(ap!.spec, {});
});

test('policies: status in the input is dropped; two files with the same policy are reported', () => {
  const [pa] = stored(paYaml('strict') + 'status: { ok: true }\n') as [PeerAuthentication];
  assert.equal((pa as unknown as { status?: unknown }).status, undefined);
  const e = [...entries(paYaml('strict')), ...entries(paYaml('strict')).map((x) => ({ ...x, file: 'other.yaml' }))];
  assert.equal(planApply(base(), e).errors[0]?.code, 'NODEMESH_E_SANDBOX_APPLY_REJECTED');
});

test('planDelete: policies by name; a namespace takes its policies; missing policies are listed', () => {
  const policies = [...stored(apYaml('deny-evil')), ...stored(paYaml('strict')), ...stored(apYaml('mesh', 'nodemesh-system'))];
  const view = base({ namespaces: [ns('default'), ns('shop'), ns('nodemesh-system')], policies });
  const one = planDelete(view, entries(paYaml('strict') + '---\n' + apYaml('gone')));
  assert.deepEqual(one.policies.map((p) => `${p.kind} ${p.metadata.name}`), ['PeerAuthentication strict']);
  assert.deepEqual(one.notFound, ['AuthorizationPolicy shop/gone']);
  const wholeNs = planDelete(view, entries('apiVersion: v1\nkind: Namespace\nmetadata: { name: shop }\n'));
  assert.deepEqual(wholeNs.policies.map((p) => `${p.kind} ${p.metadata.namespace}/${p.metadata.name}`), ['AuthorizationPolicy shop/deny-evil', 'PeerAuthentication shop/strict']);
  assert.deepEqual(wholeNs.namespaces.map((n) => n.metadata.name), ['shop']);
});

// --- ordinary manifests: stored kinds and workloads ---------------------------------------

const deployment = (replicas: number, command = '["sleep", "1"]') => `apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: shop }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      serviceAccountName: web
      containers: [{ name: web, command: ${command} }]
`;

/** Applies a plan's result to a view, as cluster.ts would (pods Running). */
function applied(view: ClusterView, plan: ReturnType<typeof planApply>): ClusterView {
  const gone = new Set(plan.podDeletions.map((p) => p.metadata.name));
  const goneStored = new Set(plan.storedDeletions.map((o) => o.metadata.name));
  const others = new Map((view.others ?? []).filter((o) => !goneStored.has(o.metadata.name)).map((o) => [`${o.kind}/${o.metadata.name}`, o]));
  for (const s of plan.stored) others.set(`${s.object.kind}/${s.object.metadata.name}`, s.object);
  return {
    ...view,
    pods: [...view.pods.filter((p) => !gone.has(p.metadata.name)), ...plan.pods.filter((p) => p.action === 'created').map((p) => ({ ...p.object, status: { phase: 'Running' as const } }))],
    others: [...others.values()],
  };
}

test('a Deployment becomes a ReplicaSet and pods named as a ReplicaSet names them', () => {
  const plan = planApply(base(), entries(deployment(3)));
  assert.deepEqual(plan.errors, []);
  const rs = plan.stored.find((s) => s.object.kind === 'ReplicaSet')!.object;
  const hash = (rs.metadata.labels as Record<string, string>)['pod-template-hash']!;
  assert.match(hash, /^[bcdfghjklmnpqrstvwxz2456789]+$/);
  assert.equal(rs.metadata.name, `web-${hash}`);
  assert.equal(plan.pods.length, 3);
  for (const p of plan.pods) {
    assert.match(p.object.metadata.name, new RegExp(`^web-${hash}-[bcdfghjklmnpqrstvwxz2456789]{5}$`));
    assert.deepEqual(p.object.metadata.labels, { app: 'web', 'pod-template-hash': hash });
    assert.equal(p.object.spec.serviceAccountName, 'web');
    assert.deepEqual(p.object.spec.containers, [{ name: 'web', command: ['sleep', '1'] }]);
    const owner = (p.object.metadata as { ownerReferences?: { kind: string; name: string; uid: string; controller: boolean }[] }).ownerReferences!;
    assert.deepEqual(owner.map((o) => [o.kind, o.name, o.uid, o.controller]), [['ReplicaSet', rs.metadata.name, rs.metadata.uid, true]]);
    assert.ok(p.object.spec.nodeName);
  }
  assert.deepEqual(plan.notices, []);
});

test('re-apply scales down and up; a changed template replaces the pods; delete takes them all', () => {
  let view = applied(base(), planApply(base(), entries(deployment(3))));
  assert.equal(view.pods.length, 3);
  const same = planApply(view, entries(deployment(3)));
  assert.deepEqual([same.pods.length, same.podDeletions.length], [0, 0]);
  const down = planApply(view, entries(deployment(1)));
  assert.deepEqual([down.pods.length, down.podDeletions.length], [0, 2]);
  view = applied(view, down);
  assert.equal(view.pods.length, 1);
  const up = planApply(view, entries(deployment(2)));
  assert.deepEqual([up.pods.length, up.podDeletions.length], [1, 0]);
  view = applied(view, up);
  const changed = planApply(view, entries(deployment(2, '["sleep", "2"]')));
  assert.equal(changed.podDeletions.length, 2, 'the old template\'s pods go');
  assert.equal(changed.storedDeletions.length, 1, 'the old ReplicaSet goes');
  assert.equal(changed.pods.length, 2);
  assert.ok(changed.pods.every((p) => p.object.spec.containers[0]!.command![1] === '2'));
  view = applied(view, changed);
  const del = planDelete(view, entries(deployment(2)));
  assert.deepEqual(del.others.map((o) => o.kind).sort(), ['Deployment', 'ReplicaSet']);
  assert.equal(del.pods.length, 2);
});

test('ServiceAccount, ConfigMap, Secret and Gateway API kinds are stored; a CronJob is stored with one notice', () => {
  const plan = planApply(base(), entries(`apiVersion: v1
kind: ServiceAccount
metadata: { name: web, namespace: shop }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: settings, namespace: shop }
data: { mode: fast }
---
apiVersion: v1
kind: Secret
metadata: { name: creds, namespace: shop }
stringData: { token: x }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: r, namespace: shop }
spec: { parentRefs: [{ name: waypoint }] }
---
apiVersion: batch/v1
kind: CronJob
metadata: { name: nightly, namespace: shop }
spec:
  schedule: "0 3 * * *"
  jobTemplate: { spec: { template: { spec: { restartPolicy: Never, containers: [{ name: j, image: busybox }] } } } }
`));
  assert.deepEqual(plan.errors, []);
  assert.deepEqual(plan.stored.map((s) => [s.object.kind, s.action]), [['ServiceAccount', 'created'], ['ConfigMap', 'created'], ['Secret', 'created'], ['HTTPRoute', 'created'], ['CronJob', 'created']]);
  assert.deepEqual(plan.notices, ['cronjob.batch/shop/nightly: stored; the sandbox does not act on kind CronJob (a cluster would run its controller)']);
  const again = planApply(applied(base(), plan), entries('apiVersion: v1\nkind: ConfigMap\nmetadata: { name: settings, namespace: shop }\ndata: { mode: fast }\n'));
  assert.deepEqual(again.stored.map((s) => s.action), ['unchanged']);
});

test('a stored kind in a namespace that does not exist is refused like a pod', () => {
  const plan = planApply(base(), entries('apiVersion: v1\nkind: ConfigMap\nmetadata: { name: c, namespace: nowhere }\n'));
  assert.equal(plan.errors.length, 1);
  assert.match(plan.errors[0]!.message, /nowhere/);
});

test('a targetRefs policy to a Gateway is refused at apply time, saying why; to a Service it is planned', () => {
  const gw = planApply(base(), entries(`apiVersion: security.nodemesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: via-waypoint, namespace: shop }
spec:
  targetRefs: [{ kind: Gateway, group: gateway.networking.k8s.io, name: waypoint }]
`));
  assert.equal(gw.policies.length, 0);
  assert.equal(gw.errors.length, 1);
  assert.match(gw.errors[0]!.message, /needs a waypoint.*refused rather than stored and ignored/);
  const svc = planApply(base(), entries(`apiVersion: security.nodemesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: deny-svc, namespace: shop }
spec:
  targetRefs: [{ kind: Service, name: api }]
  action: DENY
  rules: [{ from: [{ source: { namespaces: ["loadgen"] } }] }]
`));
  assert.deepEqual(svc.errors, []);
  assert.equal(svc.policies.length, 1);
});

test('the sandbox refuses the invalid policies with the API server\'s field paths', () => {
  const policy = (spec: string) => `apiVersion: security.nodemesh.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: { name: p, namespace: shop }\nspec:\n${spec}`;
  const cases: [string, string, string][] = [
    ['unknown action', policy('  action: AUDIT\n'), 'spec.action'],
    ['principal: typo', policy('  rules: [{ from: [{ source: { principal: ["cluster.local/ns/shop/sa/web"] } }] }]\n'), 'spec.rules[0].from[0].source.principal'],
    ['bad ipBlock', policy('  rules: [{ from: [{ source: { ipBlocks: ["10.0.0.0/33"] } }] }]\n'), 'spec.rules[0].from[0].source.ipBlocks[0]'],
    ['selector and targetRefs', policy('  selector: { matchLabels: { app: a } }\n  targetRefs: [{ kind: Service, name: a }]\n'), 'spec'],
  ];
  for (const [name, yaml, path] of cases) {
    // the same path the schema module gives a real API server's client
    const schemaPath = validateObject(parse(yaml)).issues[0]?.path;
    assert.equal(schemaPath, path, name);
    const r = parseManifest(yaml, 'in.yaml', { sandbox: true });
    assert.equal(r.ok, false, name);
    if (!r.ok) assert.equal(r.issues[0]!.path, path, name);
    // and the sandbox's apply (loadManifests -> planApply) never sees it
    assert.throws(() => loadManifestsFromText(yaml), (e: Error) => e.message.includes(path), name);
  }
});
