// Service account tokens as a kube-apiserver issues them (TokenRequest) and checks them
// (TokenReview, bearer authentication): RS256 JWTs whose claims follow 29's claims, signed with
// a key made at start, verified for signature, expiry, audience and bound objects.
import { createHash, generateKeyPairSync, randomUUID, sign, verify, type KeyObject } from 'node:crypto';

export const DEFAULT_ISSUER = 'https://kubernetes.default.svc.cluster.local';

export interface TokenClaims {
  aud: string[];
  exp: number;
  iat: number;
  iss: string;
  jti: string;
  'kubernetes.io': {
    namespace: string;
    node?: { name: string; uid: string };
    pod?: { name: string; uid: string };
    secret?: { name: string; uid: string };
    serviceaccount: { name: string; uid: string };
  };
  nbf: number;
  sub: string;
}

export interface IssueRequest {
  namespace: string;
  serviceAccount: { name: string; uid: string };
  audiences: string[];
  expirationSeconds: number;
  pod?: { name: string; uid: string };
  node?: { name: string; uid: string };
  secret?: { name: string; uid: string };
  /** For tests that need an already-expired token; default now. */
  now?: Date;
}

export type Verified = { ok: true; claims: TokenClaims } | { ok: false; error: string };

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export class TokenIssuer {
  private readonly privateKey: KeyObject;
  private readonly publicKey: KeyObject;
  private readonly kid: string;

  constructor(readonly issuer = DEFAULT_ISSUER) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = privateKey;
    this.publicKey = publicKey;
    this.kid = createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('base64url');
  }

  /** The public key in PEM, for tests that verify tokens themselves (as an OIDC client would). */
  get publicKeyPem(): string {
    return this.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }

  issue(r: IssueRequest): { token: string; claims: TokenClaims } {
    const now = Math.floor((r.now ?? new Date()).getTime() / 1000);
    // Claim order as the real issuer writes it: namespace, node, pod, secret, serviceaccount.
    const k8s = {
      namespace: r.namespace,
      ...(r.node ? { node: r.node } : {}),
      ...(r.pod ? { pod: r.pod } : {}),
      ...(r.secret ? { secret: r.secret } : {}),
      serviceaccount: r.serviceAccount,
    };
    const claims: TokenClaims = {
      aud: r.audiences,
      exp: now + r.expirationSeconds,
      iat: now,
      iss: this.issuer,
      jti: randomUUID(),
      'kubernetes.io': k8s,
      nbf: now,
      sub: `system:serviceaccount:${r.namespace}:${r.serviceAccount.name}`,
    };
    const head = b64url(JSON.stringify({ alg: 'RS256', kid: this.kid }));
    const body = b64url(JSON.stringify(claims));
    const sig = sign('sha256', Buffer.from(`${head}.${body}`), this.privateKey).toString('base64url');
    return { token: `${head}.${body}.${sig}`, claims };
  }

  /** Signature, issuer and time checks. Audience and bound-object checks are the caller's:
   * they need the request's audiences and the store. */
  verify(token: string, now = new Date()): Verified {
    const parts = token.split('.');
    if (parts.length !== 3) return { ok: false, error: 'invalid bearer token' };
    let header: { alg?: string };
    let claims: TokenClaims;
    try {
      header = JSON.parse(Buffer.from(parts[0], 'base64url').toString());
      claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString());
    } catch {
      return { ok: false, error: 'invalid bearer token' };
    }
    if (header.alg !== 'RS256' || claims.iss !== this.issuer) return { ok: false, error: 'invalid bearer token' };
    if (!verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), this.publicKey, Buffer.from(parts[2], 'base64url'))) {
      return { ok: false, error: 'invalid bearer token' };
    }
    const t = Math.floor(now.getTime() / 1000);
    if (typeof claims.exp !== 'number' || t >= claims.exp) return { ok: false, error: '[invalid bearer token, service account token has expired]' };
    if (typeof claims.nbf === 'number' && t < claims.nbf - 60) return { ok: false, error: '[invalid bearer token, service account token is not valid yet]' };
    return { ok: true, claims };
  }
}

/** Go's %q of a []string: ["a" "b"]. */
export function goStringList(xs: string[]): string {
  return `[${xs.map((x) => JSON.stringify(x)).join(' ')}]`;
}

export function audienceError(tokenAudiences: string[], wanted: string[]): string {
  return `[invalid bearer token, token audiences ${goStringList(tokenAudiences)} is invalid for the target audiences ${goStringList(wanted)}]`;
}

/** The user a valid token authenticates as, with the `extra` a TokenReview reports (30). */
export function userInfoOf(claims: TokenClaims): { username: string; uid: string; groups: string[]; extra: Record<string, string[]> } {
  const k = claims['kubernetes.io'];
  const extra: Record<string, string[]> = { 'authentication.kubernetes.io/credential-id': [`JTI=${claims.jti}`] };
  if (k.node) {
    extra['authentication.kubernetes.io/node-name'] = [k.node.name];
    extra['authentication.kubernetes.io/node-uid'] = [k.node.uid];
  }
  if (k.pod) {
    extra['authentication.kubernetes.io/pod-name'] = [k.pod.name];
    extra['authentication.kubernetes.io/pod-uid'] = [k.pod.uid];
  }
  return {
    username: claims.sub,
    uid: k.serviceaccount.uid,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${k.namespace}`, 'system:authenticated'],
    extra,
  };
}
