// Issue 9 item 4 on the real kernel in the sandbox: BackendTrafficPolicy (policy.nodemesh.io)
// applied with `nodemesh local apply`, validated by its CRD schema, picked up by the
// namespace's waypoint (which writes its status), and enforced on traffic that eBPF captured
// in a client pod and its node's daemon tunnelled to the waypoint: a 50% abort fault, an
// outlier endpoint ejected and brought back, and a circuit breaker refusing excess requests.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO, STATE_DIR, apply, down, eventually, exec, leftovers, nodemeshOk, requireSandboxPrerequisites, status } from './helpers/sandbox';
import { appPod, vipService } from './helpers/manifests';

const L7_BACKEND = path.join(REPO, 'test', 'e2e', 'fixtures', 'l7-backend.js');
const FAILING_BACKEND = path.join(REPO, 'test', 'e2e', 'fixtures', 'failing-backend.js');
/** While this file exists the `bad` endpoint answers 500 (the fixture checks it per request). */
const FAIL_FILE = path.join(os.tmpdir(), `nodemesh-e2e-resilience-${process.pid}.fail`);

const pod = (name: string, node: string, labels: string, script: string, env: Record<string, string>) => appPod('shop', name, node, labels, ['node', script], env);
const service = (name: string, vip: string, selector: string) => vipService('shop', name, vip, selector);

const FAULTY_VIP = '10.96.10.10';
const PAIR_VIP = '10.96.10.11';
const SLOW_VIP = '10.96.10.12';
const SLOW_MS = 3000;

const MANIFEST = `
apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { nodemesh.io/dataplane-mode: ambient } }
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: shop }
spec: { nodeName: node-1, serviceAccountName: client, containers: [{ name: c, command: [sleep, "3600"] }] }
---
${pod('faulty', 'node-2', 'app: faulty', L7_BACKEND, { VERSION: 'faulty' })}
${pod('good', 'node-2', 'app: pair', L7_BACKEND, { VERSION: 'good' })}
${pod('bad', 'node-1', 'app: pair', FAILING_BACKEND, { VERSION: 'bad', FAIL_FILE })}
${pod('slow', 'node-2', 'app: slow', L7_BACKEND, { VERSION: 'slow', DELAY_MS: String(SLOW_MS) })}
${service('faulty', FAULTY_VIP, 'app: faulty')}
${service('pair', PAIR_VIP, 'app: pair')}
${service('slow', SLOW_VIP, 'app: slow')}
`;

const POLICIES = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: faulty, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: faulty }]
  rules:
  - backendRefs: [{ name: faulty, port: 80 }]
    retry: { attempts: 2, backoff: 10ms, codes: [503] }
---
apiVersion: policy.nodemesh.io/v1alpha1
kind: BackendTrafficPolicy
metadata: { name: half-abort, namespace: shop }
spec:
  targetRefs: [{ group: gateway.networking.k8s.io, kind: HTTPRoute, name: faulty }]
  faultInjection:
    abort: { httpStatus: 503, percentage: 50 }
---
apiVersion: policy.nodemesh.io/v1alpha1
kind: BackendTrafficPolicy
metadata: { name: eject-outliers, namespace: shop }
spec:
  targetRefs: [{ group: "", kind: Service, name: pair }]
  outlierDetection: { consecutive5xxErrors: 3, interval: 30s, baseEjectionTime: 10s, maxEjectionPercent: 50 }
---
apiVersion: policy.nodemesh.io/v1alpha1
kind: BackendTrafficPolicy
metadata: { name: small-pool, namespace: shop }
spec:
  targetRefs: [{ kind: Service, name: slow }]
  circuitBreaker: { maxParallelRequests: 2, maxPendingRequests: 1 }
`;

interface Answer { status: number; version?: string; overloaded?: string; reason?: string; ms: number; error?: string }

/** `count` GETs from a pod, `concurrency` at a time over keep-alive connections, bounded in
 * time; each answer with its status, the backend's version, the overload header and how long it took. */
async function requests(from: string, url: string, count: number, concurrency: number): Promise<Answer[]> {
  const script = `
    const http = require('http');
    const agent = new http.Agent({ keepAlive: true, maxSockets: ${concurrency} });
    const out = []; let started = 0;
    const deadline = setTimeout(() => { console.log(JSON.stringify(out)); process.exit(3); }, 100000);
    const one = () => {
      if (started >= ${count}) return;
      started++;
      const t0 = Date.now();
      const done = (a) => { out.push({ ...a, ms: Date.now() - t0 }); if (out.length === ${count}) { clearTimeout(deadline); console.log(JSON.stringify(out)); process.exit(0); } one(); };
      const req = http.get(${JSON.stringify(url)}, { agent, timeout: 20000 }, (res) => {
        let b = ''; res.setEncoding('utf8'); res.on('data', (d) => { b += d; });
        res.on('end', () => { let j = {}; try { j = JSON.parse(b); } catch {}
          done({ status: res.statusCode, version: j.version, overloaded: res.headers['nodemesh-overloaded'], reason: res.statusCode >= 500 ? String(res.headers['nodemesh-reason'] || '').slice(0, 200) : undefined }); });
      });
      req.on('timeout', () => req.destroy(new Error('TIMEOUT')));
      req.on('error', (e) => done({ status: 0, error: e.code || e.message }));
    };
    for (let i = 0; i < ${concurrency}; i++) one();`;
  const r = await exec(from, ['node', '-e', script], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, `requests from ${from} to ${url}: exit ${r.code}\n${r.stdout.slice(0, 2000)}\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Answer[];
}

const tally = (xs: Answer[], f: (x: Answer) => string) => xs.reduce<Record<string, number>>((m, x) => { const k = f(x); m[k] = (m[k] ?? 0) + 1; return m; }, {});

/** The waypoint's Prometheus text, over its admin socket (no network from the root namespace). */
function waypointMetrics(): Promise<string> {
  const cluster = JSON.parse(fs.readFileSync(path.join(STATE_DIR, 'cluster.json'), 'utf8')) as { pods: Record<string, { runDir: string }> };
  const rec = cluster.pods['shop/waypoint-waypoint'];
  assert.ok(rec, 'the waypoint pod is in cluster.json');
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath: path.join(rec.runDir, 'admin.sock'), path: '/metrics', timeout: 5000, agent: false }, (res) => {
      let b = ''; res.setEncoding('utf8'); res.on('data', (d: string) => { b += d; }); res.on('end', () => resolve(b));
    });
    req.on('timeout', () => req.destroy(new Error('no /metrics answer within 5 s')));
    req.on('error', reject);
  });
}

function metricValue(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describe('waypoint resilience (BackendTrafficPolicy) in the sandbox', () => {
  let waypointLog = '';

  before(async () => {
    requireSandboxPrerequisites();
    await down();
    fs.writeFileSync(FAIL_FILE, 'fail\n');
    await nodemeshOk(['local', 'up', '--nodes', '2', '-f', '-'], { input: MANIFEST, timeoutMs: 180_000 });
    await nodemeshOk(['waypoint', 'apply', '-n', 'shop', '--enroll-namespace'], { timeoutMs: 90_000 });
    const r = await apply(POLICIES);
    assert.equal(r.code, 0, r.stderr);
    const st = await status();
    waypointLog = st.pods.find((p) => p.namespace === 'shop' && p.name === 'waypoint-waypoint')!.log;
  });
  after(async () => {
    fs.rmSync(FAIL_FILE, { force: true });
    await down();
    assert.deepEqual(leftovers(), []);
  });

  test('local apply refuses a bad policy with the API server\'s words; the waypoint accepts the good ones in their status', async () => {
    const bad = await apply(`
apiVersion: policy.nodemesh.io/v1alpha1
kind: BackendTrafficPolicy
metadata: { name: bad, namespace: shop }
spec:
  targetRefs: [{ kind: HTTPRoute, group: gateway.networking.k8s.io, name: faulty }]
  circuitBreaker: { maxParalelRequests: 2 }
`);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /spec\.circuitBreaker\.maxParalelRequests/);
    const list = await eventually('every policy target Accepted by the waypoint', async () => {
      const l = JSON.parse((await nodemeshOk(['waypoint', 'list', '-o', 'json'])).stdout) as { policies: { name: string; targets: { kind: string; name: string; accepted: string }[] }[] }[];
      const targets = l[0]?.policies.flatMap((p) => p.targets.map((t) => `${p.name} ${t.kind}/${t.name} ${t.accepted}`)) ?? [];
      return targets.length === 3 && targets.every((t) => t.endsWith('True (Accepted)')) ? targets : undefined;
    }, 20_000);
    assert.deepEqual(list.sort(), [
      'eject-outliers Service/pair True (Accepted)', 'half-abort HTTPRoute/faulty True (Accepted)', 'small-pool Service/slow True (Accepted)',
    ]);
  });

  test('a 50% abort fault gives about half 503s, never retried', async (t) => {
    const answers = await requests('shop/client', `http://${FAULTY_VIP}/`, 1000, 8);
    const byStatus = tally(answers, (a) => String(a.status));
    t.diagnostic(`statuses of 1000: ${JSON.stringify(byStatus)}`);
    assert.equal((byStatus['200'] ?? 0) + (byStatus['503'] ?? 0), 1000, JSON.stringify(byStatus));
    // Binomial(1000, 0.5): mean 500, sd 15.8; five sd either way.
    assert.ok(byStatus['503'] >= 421 && byStatus['503'] <= 579, JSON.stringify(byStatus));
    for (const a of answers.filter((x) => x.status === 503)) assert.equal(a.reason, 'fault injected by BackendTrafficPolicy shop/half-abort');
    for (const a of answers.filter((x) => x.status === 200)) assert.equal(a.version, 'faulty');
    const m = await waypointMetrics();
    assert.equal(metricValue(m, 'nodemesh_waypoint_faults_injected_total', 'policy="shop/half-abort",fault="abort"'), byStatus['503']);
    // the route retries 503, but an injected abort is never retried
    assert.equal(metricValue(m, 'nodemesh_waypoint_retries_total', 'route="shop/faulty"'), 0);
  });

  test('an outlier endpoint (always 500) is ejected, traffic goes to the healthy one, and it comes back once healthy', async (t) => {
    // One at a time, so the three 500s in a row are the bad endpoint's first three answers.
    const first = await requests('shop/client', `http://${PAIR_VIP}/`, 30, 1);
    const outcome = first.map((a) => `${a.status} ${a.version}`);
    t.diagnostic(`answers in order: ${outcome.join(', ')}`);
    assert.equal(outcome.filter((o) => o === '500 bad').length, 3, outcome.join(', '));
    const afterThird = outcome.slice(outcome.lastIndexOf('500 bad') + 1);
    assert.ok(afterThird.length >= 10, `the bad endpoint was picked late: ${outcome.join(', ')}`);
    assert.deepEqual(afterThird, Array(afterThird.length).fill('200 good'), 'after its ejection only the healthy endpoint answers');
    const m = await waypointMetrics();
    assert.equal(metricValue(m, 'nodemesh_waypoint_outlier_ejections_total', 'backend="shop/pair",reason="consecutive_5xx"'), 1);
    const ejected = await eventually('the ejection in the waypoint log', () => fs.readFileSync(waypointLog, 'utf8').split('\n')
      .filter((l) => l.includes('outlier detection ejected an endpoint')).map((l) => JSON.parse(l) as Record<string, unknown>).pop());
    assert.equal(ejected.backend, 'shop/pair');
    assert.equal(ejected.forMs, 10_000);
    // Healed: once the ejection time is over it takes traffic again.
    fs.rmSync(FAIL_FILE);
    const back = await eventually('the healed endpoint answering again', async () => {
      const some = await requests('shop/client', `http://${PAIR_VIP}/`, 10, 1);
      return some.find((a) => a.status === 200 && a.version === 'bad');
    }, 40_000);
    assert.ok(back);
    await eventually('the return in the waypoint log', () => fs.readFileSync(waypointLog, 'utf8').includes('outlier detection brought an endpoint back'));
  });

  test('circuit breaking: with a slow backend, excess concurrent requests get 503 at once and are counted', async (t) => {
    const answers = await requests('shop/client', `http://${SLOW_VIP}/`, 8, 8);
    t.diagnostic(`answers: ${answers.map((a) => `${a.status} in ${a.ms} ms`).join(', ')}`);
    const ok = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status === 503);
    assert.equal(ok.length + refused.length, 8, JSON.stringify(answers));
    // two in flight and one waiting; a request that reached the waypoint late might find room
    assert.ok(refused.length >= 4 && ok.length >= 3, JSON.stringify(answers));
    for (const r of refused) {
      assert.equal(r.overloaded, 'true');
      assert.match(String(r.reason), /^circuit breaker of backend Service shop\/slow is open/);
      assert.ok(r.ms < SLOW_MS, `a refusal waited for the slow backend: ${JSON.stringify(r)}`);
    }
    const m = await waypointMetrics();
    assert.equal(metricValue(m, 'nodemesh_waypoint_circuit_breaker_overflows_total', 'backend="shop/slow",limit="max_pending_requests"'), refused.length);
  });
});
