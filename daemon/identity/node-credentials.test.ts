import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import {
  NODE_TOKEN_BYTES, NodeCredentialAuthenticator, bearerToken, mintNodeCredentials, readNodeCredentialsFile, writeNodeCredentialsFile,
  readNodeToken, writeNodeTokenFile,
} from './node-credentials';
import { NodemeshError } from '../errors';

function md(...auth: string[]): Metadata {
  const m = new Metadata();
  for (const a of auth) m.add('authorization', a);
  return m;
}

const unauthenticated = (e: unknown): boolean => NodemeshError.is(e, 'NODEMESH_E_IDENTITY_UNAUTHENTICATED');

test('mintNodeCredentials: one distinct 32-byte random token per node', () => {
  const c = mintNodeCredentials(['node-a', 'node-b']);
  assert.deepEqual(Object.keys(c), ['node-a', 'node-b']);
  for (const t of Object.values(c)) assert.equal(Buffer.from(t, 'base64url').length, NODE_TOKEN_BYTES);
  assert.notEqual(c['node-a'], c['node-b']);
  assert.throws(() => mintNodeCredentials(['a', 'a']), (e) => NodemeshError.is(e, 'NODEMESH_E_CONFIG'));
  assert.throws(() => mintNodeCredentials(['']), (e) => NodemeshError.is(e, 'NODEMESH_E_CONFIG'));
});

test('bearerToken takes exactly one "Bearer <token>" value', () => {
  assert.equal(bearerToken(md('Bearer abc')), 'abc');
  assert.equal(bearerToken(md('bearer abc')), 'abc');
  for (const bad of [md(), md('Basic abc'), md('Bearer '), md('Bearer a b'), md('Bearer a', 'Bearer b')]) assert.throws(() => bearerToken(bad), unauthenticated);
});

test('files are written 0600 and read back; the daemon reads its bare token', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodemesh-creds-'));
  try {
    const c = mintNodeCredentials(['node-a']);
    const table = path.join(dir, 'creds.json');
    const own = path.join(dir, 'node-a.token');
    writeNodeCredentialsFile(table, c);
    writeNodeTokenFile(own, c['node-a']);
    assert.equal(fs.statSync(table).mode & 0o777, 0o600);
    assert.equal(fs.statSync(own).mode & 0o777, 0o600);
    assert.deepEqual(readNodeCredentialsFile(table), c);
    assert.equal(readNodeToken(own), c['node-a']);
    fs.writeFileSync(table, '["not", "an", "object"]');
    assert.throws(() => readNodeCredentialsFile(table), (e) => NodemeshError.is(e, 'NODEMESH_E_IDENTITY_NODE_CREDENTIALS'));
    fs.writeFileSync(table, '{"node-a": "short"}');
    assert.throws(() => readNodeCredentialsFile(table), (e) => NodemeshError.is(e, 'NODEMESH_E_IDENTITY_NODE_CREDENTIALS'));
    assert.throws(() => readNodeToken(path.join(dir, 'missing')), (e) => NodemeshError.is(e, 'NODEMESH_E_IDENTITY_NODE_CREDENTIALS'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('NodeCredentialAuthenticator: known token -> node, unknown -> UNAUTHENTICATED, reload on change, keep last good table', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodemesh-creds-'));
  try {
    const file = path.join(dir, 'creds.json');
    const c = mintNodeCredentials(['node-a', 'node-b']);
    writeNodeCredentialsFile(file, c);
    const reloadErrors: string[] = [];
    const auth = new NodeCredentialAuthenticator(file, (e) => reloadErrors.push(e.code));
    assert.deepEqual(await auth.authenticate(md(`Bearer ${c['node-b']}`)), { node: 'node-b' });
    await assert.rejects(auth.authenticate(md(`Bearer ${c['node-b']}x`)), unauthenticated);
    await assert.rejects(auth.authenticate(md()), unauthenticated);

    const more = { ...c, ...mintNodeCredentials(['node-c']) };
    writeNodeCredentialsFile(file, more);
    assert.deepEqual(await auth.authenticate(md(`Bearer ${more['node-c']}`)), { node: 'node-c' });

    fs.writeFileSync(file, '{ broken');
    assert.deepEqual(await auth.authenticate(md(`Bearer ${more['node-c']}`)), { node: 'node-c' }, 'last good table kept');
    await auth.authenticate(md(`Bearer ${more['node-a']}`));
    assert.deepEqual(reloadErrors, ['NODEMESH_E_IDENTITY_NODE_CREDENTIALS'], 'a broken file is reported once, not per call');

    assert.throws(() => new NodeCredentialAuthenticator(path.join(dir, 'missing.json')), (e) => NodemeshError.is(e, 'NODEMESH_E_IDENTITY_NODE_CREDENTIALS'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
