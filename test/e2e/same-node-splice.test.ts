// Issue 8, same-node path, on the real kernel: two enrolled pods on one node, and the daemon
// hands their connection to the kernel (bpf/splice.bpf.c) once it has checked the policy.
// Every byte arrives, in order, in both directions at once, with data sent before the splice,
// a server that speaks first and half-closes; short connections leave no map entry behind;
// policy still refuses and still closes; and the daemon's own reads and writes (/proc/<pid>/io)
// show that it did not carry the bytes, unless the splice is switched off. The splice is off by
// default (daemon/redirection/splice.ts says why): this sandbox's daemons run with it on.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BPF_PIN_ROOT, REPO, apply, down, eventually, exec, leftovers, nodemeshOk, remove, requireSandboxPrerequisites, status } from './helpers/sandbox';
import { connections } from './helpers/mesh';
import { appPod, sleeperPod } from './helpers/manifests';
import { loadNative } from '../../native/index';
import { SPLICE_MAPS, splicePinDir } from '../../daemon/redirection/splice';
import type { ConnectionRecord } from '../../daemon/proxy/connection-table';

const FIXTURES = path.join(REPO, 'test', 'e2e', 'fixtures');
const BULK_BYTES = 32 * 2 ** 20;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { stream, sha256 } = require(path.join(FIXTURES, 'splice-stream.js')) as { stream(name: string, n: number): Buffer; sha256(b: Buffer): string };

const MANIFEST = `
apiVersion: v1
kind: Namespace
metadata: { name: mesh, labels: { nodemesh.io/dataplane-mode: ambient } }
---
${sleeperPod('mesh', 'client', 'node-1')}
${appPod('mesh', 'server', 'node-1', 'app: server', ['node', path.join(FIXTURES, 'splice-server.js')], { BULK_BYTES: String(BULK_BYTES) }, { port: 9101, portName: 'bulk' })}
`;

const DENY = `
apiVersion: security.nodemesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: deny-client, namespace: mesh }
spec:
  selector: { matchLabels: { app: server } }
  action: DENY
  rules: [{ from: [{ source: { principals: ["cluster.local/ns/mesh/sa/client"] } }] }]
`;

interface ClientResult {
  error?: string; received?: number; downOk?: boolean; upSha256?: string; text?: string; head?: string; headOk?: boolean; replyOk?: boolean;
  ok?: number; total?: number; open?: boolean; closedAfterMs?: number;
}

describe('same-node splice', () => {
  let serverIp = '';
  let serverLog = '';

  const run = async (spec: Record<string, unknown>): Promise<ClientResult> => {
    const r = await exec('mesh/client', ['node', path.join(FIXTURES, 'splice-client.js'), JSON.stringify({ host: serverIp, timeoutMs: 60_000, ...spec })], { timeoutMs: 90_000 });
    const lines = r.stdout.trim().split('\n');
    assert.ok(lines.length > 0 && lines.at(-1)!.startsWith('{'), `client printed nothing usable (exit ${r.code}): ${r.stdout.slice(-500)} ${r.stderr.slice(-500)}`);
    return JSON.parse(lines.at(-1)!) as ClientResult;
  };
  const daemon = async () => {
    const n = (await status()).nodes.find((x) => x.name === 'node-1');
    assert.ok(n?.daemon.pid && n.daemon.alive, 'the node-1 daemon runs');
    return n.daemon.pid;
  };
  /** Bytes the process passed through read() and write() (sockets included), /proc/<pid>/io. */
  const io = (pid: number) => {
    const t = fs.readFileSync(`/proc/${pid}/io`, 'utf8');
    return { rchar: Number(/rchar: (\d+)/.exec(t)![1]), wchar: Number(/wchar: (\d+)/.exec(t)![1]) };
  };
  const records = async (port: number, since: number): Promise<ConnectionRecord[]> =>
    (await connections('node-1')).filter((c) => c.id > since && c.direction === 'outbound' && c.pod.name === 'client' && c.originalDestination.address === `${serverIp}:${port}`);
  const lastId = async () => Math.max(0, ...(await connections('node-1')).map((c) => c.id));
  /** Entries in the daemon's splice maps, read through its pins. */
  const mapEntries = (pid: number): Record<string, number> => {
    const native = loadNative();
    const out: Record<string, number> = {};
    for (const name of SPLICE_MAPS) {
      const fd = native.mapOpenPinned(path.join(splicePinDir(path.join(BPF_PIN_ROOT, 'node-1'), pid), name));
      try {
        let n = 0;
        let key: Buffer | null = null;
        for (let i = 0; i < 100_000; i++) {
          key = native.mapNextKey(fd, key, 8);
          if (key === null) break;
          n++;
        }
        out[name] = n;
      } finally {
        native.closeFd(fd);
      }
    }
    return out;
  };

  before(async () => {
    requireSandboxPrerequisites();
    await down();
    // The daemons get NODEMESH_* from the command that starts them (installer/sandbox/daemons.ts).
    await nodemeshOk(['local', 'up', '--nodes', '1', '-f', '-'], { input: MANIFEST, timeoutMs: 180_000, env: { NODEMESH_SAME_NODE_SPLICE: 'on' } });
    const st = await status();
    const server = st.pods.find((p) => p.namespace === 'mesh' && p.name === 'server');
    assert.ok(server?.ip, 'the server pod has an IP');
    serverIp = server.ip;
    serverLog = server.log;
    await eventually('the server listening', () => fs.readFileSync(serverLog, 'utf8').includes('{"listening":9104}'));
  });
  after(async () => {
    await down();
    assert.deepEqual(leftovers(), []);
  });

  test('32 MiB each way at once: equal both ends, spliced, and not read or written by the daemon', async () => {
    const pid = await daemon();
    const since = await lastId();
    const before = io(pid);
    const r = await run({ scenario: 'bulk', bytes: BULK_BYTES });
    const moved = io(pid);
    assert.equal(r.error, undefined, JSON.stringify(r));
    assert.equal(r.received, BULK_BYTES);
    assert.ok(r.downOk, 'what the client received is the server\'s stream');
    const upSha = sha256(stream('up', BULK_BYTES));
    assert.equal(r.upSha256, upSha);
    const seen = await eventually('the server\'s view', () => fs.readFileSync(serverLog, 'utf8').split('\n').filter((l) => l.includes('"port":9101')).map((l) => JSON.parse(l) as { received: number; sha256: string }).at(-1));
    assert.deepEqual(seen, { port: 9101, received: BULK_BYTES, sha256: upSha });
    const [rec] = await eventually('the closed record', async () => { const rs = await records(9101, since); return rs.length === 1 && rs[0]!.state === 'closed' && rs; });
    assert.equal(rec!.path, 'local-splice', JSON.stringify(rec));
    assert.equal(rec!.verdict, 'allow');
    assert.equal(rec!.reason, 'same node (spliced)');
    assert.equal(rec!.bytesSent, BULK_BYTES, 'client to server bytes, from TCP_INFO');
    assert.equal(rec!.bytesReceived, BULK_BYTES);
    // 64 MiB crossed the daemon's two sockets; a relay writes every byte it carries (and reads
    // it: rchar also counts the daemon's file reads, e.g. the sandbox's object files, so only
    // a bound far below the payload). Log lines are far below a MiB.
    const read = moved.rchar - before.rchar;
    const written = moved.wchar - before.wchar;
    assert.ok(written < 2 ** 20 && read < BULK_BYTES, `the daemon read ${read} and wrote ${written} bytes while 64 MiB crossed it`);
  });

  test('bytes sent before the splice arrive, in order (no later segment to carry them)', async () => {
    const since = await lastId();
    const r = await run({ scenario: 'early' });
    assert.deepEqual(r, { text: 'first-bytes-before-the-splice\nsecond\n' });
    const [rec] = await eventually('the record', async () => { const rs = await records(9102, since); return rs.length === 1 && rs[0]!.state === 'closed' && rs; });
    assert.equal(rec!.path, 'local-splice');
    assert.equal(rec!.bytesSent, 'first-bytes-before-the-splice\nsecond\n'.length);
  });

  test('a server that speaks first', async () => {
    const since = await lastId();
    assert.deepEqual(await run({ scenario: 'serverFirst' }), { text: 'hello\nping\n' });
    const [rec] = await eventually('the record', async () => { const rs = await records(9103, since); return rs.length === 1 && rs[0]!.state === 'closed' && rs; });
    assert.equal(rec!.path, 'local-splice');
    assert.equal(rec!.bytesReceived, 'hello\nping\n'.length);
  });

  test('half-close: the client shuts its write side, the server still answers in full', async () => {
    const since = await lastId();
    const r = await run({ scenario: 'halfClose' });
    assert.equal(r.error, undefined, JSON.stringify(r));
    assert.ok(r.headOk, `head ${JSON.stringify(r.head)}`);
    assert.ok(r.replyOk, 'the 1 MiB after the client\'s FIN arrived intact');
    const [rec] = await eventually('the record', async () => { const rs = await records(9104, since); return rs.length === 1 && rs[0]!.state === 'closed' && rs; });
    assert.equal(rec!.path, 'local-splice');
    assert.equal(rec!.bytesSent, 65536);
  });

  test('200 concurrent short connections: all correct, no map entry left', async () => {
    const pid = await daemon();
    const since = await lastId();
    assert.deepEqual(await run({ scenario: 'many', conns: 200 }), { ok: 200, total: 200 });
    const rs = await eventually('200 closed records', async () => { const x = await records(9102, since); return x.length === 200 && x.every((c) => c.state === 'closed') && x; });
    assert.ok(rs.every((c) => c.verdict === 'allow' && c.path?.startsWith('local')), JSON.stringify(rs.filter((c) => c.verdict !== 'allow').slice(0, 3)));
    // The even ones wait for their echo before the FIN: the kernel must have carried them.
    assert.ok(rs.filter((c) => c.path === 'local-splice').length >= 100, `spliced: ${rs.filter((c) => c.path === 'local-splice').length}`);
    await eventually('empty splice maps', () => Object.values(mapEntries(pid)).every((n) => n === 0) || undefined, 10_000)
      .catch(() => assert.fail(`entries left: ${JSON.stringify(mapEntries(pid))}`));
  });

  test('policy: a DENY still refuses, and a policy change closes an open spliced connection', async (t) => {
    t.after(async () => { await remove(DENY, { ignoreNotFound: true }); });
    const since = await lastId();
    const held = exec('mesh/client', ['node', path.join(FIXTURES, 'splice-client.js'), JSON.stringify({ host: serverIp, scenario: 'hold', timeoutMs: 30_000 })], { timeoutMs: 60_000 });
    await eventually('the held connection open and spliced', async () => (await records(9103, since)).some((c) => c.state === 'open' && c.path === 'local-splice'));
    assert.equal((await apply(DENY)).code, 0);
    const closed = JSON.parse((await held).stdout.trim().split('\n').at(-1)!) as ClientResult;
    assert.ok(closed.closedAfterMs !== undefined && closed.closedAfterMs < 25_000, `closed by the policy change: ${JSON.stringify(closed)}`);
    const rec = await eventually('the closed-by-policy record', async () => (await records(9103, since)).find((c) => c.state === 'closed' && c.cause === 'closed-by-policy'));
    assert.equal(rec.path, 'local-splice');
    const refused = await run({ scenario: 'serverFirst' });
    assert.ok(refused.error, `refused on the same node: ${JSON.stringify(refused)}`);
    assert.ok((await records(9103, since)).some((c) => c.verdict === 'deny' && c.cause === 'denied-by-policy'));
  });

  test('NODEMESH_SAME_NODE_SPLICE=off (the default): the daemon relays (and the io counters see it)', async () => {
    await nodemeshOk(['local', 'restart-daemon', 'node-1'], { env: { NODEMESH_SAME_NODE_SPLICE: 'off' }, timeoutMs: 120_000 });
    const pid = await daemon();
    const since = await lastId();
    const before = io(pid);
    const r = await run({ scenario: 'bulk', bytes: BULK_BYTES });
    const moved = io(pid);
    assert.equal(r.received, BULK_BYTES);
    assert.ok(r.downOk);
    const [rec] = await eventually('the record', async () => { const rs = await records(9101, since); return rs.length === 1 && rs[0]!.state === 'closed' && rs; });
    assert.equal(rec!.path, 'local');
    const seen = await eventually('the server\'s view', () => fs.readFileSync(serverLog, 'utf8').split('\n').filter((l) => l.includes('"port":9101')).map((l) => JSON.parse(l) as { received: number }).at(-1));
    assert.equal(seen.received, BULK_BYTES, `the server received ${seen.received} through the relay (record: ${rec!.bytesSent})`);
    assert.ok(moved.wchar - before.wchar >= BULK_BYTES, `the relay wrote ${moved.wchar - before.wchar} bytes`);
    await eventually('the old daemon gone and its splice pins with it', () => !fs.existsSync(path.join(BPF_PIN_ROOT, 'node-1', 'splice')), 30_000);
  });
});
