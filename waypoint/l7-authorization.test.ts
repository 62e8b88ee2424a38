import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthorizationPolicy } from '../daemon/state/resources';
import { authorizeConnection, authorizeRequest, type L7Request } from './l7-authorization';

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
