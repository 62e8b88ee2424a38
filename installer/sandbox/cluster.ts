// The sandbox cluster's commands: up, down, apply, delete, status, exec. This file puts the
// pieces together in order; the pieces (topology, cgroups, daemons, pods, services,
// apply-plan, teardown) each do one thing.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readAllObjects, removeObject, writeObject, type StoredObject } from '../../daemon/sources/object-directory';
import { describeObject, isResource, type ManifestEntry, type OtherObject } from '../../daemon/state/manifest';
import type { Namespace, Pod, Resource, Service } from '../../daemon/state/resources';
import { enrolmentOf } from '../../daemon/state/snapshot';
import { InstallerErrors, NodemeshError } from '../errors';
import { adminGetJson, type DaemonWorkloads } from './admin-client';
import { isPolicy, planApply, planDelete, type ApplyPlan, type ClusterView, type Policy } from './apply-plan';
import { createCgroup, detectCgroup2Root, sandboxCgroupRoot } from './cgroups';
import { daemonCommand, isReady, startDaemon, waitReady } from './daemons';
import { checkRoot, checkTools, ensureBpffs, isAlive, processRef, sleep } from './host';
import {
  identityClientEnv, identityMain, identityRecord, identityStatus, nodeCredentialFile, startIdentity, waitIdentityReady, writeCredentials,
  type IdentityStatus,
} from './identity';
import { launchAttached } from './launch';
import { loadManifests } from './manifests';
import {
  POD_CONFIRM_TIMEOUT_MS, buildPodNetwork, createPodSandbox, destroyPodSandbox, observePhase, pendingPodObject, podKey,
  startContainers, waitForDaemon, writePod,
} from './pods';
import { describePolicy, policyKey, waitForPolicies, type PolicyStatus } from './policies';
import { resourceLabel } from './stored-kinds';
import { enforcementOf } from '../../daemon/policy/enforcement';
import { loadServiceRules, renderServiceRules, serviceEndpoints } from './services';
import {
  BPF_PIN_ROOT, DEFAULT_STATE_DIR, SERVICE_CIDR, TOP_NETNS, acquireLock, clusterIsLive, layout, readCluster, stateDir, writeCluster,
  type ClusterState, type Layout, type NodeRecord, type PodRecord,
} from './state';
import { otherLiveSandbox, sandboxRemains, teardown } from './teardown';
// `local up --apiserver` (apiserver-mode.ts)
import {
  apiServerRecord, daemonSourceEnv, identitySourceEnv, loadAdminKubeconfig, publishSandbox, relayMain, startRelay, unpublishSandbox, writeProcessCredentials,
  type ApiServerRecord,
} from './apiserver-mode';
import { createNode, createTop, netnsPath, nodeIP, nodeName, nodeNetns, podCIDR } from './topology';
import { startAppliedWaypoints, stopDeletedWaypoints } from './waypoints';

/** <repo>: this file is dist/installer/sandbox/cluster.js. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const MAX_NODES = 200;
const UNIX_PATH_MAX = 107;

export interface Output {
  /** Progress and notices (stderr). */
  info(line: string): void;
  /** Results (stdout), one line per object, kubectl style. */
  result(line: string): void;
}

export const consoleOutput: Output = {
  info: (l) => process.stderr.write(`${l}\n`),
  result: (l) => process.stdout.write(`${l}\n`),
};

/** Turns SIGINT/SIGTERM/SIGHUP during a long command into an error at the next checkpoint,
 * so the command can roll back instead of dying half-way. */
class Interruption {
  signal: string | undefined;
  private readonly handler = (s: NodeJS.Signals): void => { this.signal ??= s; };
  constructor() {
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, this.handler);
  }
  check(): void {
    if (this.signal) throw InstallerErrors.NODEMESH_E_SANDBOX_INTERRUPTED({ signal: this.signal });
  }
  dispose(): void {
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(s, this.handler);
  }
}

function checkStateDir(l: Layout, nodes: number): void {
  const longest = path.join(l.nodes, nodeName(nodes), 'admin.sock');
  if (Buffer.byteLength(longest) > UNIX_PATH_MAX) {
    throw InstallerErrors.NODEMESH_E_SANDBOX_STATE_DIR({ path: l.dir, reason: `the admin socket path ${longest} is too long for a unix socket` });
  }
}

function preflight(): { cgroup2Root: string; daemonArgv: string[] } {
  checkRoot();
  checkTools();
  const cgroup2Root = detectCgroup2Root();
  const cmd = daemonCommand(REPO_ROOT);
  if (cmd.main && !fs.existsSync(cmd.main)) throw InstallerErrors.NODEMESH_E_SANDBOX_DAEMON_MISSING({ path: cmd.main });
  if (!fs.existsSync(identityMain(REPO_ROOT))) throw InstallerErrors.NODEMESH_E_SANDBOX_IDENTITY_MISSING({ path: identityMain(REPO_ROOT) });
  return { cgroup2Root, daemonArgv: cmd.argv };
}

function nodeRecords(count: number, l: Layout, cgRoot: string): NodeRecord[] {
  const nodes: NodeRecord[] = [];
  for (let i = 1; i <= count; i++) {
    const name = nodeName(i);
    const cgroup = path.join(cgRoot, name);
    nodes.push({
      name, index: i, ip: nodeIP(i), netns: nodeNetns(i), netnsPath: netnsPath(nodeNetns(i)), podCIDR: podCIDR(i),
      cgroup, daemonCgroup: path.join(cgroup, 'nodemesh-node'),
      adminSocket: path.join(l.nodes, name, 'admin.sock'),
      credentialFile: nodeCredentialFile(l.nodes, name),
      bpfPinRoot: path.join(BPF_PIN_ROOT, name),
      log: path.join(l.logs, `${name}.log`),
    });
  }
  return nodes;
}

// --- objects -----------------------------------------------------------------------------

interface Objects { namespaces: Namespace[]; pods: Pod[]; services: Service[]; policies: Policy[]; others: OtherObject[] }

function readObjects(l: Layout): Objects {
  const out: Objects = { namespaces: [], pods: [], services: [], policies: [], others: [] };
  for (const o of readAllObjects(l.objects).objects as unknown as (Resource | OtherObject)[]) {
    if (!isResource(o)) out.others.push(o);
    else if (o.kind === 'Namespace') out.namespaces.push(o);
    else if (o.kind === 'Pod') out.pods.push(o);
    else if (o.kind === 'Service') out.services.push(o);
    else if (isPolicy(o)) out.policies.push(o);
  }
  return out;
}

const put = (l: Layout, o: Resource | OtherObject): void => { writeObject(l.objects, o as unknown as StoredObject); };

function view(c: ClusterState, objs: Objects): ClusterView {
  return { ...objs, nodes: c.nodes.map((n) => n.name), serviceCIDR: c.serviceCIDR };
}

function syncServiceRules(c: ClusterState, l: Layout): void {
  const objs = readObjects(l);
  loadServiceRules(c.nodes.map((n) => n.netns), renderServiceRules(objs.services, objs.pods));
}

/** Brings Pod phases in the object directory in line with the processes (a pod whose
 * processes ended is Succeeded or Failed), so Service endpoints follow. */
function syncPodPhases(c: ClusterState, l: Layout): boolean {
  let changed = false;
  for (const p of readObjects(l).pods) {
    const rec = c.pods[podKey(p.metadata.namespace ?? 'default', p.metadata.name)];
    if (!rec || p.status?.phase !== 'Running') continue;
    const seen = observePhase(rec);
    if (seen.phase === 'Succeeded' || seen.phase === 'Failed') {
      put(l, { ...p, status: { ...p.status, phase: seen.phase, ...(seen.detail ? { message: seen.detail } : {}) } } as Pod);
      changed = true;
    }
  }
  return changed;
}

function requireCluster(l: Layout): ClusterState {
  const c = readCluster(l);
  if (!c || c.phase !== 'ready') throw InstallerErrors.NODEMESH_E_SANDBOX_NOT_UP({ stateDir: l.dir });
  return c;
}

// --- up / down ---------------------------------------------------------------------------

export interface UpOptions {
  nodes: number; files: string[]; out?: Output;
  /** A kubeconfig: publish the sandbox to that API server and run the Kubernetes path (apiserver-mode.ts). */
  apiserver?: string;
}

export async function up(opts: UpOptions): Promise<ClusterState> {
  const out = opts.out ?? consoleOutput;
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > MAX_NODES) {
    throw InstallerErrors.NODEMESH_E_SANDBOX_BAD_NODES({ value: String(opts.nodes) });
  }
  const { cgroup2Root, daemonArgv } = preflight();
  const l = layout(stateDir());
  checkStateDir(l, opts.nodes);
  // Input first: a bad manifest is reported before anything is created.
  const entries = opts.files.length ? loadManifests(opts.files) : [];
  const names = Array.from({ length: opts.nodes }, (_, i) => nodeName(i + 1));
  if (entries.length) {
    const dry = planApply({ namespaces: [defaultNamespace()], pods: [], services: [], policies: [], others: [], nodes: names, serviceCIDR: SERVICE_CIDR }, entries);
    throwPlanErrors(dry);
  }
  if (opts.apiserver) {
    loadAdminKubeconfig(opts.apiserver);
    if (!fs.existsSync(relayMain(REPO_ROOT))) throw InstallerErrors.NODEMESH_E_SANDBOX_DAEMON_MISSING({ path: relayMain(REPO_ROOT) });
  }

  const lock = acquireLock(l);
  const intr = new Interruption();
  let created = false;
  let published: ApiServerRecord | undefined;
  try {
    const existing = readCluster(l);
    if (existing && clusterIsLive(existing)) {
      throw InstallerErrors.NODEMESH_E_SANDBOX_ALREADY_UP({ stateDir: l.dir, nodes: existing.nodes.length });
    }
    const other = otherLiveSandbox(l, cgroup2Root);
    if (other) throw InstallerErrors.NODEMESH_E_SANDBOX_OTHER_INSTANCE({ stateDir: l.dir, otherDir: other });
    const remains = sandboxRemains(l, cgroup2Root);
    if (remains.length) {
      out.info(`cleaning up the remains of an earlier sandbox that was not shut down: ${remains.join('; ')}`);
      const r = await teardown(l, cgroup2Root, out.info);
      if (r.leftovers.length) throw InstallerErrors.NODEMESH_E_SANDBOX_TEARDOWN({ leftovers: r.leftovers });
    }
    const mountedBpffs = ensureBpffs();
    if (mountedBpffs) out.info('mounted the BPF filesystem at /sys/fs/bpf (it was not mounted; it stays mounted after local down)');
    if (process.env.NODEMESH_DAEMON_COMMAND) out.info(`using NODEMESH_DAEMON_COMMAND (${daemonArgv.join(' ')}) instead of the real node daemon`);

    const cgRoot = sandboxCgroupRoot(cgroup2Root);
    const cluster: ClusterState = {
      version: 1, phase: 'creating', createdAt: new Date().toISOString(), creator: processRef(process.pid)!,
      repoRoot: REPO_ROOT, stateDir: l.dir, cgroup2Root, cgroupRoot: cgRoot, bpfPinRoot: BPF_PIN_ROOT, mountedBpffs,
      serviceCIDR: SERVICE_CIDR, topNetns: TOP_NETNS, daemonCommand: daemonArgv,
      identity: identityRecord(l.dir, cgRoot, l.logs, TOP_NETNS),
      nodes: nodeRecords(opts.nodes, l, cgRoot), pods: {},
      ...(opts.apiserver ? { apiserver: apiServerRecord(opts.apiserver, l.dir, cgRoot, l.logs) } : {}),
    };
    const identity = cluster.identity!;
    created = true;
    for (const d of [l.objects, l.logs, l.podLogs, l.pods, l.nodes]) fs.mkdirSync(d, { recursive: true });
    writeCluster(l, cluster);

    out.info(`creating ${opts.nodes} node(s): network namespaces, cgroups under ${cgRoot}`);
    createTop();
    for (const n of cluster.nodes) {
      intr.check();
      createCgroup(n.daemonCgroup);
      createCgroup(path.join(n.cgroup, 'pods'));
      createNode(n.index, opts.nodes);
    }
    loadServiceRules(cluster.nodes.map((n) => n.netns), renderServiceRules([], []));
    put(l, defaultNamespace());

    if (cluster.apiserver) {
      const api = cluster.apiserver;
      out.info(`publishing to the API server ${api.server}; its relay for the sandbox on ${api.relayAddress} (log ${api.relayLog})`);
      api.relay = await startRelay(api, TOP_NETNS, REPO_ROOT);
      published = api;
      writeCluster(l, cluster);
      const uids = await publishSandbox(cluster, l);
      await writeProcessCredentials(cluster, uids);
      writeCluster(l, cluster);
      out.info(`published nodes, nodemesh-system (ServiceAccounts, RBAC, CRDs) and a nodemesh-node pod per node; tokens by TokenRequest in ${api.dir}`);
    }

    // The CA first: node daemons read its root at start and ask it for certificates.
    out.info(`starting nodemesh-identity in ${TOP_NETNS} on ${identity.address} (mesh CA in ${identity.caDir}, fresh node credentials)`);
    if (!cluster.apiserver) writeCredentials(identity, cluster.nodes);
    const startedIdentity = startIdentity(identity, l.objects, REPO_ROOT, cluster.apiserver ? identitySourceEnv(cluster.apiserver) : {});
    identity.process = startedIdentity.ref;
    writeCluster(l, cluster);
    await waitIdentityReady(identity, startedIdentity, { checkpoint: () => intr.check() });
    out.info(`nodemesh-identity ready: ${identity.address}, pid ${identity.process.pid}, root ${identity.caRootFile}, log ${identity.log}`);

    out.info(`starting ${opts.nodes} nodemesh-node daemon(s)`);
    const started = cluster.nodes.map((n) => {
      const d = startDaemon(n, l.objects, daemonArgv, identityClientEnv(identity, n), cluster.apiserver ? daemonSourceEnv(cluster.apiserver, n.name) : {});
      n.daemon = d.ref;
      return d;
    });
    writeCluster(l, cluster);
    await Promise.all(cluster.nodes.map((n, i) => waitReady(n, started[i]!, { checkpoint: () => intr.check() })));
    for (const n of cluster.nodes) out.info(`${n.name} ready: ${n.ip}, pods ${n.podCIDR}, daemon pid ${n.daemon!.pid}, log ${n.log}`);
    writeCluster(l, cluster);

    if (entries.length) await applyEntries(cluster, l, entries, out, intr);
    // Only now is it up: a `local up` killed before this line left remains, not a cluster.
    cluster.phase = 'ready';
    writeCluster(l, cluster);
    out.info(`sandbox is up (${opts.nodes} node(s), state in ${l.dir}); 'nodemesh local status' shows it, 'nodemesh local down' removes it`);
    return cluster;
  } catch (e) {
    if (created) {
      out.info(`local up failed; removing what it created (logs stay in ${l.logs} until the next local up or down)`);
      if (published) {
        try { await unpublishSandbox(published); } catch (u) { out.info(`warning: could not remove what was published to ${published.server}: ${(u as Error).message}`); }
      }
      const r = await teardown(l, cgroup2Root, () => undefined, { keepLogs: true });
      if (r.leftovers.length) out.info(`warning: could not remove: ${r.leftovers.join(', ')}`);
    }
    throw e;
  } finally {
    intr.dispose();
    lock.release();
  }
}

function defaultNamespace(): Namespace {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default', uid: 'namespace-default' } };
}

export async function down(out: Output = consoleOutput): Promise<{ wasUp: boolean }> {
  checkRoot();
  checkTools();
  const cgroup2Root = detectCgroup2Root();
  const l = layout(stateDir());
  const lock = acquireLock(l);
  const intr = new Interruption(); // finish removing rather than stop half-way
  try {
    const other = otherLiveSandbox(l, cgroup2Root);
    if (other) throw InstallerErrors.NODEMESH_E_SANDBOX_OTHER_INSTANCE({ stateDir: l.dir, otherDir: other });
    const remains = sandboxRemains(l, cgroup2Root);
    if (remains.length === 0) {
      out.info('no sandbox is running; nothing to remove');
      return { wasUp: false };
    }
    const api = readCluster(l)?.apiserver;
    if (api) {
      try {
        const gone = await unpublishSandbox(api);
        out.info(`removed ${gone.length} object(s) the sandbox had published to ${api.server}`);
      } catch (e) {
        out.info(`warning: could not remove what the sandbox published to ${api.server}: ${(e as Error).message}`);
      }
    }
    const r = await teardown(l, cgroup2Root, out.info);
    if (r.leftovers.length) throw InstallerErrors.NODEMESH_E_SANDBOX_TEARDOWN({ leftovers: r.leftovers });
    out.info(`sandbox removed (${r.removed.join(', ')})`);
    return { wasUp: true };
  } finally {
    intr.dispose();
    lock.release();
    if (l.dir === DEFAULT_STATE_DIR) {
      try { fs.rmdirSync(path.dirname(l.dir)); } catch { /* not empty or gone */ }
    }
  }
}

// --- apply / delete ----------------------------------------------------------------------

function throwPlanErrors(plan: ApplyPlan): void {
  if (plan.errors.length === 1) throw plan.errors[0]!;
  if (plan.errors.length > 1) {
    throw InstallerErrors.NODEMESH_E_SANDBOX_APPLY_REJECTED({ problems: plan.errors.map((e) => `${e.message} (${e.code})`) });
  }
}

export async function apply(files: string[], out: Output = consoleOutput): Promise<void> {
  checkRoot();
  checkTools();
  const l = layout(stateDir());
  const entries = loadManifests(files);
  const lock = acquireLock(l);
  const intr = new Interruption();
  try {
    const c = requireCluster(l);
    await applyEntries(c, l, entries, out, intr);
  } finally {
    intr.dispose();
    lock.release();
  }
}

async function applyEntries(c: ClusterState, l: Layout, entries: ManifestEntry[], out: Output, intr?: Interruption): Promise<void> {
  syncPodPhases(c, l);
  const before = readObjects(l);
  const plan = planApply(view(c, before), entries);
  throwPlanErrors(plan);
  const label = (o: Resource): string => `${o.kind.toLowerCase()}/${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;

  for (const p of plan.namespaces) {
    if (p.action !== 'unchanged') put(l, p.object);
    out.result(`${label(p.object)} ${p.action}${p.implicit ? ' (implicitly: it holds mesh-wide policies and did not exist)' : ''}`);
  }
  // Policies before pods: a pod that starts in this apply is covered from its first packet.
  for (const p of plan.policies) {
    if (p.action !== 'unchanged') put(l, p.object);
    // Say where a policy holds whenever that is not simply "at L4 on what it selects".
    const where = p.object.kind === 'AuthorizationPolicy' ? enforcementOf(p.object) : undefined;
    const notable = where && (where.where !== 'node-l4' || where.detail.includes('waypoint'));
    out.result(`${label(p.object)} ${p.action}${notable ? ` (enforced ${where.detail})` : ''}`);
  }
  const policyChanges = new Map<string, Policy | undefined>(plan.policies.filter((p) => p.action !== 'unchanged').map((p) => [policyKey(p.object), p.object]));
  await waitForPolicies(c.nodes, policyChanges, { info: out.info, checkpoint: () => intr?.check() });
  for (const p of plan.services) {
    if (p.action !== 'unchanged') put(l, p.object);
    out.result(`${label(p.object)} ${p.action} (${p.object.spec.clusterIP})`);
  }
  if (plan.services.some((p) => p.action !== 'unchanged')) syncServiceRules(c, l);
  for (const p of plan.stored) {
    if (p.action !== 'unchanged') put(l, p.object);
    out.result(`${resourceLabel(p.object)} ${p.action}`);
  }
  for (const n of plan.notices) out.info(n);
  // Pods a ReplicaSet no longer wants go before new ones start (scale down, replaced template).
  for (const o of plan.storedDeletions) {
    removeObject(l.objects, o.kind, o.metadata.namespace, o.metadata.name);
    out.result(`${resourceLabel(o)} deleted (its Deployment's template changed)`);
  }
  if (plan.podDeletions.length) {
    const leftovers: string[] = [];
    for (const p of plan.podDeletions) leftovers.push(...(await deletePod(c, l, p)));
    for (const p of plan.podDeletions) out.result(`pod/${p.metadata.namespace}/${p.metadata.name} deleted (no longer wanted by its ReplicaSet)`);
    syncServiceRules(c, l);
    if (leftovers.length) throw InstallerErrors.NODEMESH_E_SANDBOX_TEARDOWN({ leftovers });
  }

  // Relabelled pods: new metadata, same runtime.
  for (const p of plan.pods) {
    if (p.action === 'configured') {
      put(l, { ...p.object, status: p.previous?.status } as Pod);
      out.result(`${label(p.object)} configured`);
    } else if (p.action === 'unchanged') {
      out.result(`${label(p.object)} unchanged`);
    }
  }

  // New pods: sandbox first (allocations recorded before anything exists), then in parallel
  // publish -> wait for the daemon -> start.
  const fresh = plan.pods.filter((p) => p.action === 'created').map((p) => p.object);
  const nodeOf = (name: string): NodeRecord => c.nodes.find((n) => n.name === name)!;
  const recs = fresh.map((pod) => createPodSandbox(c, nodeOf(pod.spec.nodeName!), pod, l.podLogs, l.pods));
  writeCluster(l, c);
  const failures: NodemeshError[] = [];
  const started: { pod: Pod; rec: PodRecord }[] = [];
  for (let i = 0; i < fresh.length; i++) {
    intr?.check();
    const pod = fresh[i]!;
    const rec = recs[i]!;
    const node = nodeOf(rec.node);
    try {
      buildPodNetwork(rec, node);
      const pending = pendingPodObject(pod, rec, node);
      writePod(l.objects, pending);
      started.push({ pod: pending, rec });
    } catch (e) {
      await failPod(c, l, rec, pendingPodObject(pod, rec, node), e);
      failures.push(asError(e));
    }
  }
  // --apiserver: the daemons learn of the pods from the API server, which gives them their uids.
  if (c.apiserver) { await publishSandbox(c, l); writeCluster(l, c); }
  const servicesNow = readObjects(l).services;
  await Promise.all(started.map(async ({ pod, rec }) => {
    const node = nodeOf(rec.node);
    try {
      const conf = await waitForDaemon(node, rec, { checkpoint: () => intr?.check() });
      intr?.check();
      startContainers(rec, pod, {
        services: servicesNow.filter((s) => s.metadata.namespace === rec.namespace),
        repoRoot: c.repoRoot, nodeBinDir: path.dirname(process.execPath), hostIP: node.ip,
      });
      writePod(l.objects, { ...pod, status: { ...pod.status, phase: 'Running' } });
      out.result(`${label(pod)} created (${rec.node}, ${rec.ip}, ${conf.enrolled ? 'enrolled in the mesh' : 'not in the mesh'})`);
    } catch (e) {
      await failPod(c, l, rec, pod, e);
      failures.push(asError(e));
    }
  }));
  writeCluster(l, c);
  if (fresh.length || plan.pods.some((p) => p.action === 'configured')) syncServiceRules(c, l);
  if (c.apiserver) { await publishSandbox(c, l); writeCluster(l, c); } // phases Running, EndpointSlices ready

  // Relabelled pods and namespaces: wait until the daemons reflect the new enrolment, so the
  // change has taken effect when apply returns.
  const relabelled = new Set(plan.pods.filter((p) => p.action === 'configured').map((p) => describeObject(p.object)));
  const nsChanged = new Set(plan.namespaces.filter((p) => p.action === 'configured').map((p) => p.object.metadata.name));
  if (relabelled.size || nsChanged.size) {
    const objs = readObjects(l);
    const affected = objs.pods.filter((p) => relabelled.has(describeObject(p)) || nsChanged.has(p.metadata.namespace ?? 'default'));
    await waitForEnrolment(c, objs, affected);
  }
  await startAppliedWaypoints(c, l, entries, out); // waypoint Gateways get their waypoint, issue 9
  intr?.check(); // an interruption is the story, not the pods it stopped
  if (failures.length === 1) throw failures[0]!;
  if (failures.length > 1) throw InstallerErrors.NODEMESH_E_SANDBOX_PODS_FAILED({ problems: failures.map((f) => `${f.message} (${f.code})`) });
}

/** Removes a pod: its object first (the daemon unenrols it), then its processes, netns and cgroup. */
async function deletePod(c: ClusterState, l: Layout, p: Pod): Promise<string[]> {
  const k = podKey(p.metadata.namespace ?? 'default', p.metadata.name);
  removeObject(l.objects, 'Pod', p.metadata.namespace, p.metadata.name);
  const rec = c.pods[k];
  const left = rec ? await destroyPodSandbox(rec) : [];
  delete c.pods[k];
  writeCluster(l, c);
  return left;
}

function asError(e: unknown): NodemeshError {
  if (NodemeshError.is(e)) return e;
  return InstallerErrors.NODEMESH_E_SANDBOX_POD_START({ pod: '(see above)', reason: (e as Error).message }, { cause: e });
}

/** A pod the sandbox refused to start stays visible as Failed, with the reason, and keeps no
 * process; `local delete` removes it. */
async function failPod(c: ClusterState, l: Layout, rec: PodRecord, pod: Pod, e: unknown): Promise<void> {
  const err = asError(e);
  rec.failure = { code: err.code, message: err.message };
  rec.containers = [];
  writePod(l.objects, { ...pod, status: { ...pod.status, phase: 'Failed', reason: err.code, message: err.message } as Pod['status'] });
  writeCluster(l, c);
}

async function waitForEnrolment(c: ClusterState, objs: Objects, pods: Pod[]): Promise<void> {
  const deadline = Date.now() + POD_CONFIRM_TIMEOUT_MS;
  const live = pods.filter((p) => p.status?.phase === 'Running' || p.status?.phase === 'Pending');
  let pending = live;
  while (pending.length) {
    const next: Pod[] = [];
    const byNode = new Map<string, DaemonWorkloads | undefined>();
    for (const n of c.nodes) {
      try { byNode.set(n.name, await adminGetJson<DaemonWorkloads>(n.adminSocket, '/debug/workloads')); } catch { byNode.set(n.name, undefined); }
    }
    for (const p of pending) {
      const want = enrolmentOf(p, objs.namespaces.find((n) => n.metadata.name === p.metadata.namespace)).enrolled;
      const seen = byNode.get(p.spec.nodeName ?? '')?.pods.find((w) => w.uid === p.metadata.uid);
      if (!seen || seen.enrolled !== want) next.push(p);
    }
    pending = next;
    if (!pending.length) return;
    if (Date.now() > deadline) {
      throw InstallerErrors.NODEMESH_E_SANDBOX_ENROLMENT_PENDING({ pods: pending.map((p) => describeObject(p)), seconds: Math.round(POD_CONFIRM_TIMEOUT_MS / 1000) });
    }
    await sleep(150);
  }
}

export async function remove(files: string[], opts: { ignoreNotFound?: boolean } = {}, out: Output = consoleOutput): Promise<void> {
  checkRoot();
  checkTools();
  const l = layout(stateDir());
  const entries = loadManifests(files);
  const lock = acquireLock(l);
  // Deleting is short and leaves a consistent state after each object: finish it even when
  // interrupted, rather than stopping between a pod's processes and its namespace.
  const intr = new Interruption();
  try {
    const c = requireCluster(l);
    const stoppedWaypoints = await stopDeletedWaypoints(c, l, entries); // waypoint Gateways take their waypoint, issue 9
    const plan = planDelete(view(c, readObjects(l)), entries);
    const leftovers: string[] = [...stoppedWaypoints];
    for (const o of plan.others) {
      removeObject(l.objects, o.kind, o.metadata.namespace, o.metadata.name);
      out.result(`${resourceLabel(o)} deleted`);
    }
    for (const p of plan.pods) {
      leftovers.push(...(await deletePod(c, l, p)));
      out.result(`pod/${podKey(p.metadata.namespace ?? 'default', p.metadata.name)} deleted`);
    }
    for (const s of plan.services) {
      removeObject(l.objects, 'Service', s.metadata.namespace, s.metadata.name);
      out.result(`service/${s.metadata.namespace}/${s.metadata.name} deleted`);
    }
    for (const p of plan.policies) {
      removeObject(l.objects, p.kind, p.metadata.namespace, p.metadata.name);
      out.result(`${p.kind.toLowerCase()}/${p.metadata.namespace}/${p.metadata.name} deleted`);
    }
    for (const n of plan.namespaces) {
      removeObject(l.objects, 'Namespace', undefined, n.metadata.name);
      out.result(`namespace/${n.metadata.name} deleted`);
    }
    syncServiceRules(c, l);
    if (c.apiserver) { await publishSandbox(c, l); writeCluster(l, c); }
    await waitForPolicies(c.nodes, new Map(plan.policies.map((p) => [policyKey(p), undefined])), { info: out.info });
    if (leftovers.length) throw InstallerErrors.NODEMESH_E_SANDBOX_TEARDOWN({ leftovers });
    const deleted = plan.pods.length + plan.services.length + plan.policies.length + plan.namespaces.length + plan.others.length;
    if (plan.notFound.length && !opts.ignoreNotFound) throw InstallerErrors.NODEMESH_E_SANDBOX_NOT_FOUND({ objects: plan.notFound, deleted });
    intr.check();
  } finally {
    intr.dispose();
    lock.release();
  }
}

// --- status ------------------------------------------------------------------------------

export interface StatusReport {
  up: boolean;
  /** up: ready; creating: a `local up` is running; incomplete: a `local up` died before it
   * finished; down: recorded but no daemon runs; none: no sandbox. */
  phase: 'up' | 'creating' | 'incomplete' | 'down' | 'none';
  stateDir: string;
  nodes: { name: string; ip: string; podCIDR: string; netns: string; cgroup: string; daemon: { pid: number | null; alive: boolean; ready: boolean; log: string } }[];
  pods: { namespace: string; name: string; uid: string; node: string; ip: string; phase: string; detail?: string; message?: string; enrolled: boolean | null; log: string }[];
  services: { namespace: string; name: string; clusterIP: string; ports: { name?: string; port: number; targetPort: number | string; protocol: string; endpoints: string[] }[] }[];
  /** AuthorizationPolicies and PeerAuthentications, sorted by kind, namespace, name. */
  policies: PolicyStatus[];
  /** nodemesh-identity; null for a sandbox recorded without one. */
  identity: IdentityStatus | null;
}

export async function status(): Promise<StatusReport> {
  const l = layout(stateDir());
  const c = readCluster(l);
  if (!c) return { up: false, phase: 'none', stateDir: l.dir, nodes: [], pods: [], services: [], policies: [], identity: null };
  // Keep phases true when we can take the lock; a concurrent command will do it otherwise.
  try {
    const lock = acquireLock(l);
    try {
      if (c.phase === 'ready' && syncPodPhases(c, l)) syncServiceRules(c, l);
    } finally {
      lock.release();
    }
  } catch { /* busy: report what is recorded */ }
  const objs = readObjects(l);
  const workloads = new Map<string, DaemonWorkloads | undefined>();
  const nodes: StatusReport['nodes'] = [];
  for (const n of c.nodes) {
    const alive = isAlive(n.daemon);
    const ready = alive && (await isReady(n));
    let w: DaemonWorkloads | undefined;
    if (alive) { try { w = await adminGetJson<DaemonWorkloads>(n.adminSocket, '/debug/workloads'); } catch { /* unknown */ } }
    workloads.set(n.name, w);
    nodes.push({ name: n.name, ip: n.ip, podCIDR: n.podCIDR, netns: n.netns, cgroup: n.cgroup, daemon: { pid: n.daemon?.pid ?? null, alive, ready, log: n.log } });
  }
  const pods: StatusReport['pods'] = objs.pods.map((p) => {
    const ns = p.metadata.namespace ?? 'default';
    const rec = c.pods[podKey(ns, p.metadata.name)];
    const seen: { phase: string; detail?: string } = rec ? observePhase(rec) : { phase: p.status?.phase ?? 'Pending' };
    const w = workloads.get(p.spec.nodeName ?? '');
    const entry = w?.pods.find((x) => x.uid === p.metadata.uid);
    return {
      namespace: ns, name: p.metadata.name, uid: p.metadata.uid ?? '', node: p.spec.nodeName ?? '', ip: p.status?.podIP ?? '',
      phase: seen.phase, ...(seen.detail ? { detail: seen.detail } : {}), ...(rec?.failure ? { message: rec.failure.message } : {}),
      enrolled: entry ? entry.enrolled : null, log: rec?.log ?? '',
    };
  }).sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  const services: StatusReport['services'] = objs.services.map((s) => ({
    namespace: s.metadata.namespace ?? 'default', name: s.metadata.name, clusterIP: s.spec.clusterIP ?? '',
    ports: serviceEndpoints(s, objs.pods).map((pe) => ({
      ...(pe.port.name ? { name: pe.port.name } : {}), port: pe.port.port, targetPort: pe.port.targetPort ?? pe.port.port, protocol: pe.protocol,
      endpoints: pe.endpoints.map((e) => `${e.ip}:${e.port}`),
    })),
  })).sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  const policies = objs.policies.map(describePolicy)
    .sort((a, b) => a.kind.localeCompare(b.kind) || a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
  const phase: StatusReport['phase'] = c.phase === 'creating' ? (isAlive(c.creator) ? 'creating' : 'incomplete') : clusterIsLive(c) ? 'up' : 'down';
  return { up: phase === 'up', phase, stateDir: l.dir, nodes, pods, services, policies, identity: c.identity ? identityStatus(c.identity) : null };
}

// --- exec --------------------------------------------------------------------------------

export function parsePodRef(ref: string): { namespace: string; name: string } {
  const parts = ref.split('/');
  if (parts.length === 1 && parts[0]) return { namespace: 'default', name: parts[0] };
  if (parts.length === 2 && parts[0] && parts[1]) return { namespace: parts[0], name: parts[1] };
  throw InstallerErrors.NODEMESH_E_CLI_POD_REF({ value: ref });
}

/** Runs a command inside the pod's network namespace and cgroup with the pod's environment,
 * stdio passed through; resolves to its exit code (128+n when killed by signal n). */
export async function exec(ref: string, argv: string[]): Promise<number> {
  checkRoot();
  if (argv.length === 0) throw InstallerErrors.NODEMESH_E_CLI_NO_COMMAND(undefined);
  const { namespace, name } = parsePodRef(ref);
  const l = layout(stateDir());
  const c = requireCluster(l);
  const rec = c.pods[podKey(namespace, name)];
  if (!rec || !fs.existsSync(rec.cgroup) || !fs.existsSync(rec.netnsPath)) {
    throw InstallerErrors.NODEMESH_E_SANDBOX_POD_NOT_FOUND({ pod: `${namespace}/${name}`, pods: Object.keys(c.pods).sort() });
  }
  const child = launchAttached({ cgroup: rec.cgroup, netnsPath: rec.netnsPath, argv, env: rec.env.PATH ? rec.env : { ...rec.env, PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  const forward = (s: NodeJS.Signals): void => { try { child.kill(s); } catch { /* gone */ } };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const;
  for (const s of signals) process.on(s, forward);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        if (signal) resolve(128 + (os.constants.signals[signal] ?? 0));
        else resolve(code ?? 1);
      });
    });
  } finally {
    for (const s of signals) process.off(s, forward);
  }
}
