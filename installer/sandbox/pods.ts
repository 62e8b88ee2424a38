// Pods: a network namespace, a cgroup and supervised processes. The start protocol is the
// one a CNI plugin follows with ztunnel: create the sandbox (netns, veth, cgroup), publish
// the Pod (Pending, with its IP and the netns/cgroup annotations), wait until the node
// daemon has processed it (GET /debug/workloads lists its uid: enrolled or deliberately
// not), and only then start the process. No confirmation, no process: an enrolled pod must
// never run uncaptured.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeObject, type StoredObject } from '../../daemon/sources/object-directory';
import { ANNOTATION_SANDBOX_CGROUP, ANNOTATION_SANDBOX_NETNS, type Pod, type Service } from '../../daemon/state/resources';
import { InstallerErrors, NodemeshError } from '../errors';
import { adminGetJson, type DaemonWorkloads } from './admin-client';
import { createCgroup, killCgroupTree, removeCgroupTree } from './cgroups';
import { isAlive, processRef, sleep } from './host';
import { launchDetached, supervisedArgv } from './launch';
import { expandVars, serviceEnvVars } from './services';
import type { ClusterState, ContainerProcess, NodeRecord, PodRecord } from './state';
import { FIRST_POD_SLOT, LAST_POD_SLOT, createPodNetwork, deleteNetns, hostVethName, netnsPath, podIP, podIP6, podNetns, wantsIPv6 } from './topology';

export const POD_CONFIRM_TIMEOUT_MS = Number(process.env.NODEMESH_SANDBOX_POD_CONFIRM_TIMEOUT_MS) || 15_000;

export const podKey = (namespace: string, name: string): string => `${namespace}/${name}`;
export const podFileName = (namespace: string, name: string): string => `${namespace}_${name}`;

/** Lowest free host octet on a node. */
export function allocateSlot(cluster: ClusterState, node: string): number {
  const used = new Set(Object.values(cluster.pods).filter((p) => p.node === node).map((p) => p.slot));
  for (let k = FIRST_POD_SLOT; k <= LAST_POD_SLOT; k++) if (!used.has(k)) return k;
  throw InstallerErrors.NODEMESH_E_SANDBOX_EXHAUSTED({ what: `pod IPs on ${node}` });
}

// --- environment (pure) ------------------------------------------------------------------

export interface EnvInputs {
  pod: Pod;
  container: Pod['spec']['containers'][number];
  /** Services of the pod's namespace when it starts (Kubernetes only injects those). */
  services: readonly Service[];
  repoRoot: string;
  nodeBinDir: string;
  hostIP: string;
}

/** The container's environment, in Kubernetes order: the runtime's own variables, then
 * service variables, then the container's env (each may use `$(VAR)` of those before it). */
export function containerEnv(i: EnvInputs): Record<string, string> {
  const p = i.pod;
  const env: Record<string, string> = {
    PATH: [path.join(i.repoRoot, 'installer', 'bin'), i.nodeBinDir, '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'].join(':'),
    HOME: '/root',
    HOSTNAME: p.metadata.name,
    NODEMESH_POD_NAME: p.metadata.name,
    NODEMESH_POD_NAMESPACE: p.metadata.namespace ?? 'default',
    NODEMESH_POD_IP: p.status?.podIP ?? '',
    NODEMESH_NODE_NAME: p.spec.nodeName ?? '',
    ...serviceEnvVars(i.services),
  };
  const fields: Record<string, string | undefined> = {
    'metadata.name': p.metadata.name,
    'metadata.namespace': p.metadata.namespace ?? 'default',
    'metadata.uid': p.metadata.uid,
    'spec.nodeName': p.spec.nodeName,
    'spec.serviceAccountName': p.spec.serviceAccountName ?? 'default',
    'status.podIP': p.status?.podIP,
    'status.hostIP': i.hostIP,
  };
  for (const e of i.container.env ?? []) {
    const fieldPath = (e as { valueFrom?: { fieldRef?: { fieldPath?: string } } }).valueFrom?.fieldRef?.fieldPath;
    const value = fieldPath !== undefined ? fields[fieldPath] ?? '' : expandVars(e.value ?? '', (n) => env[n]);
    env[e.name] = value;
  }
  return env;
}

export function containerArgv(c: Pod['spec']['containers'][number], env: Record<string, string>): string[] {
  const lookup = (n: string): string | undefined => env[n];
  return [...(c.command ?? []), ...(c.args ?? [])].map((s) => expandVars(s, lookup));
}

// --- lifecycle ---------------------------------------------------------------------------

/** Creates the pod's netns, veth and cgroup, and returns its record (not yet started). */
export function createPodSandbox(cluster: ClusterState, node: NodeRecord, pod: Pod, logsDir: string, runRoot: string): PodRecord {
  const namespace = pod.metadata.namespace ?? 'default';
  const name = pod.metadata.name;
  const slot = allocateSlot(cluster, node.name);
  const netns = podNetns(namespace, name, node.index, slot);
  const rec: PodRecord = {
    uid: pod.metadata.uid!,
    namespace, name, node: node.name,
    ip: podIP(node.index, slot), slot,
    ...(wantsIPv6(pod.metadata.annotations) ? { ip6: podIP6(node.index, slot) } : {}),
    netns, netnsPath: netnsPath(netns),
    hostVeth: hostVethName(slot),
    cgroup: path.join(node.cgroup, 'pods', podFileName(namespace, name)),
    log: path.join(logsDir, `${podFileName(namespace, name)}.log`),
    runDir: path.join(runRoot, podFileName(namespace, name)),
    env: {},
    containers: [],
  };
  // Recorded before it exists, so a crash half-way is cleaned up by the next command.
  cluster.pods[podKey(namespace, name)] = rec;
  return rec;
}

export function buildPodNetwork(rec: PodRecord, node: NodeRecord): void {
  createCgroup(rec.cgroup);
  fs.rmSync(rec.runDir, { recursive: true, force: true });
  fs.mkdirSync(rec.runDir, { recursive: true });
  createPodNetwork({ netns: rec.netns, nodeNetns: node.netns, hostVeth: rec.hostVeth, ip: rec.ip, ip6: rec.ip6 });
}

/** The Pod as published while it waits for the node daemon. */
export function pendingPodObject(pod: Pod, rec: PodRecord, node: NodeRecord): Pod {
  return {
    ...pod,
    metadata: {
      ...pod.metadata,
      annotations: { ...(pod.metadata.annotations ?? {}), [ANNOTATION_SANDBOX_NETNS]: rec.netnsPath, [ANNOTATION_SANDBOX_CGROUP]: rec.cgroup },
    },
    spec: { ...pod.spec, nodeName: node.name },
    status: { phase: 'Pending', podIP: rec.ip, podIPs: [{ ip: rec.ip }, ...(rec.ip6 ? [{ ip: rec.ip6 }] : [])], hostIP: node.ip },
  };
}

export type Confirmation = { enrolled: boolean };

/** Waits until the node daemon lists the pod (fail closed on timeout or enrolment failure). */
export async function waitForDaemon(node: NodeRecord, rec: PodRecord, opts: { timeoutMs?: number; checkpoint?: () => void } = {}): Promise<Confirmation> {
  const timeoutMs = opts.timeoutMs ?? POD_CONFIRM_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  const pod = podKey(rec.namespace, rec.name);
  for (;;) {
    opts.checkpoint?.();
    try {
      const w = await adminGetJson<DaemonWorkloads>(node.adminSocket, '/debug/workloads', 2000);
      const seen = w.pods?.find((p) => p.uid === rec.uid);
      if (seen) return { enrolled: !!seen.enrolled };
      const failed = w.failed?.find((p) => p.uid === rec.uid);
      if (failed) {
        throw InstallerErrors.NODEMESH_E_SANDBOX_POD_ENROL_FAILED({ pod, node: node.name, reason: `${failed.error}${failed.code ? ` (${failed.code})` : ''}` });
      }
    } catch (e) {
      if (NodemeshError.is(e)) throw e;
      // not answering right now: keep trying until the deadline
    }
    if (Date.now() > deadline || !isAlive(node.daemon)) {
      throw InstallerErrors.NODEMESH_E_SANDBOX_POD_NOT_CONFIRMED({ pod, node: node.name, seconds: Math.round(timeoutMs / 1000), log: node.log });
    }
    await sleep(100);
  }
}

/** Starts every container of the pod, in its cgroup and netns, with stdio to the pod log. */
export function startContainers(rec: PodRecord, pod: Pod, inputs: Omit<EnvInputs, 'container' | 'pod'>): void {
  fs.mkdirSync(path.dirname(rec.log), { recursive: true });
  fs.writeFileSync(rec.log, '');
  rec.containers = [];
  for (const c of pod.spec.containers) {
    const env = containerEnv({ ...inputs, pod, container: c });
    const argv = containerArgv(c, env);
    if (argv.length === 0) throw InstallerErrors.NODEMESH_E_SANDBOX_POD_START({ pod: podKey(rec.namespace, rec.name), reason: `container ${c.name} has no command` });
    const exitFile = path.join(rec.runDir, `${c.name}.exit`);
    const child = launchDetached({ cgroup: rec.cgroup, netnsPath: rec.netnsPath, argv: supervisedArgv(exitFile, argv), env, logFile: rec.log });
    const ref = child.pid !== undefined ? processRef(child.pid) : undefined;
    if (!ref) throw InstallerErrors.NODEMESH_E_SANDBOX_POD_START({ pod: podKey(rec.namespace, rec.name), reason: `container ${c.name} did not start` });
    rec.containers.push({ container: c.name, argv, process: ref, exitFile } satisfies ContainerProcess);
    rec.env = env;
  }
}

export type Phase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

/** The pod's phase as the processes tell it (the CLI is not their parent: exit codes come
 * from the files the supervising shell writes). */
export function observePhase(rec: PodRecord): { phase: Phase; detail?: string } {
  if (rec.failure) return { phase: 'Failed', detail: rec.failure.code };
  if (rec.containers.length === 0) return { phase: 'Pending' };
  const exits: string[] = [];
  let running = 0;
  let failed = false;
  for (const c of rec.containers) {
    if (isAlive(c.process)) {
      running++;
      continue;
    }
    let code = '';
    try { code = fs.readFileSync(c.exitFile, 'utf8').trim(); } catch { /* killed before it could write */ }
    exits.push(`${c.container}: ${code === '' ? 'killed' : `exit ${code}`}`);
    if (code !== '0') failed = true;
  }
  const detail = exits.length ? { detail: exits.join(', ') } : {};
  if (running > 0) return { phase: 'Running', ...detail };
  return { phase: failed ? 'Failed' : 'Succeeded', ...detail };
}

/** Kills the pod's processes (by its cgroup: they are ours) and removes its cgroup, netns
 * (taking the veth and the node's /32 route with it) and runtime files. */
export async function destroyPodSandbox(rec: PodRecord): Promise<string[]> {
  const left: string[] = [];
  if (!(await killCgroupTree(rec.cgroup))) left.push(`processes in ${rec.cgroup}`);
  left.push(...removeCgroupTree(rec.cgroup));
  if (!deleteNetns(rec.netns)) left.push(`netns ${rec.netns}`);
  fs.rmSync(rec.runDir, { recursive: true, force: true });
  return left;
}

export function writePod(objectsDir: string, pod: Pod): void {
  writeObject(objectsDir, pod as unknown as StoredObject);
}
