// The node daemon's settings for reaching nodemesh-identity. Kept apart from daemon/config.ts
// (owned elsewhere) so the two can be merged later; same conventions: environment parsed once
// into a frozen, typed object with named defaults, errors name the variable.
import { DaemonErrors } from '../errors';
import { DEFAULT_TRUST_DOMAIN, isValidTrustDomain } from './ca';

export interface IdentityClientConfig {
  /** host:port of nodemesh-identity; the host is also the TLS name checked on its certificate. */
  address: string;
  /** File holding this node's credential (the bare bearer token); re-read for every request,
   * so a rotated token (e.g. a projected ServiceAccount token) is picked up. */
  nodeCredentialFile: string;
  trustDomain: string;
  /** PEM root(s) of the mesh CA: the trust anchor for nodemesh-identity and for issued chains. */
  caRootFile: string;
  /** Lifetime asked for each workload certificate; the service may cap it. */
  certTtlSeconds: number;
}

export const IDENTITY_CLIENT_DEFAULTS = Object.freeze({
  address: 'nodemesh-identity.nodemesh-system.svc:15012',
  trustDomain: DEFAULT_TRUST_DOMAIN,
  certTtlSeconds: 24 * 3600,
});

/** host:port, host a name, IPv4 or [IPv6]; port 1-65535 (or 0, an ephemeral port, where allowed). */
export function parseHostPort(value: string, field: string, opts: { allowPortZero?: boolean } = {}): { host: string; port: number } {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  const min = opts.allowPortZero ? 0 : 1;
  if (!m || port < min || port > 65535) {
    throw DaemonErrors.NODEMESH_E_CONFIG({ field, value, expected: `host:port (a name, an IPv4 address or [IPv6], and a port ${min}-65535)` });
  }
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

export function positiveInt(env: NodeJS.ProcessEnv, name: string, dflt: number): number {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw DaemonErrors.NODEMESH_E_CONFIG({ field: name, value: v, expected: 'a whole number of seconds >= 1' });
  return n;
}

export function trustDomainFrom(env: NodeJS.ProcessEnv): string {
  const td = env.NODEMESH_TRUST_DOMAIN || IDENTITY_CLIENT_DEFAULTS.trustDomain;
  if (!isValidTrustDomain(td)) throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_TRUST_DOMAIN', value: td, expected: "a SPIFFE trust domain: lowercase letters, digits, '.', '-', '_' (e.g. cluster.local)" });
  return td;
}

export function loadIdentityClientConfig(env: NodeJS.ProcessEnv = process.env): Readonly<IdentityClientConfig> {
  const address = env.NODEMESH_IDENTITY_ADDRESS || IDENTITY_CLIENT_DEFAULTS.address;
  parseHostPort(address, 'NODEMESH_IDENTITY_ADDRESS');
  const nodeCredentialFile = env.NODEMESH_NODE_CREDENTIAL_FILE || '';
  if (!nodeCredentialFile) {
    throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_NODE_CREDENTIAL_FILE', value: '', expected: "the file holding this node's credential for nodemesh-identity (set by nodemesh local up)" });
  }
  const caRootFile = env.NODEMESH_CA_ROOT_FILE || '';
  if (!caRootFile) {
    throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_CA_ROOT_FILE', value: '', expected: "the mesh CA's root certificate (PEM), e.g. <NODEMESH_CA_DIR>/ca.crt" });
  }
  return Object.freeze({
    address,
    nodeCredentialFile,
    trustDomain: trustDomainFrom(env),
    caRootFile,
    certTtlSeconds: positiveInt(env, 'NODEMESH_CERT_TTL_SECONDS', IDENTITY_CLIENT_DEFAULTS.certTtlSeconds),
  });
}
