// nodemesh-identity's gRPC service: authenticate the calling node, read the one SPIFFE ID
// the CSR asks for, check node binding against the cluster state, sign, log. Served over
// TLS with a certificate from the same mesh CA (SPIFFE ID
// spiffe://<td>/ns/nodemesh-system/sa/nodemesh-identity plus DNS/IP SANs for the address it
// serves on), rotated at half its lifetime without a restart.
import * as os from 'node:os';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { MeshCA, csrSpiffeId, describeLeaf, parseSpiffeId, spiffeId } from './ca';
import { CreateCertificateRequest, CreateCertificateResponse, loadIdentityProto } from './identity-proto';
import { checkNodeBinding, type BindingDecision } from './node-binding';
import type { NodeAuthenticator } from './node-credentials';
import type { Snapshot } from '../state/snapshot';
import { DaemonErrors, NodemeshError } from '../errors';

export type { NodeAuthenticator } from './node-credentials';

export const IDENTITY_NAMESPACE = 'nodemesh-system';
export const IDENTITY_SERVICE_ACCOUNT = 'nodemesh-identity';
export const DEFAULT_MAX_TTL_SECONDS = 24 * 3600;
export const DEFAULT_SERVING_TTL_SECONDS = 24 * 3600;
/** Trailing metadata key carrying the NODEMESH_E_* code of a refusal, so clients can act on it. */
export const ERROR_CODE_METADATA = 'nodemesh-error-code';
/** A PEM P-256 CSR is well under 1 KiB; anything near this limit is not one. */
const MAX_REQUEST_BYTES = 16 * 1024;

export interface IdentityServerOptions {
  ca: MeshCA;
  authenticator: NodeAuthenticator;
  /** The current cluster state; undefined until the state source delivered its first update.
   * Used for node binding unless `binding` is given. */
  snapshot?: () => Snapshot | undefined;
  /** Node binding decided elsewhere (Kubernetes: the API's pods on the caller's node). */
  binding?: (node: string, namespace: string, serviceAccount: string) => Promise<BindingDecision>;
  /** Upper bound for any issued certificate; requests above it are capped. */
  maxTtlSeconds?: number;
  logger: Logger;
  /** The server's own certificate: extra SANs (e.g. the Service's DNS name) and lifetime. */
  serving?: { dnsNames?: string[]; ipAddresses?: string[]; ttlSeconds?: number };
}

/** Which gRPC status each refusal gets. Anything not listed is INTERNAL. */
const STATUS_BY_CODE: Record<string, grpc.status> = {
  NODEMESH_E_IDENTITY_UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  NODEMESH_E_IDENTITY_BAD_CSR: grpc.status.INVALID_ARGUMENT,
  NODEMESH_E_IDENTITY_CSR_SAN: grpc.status.INVALID_ARGUMENT,
  NODEMESH_E_IDENTITY_INVALID_SPIFFE_ID: grpc.status.INVALID_ARGUMENT,
  NODEMESH_E_IDENTITY_WRONG_TRUST_DOMAIN: grpc.status.INVALID_ARGUMENT,
  NODEMESH_E_IDENTITY_INVALID_TTL: grpc.status.INVALID_ARGUMENT,
  NODEMESH_E_IDENTITY_NODE_BINDING: grpc.status.PERMISSION_DENIED,
  NODEMESH_E_IDENTITY_WAYPOINT_BINDING: grpc.status.PERMISSION_DENIED,
  NODEMESH_E_IDENTITY_NOT_READY: grpc.status.UNAVAILABLE,
};

export function grpcStatusFor(e: unknown): grpc.status {
  return NodemeshError.is(e) ? STATUS_BY_CODE[e.code] ?? grpc.status.INTERNAL : grpc.status.INTERNAL;
}

/** The granted lifetime: 0 means "the maximum", more than the maximum is capped. */
export function grantedTtl(requested: number, max: number): number {
  if (!Number.isInteger(requested) || requested < 0) throw DaemonErrors.NODEMESH_E_IDENTITY_INVALID_TTL({ value: String(requested) });
  return requested === 0 ? max : Math.min(requested, max);
}

/** SANs for the serving certificate when listening on `host`. A wildcard address gets every
 * local address, so clients can reach it by any of them. */
/** The Service name clients use when they dial the identity service by IP. */
export const IDENTITY_SERVICE_DNS_NAME = 'nodemesh-identity.nodemesh-system.svc';

export function servingSans(host: string, extra: { dnsNames?: string[]; ipAddresses?: string[] } = {}): { dnsNames: string[]; ipAddresses: string[] } {
  // The service's in-cluster name is always there: clients that dial an IP present it as
  // the TLS server name (an IP is not a valid SNI name).
  const dns = new Set<string>(['localhost', IDENTITY_SERVICE_DNS_NAME, ...(extra.dnsNames ?? [])]);
  const ips = new Set<string>(extra.ipAddresses ?? []);
  if (host === '0.0.0.0' || host === '::' || host === '') {
    dns.add(os.hostname());
    for (const addrs of Object.values(os.networkInterfaces())) for (const a of addrs ?? []) if (!a.address.includes('%')) ips.add(a.address);
    ips.add('127.0.0.1');
  } else if (net.isIP(host)) {
    ips.add(host);
  } else {
    dns.add(host);
  }
  return { dnsNames: [...dns], ipAddresses: [...ips] };
}

/** Feeds the server's key and certificate to grpc-js, which swaps the TLS context on update.
 * One object serves as both the "CA" and the "identity" provider: the CA side hands out the
 * mesh root (client certificates are requested but not required; callers authenticate with
 * bearer tokens), and the object works whichever way grpc-js orders its two arguments. */
class ServingCertificateProvider implements grpc.experimental.CertificateProvider {
  private identity: grpc.experimental.IdentityCertificateUpdate | null = null;
  private readonly caUpdate: grpc.experimental.CaCertificateUpdate;
  private readonly caListeners = new Set<grpc.experimental.CaCertificateUpdateListener>();
  private readonly identityListeners = new Set<grpc.experimental.IdentityCertificateUpdateListener>();

  constructor(rootPem: string) {
    this.caUpdate = { caCertificate: Buffer.from(rootPem) };
  }

  set(keyPem: string, certPem: string): void {
    this.identity = { privateKey: Buffer.from(keyPem), certificate: Buffer.from(certPem) };
    for (const l of this.identityListeners) l(this.identity);
  }

  // grpc-js registers its own watcher after adding these listeners, so first values are
  // delivered on the next turn of the event loop, when that watcher is in place.
  addCaCertificateListener(l: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(l);
    setImmediate(() => { if (this.caListeners.has(l)) l(this.caUpdate); });
  }
  removeCaCertificateListener(l: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(l);
  }
  addIdentityCertificateListener(l: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.add(l);
    setImmediate(() => { if (this.identityListeners.has(l) && this.identity) l(this.identity); });
  }
  removeIdentityCertificateListener(l: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(l);
  }
}

export class IdentityServer {
  private readonly maxTtl: number;
  private readonly log: Logger;
  private server: grpc.Server | undefined;
  private provider: ServingCertificateProvider | undefined;
  private servingTimer: NodeJS.Timeout | undefined;
  private boundPort = 0;
  private stopped = false;
  readonly servingId: string;

  constructor(private readonly opts: IdentityServerOptions) {
    this.maxTtl = opts.maxTtlSeconds ?? DEFAULT_MAX_TTL_SECONDS;
    if (!Number.isInteger(this.maxTtl) || this.maxTtl < 1) throw DaemonErrors.NODEMESH_E_IDENTITY_INVALID_TTL({ value: String(this.maxTtl) });
    this.log = opts.logger;
    this.servingId = spiffeId(opts.ca.trustDomain, IDENTITY_NAMESPACE, IDENTITY_SERVICE_ACCOUNT);
  }

  get port(): number {
    return this.boundPort;
  }

  /** Issues the serving certificate, binds host:port (0 = ephemeral) and resolves with the
   * bound port once TLS is ready to accept. */
  async listen(host: string, port: number): Promise<number> {
    if (this.server) throw new Error('IdentityServer.listen called twice');
    const { service } = loadIdentityProto();
    const sans = servingSans(host, this.opts.serving);
    this.provider = new ServingCertificateProvider(this.opts.ca.rootCertPem);
    await this.refreshServingCertificate(sans, true);
    const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_REQUEST_BYTES });
    server.addService(service, {
      CreateCertificate: (call: grpc.ServerUnaryCall<CreateCertificateRequest, CreateCertificateResponse>, cb: grpc.sendUnaryData<CreateCertificateResponse>) => {
        this.handle(call, cb);
      },
    });
    const creds = grpc.experimental.createCertificateProviderServerCredentials(this.provider, this.provider, false);
    const addr = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
    this.boundPort = await new Promise<number>((resolve, reject) => server.bindAsync(addr, creds, (err, p) => (err ? reject(err) : resolve(p))));
    this.server = server;
    await new Promise((r) => setImmediate(r)); // let the provider's first update reach grpc-js
    return this.boundPort;
  }

  /** Graceful stop: in-flight calls get `graceMs`, then the server is forced down. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopped = true;
    if (this.servingTimer) clearTimeout(this.servingTimer);
    this.servingTimer = undefined;
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => { server.forceShutdown(); resolve(); }, graceMs);
      server.tryShutdown(() => { clearTimeout(force); resolve(); });
    });
  }

  private async refreshServingCertificate(sans: { dnsNames: string[]; ipAddresses: string[] }, initial: boolean): Promise<void> {
    const ttl = this.opts.serving?.ttlSeconds ?? DEFAULT_SERVING_TTL_SECONDS;
    try {
      const { keyPem, certPem } = await this.opts.ca.issue(this.servingId, ttl, sans);
      this.provider?.set(keyPem, certPem);
      const { notAfter } = describeLeaf(certPem);
      this.log.info({ spiffeId: this.servingId, dnsNames: sans.dnsNames, ipAddresses: sans.ipAddresses, notAfter: notAfter.toISOString() }, 'serving certificate issued');
      this.scheduleServing(sans, (ttl * 1000) / 2);
    } catch (e) {
      if (initial) throw e; // listen() fails: nothing to serve with
      this.log.error({ err: e }, 'serving certificate rotation failed; retrying in 10s');
      this.scheduleServing(sans, 10_000);
    }
  }

  private scheduleServing(sans: { dnsNames: string[]; ipAddresses: string[] }, delayMs: number): void {
    if (this.servingTimer) clearTimeout(this.servingTimer);
    if (this.stopped) return;
    this.servingTimer = setTimeout(() => { void this.refreshServingCertificate(sans, false); }, delayMs);
    this.servingTimer.unref();
  }

  private handle(call: grpc.ServerUnaryCall<CreateCertificateRequest, CreateCertificateResponse>, cb: grpc.sendUnaryData<CreateCertificateResponse>): void {
    const facts: Record<string, unknown> = { peer: call.getPeer() };
    this.createCertificate(call.metadata, call.request, facts).then(
      (res) => cb(null, res),
      (e: unknown) => {
        const code = grpcStatusFor(e);
        const internal = code === grpc.status.INTERNAL;
        const trailer = new grpc.Metadata();
        if (NodemeshError.is(e)) trailer.set(ERROR_CODE_METADATA, e.code);
        const details = internal ? 'internal error in nodemesh-identity; see its log' : (e as Error).message;
        if (internal) this.log.error({ ...facts, err: e }, 'certificate request failed');
        else this.log.warn({ ...facts, status: grpc.status[code], code: NodemeshError.is(e) ? e.code : undefined, reason: (e as Error).message }, 'certificate refused');
        cb({ code, details, metadata: trailer });
      },
    );
  }

  /** The whole decision for one request; `facts` collects what the log line reports. */
  async createCertificate(metadata: grpc.Metadata, req: CreateCertificateRequest, facts: Record<string, unknown> = {}): Promise<CreateCertificateResponse> {
    const caller = await this.opts.authenticator.authenticate(metadata);
    const requested = Number(req.validitySeconds ?? 0);
    const ttl = grantedTtl(requested, this.maxTtl);
    const id = await csrSpiffeId(req.csr ?? '', this.opts.ca.trustDomain);
    facts.spiffeId = id;
    const { namespace, serviceAccount } = parseSpiffeId(id)!;
    let binding: BindingDecision;
    let stateVersion: number | undefined;
    const node = caller.node ?? '';
    if (caller.waypoint) {
      // A waypoint obtains its own identity and nothing else.
      const w = caller.waypoint;
      facts.waypoint = `${w.namespace}/${w.gateway}`;
      const own = spiffeId(this.opts.ca.trustDomain, w.namespace, w.serviceAccount);
      if (id !== own) throw DaemonErrors.NODEMESH_E_IDENTITY_WAYPOINT_BINDING({ waypoint: `${w.namespace}/${w.gateway}`, spiffeId: id, own });
      binding = { allowed: true, pod: `${w.namespace}/${w.pod}` };
    } else if (this.opts.binding) {
      facts.node = node;
      binding = await this.opts.binding(node, namespace, serviceAccount);
    } else {
      facts.node = node;
      const snapshot = this.opts.snapshot?.();
      if (!snapshot) throw DaemonErrors.NODEMESH_E_IDENTITY_NOT_READY({ reason: 'the cluster state has not been loaded yet' });
      stateVersion = snapshot.version;
      binding = checkNodeBinding(snapshot, node, namespace, serviceAccount);
    }
    if (!binding.allowed) {
      facts.podsOnOtherNodes = binding.elsewhere;
      throw DaemonErrors.NODEMESH_E_IDENTITY_NODE_BINDING({ node, spiffeId: id, reason: binding.reason });
    }
    const certPem = await this.opts.ca.signCsr(req.csr, id, ttl);
    const leaf = describeLeaf(certPem);
    this.log.info({
      ...facts, pod: binding.pod, serial: leaf.serialNumber, requestedTtlSeconds: requested, ttlSeconds: ttl,
      notAfter: leaf.notAfter.toISOString(), stateVersion,
    }, 'certificate issued');
    return { certChain: [certPem], trustBundle: [this.opts.ca.rootCertPem] };
  }
}
