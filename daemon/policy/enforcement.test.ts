import { test } from 'node:test';
import assert from 'node:assert/strict';
import { enforcementOf, policyEnforcement, targetFacts } from './enforcement';
import { inboundVerdict } from './inbound';
import { buildSnapshot } from '../state/snapshot';
import type { AuthorizationPolicy, Namespace, Pod, Resource, Service } from '../state/resources';

const ap = (name: string, spec: AuthorizationPolicy['spec'], namespace = 'shop'): AuthorizationPolicy =>
  ({ apiVersion: 'security.nodemesh.io/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name, namespace }, spec });

test('enforcementOf: where each kind of policy holds', () => {
  const cases: [string, AuthorizationPolicy, string, string][] = [
    ['selector', ap('a', { selector: { matchLabels: { app: 'db' } } }), 'node-l4', 'at L4 by the node daemons, on workloads with app=db in shop'],
    ['namespace-wide', ap('a', {}), 'node-l4', 'at L4 by the node daemons, on every workload in shop'],
    ['mesh-wide', ap('a', {}, 'nodemesh-system'), 'node-l4', 'at L4 by the node daemons, on every workload (mesh-wide)'],
    ['L7 ALLOW', ap('a', { rules: [{ to: [{ operation: { paths: ['/x'] } }] }] }), 'node-l4', 'match nothing at L4 (fail closed)'],
    ['Service', ap('a', { targetRefs: [{ kind: 'Service', name: 'api' }] }), 'node-l4-service', 'on the pods Service/api selects, on its target ports'],
    ['Gateway', ap('a', { targetRefs: [{ kind: 'Gateway', name: 'w' }] }), 'waypoint', 'needs a waypoint: enforced there, at L7'],
  ];
  for (const [name, p, where, detail] of cases) {
    const e = enforcementOf(p);
    assert.equal(e.where, where, name);
    assert.ok(e.detail.includes(detail), `${name}: ${e.detail}`);
  }
});

const ns: Namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'nodemesh.io/dataplane-mode': 'ambient' } } };
const pod = (name: string, labels: Record<string, string>, ip: string): Pod => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'shop', uid: `uid-${name}`, labels },
  spec: { nodeName: 'node-1', serviceAccountName: name, containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 8080 }] }] },
  status: { phase: 'Running', podIP: ip },
});
const svc: Service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'api', namespace: 'shop' }, spec: { selector: { app: 'api' }, clusterIP: '10.96.0.20', ports: [{ port: 80, targetPort: 'http' }] } };

test('a targetRefs Service DENY holds through inboundVerdict, on the Service target port only', () => {
  const deny = ap('deny-web', { targetRefs: [{ kind: 'Service', name: 'api' }], action: 'DENY', rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/web'] } }] }] });
  const s = buildSnapshot([ns, pod('api-1', { app: 'api' }, '10.244.1.5'), pod('other', { app: 'other' }, '10.244.1.6'), svc, deny] as Resource[], 1);
  const api1 = s.workloads.get('uid-api-1')!;
  const other = s.workloads.get('uid-other')!;
  const web = 'spiffe://cluster.local/ns/shop/sa/web';
  assert.deepEqual(targetFacts(s, api1, 8080), { services: ['shop/api'] });
  assert.equal(inboundVerdict(s, api1, { principal: web, ip: '10.244.2.9' }, 8080).allow, false);
  assert.equal(inboundVerdict(s, api1, { principal: web, ip: '10.244.2.9' }, 9090).allow, true, 'not a target port of the Service');
  assert.equal(inboundVerdict(s, other, { principal: web, ip: '10.244.2.9' }, 8080).allow, true, 'not selected by the Service');
  const where = policyEnforcement(s);
  assert.deepEqual(where.map((e) => [e.name, e.where, e.workloads]), [['deny-web', 'node-l4-service', ['shop/api-1']]]);
});

test('a Gateway-targeted policy denies what its waypoint would govern, and says so', () => {
  const gw = ap('via-waypoint', { targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }], rules: [{}] });
  const s = buildSnapshot([ns, pod('api-1', { app: 'api', 'nodemesh.io/use-waypoint': 'waypoint' }, '10.244.1.5'), pod('other', { app: 'other' }, '10.244.1.6'), gw] as Resource[], 1);
  const v = inboundVerdict(s, s.workloads.get('uid-api-1')!, { principal: 'spiffe://cluster.local/ns/shop/sa/web', ip: '10.244.2.9' }, 8080);
  assert.equal(v.allow, false);
  if (!v.allow) assert.match(v.message, /fail closed/);
  assert.equal(inboundVerdict(s, s.workloads.get('uid-other')!, { principal: 'spiffe://cluster.local/ns/shop/sa/web', ip: '10.244.2.9' }, 8080).allow, true);
  assert.deepEqual(policyEnforcement(s).map((e) => [e.where, e.workloads]), [['waypoint', ['shop/api-1']]]);
});
