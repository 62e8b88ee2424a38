import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { AuthorizationPolicy, PeerAuthentication } from '../../daemon/state/resources';
import type { Policy } from './apply-plan';
import { describePolicy, notYetReflected, policyKey } from './policies';

const ap = (name: string, namespace: string, spec: AuthorizationPolicy['spec'], generation = 1): AuthorizationPolicy => ({
  apiVersion: 'security.nodemesh.io/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name, namespace, uid: `u-${name}`, generation }, spec,
});
const pa = (name: string, namespace: string, spec: PeerAuthentication['spec']): PeerAuthentication => ({
  apiVersion: 'security.nodemesh.io/v1alpha1', kind: 'PeerAuthentication', metadata: { name, namespace, uid: `u-${name}` }, spec,
});

test('notYetReflected: present with the same content (key order ignored), absent when deleted', () => {
  const deny = ap('deny', 'shop', { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['evil'] } }] }] });
  const strict = pa('strict', 'shop', { mtls: { mode: 'STRICT' } });
  const want = new Map<string, Policy | undefined>([[policyKey(deny), deny], [policyKey(strict), strict], ['AuthorizationPolicy shop/old', undefined]]);
  const reordered = JSON.parse(JSON.stringify({ spec: deny.spec, metadata: deny.metadata, kind: deny.kind, apiVersion: deny.apiVersion })) as unknown;
  assert.deepEqual(notYetReflected({ version: 3, authorizationPolicies: [reordered], peerAuthentications: [strict] }, want), []);
  assert.deepEqual(notYetReflected({ version: 2, authorizationPolicies: [ap('old', 'shop', {})], peerAuthentications: [] }, want),
    ['AuthorizationPolicy shop/deny', 'PeerAuthentication shop/strict', 'AuthorizationPolicy shop/old']);
  // An older version of the same object is not the new state.
  const older = ap('deny', 'shop', { action: 'DENY', rules: [] });
  assert.deepEqual(notYetReflected({ authorizationPolicies: [older], peerAuthentications: [strict] }, new Map([[policyKey(deny), deny]])), ['AuthorizationPolicy shop/deny']);
});

test('notYetReflected: a snapshot without policy lists is an error, not a wait', () => {
  assert.throws(() => notYetReflected({ version: 1 }, new Map([['AuthorizationPolicy a/b', undefined]])), /no authorizationPolicies\/peerAuthentications/);
});

test('describePolicy: scope and summary', () => {
  const rows = [
    ap('allow-web', 'shop', { selector: { matchLabels: { app: 'api' } }, rules: [{}, {}] }),
    ap('deny-all', 'shop', {}),
    ap('mesh', 'nodemesh-system', { action: 'DENY', rules: [{}] }),
    ap('waypoint', 'shop', { targetRefs: [{ kind: 'Service', name: 'api' }], rules: [{}] }),
    pa('strict', 'shop', { mtls: { mode: 'STRICT' } }),
    pa('api', 'shop', { selector: { matchLabels: { app: 'api' } }, portLevelMtls: { 8080: { mode: 'PERMISSIVE' } } }),
    pa('mesh', 'nodemesh-system', {}),
  ].map((p) => { const d = describePolicy(p); return [d.name, d.appliesTo, d.summary]; });
  assert.deepEqual(rows, [
    ['allow-web', 'app=api', 'ALLOW, 2 rules'],
    ['deny-all', 'namespace shop', 'ALLOW, no rules: denies everything it applies to'],
    ['mesh', 'mesh-wide', 'DENY, 1 rule'],
    ['waypoint', 'Service/api', 'ALLOW, 1 rule (enforced at L4 by the node daemons, on the pods Service/api selects, on its target ports)'],
    ['strict', 'namespace shop', 'mtls STRICT'],
    ['api', 'app=api', 'mtls UNSET, ports 8080:PERMISSIVE'],
    ['mesh', 'mesh-wide', 'mtls UNSET'],
  ]);
});
