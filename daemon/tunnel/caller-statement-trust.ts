// Which waypoints the mesh trusts to vouch for callers, and the check the destination's
// daemon makes on each HBONE CONNECT (caller-statement.ts). The keys come from the mesh's
// configuration, next to the CA root every daemon already trusts
// (`<dir of NODEMESH_CA_ROOT_FILE>/caller-statement-keys.json`: { "<waypoint SPIFFE ID>":
// "<base64url Ed25519 public key>" }), written by whoever installs waypoints (the sandbox's
// `waypoint apply`; on Kubernetes the waypoint controller, through the ConfigMap
// nodemesh-waypoint-keys that the node DaemonSet projects beside the CA root), never by a
// waypoint itself. The file is re-read when it changes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Snapshot } from '../state/snapshot';
import { CALLER_STATEMENT_HEADER, ReplayCache, verifyStatement, type StatementRefusal } from './caller-statement';

export const TRUST_FILE_NAME = 'caller-statement-keys.json';
const RECHECK_MS = 1_000;

export function trustFileFor(caRootFile: string): string {
  return path.join(path.dirname(caRootFile), TRUST_FILE_NAME);
}

export function parseTrustFile(text: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const j = JSON.parse(text) as Record<string, unknown>;
  for (const [id, key] of Object.entries(j)) {
    if (typeof key !== 'string') continue;
    const raw = new Uint8Array(Buffer.from(key, 'base64url'));
    if (raw.length === 32) out.set(id, raw);
  }
  return out;
}

export type CallerPrincipal = { ok: true; principal: string; vouchedBy?: string } | { ok: false; reason: StatementRefusal; message: string };

interface TunnelFacts { sourceId: string; destination: { address: string; port: number }; headers: Record<string, string | string[] | undefined> }

export class CallerStatementVerifier {
  private keys = new Map<string, Uint8Array>();
  private checkedAt = 0;
  private mtimeMs = -1;
  private readonly replay = new ReplayCache();
  /** The caller each vouched tunnel was verified for (re-checks on policy change reuse it:
   * the statement itself is single use). */
  private readonly verified = new WeakMap<object, string>();

  constructor(private readonly file: string | undefined, private readonly now: () => number = Date.now) {}

  /** From the daemon's environment (NODEMESH_CA_ROOT_FILE); without it no statement is trusted. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): CallerStatementVerifier {
    return new CallerStatementVerifier(env.NODEMESH_CA_ROOT_FILE ? trustFileFor(env.NODEMESH_CA_ROOT_FILE) : undefined);
  }

  /** Whom policy should judge for this tunnel: the certificate's identity, or the caller a
   * trusted waypoint vouches for. A statement that does not verify refuses the tunnel. */
  principalFor(ctx: TunnelFacts): CallerPrincipal {
    const header = ctx.headers[CALLER_STATEMENT_HEADER];
    if (header === undefined) return { ok: true, principal: ctx.sourceId };
    const wire = Array.isArray(header) ? header.join(',') : header;
    const v = verifyStatement(wire, {
      trustedKeys: this.trustedKeys(), peerId: ctx.sourceId, authority: `${ctx.destination.address}:${ctx.destination.port}`, now: this.now(), replay: this.replay,
    });
    if (!v.ok) return v;
    this.verified.set(ctx, v.statement.caller);
    return { ok: true, principal: v.statement.caller, vouchedBy: ctx.sourceId };
  }

  /** For re-checks of open tunnels: the principal verified when the tunnel opened. */
  principalAfter(ctx: TunnelFacts): string {
    return this.verified.get(ctx) ?? ctx.sourceId;
  }

  private trustedKeys(): Map<string, Uint8Array> {
    const t = this.now();
    if (!this.file || t - this.checkedAt < RECHECK_MS) return this.keys;
    this.checkedAt = t;
    try {
      const st = fs.statSync(this.file);
      if (st.mtimeMs !== this.mtimeMs) { this.keys = parseTrustFile(fs.readFileSync(this.file, 'utf8')); this.mtimeMs = st.mtimeMs; }
    } catch {
      this.keys = new Map(); // no file (no waypoints) or unreadable: trust nobody
      this.mtimeMs = -1;
    }
    return this.keys;
  }
}

const withoutTargetRefs = new WeakMap<Snapshot, Snapshot>();

/** The snapshot a node judges a waypoint-vouched tunnel by: policies attached to waypoints or
 * Services (targetRefs) are the waypoint's to enforce and it did, with L7 knowledge; selector
 * policies still hold at the node. Cached per snapshot (snapshots are immutable). */
export function withoutTargetRefPolicies(s: Snapshot): Snapshot {
  let out = withoutTargetRefs.get(s);
  if (!out) {
    out = { ...s, authorizationPolicies: s.authorizationPolicies.filter((p) => (p.spec?.targetRefs ?? []).length === 0) };
    withoutTargetRefs.set(s, out);
  }
  return out;
}
