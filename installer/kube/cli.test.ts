// The real CLI as a child process: `install --dry-run` prints exactly `manifest render`; bad
// flags, values, kubeconfigs, contexts and an unreachable cluster each get a clear message and
// a non-zero exit (2 for usage, 1 otherwise); enroll against the test API server; kubectl
// accepts the rendered objects by server-side apply.
import { test, after, before } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { startTestApiServer, type TestApiServer } from '../../test/k8s-apiserver/test-api-server';
import { layerBinaries } from '../../test/k8s-tools/layer-binaries';

const CLI = path.resolve(__dirname, '..', 'cli.js');
let tmp: string;
let server: TestApiServer;

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, KUBECONFIG: path.join(tmp, 'no-such-kubeconfig'), ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

function kubeconfig(name: string, server: string, contexts = ['main']): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, [
    'apiVersion: v1', 'kind: Config', `current-context: ${contexts[0]}`,
    'clusters:', `- name: c\n  cluster:\n    server: ${server}\n    insecure-skip-tls-verify: true`,
    'users:', '- name: u\n  user:\n    token: abc',
    'contexts:', ...contexts.map((c) => `- name: ${c}\n  context:\n    cluster: c\n    user: u`), '',
  ].join('\n'));
  return file;
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nodemesh-cli-'));
  server = await startTestApiServer();
});
after(async () => {
  await server?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('install --dry-run prints exactly what manifest render prints (yaml and json, with values)', async () => {
  for (const extra of [[], ['-o', 'json'], ['--version', '9.9.9', '--trust-domain', 'mesh.example', '-o', 'yaml']]) {
    const render = await run(['manifest', 'render', ...extra]);
    const dry = await run(['install', '--dry-run', ...extra]);
    assert.equal(render.code, 0, render.stderr);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(dry.stdout, render.stdout);
    assert.ok(render.stdout.length > 1000);
  }
});

test('a bad flag or value: usage error, exit 2, naming what is wrong', async () => {
  const cases: [string[], RegExp][] = [
    [['install', '--bogus'], /unknown option '--bogus'/],
    [['manifest', 'render', '-o', 'xml'], /expected yaml or json, not "xml"/],
    [['install', '--dry-run', '--identity-replicas', '0'], /--identity-replicas "0" is not valid; expected a whole number from 1 to 1000/],
    [['install', '--timeout', 'soon'], /expected a duration such as 300s, 5m or 1h/],
    [['enroll'], /missing required argument 'namespace'/],
  ];
  for (const [args, re] of cases) {
    const r = await run(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
  }
});

test('a missing or broken kubeconfig, a missing context, an unreachable cluster: exit 1 with what to do', async () => {
  const closedPort = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const garbage = path.join(tmp, 'garbage');
  fs.writeFileSync(garbage, 'clusters: [ this is not yaml');
  const cases: [string[], RegExp][] = [
    [['install', '--kubeconfig', path.join(tmp, 'missing')], /cannot use the kubeconfig .*missing: the file does not exist; pass a valid one with --kubeconfig .*NODEMESH_E_KUBE_CONFIG/],
    [['status', '--kubeconfig', garbage], /cannot use the kubeconfig .*garbage: it is not a valid kubeconfig.*NODEMESH_E_KUBE_CONFIG/],
    [['install', '--kubeconfig', kubeconfig('two', server.url, ['a', 'b']), '--context', 'c'], /has no context "c" \(contexts: a, b\); pass one of them with --context.*NODEMESH_E_KUBE_CONTEXT/],
    [['enroll', 'shop', '--kubeconfig', kubeconfig('closed', `https://127.0.0.1:${closedPort}`)], new RegExp(`cannot reach the Kubernetes API server at https://127.0.0.1:${closedPort}: connection refused.*NODEMESH_E_KUBE_UNREACHABLE`)],
    [['enroll', 'shop', '--kubeconfig', kubeconfig('badtoken', server.url)], /refused the credentials of u \(401 Unauthorized\).*NODEMESH_E_KUBE_UNAUTHORIZED/],
    [['install'], /cannot use the kubeconfig .*no-such-kubeconfig: the file does not exist/],
  ];
  for (const [args, re] of cases) {
    const r = await run(args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
    assert.doesNotMatch(r.stderr, /NODEMESH_E_INTERNAL|    at /, 'no stack trace');
  }
});

test('enroll and unenroll through the CLI against the test API server', async () => {
  server.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } });
  const r = await run(['enroll', 'shop', '--kubeconfig', server.kubeconfigPath]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'namespace/shop enrolled\n');
  assert.equal((server.store.get('v1', 'Namespace', 'shop')!.metadata.labels as Record<string, string>)['nodemesh.io/dataplane-mode'], 'ambient');
  const u = await run(['unenroll', 'shop'], { KUBECONFIG: server.kubeconfigPath });
  assert.equal(u.stdout, 'namespace/shop unenrolled\n');
  const missing = await run(['enroll', 'nope', '--kubeconfig', server.kubeconfigPath]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /namespace "nope" does not exist in this cluster/);
  const notInstalled = await run(['status', '--kubeconfig', server.kubeconfigPath]);
  assert.equal(notInstalled.code, 1);
  assert.match(notInstalled.stderr, /nodemesh is not installed in this cluster .*run 'nodemesh install' first/);
});

test('kubectl accepts every rendered object by server-side apply', async () => {
  const { kubectl } = layerBinaries();
  const file = path.join(tmp, 'rendered.yaml');
  fs.writeFileSync(file, (await run(['manifest', 'render'])).stdout);
  // Async: the test API server runs in this process and must keep answering. It serves no
  // /openapi/v2, so kubectl's client-side validation is off; the objects were validated
  // against the OpenAPI schemas in manifests/render.test.ts, and the server validates its kinds.
  const out = await new Promise<string>((resolve, reject) => {
    execFile(kubectl, ['--kubeconfig', server.kubeconfigPath, 'apply', '--server-side', '--field-manager', 'nodemesh', '--validate=false', '-f', file], { timeout: 60_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
  });
  assert.match(out, /customresourcedefinition.apiextensions.k8s.io\/authorizationpolicies.security.nodemesh.io serverside-applied/);
  assert.match(out, /daemonset.apps\/nodemesh-node serverside-applied/);
  assert.ok(server.store.get('apps/v1', 'Deployment', 'nodemesh-identity', 'nodemesh-system'));
});

test('nodemesh install as a process: applies, waits with progress on stderr naming the lagging node, exits 0 once the rollout is done; status', async () => {
  const child = execFile(process.execPath, [CLI, 'install', '--kubeconfig', server.kubeconfigPath, '--timeout', '60s'], { env: { ...process.env } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  const until = async (what: string, f: () => unknown) => {
    for (let i = 0; i < 2000 && !f(); i++) {
      if (child.exitCode !== null) assert.fail(`install exited (${child.exitCode}) before ${what}: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(f(), what);
  };
  await until('the DaemonSet', () => server.store.get('apps/v1', 'DaemonSet', 'nodemesh-node', 'nodemesh-system'));
  const gen = server.store.get('apps/v1', 'DaemonSet', 'nodemesh-node', 'nodemesh-system')!.metadata.generation as number;
  const daemonPod = (node: string, ready: boolean) => {
    const name = `nodemesh-node-${node}`;
    if (server.store.get('v1', 'Pod', name, 'nodemesh-system')) server.store.delete('v1', 'Pod', name, 'nodemesh-system');
    server.store.create({
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name, namespace: 'nodemesh-system', labels: { 'app.kubernetes.io/name': 'nodemesh-node', 'app.kubernetes.io/part-of': 'nodemesh', 'pod-template-generation': String(gen) } },
      spec: { nodeName: node, serviceAccountName: 'nodemesh-node', containers: [{ name: 'nodemesh-node', image: 'x' }] },
    });
    server.store.patchStatus('v1', 'Pod', name, 'nodemesh-system', {
      phase: ready ? 'Running' : 'Pending', conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', reason: ready ? undefined : 'ContainersNotReady' }],
    });
  };
  const dsStatus = (ready: number) => server.store.patchStatus('apps/v1', 'DaemonSet', 'nodemesh-node', 'nodemesh-system', {
    observedGeneration: gen, desiredNumberScheduled: 2, currentNumberScheduled: 2, numberMisscheduled: 0, updatedNumberScheduled: 2, numberReady: ready, numberAvailable: ready,
  });
  daemonPod('node-1', true);
  daemonPod('node-2', false);
  dsStatus(1);
  await until('progress naming node-2', () => /1\/2 nodes ready, 2\/2 updated\n\s+node-2 \(nodemesh-node-node-2\): not ready: ContainersNotReady/.test(stderr));
  daemonPod('node-2', true);
  dsStatus(2);
  assert.equal(await exited, 0, stderr);
  assert.equal(stdout, 'nodemesh 0.1.0 installed: 2/2 nodes ready\n');
  assert.match(stderr, /mesh CA generated \(secret\/nodemesh-ca; the key is never printed\)/);
  assert.doesNotMatch(stdout + stderr, /PRIVATE KEY/);

  const st = await run(['status', '--kubeconfig', server.kubeconfigPath, '-o', 'json']);
  assert.equal(st.code, 0, st.stderr);
  const s = JSON.parse(st.stdout) as { nodes: { node: string; daemonReady: boolean; certificates: { reachable: boolean } }[] };
  assert.deepEqual(s.nodes.map((n) => [n.node, n.daemonReady]), [['node-1', true], ['node-2', true]]);
  // No kubelet behind the test server's pod proxy: the certificate state is reported unknown.
  assert.equal(s.nodes[0].certificates.reachable, false);
});
