// The waypoint end to end on loopback: real mTLS HBONE in (caller identity) and out (the
// waypoint's identity), real HTTP/1.1 and HTTP/2 inside, real routes. The sandbox e2e test
// (test/e2e/waypoint.test.ts) repeats the headline cases on the kernel path.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../daemon/tunnel/hbone-test-kit';
import { httpRoute } from './route-test-kit';
import { API_VIP, WaypointRig, startWaypointRig } from './waypoint-test-kit';

let rig: WaypointRig;
let seed = 7;
const lcg = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
before(async () => { rig = await startWaypointRig({ random: lcg }); });
after(async () => { await rig.stop(); });

const versionOf = (body: string) => (JSON.parse(body) as { version: string }).version;

test('without routes the Service is served as itself', async () => {
  rig.setRoutes([]);
  const r = await rig.get('/hello?x=1');
  assert.equal(r.status, 200);
  assert.match(versionOf(r.body), /^v[12]$/);
  const last = rig.seen.at(-1)!;
  assert.equal(last.url, '/hello?x=1');
  assert.equal(last.headers.host, 'api.shop');
  assert.match(String(last.headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  assert.equal(rig.judged.at(-1), 'spiffe://cluster.local/ns/shop/sa/web', 'the destination judged the original caller, vouched for by the waypoint');
  const log = rig.sink.find(/waypoint request/)!;
  assert.equal(log.caller, 'spiffe://cluster.local/ns/shop/sa/web');
  assert.equal(log.waypoint, 'spiffe://cluster.local/ns/shop/sa/waypoint');
});

test('a 90/10 split lands near 90/10, and a header match always goes to v2', async () => {
  rig.setRoutes([httpRoute('split', [
    { matches: [{ headers: [{ name: 'x-canary', value: 'yes' }] }], backendRefs: [{ name: 'api-v2', port: 80 }] },
    { backendRefs: [{ name: 'api-v1', port: 80, weight: 90 }, { name: 'api-v2', port: 80, weight: 10 }] },
  ])]);
  const counts: Record<string, number> = { v1: 0, v2: 0 };
  for (let i = 0; i < 300; i++) counts[versionOf((await rig.get('/')).body)]++;
  assert.ok(counts.v2 >= 12 && counts.v2 <= 50, `v2 got ${counts.v2} of 300`);
  for (let i = 0; i < 20; i++) assert.equal(versionOf((await rig.get('/', { headers: { 'x-canary': 'yes' } })).body), 'v2');
});

test('filters: rewrite, header modifiers, redirect', async () => {
  rig.setRoutes([httpRoute('filters', [
    {
      matches: [{ path: { type: 'PathPrefix', value: '/old' } }],
      filters: [
        { type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' } } },
        { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-from', value: 'waypoint' }], remove: ['x-secret'] } },
        { type: 'ResponseHeaderModifier', responseHeaderModifier: { add: [{ name: 'x-served-by', value: 'waypoint' }] } },
      ],
      backendRefs: [{ name: 'api-v1', port: 80 }],
    },
    { matches: [{ path: { type: 'Exact', value: '/moved' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplaceFullPath', replaceFullPath: '/here' }, statusCode: 301 } }] },
  ])]);
  const r = await rig.get('/old/thing?q=1', { headers: { 'x-secret': 's' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-served-by'], 'waypoint');
  const last = rig.seen.at(-1)!;
  assert.equal(last.url, '/new/thing?q=1');
  assert.equal(last.headers['x-from'], 'waypoint');
  assert.equal(last.headers['x-secret'], undefined);
  const m = await rig.get('/moved?a=b');
  assert.equal(m.status, 301);
  assert.equal(m.headers.location, 'http://api.shop/here?a=b');
  assert.equal((await rig.get('/nothing')).status, 404);
});

test('retries hide a backend that fails every other request; a slow backend gets 504', async () => {
  rig.behaviour.set('v1', (req, res, n) => {
    req.resume();
    req.on('end', () => { res.writeHead(n % 2 === 0 ? 503 : 200); res.end(n % 2 === 0 ? 'fail' : 'ok'); });
  });
  rig.setRoutes([httpRoute('retry', [{ backendRefs: [{ name: 'api-v1', port: 80 }], retry: { attempts: 2, backoff: '1ms', codes: [503] } }])]);
  for (let i = 0; i < 10; i++) assert.equal((await rig.get('/')).status, 200);
  rig.setRoutes([httpRoute('no-retry', [{ backendRefs: [{ name: 'api-v1', port: 80 }] }])]);
  const statuses = [];
  for (let i = 0; i < 4; i++) statuses.push((await rig.get('/')).status);
  assert.deepEqual(statuses.sort(), [200, 200, 503, 503]);
  rig.behaviour.set('v1', (req, res) => { req.resume(); setTimeout(() => { if (!res.destroyed) res.end('late'); }, 2000); });
  rig.setRoutes([httpRoute('timeout', [{ backendRefs: [{ name: 'api-v1', port: 80 }], timeouts: { request: '200ms' } }])]);
  const t = await rig.get('/');
  assert.equal(t.status, 504);
  assert.match(String(t.headers['nodemesh-reason']), /request timeout 200 ms/);
  rig.behaviour.delete('v1');
});

test('HTTP/2 with prior knowledge goes through as HTTP/2', async () => {
  rig.setRoutes([httpRoute('h2', [{ matches: [{ path: { type: 'PathPrefix', value: '/v2' } }], backendRefs: [{ name: 'api-v2', port: 80 }] }, { backendRefs: [{ name: 'api-v1', port: 80 }] }])]);
  const r = await rig.getH2('/v2/x');
  assert.equal(r.status, 200, JSON.stringify(r.headers));
  assert.equal(versionOf(r.body), 'v2');
});

test('a tunnel that is not HTTP passes through as TCP', async () => {
  const sock = await rig.tunnel('10.96.0.13', 80);
  const got = new Promise<string>((resolve) => { let s = ''; sock.on('data', (c: Buffer) => { s += c; if (s.length >= 9) resolve(s); }); });
  sock.write('\x16binary!\n');
  assert.equal(await got, '\x16binary!\n');
  sock.destroy();
});

test('a Service not bound to this waypoint is refused', async () => {
  await assert.rejects(rig.tunnel('10.96.0.14', 80), /does not use waypoint shop\/waypoint/);
  await assert.rejects(rig.tunnel('10.1.2.3', 80), /not a Service VIP/);
  void API_VIP;
});

test('L7 deny answers 403 and logs why; TCP through the waypoint gets L4 policy', async () => {
  rig.setRoutes([]);
  rig.setExtra([{
    apiVersion: 'security.nodemesh.io/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'no-admin', namespace: 'shop' },
    spec: { targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }], action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }] },
  }, {
    apiVersion: 'security.nodemesh.io/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'tcp-only-db', namespace: 'shop' },
    spec: { targetRefs: [{ kind: 'Service', group: '', name: 'tcp' }], action: 'ALLOW', rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/db'] } }] }] },
  }]);
  try {
    const denied = await rig.get('/admin/users');
    assert.equal(denied.status, 403);
    assert.match(String(denied.headers['nodemesh-reason']), /denied-by-policy: denied by AuthorizationPolicy shop\/no-admin/);
    const line = rig.sink.lines.filter((l) => l.msg === 'waypoint request' && l.status === 403).at(-1)!;
    assert.equal(line.caller, 'spiffe://cluster.local/ns/shop/sa/web');
    assert.match(String(line.reason), /shop\/no-admin/);
    assert.equal((await rig.get('/users')).status, 200);
    const sock = await rig.tunnel('10.96.0.13', 80);
    sock.write('\x16binary');
    const closed = await new Promise<string>((resolve) => { sock.on('error', (e) => resolve(e.message)); sock.on('close', () => resolve('closed')); sock.resume(); });
    assert.ok(closed, 'the TCP tunnel is refused');
    // The Gateway-wide DENY on /admin* cannot be checked on raw TCP, so it applies on its L4 part (fail closed).
    await waitFor(() => rig.sink.lines.some((l) => l.msg === 'TCP tunnel refused: denied by AuthorizationPolicy shop/no-admin'), 3000, 'the refusal in the log');
  } finally {
    rig.setExtra([]);
  }
});
