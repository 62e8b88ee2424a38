// The daemon's error catalogue. Every error nodemesh raises on purpose has a stable code
// (NODEMESH_E_*), a default message that tells the operator what to do, and an optional
// cause. Tests assert on `code`. Other packages (installer/, waypoint/) keep their own
// catalogue built on the same class; errors.test.ts checks no code is reused.

export class NodemeshError extends Error {
  readonly code: string;
  /** Extra structured facts for logs and JSON output (field names, paths, values). */
  readonly details?: Record<string, unknown>;

  constructor(code: string, message: string, opts?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, opts?.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'NodemeshError';
    this.code = code;
    this.details = opts?.details;
  }

  /** Cross-copy check (two copies of this module in one process still agree). */
  static is(e: unknown, code?: string): e is NodemeshError {
    return typeof e === 'object' && e !== null && (e as { name?: unknown }).name === 'NodemeshError' &&
      typeof (e as { code?: unknown }).code === 'string' && (code === undefined || (e as NodemeshError).code === code);
  }
}

type Catalogue = Record<string, (...args: never[]) => string>;

/** Builds typed constructors from a table of code -> default message. */
export function defineErrors<T extends Catalogue>(table: T): {
  [K in keyof T]: (args: Parameters<T[K]>[0], opts?: { cause?: unknown; details?: Record<string, unknown> }) => NodemeshError
} & { codes: (keyof T)[] } {
  const out: Record<string, unknown> = { codes: Object.keys(table) };
  for (const code of Object.keys(table)) {
    out[code] = (args: never, opts?: { cause?: unknown; details?: Record<string, unknown> }) =>
      new NodemeshError(code, table[code](args), opts);
  }
  return out as never;
}

export const DaemonErrors = defineErrors({
  NODEMESH_E_NOT_ROOT: (_: void) =>
    'nodemesh-node needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN) to load eBPF programs and enter pod namespaces; run it as root or as a privileged DaemonSet',
  NODEMESH_E_BPFFS_NOT_MOUNTED: (a: { path: string }) =>
    `${a.path} is not on a BPF filesystem, so pinned maps and links cannot survive a daemon restart; mount it with 'mount -t bpf bpf /sys/fs/bpf' (a DaemonSet needs a hostPath volume for /sys/fs/bpf)`,
  NODEMESH_E_NO_CGROUP2: (a: { path: string }) =>
    `${a.path} is not a cgroup v2 directory; nodemesh attaches its socket programs to cgroup v2. Set NODEMESH_CGROUP to a cgroup2 path (see /proc/self/mountinfo for the cgroup2 mount), or boot with cgroup v2 enabled`,
  NODEMESH_E_NO_BTF: (a: { path: string }) =>
    `${a.path} is missing: the kernel has no BTF, which nodemesh's CO-RE eBPF programs need; use a kernel built with CONFIG_DEBUG_INFO_BTF=y`,
  NODEMESH_E_BPF_OBJECT: (a: { path: string; reason: string }) =>
    `cannot load eBPF object ${a.path}: ${a.reason}; run 'make bpf' to build it, and check the kernel log (dmesg) for verifier output`,
  NODEMESH_E_BPF_ATTACH: (a: { program: string; target: string; reason: string }) =>
    `cannot attach eBPF program ${a.program} to ${a.target}: ${a.reason}`,
  NODEMESH_E_NATIVE_MISSING: (a: { tried: string[]; reason: string }) =>
    `the nodemesh native addon could not be loaded (${a.reason}); tried: ${a.tried.join(', ')}; run 'make native' to build it`,
  NODEMESH_E_CONFIG: (a: { field: string; value: string; expected: string }) =>
    `invalid configuration ${a.field}=${JSON.stringify(a.value)}: expected ${a.expected}`,
  NODEMESH_E_POD_NETNS: (a: { pod: string; netns: string; reason: string }) =>
    `cannot enter the network namespace ${a.netns} of pod ${a.pod}: ${a.reason}; the pod may have exited or its sandbox was torn down`,
  NODEMESH_E_ORIGINAL_DST_MISSING: (a: { pod: string; port: number }) =>
    `no original destination recorded for a connection from pod ${a.pod} (client port ${a.port}); the connection did not pass through nodemesh's connect hook, so it is refused (fail closed)`,
  NODEMESH_E_SOURCE: (a: { source: string; reason: string }) =>
    `state source ${a.source} failed: ${a.reason}`,

  // Identity: the mesh CA (daemon/identity/ca.ts), the identity service and the node's
  // certificate manager.
  NODEMESH_E_IDENTITY_INVALID_SPIFFE_ID: (a: { value: string; reason: string }) =>
    `${JSON.stringify(a.value)} is not a valid mesh SPIFFE ID (${a.reason}); identities look like spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`,
  NODEMESH_E_IDENTITY_INVALID_TRUST_DOMAIN: (a: { value: string }) =>
    `${JSON.stringify(a.value)} is not a valid SPIFFE trust domain: use lowercase letters, digits, '.', '-' and '_' only (e.g. cluster.local); check NODEMESH_TRUST_DOMAIN`,
  NODEMESH_E_IDENTITY_BAD_CSR: (a: { reason: string }) =>
    `the certificate signing request is unusable: ${a.reason}; the node daemon must send a PEM PKCS#10 CSR signed with a fresh ECDSA P-256 key`,
  NODEMESH_E_IDENTITY_CSR_SAN: (a: { reason: string }) =>
    `the certificate signing request must name exactly one identity, as a single URI SAN spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>, and no other SAN: ${a.reason}`,
  NODEMESH_E_IDENTITY_INVALID_TTL: (a: { value: string }) =>
    `certificate lifetime ${a.value} is invalid: expected a whole number of seconds >= 1`,
  NODEMESH_E_IDENTITY_WRONG_TRUST_DOMAIN: (a: { spiffeId: string; trustDomain: string }) =>
    `${a.spiffeId} is not in trust domain ${a.trustDomain}; every node daemon and nodemesh-identity must use the same NODEMESH_TRUST_DOMAIN and the same root CA`,
  NODEMESH_E_IDENTITY_NO_SPIFFE_ID: (a: { subject: string; reason: string }) =>
    `certificate ${a.subject} carries no usable SPIFFE ID (${a.reason}); mesh peers must present an X.509-SVID with exactly one spiffe:// URI SAN`,
  NODEMESH_E_IDENTITY_CERT_EXPIRED: (a: { subject: string; notAfter: string; now: string }) =>
    `certificate ${a.subject} expired at ${a.notAfter} (now ${a.now}); it was not rotated in time: check that its node daemon reaches nodemesh-identity and that the clocks are in sync`,
  NODEMESH_E_IDENTITY_CERT_NOT_YET_VALID: (a: { subject: string; notBefore: string; now: string }) =>
    `certificate ${a.subject} is not valid before ${a.notBefore} (now ${a.now}); the clocks of the two machines disagree: check NTP`,
  NODEMESH_E_IDENTITY_UNKNOWN_ISSUER: (a: { subject: string; issuer: string }) =>
    `certificate ${a.subject} (issuer ${JSON.stringify(a.issuer)}) does not chain to this mesh's trust roots; the peer uses another CA: compare NODEMESH_CA_ROOT_FILE and the CA directory of nodemesh-identity on both sides`,
  NODEMESH_E_IDENTITY_BAD_CERT: (a: { reason: string }) =>
    `unusable certificate: ${a.reason}`,
  NODEMESH_E_IDENTITY_CA_LOAD: (a: { dir: string; reason: string }) =>
    `cannot load the mesh CA from ${a.dir}: ${a.reason}; the directory must hold ca.key (PKCS#8 PEM, mode 0600 or stricter) and ca.crt, as written by nodemesh-identity when NODEMESH_CA_DIR was empty`,
  NODEMESH_E_IDENTITY_UNAUTHENTICATED: (a: { reason: string }) =>
    `caller not authenticated: ${a.reason}; a node daemon sends its node credential as 'authorization: Bearer <token>' (read from NODEMESH_NODE_CREDENTIAL_FILE); in the sandbox, 'nodemesh local up' mints these credentials`,
  NODEMESH_E_IDENTITY_NODE_CREDENTIALS: (a: { file: string; reason: string }) =>
    `node credential file ${a.file} is unusable: ${a.reason}; expected JSON {"<node>": "<token>", ...} for nodemesh-identity, or the bare token for a node daemon (re-run 'nodemesh local up' to mint them)`,
  NODEMESH_E_IDENTITY_NODE_BINDING: (a: { node: string; spiffeId: string; reason: string }) =>
    `node ${a.node} may not obtain ${a.spiffeId}: ${a.reason}; an identity is issued only to a node where a pod with that namespace and service account is scheduled`,
  NODEMESH_E_IDENTITY_WAYPOINT_BINDING: (a: { waypoint: string; spiffeId: string; own: string }) =>
    `waypoint ${a.waypoint} may not obtain ${a.spiffeId}: a waypoint's token obtains only its own identity, ${a.own}`,
  NODEMESH_E_IDENTITY_NOT_READY: (a: { reason: string }) =>
    `nodemesh-identity is not ready: ${a.reason}; the request can be retried`,
  NODEMESH_E_IDENTITY_REQUEST_FAILED: (a: { address: string; status: string; reason: string }) =>
    `certificate request to nodemesh-identity at ${a.address} failed (${a.status}): ${a.reason}`,
  NODEMESH_E_IDENTITY_BAD_RESPONSE: (a: { address: string; reason: string }) =>
    `nodemesh-identity at ${a.address} returned an unusable certificate: ${a.reason}; check that NODEMESH_CA_ROOT_FILE holds the root of the CA that service uses`,
  NODEMESH_E_IDENTITY_NOT_MANAGED: (a: { namespace: string; serviceAccount: string }) =>
    `no certificate is managed for ${a.namespace}/${a.serviceAccount} on this node: no enrolled pod with that service account is scheduled here, so the connection is refused (fail closed)`,
  NODEMESH_E_IDENTITY_DROPPED: (a: { namespace: string; serviceAccount: string }) =>
    `the identity ${a.namespace}/${a.serviceAccount} was dropped before it was issued: no pod on this node uses it any more`,
  NODEMESH_E_IDENTITY_PROTO_MISSING: (a: { tried: string[] }) =>
    `identity.proto not found; tried: ${a.tried.join(', ')}; daemon/identity/proto/ must ship with the repository next to dist/`,
});

// HBONE tunnel (daemon/tunnel/): the client side names the destination it tried, the server
// side names the peer it refused. Kept as its own table so the tunnel's codes stay together.
export const HboneErrors = defineErrors({
  NODEMESH_E_HBONE_CONNECT: (a: { target: string; reason: string }) =>
    `cannot open an HBONE connection to ${a.target}: ${a.reason}; check that nodemesh-node runs on the destination's node and that the destination pod is enrolled (its HBONE listener is port 15008 inside the pod)`,
  NODEMESH_E_HBONE_CONNECT_TIMEOUT: (a: { target: string; ms: number }) =>
    `HBONE connection to ${a.target} timed out after ${a.ms} ms; maybe a NetworkPolicy or firewall is blocking HBONE port 15008, or the destination node is down`,
  NODEMESH_E_HBONE_TLS: (a: { peer: string; reason: string }) =>
    `mutual TLS with ${a.peer} failed: ${a.reason}; check that both workloads hold current certificates from this mesh's CA (nodemesh-identity) and that the node clocks agree`,
  NODEMESH_E_HBONE_PEER_CERT: (a: { peer: string; reason: string }) =>
    `the certificate presented by ${a.peer} was refused: ${a.reason}`,
  NODEMESH_E_HBONE_IDENTITY_MISMATCH: (a: { target: string; presented: string; expected: string[] }) =>
    `${a.target} presented ${a.presented}, but the destination may only be ${a.expected.join(' or ')}; the pod IP may have been reused by another workload, or this node's workload table is stale`,
  NODEMESH_E_HBONE_DENIED: (a: { authority: string; reason: string }) =>
    `the destination refused the connection to ${a.authority}: ${a.reason}; check the AuthorizationPolicy that selects the destination workload`,
  NODEMESH_E_HBONE_BAD_REQUEST: (a: { authority: string; status: number; reason: string }) =>
    `the destination's HBONE listener rejected the CONNECT to ${a.authority} (HTTP ${a.status}): ${a.reason}; this node's workload table may be stale (did the pod IP move?)`,
  NODEMESH_E_HBONE_UPSTREAM: (a: { authority: string; reason: string }) =>
    `the destination accepted the tunnel but could not reach the app at ${a.authority}: ${a.reason}; is the app listening on that port inside its pod?`,
  NODEMESH_E_HBONE_STATUS: (a: { authority: string; status: number; reason: string }) =>
    `the destination answered the CONNECT to ${a.authority} with HTTP ${a.status}: ${a.reason}`,
  NODEMESH_E_HBONE_STREAM: (a: { authority: string; reason: string }) =>
    `the HBONE tunnel for ${a.authority} broke: ${a.reason}`,
  NODEMESH_E_HBONE_PROTOCOL: (a: { peer: string; reason: string }) =>
    `a connection from ${a.peer} to the HBONE port did not speak HTTP/2 over mutual TLS 1.3: ${a.reason}; only meshed clients may use port 15008`,
  NODEMESH_E_HBONE_CLOSED: (a: { what: string }) =>
    `the ${a.what} is shutting down and takes no new connections`,
});

// Kernel path (daemon/redirection/ebpf-datapath.ts, cgroup.ts): what the operator checks when
// programming the kernel fails after the preflight checks above passed.
export const DatapathErrors = defineErrors({
  NODEMESH_E_NO_CGROUP2_MOUNT: (a: { mountinfo: string }) =>
    `no cgroup2 filesystem is mounted (read ${a.mountinfo}); nodemesh attaches its socket programs to cgroup v2: boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1, or the hybrid layout) or set NODEMESH_CGROUP to a cgroup2 directory`,
  NODEMESH_E_BPF_MAP: (a: { map: string; op: string; reason: string }) =>
    `eBPF map ${a.map}: ${a.op} failed: ${a.reason}; if the map is full, unenrol stale pods; if its layout changed, uninstall the old version first (nodemesh-node --uninstall) so the pinned maps are recreated`,
  NODEMESH_E_BPF_PIN: (a: { path: string; reason: string }) =>
    `cannot use the pin ${a.path}: ${a.reason}; check that the pin root is on the BPF filesystem and writable, and that no other nodemesh-node uses the same pin root`,
  NODEMESH_E_ENROL: (a: { pod: string; reason: string }) =>
    `cannot enrol pod ${a.pod}: ${a.reason}`,
});

// State from Kubernetes (daemon/sources/kube-*.ts) and finding pods on the node
// (daemon/redirection/pod-locator.ts).
export const KubeSourceErrors = defineErrors({
  NODEMESH_E_KUBE_CONFIG: (a: { from: string; reason: string }) =>
    `cannot configure the Kubernetes client from ${a.from}: ${a.reason}; in a pod, keep the service account token mounted (automountServiceAccountToken) or set NODEMESH_KUBECONFIG to a readable kubeconfig file`,
  NODEMESH_E_KUBE_API: (a: { resource: string; status: string; reason: string }) =>
    `Kubernetes API request for ${a.resource} failed (${a.status}): ${a.reason}; the daemon keeps serving its last state and retries with backoff: check the API server address, the token and RBAC (list and watch on ${a.resource})`,
  NODEMESH_E_POD_SANDBOX_NOT_FOUND: (a: { pod: string; uid: string; reason: string }) =>
    `cannot find the sandbox of pod ${a.pod} (uid ${a.uid}) on this node: ${a.reason}; it is retried with backoff. nodemesh-node needs hostPID and the host's /proc and cgroup filesystem; a pod still starting appears once its containers run`,
});
