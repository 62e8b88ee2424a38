// Each waypoint's Ed25519 key for caller statements (daemon/tunnel/caller-statement.ts), on
// Kubernetes. The private half goes into a Secret in the waypoint's namespace that only its
// Deployment mounts; the public halves are published as one document in the ConfigMap
// nodemesh-waypoint-keys (nodemesh-system), which the node DaemonSet mounts beside the CA root,
// so the daemons' existing trust-file watcher (caller-statement-trust.ts) reads it unchanged
// and no daemon needs API access for it. The mesh's configuration vouches for the key, never
// the waypoint.
//
// The keys are derived, not stored: seed = HMAC(master, SPIFFE ID | Gateway uid), master =
// HKDF of the mesh CA key the controller's process (nodemesh-identity) already holds. Every
// pass and every replica computes the same keys, so the controller keeps no key state, needs no
// read access to Secrets, and a leader change or a write that half failed cannot leave the
// Secret and the published key disagreeing. A Gateway deleted and made again (new uid) gets a
// new key. One waypoint's key reveals nothing of another's; whoever holds the CA key can mint
// any identity already.
import { createHash, createHmac, hkdfSync } from 'node:crypto';
import nacl from 'tweetnacl';
import { parseTrustFile } from '../tunnel/caller-statement-trust';

export function keyMaster(caKeyPem: string): Buffer {
  return Buffer.from(hkdfSync('sha256', caKeyPem, 'nodemesh', 'waypoint caller-statement keys v1', 32));
}

export interface WaypointKey { publicKey: Uint8Array; secretKey: Uint8Array }

export function waypointKey(master: Buffer, spiffeId: string, gatewayUid: string): WaypointKey {
  const seed = createHmac('sha256', master).update(`${spiffeId}|${gatewayUid}`).digest();
  return nacl.sign.keyPair.fromSeed(new Uint8Array(seed));
}

/** A short fingerprint of a public key: the Deployment's pod template carries it, so a new key
 * rolls the waypoint (it reads its key once, at start). */
export function keyFingerprint(publicKey: Uint8Array): string {
  return createHash('sha256').update(publicKey).digest('base64url').slice(0, 16);
}

/** The published document: { "<SPIFFE ID>": "<base64url public key>" }, sorted, stable. */
export function keysDocument(keys: ReadonlyMap<string, Uint8Array>): string {
  const out: Record<string, string> = {};
  for (const id of [...keys.keys()].sort()) out[id] = Buffer.from(keys.get(id)!).toString('base64url');
  return `${JSON.stringify(out, null, 2)}\n`;
}

/** The SPIFFE IDs a published document names (a document that does not parse names none). */
export function publishedIds(doc: string | undefined): string[] {
  if (!doc) return [];
  try { return [...parseTrustFile(doc).keys()]; } catch { return []; }
}
