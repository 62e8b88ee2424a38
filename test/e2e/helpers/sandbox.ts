// Driving the sandbox cluster from end-to-end tests: the `nodemesh local` commands as a user
// runs them (the compiled CLI in a child process), plus checks that need no CLI: the daemons'
// admin API over their unix sockets, and what a sandbox may leave behind.
//
// Every test file that uses it must call `requireSandboxPrerequisites()` first (a missing
// prerequisite fails the test, never skips it) and `down()` in an after() hook, so a failure
// does not leave a cluster for the next file (they share the `nmsb-*` names).
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';

/** dist/test/e2e/helpers -> repo root. */
export const REPO = path.resolve(__dirname, '..', '..', '..', '..');
export const CLI = path.join(REPO, 'dist', 'installer', 'cli.js');
export const STATE_DIR = path.resolve(process.env.NODEMESH_SANDBOX_DIR || '/run/nodemesh/sandbox');
export const BPF_PIN_ROOT = '/sys/fs/bpf/nodemesh/sandbox';

export interface CliResult { code: number; stdout: string; stderr: string }

/** Runs `node dist/installer/cli.js <args>`; never throws on a non-zero exit. Bounded in time. */
export function nodemesh(args: string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: REPO, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timeoutMs = opts.timeoutMs ?? 120_000;
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`nodemesh ${args.join(' ')} did not finish within ${timeoutMs}ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Like nodemesh(), but fails the test with the command's output when it exits non-zero. */
export async function nodemeshOk(args: string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  const r = await nodemesh(args, opts);
  assert.equal(r.code, 0, `nodemesh ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** `local up`; `manifests` are files/directories, or YAML text (written to a temp file). */
export async function up(opts: { nodes?: number; manifests?: string[]; yaml?: string } = {}): Promise<CliResult> {
  const args = ['local', 'up', '--nodes', String(opts.nodes ?? 2)];
  for (const m of opts.manifests ?? []) args.push('-f', m);
  if (opts.yaml !== undefined) args.push('-f', '-');
  return nodemeshOk(args, { input: opts.yaml, timeoutMs: 180_000 });
}

export async function down(): Promise<CliResult> {
  return nodemesh(['local', 'down'], { timeoutMs: 60_000 });
}

/** `local apply -f -` with YAML text (or -f each path). Returns the result without asserting. */
export function apply(yamlOrPaths: string | string[]): Promise<CliResult> {
  if (typeof yamlOrPaths === 'string') return nodemesh(['local', 'apply', '-f', '-'], { input: yamlOrPaths });
  return nodemesh(['local', 'apply', ...yamlOrPaths.flatMap((p) => ['-f', p])]);
}

export function remove(yaml: string, opts: { ignoreNotFound?: boolean } = {}): Promise<CliResult> {
  return nodemesh(['local', 'delete', '-f', '-', ...(opts.ignoreNotFound ? ['--ignore-not-found'] : [])], { input: yaml });
}

/** `local exec <ns>/<pod> -- argv...`: runs inside the pod's netns and cgroup. */
export function exec(pod: string, argv: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<CliResult> {
  return nodemesh(['local', 'exec', pod, '--', ...argv], { timeoutMs: opts.timeoutMs ?? 30_000, input: opts.input });
}

/** A one-shot TCP client run inside a pod with `node -e`: connects, prints the first line it
 * receives (or `error <code>`), exits. Bounded by timeoutMs. */
export function tcpProbe(pod: string, host: string, port: number, timeoutMs = 5000): Promise<CliResult> {
  const script = `
    const s = require('net').connect(${port}, ${JSON.stringify(host)});
    const t = setTimeout(() => { console.log('error TIMEOUT'); process.exit(2); }, ${timeoutMs});
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (d) => { buf += d; const i = buf.indexOf('\\n'); if (i >= 0) { console.log(buf.slice(0, i)); clearTimeout(t); s.destroy(); process.exit(0); } });
    s.on('error', (e) => { console.log('error ' + (e.code || e.message)); clearTimeout(t); process.exit(1); });`;
  return exec(pod, ['node', '-e', script], { timeoutMs: timeoutMs + 15_000 });
}

/** One HTTP GET inside a pod; prints the body. */
export function httpProbe(pod: string, url: string, timeoutMs = 5000): Promise<CliResult> {
  const script = `
    const req = require('http').get(${JSON.stringify(url)}, { timeout: ${timeoutMs} }, (res) => {
      let b = ''; res.setEncoding('utf8'); res.on('data', (d) => { b += d; }); res.on('end', () => { process.stdout.write(b); process.exit(res.statusCode === 200 ? 0 : 1); });
    });
    req.on('timeout', () => { console.log('error TIMEOUT'); process.exit(2); });
    req.on('error', (e) => { console.log('error ' + (e.code || e.message)); process.exit(1); });`;
  return exec(pod, ['node', '-e', script], { timeoutMs: timeoutMs + 15_000 });
}

export interface SandboxStatus {
  up: boolean;
  phase: string;
  stateDir: string;
  identity?: { address: string; pid: number | null; alive: boolean; listening: boolean; caRootFile: string; log: string } | null;
  policies?: { kind: string; namespace: string; name: string; generation: number | null; appliesTo: string; summary: string }[];
  nodes: { name: string; ip: string; podCIDR: string; daemon: { pid: number | null; alive: boolean; ready: boolean; log: string } }[];
  pods: { namespace: string; name: string; uid: string; node: string; ip: string; phase: string; enrolled: boolean | null; log: string }[];
  services: { namespace: string; name: string; clusterIP: string; ports: { port: number; endpoints: string[] }[] }[];
}

export async function status(): Promise<SandboxStatus> {
  const r = await nodemeshOk(['local', 'status', '-o', 'json']);
  return JSON.parse(r.stdout) as SandboxStatus;
}

export function pod(s: SandboxStatus, ref: string): SandboxStatus['pods'][number] {
  const [namespace, name] = ref.split('/');
  const p = s.pods.find((x) => x.namespace === namespace && x.name === name);
  assert.ok(p, `pod ${ref} is not in the sandbox; pods: ${s.pods.map((x) => `${x.namespace}/${x.name}`).join(', ')}`);
  return p;
}

/** The admin socket of a node, from cluster.json. */
export function adminSocket(node: string): string {
  const c = JSON.parse(fs.readFileSync(path.join(STATE_DIR, 'cluster.json'), 'utf8')) as { nodes: { name: string; adminSocket: string }[] };
  const n = c.nodes.find((x) => x.name === node);
  assert.ok(n, `no node ${node} in ${STATE_DIR}/cluster.json`);
  return n.adminSocket;
}

/** GET on a node daemon's admin API over its unix socket (no network involved). */
export function adminGet(node: string, urlPath: string, timeoutMs = 3000): Promise<{ status: number; body: string; json<T = unknown>(): T }> {
  const socketPath = adminSocket(node);
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: urlPath, method: 'GET', timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, json: <T>() => JSON.parse(body) as T }));
    });
    req.on('timeout', () => req.destroy(new Error(`${node} ${urlPath}: no answer within ${timeoutMs}ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Polls until fn returns a truthy value; bounded by timeoutMs. */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** The first file called `name` below `dir` (e.g. the sandbox CA's key under STATE_DIR). */
export function findFile(dir: string, name: string): string {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isFile() && e.name === name) return p;
    if (e.isDirectory()) { try { return findFile(p, name); } catch { /* keep looking */ } }
  }
  throw new Error(`no ${name} under ${dir}`);
}

// --- prerequisites and leftovers -----------------------------------------------------------

function cgroup2Root(): string | undefined {
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep >= 0 && line.slice(sep + 3).startsWith('cgroup2 ')) return line.slice(0, sep).split(' ')[4];
  }
  return undefined;
}

/** Fails (never skips) when the sandbox cannot run here, saying what is missing. */
export function requireSandboxPrerequisites(): void {
  assert.equal(os.userInfo().uid, 0, 'the sandbox e2e tests need root (network namespaces, cgroups, eBPF); run them as root, e.g. in CI via .ci/run');
  assert.ok(cgroup2Root(), 'no cgroup2 hierarchy is mounted (see /proc/self/mountinfo); the sandbox needs cgroup v2');
  for (const [tool, pkg] of [['ip', 'iproute2'], ['nft', 'nftables'], ['nsenter', 'util-linux']]) {
    const r = spawnSync('sh', ['-c', `command -v ${tool} || PATH=$PATH:/usr/sbin:/sbin command -v ${tool}`], { encoding: 'utf8' });
    assert.equal(r.status, 0, `'${tool}' is missing; install it with apt-get install ${pkg} (make system-deps)`);
  }
  assert.ok(fs.existsSync(CLI), `${CLI} is missing; build with make ts`);
  if (!process.env.NODEMESH_DAEMON_COMMAND) {
    const daemon = path.join(REPO, 'dist', 'daemon', 'main.js');
    assert.ok(fs.existsSync(daemon), `${daemon} is missing; build with make build`);
  }
}

/** Everything a sandbox could leave behind; [] after a clean `local down`. */
export function leftovers(): string[] {
  const found: string[] = [];
  const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of ns.split('\n')) if (line.startsWith('nmsb-')) found.push(`netns ${line.split(' ')[0]}`);
  try {
    for (const n of fs.readdirSync('/run/netns')) if (n.startsWith('nmsb-') && !found.includes(`netns ${n}`)) found.push(`netns file /run/netns/${n}`);
  } catch { /* none */ }
  const cg = cgroup2Root();
  if (cg && fs.existsSync(path.join(cg, 'nodemesh-sandbox'))) found.push(`cgroup ${path.join(cg, 'nodemesh-sandbox')}`);
  if (fs.existsSync(BPF_PIN_ROOT)) found.push(`pins ${BPF_PIN_ROOT}`);
  if (fs.existsSync(path.join(STATE_DIR, 'cluster.json'))) found.push(`state ${STATE_DIR}/cluster.json`);
  // Processes: the sandbox marks daemons (NODEMESH_SANDBOX_OBJECTS) and pods (NODEMESH_POD_NAME).
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let env = '';
    try { env = fs.readFileSync(`/proc/${pid}/environ`, 'latin1'); } catch { continue; }
    const vars = env.split('\0');
    if (vars.some((v) => v.startsWith('NODEMESH_SANDBOX_OBJECTS=') || v.startsWith('NODEMESH_POD_NAME='))) {
      let cmd = '';
      try { cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ').trim(); } catch { /* gone */ }
      if (cmd) found.push(`process ${pid} (${cmd.slice(0, 80)})`);
    }
  }
  return found;
}

// --- nodemesh-identity ---------------------------------------------------------------------

/** What cluster.json records about nodemesh-identity and the node credentials. */
export interface IdentityRecordView {
  address: string;
  caRootFile: string;
  credentialsFile: string;
  cgroup: string;
  log: string;
  process?: { pid: number; startTime: string };
  nodeCredentials: Record<string, string>;
}

export function identityRecord(): IdentityRecordView {
  const c = JSON.parse(fs.readFileSync(path.join(STATE_DIR, 'cluster.json'), 'utf8')) as {
    identity?: Omit<IdentityRecordView, 'nodeCredentials'>; nodes: { name: string; credentialFile: string }[];
  };
  assert.ok(c.identity, `${STATE_DIR}/cluster.json records no identity service`);
  return { ...c.identity, nodeCredentials: Object.fromEntries(c.nodes.map((n) => [n.name, n.credentialFile])) };
}

/** Whether a recorded process (pid + start time from /proc/<pid>/stat) still runs. */
export function processAlive(ref: { pid: number; startTime: string } | undefined): boolean {
  if (!ref) return false;
  try {
    const stat = fs.readFileSync(`/proc/${ref.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] !== 'Z' && fields[19] === ref.startTime;
  } catch {
    return false;
  }
}

/** Runs argv inside a node's network namespace (`nsenter --net=/run/netns/nmsb-<node>`), so
 * traffic stays inside the sandbox. Bounded in time. */
export function inNodeNetns(node: string, argv: string[], timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [`--net=/run/netns/nmsb-${node}`, '--', ...argv], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${argv.join(' ')} in ${node} did not finish within ${timeoutMs}ms\n${stdout}\n${stderr}`)); }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }); });
  });
}

export interface IdentityAnswer { identity: string; ok: boolean; spiffeId?: string; code?: string; grpcCode?: number; serverCode?: string; message?: string }

/** From inside `fromNode`'s network namespace, asks nodemesh-identity for a certificate per
 * `ns/sa` with the IdentityClient the daemons use, presenting `credentialOf`'s node credential. */
export async function requestIdentities(fromNode: string, identities: string[], credentialOf = fromNode): Promise<IdentityAnswer[]> {
  const id = identityRecord();
  const script = `
    const { IdentityClient } = require(${JSON.stringify(path.join(REPO, 'dist', 'daemon', 'identity', 'identity-client.js'))});
    const { loadIdentityClientConfig } = require(${JSON.stringify(path.join(REPO, 'dist', 'daemon', 'identity', 'identity-client-config.js'))});
    const [address, credFile, caRoot, ...pairs] = process.argv.slice(1);
    (async () => {
      const cfg = loadIdentityClientConfig({ NODEMESH_IDENTITY_ADDRESS: address, NODEMESH_NODE_CREDENTIAL_FILE: credFile, NODEMESH_CA_ROOT_FILE: caRoot, NODEMESH_TRUST_DOMAIN: 'cluster.local' });
      const c = IdentityClient.fromConfig(cfg, { requestTimeoutMs: 5000 });
      for (const p of pairs) {
        const [namespace, serviceAccount] = p.split('/');
        try {
          const got = await c.fetchIdentity({ namespace, serviceAccount }, 600);
          console.log(JSON.stringify({ identity: p, ok: true, spiffeId: got.spiffeId }));
        } catch (e) {
          const d = e.details || {};
          console.log(JSON.stringify({ identity: p, ok: false, code: e.code, grpcCode: d.grpcCode, serverCode: d.serverCode, message: e.message }));
        }
      }
      c.close();
    })();`;
  const r = await inNodeNetns(fromNode, [process.execPath, '--no-deprecation', '-e', script, id.address, id.nodeCredentials[credentialOf]!, id.caRootFile, ...identities]);
  assert.equal(r.code, 0, `identity client in ${fromNode} failed: ${r.stdout}${r.stderr}`);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as IdentityAnswer);
}
