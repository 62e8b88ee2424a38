import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { formatIssue, formatPath, parseCidr, parseIPv4, parseManifest, type ManifestIssue, type ManifestOptions } from './manifest';

const POD = `apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
  labels: { app: web }
spec:
  containers:
  - name: app
    command: ["nodemesh-sample-app", "http"]
    ports: [{ name: http, containerPort: 8080 }]
`;

const SERVICE = `apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: http }]
`;

interface Case {
  name: string;
  text: string;
  opts?: ManifestOptions;
  /** Expected objects (`Kind ns/name`) when valid. */
  objects?: string[];
  /** Expected first issue when invalid. */
  issue?: Partial<ManifestIssue> & { problemIncludes?: string; fixIncludes?: string };
  issues?: number;
}

const cases: Case[] = [
  { name: 'single pod, namespace kept', text: POD, objects: ['Pod shop/web'] },
  { name: 'multi-document with a trailing separator', text: `${POD}---\n${SERVICE}---\n`, objects: ['Pod shop/web', 'Service shop/web'] },
  { name: 'empty file', text: '', objects: [] },
  { name: 'comments only', text: '# nothing here\n---\n# still nothing\n', objects: [] },
  {
    name: 'namespace defaults to default',
    text: 'apiVersion: v1\nkind: Service\nmetadata: { name: api }\nspec: { ports: [{ port: 80 }] }\n',
    objects: ['Service default/api'],
  },
  {
    name: 'kind List expands its items',
    text: `apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: { name: shop }\n- apiVersion: v1\n  kind: Service\n  metadata: { name: db, namespace: shop }\n  spec: { ports: [{ port: 5432 }] }\n`,
    objects: ['Namespace shop', 'Service shop/db'],
  },
  {
    name: 'command as a string names the field path',
    text: POD.replace('command: ["nodemesh-sample-app", "http"]', 'command: nodemesh-sample-app http'),
    issue: { reason: 'invalid', path: 'spec.containers[0].command', document: 1, line: 10, value: 'nodemesh-sample-app http', object: 'Pod shop/web', problemIncludes: 'list of strings' },
  },
  {
    name: 'sandbox needs a command',
    text: POD.replace('    command: ["nodemesh-sample-app", "http"]\n', '    image: nginx\n'),
    opts: { sandbox: true },
    issue: { path: 'spec.containers[0].command', problemIncludes: 'not images' },
  },
  {
    name: 'an image-only pod is a valid Kubernetes pod outside the sandbox',
    text: POD.replace('    command: ["nodemesh-sample-app", "http"]\n', '    image: nginx\n'),
    objects: ['Pod shop/web'],
  },
  {
    name: 'numeric arg must be quoted',
    text: POD.replace('"http"]', '"http", "--port", 8080]'),
    issue: { path: 'spec.containers[0].command[3]', value: 8080, fixIncludes: 'quote it' },
  },
  {
    name: 'bad pod name',
    text: POD.replace('name: web\n  namespace', 'name: Web_1\n  namespace'),
    issue: { path: 'metadata.name', value: 'Web_1', problemIncludes: 'DNS-1123 subdomain', fixIncludes: '"web-1"' },
  },
  {
    name: 'service name must start with a letter',
    text: SERVICE.replace('name: web,', 'name: 1web,'),
    issue: { path: 'metadata.name', value: '1web', problemIncludes: 'DNS-1035' },
  },
  {
    name: 'namespace object with a namespace',
    text: 'apiVersion: v1\nkind: Namespace\nmetadata: { name: shop, namespace: x }\n',
    issue: { path: 'metadata.namespace', problemIncludes: 'cluster-scoped' },
  },
  {
    name: 'label value must be a string',
    text: POD.replace('labels: { app: web }', 'labels: { app: web, version: 2 }'),
    issue: { path: 'metadata.labels.version', value: 2, fixIncludes: 'quote it' },
  },
  {
    name: 'label key with a bad prefix',
    text: POD.replace('labels: { app: web }', 'labels: { "Bad_Prefix/app": web }'),
    issue: { path: 'metadata.labels["Bad_Prefix/app"]', problemIncludes: 'prefix' },
  },
  {
    name: 'label value too long',
    text: POD.replace('labels: { app: web }', `labels: { app: ${'a'.repeat(64)} }`),
    issue: { path: 'metadata.labels.app', problemIncludes: '63' },
  },
  {
    name: 'container port out of range',
    text: POD.replace('containerPort: 8080', 'containerPort: 70000'),
    issue: { path: 'spec.containers[0].ports[0].containerPort', value: 70000, problemIncludes: '1 and 65535' },
  },
  {
    name: 'service port zero',
    text: SERVICE.replace('port: 80,', 'port: 0,'),
    issue: { path: 'spec.ports[0].port', value: 0 },
  },
  {
    name: 'quoted numeric targetPort',
    text: SERVICE.replace('targetPort: http', 'targetPort: "8080"'),
    issue: { path: 'spec.ports[0].targetPort', fixIncludes: 'without quotes' },
  },
  {
    name: 'clusterIP inside the range is honoured',
    text: SERVICE.replace('selector:', 'clusterIP: 10.96.7.7\n  selector:'),
    objects: ['Service shop/web'],
  },
  {
    name: 'clusterIP outside the service range',
    text: SERVICE.replace('selector:', 'clusterIP: 10.0.0.7\n  selector:'),
    issue: { path: 'spec.clusterIP', value: '10.0.0.7', problemIncludes: '10.96.0.0/16' },
  },
  {
    name: 'clusterIP checked against a custom range',
    text: SERVICE.replace('selector:', 'clusterIP: 10.96.7.7\n  selector:'),
    opts: { serviceCIDR: '10.100.0.0/16' },
    issue: { path: 'spec.clusterIP', problemIncludes: '10.100.0.0/16' },
  },
  {
    name: 'clusterIP not an address',
    text: SERVICE.replace('selector:', 'clusterIP: 10.96.300.1\n  selector:'),
    issue: { path: 'spec.clusterIP', problemIncludes: 'IPv4' },
  },
  {
    name: 'headless is not supported yet',
    text: SERVICE.replace('selector:', 'clusterIP: None\n  selector:'),
    issue: { reason: 'unsupported', path: 'spec.clusterIP' },
  },
  {
    name: 'several unnamed service ports',
    text: SERVICE.replace('[{ name: http, port: 80, targetPort: http }]', '[{ port: 80 }, { port: 81 }]'),
    issue: { path: 'spec.ports[0].name' },
    issues: 2,
  },
  {
    name: 'unknown kind is reported, not dropped',
    text: `${POD}---\napiVersion: v1\nkind: ConfigMapp\nmetadata: { name: x }\n`,
    issue: { reason: 'unknown-kind', document: 2, path: 'kind', value: 'ConfigMapp' },
  },
  {
    name: 'planned kind is reported as not yet supported',
    text: 'apiVersion: security.nodemesh.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: { name: p, namespace: shop }\nspec: {}\n',
    issue: { reason: 'unsupported', path: 'kind', problemIncludes: 'not supported by this version' },
  },
  {
    name: 'wrong apiVersion',
    text: POD.replace('apiVersion: v1', 'apiVersion: apps/v1'),
    issue: { path: 'apiVersion', value: 'apps/v1' },
  },
  {
    name: 'one bad document rejects the file',
    text: `${SERVICE}---\n${POD.replace('containerPort: 8080', 'containerPort: -1')}`,
    issue: { document: 2, path: 'spec.containers[0].ports[0].containerPort' },
  },
  {
    name: 'bad item in a List names its index',
    text: `apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: { name: ok }\n- apiVersion: v1\n  kind: Namespace\n  metadata: { name: NotOk }\n`,
    issue: { path: 'items[1].metadata.name', line: 9, value: 'NotOk' },
  },
  {
    name: 'YAML syntax error carries a line',
    text: 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n   labels: x\n',
    issue: { reason: 'yaml', document: 1 },
  },
  {
    name: 'duplicate YAML key',
    text: 'apiVersion: v1\nkind: Namespace\nkind: Namespace\nmetadata: { name: a }\n',
    issue: { reason: 'yaml', line: 3 },
  },
  {
    name: 'not a map',
    text: '- just\n- a list\n',
    issue: { path: '', problemIncludes: 'must be a map' },
  },
  {
    name: 'same object twice in one file',
    text: `${SERVICE}---\n${SERVICE}`,
    issue: { reason: 'duplicate', document: 2, object: 'Service shop/web' },
  },
  {
    name: 'duplicate container names',
    text: POD.replace('    ports:', '  - name: app\n    command: ["true"]\n    ports:').replace(/\n    ports: \[\{ name: http, containerPort: 8080 \}\]\n$/, '\n'),
    issue: { path: 'spec.containers[1].name', problemIncludes: 'unique' },
  },
  {
    name: 'env value must be a string',
    text: POD.replace('    ports:', '    env: [{ name: RETRIES, value: 3 }]\n    ports:'),
    issue: { path: 'spec.containers[0].env[0].value', fixIncludes: 'quote it' },
  },
  {
    name: 'env fieldRef is accepted',
    text: POD.replace('    ports:', '    env: [{ name: POD, valueFrom: { fieldRef: { fieldPath: metadata.name } } }]\n    ports:'),
    opts: { sandbox: true },
    objects: ['Pod shop/web'],
  },
  {
    name: 'env secretKeyRef is not supported in the sandbox',
    text: POD.replace('    ports:', '    env: [{ name: PW, valueFrom: { secretKeyRef: { name: s, key: k } } }]\n    ports:'),
    opts: { sandbox: true },
    issue: { reason: 'unsupported', path: 'spec.containers[0].env[0].valueFrom' },
  },
  {
    name: 'port name must be an IANA service name',
    text: POD.replace('name: http, containerPort', 'name: this-name-is-far-too-long, containerPort'),
    issue: { path: 'spec.containers[0].ports[0].name', problemIncludes: 'IANA' },
  },
  {
    name: 'pod without containers',
    text: 'apiVersion: v1\nkind: Pod\nmetadata: { name: p }\nspec: { containers: [] }\n',
    issue: { path: 'spec.containers', problemIncludes: 'at least one container' },
  },
];

for (const c of cases) {
  test(`parseManifest: ${c.name}`, () => {
    const r = parseManifest(c.text, 'm.yaml', c.opts);
    if (c.objects) {
      assert.equal(r.ok, true, r.ok ? '' : r.issues.map(formatIssue).join('\n'));
      if (!r.ok) return;
      assert.deepEqual(r.entries.map((e) => `${e.object.kind} ${e.object.metadata.namespace ? `${e.object.metadata.namespace}/` : ''}${e.object.metadata.name}`), c.objects);
      return;
    }
    assert.equal(r.ok, false, 'expected the manifest to be rejected');
    if (r.ok) return;
    if (c.issues !== undefined) assert.equal(r.issues.length, c.issues, r.issues.map(formatIssue).join('\n'));
    const got = r.issues[0]!;
    const { problemIncludes, fixIncludes, ...exact } = c.issue!;
    assert.equal(got.file, 'm.yaml');
    for (const [k, v] of Object.entries(exact)) assert.deepEqual(got[k as keyof ManifestIssue], v, `${k} of ${formatIssue(got)}`);
    if (problemIncludes) assert.ok(got.problem.includes(problemIncludes), got.problem);
    if (fixIncludes) assert.ok(got.fix.includes(fixIncludes), got.fix);
    assert.ok(got.fix.length > 0, 'every issue says what to do');
  });
}

test('formatIssue names file, document, line, object, field, value and fix', () => {
  const r = parseManifest(POD.replace('containerPort: 8080', 'containerPort: "8080"'), 'shop/web.yaml');
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(formatIssue(r.issues[0]!),
    'shop/web.yaml: document 1 (line 11), Pod shop/web: spec.containers[0].ports[0].containerPort: got "8080": containerPort must be an integer between 1 and 65535; write it without quotes: 8080');
});

test('objects carry unknown fields through untouched', () => {
  const r = parseManifest(POD.replace('spec:\n', 'spec:\n  terminationGracePeriodSeconds: 3\n'), 'm.yaml');
  assert.equal(r.ok, true);
  if (!r.ok) return;
  assert.equal(((r.entries[0]!.object as unknown as { spec: Record<string, unknown> }).spec).terminationGracePeriodSeconds, 3);
});

test('formatPath quotes keys that are not identifiers', () => {
  assert.equal(formatPath(['spec', 'containers', 0, 'command']), 'spec.containers[0].command');
  assert.equal(formatPath(['metadata', 'labels', 'app.kubernetes.io/name']), 'metadata.labels["app.kubernetes.io/name"]');
});

test('address helpers', () => {
  assert.equal(parseIPv4('10.96.0.1'), 0x0a600001);
  assert.equal(parseIPv4('10.96.0.01'), undefined);
  assert.equal(parseIPv4('256.0.0.1'), undefined);
  assert.deepEqual(parseCidr('10.96.0.0/16'), { base: 0x0a600000, bits: 16, size: 65536 });
  assert.equal(parseCidr('10.96.0.1/16'), undefined);
  assert.equal(parseCidr('10.96.0.0/33'), undefined);
});
