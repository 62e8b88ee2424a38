// `nodemesh local up --apiserver KUBECONFIG`: the sandbox against a Kubernetes API server.
// The sandbox stays the kubelet and the container runtime of its nodes (namespaces, cgroups,
// processes), and becomes the controllers a bare API server lacks: it publishes Nodes, Pods
// with status, Services, EndpointSlices and ServiceAccounts (apiserver-publisher.ts), applies
// nodemesh's own install objects without the DaemonSet and Deployment (nothing would run
// them: the sandbox starts those processes itself), creates a Pod `nodemesh-node-<node>` per
// node as the DaemonSet would, and asks TokenRequest for the tokens a kubelet would project.
// The node daemons then run with NODEMESH_SOURCE=kube (a kubeconfig each, the nodemesh-node
// ServiceAccount's token bound to its node's pod) and nodemesh-identity with NODEMESH_SOURCE=kube
// (TokenReview of the daemons' pod-bound tokens, node binding from the API's pods).
//
// Pods' network namespaces: the published Pods carry the sandbox's runtime facts as the
// annotations sandbox.nodemesh.io/netns and sandbox.nodemesh.io/cgroup (the daemon takes a
// pod's namespace from them when present, daemon/state/snapshot.ts). The sandbox's pods have
// no kubepods cgroup for the PodLocator to find; the annotations are what the sandbox's
// "runtime" knows, stated openly, not a search.
//
// Reachability: the daemons' namespaces have no route out, so the sandbox runs a relay
// (apiserver-relay.ts) in the top namespace on 172.30.0.1:6443 to the kubeconfig's server, and
// writes kubeconfigs for the daemons and the identity service that dial the relay and check
// the server's certificate under its own name (tls-server-name).
//
// UIDs: the API server assigns pods their uids; after each publish the sandbox records them
// (object directory and cluster.json), so `local status` and the enrolment checks match what
// the daemons see.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { readAllObjects, writeObject, type StoredObject } from '../../daemon/sources/object-directory';
import { requestProjectedToken } from '../../daemon/identity/projected-token';
import type { Pod } from '../../daemon/state/resources';
import { InstallerErrors } from '../errors';
import { installObjects } from '../manifests/render';
import { defaultValues } from '../manifests/values';
import { ApiServerPublisher, PUBLISHED_LABEL, sandboxViewOf, type SandboxView } from './apiserver-publisher';
import { isAlive, logTail, processRef, sleep, type ProcessRef } from './host';
import { launchDetached } from './launch';
import { podKey } from './pods';
import type { ClusterState, Layout } from './state';
import { TOP_IP, netnsPath } from './topology';

export const RELAY_PORT = 6443;
export const RELAY_CGROUP_NAME = 'nodemesh-apiserver-relay';
export const SYSTEM_NAMESPACE = 'nodemesh-system';
export const NODE_SERVICE_ACCOUNT = 'nodemesh-node';
export const IDENTITY_SERVICE_ACCOUNT = 'nodemesh-identity';
export const IDENTITY_AUDIENCE = 'nodemesh-identity';
/** No kubelet renews the tokens while no nodemesh command runs: a day, so a sandbox session
 * outlives them rarely (a real cluster's projected tokens are renewed by the kubelet). */
export const TOKEN_SECONDS = 86_400;
const RELAY_READY_TIMEOUT_MS = 10_000;

export interface ApiServerRecord {
  /** The user's kubeconfig (absolute): the CLI reaches the server with it directly. */
  kubeconfig: string;
  /** Its server URL. */
  server: string;
  /** Where the sandbox's processes reach it (the relay in the top namespace). */
  relayAddress: string;
  dir: string;
  relayCgroup: string;
  relayLog: string;
  relay?: ProcessRef;
  identityKubeconfig: string;
}

export const nodeKubeconfigFile = (rec: ApiServerRecord, node: string): string => path.join(rec.dir, `${node}.kubeconfig`);
export const nodeDaemonPodName = (node: string): string => `nodemesh-node-${node}`;

export function loadAdminKubeconfig(file: string): k8s.KubeConfig {
  const abs = path.resolve(file);
  const kc = new k8s.KubeConfig();
  try {
    kc.loadFromFile(abs);
  } catch (e) {
    throw InstallerErrors.NODEMESH_E_KUBE_CONFIG({ file: abs, reason: (e as Error).message }, { cause: e });
  }
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw InstallerErrors.NODEMESH_E_KUBE_CONFIG({ file: abs, reason: 'its current context names no cluster with a server' });
  return kc;
}

export function apiServerRecord(kubeconfig: string, stateDir: string, cgroupRoot: string, logsDir: string): ApiServerRecord {
  const abs = path.resolve(kubeconfig);
  const dir = path.join(stateDir, 'apiserver');
  return {
    kubeconfig: abs, server: loadAdminKubeconfig(abs).getCurrentCluster()!.server,
    relayAddress: `${TOP_IP}:${RELAY_PORT}`, dir,
    relayCgroup: path.join(cgroupRoot, RELAY_CGROUP_NAME), relayLog: path.join(logsDir, 'apiserver-relay.log'),
    identityKubeconfig: path.join(dir, 'identity.kubeconfig'),
  };
}

/** host and port of a server URL (pure). */
export function serverEndpoint(server: string): { host: string; port: number } {
  const u = new URL(server);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return { host, port: u.port ? Number(u.port) : u.protocol === 'http:' ? 80 : 443 };
}

/** The name the server's certificate is checked against through the relay (pure): its own
 * host name; a loopback IP is `localhost` (TLS sends no IP as SNI; the certificates of local
 * API servers name localhost). */
export function tlsServerName(server: string, existing?: string): string {
  if (existing) return existing;
  const { host } = serverEndpoint(server);
  if (net.isIP(host) && (host.startsWith('127.') || host === '::1')) return 'localhost';
  return host;
}

/** A kubeconfig for a sandbox process: the admin's cluster (CA) through the relay, a token user. */
export function relayedKubeconfig(admin: k8s.KubeConfig, relayAddress: string, user: string, token: string): string {
  const cluster = admin.getCurrentCluster()!;
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'sandbox-apiserver', server: `https://${relayAddress}`, caData: cluster.caData, caFile: cluster.caFile, skipTLSVerify: cluster.skipTLSVerify, tlsServerName: tlsServerName(cluster.server, cluster.tlsServerName) }],
    users: [{ name: user, token }],
    contexts: [{ name: 'sandbox', cluster: 'sandbox-apiserver', user }],
    currentContext: 'sandbox',
  });
  return kc.exportConfig();
}

// --- the relay ---------------------------------------------------------------------------

export function relayMain(repoRoot: string): string {
  return path.join(repoRoot, 'dist', 'installer', 'sandbox', 'apiserver-relay.js');
}

export async function startRelay(rec: ApiServerRecord, topNetns: string, repoRoot: string): Promise<ProcessRef> {
  const { host, port } = serverEndpoint(rec.server);
  fs.mkdirSync(rec.relayCgroup, { recursive: true });
  fs.writeFileSync(rec.relayLog, '', { flag: 'a' });
  const offset = fs.statSync(rec.relayLog).size;
  const child = launchDetached({
    cgroup: rec.relayCgroup, netnsPath: '/proc/self/ns/net', // stays in the CLI's (host) namespace
    argv: [process.execPath, relayMain(repoRoot), netnsPath(topNetns), TOP_IP, String(RELAY_PORT), host, String(port)],
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' }, logFile: rec.relayLog,
  });
  let exited: string | undefined;
  child.once('exit', (code, signal) => { exited = signal ? `killed by ${signal}` : `exit status ${code}`; });
  const ref = child.pid !== undefined ? processRef(child.pid) : undefined;
  const deadline = Date.now() + RELAY_READY_TIMEOUT_MS;
  for (;;) {
    const text = fs.readFileSync(rec.relayLog, 'utf8').slice(offset);
    if (ref && text.includes('apiserver relay ready')) return ref;
    if (exited !== undefined || !ref || Date.now() > deadline) {
      throw InstallerErrors.NODEMESH_E_SANDBOX_APISERVER_PUBLISH({
        object: `the relay to it on ${rec.relayAddress}`, server: rec.server,
        reason: `${exited ?? (ref ? 'no ready line' : 'could not start')}; see ${rec.relayLog}${logTail(rec.relayLog) ? `:\n${logTail(rec.relayLog)}` : ''}`,
      });
    }
    await sleep(50);
  }
}

export function relayIsAlive(rec: ApiServerRecord | undefined): boolean {
  return isAlive(rec?.relay);
}

// --- publishing --------------------------------------------------------------------------

type Obj = Record<string, any> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [k: string]: any } };

/** nodemesh's install objects a bare API server needs for the Kubernetes path: namespace,
 * ServiceAccounts, RBAC, CRDs, the CA Secret and root ConfigMap; not the workloads (the
 * sandbox runs those processes) nor what only they need (Service, PodDisruptionBudget). */
export function installObjectsForSandbox(): Obj[] {
  const skip = new Set(['DaemonSet', 'Deployment', 'PodDisruptionBudget', 'Service']);
  return (installObjects(defaultValues()) as unknown as Obj[]).filter((o) => !skip.has(o.kind));
}

/** The Pod the node DaemonSet would have made on each node: what the daemon's tokens are
 * bound to, and what the identity service's node binding finds (its service account on that
 * node). Host network, Running as long as the node's daemon is. */
export function nodeDaemonPods(c: ClusterState): Pod[] {
  return c.nodes.map((n) => ({
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: nodeDaemonPodName(n.name), namespace: SYSTEM_NAMESPACE, labels: { 'app.kubernetes.io/name': 'nodemesh-node' } },
    spec: { nodeName: n.name, serviceAccountName: NODE_SERVICE_ACCOUNT, hostNetwork: true, containers: [{ name: 'nodemesh-node', image: 'nodemesh-sandbox/nodemesh-node' } as Pod['spec']['containers'][number]] },
    status: { phase: 'Running', podIP: n.ip, podIPs: [{ ip: n.ip }], hostIP: n.ip },
  } as Pod));
}

/** The whole sandbox as the API server should show it (pure given the directory's contents). */
export function sandboxView(c: ClusterState, l: Layout): SandboxView {
  const objs = readAllObjects(l.objects).objects as unknown as Obj[];
  const of = (kind: string) => objs.filter((o) => o.apiVersion === 'v1' && o.kind === kind);
  const known = new Set(['Namespace', 'Pod', 'Service']);
  const others = objs.filter((o) => !(o.apiVersion === 'v1' && known.has(o.kind)) && o.kind !== 'AuthorizationPolicy' && o.kind !== 'PeerAuthentication');
  const policies = objs.filter((o) => o.kind === 'AuthorizationPolicy' || o.kind === 'PeerAuthentication');
  const v = sandboxViewOf(c.nodes, { namespaces: of('Namespace') as never, pods: of('Pod') as never, services: of('Service') as never, others: [...others, ...policies] as never });
  const install = installObjectsForSandbox();
  // nodemesh-system as a namespace of the view (one apply of it per publish, with its labels).
  const namespaces = [...v.namespaces, ...install.filter((o) => o.kind === 'Namespace').map((o) => ({ name: o.metadata.name, ...(o.metadata.labels ? { labels: o.metadata.labels } : {}) }))];
  return { ...v, namespaces, pods: [...v.pods, ...nodeDaemonPods(c)], manifests: [...install.filter((o) => o.kind !== 'Namespace'), ...(v.manifests ?? [])] };
}

/** Publishes, then takes the uids the API server gave the pods into the sandbox's records.
 * Returns the uids by ns/name. */
export async function publishSandbox(c: ClusterState, l: Layout): Promise<Map<string, string>> {
  const rec = c.apiserver!;
  const kc = loadAdminKubeconfig(rec.kubeconfig);
  await new ApiServerPublisher(kc).publish(sandboxView(c, l));
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const uids = new Map<string, string>();
  try {
    const list = await core.listPodForAllNamespaces({ labelSelector: `${PUBLISHED_LABEL}=true` });
    for (const p of list.items) uids.set(podKey(p.metadata!.namespace!, p.metadata!.name!), p.metadata!.uid!);
  } catch (e) {
    throw InstallerErrors.NODEMESH_E_SANDBOX_APISERVER_PUBLISH({ object: 'the list of pods', server: rec.server, reason: (e as Error).message }, { cause: e });
  }
  for (const p of readAllObjects(l.objects).objects as unknown as Pod[]) {
    if (p.apiVersion !== 'v1' || p.kind !== 'Pod') continue;
    const k = podKey(p.metadata.namespace ?? 'default', p.metadata.name);
    const uid = uids.get(k);
    if (!uid) continue;
    if (p.metadata.uid !== uid) writeObject(l.objects, { ...p, metadata: { ...p.metadata, uid } } as unknown as StoredObject);
    const pr = c.pods[k];
    if (pr) pr.uid = uid;
  }
  return uids;
}

/** Deletes everything the sandbox published (`local down`, a failed `local up`). */
export async function unpublishSandbox(rec: ApiServerRecord): Promise<string[]> {
  const r = await new ApiServerPublisher(loadAdminKubeconfig(rec.kubeconfig)).publish({ nodes: [], namespaces: [], pods: [], services: [], manifests: [] });
  return r.deleted;
}

// --- credentials -------------------------------------------------------------------------

/** TokenRequest on serviceaccounts/<sa>/token, as a kubelet asks for a projected token:
 * bound to a pod when one is given, for `audience` (absent: the API server's own). */
async function tokenRequest(kc: k8s.KubeConfig, server: string, r: { namespace: string; serviceAccount: string; pod?: { name: string; uid: string }; audience?: string }): Promise<string> {
  try {
    if (r.pod && r.audience) {
      return (await requestProjectedToken(kc, { namespace: r.namespace, serviceAccount: r.serviceAccount, pod: r.pod, audience: r.audience, expirationSeconds: TOKEN_SECONDS })).token;
    }
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const res = await core.createNamespacedServiceAccountToken({
      name: r.serviceAccount, namespace: r.namespace,
      body: {
        apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
        spec: { audiences: [], expirationSeconds: TOKEN_SECONDS, ...(r.pod ? { boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: r.pod.name, uid: r.pod.uid } } : {}) },
      },
    });
    if (!res.status?.token) throw new Error('the TokenRequest came back without a token');
    return res.status.token;
  } catch (e) {
    const what = `TokenRequest for ${r.namespace}/${r.serviceAccount}${r.pod ? ` bound to pod ${r.pod.name}` : ''}${r.audience ? ` (audience ${r.audience})` : ''}`;
    throw InstallerErrors.NODEMESH_E_SANDBOX_APISERVER_PUBLISH({ object: what, server, reason: (e as Error).message }, { cause: e });
  }
}

/** What a kubelet and the install would hand the processes: the identity service's kubeconfig
 * (its ServiceAccount's token), and per node a kubeconfig and the identity credential, both
 * tokens of nodemesh-node bound to the node's daemon pod (the credential for the audience
 * nodemesh-identity, which TokenReview checks). */
export async function writeProcessCredentials(c: ClusterState, uids: ReadonlyMap<string, string>): Promise<void> {
  const rec = c.apiserver!;
  const admin = loadAdminKubeconfig(rec.kubeconfig);
  fs.mkdirSync(rec.dir, { recursive: true, mode: 0o700 });
  const write = (file: string, text: string) => { fs.writeFileSync(file, text, { mode: 0o600 }); fs.chmodSync(file, 0o600); };
  const idToken = await tokenRequest(admin, rec.server, { namespace: SYSTEM_NAMESPACE, serviceAccount: IDENTITY_SERVICE_ACCOUNT });
  write(rec.identityKubeconfig, relayedKubeconfig(admin, rec.relayAddress, IDENTITY_SERVICE_ACCOUNT, idToken));
  for (const n of c.nodes) {
    const name = nodeDaemonPodName(n.name);
    const uid = uids.get(podKey(SYSTEM_NAMESPACE, name));
    if (!uid) throw InstallerErrors.NODEMESH_E_SANDBOX_APISERVER_PUBLISH({ object: `Pod ${SYSTEM_NAMESPACE}/${name}`, server: rec.server, reason: 'it is not in the API server after publishing' });
    const pod = { name, uid };
    const apiToken = await tokenRequest(admin, rec.server, { namespace: SYSTEM_NAMESPACE, serviceAccount: NODE_SERVICE_ACCOUNT, pod });
    write(nodeKubeconfigFile(rec, n.name), relayedKubeconfig(admin, rec.relayAddress, NODE_SERVICE_ACCOUNT, apiToken));
    const idCred = await tokenRequest(admin, rec.server, { namespace: SYSTEM_NAMESPACE, serviceAccount: NODE_SERVICE_ACCOUNT, pod, audience: IDENTITY_AUDIENCE });
    fs.mkdirSync(path.dirname(n.credentialFile), { recursive: true });
    write(n.credentialFile, idCred);
  }
}

/** The node daemon's source: the API server, not the object directory. */
export function daemonSourceEnv(rec: ApiServerRecord, node: string): Record<string, string> {
  return { NODEMESH_SOURCE: 'kube', NODEMESH_KUBECONFIG: nodeKubeconfigFile(rec, node) };
}

/** nodemesh-identity in Kubernetes mode: TokenReview and node binding through the API; the CA
 * stays in the sandbox's CA directory (NODEMESH_CA_DIR), whose root the daemons read. */
export function identitySourceEnv(rec: ApiServerRecord): Record<string, string> {
  return { NODEMESH_SOURCE: 'kube', NODEMESH_KUBECONFIG: rec.identityKubeconfig, NODEMESH_TOKEN_AUDIENCE: IDENTITY_AUDIENCE };
}
