import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { checkWaypointGateway, checkWaypointPod, type ApiPod, type BoundToken } from './waypoint-caller';

const token: BoundToken = { namespace: 'shop', serviceAccount: 'waypoint', pod: 'waypoint-7d9-x', podUid: 'u-1' };
const labels = { 'app.kubernetes.io/component': 'nodemesh-waypoint', 'gateway.networking.k8s.io/gateway-name': 'waypoint' };
const pod = (o: { uid?: string; labels?: Record<string, string>; sa?: string; deleting?: boolean } = {}): ApiPod => ({
  metadata: { uid: o.uid ?? 'u-1', labels: o.labels ?? labels, ...(o.deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}) },
  spec: { serviceAccountName: o.sa ?? 'waypoint', nodeName: 'node-1' },
});

test('a token is a waypoint\'s only when its pod is one the controller made for that Gateway', () => {
  const cases: [string, BoundToken, ApiPod | undefined, string | RegExp][] = [
    ['the waypoint pod', token, pod(), 'waypoint'],
    ['no uid in the review: the pod as it is', { ...token, podUid: undefined }, pod({ uid: 'other' }), 'waypoint'],
    ['pod gone', token, undefined, /pod shop\/waypoint-7d9-x does not exist/],
    ['pod replaced under the same name', token, pod({ uid: 'u-2' }), /replaced/],
    ['pod terminating', token, pod({ deleting: true }), /being deleted/],
    ['pod runs as another service account', token, pod({ sa: 'api' }), /does not run as service account waypoint/],
    ['an app pod', token, pod({ labels: { app: 'api' } }), /not a waypoint pod/],
    ['waypoint label, no Gateway name', token, pod({ labels: { 'app.kubernetes.io/component': 'nodemesh-waypoint' } }), /names no Gateway/],
    ['the pod names another Gateway than its service account', token, pod({ labels: { ...labels, 'gateway.networking.k8s.io/gateway-name': 'other' } }), /not the waypoint service account of Gateway shop\/other/],
  ];
  for (const [name, t, p, want] of cases) {
    const d = checkWaypointPod(t, p);
    if (typeof want === 'string') assert.deepEqual(d, { ok: true, gateway: want }, name);
    else assert.ok(!d.ok && want.test(d.reason), `${name}: ${JSON.stringify(d)}`);
  }
});

test('the Gateway must exist and be of class nodemesh-waypoint', () => {
  assert.deepEqual(checkWaypointGateway('shop', 'waypoint', { spec: { gatewayClassName: 'nodemesh-waypoint' } }), { ok: true, gateway: 'waypoint' });
  const no = (g: Parameters<typeof checkWaypointGateway>[2]) => { const d = checkWaypointGateway('shop', 'waypoint', g); return d.ok ? '' : d.reason; };
  assert.match(no(undefined), /Gateway shop\/waypoint does not exist/);
  assert.match(no({ spec: { gatewayClassName: 'istio-waypoint' } }), /class "istio-waypoint", not nodemesh-waypoint/);
  assert.match(no({}), /class "", not nodemesh-waypoint/);
  // A hostile class name is bounded in the reason.
  assert.ok(no({ spec: { gatewayClassName: 'x'.repeat(10_000) } }).length < 200);
});
