import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { daemonEnv } from './daemons';
import { identityClientEnv, identityEnv, identityRecord, nodeCredentialFile, readyLine, tcpListening, writeCredentials } from './identity';
import type { NodeRecord } from './state';

const rec = identityRecord('/run/nm', '/sys/fs/cgroup/nodemesh-sandbox', '/run/nm/logs', 'nmsb-top');
const node = (name: string, nodesDir = '/run/nm/nodes'): NodeRecord => ({
  name, index: 1, ip: '172.30.0.11', netns: `nmsb-${name}`, netnsPath: `/run/netns/nmsb-${name}`, podCIDR: '10.244.1.0/24',
  cgroup: `/cg/${name}`, daemonCgroup: `/cg/${name}/nodemesh-node`, adminSocket: `${nodesDir}/${name}/admin.sock`,
  credentialFile: nodeCredentialFile(nodesDir, name), bpfPinRoot: `/sys/fs/bpf/nodemesh/sandbox/${name}`, log: `/run/nm/logs/${name}.log`,
});

test('identity record: own cgroup beside the nodes, CA and credentials under <state>/identity', () => {
  assert.deepEqual(rec, {
    address: '172.30.0.1:15012', netns: 'nmsb-top', cgroup: '/sys/fs/cgroup/nodemesh-sandbox/nodemesh-identity',
    caDir: '/run/nm/identity/ca', caRootFile: '/run/nm/identity/ca/ca.crt', credentialsFile: '/run/nm/identity/node-credentials.json',
    trustDomain: 'cluster.local', log: '/run/nm/logs/identity.log',
  });
});

test('identityEnv: the identity-config.ts contract; only named knobs pass through', () => {
  const env = identityEnv(rec, '/run/nm/objects', { PATH: '/bin', NODEMESH_LOG_LEVEL: 'debug', NODEMESH_CA_DIR: '/elsewhere', HOME: '/root' });
  assert.deepEqual(env, {
    PATH: '/bin', NODEMESH_IDENTITY_LISTEN: '172.30.0.1:15012', NODEMESH_CA_DIR: '/run/nm/identity/ca', NODEMESH_TRUST_DOMAIN: 'cluster.local',
    NODEMESH_NODE_CREDENTIALS: '/run/nm/identity/node-credentials.json', NODEMESH_SOURCE: 'sandbox', NODEMESH_SANDBOX_OBJECTS: '/run/nm/objects',
    NODEMESH_LOG_LEVEL: 'debug',
  });
});

test('node daemons get the identity-client-config.ts variables, and a caller\'s own values do not override them', () => {
  const n = node('node-1');
  const env = daemonEnv(n, '/run/nm/objects', { PATH: '/bin', NODEMESH_IDENTITY_ADDRESS: '10.0.0.1:1', NODEMESH_CERT_TTL_SECONDS: '600' }, identityClientEnv(rec, n));
  assert.equal(env.NODEMESH_IDENTITY_ADDRESS, '172.30.0.1:15012');
  assert.equal(env.NODEMESH_NODE_CREDENTIAL_FILE, '/run/nm/nodes/node-1/credential');
  assert.equal(env.NODEMESH_CA_ROOT_FILE, '/run/nm/identity/ca/ca.crt');
  assert.equal(env.NODEMESH_TRUST_DOMAIN, 'cluster.local');
  assert.equal(env.NODEMESH_CERT_TTL_SECONDS, '600', 'developer knobs still pass through');
  assert.equal(env.NODEMESH_NODE_NAME, 'node-1');
});

test('writeCredentials: one distinct token per node, the table and each node file 0600', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nm-cred-'));
  try {
    const r = identityRecord(dir, '/cg', path.join(dir, 'logs'), 'nmsb-top');
    const nodes = [node('node-1', path.join(dir, 'nodes')), node('node-2', path.join(dir, 'nodes'))];
    writeCredentials(r, nodes);
    const table = JSON.parse(fs.readFileSync(r.credentialsFile, 'utf8')) as Record<string, string>;
    assert.deepEqual(Object.keys(table), ['node-1', 'node-2']);
    assert.notEqual(table['node-1'], table['node-2']);
    for (const n of nodes) {
      assert.equal(fs.readFileSync(n.credentialFile, 'utf8').trim(), table[n.name]);
      assert.equal(fs.statSync(n.credentialFile).mode & 0o777, 0o600);
    }
    assert.equal(fs.statSync(r.credentialsFile).mode & 0o777, 0o600);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('readyLine: the pino "ready" line, ignoring other lines and a torn last line', () => {
  assert.equal(readyLine('{"msg":"mesh CA created"}\n{"msg":"nodemesh-identity re'), undefined);
  assert.deepEqual(readyLine('--- header\n{"msg":"mesh CA created"}\n{"level":30,"msg":"nodemesh-identity ready","port":15012}\n'), { level: 30, msg: 'nodemesh-identity ready', port: 15012 });
});

test('tcpListening reads /proc/<pid>/net/tcp', () => {
  const table = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 01001EAC:3AA4 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0',
    '   1: 01001EAC:3AA5 0B001EAC:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0',
  ].join('\n');
  assert.equal(tcpListening(table, '172.30.0.1', 15012), true);
  assert.equal(tcpListening(table, '172.30.0.1', 15013), false, 'established, not listening');
  assert.equal(tcpListening(table, '172.30.0.2', 15012), false);
});
