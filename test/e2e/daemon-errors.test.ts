// Bad environments and bad configuration stop nodemesh-node with a message that names what
// is missing and how to fix it, and leave nothing half-created (no pins, no attachments).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO } from './helpers/sandbox';

const MAIN = path.join(REPO, 'dist', 'daemon', 'main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nm-daemon-errors-'));
const PIN_ROOT = `/sys/fs/bpf/nodemesh/errtest-${process.pid}`;

function cgroup2Root(): string {
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep >= 0 && line.slice(sep + 3).startsWith('cgroup2 ')) return line.slice(0, sep).split(' ')[4];
  }
  throw new Error('no cgroup2 mount: these tests need cgroup v2');
}
const CGROUP = path.join(cgroup2Root(), `nm-errtest-${process.pid}`);

function runDaemon(env: Record<string, string>, prefix: string[] = []): { code: number | null; stderr: string } {
  const base = {
    PATH: process.env.PATH ?? '/usr/bin:/bin', NODEMESH_NODE_NAME: 'errtest', NODEMESH_SOURCE: 'sandbox',
    NODEMESH_SANDBOX_OBJECTS: path.join(tmp, 'objects'), NODEMESH_BPF_PIN_ROOT: PIN_ROOT, NODEMESH_CGROUP: CGROUP,
    NODEMESH_ADMIN_PORT: '0', NODEMESH_METRICS_PORT: '0', NODEMESH_READINESS_PORT: '0', NODEMESH_LOG_LEVEL: 'error',
  };
  const argv = [...prefix, process.execPath, MAIN];
  const r = spawnSync(argv[0], argv.slice(1), { env: { ...base, ...env }, encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stderr: r.stderr };
}

function attachedPrograms(): string {
  return spawnSync('bpftool', ['cgroup', 'show', CGROUP], { encoding: 'utf8' }).stdout;
}

before(() => {
  assert.equal(os.userInfo().uid, 0, 'these tests need root; run them as root (CI does, via .ci/run)');
  assert.ok(fs.existsSync(MAIN), `${MAIN} is missing: run make build`);
  assert.ok(fs.statfsSync('/sys/fs/bpf').type === 0xcafe4a11, 'bpffs is not mounted at /sys/fs/bpf: mount -t bpf bpf /sys/fs/bpf');
  fs.mkdirSync(CGROUP);
});
after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.rmSync(PIN_ROOT, { recursive: true, force: true });
  try { fs.rmdirSync(CGROUP); } catch { /* already gone */ }
});

function assertNothingLeft(): void {
  assert.ok(!fs.existsSync(PIN_ROOT) || fs.readdirSync(PIN_ROOT).length === 0, `pins left under ${PIN_ROOT}`);
  assert.equal(attachedPrograms().trim().split('\n').filter((l) => /^\d+/.test(l.trim())).length, 0, `programs left attached: ${attachedPrograms()}`);
}

test('not root: says so and how to run it', () => {
  const r = runDaemon({}, ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /NODEMESH_E_NOT_ROOT/);
  assert.match(r.stderr, /run it as root/);
  assertNothingLeft();
});

test('pin root not on bpffs: names the path and the mount command', () => {
  const r = runDaemon({ NODEMESH_BPF_PIN_ROOT: path.join(tmp, 'not-bpffs', 'nodemesh') });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /NODEMESH_E_BPFFS_NOT_MOUNTED/);
  assert.match(r.stderr, /mount -t bpf bpf \/sys\/fs\/bpf/);
  assertNothingLeft();
});

test('cgroup path that is not cgroup v2: names the path and what to set', () => {
  const r = runDaemon({ NODEMESH_CGROUP: tmp });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /NODEMESH_E_NO_CGROUP2/);
  assert.ok(r.stderr.includes(tmp));
  assertNothingLeft();
});

test('missing eBPF objects: says to build them, nothing half-created', () => {
  const r = runDaemon({ NODEMESH_BPF_OBJECT_DIR: path.join(tmp, 'no-objects') });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /NODEMESH_E_BPF_OBJECT/);
  assert.match(r.stderr, /make bpf/);
  assertNothingLeft();
});

test('bad configuration values name the variable', () => {
  for (const [k, v] of [['NODEMESH_ADMIN_PORT', 'abc'], ['NODEMESH_SOURCE', 'etcd'], ['NODEMESH_EXCLUDE_OUTBOUND_PORTS', '22,99999']]) {
    const r = runDaemon({ [k]: v });
    assert.equal(r.code, 1, k);
    assert.match(r.stderr, /NODEMESH_E_CONFIG/, k);
    assert.ok(r.stderr.includes(k), `${k}: ${r.stderr}`);
  }
  assertNothingLeft();
});
