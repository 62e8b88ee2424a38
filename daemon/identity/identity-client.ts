// The node daemon's side of nodemesh-identity: TLS to the service with the mesh root as the
// only trust anchor (host name checked as usual, and the service's SPIFFE ID on top), the
// node credential as a bearer token read fresh for every call, and a full check of what comes
// back before anyone uses it: chain to the configured root, the SPIFFE ID asked for, our key.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { describeLeaf, generateKeyAndCsr, keyMatchesCert, spiffeId, verifyPeerChain } from './ca';
import { CreateCertificateResponse, IdentityServiceClient, loadIdentityProto } from './identity-proto';
import { ERROR_CODE_METADATA, IDENTITY_NAMESPACE, IDENTITY_SERVICE_ACCOUNT, IDENTITY_SERVICE_DNS_NAME } from './identity-server';
import type { IdentityClientConfig } from './identity-client-config';
import type { IssuedIdentity, WorkloadIdentityKey } from './certificate-manager';
import { readNodeToken } from './node-credentials';
import { DaemonErrors, NodemeshError } from '../errors';

export interface IdentityClientOptions {
  /** host:port; the host must be a DNS or IP SAN of the service's certificate. */
  address: string;
  trustDomain: string;
  /** PEM root(s) of the mesh CA. */
  caRootPem: string;
  /** The node's bearer token; called for every request. */
  token: () => string | Promise<string>;
  requestTimeoutMs?: number;
  /** grpc-js reconnect backoff of the channel; keep it well under the certificate lifetime. */
  reconnectBackoffMs?: { initial: number; max: number };
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
const DEFAULT_RECONNECT_BACKOFF = { initial: 1000, max: 10_000 };

function uriSansOf(cert: tls.PeerCertificate): string[] {
  return (cert.subjectaltname ?? '').split(', ').filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
}

export class IdentityClient {
  private readonly client: IdentityServiceClient;
  private readonly rootPems: string[];
  readonly serverSpiffeId: string;

  constructor(private readonly opts: IdentityClientOptions) {
    this.rootPems = opts.caRootPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    if (this.rootPems.length === 0) throw DaemonErrors.NODEMESH_E_IDENTITY_BAD_CERT({ reason: 'the configured CA root is not a PEM certificate' });
    this.serverSpiffeId = spiffeId(opts.trustDomain, IDENTITY_NAMESPACE, IDENTITY_SERVICE_ACCOUNT);
    const expected = this.serverSpiffeId;
    const creds = grpc.credentials.createSsl(Buffer.from(opts.caRootPem), null, null, {
      checkServerIdentity: (host, cert) => {
        const err = tls.checkServerIdentity(host, cert);
        if (err) return err;
        if (!uriSansOf(cert).includes(expected)) return new Error(`the server at ${host} is not nodemesh-identity: its certificate does not carry ${expected}`);
        return undefined;
      },
    });
    const backoff = opts.reconnectBackoffMs ?? DEFAULT_RECONNECT_BACKOFF;
    const { Client } = loadIdentityProto();
    const host = opts.address.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    this.client = new Client(opts.address, creds, {
      'grpc.initial_reconnect_backoff_ms': backoff.initial,
      'grpc.max_reconnect_backoff_ms': backoff.max,
      // Dialling an IP: present the service's DNS name (an IP is no valid TLS server name).
      ...(net.isIP(host) ? { 'grpc.ssl_target_name_override': IDENTITY_SERVICE_DNS_NAME } : {}),
    });
  }

  static fromConfig(cfg: Readonly<IdentityClientConfig>, extra: Partial<IdentityClientOptions> = {}): IdentityClient {
    let caRootPem: string;
    try {
      caRootPem = fs.readFileSync(cfg.caRootFile, 'utf8');
    } catch (e) {
      throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_CA_ROOT_FILE', value: cfg.caRootFile, expected: `a readable PEM file (${(e as Error).message})` }, { cause: e });
    }
    return new IdentityClient({
      address: cfg.address, trustDomain: cfg.trustDomain, caRootPem, token: () => readNodeToken(cfg.nodeCredentialFile), ...extra,
    });
  }

  /** One CreateCertificate call. Failures are NODEMESH_E_IDENTITY_REQUEST_FAILED with
   * details { grpcCode, serverCode } (serverCode: the service's NODEMESH_E_* code, if any). */
  async createCertificate(csrPem: string, validitySeconds: number): Promise<CreateCertificateResponse> {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${await this.opts.token()}`);
    const deadline = Date.now() + (this.opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
    return new Promise((resolve, reject) => {
      this.client.CreateCertificate({ csr: csrPem, validitySeconds }, md, { deadline }, (err, res) => {
        if (!err && res) return resolve(res);
        const code = err?.code ?? grpc.status.UNKNOWN;
        const serverCode = err?.metadata?.get(ERROR_CODE_METADATA)[0]?.toString();
        reject(DaemonErrors.NODEMESH_E_IDENTITY_REQUEST_FAILED(
          { address: this.opts.address, status: grpc.status[code] ?? String(code), reason: err?.details || 'empty response' },
          { cause: err ?? undefined, details: { grpcCode: code, serverCode } },
        ));
      });
    });
  }

  /** A new key and a certificate for it, checked before it is returned. */
  async fetchIdentity(id: WorkloadIdentityKey, validitySeconds: number): Promise<IssuedIdentity> {
    const want = spiffeId(this.opts.trustDomain, id.namespace, id.serviceAccount);
    const { keyPem, csrPem } = await generateKeyAndCsr(want);
    const res = await this.createCertificate(csrPem, validitySeconds);
    const bad = (reason: string, cause?: unknown): NodemeshError =>
      DaemonErrors.NODEMESH_E_IDENTITY_BAD_RESPONSE({ address: this.opts.address, reason }, { cause });
    if (res.certChain.length === 0) throw bad('the certificate chain is empty');
    let got: string;
    try {
      got = await verifyPeerChain(res.certChain, this.rootPems, this.opts.trustDomain);
    } catch (e) {
      throw bad((e as Error).message, e);
    }
    if (got !== want) throw bad(`asked for ${want}, got ${got}`);
    if (!(await keyMatchesCert(keyPem, res.certChain[0]))) throw bad('the certificate is not for the key this node generated');
    const leaf = describeLeaf(res.certChain[0]);
    const bundle = [...new Set([...this.rootPems, ...res.trustBundle].map((p) => p.trim() + '\n'))];
    return {
      spiffeId: got,
      keyPem,
      certChainPem: res.certChain,
      trustBundlePem: bundle,
      notBefore: leaf.notBefore,
      notAfter: leaf.notAfter,
    };
  }

  close(): void {
    this.client.close();
  }
}
