// Waypoints in the sandbox: a Gateway of class `nodemesh-waypoint` becomes a pod-like place
// (the same netns, veth, IP and cgroup every sandbox pod gets, pods.ts) holding one
// `nodemesh-waypoint` process, as Istio turns its waypoint Gateways into Deployments. The Pod
// object is published like any pod (labelled with the Gateway's name, not captured:
// dataplane-mode none), which also lets nodemesh-identity bind the waypoint's service account
// to the node. The process itself runs in its node's network namespace, like nodemesh-node,
// so it can reach nodemesh-identity; it serves HBONE on the pod's IP through a socket made
// inside the pod's namespace. The Gateway's status gets its address and Programmed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { readAllObjects, readObject, removeObject, writeObject, type StoredObject } from '../../daemon/sources/object-directory';
import { newSigningKeyPair } from '../../daemon/tunnel/caller-statement';
import { trustFileFor } from '../../daemon/tunnel/caller-statement-trust';
import type { ManifestEntry } from '../../daemon/state/manifest';
import { LABEL_DATAPLANE_MODE, LABEL_USE_WAYPOINT, type Pod } from '../../daemon/state/resources';
import { LABEL_GATEWAY_NAME, WAYPOINT_GATEWAY_CLASS } from '../../daemon/state/waypoints';
import { InstallerErrors, NodemeshError } from '../errors';
import { adminGet } from './admin-client';
import { checkRoot, checkTools, isAlive, logTail, processRef, sleep } from './host';
import { identityClientEnv } from './identity';
import { launchDetached, supervisedArgv } from './launch';
import { cgroupPids } from './cgroups';
import { buildPodNetwork, createPodSandbox, destroyPodSandbox, pendingPodObject, podKey, waitForDaemon, writePod } from './pods';
import { acquireLock, layout, readCluster, stateDir, writeCluster, type ClusterState, type Layout, type NodeRecord } from './state';

export const WAYPOINT_READY_TIMEOUT_MS = Number(process.env.NODEMESH_SANDBOX_WAYPOINT_READY_TIMEOUT_MS) || 30_000;
/** A stopping waypoint gets SIGTERM and this long to finish (drain, write a --cpu-prof profile). */
export const WAYPOINT_STOP_GRACE_MS = 5_000;
/** Node options for the waypoint process, for profiling only (bench/README.md):
 * NODEMESH_SANDBOX_WAYPOINT_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'. */
export const WAYPOINT_NODE_ARGS_ENV = 'NODEMESH_SANDBOX_WAYPOINT_NODE_ARGS';
const PROFILING_FLAG = /^--(cpu-prof|heap-prof)(-(dir|name|interval)=[^\s]+)?$/;

/** The profiling flags of `NODEMESH_SANDBOX_WAYPOINT_NODE_ARGS` (pure); anything else is refused. */
export function waypointNodeArgs(value: string | undefined): string[] {
  const args = (value ?? '').split(/\s+/).filter(Boolean);
  const bad = args.filter((a) => !PROFILING_FLAG.test(a));
  if (bad.length) throw new Error(`${WAYPOINT_NODE_ARGS_ENV} takes only --cpu-prof, --heap-prof and their -dir=, -name=, -interval= forms (got ${bad.map((b) => JSON.stringify(b.slice(0, 80))).join(', ')})`);
  return args;
}
export const GATEWAY_API_VERSION = 'gateway.networking.k8s.io/v1';

export interface GatewayObject extends StoredObject {
  metadata: { name: string; namespace?: string; uid?: string; labels?: Record<string, string>; creationTimestamp?: string; generation?: number };
  spec: { gatewayClassName: string; listeners?: { name: string; port: number; protocol: string }[] };
  status?: Record<string, unknown>;
}

export interface Out { result(line: string): void; info(line: string): void }

/** The Gateway `waypoint apply` creates: Istio's waypoint shape (one HBONE listener). */
export function waypointGateway(namespace: string, name: string): GatewayObject {
  return {
    apiVersion: GATEWAY_API_VERSION, kind: 'Gateway',
    metadata: { name, namespace },
    spec: { gatewayClassName: WAYPOINT_GATEWAY_CLASS, listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
  };
}

export const waypointPodName = (gateway: string): string => `${gateway}-waypoint`;
const isWaypointGateway = (o: { kind?: string; spec?: { gatewayClassName?: string } }) => o.kind === 'Gateway' && o.spec?.gatewayClassName === WAYPOINT_GATEWAY_CLASS;
const adminSocketOf = (runDir: string) => path.join(runDir, 'admin.sock');

/** The waypoint's Pod object before it is placed (pure). */
export function waypointPod(gw: GatewayObject, repoRoot: string, nodeArgs: readonly string[] = []): Pod {
  const namespace = gw.metadata.namespace ?? 'default';
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: {
      name: waypointPodName(gw.metadata.name), namespace, uid: randomUUID(),
      labels: { [LABEL_GATEWAY_NAME]: gw.metadata.name, [LABEL_DATAPLANE_MODE]: 'none' },
      creationTimestamp: new Date().toISOString(),
    } as Pod['metadata'],
    spec: {
      serviceAccountName: gw.metadata.name,
      containers: [{ name: 'waypoint', command: [process.execPath, ...nodeArgs, path.join(repoRoot, 'dist', 'waypoint', 'main.js')] }],
    },
  };
}

/** The node with the fewest pods (the sandbox's whole scheduler for waypoints). */
function pickNode(c: ClusterState): NodeRecord {
  const load = (n: NodeRecord) => Object.values(c.pods).filter((p) => p.node === n.name).length;
  return [...c.nodes].sort((a, b) => load(a) - load(b) || a.index - b.index)[0]!;
}

/** Starts the waypoint of a stored Gateway, unless it runs already. */
export async function startWaypoint(c: ClusterState, l: Layout, gw: GatewayObject, out: Out): Promise<void> {
  const namespace = gw.metadata.namespace ?? 'default';
  const name = gw.metadata.name;
  const k = podKey(namespace, waypointPodName(name));
  const existing = c.pods[k];
  if (existing && existing.containers.some((p) => isAlive(p.process))) { out.result(`waypoint/${namespace}/${name} unchanged (${existing.ip})`); return; }
  if (existing) await stopWaypoint(c, l, namespace, name);
  if (!c.identity) throw InstallerErrors.NODEMESH_E_SANDBOX_WAYPOINT_START({ gateway: `${namespace}/${name}`, reason: 'the sandbox has no nodemesh-identity, so the waypoint cannot get a certificate' });
  let nodeArgs: string[];
  try { nodeArgs = waypointNodeArgs(process.env[WAYPOINT_NODE_ARGS_ENV]); } catch (e) {
    throw InstallerErrors.NODEMESH_E_SANDBOX_WAYPOINT_START({ gateway: `${namespace}/${name}`, reason: (e as Error).message });
  }
  const node = pickNode(c);
  const pod = waypointPod(gw, c.repoRoot, nodeArgs);
  const rec = createPodSandbox(c, node, pod, l.podLogs, l.pods);
  writeCluster(l, c);
  const fail = async (reason: string, log?: string): Promise<never> => {
    removeObject(l.objects, 'Pod', namespace, pod.metadata.name);
    await destroyPodSandbox(rec);
    delete c.pods[k];
    writeCluster(l, c);
    writeGatewayStatus(l, gw, undefined, reason);
    throw InstallerErrors.NODEMESH_E_SANDBOX_WAYPOINT_START({ gateway: `${namespace}/${name}`, reason, log });
  };
  try {
    buildPodNetwork(rec, node);
    const pending = pendingPodObject(pod, rec, node);
    writePod(l.objects, pending);
    await waitForDaemon(node, rec);
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      ...identityClientEnv(c.identity, node),
      NODEMESH_WAYPOINT_NAME: name, NODEMESH_WAYPOINT_NAMESPACE: namespace, NODEMESH_POD_IP: rec.ip,
      NODEMESH_WAYPOINT_NETNS: rec.netnsPath, NODEMESH_SOURCE: 'sandbox', NODEMESH_SANDBOX_OBJECTS: l.objects,
      NODEMESH_ADMIN_SOCKET: adminSocketOf(rec.runDir), NODEMESH_LOG_LEVEL: process.env.NODEMESH_LOG_LEVEL ?? 'info',
    };
    env.NODEMESH_WAYPOINT_SIGNING_KEY_FILE = trustWaypointKey(c.identity.caRootFile, rec.runDir, `spiffe://cluster.local/ns/${namespace}/sa/${name}`);
    fs.mkdirSync(path.dirname(rec.log), { recursive: true });
    fs.writeFileSync(rec.log, '');
    const argv = pod.spec.containers[0]!.command!;
    const exitFile = path.join(rec.runDir, 'waypoint.exit');
    // In the pod's cgroup (so teardown and delete find it) but the node's network namespace.
    const child = launchDetached({ cgroup: rec.cgroup, netnsPath: node.netnsPath, argv: supervisedArgv(exitFile, argv), env, logFile: rec.log });
    const ref = child.pid !== undefined ? processRef(child.pid) : undefined;
    if (!ref) return await fail('the process did not start');
    rec.containers = [{ container: 'waypoint', argv, process: ref, exitFile }];
    rec.env = env;
    writeCluster(l, c);
    await waitWaypointReady(rec.runDir, ref, WAYPOINT_READY_TIMEOUT_MS, rec.log).catch((e: Error) => fail(e.message, logTail(rec.log)));
    writePod(l.objects, { ...pending, status: { ...pending.status, phase: 'Running' } });
    writeGatewayStatus(l, gw, rec.ip);
    out.result(`waypoint/${namespace}/${name} started (${rec.node}, ${rec.ip}, spiffe://cluster.local/ns/${namespace}/sa/${name})`);
  } catch (e) {
    if (NodemeshError.is(e, 'NODEMESH_E_SANDBOX_WAYPOINT_START')) throw e;
    return fail((e as Error).message, logTail(rec.log));
  }
}

async function waitWaypointReady(runDir: string, ref: NonNullable<ReturnType<typeof processRef>>, timeoutMs: number, log: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isAlive(ref)) { await sleep(100); throw new Error(`the process exited (log: ${log})`); }
    try {
      if ((await adminGet(adminSocketOf(runDir), '/healthz/ready', 1000)).status === 200) return;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`not ready within ${Math.round(timeoutMs / 1000)} s (log: ${log})`);
    await sleep(100);
  }
}

function writeGatewayStatus(l: Layout, gw: GatewayObject, ip: string | undefined, problem?: string): void {
  const stored = readObject(l.objects, 'Gateway', gw.metadata.namespace, gw.metadata.name) as GatewayObject | undefined;
  if (!stored) return;
  const now = new Date().toISOString();
  const generation = stored.metadata.generation ?? 1;
  const cond = (type: string, ok: boolean, reason: string, message: string) => ({ type, status: ok ? 'True' : 'False', reason, message, observedGeneration: generation, lastTransitionTime: now });
  writeObject(l.objects, {
    ...stored,
    status: {
      addresses: ip ? [{ type: 'IPAddress', value: ip }] : [],
      conditions: [
        cond('Accepted', true, 'Accepted', 'Gateway of class nodemesh-waypoint'),
        ip ? cond('Programmed', true, 'Programmed', `waypoint running at ${ip}:15008`) : cond('Programmed', false, 'Invalid', problem ?? 'not running'),
      ],
    },
  });
}

/** A fresh caller-statement key for the waypoint: the secret in its run directory (0600),
 * the public half in the mesh's trust table next to the CA root (caller-statement-trust.ts). */
function trustWaypointKey(caRootFile: string, runDir: string, spiffeId: string): string {
  const k = newSigningKeyPair();
  const keyFile = path.join(runDir, 'caller-statement.key');
  fs.writeFileSync(keyFile, Buffer.from(k.secretKey).toString('base64url'), { mode: 0o600 });
  updateTrust(caRootFile, (t) => { t[spiffeId] = Buffer.from(k.publicKey).toString('base64url'); });
  return keyFile;
}

function updateTrust(caRootFile: string, change: (t: Record<string, string>) => void): void {
  const file = trustFileFor(caRootFile);
  let t: Record<string, string> = {};
  try { t = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, string>; } catch { /* first waypoint */ }
  change(t);
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(t, null, 2)}\n`, { mode: 0o644 });
  fs.renameSync(tmp, file);
}

/** Stops a waypoint and removes its pod (the Gateway object is the caller's business). */
export async function stopWaypoint(c: ClusterState, l: Layout, namespace: string, name: string): Promise<string[]> {
  if (c.identity) updateTrust(c.identity.caRootFile, (t) => { delete t[`spiffe://cluster.local/ns/${namespace}/sa/${name}`]; });
  const k = podKey(namespace, waypointPodName(name));
  removeObject(l.objects, 'Pod', namespace, waypointPodName(name));
  const rec = c.pods[k];
  if (rec) await terminate(rec.cgroup, WAYPOINT_STOP_GRACE_MS);
  const left = rec ? await destroyPodSandbox(rec) : [];
  delete c.pods[k];
  writeCluster(l, c);
  return left;
}

/** SIGTERM to the processes of a waypoint's cgroup, then up to `graceMs` for them to exit (the
 * waypoint drains and exits 0; a --cpu-prof profile is written then). */
async function terminate(cgroup: string, graceMs: number): Promise<void> {
  const pids = (): number[] => { try { return cgroupPids(cgroup); } catch { return []; } };
  for (const pid of pids()) { try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ } }
  const deadline = Date.now() + graceMs;
  while (pids().length > 0 && Date.now() < deadline) await sleep(50);
}

// --- local apply / delete hooks (cluster.ts) ----------------------------------------------
// `local apply` stores Gateway API objects like any kept kind; these hooks act on the
// waypoint Gateways among them, as the waypoint controller would.

const gatewayEntries = (entries: readonly ManifestEntry[]) =>
  entries.map((e) => e.object as unknown as GatewayObject).filter((o) => o.kind === 'Gateway');

/** After an apply: every applied waypoint Gateway has a running waypoint; a Gateway that
 * changed to another class loses it. */
export async function startAppliedWaypoints(c: ClusterState, l: Layout, entries: readonly ManifestEntry[], out: Out): Promise<void> {
  for (const o of gatewayEntries(entries)) {
    const ns = o.metadata.namespace ?? 'default';
    const stored = readObject(l.objects, 'Gateway', ns, o.metadata.name) as GatewayObject | undefined;
    if (stored && isWaypointGateway(stored)) await startWaypoint(c, l, stored, out);
    else if (c.pods[podKey(ns, waypointPodName(o.metadata.name))]) await stopWaypoint(c, l, ns, o.metadata.name);
  }
}

/** Before a delete: the waypoints of the waypoint Gateways named; returns what was left behind. */
export async function stopDeletedWaypoints(c: ClusterState, l: Layout, entries: readonly ManifestEntry[]): Promise<string[]> {
  const left: string[] = [];
  for (const o of gatewayEntries(entries)) {
    const ns = o.metadata.namespace ?? 'default';
    if (c.pods[podKey(ns, waypointPodName(o.metadata.name))]) left.push(...(await stopWaypoint(c, l, ns, o.metadata.name)));
  }
  return left;
}

// --- nodemesh waypoint apply / delete / list -----------------------------------------------

/** `waypoint apply -n <ns>`: the Gateway, its waypoint, and (with enrolNamespace) the label. */
export async function applyWaypoint(c: ClusterState, l: Layout, namespace: string, name: string, opts: { enrolNamespace: boolean }, out: Out): Promise<void> {
  const nsObj = readObject(l.objects, 'Namespace', undefined, namespace);
  if (!nsObj) throw InstallerErrors.NODEMESH_E_SANDBOX_WAYPOINT_NAMESPACE({ namespace });
  let gw = readObject(l.objects, 'Gateway', namespace, name) as GatewayObject | undefined;
  if (!gw || !isWaypointGateway(gw)) {
    const fresh = waypointGateway(namespace, name);
    gw = { ...fresh, metadata: { ...fresh.metadata, uid: gw?.metadata.uid ?? randomUUID(), creationTimestamp: gw?.metadata.creationTimestamp ?? new Date().toISOString(), generation: (gw?.metadata.generation ?? 0) + 1 } };
    writeObject(l.objects, gw);
    out.result(`gateway.gateway.networking.k8s.io/${namespace}/${name} created`);
  }
  await startWaypoint(c, l, gw, out);
  if (opts.enrolNamespace) {
    const meta = nsObj.metadata as { labels?: Record<string, string> };
    if (meta.labels?.[LABEL_USE_WAYPOINT] !== name) {
      writeObject(l.objects, { ...nsObj, metadata: { ...nsObj.metadata, labels: { ...(meta.labels ?? {}), [LABEL_USE_WAYPOINT]: name } } });
      out.result(`namespace/${namespace} labelled ${LABEL_USE_WAYPOINT}=${name}`);
    }
  }
}

export async function deleteWaypoint(c: ClusterState, l: Layout, namespace: string, name: string, out: Out): Promise<{ notFound: string[]; leftovers: string[] }> {
  const gw = readObject(l.objects, 'Gateway', namespace, name);
  if (!gw) return { notFound: [`Gateway ${namespace}/${name}`], leftovers: [] };
  const leftovers = await stopWaypoint(c, l, namespace, name);
  removeObject(l.objects, 'Gateway', namespace, name);
  out.result(`gateway.gateway.networking.k8s.io/${namespace}/${name} deleted (its waypoint stopped)`);
  return { notFound: [], leftovers };
}

export interface WaypointInfo {
  namespace: string;
  name: string;
  node?: string;
  ip?: string;
  running: boolean;
  programmed: string;
  /** Services bound to it (by their label or their namespace's). */
  services: string[];
  routes: { kind: string; name: string; accepted: string; resolvedRefs: string }[];
  /** BackendTrafficPolicies of its namespace, each target with its Accepted condition. */
  policies: { name: string; targets: { kind: string; name: string; accepted: string }[] }[];
}

interface Cond { type: string; status: string; reason: string }

export function listWaypoints(c: ClusterState, l: Layout): WaypointInfo[] {
  const objects = readAllObjects(l.objects).objects as unknown as (StoredObject & { spec?: { gatewayClassName?: string }; status?: { conditions?: Cond[]; parents?: { parentRef: { name: string }; conditions: Cond[] }[] } })[];
  const labels = (o: StoredObject) => (o.metadata as { labels?: Record<string, string> }).labels ?? {};
  const nsLabel = new Map(objects.filter((o) => o.kind === 'Namespace').map((o) => [o.metadata.name, labels(o)[LABEL_USE_WAYPOINT]]));
  return objects.filter(isWaypointGateway as (o: StoredObject) => boolean).map((gw) => {
    const ns = gw.metadata.namespace ?? 'default';
    const rec = c.pods[podKey(ns, waypointPodName(gw.metadata.name))];
    const services = objects
      .filter((o) => o.kind === 'Service' && o.metadata.namespace === ns && (labels(o)[LABEL_USE_WAYPOINT] ?? nsLabel.get(ns)) === gw.metadata.name)
      .map((o) => o.metadata.name);
    const routes = objects.filter((o) => (o.kind === 'HTTPRoute' || o.kind === 'GRPCRoute') && o.metadata.namespace === ns).map((r) => {
      const parent = r.status?.parents?.find((p) => services.includes(p.parentRef.name));
      const show = (t: string) => { const x = parent?.conditions.find((k) => k.type === t); return x ? `${x.status} (${x.reason})` : 'no status'; };
      return { kind: r.kind, name: r.metadata.name, accepted: show('Accepted'), resolvedRefs: show('ResolvedRefs') };
    });
    const policies = objects.filter((o) => o.kind === 'BackendTrafficPolicy' && o.metadata.namespace === ns).map((o) => {
      const p = o as unknown as { spec?: { targetRefs?: { kind: string; name: string }[] }; status?: { ancestors?: { ancestorRef: { kind: string; name: string }; conditions: Cond[] }[] } };
      return {
        name: o.metadata.name,
        targets: (p.spec?.targetRefs ?? []).map((t) => {
          const x = p.status?.ancestors?.find((a) => a.ancestorRef.kind === t.kind && a.ancestorRef.name === t.name)?.conditions.find((k) => k.type === 'Accepted');
          return { kind: t.kind, name: t.name, accepted: x ? `${x.status} (${x.reason})` : 'no status' };
        }),
      };
    });
    const programmed = gw.status?.conditions?.find((k) => k.type === 'Programmed');
    return {
      namespace: ns, name: gw.metadata.name, node: rec?.node, ip: rec?.ip, running: !!rec && rec.containers.some((p) => isAlive(p.process)),
      programmed: programmed ? `${programmed.status} (${programmed.reason})` : 'unknown', services, routes, policies,
    };
  });
}

// --- CLI entry points: the lock, the cluster, then the work ---------------------------------

async function withCluster<T>(run: (c: ClusterState, l: Layout) => Promise<T>): Promise<T> {
  checkRoot();
  checkTools();
  const l = layout(stateDir());
  const lock = acquireLock(l);
  try {
    const c = readCluster(l);
    if (!c || c.phase !== 'ready') throw InstallerErrors.NODEMESH_E_SANDBOX_NOT_UP({ stateDir: l.dir });
    return await run(c, l);
  } finally {
    lock.release();
  }
}

export function waypointApplyCommand(namespace: string, name: string, opts: { enrolNamespace: boolean }, out: Out): Promise<void> {
  return withCluster((c, l) => applyWaypoint(c, l, namespace, name, opts, out));
}

export function waypointDeleteCommand(namespace: string, name: string, out: Out): Promise<void> {
  return withCluster(async (c, l) => {
    const r = await deleteWaypoint(c, l, namespace, name, out);
    if (r.leftovers.length) throw InstallerErrors.NODEMESH_E_SANDBOX_TEARDOWN({ leftovers: r.leftovers });
    if (r.notFound.length) throw InstallerErrors.NODEMESH_E_SANDBOX_NOT_FOUND({ objects: r.notFound, deleted: 0 });
  });
}

export function waypointListCommand(): Promise<WaypointInfo[]> {
  return withCluster(async (c, l) => listWaypoints(c, l));
}

export function formatWaypoints(list: readonly WaypointInfo[]): string {
  if (list.length === 0) return 'no waypoints (nodemesh waypoint apply -n <namespace>)';
  const lines: string[] = [];
  for (const w of list) {
    lines.push(`${w.namespace}/${w.name}  ${w.running ? 'running' : 'NOT RUNNING'}  ${w.node ?? '-'}  ${w.ip ?? '-'}  Programmed=${w.programmed}`);
    lines.push(`  services: ${w.services.length ? w.services.join(', ') : '(none: label a Service or the namespace nodemesh.io/use-waypoint=' + w.name + ')'}`);
    for (const r of w.routes) lines.push(`  ${r.kind} ${r.name}: Accepted=${r.accepted} ResolvedRefs=${r.resolvedRefs}`);
    for (const p of w.policies) for (const t of p.targets) lines.push(`  BackendTrafficPolicy ${p.name} -> ${t.kind} ${t.name}: Accepted=${t.accepted}`);
  }
  return lines.join('\n');
}
