import { test } from 'node:test';
import assert from 'node:assert/strict';
import nacl from 'tweetnacl';
import {
  ReplayCache, StatementRefusal, newSigningKeyPair, signStatement, verifyStatement, type VerifyContext,
} from './caller-statement';

const WAYPOINT = 'spiffe://cluster.local/ns/shop/sa/waypoint';
const CALLER = 'spiffe://cluster.local/ns/shop/sa/web';
const keys = newSigningKeyPair();
const other = newSigningKeyPair();
const NOW = 1_800_000_000_000;
const ctx = (over: Partial<VerifyContext> = {}): VerifyContext => ({
  trustedKeys: new Map([[WAYPOINT, keys.publicKey]]), peerId: WAYPOINT, authority: '10.244.2.2:8080', now: NOW, replay: new ReplayCache(), ...over,
});
const sign = (over: { secretKey?: Uint8Array; signer?: string; dst?: string; now?: number; lifetimeMs?: number; caller?: string } = {}) =>
  signStatement({ signer: over.signer ?? WAYPOINT, secretKey: over.secretKey ?? keys.secretKey }, { caller: over.caller ?? CALLER, dst: over.dst ?? '10.244.2.2:8080', now: over.now ?? NOW, lifetimeMs: over.lifetimeMs });

test('caller statements: good, forged, expired, misbound, malformed', () => {
  const good = sign();
  const [body, sig] = good.split('.');
  const tamperedBody = Buffer.from(Buffer.from(body, 'base64url').toString().replace('sa/web', 'sa/adm')).toString('base64url');
  const table: [string, string, VerifyContext, true | StatementRefusal][] = [
    ['valid', good, ctx(), true],
    ['signed by a key the mesh does not trust for the signer (forged)', sign({ secretKey: other.secretKey }), ctx(), 'bad-signature'],
    ['caller changed after signing (forged)', `${tamperedBody}.${sig}`, ctx(), 'bad-signature'],
    ['signature bytes flipped', `${body}.${Buffer.from(Buffer.from(sig, 'base64url').map((b, i) => (i === 0 ? b ^ 1 : b))).toString('base64url')}`, ctx(), 'bad-signature'],
    ['signer without a trusted key', sign({ signer: 'spiffe://cluster.local/ns/shop/sa/rogue' }), ctx({ peerId: 'spiffe://cluster.local/ns/shop/sa/rogue' }), 'unknown-signer'],
    ['lifted onto a tunnel from another peer', good, ctx({ peerId: 'spiffe://cluster.local/ns/shop/sa/evil' }), 'misbound-peer'],
    ['sent to another destination', good, ctx({ authority: '10.244.2.3:8080' }), 'misbound-destination'],
    ['expired', sign({ now: NOW - 20_000 }), ctx(), 'expired'],
    ['issued in the future', sign({ now: NOW + 60_000 }), ctx(), 'not-yet-valid'],
    ['valid for too long', sign({ lifetimeMs: 3_600_000 }), ctx(), 'lifetime-too-long'],
    ['not base64/JSON', 'garbage.garbage', ctx(), 'malformed'],
    ['no signature part', body, ctx(), 'malformed'],
    ['two dots', `${good}.x`, ctx(), 'malformed'],
    ['huge', 'a'.repeat(5000), ctx(), 'malformed'],
    ['caller not a SPIFFE ID', sign({ caller: 'root' }), ctx(), 'malformed'],
  ];
  for (const [name, wire, c, want] of table) {
    const v = verifyStatement(wire, c);
    if (want === true) assert.ok(v.ok, `${name}: ${JSON.stringify(v)}`);
    else assert.equal(v.ok ? 'accepted' : v.reason, want, name);
  }
});

test('caller statements are single use; forged ones do not use up a nonce', () => {
  const replay = new ReplayCache();
  const good = sign();
  const forged = `${good.split('.')[0]}.${Buffer.alloc(64).toString('base64url')}`;
  assert.equal(verifyStatement(forged, ctx({ replay })).ok, false);
  const first = verifyStatement(good, ctx({ replay }));
  assert.ok(first.ok && first.statement.caller === CALLER);
  const again = verifyStatement(good, ctx({ replay, now: NOW + 1000 }));
  assert.equal(!again.ok && again.reason, 'replayed');
});

test('the replay cache forgets expired nonces and refuses when full', () => {
  const c = new ReplayCache(2);
  assert.equal(c.admit('a', NOW + 1000, NOW), 'new');
  assert.equal(c.admit('b', NOW + 1000, NOW), 'new');
  assert.equal(c.admit('c', NOW + 1000, NOW), 'full');
  assert.equal(c.admit('a', NOW + 1000, NOW), 'replayed');
  assert.equal(c.admit('c', NOW + 60_000, NOW + 10_000), 'new', 'a and b expired and were pruned');
  assert.equal(c.size, 1);
});

test('signatures are plain Ed25519: tweetnacl verifies ours, and ours verify tweetnacl\'s', () => {
  const wire = sign();
  const [body, sig] = wire.split('.');
  assert.ok(nacl.sign.detached.verify(Buffer.from(body, 'latin1'), Buffer.from(sig, 'base64url'), keys.publicKey));
  const naclSig = Buffer.from(nacl.sign.detached(Buffer.from(body, 'latin1'), keys.secretKey)).toString('base64url');
  assert.equal(naclSig, sig, 'Ed25519 is deterministic: both libraries give the same signature');
  assert.ok(verifyStatement(`${body}.${naclSig}`, ctx()).ok);
});
