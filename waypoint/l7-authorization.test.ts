import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthorizationPolicy } from '../daemon/state/resources';
import { authorizeConnection, authorizeRequest, conditionHeader, conditionHolds, type L7Request } from './l7-authorization';

const ap = (name: string, spec: AuthorizationPolicy['spec'], ns = 'shop'): AuthorizationPolicy =>
  ({ apiVersion: 'security.nodemesh.io/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name, namespace: ns }, spec });
const target = { gateway: { namespace: 'shop', name: 'waypoint' }, service: { namespace: 'shop', name: 'api' }, port: 80 };
const web = { principal: 'spiffe://cluster.local/ns/shop/sa/web', ip: '10.244.1.2' };
const other = { principal: 'spiffe://cluster.local/ns/other/sa/x', ip: '10.244.2.5' };
const get = (path: string, method = 'GET', host = 'api.shop'): L7Request => ({ method, path, host });

test('L7 authorization: methods, paths, hosts, against the original caller', () => {
  const policies = [
    ap('deny-admin', { targetRefs: [{ kind: 'Service', group: '', name: 'api' }], action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }] }),
    ap('allow-reads', {
      targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }], action: 'ALLOW',
      rules: [
        { from: [{ source: { namespaces: ['shop'] } }], to: [{ operation: { methods: ['GET', 'HEAD'], hosts: ['api.shop'] } }] },
        { from: [{ source: { principals: ['cluster.local/ns/other/sa/x'] } }], to: [{ operation: { methods: ['POST'], paths: ['/orders', '/carts/*'] } }] },
      ],
    }),
    // Not for this waypoint or Service: ignored here (and by node daemons, which skip targetRefs).
    ap('elsewhere', { targetRefs: [{ kind: 'Service', group: '', name: 'db' }], action: 'DENY', rules: [{}] }),
    ap('other-ns', { targetRefs: [{ kind: 'Service', group: '', name: 'api' }], action: 'DENY', rules: [{}] }, 'other'),
    // Selector policies are the node daemons' business.
    ap('l4', { selector: { matchLabels: { app: 'api' } }, action: 'DENY', rules: [{}] }),
  ];
  const table: [typeof web, L7Request, boolean, string?][] = [
    [web, get('/'), true],
    [web, get('/items', 'HEAD'), true],
    [web, get('/items', 'POST'), false, 'no-allow-policy-matched'],
    [web, get('/admin/users'), false, 'denied-by-policy'],
    [web, get('/', 'GET', 'API.SHOP:80'), true],
    [web, get('/', 'GET', 'evil.example'), false, 'no-allow-policy-matched'],
    [other, get('/orders', 'POST'), true],
    [other, get('/carts/7', 'POST'), true],
    [other, get('/orders/1', 'POST'), false, 'no-allow-policy-matched'],
    [other, get('/'), false, 'no-allow-policy-matched'],
  ];
  for (const [caller, req, allow, reason] of table) {
    const v = authorizeRequest(policies, caller, target, req);
    assert.equal(v.allow, allow, `${caller.principal} ${req.method} ${req.host}${req.path}`);
    if (!v.allow) {
      assert.equal(v.reason, reason);
      if (reason === 'denied-by-policy') assert.equal(v.policy, 'shop/deny-admin');
    }
  }
});

test('no targeted policy: allowed; TCP through the waypoint: L7 rules fail closed', () => {
  assert.equal(authorizeRequest([], web, target, get('/')).allow, true);
  const allowGet = [ap('allow-get', { targetRefs: [{ kind: 'Service', group: '', name: 'api' }], action: 'ALLOW', rules: [{ to: [{ operation: { methods: ['GET'] } }] }] })];
  assert.equal(authorizeConnection(allowGet, web, target).allow, false, 'an ALLOW rule with L7 fields matches no TCP connection');
  const denyPost = [ap('deny-post', { targetRefs: [{ kind: 'Service', group: '', name: 'api' }], action: 'DENY', rules: [{ from: [{ source: { namespaces: ['other'] } }], to: [{ operation: { methods: ['POST'] } }] }] })];
  assert.equal(authorizeConnection(denyPost, other, target).allow, false, 'a DENY rule with L7 fields applies on its L4 part');
  assert.equal(authorizeConnection(denyPost, web, target).allow, true);
});

test('L7 authorization: `when` header conditions (values, notValues), with operations and alone', () => {
  const svc = [{ kind: 'Service' as const, group: '', name: 'api' }];
  const policies = [
    // Deny DELETE unless the caller says it is an admin tool (values with prefix patterns).
    ap('deny-delete', { targetRefs: svc, action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }], when: [{ key: 'request.headers[X-Tool]', notValues: ['admin-*'] }] }] }),
    // Deny a known-bad client version anywhere.
    ap('deny-old-clients', { targetRefs: svc, action: 'DENY', rules: [{ when: [{ key: 'request.headers[user-agent]', values: ['legacy/*', '*-broken'] }] }] }),
    ap('allow', {
      targetRefs: svc, action: 'ALLOW',
      rules: [
        // Reads from anyone in shop; writes only with a tenant header other than "blocked" (conditions AND).
        { from: [{ source: { namespaces: ['shop'] } }], to: [{ operation: { methods: ['GET'] } }] },
        { to: [{ operation: { methods: ['POST', 'DELETE'] } }], when: [{ key: 'request.headers[x-tenant]', values: ['*'] }, { key: 'request.headers[x-tenant]', notValues: ['blocked'] }] },
      ],
    }),
  ];
  const req = (method: string, headers: Record<string, string | string[]>): L7Request => ({ method, path: '/', host: 'api.shop', headers });
  const table: [string, L7Request, boolean, string?][] = [
    ['GET, no headers', req('GET', {}), true],
    ['GET, legacy agent', req('GET', { 'user-agent': 'legacy/1.0' }), false, 'shop/deny-old-clients'],
    ['GET, suffix-matched agent', req('GET', { 'user-agent': 'curl-broken' }), false, 'shop/deny-old-clients'],
    ['GET, fine agent', req('GET', { 'user-agent': 'curl/8' }), true],
    ['POST without tenant', req('POST', {}), false, 'no-allow-policy-matched'],
    ['POST with a tenant', req('POST', { 'x-tenant': 'a' }), true],
    ['POST with the blocked tenant', req('POST', { 'x-tenant': 'blocked' }), false, 'no-allow-policy-matched'],
    ['POST, tenant sent twice, one blocked', req('POST', { 'x-tenant': ['a', 'blocked'] }), false, 'no-allow-policy-matched'],
    ['DELETE with a tenant, no tool', req('DELETE', { 'x-tenant': 'a' }), false, 'shop/deny-delete'],
    ['DELETE with a tenant and an admin tool (header name case from the policy)', req('DELETE', { 'x-tenant': 'a', 'x-tool': 'admin-cli' }), true],
    ['DELETE with another tool', req('DELETE', { 'x-tenant': 'a', 'x-tool': 'script' }), false, 'shop/deny-delete'],
  ];
  for (const [name, r, allow, why] of table) {
    const v = authorizeRequest(policies, web, target, r);
    assert.equal(v.allow, allow, name);
    if (!v.allow && why) assert.equal(why.includes('/') ? v.policy : v.reason, why, name);
    // Nothing the request sent appears in the verdict (it is logged): only policy names.
    if (!v.allow) assert.doesNotMatch(v.message, /legacy|broken|blocked|script|tenant/, name);
  }
});

test('`when` keys: only request headers are known; an unknown key fails closed; at L4 a conditional ALLOW never matches', () => {
  assert.equal(conditionHeader('request.headers[X-Foo]'), 'x-foo');
  assert.equal(conditionHeader('source.ip'), undefined);
  const odd = { key: 'request.auth.claims[iss]', values: ['x'] };
  assert.equal(conditionHolds(odd, get('/'), 'ALLOW'), false);
  assert.equal(conditionHolds(odd, get('/'), 'DENY'), true);
  const svc = [{ kind: 'Service' as const, group: '', name: 'api' }];
  const allowIfHeader = [ap('allow-h', { targetRefs: svc, action: 'ALLOW', rules: [{ when: [{ key: 'request.headers[x-ok]', values: ['1'] }] }] })];
  assert.equal(authorizeRequest(allowIfHeader, web, target, { ...get('/'), headers: { 'x-ok': '1' } }).allow, true);
  assert.equal(authorizeConnection(allowIfHeader, web, target).allow, false, 'TCP through the waypoint: the condition cannot be checked');
  const denyIfHeader = [ap('deny-h', { targetRefs: svc, action: 'DENY', rules: [{ from: [{ source: { namespaces: ['other'] } }], when: [{ key: 'request.headers[x-bad]', values: ['1'] }] }] })];
  assert.equal(authorizeConnection(denyIfHeader, other, target).allow, false, 'a conditional DENY applies on its L4 part');
  assert.equal(authorizeConnection(denyIfHeader, web, target).allow, true);
});
