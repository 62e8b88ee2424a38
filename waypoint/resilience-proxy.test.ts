// BackendTrafficPolicy through the whole waypoint on loopback (waypoint-test-kit.ts: real mTLS
// HBONE in and out, real HTTP/1.1 and HTTP/2): fault injection, circuit breaking and outlier
// detection as a caller sees them. test/e2e/waypoint-resilience.test.ts repeats them on the
// kernel path in the sandbox.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import type { BackendTrafficPolicy, Resource } from '../daemon/state/resources';
import { waitFor } from '../daemon/tunnel/hbone-test-kit';
import { httpRoute } from './route-test-kit';
import { API_VIP, WaypointRig, startWaypointRig } from './waypoint-test-kit';

let rig: WaypointRig;
before(async () => { rig = await startWaypointRig(); });
after(async () => { await rig.stop(); });

const policy = (name: string, spec: BackendTrafficPolicy['spec']): BackendTrafficPolicy => ({
  apiVersion: 'policy.nodemesh.io/v1alpha1', kind: 'BackendTrafficPolicy', metadata: { name, namespace: 'shop', generation: 1, creationTimestamp: '2026-01-01T00:00:00Z' }, spec,
});
const versionOf = (body: string) => { try { return (JSON.parse(body) as { version: string }).version; } catch { return body.trim(); } };
const metric = async (name: string) => (await rig.metrics.registry.getSingleMetric(name)!.get()).values;

test('a 50% abort fault on a route answers about half the requests 503, never retried', async () => {
  const route = httpRoute('api', [{ backendRefs: [{ name: 'api-v1', port: 80 }], retry: { attempts: 3, backoff: '1ms', codes: [503] } }]);
  rig.setExtra([route as unknown as Resource, policy('half', { targetRefs: [{ kind: 'HTTPRoute', name: 'api' }], faultInjection: { abort: { httpStatus: 503, percentage: 50 } } })]);
  rig.setRoutes([route]);
  try {
    const seenBefore = rig.seen.length;
    const statuses: Record<number, number> = {};
    for (let i = 0; i < 200; i++) {
      const r = await rig.get('/');
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      if (r.status === 503) assert.equal(r.headers['nodemesh-reason'], 'fault injected by BackendTrafficPolicy shop/half');
    }
    // Binomial(200, 0.5): sd 7.1; five sd either way.
    assert.ok(statuses[503] >= 65 && statuses[503] <= 135, JSON.stringify(statuses));
    assert.equal(statuses[503] + statuses[200], 200);
    assert.equal(rig.seen.length - seenBefore, statuses[200], 'aborted requests never reached the backend, and were not retried');
    const faults = await metric('nodemesh_waypoint_faults_injected_total');
    assert.deepEqual(faults.map((v) => [v.labels, v.value]), [[{ policy: 'shop/half', fault: 'abort' }, statuses[503]]]);
  } finally {
    rig.setExtra([]);
    rig.setRoutes([]);
  }
});

test('a gRPC abort on a Service: HTTP 200 with the status in the grpc-status trailer', async () => {
  rig.setExtra([policy('grpc-down', { targetRefs: [{ kind: 'Service', name: 'api' }], faultInjection: { abort: { grpcStatus: 14 } } })]);
  try {
    const sock = await rig.tunnel(API_VIP, 80);
    const session = http2.connect('http://api.shop', { createConnection: () => sock as unknown as net.Socket });
    const got = await new Promise<{ status: number; trailers: http2.IncomingHttpHeaders }>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': '/shop.Api/Get', 'content-type': 'application/grpc', te: 'trailers' });
      let status = 0;
      req.on('response', (h) => { status = Number(h[':status']); });
      req.on('trailers', (trailers) => resolve({ status, trailers }));
      req.on('error', reject);
      req.resume();
      req.end(Buffer.from([0, 0, 0, 0, 0]));
    });
    session.close();
    assert.equal(got.status, 200);
    assert.equal(got.trailers['grpc-status'], '14');
    assert.match(String(got.trailers['grpc-message']), /^UNAVAILABLE: fault injected by BackendTrafficPolicy shop\/grpc-down/);
    // the same policy answers a plain HTTP request with the HTTP equivalent
    assert.equal((await rig.get('/')).status, 503);
  } finally {
    rig.setExtra([]);
  }
});

test('an injected delay holds the request, outside the route timeout (as Envoy\'s fault filter sits before its router)', async () => {
  const route = httpRoute('api', [{ backendRefs: [{ name: 'api-v1', port: 80 }], timeouts: { request: '100ms' } }]);
  rig.setExtra([route as unknown as Resource, policy('slowdown', { targetRefs: [{ kind: 'HTTPRoute', name: 'api' }], faultInjection: { delay: { fixedDelay: '300ms' } } })]);
  rig.setRoutes([route]);
  try {
    const t0 = performance.now();
    const r = await rig.get('/');
    assert.equal(r.status, 200, String(r.headers['nodemesh-reason']));
    assert.ok(performance.now() - t0 >= 300, 'held for the fixed delay');
    const faults = await metric('nodemesh_waypoint_faults_injected_total');
    assert.ok(faults.some((v) => v.labels.policy === 'shop/slowdown' && v.labels.fault === 'delay' && v.value === 1));
  } finally {
    rig.setExtra([]);
    rig.setRoutes([]);
  }
});

test('circuit breaking: over maxParallelRequests + maxPendingRequests, 503 at once with nodemesh-overloaded, counted', async () => {
  // The backend holds every answer until the test lets go, so what is in flight is exact.
  const held: (() => void)[] = [];
  rig.behaviour.set('v1', (req, res) => { req.resume(); held.push(() => { if (!res.destroyed) { res.writeHead(200); res.end('slow'); } }); });
  const route = httpRoute('api', [{ backendRefs: [{ name: 'api-v1', port: 80 }], retry: { attempts: 3, backoff: '1ms', codes: [503] } }]);
  rig.setRoutes([route]);
  rig.setExtra([policy('small', { targetRefs: [{ kind: 'Service', name: 'api-v1' }], circuitBreaker: { maxParallelRequests: 2, maxPendingRequests: 1 } })]);
  try {
    const done: { status: number; overloaded?: string | string[] }[] = [];
    const all = Promise.all(Array.from({ length: 8 }, async () => {
      const r = await rig.get('/');
      done.push({ status: r.status, overloaded: r.headers['nodemesh-overloaded'] });
    }));
    // two in flight and one waiting; the other five are refused while the backend still holds
    await waitFor(() => done.length === 5 && held.length === 2, 10_000, 'five refusals while two requests are held');
    assert.deepEqual(done.map((r) => `${r.status} ${r.overloaded}`), Array(5).fill('503 true'));
    held.shift()!();
    await waitFor(() => held.length === 2, 10_000, 'the waiting request runs once a slot frees');
    for (const release of held.splice(0)) release();
    await all;
    assert.deepEqual(done.slice(5).map((r) => r.status), [200, 200, 200]);
    const overflows = await metric('nodemesh_waypoint_circuit_breaker_overflows_total');
    assert.deepEqual(overflows.map((v) => [v.labels, v.value]), [[{ backend: 'shop/api-v1', limit: 'max_pending_requests' }, 5]]);
    const line = rig.sink.lines.filter((l) => l.msg === 'waypoint request' && l.status === 503).at(-1)!;
    assert.match(String(line.reason), /^circuit breaker of backend Service shop\/api-v1 is open: 2 requests in flight, 1 pending \(maxPendingRequests 1\)/);
    assert.equal(line.attempts, 1, 'an overflow is not retried');
  } finally {
    for (const release of held.splice(0)) release();
    rig.behaviour.delete('v1');
    rig.setExtra([]);
    rig.setRoutes([]);
  }
});

test('circuitBreaker.maxRequestsPerConnection: a kept upstream tunnel serves that many requests, then a new one is opened', async () => {
  rig.setRoutes([httpRoute('api', [{ backendRefs: [{ name: 'api-v1', port: 80 }] }])]);
  const opened = async (n: number) => {
    const before = rig.upstream().tunnelsOpened;
    for (let i = 0; i < n; i++) assert.equal((await rig.get('/')).status, 200);
    return rig.upstream().tunnelsOpened - before;
  };
  try {
    await opened(1); // a kept tunnel exists for this caller and endpoint
    assert.equal(await opened(4), 0, 'without a policy the kept tunnel carries every request');
    rig.setExtra([policy('per-conn', { targetRefs: [{ kind: 'Service', name: 'api-v1' }], circuitBreaker: { maxRequestsPerConnection: 2 } })]);
    await opened(1); // the tunnel kept from before learns its limit and is not kept after this
    assert.equal(await opened(6), 3, 'six requests, two per tunnel');
  } finally {
    rig.setExtra([]);
    rig.setRoutes([]);
  }
});

test('outlier detection: an endpoint answering 500 is ejected, traffic goes to the healthy one, and it comes back', async () => {
  let failing = true;
  rig.behaviour.set('v1', (req, res) => { req.resume(); req.on('end', () => { res.writeHead(failing ? 500 : 200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ version: 'v1' })); }); });
  rig.setExtra([policy('eject', { targetRefs: [{ kind: 'Service', name: 'api' }], outlierDetection: { consecutive5xxErrors: 2, baseEjectionTime: '3s', maxEjectionPercent: 50 } })]);
  try {
    const answers: string[] = [];
    while (answers.filter((a) => a === '500 v1').length < 2 && answers.length < 100) { const r = await rig.get('/'); answers.push(`${r.status} ${versionOf(r.body)}`); }
    // ejected after its second 500: the next requests (well inside the 3 s) all go to v2
    for (let i = 0; i < 20; i++) { const r = await rig.get('/'); answers.push(`${r.status} ${versionOf(r.body)}`); }
    assert.equal(answers.filter((a) => a === '500 v1').length, 2, answers.join(', '));
    assert.deepEqual(answers.slice(-20), Array(20).fill('200 v2'));
    const ejections = await metric('nodemesh_waypoint_outlier_ejections_total');
    assert.deepEqual(ejections.map((v) => [v.labels, v.value]), [[{ backend: 'shop/api', reason: 'consecutive_5xx' }, 1]]);
    assert.ok(rig.sink.lines.some((l) => l.msg === 'outlier detection ejected an endpoint' && l.endpoint === '10.244.1.2:8080' && l.forMs === 3000));
    // healthy again: once the ejection time is up it gets traffic again
    failing = false;
    const back: string[] = [];
    const deadline = Date.now() + 15_000;
    while (!back.includes('v1') && Date.now() < deadline) { back.push(versionOf((await rig.get('/')).body)); await new Promise((r) => setTimeout(r, 50)); }
    assert.ok(back.includes('v1'), `v1 never came back: ${back.length} requests`);
    assert.ok(rig.sink.lines.some((l) => l.msg === 'outlier detection brought an endpoint back' && l.endpoint === '10.244.1.2:8080'));
  } finally {
    rig.behaviour.delete('v1');
    rig.setExtra([]);
  }
});
