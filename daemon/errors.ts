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
});
