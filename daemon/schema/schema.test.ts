import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { isNamespaced, validateObject, type SchemaIssue } from './index';
import { compileRule } from './cel';
import { crdDirectory, crdKinds } from './crd-validator';

const REPO = path.resolve(__dirname, '..', '..', '..');
const AP = 'security.nodemesh.io/v1alpha1';
const ap = (spec: unknown): unknown => ({ apiVersion: AP, kind: 'AuthorizationPolicy', metadata: { name: 'p', namespace: 'shop' }, spec });
const pa = (spec: unknown): unknown => ({ apiVersion: AP, kind: 'PeerAuthentication', metadata: { name: 'p', namespace: 'shop' }, spec });
const SRC = 'spec.rules[0].from[0].source';

interface Case { name: string; obj: unknown; issues: SchemaIssue[] | 'valid' }

const cases: Case[] = [
  // Istio-style policies that must pass
  { name: 'ALLOW from a principal and a namespace to a port', obj: ap({ selector: { matchLabels: { app: 'db' } }, action: 'ALLOW', rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/api'], namespaces: ['shop'] } }], to: [{ operation: { ports: ['5432'] } }] }] }), issues: 'valid' },
  { name: 'DENY with L7 and not* fields', obj: ap({ action: 'DENY', rules: [{ from: [{ source: { notPrincipals: ['*'], notIpBlocks: ['10.0.0.0/8', 'fd00::/64'] } }], to: [{ operation: { methods: ['POST'], paths: ['/admin*'], notPorts: ['22'] } }] }] }), issues: 'valid' },
  { name: 'deny-all (empty spec)', obj: ap({}), issues: 'valid' },
  { name: 'targetRefs to a Service', obj: ap({ targetRefs: [{ kind: 'Service', group: '', name: 'api' }], action: 'DENY', rules: [{}] }), issues: 'valid' },
  { name: 'spiffe:// principal and suffix match', obj: ap({ rules: [{ from: [{ source: { principals: ['spiffe://cluster.local/ns/shop/sa/web', '*/sa/web'] } }] }] }), issues: 'valid' },
  { name: 'PeerAuthentication STRICT with port-level PERMISSIVE', obj: pa({ selector: { matchLabels: { app: 'api' } }, mtls: { mode: 'STRICT' }, portLevelMtls: { 8080: { mode: 'PERMISSIVE' } } }), issues: 'valid' },

  // what the API server refuses, with its paths and words
  { name: 'unknown action', obj: ap({ action: 'AUDIT' }), issues: [{ path: 'spec.action', message: 'Unsupported value: "AUDIT": supported values: "ALLOW", "DENY"' }] },
  { name: 'a principal: typo', obj: ap({ rules: [{ from: [{ source: { principal: ['cluster.local/ns/shop/sa/web'] } }] }] }), issues: [{ path: `${SRC}.principal`, message: `unknown field "${SRC}.principal"` }] },
  {
    name: 'bad ipBlocks', obj: ap({ rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/33', 'web.shop', '10.0.0.1'] } }] }] }),
    issues: [{ path: `${SRC}.ipBlocks[1]`, message: `Invalid value: "web.shop": ${SRC}.ipBlocks[1] in body should match '^[0-9a-fA-F.:]+(/[0-9]{1,3})?$'` }],
  },
  {
    name: 'a bad CIDR prefix (CEL isCIDR, checked once the schema is satisfied)', obj: ap({ rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/33'] } }] }] }),
    issues: [{ path: `${SRC}.ipBlocks[0]`, message: 'Invalid value: must be an IPv4 or IPv6 address or CIDR, e.g. "10.244.1.7", "10.244.0.0/16" or "fd00::/64"' }],
  },
  {
    name: 'selector and targetRefs together', obj: ap({ selector: { matchLabels: { app: 'x' } }, targetRefs: [{ kind: 'Service', name: 'x' }] }),
    issues: [{ path: 'spec', message: 'Invalid value: only one of selector or targetRefs can be set: a policy applies either to the workloads it selects or to a Service or Gateway' }],
  },
  { name: 'targetRefs Gateway with the core group', obj: ap({ targetRefs: [{ kind: 'Gateway', group: '', name: 'w' }] }), issues: [{ path: 'spec.targetRefs[0]', message: 'Invalid value: group must be "" for a Service and "gateway.networking.k8s.io" for a Gateway' }] },
  { name: 'a port out of range', obj: ap({ rules: [{ to: [{ operation: { ports: ['65536'] } }] }] }), issues: [{ path: 'spec.rules[0].to[0].operation.ports[0]', message: `Invalid value: "65536": spec.rules[0].to[0].operation.ports[0] in body should match '^([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$'` }] },
  { name: 'an empty source', obj: ap({ rules: [{ from: [{ source: {} }] }] }), issues: [{ path: SRC, message: `Invalid value: 0: ${SRC} in body should have at least 1 properties` }] },
  { name: 'wildcard in matchLabels key', obj: ap({ selector: { matchLabels: { 'a*': 'b' } } }), issues: [{ path: 'spec.selector.matchLabels', message: 'Invalid value: wildcards and empty keys are not allowed in matchLabels' }] },
  { name: 'portLevelMtls without selector', obj: pa({ portLevelMtls: { 8080: { mode: 'STRICT' } } }), issues: [{ path: 'spec', message: 'Invalid value: portLevelMtls requires selector: ports belong to particular workloads' }] },
  { name: 'mtls mode lower case', obj: pa({ mtls: { mode: 'strict' } }), issues: [{ path: 'spec.mtls.mode', message: 'Unsupported value: "strict": supported values: "UNSET", "DISABLE", "PERMISSIVE", "STRICT"' }] },
  { name: 'portLevelMtls entry without mode', obj: pa({ selector: { matchLabels: { a: 'b' } }, portLevelMtls: { 8080: {} } }), issues: [{ path: 'spec.portLevelMtls[8080].mode', message: 'Required value' }] },

  // core and apps kinds (kubernetes-models)
  { name: 'a Deployment', obj: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { replicas: 3, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'nginx' }] } } } }, issues: 'valid' },
  {
    name: 'a Deployment with replicas as a string and a nameless container',
    obj: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { replicas: '3', selector: {}, template: { spec: { containers: [{ image: 'nginx' }] } } } },
    issues: [
      { path: 'spec.replicas', message: 'Invalid value: "string": spec.replicas in body must be of type integer: "3"' },
      { path: 'spec.template.spec.containers[0].name', message: 'Required value' },
    ],
  },
  {
    name: 'strict field validation of a Deployment: misspelt fields anywhere, as kubectl apply reports them',
    obj: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', lables: { a: 'b' } }, spec: { replica: 3, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'nginx', comand: ['x'], ports: [{ containerPort: 80, nme: 'http' }] }] } } } },
    issues: [
      { path: 'metadata.lables', message: 'unknown field "metadata.lables"' },
      { path: 'spec.replica', message: 'unknown field "spec.replica"' },
      { path: 'spec.template.spec.containers[0].comand', message: 'unknown field "spec.template.spec.containers[0].comand"' },
      { path: 'spec.template.spec.containers[0].ports[0].nme', message: 'unknown field "spec.template.spec.containers[0].ports[0].nme"' },
    ],
  },
  { name: 'a Secret with stringData and a Pod with a fieldRef env are known fields', obj: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, type: 'Opaque', stringData: { a: 'b' } }, issues: 'valid' },
  { name: 'a Service port without port', obj: { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { ports: [{ targetPort: 'http' }] } }, issues: [{ path: 'spec.ports[0].port', message: 'Required value' }] },
  { name: 'a ConfigMap with a non-string value', obj: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { n: 1 } }, issues: [{ path: 'spec'.replace('spec', 'data.n'), message: 'Invalid value: "number": data.n in body must be of type string: 1' }] },
  { name: 'a CronJob', obj: { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'c' }, spec: { schedule: '* * * * *', jobTemplate: { spec: { template: { spec: { containers: [{ name: 'a' }] } } } } } }, issues: 'valid' },

  // Gateway API kinds
  { name: 'an HTTPRoute', obj: { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'r' }, spec: { parentRefs: [{ name: 'w' }], rules: [{ backendRefs: [{ name: 'a', port: 80 }] }] } }, issues: 'valid' },
  { name: 'an HTTPRoute backend port out of range', obj: { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'r' }, spec: { rules: [{ backendRefs: [{ name: 'a', port: 70000 }] }] } }, issues: [{ path: 'spec.rules[0].backendRefs[0].port', message: 'Invalid value: 70000: spec.rules[0].backendRefs[0].port in body should be less than or equal to 65535' }] },
  { name: 'a Gateway without a class', obj: { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'w' }, spec: { listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] } }, issues: [{ path: 'spec.gatewayClassName', message: 'Required value' }] },
  { name: 'a v1 GRPCRoute (v1alpha2 schema)', obj: { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GRPCRoute', metadata: { name: 'g' }, spec: { rules: [{ backendRefs: [{ name: 'a', port: 0 }] }] } }, issues: [{ path: 'spec.rules[0].backendRefs[0].port', message: 'Invalid value: 0: spec.rules[0].backendRefs[0].port in body should be greater than or equal to 1' }] },
];

for (const c of cases) {
  test(`validateObject: ${c.name}`, () => {
    const r = validateObject(c.obj);
    assert.equal(r.schemaKnown, true);
    assert.deepEqual(r.issues, c.issues === 'valid' ? [] : c.issues);
  });
}

test('validateObject: no schema is not an error by itself; not an object is', () => {
  assert.deepEqual(validateObject({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } }), { schemaKnown: false, issues: [] });
  assert.deepEqual(validateObject({ apiVersion: '../../x', kind: 'Pod' }), { schemaKnown: false, issues: [] });
  assert.equal(validateObject('x').issues.length, 1);
});

test('every CRD file in installer/crds loads, with no code per CRD', () => {
  const files = fs.readdirSync(crdDirectory()).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 2);
  const kinds = [...crdKinds().keys()];
  assert.ok(kinds.includes(`${AP}/AuthorizationPolicy`) && kinds.includes(`${AP}/PeerAuthentication`), kinds.join(', '));
  assert.equal(isNamespaced(AP, 'AuthorizationPolicy'), true);
  assert.equal(isNamespaced('v1', 'Namespace'), false);
  assert.equal(isNamespaced('apps/v1', 'Deployment'), true);
});

test('a CRD in a new file is picked up: a Widget as in the API server recordings', () => {
  const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'crds-'));
  try {
    fs.writeFileSync(path.join(dir, 'widgets.yaml'), `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [mode]
            x-kubernetes-validations:
            - rule: "!has(self.min) || !has(self.max) || self.min <= self.max"
              message: "min must not exceed max"
            properties:
              mode: {type: string, enum: [ALLOW, DENY]}
              min: {type: integer}
              max: {type: integer}
              port: {x-kubernetes-int-or-string: true}
              sources:
                type: array
                items:
                  type: object
                  properties:
                    principals: {type: array, items: {type: string}}
`);
    const w = crdKinds(dir).get('example.com/v1/Widget')!;
    const obj = (spec: unknown) => ({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' }, spec });
    // 25, 26, 28 of the recordings: same fields, same words
    assert.deepEqual(w.validate(obj({ mode: 'MAYBE' })).map((i) => [i.path, i.message]), [['spec.mode', 'Unsupported value: "MAYBE": supported values: "ALLOW", "DENY"']]);
    assert.deepEqual(w.validate(obj({ mode: 'ALLOW', sources: [{ principal: ['x'] }] })).map((i) => i.message), ['unknown field "spec.sources[0].principal"']);
    assert.deepEqual(w.validate(obj({ mode: 'ALLOW', min: 5, max: 1 })).map((i) => [i.path, i.message]), [['spec', 'Invalid value: min must not exceed max']]);
    // CEL rules wait until the rest is valid, as on the API server
    assert.deepEqual(w.validate(obj({ mode: 'MAYBE', min: 5, max: 1 })).map((i) => i.path), ['spec.mode']);
    assert.deepEqual(w.validate(obj({ mode: 'DENY', port: 'http' })), []);
    assert.deepEqual(w.validate(obj({ mode: 'DENY', port: 80 })), []);
    assert.equal(w.validate(obj({ mode: 'DENY', port: true })).length, 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('every example manifest in installer/examples validates', () => {
  const root = path.join(REPO, 'installer', 'examples');
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const n of fs.readdirSync(d)) {
      const p = path.join(d, n);
      if (fs.statSync(p).isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(n)) files.push(p);
    }
  };
  walk(root);
  assert.ok(files.length > 0);
  let n = 0;
  for (const f of files) {
    for (const doc of parseAllDocuments(fs.readFileSync(f, 'utf8'))) {
      const obj = doc.toJS() as unknown;
      if (!obj) continue;
      const r = validateObject(obj);
      assert.equal(r.schemaKnown, true, `${f}: ${JSON.stringify(obj).slice(0, 80)}`);
      assert.deepEqual(r.issues, [], f);
      n++;
    }
  }
  assert.ok(n >= 5);
});

test('CEL subset: the functions our rules use; anything else refused at compile time', () => {
  const t = (rule: string, self: unknown): boolean => compileRule(rule)(self);
  assert.equal(t('!(has(self.a) && has(self.b))', { a: 1 }), true);
  assert.equal(t('!(has(self.a) && has(self.b))', { a: 1, b: 2 }), false);
  assert.equal(t("self.all(k, k.matches('^[1-9][0-9]{0,4}$') && int(k) <= 65535)", { 8080: {} }), true);
  assert.equal(t("self.all(k, k.matches('^[1-9][0-9]{0,4}$') && int(k) <= 65535)", { 70000: {} }), false);
  assert.equal(t('isIP(self) || isCIDR(self)', 'fd00::/64'), true);
  assert.equal(t('isIP(self) || isCIDR(self)', '10.0.0.0/33'), false);
  assert.equal(t("self.kind == 'Service' ? size(self.name) > 0 : false", { kind: 'Service', name: 'a' }), true);
  assert.equal(t('self.x == 1', {}), false, 'a missing field fails the rule');
  assert.throws(() => compileRule('self.map(x, x)'), /unsupported|expected/);
  assert.throws(() => compileRule('self[0]'), /unsupported|expected/);
});
