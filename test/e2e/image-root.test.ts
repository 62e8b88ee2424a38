// The container image's tree, without a container runtime: installer/image/stage.sh stages what
// the Dockerfile copies to /opt/nodemesh, and that tree's own CLI brings up a sandbox, so the
// identity service, both node daemons, the eBPF objects and the native addon all come from the
// staged tree (production node_modules only, no tests). A connection across nodes must then
// take the HBONE path with both workload identities, exactly as from the checkout.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { down, eventually, leftovers, REPO, requireSandboxPrerequisites, status } from './helpers/sandbox';
import { connections, echoProbe } from './helpers/mesh';
import { appPod, sleeperPod } from './helpers/manifests';

const MANIFEST = `apiVersion: v1
kind: Namespace
metadata: { name: img, labels: { nodemesh.io/dataplane-mode: ambient } }
---${sleeperPod('img', 'client', 'node-1')}${appPod('img', 'far', 'node-2', 'app: far', ['nodemesh-sample-app', 'tcp-echo', '--port', '9000'])}`;

function run(argv: string[], input?: string, timeoutMs = 180_000) {
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd: REPO, input, encoding: 'utf8', timeout: timeoutMs });
  assert.equal(r.status, 0, `${argv.join(' ')} exited ${r.status ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

function cmdline(pid: number | null | undefined): string {
  assert.ok(pid, 'no pid');
  return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
}

describe('the image tree (make image-root) runs the mesh on its own', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodemesh-image-root-'));
  const stage = path.join(dir, 'opt-nodemesh');
  const cli = path.join(stage, 'dist', 'installer', 'cli.js');

  before(async () => {
    requireSandboxPrerequisites();
    await down();
    run([path.join(REPO, 'installer', 'image', 'stage.sh'), stage]);
  });
  after(async () => {
    // The staged CLI removes the sandbox it made; the checkout's `down` as a second net.
    spawnSync(process.execPath, [cli, 'local', 'down'], { encoding: 'utf8', timeout: 120_000 });
    await down();
    fs.rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(leftovers(), []);
  });

  test('what is staged: programs, objects, addon, CRDs; no tests, no development dependencies', () => {
    for (const f of ['dist/daemon/main.js', 'dist/daemon/identity-main.js', 'dist/waypoint/main.js', 'bpf/build/capture.bpf.o',
      'bpf/build/inbound.bpf.o', 'native/build/Release/nodemesh_native.node', 'daemon/identity/proto/identity.proto',
      'installer/crds/authorizationpolicies.security.nodemesh.io.yaml', 'node_modules/pino/package.json']) {
      assert.ok(fs.existsSync(path.join(stage, f)), `${f} is not staged`);
    }
    assert.ok(!fs.existsSync(path.join(stage, 'dist', 'test')), 'dist/test is staged');
    const tests = run(['find', path.join(stage, 'dist'), '-name', '*.test.js']).trim();
    assert.equal(tests, '', 'test files are staged');
    for (const dev of ['typescript', 'node-gyp', '@aws-cdk/lambda-layer-kubectl-v35']) {
      assert.ok(!fs.existsSync(path.join(stage, 'node_modules', dev)), `development dependency ${dev} is staged`);
    }
  });

  test('a sandbox from the staged tree: every mesh process runs from it and HBONE carries both identities', async () => {
    run([process.execPath, cli, 'local', 'up', '--nodes', '2', '-f', '-'], MANIFEST);
    const s = await status();
    assert.match(cmdline(s.identity?.pid), new RegExp(`${stage}/dist/daemon/identity-main\\.js`));
    for (const n of s.nodes) assert.match(cmdline(n.daemon.pid), new RegExp(`${stage}/dist/daemon/main\\.js`), n.name);

    const far = s.pods.find((p) => p.name === 'far')!;
    const r = await echoProbe('img/client', far.ip, 9000);
    assert.match(r.greeting ?? '', /^hello from far/, JSON.stringify(r));
    const out = await eventually('the outbound HBONE record on node-1', async () =>
      (await connections('node-1')).find((c) => c.direction === 'outbound' && c.path === 'hbone' && c.destinationIdentity?.endsWith('/ns/img/sa/far')));
    assert.equal(out.sourceIdentity, 'spiffe://cluster.local/ns/img/sa/client');
    const inb = await eventually('the inbound record on node-2', async () =>
      (await connections('node-2')).find((c) => c.direction === 'inbound-hbone' && c.sourceIdentity === 'spiffe://cluster.local/ns/img/sa/client'));
    assert.equal(inb.verdict, 'allow');
  });
});
