// The installer's error catalogue (the `nodemesh` CLI and the local sandbox cluster). Same
// shape as daemon/errors.ts: a stable code, a default message that says what is wrong and
// what to do, an optional cause. Codes are NODEMESH_E_SANDBOX_* (the sandbox cluster),
// NODEMESH_E_MANIFEST_* (input files), NODEMESH_E_CLI_* (command-line use) and NODEMESH_E_KUBE_*
// (a Kubernetes cluster: kubeconfig, API errors, install and rollout).
import { defineErrors } from '../daemon/errors';
import { formatIssue, type ManifestIssue } from '../daemon/state/manifest';

export { NodemeshError } from '../daemon/errors';

function tail(log: string | undefined): string {
  return log ? `\n--- last lines of the log ---\n${log.trimEnd()}\n---` : '';
}

export const InstallerErrors = defineErrors({
  // --- prerequisites ---------------------------------------------------------------------
  NODEMESH_E_SANDBOX_NOT_ROOT: (_: void) =>
    'the sandbox cluster creates network namespaces, cgroups and eBPF programs, which needs root; run it with sudo (or as root)',
  NODEMESH_E_SANDBOX_NO_CGROUP2: (a: { mountinfo: string }) =>
    `no cgroup v2 hierarchy is mounted (looked for a "cgroup2" entry in ${a.mountinfo}); nodemesh attaches its socket programs to cgroup v2. ` +
    "Mount it with 'mount -t cgroup2 none /sys/fs/cgroup/unified' (hybrid hosts) or boot with systemd.unified_cgroup_hierarchy=1",
  NODEMESH_E_SANDBOX_MISSING_TOOL: (a: { tool: string; pkg: string }) =>
    `the '${a.tool}' command is not installed (searched PATH); install it with 'apt-get install ${a.pkg}' (or run 'make system-deps')`,
  NODEMESH_E_SANDBOX_DAEMON_MISSING: (a: { path: string }) =>
    `the node daemon ${a.path} does not exist; build it first with 'make build' (or 'node_modules/.bin/tsc -p .')`,
  NODEMESH_E_SANDBOX_BPFFS: (a: { path: string; reason: string }) =>
    `cannot mount the BPF filesystem at ${a.path}: ${a.reason}; mount it yourself with 'mount -t bpf bpf ${a.path}' and retry`,
  NODEMESH_E_SANDBOX_STATE_DIR: (a: { path: string; reason: string }) =>
    `the sandbox state directory ${a.path} cannot be used: ${a.reason}; set NODEMESH_SANDBOX_DIR to a short writable path (unix socket paths must stay under 108 bytes)`,
  NODEMESH_E_SANDBOX_BAD_NODES: (a: { value: string }) =>
    `--nodes ${JSON.stringify(a.value)} is not a node count; use a whole number from 1 to 200`,

  // --- lifecycle -------------------------------------------------------------------------
  NODEMESH_E_SANDBOX_ALREADY_UP: (a: { stateDir: string; nodes: number }) =>
    `a sandbox cluster is already running (${a.nodes} node(s), state in ${a.stateDir}); use 'nodemesh local apply' to change it, or 'nodemesh local down' first to start over`,
  NODEMESH_E_SANDBOX_OTHER_INSTANCE: (a: { stateDir: string; otherDir: string }) =>
    `a sandbox with its state in ${a.otherDir} is running, and sandboxes share network namespace and cgroup names, so this one (state in ${a.stateDir}) cannot be created or removed next to it; use NODEMESH_SANDBOX_DIR=${a.otherDir} to manage that one (e.g. its local down) first`,
  NODEMESH_E_SANDBOX_NOT_UP: (a: { stateDir: string }) =>
    `no sandbox cluster is running (no ${a.stateDir}/cluster.json); start one with 'nodemesh local up'`,
  NODEMESH_E_SANDBOX_BUSY: (a: { pid: number; lock: string }) =>
    `another nodemesh command (pid ${a.pid}) is changing the sandbox right now (lock ${a.lock}); wait for it to finish and retry`,
  NODEMESH_E_SANDBOX_INTERRUPTED: (a: { signal: string }) =>
    `interrupted by ${a.signal}; what was being created has been removed`,
  NODEMESH_E_SANDBOX_COMMAND: (a: { command: string; reason: string }) =>
    `'${a.command}' failed: ${a.reason}`,
  NODEMESH_E_SANDBOX_TEARDOWN: (a: { leftovers: string[] }) =>
    `the sandbox could not be removed completely; left behind: ${a.leftovers.join(', ')}; run 'nodemesh local down' again, and check for processes holding these`,

  // --- node daemons ----------------------------------------------------------------------
  NODEMESH_E_SANDBOX_DAEMON_EXITED: (a: { node: string; code: string; log: string; lines?: string }) =>
    `the nodemesh-node daemon of ${a.node} exited (${a.code}) before it was ready; its log is ${a.log}${tail(a.lines)}`,
  NODEMESH_E_SANDBOX_DAEMON_NOT_READY: (a: { node: string; seconds: number; last: string; log: string; lines?: string }) =>
    `the nodemesh-node daemon of ${a.node} did not report ready within ${a.seconds}s (last answer: ${a.last}); its log is ${a.log}${tail(a.lines)}`,
  NODEMESH_E_SANDBOX_IDENTITY_MISSING: (a: { path: string }) =>
    `the identity service ${a.path} does not exist; build it first with 'make build' (or 'node_modules/.bin/tsc -p .')`,
  NODEMESH_E_SANDBOX_IDENTITY_EXITED: (a: { code: string; log: string; lines?: string }) =>
    `nodemesh-identity (the mesh CA) exited (${a.code}) before it was ready, so no node daemon was started; its log is ${a.log}${tail(a.lines)}`,
  NODEMESH_E_SANDBOX_IDENTITY_NOT_READY: (a: { seconds: number; last: string; log: string; lines?: string }) =>
    `nodemesh-identity (the mesh CA) did not report ready within ${a.seconds}s (${a.last}), so no node daemon was started; its log is ${a.log}${tail(a.lines)}`,
  NODEMESH_E_SANDBOX_DAEMON_UNREACHABLE: (a: { node: string; socket: string; reason: string }) =>
    `cannot reach the nodemesh-node daemon of ${a.node} on ${a.socket}: ${a.reason}; check 'nodemesh local status' and the node log`,

  // --- pods ------------------------------------------------------------------------------
  NODEMESH_E_SANDBOX_POD_NOT_CONFIRMED: (a: { pod: string; node: string; seconds: number; log: string }) =>
    `pod ${a.pod} was not started: the nodemesh-node daemon of ${a.node} did not confirm it within ${a.seconds}s, and a pod must never run before the mesh has seen it (fail closed); check ${a.log}, then 'nodemesh local delete' and re-apply the pod`,
  NODEMESH_E_SANDBOX_POD_ENROL_FAILED: (a: { pod: string; node: string; reason: string }) =>
    `pod ${a.pod} was not started: the nodemesh-node daemon of ${a.node} could not enrol it (${a.reason}), so it would run uncaptured (fail closed); fix the cause, then delete and re-apply the pod`,
  NODEMESH_E_SANDBOX_PODS_FAILED: (a: { problems: string[] }) =>
    `${a.problems.length} pod(s) did not start (the rest of the change took effect; they show as Failed in 'nodemesh local status'):\n  ${a.problems.join('\n  ')}`,
  NODEMESH_E_SANDBOX_POD_START: (a: { pod: string; reason: string }) =>
    `pod ${a.pod} could not be started: ${a.reason}`,
  NODEMESH_E_SANDBOX_NODE_NOT_FOUND: (a: { node: string; nodes: string[] }) =>
    `there is no node ${a.node} in the sandbox; nodes: ${a.nodes.join(', ') || '(none)'}`,
  NODEMESH_E_SANDBOX_RESTART_NOT_TAKEN_OVER: (a: { node: string; seconds: number; last: string; log: string }) =>
    `the new nodemesh-node on ${a.node} did not take over within ${a.seconds}s (last answer: ${a.last}); it was stopped and the old daemon keeps serving; see ${a.log}`,
  NODEMESH_E_SANDBOX_POD_NOT_FOUND: (a: { pod: string; pods: string[] }) =>
    `there is no pod ${a.pod} in the sandbox${a.pods.length ? `; pods: ${a.pods.join(', ')}` : ''}; see 'nodemesh local status'`,
  NODEMESH_E_SANDBOX_POLICY_PENDING: (a: { seconds: number; problems: string[] }) =>
    `the change was stored, but not every node daemon shows it in GET /debug/snapshot (waited at most ${a.seconds}s):\n  ${a.problems.join('\n  ')}\n` +
    "check 'nodemesh local status' and the node logs; a daemon reads the whole object directory when it starts, so it is in force once the daemon runs again",
  NODEMESH_E_SANDBOX_ENROLMENT_PENDING: (a: { pods: string[]; seconds: number }) =>
    `the change was applied, but within ${a.seconds}s the node daemons did not yet reflect the new enrolment of: ${a.pods.join(', ')}; check 'nodemesh local status' and the node logs`,

  // --- applying objects ------------------------------------------------------------------
  NODEMESH_E_SANDBOX_UNKNOWN_NODE: (a: { object: string; node: string; nodes: string[]; where: string }) =>
    `${a.where}: ${a.object}: spec.nodeName ${JSON.stringify(a.node)} is not a node of this sandbox (nodes: ${a.nodes.join(', ')}); use one of them, or remove spec.nodeName to let the sandbox place the pod`,
  NODEMESH_E_SANDBOX_NAMESPACE_NOT_FOUND: (a: { object: string; namespace: string; where: string }) =>
    `${a.where}: ${a.object}: namespace ${JSON.stringify(a.namespace)} does not exist; add a Namespace object for it (in the same apply is fine)`,
  NODEMESH_E_SANDBOX_IMMUTABLE: (a: { object: string; field: string; where: string; hint: string }) =>
    `${a.where}: ${a.object}: ${a.field} cannot be changed on an existing object; ${a.hint}`,
  NODEMESH_E_SANDBOX_IP_CONFLICT: (a: { object: string; ip: string; owner: string; where: string }) =>
    `${a.where}: ${a.object}: spec.clusterIP ${a.ip} is already allocated to ${a.owner}; pick another address or remove spec.clusterIP to have one allocated`,
  NODEMESH_E_SANDBOX_EXHAUSTED: (a: { what: string }) =>
    `no free ${a.what} left in the sandbox; delete some objects first`,
  NODEMESH_E_SANDBOX_APPLY_REJECTED: (a: { problems: string[] }) =>
    `nothing was changed; the input was rejected:\n  ${a.problems.join('\n  ')}`,
  NODEMESH_E_SANDBOX_NOT_FOUND: (a: { objects: string[]; deleted: number }) =>
    `not found: ${a.objects.join(', ')}${a.deleted ? ` (the ${a.deleted} other object(s) were deleted)` : ''}; pass --ignore-not-found to skip missing objects`,

  // --- manifests -------------------------------------------------------------------------
  NODEMESH_E_MANIFEST_INVALID: (a: { issues: ManifestIssue[] }) =>
    `the manifest was rejected as a whole and nothing was changed:\n  ${a.issues.map(formatIssue).join('\n  ')}`,
  NODEMESH_E_MANIFEST_READ: (a: { path: string; reason: string }) =>
    `cannot read manifest ${a.path}: ${a.reason}; pass a YAML file or a directory of .yaml/.yml/.json files`,
  NODEMESH_E_MANIFEST_EMPTY: (a: { path: string }) =>
    `${a.path} holds no manifests (no .yaml, .yml or .json files, or only empty documents)`,

  // --- Kubernetes clusters (install, upgrade, uninstall, enroll, status) -----------------
  NODEMESH_E_CLI_BAD_VALUE: (a: { flag: string; value: string; expected: string }) =>
    `${a.flag} ${JSON.stringify(a.value)} is not valid; expected ${a.expected}`,
  NODEMESH_E_KUBE_CONFIG: (a: { file: string; reason: string }) =>
    `cannot use the kubeconfig ${a.file}: ${a.reason}; pass a valid one with --kubeconfig (or set KUBECONFIG)`,
  NODEMESH_E_KUBE_CONTEXT: (a: { context: string; file: string; contexts: string[] }) =>
    `the kubeconfig ${a.file} has no context ${JSON.stringify(a.context)}${a.contexts.length ? ` (contexts: ${a.contexts.join(', ')})` : ' (it defines no contexts)'}; pass one of them with --context`,
  NODEMESH_E_KUBE_UNREACHABLE: (a: { server: string; reason: string }) =>
    `cannot reach the Kubernetes API server at ${a.server}: ${a.reason}; check that the cluster is up and that --kubeconfig/--context select it`,
  NODEMESH_E_KUBE_UNAUTHORIZED: (a: { server: string; user: string }) =>
    `the Kubernetes API server at ${a.server} refused the credentials of ${a.user} (401 Unauthorized); refresh them in the kubeconfig (an expired token or certificate?)`,
  NODEMESH_E_KUBE_FORBIDDEN: (a: { message: string }) =>
    `the Kubernetes API server refused: ${a.message}; nodemesh install needs cluster-admin rights (it creates CRDs, ClusterRoles and a DaemonSet)`,
  NODEMESH_E_KUBE_API: (a: { request: string; code: number; reason: string; message: string }) =>
    `${a.request} failed: ${a.code} ${a.reason}: ${a.message}`,
  NODEMESH_E_KUBE_APPLY_CONFLICT: (a: { object: string; message: string }) =>
    `${a.object}: ${a.message}; another field manager owns these fields. Re-run with --force-conflicts to take them over`,
  NODEMESH_E_KUBE_TIMEOUT: (a: { what: string; seconds: number; state: string }) =>
    `timed out after ${a.seconds}s waiting for ${a.what}: ${a.state}; raise --timeout, or look at the pods with kubectl describe`,
  NODEMESH_E_KUBE_NOT_INSTALLED: (a: { what: string }) =>
    `nodemesh is not installed in this cluster (${a.what} not found); run 'nodemesh install' first`,
  NODEMESH_E_KUBE_NAMESPACE_NOT_FOUND: (a: { namespace: string }) =>
    `namespace ${JSON.stringify(a.namespace)} does not exist in this cluster; create it first (kubectl create namespace ${a.namespace})`,

  // --- CLI usage -------------------------------------------------------------------------
  NODEMESH_E_CLI_POD_REF: (a: { value: string }) =>
    `${JSON.stringify(a.value)} is not a pod reference; write <namespace>/<pod> (or <pod> for the default namespace)`,
  NODEMESH_E_CLI_NO_COMMAND: (_: void) =>
    "no command given; write 'nodemesh local exec <namespace>/<pod> -- <command> [args...]'",
});

export type InstallerErrorCode = (typeof InstallerErrors.codes)[number];
