// The node daemon's DaemonSet: one nodemesh-node per node, with exactly the host access its
// eBPF data path needs, and nothing that would let an upgrade leave a node uncaptured for long.
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import type { IIoK8sApiCoreV1PodSpec } from 'kubernetes-models/v1/PodSpec';
import { commonLabels, selectorLabels } from './labels';
import {
  CA_ROOT_CONFIGMAP_NAME, WAYPOINT_KEYS_CONFIGMAP_NAME, IDENTITY_NAME, IDENTITY_PORT, IDENTITY_TOKEN_AUDIENCE, NAMESPACE, NODE_NAME, READINESS_PORT,
  type ManifestValues,
} from './values';
import { CA_CERT_ENTRY } from './ca-objects';
import { DAEMON_NODE_FLAGS } from '../../daemon/node-flags';

/** Where the image keeps the built tree (`make build` output under /opt/nodemesh). */
export const IMAGE_ROOT = '/opt/nodemesh';
/** The node daemon runs with the data path's node flags (daemon/node-flags.ts). */
export const NODE_COMMAND = ['node', ...DAEMON_NODE_FLAGS, `${IMAGE_ROOT}/dist/daemon/main.js`];
export const IDENTITY_COMMAND = ['node', `${IMAGE_ROOT}/dist/daemon/identity-main.js`];
export const TOKEN_DIR = '/var/run/secrets/nodemesh/tokens';
export const TOKEN_FILE = 'nodemesh-identity-token';
export const CA_ROOT_DIR = '/var/run/secrets/nodemesh/ca-root';
/** Projected tokens are rotated by the kubelet at 80% of this; the daemon re-reads the file. */
export const TOKEN_EXPIRATION_SECONDS = 3600;
export const HOST_PROC_DIR = '/host/proc';

export function image(v: ManifestValues): string {
  return `${v.imageRepository}:${v.version}`;
}

export function nodePodSpec(v: ManifestValues, opts: { uninstall?: boolean } = {}): IIoK8sApiCoreV1PodSpec {
  return {
    serviceAccountName: NODE_NAME,
    // The tunnel (15008) and the redirected connections live in the node's network namespace,
    // as in the sandbox; readiness and metrics are probed on the node address.
    hostNetwork: true,
    dnsPolicy: 'ClusterFirstWithHostNet',
    // Pods are found by their processes: /proc/<pid>/ns/net and /proc/<pid>/cgroup.
    hostPID: true,
    priorityClassName: 'system-node-critical',
    // Every taint: a node without its daemon would run enrolled pods uncaptured.
    tolerations: [{ operator: 'Exists' }],
    // Time to close HBONE sessions and drain; eBPF programs stay attached across the restart.
    terminationGracePeriodSeconds: 30,
    containers: [{
      name: NODE_NAME,
      image: image(v),
      imagePullPolicy: v.imagePullPolicy,
      command: opts.uninstall ? [...NODE_COMMAND, '--uninstall'] : NODE_COMMAND,
      env: [
        { name: 'NODEMESH_NODE_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'spec.nodeName' } } },
        { name: 'NODEMESH_SOURCE', value: 'kube' },
        { name: 'NODEMESH_TRUST_DOMAIN', value: v.trustDomain },
        { name: 'NODEMESH_LOG_LEVEL', value: v.logLevel },
        { name: 'NODEMESH_IDENTITY_ADDRESS', value: `${IDENTITY_NAME}.${NAMESPACE}.svc:${IDENTITY_PORT}` },
        { name: 'NODEMESH_NODE_CREDENTIAL_FILE', value: `${TOKEN_DIR}/${TOKEN_FILE}` },
        { name: 'NODEMESH_CA_ROOT_FILE', value: `${CA_ROOT_DIR}/${CA_CERT_ENTRY}` },
        { name: 'NODEMESH_HOST_PROC', value: HOST_PROC_DIR },
      ],
      ports: opts.uninstall ? undefined : [
        { name: 'hbone', containerPort: 15008, protocol: 'TCP' },
        { name: 'metrics', containerPort: 15020, protocol: 'TCP' },
        { name: 'readiness', containerPort: READINESS_PORT, protocol: 'TCP' },
      ],
      readinessProbe: opts.uninstall ? undefined : {
        httpGet: { path: '/healthz/ready', port: READINESS_PORT },
        periodSeconds: 5, failureThreshold: 3,
      },
      resources: {
        requests: { cpu: '100m', memory: '128Mi' },
        // No CPU limit: throttling the daemon throttles every enrolled pod's traffic.
        limits: { memory: '1Gi' },
      },
      securityContext: {
        runAsUser: 0,
        privileged: false,
        // Must be true: the API refuses allowPrivilegeEscalation=false together with SYS_ADMIN.
        allowPrivilegeEscalation: true,
        readOnlyRootFilesystem: true,
        capabilities: {
          drop: ['ALL'],
          add: [
            'BPF', // load programs, create and pin maps (bpf(2) without CAP_SYS_ADMIN on >= 5.8)
            'PERFMON', // program types and helpers the loader marks as tracing-like (bpf_probe_read, pointer leaks checks)
            'NET_ADMIN', // attach cgroup/sk_lookup programs, set socket marks and IP_TRANSPARENT on tunnel sockets
            'SYS_ADMIN', // setns(2) into pod network namespaces, and cgroup attach on kernels before 5.8
            'SYS_PTRACE', // open /proc/<pid>/ns/net of other users' processes (ptrace access mode check)
            'DAC_OVERRIDE', // read root-owned, 0600 cgroup and /proc entries of pods running as other users
            // NET_RAW is not needed: no raw or packet sockets are opened.
          ],
        },
      },
      volumeMounts: [
        // Pinned maps and links outlive a daemon restart, so pods stay captured meanwhile.
        { name: 'bpffs', mountPath: '/sys/fs/bpf' },
        // Socket programs attach to the cgroup v2 root; pods are found by their cgroup paths.
        { name: 'cgroup', mountPath: '/sys/fs/cgroup', readOnly: true },
        { name: 'host-proc', mountPath: HOST_PROC_DIR, readOnly: true },
        { name: 'identity-token', mountPath: TOKEN_DIR, readOnly: true },
        { name: 'ca-root', mountPath: CA_ROOT_DIR, readOnly: true },
        { name: 'tmp', mountPath: '/tmp' },
      ],
    }],
    volumes: [
      { name: 'bpffs', hostPath: { path: '/sys/fs/bpf', type: 'Directory' } },
      { name: 'cgroup', hostPath: { path: '/sys/fs/cgroup', type: 'Directory' } },
      { name: 'host-proc', hostPath: { path: '/proc', type: 'Directory' } },
      // /run/netns is not mounted: namespaces are reached through /proc/<pid>/ns/net.
      {
        name: 'identity-token',
        projected: {
          sources: [{ serviceAccountToken: { audience: IDENTITY_TOKEN_AUDIENCE, expirationSeconds: TOKEN_EXPIRATION_SECONDS, path: TOKEN_FILE } }],
        },
      },
      // The CA root, and beside it the waypoints' caller-statement public keys (written by the
      // waypoint controller; absent until the first waypoint): one directory, updated in place.
      { name: 'ca-root', projected: { sources: [{ configMap: { name: CA_ROOT_CONFIGMAP_NAME } }, { configMap: { name: WAYPOINT_KEYS_CONFIGMAP_NAME, optional: true } }] } },
      { name: 'tmp', emptyDir: {} },
    ],
  };
}

export function nodeDaemonSet(v: ManifestValues): DaemonSet {
  return new DaemonSet({
    metadata: { name: NODE_NAME, namespace: NAMESPACE, labels: commonLabels(v, NODE_NAME) },
    spec: {
      selector: { matchLabels: selectorLabels(NODE_NAME) },
      // One node at a time by default: its pods keep their eBPF programs while the daemon
      // restarts, but new connections wait for the new daemon.
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: v.nodeMaxUnavailable, maxSurge: 0 } },
      template: {
        metadata: { labels: { ...commonLabels(v, NODE_NAME), ...selectorLabels(NODE_NAME) } },
        spec: nodePodSpec(v),
      },
    },
  });
}

export const UNINSTALL_NAME = 'nodemesh-node-uninstall';

/** Run by `nodemesh uninstall` after the node DaemonSet is gone: on every node, an init
 * container runs `nodemesh-node --uninstall` (detach the eBPF programs, remove the pins), then
 * a pause-like container reports ready so the CLI knows the node is clean; the CLI deletes it.
 * A preStop hook cannot do this: it also runs on every rolling update, when the programs must
 * stay attached. */
export function uninstallDaemonSet(v: ManifestValues): DaemonSet {
  const spec = nodePodSpec(v, { uninstall: true });
  const cleaner = spec.containers[0];
  return new DaemonSet({
    metadata: { name: UNINSTALL_NAME, namespace: NAMESPACE, labels: commonLabels(v, UNINSTALL_NAME) },
    spec: {
      selector: { matchLabels: selectorLabels(UNINSTALL_NAME) },
      template: {
        metadata: { labels: { ...commonLabels(v, UNINSTALL_NAME), ...selectorLabels(UNINSTALL_NAME) } },
        spec: {
          ...spec,
          initContainers: [{ ...cleaner, name: 'detach' }],
          containers: [{
            name: 'done', image: image(v), imagePullPolicy: v.imagePullPolicy,
            command: ['node', '-e', 'setInterval(() => {}, 1 << 30)'],
            resources: { requests: { cpu: '1m', memory: '16Mi' }, limits: { memory: '64Mi' } },
            securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          }],
        },
      },
    },
  });
}
