import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authorize, peerAuthenticationMode, stringMatch } from './authorization';
import type { AuthorizationPolicy, PeerAuthentication } from '../state/resources';

const ap = (name: string, spec: AuthorizationPolicy['spec'], namespace = 'shop'): AuthorizationPolicy =>
  ({ apiVersion: 'security.nodemesh.io/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name, namespace }, spec });
const pa = (name: string, spec: PeerAuthentication['spec'], namespace = 'shop'): PeerAuthentication =>
  ({ apiVersion: 'security.nodemesh.io/v1alpha1', kind: 'PeerAuthentication', metadata: { name, namespace }, spec });

const web = 'spiffe://cluster.local/ns/shop/sa/web';
const load = 'spiffe://cluster.local/ns/loadgen/sa/load';
const api = { namespace: 'shop', labels: { app: 'api' }, port: 8080 };

test('stringMatch: exact, wildcard, prefix, suffix', () => {
  assert.ok(stringMatch('*', 'x'));
  assert.ok(stringMatch('cluster.local/ns/shop/*', 'cluster.local/ns/shop/sa/web'));
  assert.ok(stringMatch('*/sa/web', 'cluster.local/ns/shop/sa/web'));
  assert.ok(!stringMatch('cluster.local/ns/shop/sa/web', 'cluster.local/ns/shop/sa/webx'));
});

test('authorize: a table of policies and callers', () => {
  const allowWeb = ap('allow-web', { selector: { matchLabels: { app: 'api' } }, action: 'ALLOW', rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/web'] } }] }] });
  const denyLoad = ap('deny-load', { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['loadgen'] } }] }] });
  const allowNothing = ap('allow-nothing', { action: 'ALLOW' });
  const allowAll = ap('allow-all', { action: 'ALLOW', rules: [{}] });
  const portOnly = ap('port-9090', { rules: [{ to: [{ operation: { ports: ['9090'] } }] }] });
  const l7Allow = ap('l7-allow', { rules: [{ to: [{ operation: { methods: ['GET'] } }] }] });
  const l7Deny = ap('l7-deny', { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['loadgen'] } }], to: [{ operation: { paths: ['/admin'] } }] }] });
  const otherNs = ap('other-ns', { action: 'ALLOW', rules: [] }, 'elsewhere');
  const meshDeny = ap('mesh-deny', { action: 'DENY', rules: [{ from: [{ source: { ipBlocks: ['10.244.9.0/24'] } }] }] }, 'nodemesh-system');
  const cases: [string, AuthorizationPolicy[], string | undefined, string, boolean, string?][] = [
    ['no policies: allow', [], web, '10.244.1.2', true],
    ['allow matches principal', [allowWeb], web, '10.244.1.2', true],
    ['allow does not match another principal', [allowWeb], load, '10.244.1.3', false, 'no-allow-policy-matched'],
    ['allow needs an identity: plaintext is refused', [allowWeb], undefined, '10.244.1.2', false, 'no-allow-policy-matched'],
    ['deny by namespace wins over allow', [allowAll, denyLoad], load, '10.244.1.3', false, 'denied-by-policy'],
    ['deny does not hit others', [allowAll, denyLoad], web, '10.244.1.2', true],
    ['ALLOW without rules denies everything', [allowNothing], web, '10.244.1.2', false, 'no-allow-policy-matched'],
    ['port rule: other port', [portOnly], web, '10.244.1.2', false, 'no-allow-policy-matched'],
    ['L7 ALLOW never matches at L4 (fail closed)', [l7Allow], web, '10.244.1.2', false, 'no-allow-policy-matched'],
    ['L7 DENY matches on its L4 part (fail closed)', [l7Deny], load, '10.244.1.3', false, 'denied-by-policy'],
    ['policies of another namespace do not apply', [otherNs], web, '10.244.1.2', true],
    ['root namespace policies apply mesh-wide', [meshDeny], web, '10.244.9.7', false, 'denied-by-policy'],
    ['root namespace policy, address outside the block', [meshDeny], web, '10.244.1.7', true],
  ];
  for (const [name, policies, principal, ip, allow, reason] of cases) {
    const v = authorize(policies, { principal, ip }, api);
    assert.equal(v.allow, allow, name);
    if (!v.allow) assert.equal(v.reason, reason, name);
  }
  const sel = ap('sel', { selector: { matchLabels: { app: 'db' } }, action: 'DENY', rules: [{}] });
  assert.equal(authorize([sel], { principal: web, ip: '1.2.3.4' }, api).allow, true, 'selector for another workload');
  assert.equal(authorize([portOnly], { principal: web, ip: '1.2.3.4' }, { ...api, port: 9090 }).allow, true);
});

test('peer authentication: workload > namespace > mesh > PERMISSIVE, port-level overrides', () => {
  const mesh = pa('default', { mtls: { mode: 'STRICT' } }, 'nodemesh-system');
  const nsPerm = pa('ns', { mtls: { mode: 'PERMISSIVE' } });
  const wlStrict = pa('wl', { selector: { matchLabels: { app: 'api' } }, mtls: { mode: 'STRICT' }, portLevelMtls: { '9090': { mode: 'PERMISSIVE' } } });
  const cases: [string, PeerAuthentication[], number, string][] = [
    ['nothing: PERMISSIVE', [], 8080, 'PERMISSIVE'],
    ['mesh-wide STRICT', [mesh], 8080, 'STRICT'],
    ['namespace overrides mesh', [mesh, nsPerm], 8080, 'PERMISSIVE'],
    ['workload overrides namespace', [mesh, nsPerm, wlStrict], 8080, 'STRICT'],
    ['port-level override', [mesh, nsPerm, wlStrict], 9090, 'PERMISSIVE'],
    ['UNSET falls through', [mesh, pa('unset', { mtls: { mode: 'UNSET' } })], 8080, 'STRICT'],
  ];
  for (const [name, pas, port, mode] of cases) assert.equal(peerAuthenticationMode(pas, { ...api, port }), mode, name);
});

test('authorize: targetRefs to a Service applies to the pods it selects, on its target ports; to a Gateway fails closed', () => {
  const viaSvc = { ...api, services: ['shop/api'] };
  const notViaSvc = { ...api, services: [] as string[] };
  const denyLoadToSvc = ap('deny-load-svc', { targetRefs: [{ kind: 'Service', name: 'api' }], action: 'DENY', rules: [{ from: [{ source: { namespaces: ['loadgen'] } }] }] });
  const allowWebToSvc = ap('allow-web-svc', { targetRefs: [{ kind: 'Service', name: 'api' }], rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/web'] } }] }] });
  const l7ToSvc = ap('l7-svc', { targetRefs: [{ kind: 'Service', name: 'api' }], rules: [{ to: [{ operation: { methods: ['GET'] } }] }] });
  const otherNsSvc = ap('other-ns-svc', { targetRefs: [{ kind: 'Service', name: 'api' }], action: 'DENY', rules: [{}] }, 'elsewhere');
  const gw = ap('gw', { targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }], action: 'ALLOW', rules: [{}] });
  const cases: [string, AuthorizationPolicy[], typeof viaSvc, string | undefined, boolean, string?][] = [
    ['Service DENY holds on a pod the Service selects', [denyLoadToSvc], viaSvc, load, false, 'denied-by-policy'],
    ['Service DENY does not hit other callers', [denyLoadToSvc], viaSvc, web, true],
    ['Service DENY does not apply off the Service (another port or pod)', [denyLoadToSvc], notViaSvc, load, true],
    ['Service ALLOW: the named principal passes', [allowWebToSvc], viaSvc, web, true],
    ['Service ALLOW: anyone else is refused', [allowWebToSvc], viaSvc, load, false, 'no-allow-policy-matched'],
    ['Service ALLOW with L7 fields matches nothing at L4', [l7ToSvc], viaSvc, web, false, 'no-allow-policy-matched'],
    ['a Service of the same name in another namespace is another Service', [otherNsSvc], viaSvc, web, true],
    ['Gateway policy: a workload using that waypoint is denied (fail closed)', [gw], { ...viaSvc, waypoint: 'waypoint' } as typeof viaSvc, web, false, 'denied-by-policy'],
    ['Gateway policy: a workload using another waypoint is not governed', [gw], { ...viaSvc, waypoint: 'other' } as typeof viaSvc, web, true],
    ['Gateway policy: a workload without a waypoint is not governed', [gw], viaSvc, web, true],
  ];
  for (const [name, policies, target, principal, allow, reason] of cases) {
    const v = authorize(policies, { principal, ip: '10.244.1.3' }, target);
    assert.equal(v.allow, allow, name);
    if (!v.allow) assert.equal(v.reason, reason, name);
  }
});
