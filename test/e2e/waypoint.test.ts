// Issue 9 on the real kernel in the sandbox: a namespace gets a waypoint (a Gateway of class
// nodemesh-waypoint), its Services' traffic is captured by eBPF, tunnelled by the source node's
// daemon over HBONE to the waypoint (:authority = the Service VIP), routed there by HTTPRoutes
// and tunnelled on with the waypoint's identity. Clients no one here wrote (curl, h2load) work
// through it; a namespace without a waypoint behaves as before.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO, STATE_DIR, apply, down, eventually, exec, leftovers, nodemesh, nodemeshOk, requireSandboxPrerequisites, status } from './helpers/sandbox';
import { appPod, vipService } from './helpers/manifests';
import { connections } from './helpers/mesh';

const BACKEND = path.join(REPO, 'test', 'e2e', 'fixtures', 'l7-backend.js');
const API_VIP = '10.96.9.10';
const backend = (name: string, node: string, labels: string, { NS, ...env }: Record<string, string>) => appPod(NS ?? 'shop', name, node, labels, ['node', BACKEND], env);
const service = (name: string, vip: string, selector: string, ns = 'shop') => vipService(ns, name, vip, selector);

const MANIFEST = `
apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { nodemesh.io/dataplane-mode: ambient } }
---
apiVersion: v1
kind: Namespace
metadata: { name: other, labels: { nodemesh.io/dataplane-mode: ambient } }
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: shop }
spec: { nodeName: node-1, serviceAccountName: client, containers: [{ name: c, command: [sleep, "3600"] }] }
---
${backend('api-v1', 'node-2', 'app: api, version: v1', { VERSION: 'v1' })}
${backend('api-v2', 'node-1', 'app: api, version: v2', { VERSION: 'v2' })}
${backend('flaky', 'node-2', 'app: flaky', { VERSION: 'flaky', FAIL_EVERY_OTHER: '1' })}
${backend('slow', 'node-2', 'app: slow', { VERSION: 'slow', DELAY_MS: '3000' })}
${backend('other-api', 'node-2', 'app: other', { VERSION: 'other', NS: 'other' })}
${service('api', API_VIP, 'app: api')}
${service('api-v1', '10.96.9.11', 'version: v1')}
${service('api-v2', '10.96.9.12', 'version: v2')}
${service('flaky', '10.96.9.13', 'app: flaky')}
${service('slow', '10.96.9.14', 'app: slow')}
${service('other', '10.96.9.20', 'app: other', 'other')}
`;

const ROUTES = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: api, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: api, port: 80 }]
  rules:
  - matches: [{ headers: [{ name: x-canary, value: "yes" }] }]
    backendRefs: [{ name: api-v2, port: 80 }]
  - matches: [{ path: { type: PathPrefix, value: /old } }]
    filters: [{ type: URLRewrite, urlRewrite: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /new } } }]
    backendRefs: [{ name: api-v1, port: 80 }]
  - backendRefs: [{ name: api-v1, port: 80, weight: 90 }, { name: api-v2, port: 80, weight: 10 }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: flaky, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: flaky }]
  rules:
  - backendRefs: [{ name: flaky, port: 80 }]
    retry: { attempts: 2, backoff: 10ms, codes: [503] }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: slow, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: slow }]
  rules:
  - backendRefs: [{ name: slow, port: 80 }]
    timeouts: { request: 500ms }
`;

/** Runs `count` GETs from a pod (keep-alive, `concurrency` at a time), bounded in time;
 * per-request status and the backend's answer. */
async function load(pod: string, url: string, count: number, headers: Record<string, string> = {}, concurrency = 8): Promise<{ status: number; version?: string; path?: string; reason?: string }[]> {
  const script = `
    const http = require('http');
    const agent = new http.Agent({ keepAlive: true, maxSockets: ${concurrency} });
    const out = []; let done = 0; let next = 0;
    const deadline = setTimeout(() => { console.log(JSON.stringify(out)); process.exit(3); }, 90000);
    const one = () => {
      if (next >= ${count}) return;
      next++;
      const req = http.get(${JSON.stringify(url)}, { agent, headers: ${JSON.stringify(headers)}, timeout: 10000 }, (res) => {
        let b = ''; res.setEncoding('utf8'); res.on('data', (d) => { b += d; });
        res.on('end', () => { let j = {}; try { j = JSON.parse(b); } catch {} out.push({ status: res.statusCode, version: j.version, path: j.path, ...(res.statusCode >= 500 ? { reason: String(res.headers['nodemesh-reason'] || b).slice(0, 300) } : {}) }); finish(); });
      });
      req.on('timeout', () => req.destroy(new Error('TIMEOUT')));
      req.on('error', (e) => { out.push({ status: 0, error: e.code || e.message }); finish(); });
    };
    const finish = () => { done++; if (done === ${count}) { clearTimeout(deadline); console.log(JSON.stringify(out)); process.exit(0); } else one(); };
    for (let i = 0; i < ${concurrency}; i++) one();`;
  const r = await exec(pod, ['node', '-e', script], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, `load from ${pod} to ${url}: exit ${r.code}\n${r.stdout.slice(0, 2000)}\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { status: number; version?: string; path?: string }[];
}

const count = <T>(xs: T[], f: (x: T) => string) => xs.reduce<Record<string, number>>((m, x) => { const k = f(x); m[k] = (m[k] ?? 0) + 1; return m; }, {});

describe('the waypoint in the sandbox', () => {
  let waypointLog = '';

  before(async () => {
    requireSandboxPrerequisites();
    await down();
    await nodemeshOk(['local', 'up', '--nodes', '2', '-f', '-'], { input: MANIFEST, timeoutMs: 180_000 });
    const wp = await nodemeshOk(['waypoint', 'apply', '-n', 'shop', '--enroll-namespace'], { timeoutMs: 90_000 });
    assert.match(wp.stdout, /waypoint\/shop\/waypoint started \(node-\d, 10\.244\.\d+\.\d+, spiffe:\/\/cluster\.local\/ns\/shop\/sa\/waypoint\)/);
    const r = await apply(ROUTES);
    assert.equal(r.code, 0, r.stderr);
    const st = await status();
    const wpPod = st.pods.find((p) => p.namespace === 'shop' && p.name === 'waypoint-waypoint');
    assert.ok(wpPod, 'the waypoint has a pod');
    waypointLog = wpPod.log;
  });
  after(async () => {
    await down();
    assert.deepEqual(leftovers(), []);
  });

  test('routes are Accepted and the waypoint is listed with its Services', async () => {
    const deadline = Date.now() + 15_000;
    let list: { services: string[]; running: boolean; routes: { name: string; accepted: string; resolvedRefs: string }[] }[] = [];
    while (Date.now() < deadline) {
      list = JSON.parse((await nodemeshOk(['waypoint', 'list', '-o', 'json'])).stdout);
      if (list[0]?.routes.length === 3 && list[0].routes.every((r) => r.accepted.startsWith('True'))) break;
      await new Promise((res) => setTimeout(res, 300));
    }
    assert.equal(list.length, 1);
    assert.equal(list[0].running, true);
    assert.deepEqual([...list[0].services].sort(), ['api', 'api-v1', 'api-v2', 'flaky', 'slow']);
    for (const r of list[0].routes) {
      assert.match(r.accepted, /^True \(Accepted\)/, r.name);
      assert.match(r.resolvedRefs, /^True \(ResolvedRefs\)/, r.name);
    }
  });

  test('a 90/10 split over 2,000 requests lands within tolerance', async (t) => {
    const results = await load('shop/client', `http://${API_VIP}/`, 2000);
    const ok = results.filter((r) => r.status === 200);
    // Every request answered 200. (The 1-in-2,000 503 of issue 9 came from a CONNECT per request:
    // upstream HBONE sessions died with GOAWAY after ~1,100 one-shot streams, and the retry had no
    // other endpoint of a one-pod backend; the waypoint now keeps its upstream tunnels.)
    const failed = results.filter((r) => r.status !== 200);
    if (failed.length > 0) t.diagnostic(`not 200: ${JSON.stringify(failed)}`);
    assert.deepEqual(failed, [], `${failed.length} of 2000 requests failed`);
    const byVersion = count(ok, (r) => r.version ?? 'none');
    // Binomial(2000, 0.1): mean 200, sd 13.4; five sd either way.
    assert.ok(byVersion.v2 >= 133 && byVersion.v2 <= 267, `v2 got ${byVersion.v2} of ${ok.length} (${JSON.stringify(byVersion)})`);
    assert.equal(byVersion.v1 + byVersion.v2, ok.length);
  });

  test('a header match always routes to v2; a path rewrite arrives rewritten', async () => {
    const canary = await load('shop/client', `http://${API_VIP}/`, 100, { 'x-canary': 'yes' });
    assert.deepEqual(count(canary, (r) => `${r.status} ${r.version}`), { '200 v2': 100 });
    const rewritten = await load('shop/client', `http://${API_VIP}/old/thing?x=1`, 5);
    assert.deepEqual(rewritten.map((r) => `${r.status} ${r.version} ${r.path}`), Array(5).fill('200 v1 /new/thing?x=1'));
  });

  test('retries hide a backend failing every other request; a route timeout gives 504', async () => {
    // One at a time: the backend alternates over all its requests, so concurrent callers could
    // each draw only the failing turns.
    const flaky = await load('shop/client', 'http://10.96.9.13/', 40, {}, 1);
    assert.deepEqual(count(flaky, (r) => String(r.status)), { 200: 40 });
    const slow = await load('shop/client', 'http://10.96.9.14/', 3);
    assert.deepEqual(slow.map((r) => r.status), [504, 504, 504]);
  });

  test('curl (HTTP/1.1, --http2-prior-knowledge, --http2 upgrade offer) and h2load work through the waypoint', async () => {
    const curl = async (extra: string[]) => {
      const r = await exec('shop/client', ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', '--max-time', '10', ...extra, `http://${API_VIP}/`]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    };
    assert.equal(await curl([]), '200 1.1');
    assert.equal(await curl(['--http2-prior-knowledge']), '200 2');
    // curl --http2 on http:// offers `Upgrade: h2c`; the waypoint answers over HTTP/1.1
    // (waypoint/README.md: the h2c upgrade is not done, RFC 9110 lets a server ignore it).
    assert.equal(await curl(['--http2']), '200 1.1');
    const h2 = await exec('shop/client', ['h2load', '-n', '400', '-c', '4', '-m', '10', `http://${API_VIP}/`], { timeoutMs: 60_000 });
    assert.equal(h2.code, 0, h2.stdout + h2.stderr);
    assert.match(h2.stdout, /requests: 400 total, 400 started, 400 done, 400 succeeded, 0 failed, 0 errored/, h2.stdout);
    assert.match(h2.stdout, /status codes: 400 2xx/, h2.stdout);
  });

  test('the access log names both identities and the route; traceparent gets a new span', async () => {
    const r = await exec('shop/client', ['curl', '-sS', '--max-time', '10', '-H', 'traceparent: 00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01', '-H', 'x-canary: yes', `http://${API_VIP}/`]);
    const seen = JSON.parse(r.stdout) as { headers: Record<string, string> };
    assert.match(seen.headers.traceparent, /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    assert.notEqual(seen.headers.traceparent, '00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01');
    // Log lines are written in batches (daemon/log.ts): wait for this one to be flushed.
    const line = await eventually('the request in the waypoint access log', () => {
      const lines = fs.readFileSync(waypointLog, 'utf8').split('\n').filter((l) => l.includes('"waypoint request"')).map((l) => JSON.parse(l) as Record<string, unknown>);
      return lines.find((l) => typeof l.traceparent === 'string' && (l.traceparent as string).includes('0af7651916cd43dd8448eb211c80319c'));
    });
    assert.equal(line.caller, 'spiffe://cluster.local/ns/shop/sa/client');
    assert.equal(line.waypoint, 'spiffe://cluster.local/ns/shop/sa/waypoint');
    assert.equal(line.route, 'shop/api');
    assert.equal(line.backend, 'shop/api-v2');
    assert.equal(line.status, 200);
  });

  test('a namespace without a waypoint behaves exactly as before (L4 only, straight to the pod)', async () => {
    const results = await load('shop/client', 'http://10.96.9.20/', 10);
    assert.deepEqual(count(results, (r) => `${r.status} ${r.version}`), { '200 other': 10 });
    const st = await status();
    const otherIp = st.pods.find((p) => p.name === 'other-api')!.ip;
    const recs = (await connections('node-1')).filter((c) => c.originalDestination.address === '10.96.9.20:80');
    assert.ok(recs.length > 0, 'the connections are recorded');
    for (const c of recs) assert.equal(c.upstream, `${otherIp}:15008 (HBONE)`, 'HBONE to the endpoint itself, no waypoint');
  });

  test('L7 deny answers 403 and logs why', async () => {
    const r = await apply(`
apiVersion: security.nodemesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: no-admin, namespace: shop }
spec:
  targetRefs: [{ kind: Gateway, group: gateway.networking.k8s.io, name: waypoint }]
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }]
`);
    assert.equal(r.code, 0, r.stderr);
    const status = async (p: string) => (await exec('shop/client', ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', `http://${API_VIP}${p}`])).stdout.trim();
    let denied = '';
    for (let i = 0; i < 50 && denied !== '403'; i++) { denied = await status('/admin/users'); if (denied !== '403') await new Promise((res) => setTimeout(res, 200)); }
    assert.equal(denied, '403');
    assert.equal(await status('/users'), '200');
    const line = await eventually('the refusal in the access log (written in batches)', () =>
      fs.readFileSync(waypointLog, 'utf8').split('\n').filter((l) => l.includes('"status":403')).map((l) => JSON.parse(l) as Record<string, unknown>).pop());
    assert.equal(line.caller, 'spiffe://cluster.local/ns/shop/sa/client');
    assert.match(String(line.reason), /RBAC: access denied: denied-by-policy: denied by AuthorizationPolicy shop\/no-admin/);
  });

  test("the destination's L4 policy names the original caller through the waypoint", async () => {
    const policy = (principal: string) => `
apiVersion: security.nodemesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: api-callers, namespace: shop }
spec:
  selector: { matchLabels: { app: api } }
  action: ALLOW
  rules: [{ from: [{ source: { principals: ["${principal}"] } }] }]
`;
    // The pods see the waypoint's certificate; the policy names the client, and holds.
    assert.equal((await apply(policy('cluster.local/ns/shop/sa/client'))).code, 0);
    const ok = await load('shop/client', `http://${API_VIP}/`, 20);
    assert.deepEqual(count(ok, (r) => String(r.status)), { 200: 20 });
    // Naming someone else refuses the client, though the waypoint itself is the peer.
    assert.equal((await apply(policy('cluster.local/ns/shop/sa/someone-else'))).code, 0);
    const refused = await load('shop/client', `http://${API_VIP}/`, 5);
    assert.deepEqual(count(refused, (r) => String(r.status)), { 403: 5 });
    await nodemeshOk(['local', 'delete', '-f', '-'], { input: policy('x') });
  });

  test('deleting the waypoint fails its Services closed; the Services do not fall back to L4', async () => {
    await nodemeshOk(['waypoint', 'delete', '-n', 'shop'], { timeoutMs: 60_000 });
    const r = await exec('shop/client', ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', `http://${API_VIP}/`]);
    assert.notEqual(r.stdout.trim(), '200', 'no answer without the waypoint');
    const list = await nodemesh(['waypoint', 'list', '-o', 'json']);
    assert.deepEqual(JSON.parse(list.stdout), []);
    void STATE_DIR;
  });
});
