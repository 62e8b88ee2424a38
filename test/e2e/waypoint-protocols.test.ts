// Issue 9, the parts waypoint.test.ts leaves out, on the real kernel in the sandbox: a
// @grpc/grpc-js client routed by method with a GRPCRoute (unary and server-streaming calls,
// an L7 deny and an unmatched method answered with the gRPC status the spec maps them to);
// request mirroring (the mirror gets copies, the client only the primary's answers); caller
// statements forged, replayed or expired, sent by a hand-driven mesh peer, refused by the
// destination's daemon; and L7 rules in a namespace without a waypoint failing closed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import 'reflect-metadata';
import { MeshCA } from '../../daemon/identity/ca';
import { newSigningKeyPair, signStatement } from '../../daemon/tunnel/caller-statement';
import { REPO, STATE_DIR, apply, down, eventually, exec, findFile, leftovers, nodemeshOk, remove, requireSandboxPrerequisites, status } from './helpers/sandbox';
import { appPod, sleeperPod, vipService } from './helpers/manifests';
import { connections } from './helpers/mesh';

const FIXTURES = path.join(REPO, 'test', 'e2e', 'fixtures');
const fixture = (name: string) => path.join(FIXTURES, name);

const pod = (ns: string, name: string, node: string, labels: string, command: string[], env: Record<string, string> = {}, port = 8080) => appPod(ns, name, node, labels, command, env, { port, portName: 'app' });
const sleeper = (ns: string, name: string) => sleeperPod(ns, name);
const service = (ns: string, name: string, vip: string, selector: string, portName = 'http') => vipService(ns, name, vip, selector, { portName, targetPort: 'app' });

const GRPC_VIP = '10.96.10.10';
const MIRRORED_VIP = '10.96.10.20';
const PLAIN_API_VIP = '10.96.10.30';
const SECRET_PORT = 9000;

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
kind: Namespace
metadata: { name: plain }
---
${sleeper('shop', 'client')}
${sleeper('other', 'client')}
${sleeper('plain', 'prober')}
${pod('shop', 'grpc-v1', 'node-2', 'app: grpc, version: v1', ['node', fixture('grpc-backend.js')], { VERSION: 'v1' })}
${pod('shop', 'grpc-v2', 'node-1', 'app: grpc, version: v2', ['node', fixture('grpc-backend.js')], { VERSION: 'v2' })}
${pod('shop', 'primary', 'node-2', 'app: primary', ['node', fixture('l7-backend.js')], { VERSION: 'primary' })}
${pod('shop', 'mirror-sink', 'node-1', 'app: mirror-sink', ['node', fixture('l7-backend.js')], { VERSION: 'mirror', LOG_REQUESTS: '1' })}
${pod('other', 'plainapi', 'node-2', 'app: plainapi', ['node', fixture('l7-backend.js')], { VERSION: 'plain' })}
${pod('other', 'secret', 'node-2', 'app: secret', ['nodemesh-sample-app', 'tcp-echo', '--port', String(SECRET_PORT)], {}, SECRET_PORT)}
${service('shop', 'grpc', GRPC_VIP, 'app: grpc', 'grpc')}
${service('shop', 'grpc-v1', '10.96.10.11', 'version: v1', 'grpc')}
${service('shop', 'grpc-v2', '10.96.10.12', 'version: v2', 'grpc')}
${service('shop', 'mirrored', MIRRORED_VIP, 'app: primary')}
${service('shop', 'mirror-sink', '10.96.10.21', 'app: mirror-sink')}
${service('other', 'plainapi', PLAIN_API_VIP, 'app: plainapi')}
`;

const SHOP = 'nodemesh.e2e.Shop';
const ROUTES = `
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: grpc, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: grpc, port: 80 }]
  rules:
  - matches: [{ method: { service: ${SHOP}, method: GetItem }, headers: [{ name: x-version, value: v2 }] }]
    backendRefs: [{ name: grpc-v2, port: 80 }]
  - matches: [{ method: { service: ${SHOP}, method: GetItem } }, { method: { service: ${SHOP}, method: Admin } }]
    backendRefs: [{ name: grpc-v1, port: 80 }]
  - matches: [{ method: { service: ${SHOP}, method: ListItems } }]
    backendRefs: [{ name: grpc-v2, port: 80 }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: mirrored, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: mirrored, port: 80 }]
  rules:
  - filters: [{ type: RequestMirror, requestMirror: { backendRef: { name: mirror-sink, port: 80 } } }]
    backendRefs: [{ name: mirrored, port: 80 }]
`;

interface GrpcOutcome { ok: boolean; code?: number; status?: string; details?: string; reason?: string; items?: { name: string; version: string; pod: string; seq: number; seen: Record<string, string> }[] }
interface GrpcCall { method: 'GetItem' | 'ListItems' | 'Admin' | 'Unrouted'; name?: string; count?: number; metadata?: Record<string, string> }

/** Runs the calls one after another with @grpc/grpc-js inside shop/client. */
async function grpcCalls(calls: GrpcCall[]): Promise<GrpcOutcome[]> {
  const r = await exec('shop/client', ['node', fixture('grpc-client.js'), `${GRPC_VIP}:80`, JSON.stringify(calls)], { timeoutMs: 90_000 });
  assert.equal(r.code, 0, `grpc-client exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as GrpcOutcome[];
}

const count = <T>(xs: T[], f: (x: T) => string) => xs.reduce<Record<string, number>>((m, x) => { const k = f(x); m[k] = (m[k] ?? 0) + 1; return m; }, {});

/** One curl from `pod`: the HTTP status, "000" when the connection was refused. */
async function httpCode(pod: string, url: string): Promise<string> {
  const r = await exec(pod, ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', url]);
  return r.stdout.trim();
}

describe('the waypoint with gRPC, mirrors and caller statements in the sandbox', () => {
  let ips: Record<string, string> = {};
  let logs: Record<string, string> = {};
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nm-wp-protocols-'));

  before(async () => {
    requireSandboxPrerequisites();
    await down();
    await nodemeshOk(['local', 'up', '--nodes', '2', '-f', '-'], { input: MANIFEST, timeoutMs: 180_000 });
    await nodemeshOk(['waypoint', 'apply', '-n', 'shop', '--enroll-namespace'], { timeoutMs: 90_000 });
    const r = await apply(ROUTES);
    assert.equal(r.code, 0, r.stderr);
    const st = await status();
    ips = Object.fromEntries(st.pods.map((p) => [`${p.namespace}/${p.name}`, p.ip]));
    logs = Object.fromEntries(st.pods.map((p) => [`${p.namespace}/${p.name}`, p.log]));
    fs.chmodSync(tmp, 0o755);
    await eventually('both routes Accepted', async () => {
      const list = JSON.parse((await nodemeshOk(['waypoint', 'list', '-o', 'json'])).stdout) as { routes: { name: string; accepted: string }[] }[];
      return list[0]?.routes.length === 2 && list[0].routes.every((x) => x.accepted.startsWith('True'));
    });
  });
  after(async () => {
    await down();
    fs.rmSync(tmp, { recursive: true, force: true });
    assert.deepEqual(leftovers(), []);
  });

  test('a @grpc/grpc-js client is routed by method: unary and server-streaming calls through the waypoint', async () => {
    const out = await grpcCalls([
      ...Array.from({ length: 10 }, (): GrpcCall => ({ method: 'GetItem', name: 'apple' })),
      ...Array.from({ length: 5 }, (): GrpcCall => ({ method: 'GetItem', name: 'pear', metadata: { 'x-version': 'v2' } })),
      { method: 'ListItems', name: 'basket', count: 50 },
      { method: 'ListItems', name: 'crate', count: 3 },
    ]);
    for (const o of out) assert.equal(o.ok, true, JSON.stringify(o));
    const unary = out.slice(0, 15).map((o) => `${o.items![0]!.name} ${o.items![0]!.version}`);
    assert.deepEqual(count(unary, (x) => x), { 'apple v1': 10, 'pear v2': 5 }, 'GetItem goes to v1, and to v2 with x-version: v2');
    const stream = out[15]!.items!;
    assert.equal(stream.length, 50, 'every streamed message arrives');
    assert.deepEqual(stream.map((i) => i.seq), Array.from({ length: 50 }, (_, i) => i), 'in order');
    assert.ok(stream.every((i) => i.version === 'v2' && i.pod === 'grpc-v2' && i.name === 'basket'), 'ListItems goes to v2');
    assert.deepEqual(out[16]!.items!.map((i) => `${i.version} ${i.seq}`), ['v2 0', 'v2 1', 'v2 2']);
  });

  test('an L7 deny (a path or a header condition) is PERMISSION_DENIED; an unmatched method is UNIMPLEMENTED', async (t) => {
    const guard = `
apiVersion: security.nodemesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: grpc-guard, namespace: shop }
spec:
  targetRefs: [{ kind: Service, group: "", name: grpc }]
  action: DENY
  rules:
  - to: [{ operation: { paths: ["/${SHOP}/Admin"] } }]
  - when: [{ key: "request.headers[X-User]", values: ["mallory", "eve-*"] }]
`;
    t.after(async () => { await remove(guard, { ignoreNotFound: true }); });
    const r = await apply(guard);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const out = await eventually('the policy in force at the waypoint', async () => {
      const o = await grpcCalls([
        { method: 'Admin' },
        { method: 'GetItem', metadata: { 'x-user': 'mallory' } },
        { method: 'GetItem', metadata: { 'x-user': 'eve-2' } },
        { method: 'GetItem', metadata: { 'x-user': 'alice' } },
        { method: 'ListItems', count: 2, metadata: { 'x-user': 'mallory' } },
        { method: 'Unrouted' },
      ]);
      return o[0]!.ok ? undefined : o;
    }, 45_000); // each try is a pod process making six calls: slow on a busy machine
    const [admin, mallory, eve, alice, malloryStream, unrouted] = out;
    for (const [name, o] of [['Admin', admin], ['x-user: mallory', mallory], ['x-user: eve-2', eve], ['a stream for mallory', malloryStream]] as const) {
      assert.equal(o!.ok, false, `${name}: ${JSON.stringify(o)}`);
      assert.equal(o!.status, 'PERMISSION_DENIED', `${name}: ${JSON.stringify(o)}`);
      assert.match(o!.reason ?? '', /RBAC: access denied: denied-by-policy: denied by AuthorizationPolicy shop\/grpc-guard/, name);
    }
    assert.equal(alice!.ok, true, JSON.stringify(alice));
    assert.equal(alice!.items![0]!.seen['x-user'], 'alice', 'the header reaches the backend');
    assert.equal(unrouted!.ok, false);
    assert.equal(unrouted!.status, 'UNIMPLEMENTED', JSON.stringify(unrouted));
    assert.match(unrouted!.reason ?? '', /no route of Service shop\/grpc matches POST \/nodemesh\.e2e\.Shop\/Unrouted/);
    const wpLog = (await status()).pods.find((p) => p.namespace === 'shop' && p.name === 'waypoint-waypoint')!.log;
    const line = await eventually('the refusal in the access log', () => fs.readFileSync(wpLog, 'utf8').split('\n')
      .filter((l) => l.includes('"status":403') && l.includes('Admin')).map((l) => JSON.parse(l) as Record<string, unknown>).pop());
    assert.equal(line.caller, 'spiffe://cluster.local/ns/shop/sa/client');
  });

  test('request mirroring: the mirror receives a copy of every request, the client only the primary\'s answers', async (t) => {
    const sinkLog = logs['shop/mirror-sink']!;
    const mirrored = () => fs.readFileSync(sinkLog, 'utf8').split('\n').filter((l) => l.startsWith('{"request"')).map((l) => JSON.parse(l) as { path: string; host: string });
    const before = mirrored().length;
    const script = `
      const http = require('http');
      const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
      const out = []; let next = 0;
      const t = setTimeout(() => { console.log(JSON.stringify(out)); process.exit(3); }, 60000);
      const one = () => { if (next >= 60) return; const i = next++;
        http.get('http://${MIRRORED_VIP}/copy/' + i, { agent, timeout: 10000 }, (res) => { let b = ''; res.on('data', (d) => { b += d; }); res.on('end', () => { let v; try { v = JSON.parse(b).version; } catch {} out.push(res.statusCode + ' ' + v); if (out.length === 60) { clearTimeout(t); console.log(JSON.stringify(out)); process.exit(0); } one(); }); })
          .on('error', (e) => { out.push('0 ' + e.code); if (out.length === 60) { console.log(JSON.stringify(out)); process.exit(0); } one(); }); };
      for (let i = 0; i < 4; i++) one();`;
    const r = await exec('shop/client', ['node', '-e', script], { timeoutMs: 90_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const answers = JSON.parse(r.stdout.trim().split('\n').pop()!) as string[];
    assert.deepEqual(count(answers, (a) => a), { '200 primary': 60 }, 'every answer is the primary\'s');
    // A mirror is fire and forget (never retried, as in Envoy): a copy lost to an upstream reset
    // stays lost. At most one of 60 may be missing; none may arrive twice or unasked.
    await eventually('60 copies at the mirror', () => mirrored().length - before >= 60).catch((e: Error) => t.diagnostic(e.message));
    const copies = mirrored().slice(before);
    const sent = new Set(Array.from({ length: 60 }, (_, i) => `/copy/${i}`));
    const paths = copies.map((c) => c.path);
    assert.ok(copies.length >= 59 && copies.length <= 60, `${copies.length} copies for 60 requests: ${JSON.stringify(paths)}`);
    assert.equal(new Set(paths).size, paths.length, 'no request is mirrored twice');
    assert.ok(paths.every((p) => sent.has(p)), `only the requests sent are mirrored: ${JSON.stringify(paths)}`);
    assert.ok(copies.every((c) => c.host.endsWith('-shadow')), `mirrored copies are marked in Host: ${copies[0]!.host}`);
  });

  test('caller statements forged, replayed or expired are refused by the destination\'s daemon', async (t) => {
    const secret = `
apiVersion: security.nodemesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: secret-only-client, namespace: other }
spec:
  selector: { matchLabels: { app: secret } }
  action: ALLOW
  rules: [{ from: [{ source: { principals: ["cluster.local/ns/shop/sa/client"] } }] }]
`;
    t.after(async () => { await remove(secret, { ignoreNotFound: true }); });
    assert.equal((await apply(secret)).code, 0);
    // This test is a mesh peer: the waypoint's identity, from the sandbox's CA.
    const waypointId = 'spiffe://cluster.local/ns/shop/sa/waypoint';
    const ca = await MeshCA.load(path.dirname(findFile(STATE_DIR, 'ca.key')));
    const cred = await ca.issue(waypointId, 600);
    fs.writeFileSync(path.join(tmp, 'peer.crt'), cred.certPem);
    fs.writeFileSync(path.join(tmp, 'peer.key'), cred.keyPem);
    const realKey = { signer: waypointId, secretKey: new Uint8Array(Buffer.from(fs.readFileSync(findFile(STATE_DIR, 'caller-statement.key'), 'utf8').trim(), 'base64url')) };
    assert.equal(realKey.secretKey.length, 64, 'the waypoint\'s caller-statement key');
    const wrongKey = { signer: waypointId, secretKey: newSigningKeyPair().secretKey };
    const secretIP = ips['other/secret']!;
    const dst = `${secretIP}:${SECRET_PORT}`;
    const caller = 'spiffe://cluster.local/ns/shop/sa/client';
    const now = Date.now();
    const valid = signStatement(realKey, { caller, dst, now, lifetimeMs: 25_000 });
    const plan = [
      null, // no statement: judged as the waypoint itself
      valid, // the positive control: the policy names the caller
      valid, // the same statement on another connection
      signStatement(wrongKey, { caller, dst, now, lifetimeMs: 25_000 }),
      signStatement(realKey, { caller, dst, now: now - 60_000, lifetimeMs: 10_000 }),
      signStatement(realKey, { caller, dst: `${ips['other/plainapi']}:8080`, now, lifetimeMs: 25_000 }),
    ];
    const logBefore = fs.readFileSync(path.join(STATE_DIR, 'logs', 'node-2.log'), 'utf8').length;
    const r = await exec('plain/prober', ['node', fixture('statement-probe.js'), secretIP, dst, path.join(tmp, 'peer.crt'), path.join(tmp, 'peer.key'), JSON.stringify(plan)], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const [none, good, replayed, forged, expired, misbound] = JSON.parse(r.stdout.trim().split('\n').pop()!) as { result: string; status?: number; reason?: string; line?: string }[];
    assert.equal(none!.status, 403, JSON.stringify(none));
    assert.match(none!.reason ?? '', /no-allow-policy-matched/, 'without a statement the peer is the waypoint, which the policy does not name');
    assert.equal(good!.status, 200, `a genuine statement gets the named caller through: ${JSON.stringify(good)}`);
    assert.match(good!.line ?? '', /^hello from secret/);
    for (const [name, o, why] of [['replayed', replayed, 'replayed'], ['forged', forged, 'bad-signature'], ['expired', expired, 'expired'], ['misbound', misbound, 'misbound-destination']] as const) {
      assert.equal(o!.status, 403, `${name}: ${JSON.stringify(o)}`);
      assert.match(o!.reason ?? '', new RegExp(`^caller-statement-${why}: `), `${name}: ${JSON.stringify(o)}`);
    }
    const denied = await eventually('the refusals recorded on node-2', async () => {
      const recs = (await connections('node-2')).filter((c) => c.direction === 'inbound-hbone' && c.verdict === 'deny' && /caller-statement-/.test(c.reason ?? ''));
      return recs.length >= 4 ? recs : undefined;
    });
    for (const c of denied) assert.equal(c.sourceIdentity, waypointId, 'the record names the peer that presented the statement');
    await eventually('the refusals in the daemon log', () => {
      const log = fs.readFileSync(path.join(STATE_DIR, 'logs', 'node-2.log'), 'utf8').slice(logBefore);
      return ['replayed', 'bad-signature', 'expired'].every((w) => log.includes(`caller-statement-${w}`));
    });
  });

  test('L7 rules in a namespace without a waypoint deny (fail closed); an L4 rule still admits', async (t) => {
    const url = `http://${PLAIN_API_VIP}/`;
    assert.equal(await httpCode('other/client', url), '200', 'no policy: allowed');
    const policy = (name: string, spec: string) => `
apiVersion: security.nodemesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: ${name}, namespace: other }
spec:
  selector: { matchLabels: { app: plainapi } }
${spec}`;
    const cases: [string, string, string][] = [
      ['allow-get', '  action: ALLOW\n  rules: [{ to: [{ operation: { methods: ["GET"] } }] }]\n', 'no-allow-policy-matched'],
      ['allow-header', '  action: ALLOW\n  rules: [{ when: [{ key: "request.headers[x-ok]", values: ["1"] }] }]\n', 'no-allow-policy-matched'],
      ['deny-admin', '  action: DENY\n  rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }]\n', 'denied-by-policy'],
    ];
    t.after(async () => { for (const [name, spec] of cases) await remove(policy(name, spec), { ignoreNotFound: true }); });
    for (const [name, spec, reason] of cases) {
      const r = await apply(policy(name, spec));
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout + r.stderr, /fail closed/, `apply says where ${name} holds`);
      const code = await httpCode('other/client', url);
      assert.notEqual(code, '200', `${name}: a plain GET is refused, though the L7 rule would allow it`);
      const rec = await eventually(`the ${name} refusal on node-2`, async () => (await connections('node-2'))
        .find((c) => c.direction === 'inbound-hbone' && c.verdict === 'deny' && c.sourceIdentity === 'spiffe://cluster.local/ns/other/sa/client' && (c.reason ?? '').includes(`other/${name}`)));
      assert.match(rec.reason ?? '', new RegExp(reason), name);
      await remove(policy(name, spec));
    }
    const l4 = policy('allow-client', '  action: ALLOW\n  rules: [{ from: [{ source: { principals: ["cluster.local/ns/other/sa/client"] } }] }]\n');
    assert.equal((await apply(l4)).code, 0);
    assert.equal(await httpCode('other/client', url), '200', 'an L4 rule naming the caller admits it');
    await remove(l4);
  });
});
