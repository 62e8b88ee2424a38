// How nodemesh-identity knows which node is calling. The server side is the NodeAuthenticator
// interface; this file holds the sandbox implementation: `nodemesh local up` mints one random
// token per node, writes the table {node: token} for nodemesh-identity and each node's own
// token for its daemon. With Kubernetes, a TokenReview authenticator will implement the same
// interface (the daemon then sends its projected ServiceAccount token the same way).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Metadata } from '@grpc/grpc-js';
import { DaemonErrors, NodemeshError } from '../errors';
import type { WaypointCaller } from './waypoint-caller';

/** Who called: a node daemon (for the pods on its node), or, on Kubernetes, a waypoint (for
 * its own identity only; token-review.ts). */
export type Caller = { node: string; waypoint?: undefined } | { node?: undefined; waypoint: WaypointCaller };

export interface NodeAuthenticator {
  /** Resolves with the caller, or rejects with NODEMESH_E_IDENTITY_UNAUTHENTICATED. */
  authenticate(metadata: Metadata): Promise<Caller>;
}

export const NODE_TOKEN_BYTES = 32;

/** One fresh random token (32 bytes, base64url) per node. */
export function mintNodeCredentials(nodes: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of nodes) {
    if (!n) throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'node name', value: n, expected: 'a non-empty node name' });
    if (Object.prototype.hasOwnProperty.call(out, n)) throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'node name', value: n, expected: 'unique node names' });
    out[n] = randomBytes(NODE_TOKEN_BYTES).toString('base64url');
  }
  return out;
}

function writePrivate(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, text, { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}

/** The table nodemesh-identity reads (NODEMESH_NODE_CREDENTIALS): JSON {node: token}, mode 0600. */
export function writeNodeCredentialsFile(file: string, creds: Record<string, string>): void {
  writePrivate(file, JSON.stringify(creds, null, 2) + '\n');
}

/** One node's token, the bare string, as its daemon reads it (NODEMESH_NODE_CREDENTIAL_FILE), mode 0600. */
export function writeNodeTokenFile(file: string, token: string): void {
  writePrivate(file, token + '\n');
}

/** Reads a node credential file: the bare token, surrounding whitespace ignored. */
export function readNodeToken(file: string): string {
  let token: string;
  try {
    token = fs.readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw DaemonErrors.NODEMESH_E_IDENTITY_NODE_CREDENTIALS({ file, reason: (e as Error).message }, { cause: e });
  }
  if (!token || /\s/.test(token)) throw DaemonErrors.NODEMESH_E_IDENTITY_NODE_CREDENTIALS({ file, reason: 'expected one token with no whitespace' });
  return token;
}

export function readNodeCredentialsFile(file: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw DaemonErrors.NODEMESH_E_IDENTITY_NODE_CREDENTIALS({ file, reason: (e as Error).message }, { cause: e });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw DaemonErrors.NODEMESH_E_IDENTITY_NODE_CREDENTIALS({ file, reason: 'it is not a JSON object' });
  }
  const out: Record<string, string> = {};
  for (const [node, token] of Object.entries(parsed)) {
    if (typeof token !== 'string' || token.length < 16) {
      throw DaemonErrors.NODEMESH_E_IDENTITY_NODE_CREDENTIALS({ file, reason: `the token of node ${JSON.stringify(node)} is not a string of at least 16 characters` });
    }
    out[node] = token;
  }
  return out;
}

/** The bearer token of a call: exactly one `authorization: Bearer <token>` value. */
export function bearerToken(metadata: Metadata): string {
  const values = metadata.get('authorization');
  if (values.length === 0) throw DaemonErrors.NODEMESH_E_IDENTITY_UNAUTHENTICATED({ reason: "the call has no 'authorization' metadata" });
  if (values.length > 1) throw DaemonErrors.NODEMESH_E_IDENTITY_UNAUTHENTICATED({ reason: "the call has more than one 'authorization' value" });
  const m = /^Bearer\s+(\S+)\s*$/i.exec(String(values[0]));
  if (!m) throw DaemonErrors.NODEMESH_E_IDENTITY_UNAUTHENTICATED({ reason: "the 'authorization' metadata is not 'Bearer <token>'" });
  return m[1];
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Sandbox authenticator: the token must be one node's entry in the credential file. The file
 * is re-read when it changes (new nodes); if a re-read fails, the last good table stays. */
export class NodeCredentialAuthenticator implements NodeAuthenticator {
  private table: { node: string; digest: Buffer }[] = [];
  private stamp = '';

  constructor(private readonly file: string, private readonly onReloadError: (e: NodemeshError) => void = () => undefined) {
    this.reload(true);
  }

  get nodes(): string[] {
    return this.table.map((e) => e.node);
  }

  async authenticate(metadata: Metadata): Promise<{ node: string }> {
    const token = bearerToken(metadata);
    this.reload(false);
    const d = digest(token);
    let node: string | undefined;
    // Compare fixed-length digests in constant time, and look at every entry.
    for (const e of this.table) if (timingSafeEqual(e.digest, d) && node === undefined) node = e.node;
    if (node === undefined) throw DaemonErrors.NODEMESH_E_IDENTITY_UNAUTHENTICATED({ reason: 'the bearer token is not a known node credential' });
    return { node };
  }

  private reload(initial: boolean): void {
    let stamp = 'missing';
    try {
      try {
        const st = fs.statSync(this.file);
        stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
      } catch (e) {
        if (initial) throw e;
      }
      if (stamp === this.stamp) return; // unchanged (or still broken: reported once already)
      this.stamp = stamp;
      const creds = readNodeCredentialsFile(this.file);
      this.table = Object.entries(creds).map(([node, token]) => ({ node, digest: digest(token) }));
    } catch (e) {
      const err = NodemeshError.is(e) ? e : DaemonErrors.NODEMESH_E_IDENTITY_NODE_CREDENTIALS({ file: this.file, reason: (e as Error).message }, { cause: e });
      if (initial) throw err;
      this.onReloadError(err);
    }
  }
}
