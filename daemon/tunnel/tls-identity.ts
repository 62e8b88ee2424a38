// The TLS side of HBONE: secure contexts built from a workload's issued identity, the peer
// chain as the identity code wants it, and OpenSSL's failures turned into sentences.
// Both ends do two checks: OpenSSL's verdict on the chain against the trust bundle (the
// client aborts the handshake on it; the server reads it right after, so it can say why),
// then verifyPeerChain applies the SPIFFE rules (one URI SAN, the expected trust domain, a
// leaf) and yields the peer's ID. No stream is served or sent before both pass. There is no
// hostname check anywhere: the name that matters is the SPIFFE ID, not DNS.
import * as tls from 'node:tls';
import { parseSpiffeId, verifyPeerChain } from '../identity/ca';
import type { IssuedIdentity } from '../identity/certificate-manager';

/** A workload's key, certificate chain (leaf first) and trust bundle, as the certificate manager issues it. */
export type { IssuedIdentity };

/** (chain leaf-first as DER, trust roots, trust domain) -> SPIFFE ID, or throws. */
export type PeerVerifier = (chain: Buffer[], trustRootsPem: string[], trustDomain: string, now?: Date) => Promise<string>;

export const defaultPeerVerifier: PeerVerifier = verifyPeerChain;

export function trustDomainOf(id: string): string {
  const parsed = parseSpiffeId(id);
  if (!parsed) throw new TypeError(`${JSON.stringify(id)} is not a SPIFFE ID spiffe://<trust-domain>/ns/<ns>/sa/<sa>`);
  return parsed.trustDomain;
}

/** Options for tls.createSecureContext / server.setSecureContext: TLS 1.3 only. */
export function secureContextOptions(id: IssuedIdentity): tls.SecureContextOptions {
  return {
    key: id.keyPem,
    cert: id.certChainPem.join('\n'),
    ca: id.trustBundlePem,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
  };
}

/** Two identities present the same credentials (same leaf, same trust bundle). */
export function sameCredentials(a: IssuedIdentity, b: IssuedIdentity): boolean {
  if (a === b) return true;
  if (a.spiffeId !== b.spiffeId || a.certChainPem[0] !== b.certChainPem[0] || a.keyPem !== b.keyPem) return false;
  if (a.trustBundlePem.length !== b.trustBundlePem.length) return false;
  return a.trustBundlePem.every((p, i) => p === b.trustBundlePem[i]);
}

/** The chain the peer sent, leaf first, as DER. A trust root the peer appended is dropped
 * (it proves nothing; the verifier anchors on our own bundle). */
export function peerChainDer(sock: tls.TLSSocket): Buffer[] {
  const out: Buffer[] = [];
  let c = sock.getPeerCertificate(true) as tls.DetailedPeerCertificate | Record<string, never>;
  const seen = new Set<string>();
  while (c && 'raw' in c && c.raw && out.length < 10) {
    const fp = c.fingerprint256;
    if (seen.has(fp)) break;
    seen.add(fp);
    out.push(c.raw);
    const next = c.issuerCertificate;
    if (!next || next.fingerprint256 === fp) break; // self-signed: the end
    c = next;
  }
  return out;
}

const REASONS: Record<string, string> = {
  CERT_HAS_EXPIRED: 'the certificate has expired',
  CERT_NOT_YET_VALID: 'the certificate is not valid yet (clock skew between nodes?)',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the certificate is not issued by a CA in our trust bundle (another trust domain, or another mesh\'s CA?)',
  UNABLE_TO_GET_ISSUER_CERT: 'the certificate is not issued by a CA in our trust bundle (another trust domain, or another mesh\'s CA?)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the certificate is not issued by a CA in our trust bundle (another trust domain, or another mesh\'s CA?)',
  SELF_SIGNED_CERT_IN_CHAIN: 'the chain ends in a root that is not in our trust bundle',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the certificate is self-signed, not issued by the mesh CA',
  CERT_SIGNATURE_FAILURE: 'the certificate signature does not verify',
  INVALID_PURPOSE: 'the certificate may not be used for this side of TLS (extendedKeyUsage)',
  ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: 'the peer presented no client certificate',
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'the peer requires a client certificate and we sent none',
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: 'the peer rejected our certificate (bad certificate)',
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: 'the peer does not trust the CA that issued our certificate (different mesh CA or trust bundle?)',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: 'the peer says our certificate has expired (is certificate rotation working?)',
  ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR: 'the peer could not verify our handshake signature',
  ERR_SSL_WRONG_VERSION_NUMBER: 'the bytes received are not TLS',
  ERR_SSL_HTTP_REQUEST: 'the peer sent plaintext HTTP, not TLS',
  ERR_SSL_PACKET_LENGTH_TOO_LONG: 'the bytes received are not TLS',
  ERR_SSL_UNSUPPORTED_PROTOCOL: 'the peer offered a TLS version older than 1.3',
  ERR_SSL_NO_PROTOCOLS_AVAILABLE: 'the peer offered no TLS version we accept (1.3 only)',
  ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION: 'the peer does not accept TLS 1.3',
  ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL: 'the peer does not speak HTTP/2 (ALPN h2)',
  ERR_SSL_NO_APPLICATION_PROTOCOL: 'the peer does not offer HTTP/2 (ALPN h2)',
  ECONNRESET: 'the connection was reset during the TLS handshake',
  ERR_TLS_HANDSHAKE_TIMEOUT: 'the TLS handshake timed out',
};

/** A sentence for a TLS/socket error, keeping OpenSSL's own text in parentheses. */
export function describeTlsError(e: unknown): string {
  const err = e as { code?: string; message?: string } | undefined;
  const code = err?.code ?? '';
  const known = REASONS[code];
  const raw = err?.message ?? String(e);
  return known ? `${known} (${code})` : raw;
}
