import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pathMatches, routesForService, selectRoute } from './route-match';
import type { PathMatch } from './route-model';
import { req, route } from './route-test-kit';

const backend = (name: string) => [{ name, port: 80 }];

test('path matches: Exact, element-wise PathPrefix, anchored RegularExpression', () => {
  const exact: PathMatch = { type: 'Exact', value: '/foo' };
  const prefix: PathMatch = { type: 'PathPrefix', value: '/foo' };
  const prefixSlash: PathMatch = { type: 'PathPrefix', value: '/foo/' };
  const root: PathMatch = { type: 'PathPrefix', value: '/' };
  const regex: PathMatch = { type: 'RegularExpression', value: '/v[0-9]+/.*', regex: /^(?:\/v[0-9]+\/.*)$/ };
  const table: [PathMatch, string, boolean][] = [
    [exact, '/foo', true], [exact, '/foo/', false], [exact, '/foobar', false],
    [prefix, '/foo', true], [prefix, '/foo/', true], [prefix, '/foo/bar', true], [prefix, '/foobar', false], [prefix, '/fo', false],
    [prefixSlash, '/foo', true], [prefixSlash, '/foo/bar', true], [prefixSlash, '/foobar', false],
    [root, '/', true], [root, '/anything', true],
    [regex, '/v2/items', true], [regex, '/x/v2/items', false], [regex, '/v2', false],
  ];
  for (const [m, path, want] of table) assert.equal(pathMatches(m, path), want, `${m.type} ${m.value} vs ${path}`);
});

test('header, query and method matches all have to hold', () => {
  const r = route('r', [{
    matches: [{
      path: { type: 'PathPrefix', value: '/' }, method: 'POST',
      headers: [{ name: 'X-Version', value: 'v2' }, { name: 'user', type: 'RegularExpression', value: 'a.*' }],
      queryParams: [{ name: 'debug', value: '1' }],
    }],
    backendRefs: backend('v2'),
  }]);
  const ok = { method: 'POST', headers: { 'x-version': 'v2', user: 'alice' } };
  const table: [string, { method?: string; headers?: Record<string, string> }, boolean][] = [
    ['/?debug=1', ok, true],
    ['/x?a=b&debug=1', ok, true],
    ['/?debug=1&debug=2', ok, true], // first value counts
    ['/?debug=2&debug=1', ok, false],
    ['/?debug=1', { ...ok, method: 'GET' }, false],
    ['/?debug=1', { ...ok, headers: { 'x-version': 'v1', user: 'alice' } }, false],
    ['/?debug=1', { ...ok, headers: { 'x-version': 'v2', user: 'bob' } }, false],
    ['/?debug=1', { ...ok, headers: { user: 'alice' } }, false],
    ['/', ok, false],
  ];
  for (const [path, opts, want] of table) assert.equal(selectRoute([r], req(path, opts)) !== undefined, want, `${path} ${JSON.stringify(opts)}`);
});

test('precedence across routes and rules follows the Gateway API order', () => {
  const older = '2024-01-01T00:00:00Z', newer = '2024-06-01T00:00:00Z';
  const routes = [
    route('catch-all', [{ backendRefs: backend('default') }], { created: older }),
    route('prefixes', [
      { matches: [{ path: { type: 'PathPrefix', value: '/api' } }], backendRefs: backend('api-short') },
      { matches: [{ path: { type: 'PathPrefix', value: '/api/v2' } }], backendRefs: backend('api-long') },
      { matches: [{ path: { type: 'RegularExpression', value: '/api/v[0-9]+/special' } }], backendRefs: backend('regex') },
    ], { created: newer }),
    route('exact', [{ matches: [{ path: { type: 'Exact', value: '/api/v2/exact' } }], backendRefs: backend('exact') }], { created: newer }),
    route('method', [
      { matches: [{ path: { type: 'PathPrefix', value: '/m' }, headers: [{ name: 'a', value: '1' }, { name: 'b', value: '2' }] }], backendRefs: backend('two-headers') },
      { matches: [{ path: { type: 'PathPrefix', value: '/m' }, method: 'PUT' }], backendRefs: backend('method') },
      { matches: [{ path: { type: 'PathPrefix', value: '/h' }, headers: [{ name: 'a', value: '1' }] }], backendRefs: backend('one-header') },
      { matches: [{ path: { type: 'PathPrefix', value: '/h' }, headers: [{ name: 'a', value: '1' }, { name: 'b', value: '2' }] }], backendRefs: backend('more-headers') },
      { matches: [{ path: { type: 'PathPrefix', value: '/h' }, headers: [{ name: 'a', value: '1' }], queryParams: [{ name: 'q', value: '1' }, { name: 'r', value: '1' }] }], backendRefs: backend('headers-then-query') },
      { matches: [{ path: { type: 'PathPrefix', value: '/q' }, queryParams: [{ name: 'q', value: '1' }] }], backendRefs: backend('one-query') },
      { matches: [{ path: { type: 'PathPrefix', value: '/q' }, queryParams: [{ name: 'q', value: '1' }, { name: 'r', value: '1' }] }], backendRefs: backend('two-queries') },
    ], { created: newer }),
    // Same specificity: the older route wins; equal age: namespace/name order; same route: first rule.
    route('tie-b', [{ matches: [{ path: { type: 'Exact', value: '/tie' } }], backendRefs: backend('tie-b') }], { created: newer }),
    route('tie-a', [{ matches: [{ path: { type: 'Exact', value: '/tie' } }], backendRefs: backend('tie-a') }], { created: newer }),
    route('tie-old', [{ matches: [{ path: { type: 'Exact', value: '/old' } }], backendRefs: backend('old') }], { created: older }),
    route('tie-new', [{ matches: [{ path: { type: 'Exact', value: '/old' } }], backendRefs: backend('new') }], { created: newer }),
    route('first-rule', [
      { matches: [{ path: { type: 'Exact', value: '/first' } }], backendRefs: backend('first') },
      { matches: [{ path: { type: 'Exact', value: '/first' } }], backendRefs: backend('second') },
    ], { created: newer }),
  ];
  const table: [string, { method?: string; headers?: Record<string, string> }, string][] = [
    ['/', {}, 'default'],
    ['/other', {}, 'default'],
    ['/api', {}, 'api-short'],
    ['/api/v1', {}, 'api-short'],
    ['/api/v2/x', {}, 'api-long'],
    ['/api/v2/exact', {}, 'exact'],
    ['/api/v3/special', {}, 'api-short'], // regex ranks below any prefix that matches
    ['/api/v2/special', {}, 'api-long'],
    ['/m', { method: 'PUT', headers: { a: '1', b: '2' } }, 'method'], // method beats more headers
    ['/m', { method: 'GET', headers: { a: '1', b: '2' } }, 'two-headers'],
    ['/h?q=1&r=1', { headers: { a: '1', b: '2' } }, 'more-headers'], // headers beat query params
    ['/h?q=1&r=1', { headers: { a: '1' } }, 'headers-then-query'],
    ['/q?q=1&r=1', {}, 'two-queries'],
    ['/q?q=1', {}, 'one-query'],
    ['/tie', {}, 'tie-a'],
    ['/old', {}, 'old'],
    ['/first', {}, 'first'],
  ];
  for (const [path, opts, want] of table) {
    const sel = selectRoute(routes, req(path, opts));
    assert.equal(sel?.rule.backends[0].name, want, `${opts.method ?? 'GET'} ${path} ${JSON.stringify(opts.headers ?? {})}`);
  }
  // The order the routes are listed in never matters.
  for (const [path, opts, want] of table) assert.equal(selectRoute([...routes].reverse(), req(path, opts))?.rule.backends[0].name, want, path);
});

test('a regex wins only where no prefix matches', () => {
  const routes = [route('r', [
    { matches: [{ path: { type: 'PathPrefix', value: '/a' } }], backendRefs: backend('prefix') },
    { matches: [{ path: { type: 'RegularExpression', value: '/b/[0-9]+' } }], backendRefs: backend('regex') },
  ])];
  assert.equal(selectRoute(routes, req('/b/12'))?.rule.backends[0].name, 'regex');
  assert.equal(selectRoute(routes, req('/b/x')), undefined);
});

test('routes attach to a Service, and to one port when the parent names it', () => {
  const any = route('any', [{ backendRefs: backend('x') }]);
  const port80 = route('p80', [{ backendRefs: backend('x') }], { port: 80 });
  const api = { namespace: 'shop', name: 'api' };
  assert.deepEqual(routesForService([any, port80], api, 80).map((r) => r.name), ['any', 'p80']);
  assert.deepEqual(routesForService([any, port80], api, 9090).map((r) => r.name), ['any']);
  assert.deepEqual(routesForService([any, port80], { namespace: 'shop', name: 'db' }, 80), []);
});
