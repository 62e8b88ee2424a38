import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';
import { installModels, installObjects, toJson, toYaml } from './render';
import { waypointObjects } from './waypoint-objects';
import { uninstallDaemonSet } from './node-daemonset';
import { defaultValues, resolveValues } from './values';
import { crdFiles } from './crd-objects';
import { validateObject } from '../../daemon/schema/index';
import { NodemeshError } from '../errors';

test('every rendered object validates against the Kubernetes OpenAPI schemas (kubernetes-models) and the project schemas', () => {
  const v = defaultValues();
  const models = [...installModels(v), ...waypointObjects(v, { name: 'wp', namespace: 'shop', uid: '0b5d3c1e-1111-4c4c-9e9e-000000000001' }), uninstallDaemonSet(v)];
  for (const m of models) {
    const o = m.toJSON() as { kind: string; metadata: { name: string } };
    assert.doesNotThrow(() => m.validate(), `${o.kind}/${o.metadata.name}`);
    const r = validateObject(JSON.parse(JSON.stringify(o)));
    assert.deepEqual(r.issues, [], `${o.kind}/${o.metadata.name}: ${JSON.stringify(r.issues)}`);
  }
});

test('the install set: CRDs first (every file in installer/crds), then the namespace, workloads last', () => {
  const objs = installObjects(defaultValues());
  const crds = objs.filter((o) => o.kind === 'CustomResourceDefinition');
  assert.equal(crds.length, crdFiles().length);
  assert.ok(crds.length >= 2, 'the AuthorizationPolicy and PeerAuthentication CRDs');
  assert.deepEqual(objs.slice(0, crds.length), crds);
  assert.equal(objs[crds.length].kind, 'Namespace');
  assert.equal(objs[objs.length - 1].kind, 'DaemonSet');
  for (const o of objs) if (o.kind !== 'CustomResourceDefinition' && o.kind !== 'Namespace' && !o.kind.startsWith('Cluster')) assert.equal(o.metadata.namespace, 'nodemesh-system', `${o.kind}/${o.metadata.name}`);
});

test('the node DaemonSet: host access, probes, rollout, token audience, tolerations, priority', () => {
  const ds = installObjects(defaultValues()).find((o) => o.kind === 'DaemonSet') as never as {
    spec: { updateStrategy: { type: string; rollingUpdate: { maxUnavailable: number } }; template: { spec: Record<string, any> } };
  };
  const spec = ds.spec.template.spec;
  assert.equal(ds.spec.updateStrategy.type, 'RollingUpdate');
  assert.equal(ds.spec.updateStrategy.rollingUpdate.maxUnavailable, 1);
  assert.equal(spec.hostPID, true);
  assert.equal(spec.priorityClassName, 'system-node-critical');
  assert.deepEqual(spec.tolerations, [{ operator: 'Exists' }]);
  const c = spec.containers[0];
  assert.deepEqual(c.readinessProbe.httpGet, { path: '/healthz/ready', port: 15021 });
  assert.equal(c.securityContext.privileged, false);
  assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
  assert.ok(!c.securityContext.capabilities.add.includes('NET_RAW'));
  assert.ok(c.resources.requests && c.resources.limits);
  const env = Object.fromEntries(c.env.map((e: any) => [e.name, e]));
  assert.deepEqual(env.NODEMESH_NODE_NAME.valueFrom, { fieldRef: { apiVersion: 'v1', fieldPath: 'spec.nodeName' } });
  const hostPaths = spec.volumes.filter((v: any) => v.hostPath).map((v: any) => v.hostPath.path).sort();
  assert.deepEqual(hostPaths, ['/proc', '/sys/fs/bpf', '/sys/fs/cgroup']);
  const token = spec.volumes.find((v: any) => v.projected).projected.sources[0].serviceAccountToken;
  assert.equal(token.audience, 'nodemesh-identity');
  assert.equal(env.NODEMESH_NODE_CREDENTIAL_FILE.value.endsWith(`/${token.path}`), true);
});

test('the CA Secret is rendered empty: no key material in manifest output', () => {
  const objs = installObjects(defaultValues());
  const secret = objs.find((o) => o.kind === 'Secret')!;
  assert.equal(secret.data, undefined);
  assert.equal(secret.stringData, undefined);
  assert.doesNotMatch(toYaml(objs), /PRIVATE KEY/);
});

test('yaml and json output hold the same objects', () => {
  const objs = installObjects(defaultValues());
  const fromYaml = parseAllDocuments(toYaml(objs)).map((d) => d.toJS());
  assert.deepEqual(fromYaml, objs);
  assert.deepEqual(JSON.parse(toJson(objs)).items, objs);
});

test('values: flags override defaults; a bad value names its flag', () => {
  const v = resolveValues({ version: '1.2.3', imageRepository: 'registry.local/nm', identityReplicas: '3', trustDomain: 'mesh.example' });
  assert.equal(v.version, '1.2.3');
  assert.equal(v.identityReplicas, 3);
  const ds = installObjects(v).find((o) => o.kind === 'DaemonSet') as any;
  assert.equal(ds.spec.template.spec.containers[0].image, 'registry.local/nm:1.2.3');
  const cases: [Record<string, string>, string][] = [
    [{ version: 'bad tag!' }, '--version'], [{ imageRepository: 'repo:tag' }, '--image'], [{ imagePullPolicy: 'Sometimes' }, '--image-pull-policy'],
    [{ trustDomain: 'Bad_Domain!' }, '--trust-domain'], [{ identityReplicas: '0' }, '--identity-replicas'], [{ nodeMaxUnavailable: 'x' }, '--max-unavailable'],
    [{ logLevel: 'loud' }, '--log-level'],
  ];
  for (const [set, flag] of cases) {
    assert.throws(() => resolveValues(set), (e: unknown) => NodemeshError.is(e, 'NODEMESH_E_CLI_BAD_VALUE') && e.message.startsWith(flag), flag);
  }
});
