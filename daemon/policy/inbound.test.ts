import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inboundVerdict } from './inbound';
import { buildSnapshot } from '../state/snapshot';
import type { Resource } from '../state/resources';

const base: Resource[] = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'nodemesh.io/dataplane-mode': 'ambient' } } },
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'db', namespace: 'shop', uid: 'db', labels: { app: 'db' } },
    spec: { nodeName: 'node-1', serviceAccountName: 'db', containers: [{ name: 'c' }] }, status: { phase: 'Running', podIP: '10.244.1.3' } },
];
const strict: Resource = { apiVersion: 'security.nodemesh.io/v1alpha1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: 'shop' }, spec: { mtls: { mode: 'STRICT' } } };
const onlyApi: Resource = { apiVersion: 'security.nodemesh.io/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'db', namespace: 'shop' },
  spec: { selector: { matchLabels: { app: 'db' } }, rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/api'] } }] }] } };
const api = 'spiffe://cluster.local/ns/shop/sa/api';
const web = 'spiffe://cluster.local/ns/shop/sa/web';

test('inbound verdict: peer authentication, then authorization', () => {
  const cases: [string, Resource[], string | undefined, boolean, string?][] = [
    ['no policy, plaintext: PERMISSIVE admits', [], undefined, true],
    ['STRICT refuses plaintext', [strict], undefined, false, 'peer-authentication-strict'],
    ['STRICT admits an identity', [strict], web, true],
    ['ALLOW policy admits the named identity', [strict, onlyApi], api, true],
    ['ALLOW policy refuses another identity', [onlyApi], web, false, 'no-allow-policy-matched'],
    ['ALLOW policy refuses plaintext even when PERMISSIVE', [onlyApi], undefined, false, 'no-allow-policy-matched'],
  ];
  for (const [name, extra, principal, allow, reason] of cases) {
    const s = buildSnapshot([...base, ...extra], 1);
    const v = inboundVerdict(s, s.workloads.get('db')!, { principal, ip: '10.244.2.7' }, 9000);
    assert.equal(v.allow, allow, name);
    if (!v.allow) assert.equal(v.reason, reason, name);
  }
});

test('inbound verdict: made once per snapshot, right for every port, a new snapshot sees new policies', () => {
  const port9000: Resource = { apiVersion: 'security.nodemesh.io/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'p9000', namespace: 'shop' },
    spec: { selector: { matchLabels: { app: 'db' } }, rules: [{ to: [{ operation: { ports: ['9000'] } }] }] } };
  const s = buildSnapshot([...base, port9000], 1);
  const db = s.workloads.get('db')!;
  // More ports than the per-workload cache keeps (a peer chooses the port): each still judged.
  for (let round = 0; round < 2; round++) {
    for (let port = 8900; port < 9100; port++) {
      assert.equal(inboundVerdict(s, db, { principal: web, ip: '10.244.2.7' }, port).allow, port === 9000, `port ${port}, round ${round}`);
    }
  }
  const denyWeb: Resource = { apiVersion: 'security.nodemesh.io/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'deny-web', namespace: 'shop' },
    spec: { action: 'DENY', rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/web'] } }] }] } };
  const denied = buildSnapshot([...base, port9000, denyWeb], 2);
  const v = inboundVerdict(denied, denied.workloads.get('db')!, { principal: web, ip: '10.244.2.7' }, 9000);
  assert.equal(v.allow, false);
  assert.equal(inboundVerdict(s, db, { principal: web, ip: '10.244.2.7' }, 9000).allow, true, 'the old snapshot keeps its own verdict');
});
