// The mesh CA and the X.509-SVID rules both ends of a tunnel apply. Keys are ECDSA P-256
// (WebCrypto from node:crypto); certificates are built and parsed with @peculiar/x509, so
// there is no hand-written ASN.1 here. What a leaf looks like (SPIFFE X.509-SVID):
//   - subject empty, the identity is the one critical URI SAN spiffe://<td>/ns/<ns>/sa/<sa>
//   - basicConstraints CA:false, keyUsage digitalSignature, extKeyUsage serverAuth+clientAuth
//     (the same certificate is the client side and the server side of HBONE)
// The root is a self-signed CA that also carries the URI SAN spiffe://<td>, which is how
// `MeshCA.load` learns the trust domain from ca.crt alone.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { X509Certificate as NodeX509Certificate, createHash, randomBytes, webcrypto } from 'node:crypto';
import { DaemonErrors, NodemeshError } from '../errors';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;

export const DEFAULT_TRUST_DOMAIN = 'cluster.local';
export const CA_KEY_FILE = 'ca.key';
export const CA_CERT_FILE = 'ca.crt';
/** Certificates start this long before they are issued, so a peer whose clock is a little
 * behind does not reject a fresh certificate as "not yet valid". */
export const CLOCK_SKEW_ALLOWANCE_SECONDS = 60;

const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const EC_SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const OID_SAN = '2.5.29.17';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_KEY_USAGE = '2.5.29.15';
const MAX_CHAIN_DEPTH = 8;

// --- SPIFFE IDs ---------------------------------------------------------------------------

const TRUST_DOMAIN_RE = /^[a-z0-9._-]+$/;
const PATH_SEGMENT_RE = /^[A-Za-z0-9._-]+$/;
const SPIFFE_SCHEME = 'spiffe://';
const MAX_SPIFFE_ID_LENGTH = 2048;

export function isValidTrustDomain(td: string): boolean {
  return td.length > 0 && td.length <= 255 && TRUST_DOMAIN_RE.test(td);
}

function segmentProblem(s: string): string | undefined {
  if (s === '') return 'empty path segment';
  if (s === '.' || s === '..') return `path segment ${JSON.stringify(s)} is not allowed`;
  if (!PATH_SEGMENT_RE.test(s)) return `path segment ${JSON.stringify(s)} has characters other than letters, digits, '.', '-', '_'`;
  return undefined;
}

/** Why `uri` is not a mesh SPIFFE ID (spiffe://td/ns/<ns>/sa/<sa>), or undefined if it is one. */
function spiffeIdProblem(uri: string): string | undefined {
  if (uri.length > MAX_SPIFFE_ID_LENGTH) return `longer than ${MAX_SPIFFE_ID_LENGTH} characters`;
  if (!uri.startsWith(SPIFFE_SCHEME)) return "it does not start with 'spiffe://'";
  const rest = uri.slice(SPIFFE_SCHEME.length);
  const slash = rest.indexOf('/');
  const td = slash < 0 ? rest : rest.slice(0, slash);
  if (!isValidTrustDomain(td)) return `trust domain ${JSON.stringify(td)} must be lowercase letters, digits, '.', '-', '_'`;
  if (slash < 0) return 'it names a trust domain, not a workload';
  const segs = rest.slice(slash + 1).split('/');
  for (const s of segs) {
    const p = segmentProblem(s);
    if (p) return p;
  }
  if (segs.length !== 4 || segs[0] !== 'ns' || segs[2] !== 'sa') return "the path is not /ns/<namespace>/sa/<service-account>";
  return undefined;
}

export function parseSpiffeId(uri: string): { trustDomain: string; namespace: string; serviceAccount: string } | undefined {
  if (spiffeIdProblem(uri) !== undefined) return undefined;
  const [td, , namespace, , serviceAccount] = uri.slice(SPIFFE_SCHEME.length).split('/');
  return { trustDomain: td, namespace, serviceAccount };
}

/** Throws NODEMESH_E_IDENTITY_INVALID_SPIFFE_ID when the parts do not make a valid ID. */
export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  const id = `${SPIFFE_SCHEME}${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
  const problem = spiffeIdProblem(id);
  if (problem) throw DaemonErrors.NODEMESH_E_IDENTITY_INVALID_SPIFFE_ID({ value: id, reason: problem });
  return id;
}

function requireSpiffeId(id: string): { trustDomain: string; namespace: string; serviceAccount: string } {
  const problem = spiffeIdProblem(id);
  if (problem) throw DaemonErrors.NODEMESH_E_IDENTITY_INVALID_SPIFFE_ID({ value: id, reason: problem });
  return parseSpiffeId(id)!;
}

// --- keys and CSRs ------------------------------------------------------------------------

export interface KeyAndCsr { keyPem: string; csrPem: string }

async function generateKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']) as Promise<webcrypto.CryptoKeyPair>;
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

function uriSan(id: string, critical = false): x509.SubjectAlternativeNameExtension {
  return new x509.SubjectAlternativeNameExtension([{ type: 'url', value: id }], critical);
}

/** A fresh ECDSA P-256 key (PKCS#8 PEM, never written anywhere) and a CSR whose only SAN is `spiffeId`. */
export async function generateKeyAndCsr(id: string): Promise<KeyAndCsr> {
  requireSpiffeId(id);
  const keys = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: EC_SIGN, extensions: [uriSan(id)] });
  return { keyPem: await privateKeyPem(keys.privateKey), csrPem: csr.toString('pem') };
}

interface ParsedCsr {
  csr: x509.Pkcs10CertificateRequest;
  /** URI SANs, in order. */
  uris: string[];
  /** Every other SAN, as "type:value". */
  otherSans: string[];
}

/** Parses and checks a CSR: PEM PKCS#10, valid self-signature, ECDSA P-256 key. */
async function parseCsr(csrPem: string): Promise<ParsedCsr> {
  if (typeof csrPem !== 'string' || !csrPem.includes('-----BEGIN CERTIFICATE REQUEST-----')) {
    throw DaemonErrors.NODEMESH_E_IDENTITY_BAD_CSR({ reason: "it is not PEM ('-----BEGIN CERTIFICATE REQUEST-----' missing)" });
  }
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (e) {
    throw DaemonErrors.NODEMESH_E_IDENTITY_BAD_CSR({ reason: `it does not parse as PKCS#10 (${(e as Error).message})` }, { cause: e });
  }
  const alg = csr.publicKey.algorithm as { name?: string; namedCurve?: string };
  if (alg.name !== EC_KEY.name || alg.namedCurve !== EC_KEY.namedCurve) {
    throw DaemonErrors.NODEMESH_E_IDENTITY_BAD_CSR({ reason: `its key is ${alg.name ?? 'unknown'}${alg.namedCurve ? ` ${alg.namedCurve}` : ''}, not ECDSA P-256` });
  }
  let ok = false;
  try {
    ok = await csr.verify();
  } catch (e) {
    throw DaemonErrors.NODEMESH_E_IDENTITY_BAD_CSR({ reason: `its signature cannot be checked (${(e as Error).message})` }, { cause: e });
  }
  if (!ok) throw DaemonErrors.NODEMESH_E_IDENTITY_BAD_CSR({ reason: 'its signature does not verify (altered in transit, or not signed by the key it carries)' });
  const { uris, other } = sansOf(csr.getExtensions(OID_SAN));
  return { csr, uris, otherSans: other };
}

function sansOf(exts: x509.Extension[]): { uris: string[]; other: string[] } {
  const uris: string[] = [];
  const other: string[] = [];
  for (const e of exts) {
    const san = e instanceof x509.SubjectAlternativeNameExtension ? e : new x509.SubjectAlternativeNameExtension(e.rawData);
    for (const n of san.names.items) {
      if (n.type === 'url') uris.push(n.value);
      else other.push(`${n.type}:${n.value}`);
    }
  }
  return { uris, other };
}

/** The one SPIFFE ID a CSR asks for, checked against the CA's trust domain. The identity
 * service uses this to learn what the caller wants before it checks node binding. */
export async function csrSpiffeId(csrPem: string, trustDomain: string): Promise<string> {
  const { uris, otherSans } = await parseCsr(csrPem);
  return requestedId(uris, otherSans, trustDomain);
}

function requestedId(uris: string[], otherSans: string[], trustDomain: string): string {
  if (otherSans.length > 0) throw DaemonErrors.NODEMESH_E_IDENTITY_CSR_SAN({ reason: `it also asks for ${otherSans.join(', ')}` });
  if (uris.length === 0) throw DaemonErrors.NODEMESH_E_IDENTITY_CSR_SAN({ reason: 'it has no URI SAN' });
  if (uris.length > 1) throw DaemonErrors.NODEMESH_E_IDENTITY_CSR_SAN({ reason: `it has ${uris.length} URI SANs (${uris.join(', ')})` });
  const id = requireSpiffeId(uris[0]);
  if (id.trustDomain !== trustDomain) throw DaemonErrors.NODEMESH_E_IDENTITY_WRONG_TRUST_DOMAIN({ spiffeId: uris[0], trustDomain });
  return uris[0];
}

// --- the CA -------------------------------------------------------------------------------

function randomSerial(): string {
  const b = randomBytes(16);
  b[0] &= 0x7f; // positive INTEGER
  b[0] |= 0x01; // no leading zero byte, so every serial is 16 bytes long
  return b.toString('hex');
}

function checkTtl(ttlSeconds: number): void {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw DaemonErrors.NODEMESH_E_IDENTITY_INVALID_TTL({ value: String(ttlSeconds) });
}

export interface IssueOptions {
  /** Start of validity; default: now minus CLOCK_SKEW_ALLOWANCE_SECONDS. */
  notBefore?: Date;
  /** Extra SANs for a serving certificate (the identity service's own; never for workloads). */
  dnsNames?: string[];
  ipAddresses?: string[];
}

export class MeshCA {
  private constructor(
    readonly trustDomain: string,
    private readonly signingKey: CryptoKey,
    private readonly keyPem: string,
    private readonly root: x509.X509Certificate,
    readonly rootCertPem: string,
  ) {}

  /** A new self-signed root (ECDSA P-256), valid for `validityDays` (default 10 years). */
  static async create(opts: { trustDomain: string; validityDays?: number }): Promise<MeshCA> {
    if (!isValidTrustDomain(opts.trustDomain)) throw DaemonErrors.NODEMESH_E_IDENTITY_INVALID_TRUST_DOMAIN({ value: opts.trustDomain });
    const days = opts.validityDays ?? 3650;
    if (!(days > 0)) throw DaemonErrors.NODEMESH_E_IDENTITY_INVALID_TTL({ value: `${days} days` });
    const keys = await generateKeyPair();
    const now = Date.now();
    const ski = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey);
    const root = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomSerial(),
      // The key id in the name tells two CAs of one trust domain apart in errors and logs
      // ("issuer ... does not chain to this mesh's trust roots").
      name: [{ O: [opts.trustDomain] }, { CN: [`nodemesh root CA ${ski.keyId.slice(0, 8)}`] }],
      keys,
      signingAlgorithm: EC_SIGN,
      notBefore: new Date(now - CLOCK_SKEW_ALLOWANCE_SECONDS * 1000),
      notAfter: new Date(now + days * 86400_000),
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
        ski,
        uriSan(`${SPIFFE_SCHEME}${opts.trustDomain}`),
      ],
    });
    return new MeshCA(opts.trustDomain, keys.privateKey, await privateKeyPem(keys.privateKey), root, root.toString('pem'));
  }

  /** Loads ca.key (must not be readable by group or others) and ca.crt from `dir`. */
  static async load(dir: string): Promise<MeshCA> {
    const fail = (reason: string, cause?: unknown): NodemeshError => DaemonErrors.NODEMESH_E_IDENTITY_CA_LOAD({ dir, reason }, { cause });
    const keyFile = path.join(dir, CA_KEY_FILE);
    const certFile = path.join(dir, CA_CERT_FILE);
    let keyPem: string;
    let certPem: string;
    try {
      const st = fs.statSync(keyFile);
      if ((st.mode & 0o077) !== 0) throw fail(`${keyFile} has mode ${(st.mode & 0o777).toString(8)}; run 'chmod 600 ${keyFile}' (a Kubernetes Secret volume needs defaultMode: 0400)`);
      keyPem = fs.readFileSync(keyFile, 'utf8');
      certPem = fs.readFileSync(certFile, 'utf8');
    } catch (e) {
      if (NodemeshError.is(e)) throw e;
      throw fail((e as Error).message, e);
    }
    return MeshCA.fromPem(keyPem, certPem, { where: dir, keyName: keyFile, certName: certFile });
  }

  /** A CA from its PEM key and certificate (e.g. a Kubernetes Secret read through the API);
   * the same checks as load(). `where` names the source in errors. */
  static async fromPem(keyPem: string, certPem: string, src: { where: string; keyName?: string; certName?: string }): Promise<MeshCA> {
    const dir = src.where;
    const keyFile = src.keyName ?? CA_KEY_FILE;
    const certFile = src.certName ?? CA_CERT_FILE;
    const fail = (reason: string, cause?: unknown): NodemeshError => DaemonErrors.NODEMESH_E_IDENTITY_CA_LOAD({ dir, reason }, { cause });
    let root: x509.X509Certificate;
    try {
      root = new x509.X509Certificate(certPem);
    } catch (e) {
      throw fail(`${certFile} is not a PEM certificate (${(e as Error).message})`, e);
    }
    const bc = root.getExtension(x509.BasicConstraintsExtension);
    if (!bc?.ca) throw fail(`${certFile} is not a CA certificate (basicConstraints CA:true missing)`);
    const tdUris = sansOf(root.getExtensions(OID_SAN)).uris.filter((u) => u.startsWith(SPIFFE_SCHEME));
    const td = tdUris.length === 1 ? tdUris[0].slice(SPIFFE_SCHEME.length) : '';
    if (!isValidTrustDomain(td)) throw fail(`${certFile} does not name its trust domain (one URI SAN spiffe://<trust-domain> expected)`);
    let key: CryptoKey;
    try {
      key = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(keyPem), EC_KEY, true, ['sign']);
    } catch (e) {
      throw fail(`${keyFile} is not an ECDSA P-256 PKCS#8 PEM key (${(e as Error).message})`, e);
    }
    // The key must be the certificate's: sign something and check it with the cert's key.
    const probe = randomBytes(32);
    const sig = await webcrypto.subtle.sign(EC_SIGN, key, probe);
    const pub = await root.publicKey.export(EC_KEY, ['verify']);
    if (!(await webcrypto.subtle.verify(EC_SIGN, pub as CryptoKey, sig, probe))) throw fail(`${keyFile} does not belong to ${certFile}`);
    return new MeshCA(td, key, keyPem, root, root.toString('pem'));
  }

  /** The key and root as PEM, for storing the CA elsewhere (a Secret). Never log these. */
  toPem(): { keyPem: string; certPem: string } {
    return { keyPem: this.keyPem, certPem: this.rootCertPem };
  }

  /** Writes ca.key (0600) and ca.crt (0644) atomically (temp file + rename). */
  async save(dir: string): Promise<void> {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const write = (name: string, text: string, mode: number): void => {
      const tmp = path.join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
      fs.writeFileSync(tmp, text, { mode });
      fs.chmodSync(tmp, mode); // the umask may have narrowed or (for 0644) not mattered
      fs.renameSync(tmp, path.join(dir, name));
    };
    write(CA_KEY_FILE, this.keyPem, 0o600);
    write(CA_CERT_FILE, this.rootCertPem, 0o644);
  }

  get rootNotAfter(): Date {
    return this.root.notAfter;
  }

  /** Signs a CSR for exactly one SPIFFE ID (URI SAN), ttl in seconds (>= 1), clientAuth+serverAuth,
   * not a CA. Verifies the CSR signature; if the CSR names SANs they must be exactly `spiffeId`.
   * Returns the leaf PEM. */
  async signCsr(csrPem: string, id: string, ttlSeconds: number): Promise<string> {
    checkTtl(ttlSeconds);
    const parsed = requireSpiffeId(id);
    if (parsed.trustDomain !== this.trustDomain) throw DaemonErrors.NODEMESH_E_IDENTITY_WRONG_TRUST_DOMAIN({ spiffeId: id, trustDomain: this.trustDomain });
    const { csr, uris, otherSans } = await parseCsr(csrPem);
    if (uris.length > 0 || otherSans.length > 0) {
      const asked = requestedId(uris, otherSans, this.trustDomain);
      if (asked !== id) throw DaemonErrors.NODEMESH_E_IDENTITY_CSR_SAN({ reason: `it asks for ${asked}, but ${id} is being issued` });
    }
    const cert = await this.sign(csr.publicKey, id, ttlSeconds, {});
    return cert.toString('pem');
  }

  /** Test/sandbox convenience: key + leaf in one call. */
  async issue(id: string, ttlSeconds: number, opts: IssueOptions = {}): Promise<{ keyPem: string; certPem: string }> {
    checkTtl(ttlSeconds);
    const parsed = requireSpiffeId(id);
    if (parsed.trustDomain !== this.trustDomain) throw DaemonErrors.NODEMESH_E_IDENTITY_WRONG_TRUST_DOMAIN({ spiffeId: id, trustDomain: this.trustDomain });
    const keys = await generateKeyPair();
    const cert = await this.sign(keys.publicKey, id, ttlSeconds, opts);
    return { keyPem: await privateKeyPem(keys.privateKey), certPem: cert.toString('pem') };
  }

  private async sign(publicKey: x509.PublicKey | CryptoKey, id: string, ttlSeconds: number, opts: IssueOptions): Promise<x509.X509Certificate> {
    const now = Date.now();
    const notBefore = opts.notBefore ?? new Date(now - CLOCK_SKEW_ALLOWANCE_SECONDS * 1000);
    const start = opts.notBefore ? notBefore.getTime() : now;
    // X.509 times have whole seconds and would be truncated: round up, so a short lifetime
    // is not cut to nothing. A leaf never outlives the root that vouches for it.
    const end = Math.ceil((start + ttlSeconds * 1000) / 1000) * 1000;
    const notAfter = new Date(Math.min(end, this.root.notAfter.getTime()));
    const names: { type: 'url' | 'dns' | 'ip'; value: string }[] = [{ type: 'url', value: id }];
    for (const d of opts.dnsNames ?? []) names.push({ type: 'dns', value: d });
    for (const ip of opts.ipAddresses ?? []) names.push({ type: 'ip', value: ip });
    return x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: '', // the identity is the SAN; an empty subject makes the SAN critical (RFC 5280 4.2.1.6)
      issuer: this.root.subjectName,
      notBefore,
      notAfter,
      publicKey: publicKey as x509.PublicKey,
      signingKey: this.signingKey,
      signingAlgorithm: EC_SIGN,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension(names, true),
        await x509.SubjectKeyIdentifierExtension.create(publicKey as x509.PublicKey),
        await x509.AuthorityKeyIdentifierExtension.create(this.root.publicKey),
      ],
    });
  }
}

// --- verification -------------------------------------------------------------------------
// This runs for every new mesh TLS connection, so the expensive parts are kept off the
// common path: signatures and validity use node:crypto (OpenSSL, ~50 us per signature), only
// the leaf's extensions are read with @peculiar/x509 (node does not expose keyUsage bits),
// and a successful result is remembered per (trust domain, roots, chain bytes) together with
// the validity window of the whole path. A remembered result is reused only inside that
// window; outside it, the full check runs again and says exactly what is wrong. Failures are
// never remembered.

const VERIFIED_CACHE_MAX = 4096;
const verifiedCache = new Map<string, { spiffeId: string; notBefore: number; notAfter: number }>();
const rootCache = new Map<string, NodeX509Certificate[]>();
const ROOT_CACHE_MAX = 64;

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/g;

/** DER of each certificate in `input` (one DER buffer, or PEM text with one or more blocks). */
function toDer(input: string | Buffer, what: string): Buffer[] {
  if (Buffer.isBuffer(input)) return [input];
  const out = [...input.matchAll(PEM_CERT_RE)].map((m) => Buffer.from(m[1].replace(/\s+/g, ''), 'base64'));
  if (out.length === 0) throw DaemonErrors.NODEMESH_E_IDENTITY_BAD_CERT({ reason: `${what} is not an X.509 certificate (no PEM CERTIFICATE block)` });
  return out;
}

function nodeCert(der: Buffer, what: string): NodeX509Certificate {
  try {
    return new NodeX509Certificate(der);
  } catch (e) {
    throw DaemonErrors.NODEMESH_E_IDENTITY_BAD_CERT({ reason: `${what} is not an X.509 certificate (${(e as Error).message})` }, { cause: e });
  }
}

function trustRoots(pems: string[]): NodeX509Certificate[] {
  const out: NodeX509Certificate[] = [];
  pems.forEach((pem, i) => {
    let certs = rootCache.get(pem);
    if (!certs) {
      certs = toDer(pem, `trust root #${i}`).map((d) => nodeCert(d, `trust root #${i}`));
      if (rootCache.size >= ROOT_CACHE_MAX) rootCache.delete(rootCache.keys().next().value!);
      rootCache.set(pem, certs);
    }
    out.push(...certs);
  });
  return out;
}

const validFrom = (c: NodeX509Certificate): number => Date.parse(c.validFrom);
const validTo = (c: NodeX509Certificate): number => Date.parse(c.validTo);

/** How a certificate is named in errors: its SPIFFE ID if it has one, else subject and serial. */
function describeNode(c: NodeX509Certificate, spiffe?: string): string {
  if (spiffe) return spiffe;
  return `${c.subject ? `"${c.subject.replace(/\n/g, ', ')}"` : '(empty subject)'} serial ${c.serialNumber}`;
}

function checkValidity(c: NodeX509Certificate, now: Date, name: string): void {
  if (now.getTime() > validTo(c)) {
    throw DaemonErrors.NODEMESH_E_IDENTITY_CERT_EXPIRED({ subject: name, notAfter: new Date(validTo(c)).toISOString(), now: now.toISOString() });
  }
  if (now.getTime() < validFrom(c)) {
    throw DaemonErrors.NODEMESH_E_IDENTITY_CERT_NOT_YET_VALID({ subject: name, notBefore: new Date(validFrom(c)).toISOString(), now: now.toISOString() });
  }
}

/** `issuer` is a proper issuer of `c` (OpenSSL's name, key identifier and key usage checks)
 * and its key made c's signature. */
function signedBy(c: NodeX509Certificate, issuer: NodeX509Certificate): boolean {
  try {
    return c.checkIssued(issuer) && c.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/** Only name and signature: finds the certificate that signed `c` even when it may not sign
 * (so the error can say why it does not count). */
function signatureFrom(c: NodeX509Certificate, signer: NodeX509Certificate): boolean {
  try {
    return c.issuer === signer.subject && c.verify(signer.publicKey);
  } catch {
    return false;
  }
}

/** The leaf rules of the X.509-SVID spec; returns the SPIFFE ID. */
function checkLeaf(der: Buffer, trustDomain: string): string {
  let leaf: x509.X509Certificate;
  try {
    leaf = new x509.X509Certificate(der);
  } catch (e) {
    throw DaemonErrors.NODEMESH_E_IDENTITY_BAD_CERT({ reason: `peer certificate #0 is not an X.509 certificate (${(e as Error).message})` }, { cause: e });
  }
  const { uris } = sansOf(leaf.getExtensions(OID_SAN));
  const subject = uris.length === 1 ? uris[0] : `${leaf.subject ? `"${leaf.subject}"` : '(empty subject)'} serial ${leaf.serialNumber}`;
  if (uris.length === 0) throw DaemonErrors.NODEMESH_E_IDENTITY_NO_SPIFFE_ID({ subject, reason: 'no URI SAN' });
  if (uris.length > 1) throw DaemonErrors.NODEMESH_E_IDENTITY_NO_SPIFFE_ID({ subject, reason: `${uris.length} URI SANs, an SVID has exactly one` });
  const problem = spiffeIdProblem(uris[0]);
  if (problem) throw DaemonErrors.NODEMESH_E_IDENTITY_NO_SPIFFE_ID({ subject, reason: `URI SAN ${uris[0]}: ${problem}` });
  const td = parseSpiffeId(uris[0])!.trustDomain;
  if (td !== trustDomain) throw DaemonErrors.NODEMESH_E_IDENTITY_WRONG_TRUST_DOMAIN({ spiffeId: uris[0], trustDomain });
  const bc = leaf.getExtensions(OID_BASIC_CONSTRAINTS)[0];
  if (bc && new x509.BasicConstraintsExtension(bc.rawData).ca) {
    throw DaemonErrors.NODEMESH_E_IDENTITY_BAD_CERT({ reason: `${subject} is a CA certificate; a workload presents a leaf (CA:false)` });
  }
  const ku = leaf.getExtensions(OID_KEY_USAGE)[0];
  const usages = ku ? new x509.KeyUsagesExtension(ku.rawData).usages : 0;
  if (!(usages & x509.KeyUsageFlags.digitalSignature)) {
    throw DaemonErrors.NODEMESH_E_IDENTITY_BAD_CERT({ reason: `${subject} lacks keyUsage digitalSignature, which an X.509-SVID must have` });
  }
  if (usages & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign)) {
    throw DaemonErrors.NODEMESH_E_IDENTITY_BAD_CERT({ reason: `${subject} has keyUsage keyCertSign or cRLSign, which a leaf must not have` });
  }
  return uris[0];
}

/** Verifies a peer chain (leaf first, PEM or DER) against trust roots: signatures, validity at
 * `now`, and that the leaf's single URI SAN is a SPIFFE ID of trustDomain. Returns the SPIFFE
 * ID, or throws a NodemeshError saying exactly what is wrong. */
export async function verifyPeerChain(chain: (string | Buffer)[], trustRootsPem: string[], trustDomain: string, now: Date = new Date()): Promise<string> {
  const ders = chain.flatMap((c, i) => toDer(c, `peer certificate #${i}`));
  if (ders.length === 0) throw DaemonErrors.NODEMESH_E_IDENTITY_BAD_CERT({ reason: 'the peer presented no certificate' });
  if (trustRootsPem.length === 0) throw DaemonErrors.NODEMESH_E_IDENTITY_BAD_CERT({ reason: 'no trust roots are configured' });

  const h = createHash('sha256').update(trustDomain).update('\0');
  for (const r of trustRootsPem) h.update(r).update('\0');
  for (const d of ders) h.update(d).update('\0');
  const key = h.digest('base64');
  const hit = verifiedCache.get(key);
  const t = now.getTime();
  if (hit && t >= hit.notBefore && t <= hit.notAfter) return hit.spiffeId;

  const roots = trustRoots(trustRootsPem);
  if (roots.length === 0) throw DaemonErrors.NODEMESH_E_IDENTITY_BAD_CERT({ reason: 'no trust roots are configured' });
  const id = checkLeaf(ders[0], trustDomain);
  const certs = ders.map((d, i) => nodeCert(d, `peer certificate #${i}`));
  const [leaf, ...intermediates] = certs;
  let current = leaf;
  let name = id;
  let notBefore = -Infinity;
  let notAfter = Infinity;
  for (let depth = 0; depth < MAX_CHAIN_DEPTH; depth++) {
    checkValidity(current, now, name);
    notBefore = Math.max(notBefore, validFrom(current));
    notAfter = Math.min(notAfter, validTo(current));
    const root = roots.find((r) => signedBy(current, r));
    if (root) {
      checkValidity(root, now, describeNode(root));
      notBefore = Math.max(notBefore, validFrom(root));
      notAfter = Math.min(notAfter, validTo(root));
      if (verifiedCache.size >= VERIFIED_CACHE_MAX) verifiedCache.delete(verifiedCache.keys().next().value!);
      verifiedCache.set(key, { spiffeId: id, notBefore, notAfter });
      return id;
    }
    const next = intermediates.find((c) => c !== current && signatureFrom(current, c));
    if (!next) throw DaemonErrors.NODEMESH_E_IDENTITY_UNKNOWN_ISSUER({ subject: name, issuer: current.issuer.replace(/\n/g, ', ') });
    if (!next.ca || !signedBy(current, next)) {
      throw DaemonErrors.NODEMESH_E_IDENTITY_BAD_CERT({ reason: `${describeNode(next)} signs ${name} but is not a CA certificate allowed to sign (basicConstraints CA:true, keyUsage keyCertSign)` });
    }
    current = next;
    name = describeNode(next);
  }
  throw DaemonErrors.NODEMESH_E_IDENTITY_BAD_CERT({ reason: `the chain is longer than ${MAX_CHAIN_DEPTH} certificates` });
}

function parseCerts(input: string | Buffer, what: string): x509.X509Certificate[] {
  try {
    if (Buffer.isBuffer(input)) return [new x509.X509Certificate(input)];
    const pems = input.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
    if (!pems) throw new Error('no PEM CERTIFICATE block');
    return pems.map((p) => new x509.X509Certificate(p));
  } catch (e) {
    throw DaemonErrors.NODEMESH_E_IDENTITY_BAD_CERT({ reason: `${what} is not an X.509 certificate (${(e as Error).message})` }, { cause: e });
  }
}

/** The SPIFFE ID and validity of a leaf PEM, unverified: for status output and scheduling. */
export function describeLeaf(certPem: string): { spiffeId: string | undefined; notBefore: Date; notAfter: Date; serialNumber: string } {
  const c = parseCerts(certPem, 'certificate')[0];
  const uris = sansOf(c.getExtensions(OID_SAN)).uris;
  return { spiffeId: uris.length === 1 ? uris[0] : undefined, notBefore: c.notBefore, notAfter: c.notAfter, serialNumber: c.serialNumber };
}

/** Whether a private key (PKCS#8 PEM) belongs to a certificate (PEM). */
export async function keyMatchesCert(keyPem: string, certPem: string): Promise<boolean> {
  try {
    const key = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(keyPem), EC_KEY, false, ['sign']);
    const cert = parseCerts(certPem, 'certificate')[0];
    const probe = randomBytes(32);
    const sig = await webcrypto.subtle.sign(EC_SIGN, key, probe);
    const pub = await cert.publicKey.export(EC_KEY, ['verify']);
    return await webcrypto.subtle.verify(EC_SIGN, pub as CryptoKey, sig, probe);
  } catch {
    return false;
  }
}

/** Loads the CA from `dir`, or creates and saves one there if the directory holds none.
 * Creation never overwrites: ca.key is published with a hard link, which fails if another
 * process (a second replica) got there first; the loser then loads the winner's CA. The CA
 * found must be for `trustDomain`. */
export async function loadOrCreateMeshCA(dir: string, trustDomain: string, opts: { validityDays?: number; waitMs?: number } = {}): Promise<{ ca: MeshCA; created: boolean }> {
  const keyFile = path.join(dir, CA_KEY_FILE);
  const certFile = path.join(dir, CA_CERT_FILE);
  let created = false;
  if (!fs.existsSync(keyFile) && !fs.existsSync(certFile)) {
    const ca = await MeshCA.create({ trustDomain, validityDays: opts.validityDays });
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const staging = fs.mkdtempSync(path.join(dir, '.ca-staging-'));
    try {
      await ca.save(staging);
      fs.linkSync(path.join(staging, CA_KEY_FILE), keyFile); // EEXIST: someone else created the CA
      fs.renameSync(path.join(staging, CA_CERT_FILE), certFile);
      created = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw DaemonErrors.NODEMESH_E_IDENTITY_CA_LOAD({ dir, reason: `cannot create it: ${(e as Error).message}` }, { cause: e });
    } finally {
      fs.rmSync(staging, { recursive: true, force: true });
    }
  }
  // The winner of a creation race writes ca.crt right after ca.key: give it a moment.
  for (let waited = 0; !fs.existsSync(certFile) && fs.existsSync(keyFile) && waited < (opts.waitMs ?? 5000); waited += 50) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const ca = await MeshCA.load(dir);
  if (ca.trustDomain !== trustDomain) {
    throw DaemonErrors.NODEMESH_E_IDENTITY_CA_LOAD({ dir, reason: `it is the CA of trust domain ${ca.trustDomain}, but NODEMESH_TRUST_DOMAIN is ${trustDomain}` });
  }
  return { ca, created };
}
