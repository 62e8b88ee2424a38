// nodemesh-identity as a process: configured by environment only, on 127.0.0.1 with an
// ephemeral port, read by the node-side client configured the way the daemon will be.
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChildProcess, spawn } from 'node:child_process';
import { CA_CERT_FILE, CA_KEY_FILE, verifyPeerChain } from './ca';
import { IdentityClient } from './identity-client';
import { loadIdentityClientConfig } from './identity-client-config';
import { mintNodeCredentials, writeNodeCredentialsFile, writeNodeTokenFile } from './node-credentials';
import { writeObject } from '../sources/object-directory';

const MAIN = path.resolve(__dirname, '..', 'identity-main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nodemesh-identity-main-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface Running { child: ChildProcess; lines: Record<string, unknown>[]; stderr: () => string; exited: Promise<number | null> }

function start(env: Record<string, string>): Running {
  const child = spawn(process.execPath, [MAIN], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const lines: Record<string, unknown>[] = [];
  let err = '';
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line) lines.push(JSON.parse(line));
    }
  });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, lines, stderr: () => err, exited };
}

async function waitForLine(r: Running, msg: string, ms = 10_000): Promise<Record<string, unknown>> {
  for (let waited = 0; waited <= ms; waited += 25) {
    const l = r.lines.find((x) => x.msg === msg);
    if (l) return l;
    if (r.child.exitCode !== null) assert.fail(`nodemesh-identity exited (${r.child.exitCode}) before '${msg}': ${r.stderr()}`);
    await new Promise((res) => setTimeout(res, 25));
  }
  assert.fail(`no '${msg}' line within ${ms} ms; stderr: ${r.stderr()}`);
}

test('nodemesh-identity: creates its CA, binds, serves the node client, stops on SIGTERM, reloads the same CA', async () => {
  const caDir = path.join(tmp, 'ca');
  const objects = path.join(tmp, 'objects');
  writeObject(objects, {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'api-1', namespace: 'shop' },
    spec: { nodeName: 'node-a', serviceAccountName: 'api', containers: [{ name: 'app' }] }, status: { phase: 'Running' },
  });
  const creds = mintNodeCredentials(['node-a']);
  const credFile = path.join(tmp, 'node-credentials.json');
  const tokenFile = path.join(tmp, 'node-a.token');
  writeNodeCredentialsFile(credFile, creds);
  writeNodeTokenFile(tokenFile, creds['node-a']);
  const env = {
    NODEMESH_IDENTITY_LISTEN: '127.0.0.1:0', NODEMESH_CA_DIR: caDir, NODEMESH_SOURCE: 'sandbox', NODEMESH_SANDBOX_OBJECTS: objects,
    NODEMESH_NODE_CREDENTIALS: credFile, NODEMESH_CERT_MAX_TTL_SECONDS: '120',
  };

  const first = start(env);
  assert.equal((await waitForLine(first, 'mesh CA created')).created, true);
  const ready = await waitForLine(first, 'nodemesh-identity ready');
  assert.equal(fs.statSync(path.join(caDir, CA_KEY_FILE)).mode & 0o777, 0o600);
  const root = fs.readFileSync(path.join(caDir, CA_CERT_FILE), 'utf8');

  const cfg = loadIdentityClientConfig({
    NODEMESH_IDENTITY_ADDRESS: `127.0.0.1:${ready.port}`, NODEMESH_NODE_CREDENTIAL_FILE: tokenFile, NODEMESH_CA_ROOT_FILE: path.join(caDir, CA_CERT_FILE),
  });
  const client = IdentityClient.fromConfig(cfg);
  try {
    const id = await client.fetchIdentity({ namespace: 'shop', serviceAccount: 'api' }, cfg.certTtlSeconds);
    assert.equal(await verifyPeerChain([...id.certChainPem], [root], 'cluster.local'), 'spiffe://cluster.local/ns/shop/sa/api');
    assert.ok(id.notAfter.getTime() - Date.now() <= 121_000, 'capped by NODEMESH_CERT_MAX_TTL_SECONDS');
    await waitForLine(first, 'certificate issued');
  } finally {
    client.close();
  }
  first.child.kill('SIGTERM');
  assert.equal(await first.exited, 0);
  await waitForLine(first, 'stopped');

  const second = start(env);
  assert.equal((await waitForLine(second, 'mesh CA loaded')).created, false);
  await waitForLine(second, 'nodemesh-identity ready');
  assert.equal(fs.readFileSync(path.join(caDir, CA_CERT_FILE), 'utf8'), root, 'the same CA after a restart');
  second.child.kill('SIGTERM');
  assert.equal(await second.exited, 0);
});

test('nodemesh-identity: a bad configuration exits 1 naming the variable', async () => {
  const r = start({ NODEMESH_CA_DIR: path.join(tmp, 'ca2'), NODEMESH_SOURCE: 'sandbox', NODEMESH_SANDBOX_OBJECTS: tmp, NODEMESH_NODE_CREDENTIALS: 'x', NODEMESH_CERT_MAX_TTL_SECONDS: 'soon' });
  assert.equal(await r.exited, 1);
  assert.match(r.stderr(), /^nodemesh-identity: invalid configuration NODEMESH_CERT_MAX_TTL_SECONDS="soon".*\(NODEMESH_E_CONFIG\)/);
});
