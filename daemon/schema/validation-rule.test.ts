import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { validateObject, type SchemaIssue } from './index';
import { crdDirectory, crdKinds } from './crd-validator';
import { toCelValue } from './validation-rule';

const API = 'security.nodemesh.io/v1alpha1';
const ap = (spec: unknown): unknown => ({ apiVersion: API, kind: 'AuthorizationPolicy', metadata: { name: 'p', namespace: 'shop' }, spec });
const pa = (spec: unknown): unknown => ({ apiVersion: API, kind: 'PeerAuthentication', metadata: { name: 'p', namespace: 'shop' }, spec });
const from = (source: unknown): unknown => ap({ rules: [{ from: [{ source }] }] });
const SRC = 'spec.rules[0].from[0].source';

const ONE_OF = '!(has(self.selector) && has(self.targetRefs))';
const LABELS = "self.all(key, !key.contains('*') && key != '')";
const GROUP = "!has(self.group) || (self.kind == 'Service' && self.group == '') || (self.kind == 'Gateway' && self.group == 'gateway.networking.k8s.io')";
const IP_BLOCK = 'isIP(self) || isCIDR(self)';
const PORT_LEVEL = '!has(self.portLevelMtls) || has(self.selector)';
const PORTS = "self.all(key, key.matches('^[1-9][0-9]{0,4}$') && int(key) <= 65535)";
const CONDITION = 'has(self.values) || has(self.notValues)';

const IP_MESSAGE = 'Invalid value: must be an IPv4 or IPv6 address or CIDR, e.g. "10.244.1.7", "10.244.0.0/16" or "fd00::/64"';
const LABELS_MESSAGE = 'Invalid value: wildcards and empty keys are not allowed in matchLabels';

const btp = (spec: unknown): unknown => ({ apiVersion: 'policy.nodemesh.io/v1alpha1', kind: 'BackendTrafficPolicy', metadata: { name: 'p', namespace: 'shop' }, spec });
const SVC = { kind: 'Service', name: 'api' };
const ROUTE = { kind: 'HTTPRoute', group: 'gateway.networking.k8s.io', name: 'api' };
const BTP_SOMETHING = 'has(self.circuitBreaker) || has(self.outlierDetection) || has(self.faultInjection)';
const BTP_SERVICES = "!(has(self.circuitBreaker) || has(self.outlierDetection)) || self.targetRefs.all(t, t.kind == 'Service')";
const BTP_GROUP = "!has(self.group) || (self.kind == 'Service' && self.group == '') || (self.kind != 'Service' && self.group == 'gateway.networking.k8s.io')";
const BTP_ONE_STATUS = 'has(self.httpStatus) != has(self.grpcStatus)';

interface RuleCase { rule: string; name: string; obj: unknown; issues: SchemaIssue[] | 'valid' }

// Every rule of installer/crds, each with objects that pass and objects that fail it.
const ruleCases: RuleCase[] = [
  { rule: ONE_OF, name: 'selector alone', obj: ap({ selector: { matchLabels: { app: 'db' } } }), issues: 'valid' },
  { rule: ONE_OF, name: 'targetRefs alone', obj: ap({ targetRefs: [{ kind: 'Service', name: 'api' }] }), issues: 'valid' },
  {
    rule: ONE_OF, name: 'selector and targetRefs', obj: ap({ selector: { matchLabels: { app: 'x' } }, targetRefs: [{ kind: 'Service', name: 'x' }] }),
    issues: [{ path: 'spec', message: 'Invalid value: only one of selector or targetRefs can be set: a policy applies either to the workloads it selects or to a Service or Gateway' }],
  },
  { rule: LABELS, name: 'AuthorizationPolicy labels', obj: ap({ selector: { matchLabels: { app: 'db', 'app.kubernetes.io/name': 'db' } } }), issues: 'valid' },
  { rule: LABELS, name: 'AuthorizationPolicy wildcard key', obj: ap({ selector: { matchLabels: { 'a*': 'b' } } }), issues: [{ path: 'spec.selector.matchLabels', message: LABELS_MESSAGE }] },
  { rule: LABELS, name: 'AuthorizationPolicy empty key', obj: ap({ selector: { matchLabels: { '': 'b' } } }), issues: [{ path: 'spec.selector.matchLabels', message: LABELS_MESSAGE }] },
  { rule: LABELS, name: 'PeerAuthentication labels', obj: pa({ selector: { matchLabels: { app: 'api' } } }), issues: 'valid' },
  { rule: LABELS, name: 'PeerAuthentication wildcard key', obj: pa({ selector: { matchLabels: { '*': 'api' } } }), issues: [{ path: 'spec.selector.matchLabels', message: LABELS_MESSAGE }] },
  { rule: GROUP, name: 'a Service, core group', obj: ap({ targetRefs: [{ kind: 'Service', group: '', name: 'api' }] }), issues: 'valid' },
  { rule: GROUP, name: 'a Gateway, its group', obj: ap({ targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'w' }] }), issues: 'valid' },
  { rule: GROUP, name: 'no group', obj: ap({ targetRefs: [{ kind: 'Gateway', name: 'w' }] }), issues: 'valid' },
  {
    rule: GROUP, name: 'a Service with the Gateway API group', obj: ap({ targetRefs: [{ kind: 'Service', name: 'a' }, { kind: 'Service', group: 'gateway.networking.k8s.io', name: 'b' }] }),
    issues: [{ path: 'spec.targetRefs[1]', message: 'Invalid value: group must be "" for a Service and "gateway.networking.k8s.io" for a Gateway' }],
  },
  { rule: CONDITION, name: 'a header condition with values and one with notValues', obj: ap({ rules: [{ when: [{ key: 'request.headers[x-a]', values: ['1'] }, { key: 'request.headers[x-b]', notValues: ['2'] }] }] }), issues: 'valid' },
  { rule: CONDITION, name: 'a header condition with neither', obj: ap({ rules: [{ when: [{ key: 'request.headers[x-a]' }] }] }), issues: [{ path: 'spec.rules[0].when[0]', message: 'Invalid value: a condition needs values or notValues' }] },
  { rule: IP_BLOCK, name: 'addresses and CIDRs of both families', obj: from({ ipBlocks: ['10.244.1.7', '10.244.0.0/16', 'fd00::/64', '::1'], notIpBlocks: ['0.0.0.0/0'] }), issues: 'valid' },
  { rule: IP_BLOCK, name: 'a prefix longer than the family', obj: from({ ipBlocks: ['10.0.0.0/33'] }), issues: [{ path: `${SRC}.ipBlocks[0]`, message: IP_MESSAGE }] },
  { rule: IP_BLOCK, name: 'an IPv4-mapped IPv6 address (Kubernetes refuses it)', obj: from({ notIpBlocks: ['fd00::/8', '::ffff:10.0.0.1'] }), issues: [{ path: `${SRC}.notIpBlocks[1]`, message: IP_MESSAGE }] },
  { rule: IP_BLOCK, name: 'an IPv4 octet with a leading zero', obj: from({ ipBlocks: ['10.0.0.01'] }), issues: [{ path: `${SRC}.ipBlocks[0]`, message: IP_MESSAGE }] },
  { rule: PORT_LEVEL, name: 'portLevelMtls with a selector', obj: pa({ selector: { matchLabels: { app: 'api' } }, portLevelMtls: { 8080: { mode: 'PERMISSIVE' } } }), issues: 'valid' },
  { rule: PORT_LEVEL, name: 'portLevelMtls without a selector', obj: pa({ portLevelMtls: { 8080: { mode: 'STRICT' } } }), issues: [{ path: 'spec', message: 'Invalid value: portLevelMtls requires selector: ports belong to particular workloads' }] },
  { rule: PORTS, name: 'ports 1 and 65535', obj: pa({ selector: { matchLabels: { a: 'b' } }, portLevelMtls: { 1: { mode: 'STRICT' }, 65535: { mode: 'DISABLE' } } }), issues: 'valid' },
  ...['65536', '0', '080', 'http'].map((port): RuleCase => ({
    rule: PORTS, name: `port key ${port}`, obj: pa({ selector: { matchLabels: { a: 'b' } }, portLevelMtls: { [port]: { mode: 'STRICT' } } }),
    issues: [{ path: 'spec.portLevelMtls', message: 'Invalid value: port must be between 1 and 65535' }],
  })),
  // BackendTrafficPolicy (policy.nodemesh.io)
  { rule: BTP_SOMETHING, name: 'a policy with only a fault', obj: btp({ targetRefs: [SVC], faultInjection: { abort: { httpStatus: 503 } } }), issues: 'valid' },
  { rule: BTP_SOMETHING, name: 'a policy that sets nothing', obj: btp({ targetRefs: [SVC] }), issues: [{ path: 'spec', message: 'Invalid value: set at least one of circuitBreaker, outlierDetection or faultInjection' }] },
  { rule: BTP_SERVICES, name: 'circuit breaking for a Service', obj: btp({ targetRefs: [SVC, { kind: 'Service', group: '', name: 'b' }], circuitBreaker: { maxPendingRequests: 0 } }), issues: 'valid' },
  { rule: BTP_SERVICES, name: 'a route fault', obj: btp({ targetRefs: [ROUTE], faultInjection: { delay: { fixedDelay: '1s' } } }), issues: 'valid' },
  {
    rule: BTP_SERVICES, name: 'outlier detection for a route', obj: btp({ targetRefs: [SVC, ROUTE], outlierDetection: { consecutive5xxErrors: 1 } }),
    issues: [{ path: 'spec', message: 'Invalid value: circuitBreaker and outlierDetection apply to the endpoints of a backend Service: every targetRef must be a Service (attach route-level faultInjection with a policy of its own)' }],
  },
  { rule: BTP_GROUP, name: 'a GRPCRoute with its group', obj: btp({ targetRefs: [{ kind: 'GRPCRoute', group: 'gateway.networking.k8s.io', name: 'g' }], faultInjection: { abort: { grpcStatus: 14 } } }), issues: 'valid' },
  {
    rule: BTP_GROUP, name: 'an HTTPRoute with the core group', obj: btp({ targetRefs: [{ kind: 'HTTPRoute', group: '', name: 'r' }], faultInjection: { abort: { httpStatus: 500 } } }),
    issues: [{ path: 'spec.targetRefs[0]', message: 'Invalid value: group must be "" for a Service and "gateway.networking.k8s.io" for an HTTPRoute or GRPCRoute' }],
  },
  { rule: BTP_ONE_STATUS, name: 'an abort with a gRPC status', obj: btp({ targetRefs: [SVC], faultInjection: { abort: { grpcStatus: 0, percentage: 0.5 } } }), issues: 'valid' },
  ...[{ httpStatus: 503, grpcStatus: 14 }, { percentage: 50 }].map((abort): RuleCase => ({
    rule: BTP_ONE_STATUS, name: `abort ${JSON.stringify(abort)}`, obj: btp({ targetRefs: [SVC], faultInjection: { abort } }),
    issues: [{ path: 'spec.faultInjection.abort', message: 'Invalid value: set exactly one of httpStatus or grpcStatus' }],
  })),
];

for (const c of ruleCases) {
  test(`CRD rule ${c.rule}: ${c.name}`, () => {
    const r = validateObject(c.obj);
    assert.equal(r.schemaKnown, true);
    assert.deepEqual(r.issues, c.issues === 'valid' ? [] : c.issues);
  });
}

test('every x-kubernetes-validations rule in installer/crds has a passing and a failing object above', () => {
  const rules = new Set<string>();
  const collect = (node: unknown): void => {
    if (Array.isArray(node)) { node.forEach(collect); return; }
    if (!node || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node)) {
      if (k === 'x-kubernetes-validations') for (const r of v as { rule: string }[]) rules.add(r.rule);
      else collect(v);
    }
  };
  for (const f of fs.readdirSync(crdDirectory()).filter((n) => n.endsWith('.yaml'))) {
    for (const doc of parseAllDocuments(fs.readFileSync(path.join(crdDirectory(), f), 'utf8'))) collect(doc.toJS());
  }
  assert.ok(rules.size >= 6);
  for (const rule of rules) {
    assert.ok(ruleCases.some((c) => c.rule === rule && c.issues === 'valid'), `no passing object for ${rule}`);
    assert.ok(ruleCases.some((c) => c.rule === rule && c.issues !== 'valid'), `no failing object for ${rule}`);
  }
});

/** A Gadget CRD whose spec has `specSchema` (flow YAML), in a directory of its own. */
function withGadgetCrd(specSchema: string, body: (dir: string) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crds-'));
  try {
    fs.writeFileSync(path.join(dir, 'gadgets.yaml'), `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: ${specSchema}
`);
    body(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const GADGET_FIELDS = `{
              replicas: {type: integer}, maxReplicas: {type: integer}, ratio: {type: number},
              port: {x-kubernetes-int-or-string: true}, names: {type: array, items: {type: string}},
              limits: {type: object, additionalProperties: {type: integer}},
              backends: {type: array, items: {type: object, properties: {name: {type: string}, weight: {type: integer}}}}}`;

function withCrd(rules: { rule: string; message?: string; messageExpression?: string }[], body: (dir: string) => void): void {
  withGadgetCrd(`{type: object, x-kubernetes-validations: ${JSON.stringify(rules)}, properties: ${GADGET_FIELDS}}`, body);
}

const gadget = (spec: unknown): unknown => ({ apiVersion: 'example.com/v1', kind: 'Gadget', metadata: { name: 'g' }, spec });

test('integers are CEL ints and numbers doubles, as the schema says: sizes, comparisons and arithmetic work', () => {
  const cases: [rule: string, spec: unknown, ok: boolean][] = [
    ['self.replicas > 0 && self.replicas <= self.maxReplicas', { replicas: 3, maxReplicas: 5 }, true],
    ['self.replicas > 0 && self.replicas <= self.maxReplicas', { replicas: 6, maxReplicas: 5 }, false],
    ['self.replicas + 1 == 4 && self.replicas % 2 == 1', { replicas: 3 }, true],
    ['size(self.names) > 0 && size(self.names) == self.replicas', { names: ['a', 'b'], replicas: 2 }, true],
    ['size(self.names) > 0', { names: [] }, false],
    ['self.ratio * 2.0 <= 3.0', { ratio: 1 }, true], // a number field holding 1 is the double 1.0
    ['self.ratio * 2.0 <= 3.0', { ratio: 1.6 }, false],
    ["self.port == 80 || self.port == 'http'", { port: 80 }, true],
    ["self.port == 80 || self.port == 'http'", { port: 'http' }, true],
    ["self.port == 80 || self.port == 'http'", { port: 81 }, false],
    ['self.limits.all(k, self.limits[k] >= 0 && self.limits[k] < 10)', { limits: { cpu: 2, memory: 9 } }, true],
    ['self.limits.all(k, self.limits[k] >= 0 && self.limits[k] < 10)', { limits: { cpu: 2, memory: 10 } }, false],
    ['self.backends.exists(b, b.weight == 2) && self.backends.map(b, b.weight).all(w, w > 0)', { backends: [{ name: 'a', weight: 1 }, { name: 'b', weight: 2 }] }, true],
    ['self.backends.exists(b, b.weight == 2)', { backends: [{ name: 'a', weight: 1 }] }, false],
    ['int(self.names[0]) < self.replicas', { names: ['7'], replicas: 8 }, true],
    ['self.replicas == 1', {}, false], // no such field: a CEL error fails the rule
    ['self.names[3] == "x"', { names: ['a'] }, false], // index out of range: also a failure
    ['self.replicas', { replicas: 1 }, false], // not a bool: not satisfied
  ];
  for (const [rule, spec, ok] of cases) {
    withCrd([{ rule, message: 'no' }], (dir) => {
      const issues = crdKinds(dir).get('example.com/v1/Gadget')!.validate(gadget(spec));
      assert.deepEqual(issues.map((i) => [i.path, i.message]), ok ? [] : [['spec', 'Invalid value: no']], `${rule} on ${JSON.stringify(spec)}`);
    });
  }
});

test('toCelValue: integers become bigint unless the schema says number; objects become maps', () => {
  const v = toCelValue({ a: 1, b: 1.5, c: [2], d: { e: 3 }, n: 4, u: undefined }, { properties: { n: { type: 'number' } } }) as Map<string, unknown>;
  assert.equal(v.get('a'), 1n);
  assert.equal(v.get('b'), 1.5);
  assert.deepEqual(v.get('c'), [2n]);
  assert.equal((v.get('d') as Map<string, unknown>).get('e'), 3n);
  assert.equal(v.get('n'), 4);
  assert.equal(v.has('u'), false);
});

test('a place whose schema holds no number is read as it is; an open one is converted', () => {
  withCrd([{ rule: 'self.names.all(n, n != "") && (!has(self.extra) || self.extra.count == 1)' }], (dir) => {
    const g = crdKinds(dir).get('example.com/v1/Gadget')!;
    assert.deepEqual(g.validate(gadget({ names: ['a'] })), []);
  });
  for (const spec of [
    '{type: object, x-kubernetes-validations: [{rule: "self.extra.count % 2 == 1"}], properties: {names: {type: array, items: {type: string}}, extra: {type: object}}}',
    '{type: object, x-kubernetes-validations: [{rule: "self.extra.count % 2 == 1"}], x-kubernetes-preserve-unknown-fields: true}',
  ]) {
    withGadgetCrd(spec, (dir) => {
      const g = crdKinds(dir).get('example.com/v1/Gadget')!;
      assert.deepEqual(g.validate(gadget({ extra: { count: 1 } })), [], spec);
      assert.equal(g.validate(gadget({ extra: { count: 2 } })).length, 1, spec);
    });
  }
});

test('messageExpression gives the message; an empty or failing one falls back to message', () => {
  const check = (messageExpression: string, spec: unknown, message: string): void => withCrd(
    [{ rule: 'self.replicas <= 10', message: 'too many', messageExpression }],
    (dir) => assert.deepEqual(crdKinds(dir).get('example.com/v1/Gadget')!.validate(gadget(spec)).map((i) => i.message), [`Invalid value: ${message}`]),
  );
  check("'replicas ' + string(self.replicas) + ' is more than 10'", { replicas: 11 }, 'replicas 11 is more than 10');
  check("''", { replicas: 11 }, 'too many');
  check('self.nothing', { replicas: 11 }, 'too many');
});

test('a rule that does not compile fails the CRD at load, naming the CRD and the rule', () => {
  const bad: [rule: string, why: RegExp][] = [
    ['self.replicas >', /does not compile/],
    ['quantity(self.port).isGreaterThan(quantity("1"))', /undeclared reference to .*function quantity\(\)/],
    ['slef.replicas > 0', /undeclared reference to variable slef/],
    ['self.replicas >= oldSelf.replicas', /undeclared reference to oldSelf/],
    ['self.names.all(n, n.lowerAscii() == n)', /undeclared reference to function lowerAscii\(\)/],
  ];
  for (const [rule, why] of bad) {
    withCrd([{ rule: 'has(self.replicas)' }, { rule }], (dir) => {
      assert.throws(() => crdKinds(dir), (e: Error) => {
        assert.match(e.message, /CustomResourceDefinition gadgets\.example\.com, version v1/);
        assert.ok(e.message.includes(JSON.stringify(rule)), e.message);
        assert.match(e.message, why);
        return true;
      });
    });
  }
  for (const messageExpression of ["'a' +", 'nope(self)']) {
    withCrd([{ rule: 'true', messageExpression }], (dir) => assert.throws(() => crdKinds(dir), /gadgets\.example\.com.*does not compile/));
  }
});
