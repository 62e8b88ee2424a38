import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convertHttpRoute } from './convert-http-route';
import { httpRoute } from './route-test-kit';

test('an HTTPRoute converts to matches, filters, weighted backends, timeouts and retries', () => {
  const { value, problems } = convertHttpRoute(httpRoute('split', [{
    matches: [{ path: { type: 'PathPrefix', value: '/api' }, headers: [{ name: 'X-Canary', value: 'yes' }, { name: 'x-canary', value: 'ignored' }], queryParams: [{ name: 'Q', value: '1' }] }],
    filters: [
      { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-From', value: 'waypoint' }], add: [{ name: 'X-Add', value: '1' }], remove: ['X-Drop'] } },
      { type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/v2' } } },
      { type: 'RequestMirror', requestMirror: { backendRef: { name: 'shadow', port: 8080 } } },
    ],
    backendRefs: [
      { name: 'api-v1', port: 80, weight: 90 },
      { name: 'api-v2', port: 80, weight: 10, filters: [{ type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'X-Version', value: 'v2' }] } }] },
    ],
    timeouts: { request: '10s', backendRequest: '2s' },
    retry: { attempts: 3, backoff: '50ms', codes: [503] },
  }], { created: '2024-01-01T00:00:00Z' }));
  assert.deepEqual(problems, []);
  assert.equal(value.kind, 'HTTPRoute');
  assert.deepEqual(value.parents, [{ namespace: 'shop', name: 'api' }]);
  assert.equal(value.creationTimestamp, '2024-01-01T00:00:00Z');
  const [rule] = value.rules;
  assert.deepEqual(rule.matches, [{
    path: { type: 'PathPrefix', value: '/api' },
    headers: [{ name: 'x-canary', type: 'Exact', value: 'yes' }], // the spec: the first of duplicate names counts
    queryParams: [{ name: 'Q', type: 'Exact', value: '1' }], // query names are case-sensitive
  }]);
  assert.deepEqual(rule.filters, [
    { type: 'RequestHeaderModifier', modifier: { set: [{ name: 'x-from', value: 'waypoint' }], add: [{ name: 'x-add', value: '1' }], remove: ['x-drop'] } },
    { type: 'URLRewrite', path: { type: 'ReplacePrefixMatch', value: '/v2' } },
    { type: 'RequestMirror', backend: { namespace: 'shop', name: 'shadow', port: 8080 } },
  ]);
  assert.deepEqual(rule.backends.map((b) => [b.name, b.weight, b.filters.length]), [['api-v1', 90, 0], ['api-v2', 10, 1]]);
  assert.deepEqual(rule.timeouts, { requestMs: 10_000, backendRequestMs: 2_000 });
  assert.deepEqual(rule.retry, { attempts: 3, backoffMs: 50, codes: [503] });
});

test('defaults: a rule without matches matches everything; weight 1; 0s disables a timeout; redirect 302', () => {
  const { value, problems } = convertHttpRoute(httpRoute('d', [
    { backendRefs: [{ name: 'a', port: 80 }], timeouts: { request: '0s' } },
    { matches: [{ headers: [{ name: 'h', value: 'v' }] }], filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https' } }] },
  ]));
  assert.deepEqual(problems, []);
  assert.deepEqual(value.rules[0].matches, [{ path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [] }]);
  assert.equal(value.rules[0].backends[0].weight, 1);
  assert.deepEqual(value.rules[0].timeouts, {});
  assert.equal(value.rules[1].matches[0].path.type, 'PathPrefix');
  assert.deepEqual(value.rules[1].filters, [{ type: 'RequestRedirect', statusCode: 302, scheme: 'https' }]);
});

test('parents: only Services (GAMMA); Gateway parents belong to other controllers', () => {
  const obj = httpRoute('p', [{ backendRefs: [{ name: 'a', port: 80 }] }]);
  obj.spec.parentRefs = [{ name: 'public-gw' }, { group: '', kind: 'Service', name: 'api', port: 8080 }, { group: '', kind: 'Service', name: 'db', namespace: 'data' }];
  assert.deepEqual(convertHttpRoute(obj).value.parents, [{ namespace: 'shop', name: 'api', port: 8080 }, { namespace: 'data', name: 'db' }]);
});

test('backendRefs that can never work keep their weight and are reported', () => {
  const { value, problems } = convertHttpRoute(httpRoute('b', [{
    backendRefs: [
      { name: 'ok', port: 80, weight: 50 },
      { group: 'example.com', kind: 'Bucket', name: 'b', weight: 30 },
      { name: 'elsewhere', namespace: 'other', port: 80, weight: 20 },
    ],
  }]));
  assert.deepEqual(problems, []);
  assert.deepEqual(value.rules[0].backends.map((b) => b.name), ['ok']);
  assert.deepEqual(value.rules[0].invalidBackends.map((b) => [b.reason, b.weight]), [['InvalidKind', 30], ['RefNotPermitted', 20]]);
});

test('invalid values are problems naming the field, never half-routed', () => {
  const table: [Parameters<typeof httpRoute>[1], string, RegExp][] = [
    [[{ matches: [{ path: { type: 'RegularExpression', value: '/(' } }] }], 'spec.rules[0].matches[0].path.value', /invalid regular expression/],
    [[{ matches: [{ headers: [{ name: 'h', type: 'RegularExpression', value: '[' }] }] }], 'spec.rules[0].matches[0].headers[0].value', /invalid regular expression/],
    [[{ matches: [{ path: { type: 'Exact', value: 'no-slash' } }] }], 'spec.rules[0].matches[0].path.value', /must start with \//],
    [[{ matches: [{ path: { type: 'PathPrefix', value: '/a//b' } }] }], 'spec.rules[0].matches[0].path.value', /no \/\//],
    [[{ timeouts: { request: '1.5s' } }], 'spec.rules[0].timeouts.request', /not a duration/],
    [[{ timeouts: { request: '1s', backendRequest: '2s' } }], 'spec.rules[0].timeouts.backendRequest', /not be longer than request/],
    [[{ filters: [{ type: 'ExtensionRef', extensionRef: { group: 'x', kind: 'Y', name: 'z' } }] }], 'spec.rules[0].filters[0].type', /not supported/],
    [[{ filters: [{ type: 'RequestHeaderModifier' }] }], 'spec.rules[0].filters[0]', /no requestHeaderModifier field/],
    [[{ filters: [{ type: 'RequestRedirect', requestRedirect: {} }, { type: 'URLRewrite', urlRewrite: {} }] }], 'spec.rules[0].filters', /cannot be used together/],
    [[{ filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'm', namespace: 'x', port: 1 } } }] }], 'spec.rules[0].filters[0].requestMirror.backendRef', /another namespace/],
    [[{ backendRefs: [{ name: 'noport' }] }], 'spec.rules[0].backendRefs[0].port', /needs a port/],
    [[{ retry: { codes: [200] } }], 'spec.rules[0].retry.codes', /not from 400 to 599/],
    [[{ retry: { attempts: 50 } }], 'spec.rules[0].retry.attempts', /from 0 to 10/],
    [[{ retry: { backoff: 'soon' } }], 'spec.rules[0].retry.backoff', /not a duration/],
  ];
  for (const [rules, field, message] of table) {
    const { problems } = convertHttpRoute(httpRoute('bad', rules, { unchecked: true }));
    assert.equal(problems.length, 1, `${field}: ${JSON.stringify(problems)}`);
    assert.equal(problems[0].field, field);
    assert.match(problems[0].message, message);
  }
});
