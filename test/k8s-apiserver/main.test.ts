// The test API server as a process: prints its URL when ready, writes a kubeconfig that
// client-node loads, answers with the given token, stops on SIGTERM; a bad flag is a clear
// error and a non-zero exit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as k8s from '@kubernetes/client-node';

const MAIN = path.join(__dirname, 'main.js');

test('main.js: URL on stdout when ready, a working kubeconfig, exit 0 on SIGTERM', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'k8s-apiserver-main-'));
  const kubeconfig = path.join(dir, 'kubeconfig');
  const child = spawn(process.execPath, [MAIN, '--port', '0', '--kubeconfig-out', kubeconfig, '--token', 'sekret'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const nl = out.indexOf('\n');
        if (nl >= 0) resolve(out.slice(0, nl));
      });
      child.on('exit', (code) => reject(new Error(`main.js exited with ${code} before printing its URL`)));
    });
    assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfig);
    assert.equal(kc.getCurrentCluster()?.server, url);
    assert.equal(kc.getCurrentUser()?.token, 'sekret');
    const namespaces = await kc.makeApiClient(k8s.CoreV1Api).listNamespace();
    assert.ok(namespaces.items.some((n) => n.metadata?.name === 'kube-system'));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('main.js: a bad flag is a clear error and exit code 1', () => {
  const r = spawnSync(process.execPath, [MAIN, '--port', 'abc', '--kubeconfig-out', '/dev/null'], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--port must be 0-65535, got "abc"/);
});
