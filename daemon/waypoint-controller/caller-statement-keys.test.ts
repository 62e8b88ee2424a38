import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { keyFingerprint, keyMaster, keysDocument, publishedIds, waypointKey } from './caller-statement-keys';
import { ReplayCache, signStatement, verifyStatement } from '../tunnel/caller-statement';
import { parseTrustFile } from '../tunnel/caller-statement-trust';

const WP = 'spiffe://cluster.local/ns/shop/sa/waypoint';

test('waypoint keys: derived the same on every pass and replica, different per waypoint, per Gateway uid and per CA', () => {
  const m = keyMaster('-----BEGIN PRIVATE KEY-----\nA\n-----END PRIVATE KEY-----\n');
  const a = waypointKey(m, WP, 'uid-1');
  assert.deepEqual(waypointKey(keyMaster('-----BEGIN PRIVATE KEY-----\nA\n-----END PRIVATE KEY-----\n'), WP, 'uid-1'), a);
  const others = [waypointKey(m, 'spiffe://cluster.local/ns/other/sa/waypoint', 'uid-1'), waypointKey(m, WP, 'uid-2'), waypointKey(keyMaster('another CA key'), WP, 'uid-1')];
  for (const o of others) assert.notDeepEqual(o.publicKey, a.publicKey);
  assert.notEqual(keyFingerprint(a.publicKey), keyFingerprint(others[1].publicKey));
});

test('the published document is what the node daemons trust: a statement the waypoint signs verifies against it', () => {
  const m = keyMaster('ca key');
  const k = waypointKey(m, WP, 'uid-1');
  const other = waypointKey(m, 'spiffe://cluster.local/ns/b/sa/b', 'uid-9');
  const doc = keysDocument(new Map([[WP, k.publicKey], ['spiffe://cluster.local/ns/b/sa/b', other.publicKey]]));
  assert.deepEqual(publishedIds(doc), ['spiffe://cluster.local/ns/b/sa/b', WP], 'sorted, stable');
  assert.equal(doc, keysDocument(new Map([['spiffe://cluster.local/ns/b/sa/b', other.publicKey], [WP, k.publicKey]])));
  const trusted = parseTrustFile(doc);
  const now = Date.now();
  const wire = signStatement({ signer: WP, secretKey: k.secretKey }, { caller: 'spiffe://cluster.local/ns/shop/sa/web', dst: '10.244.1.2:8080', now });
  assert.equal(verifyStatement(wire, { trustedKeys: trusted, peerId: WP, authority: '10.244.1.2:8080', now, replay: new ReplayCache() }).ok, true);
  // Signed with another waypoint's key while claiming this one: refused.
  const forged = signStatement({ signer: WP, secretKey: other.secretKey }, { caller: 'spiffe://cluster.local/ns/shop/sa/web', dst: '10.244.1.2:8080', now });
  assert.equal(verifyStatement(forged, { trustedKeys: trusted, peerId: WP, authority: '10.244.1.2:8080', now, replay: new ReplayCache() }).ok, false);
  assert.deepEqual(publishedIds('not json'), []);
  assert.deepEqual(publishedIds(undefined), []);
});
