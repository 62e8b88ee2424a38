// What `local apply` / `local delete` will do, decided before anything changes (pure). Every
// cluster-level check (the namespace exists, the node exists, the VIP is free, the pod spec
// is unchanged) runs here, so a rejected input changes nothing, like an API server that
// validates a whole request before it stores it.
//
// Besides Namespaces, Pods, Services and policies, every other kind with a schema is stored
// (./stored-kinds.ts says which are acted on); Deployments and ReplicaSets are reconciled
// here into ReplicaSets and pods as their controllers would (./workloads.ts), so scaling and
// a changed template are part of the same all-or-nothing plan.
import { randomUUID } from 'node:crypto';
import {
  ANNOTATION_SANDBOX_CGROUP, ANNOTATION_SANDBOX_NETNS, ROOT_NAMESPACE, type AuthorizationPolicy, type Labels, type Namespace,
  type PeerAuthentication, type Pod, type Resource, type Service,
} from '../../daemon/state/resources';
import { describeObject, isResource, parseIPv4, type ManifestEntry, type OtherObject } from '../../daemon/state/manifest';
import { InstallerErrors, type NodemeshError } from '../errors';
import { allocateClusterIP, inServiceCIDR } from './services';
import { enforcementOf } from '../../daemon/policy/enforcement';
import { resourceLabel, storedKindRole } from './stored-kinds';
import { newUid, ownedBy, podFor, replicaSetFor, scale, type Workload } from './workloads';

export type Action = 'created' | 'configured' | 'unchanged';

type AnyObject = Resource | OtherObject;

export interface Planned<T extends AnyObject> {
  object: T;
  action: Action;
  previous?: T;
  /** Created because the apply needs it, not because the input named it (nodemesh-system). */
  implicit?: boolean;
}

export type Policy = AuthorizationPolicy | PeerAuthentication;
export const POLICY_KINDS: readonly string[] = Object.freeze(['AuthorizationPolicy', 'PeerAuthentication']);
export const isPolicy = (o: { kind: string }): o is Policy => POLICY_KINDS.includes(o.kind);

export interface ApplyPlan {
  namespaces: Planned<Namespace>[];
  services: Planned<Service>[];
  /** New pods carry spec.nodeName (scheduled) and a uid; the runtime starts them. */
  pods: Planned<Pod>[];
  /** AuthorizationPolicies and PeerAuthentications, in input order. */
  policies: Planned<Policy>[];
  /** Every other kind with a schema, stored as written (Deployments, ReplicaSets, ConfigMaps,
   * Secrets, ServiceAccounts, Gateway API kinds, ...), and the ReplicaSets Deployments make. */
  stored: Planned<OtherObject>[];
  /** Pods a ReplicaSet no longer wants (scaled down, or its Deployment's template changed). */
  podDeletions: Pod[];
  /** Stored objects to delete (a Deployment's ReplicaSet for an older template). */
  storedDeletions: OtherObject[];
  /** Per stored object of a kind the sandbox does not act on: one line saying so. */
  notices: string[];
  errors: NodemeshError[];
}

export interface ClusterView {
  namespaces: readonly Namespace[];
  pods: readonly Pod[];
  services: readonly Service[];
  policies: readonly Policy[];
  /** Stored objects of the other kinds (see ApplyPlan.stored). */
  others?: readonly OtherObject[];
  nodes: readonly string[];
  serviceCIDR: string;
}

/** The namespace mesh-wide policies live in, as `local apply` creates it when a policy
 * names it and it does not exist (Istio's root namespace exists with the control plane). */
export function rootNamespaceObject(): Namespace {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ROOT_NAMESPACE, uid: randomUUID(), creationTimestamp: new Date().toISOString() } as Namespace['metadata'] };
}

const SANDBOX_ANNOTATIONS = [ANNOTATION_SANDBOX_NETNS, ANNOTATION_SANDBOX_CGROUP];
const key = (o: AnyObject): string => describeObject(o);
const where = (e: ManifestEntry): string => `${e.file}: document ${e.document} (line ${e.line})`;
const LIVE = new Set(['Pending', 'Running']);

/** JSON with sorted keys, for comparing user-owned parts of objects. */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) => {
    if (val && typeof val === 'object' && !Array.isArray(val)) {
      return Object.fromEntries(Object.entries(val as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)));
    }
    return val;
  });
}

/** The first path at which two JSON values differ (`spec.containers[0].args`). */
export function firstDifference(a: unknown, b: unknown, path = ''): string | undefined {
  if (canonical(a) === canonical(b)) return undefined;
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
    return path;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const ks = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of ks) {
      const d = firstDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
      if (d) return d;
    }
  }
  return path;
}

function userAnnotations(a: Labels | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(a ?? {})) if (!SANDBOX_ANNOTATIONS.includes(k)) out[k] = v;
  return out;
}

/** Metadata of an applied object: user labels/annotations; uid, creation time and the
 * sandbox's own annotations kept from the stored object. */
function mergeMeta(applied: AnyObject, stored: AnyObject | undefined): Resource['metadata'] {
  const { uid: _u, resourceVersion: _r, generation: _g, ...user } = applied.metadata;
  const kept: Record<string, string> = {};
  for (const k of SANDBOX_ANNOTATIONS) {
    const v = stored?.metadata.annotations?.[k];
    if (v !== undefined) kept[k] = v;
  }
  const annotations = { ...userAnnotations(applied.metadata.annotations), ...kept };
  const meta: Record<string, unknown> = {
    ...user,
    uid: stored?.metadata.uid ?? randomUUID(),
    creationTimestamp: (stored?.metadata as { creationTimestamp?: string } | undefined)?.creationTimestamp ?? new Date().toISOString(),
  };
  if (Object.keys(annotations).length > 0) meta.annotations = annotations;
  else delete meta.annotations;
  return meta as unknown as Resource['metadata'];
}

const metaChanged = (a: AnyObject, b: AnyObject): boolean =>
  canonical(a.metadata.labels ?? {}) !== canonical(b.metadata.labels ?? {}) ||
  canonical(userAnnotations(a.metadata.annotations)) !== canonical(userAnnotations(b.metadata.annotations));

/** Drops what the cluster owns (status) from an applied object. */
function strip<T extends AnyObject>(o: T): T {
  const { status: _s, ...rest } = o as T & { status?: unknown };
  return rest as T;
}

type TypedEntry = ManifestEntry & { object: Resource };

export function planApply(view: ClusterView, entries: readonly ManifestEntry[]): ApplyPlan {
  const plan: ApplyPlan = { namespaces: [], services: [], pods: [], policies: [], stored: [], podDeletions: [], storedDeletions: [], notices: [], errors: [] };
  const byKey = new Map<string, AnyObject>();
  for (const o of [...view.namespaces, ...view.pods, ...view.services, ...view.policies, ...(view.others ?? [])]) byKey.set(key(o), o);
  const typed = entries.filter((e): e is TypedEntry => isResource(e.object));
  const others = entries.filter((e) => !isResource(e.object));

  // The same object twice across files: last one would silently win; say so instead.
  const seen = new Map<string, ManifestEntry>();
  for (const e of entries) {
    const k = key(e.object);
    const first = seen.get(k);
    if (first) {
      plan.errors.push(InstallerErrors.NODEMESH_E_SANDBOX_APPLY_REJECTED({ problems: [`${where(e)}: ${k} is also defined in ${where(first)}; keep one definition`] }));
    }
    seen.set(k, e);
  }

  const namespaceNames = new Set(view.namespaces.map((n) => n.metadata.name));
  for (const e of typed) {
    if (e.object.kind !== 'Namespace') continue;
    const applied = strip(e.object);
    const stored = byKey.get(key(applied)) as Namespace | undefined;
    const object: Namespace = { ...applied, metadata: mergeMeta(applied, stored) };
    plan.namespaces.push({ object, action: !stored ? 'created' : metaChanged(object, stored) ? 'configured' : 'unchanged', previous: stored });
    namespaceNames.add(object.metadata.name);
  }
  const needNamespace = (e: ManifestEntry): boolean => {
    const ns = e.object.metadata.namespace;
    if (ns === undefined) return true; // cluster-scoped
    if (namespaceNames.has(ns)) return true;
    if (ns === ROOT_NAMESPACE && isPolicy(e.object)) {
      plan.namespaces.push({ object: rootNamespaceObject(), action: 'created', implicit: true });
      namespaceNames.add(ns);
      return true;
    }
    plan.errors.push(InstallerErrors.NODEMESH_E_SANDBOX_NAMESPACE_NOT_FOUND({ object: key(e.object), namespace: ns, where: where(e) }));
    return false;
  };

  // Services: keep allocated VIPs, honour requested ones, refuse conflicts.
  const vipOwner = new Map<string, string>();
  for (const s of view.services) if (s.spec.clusterIP) vipOwner.set(s.spec.clusterIP, key(s));
  const pendingAlloc: { e: ManifestEntry; object: Service; stored?: Service }[] = [];
  for (const e of typed) {
    if (e.object.kind !== 'Service') continue;
    if (!needNamespace(e)) continue;
    const applied = strip(e.object);
    const k = key(applied);
    const stored = byKey.get(k) as Service | undefined;
    const requested = applied.spec.clusterIP || undefined;
    const { clusterIPs: _ips, ...spec } = applied.spec;
    const object: Service = { ...applied, metadata: mergeMeta(applied, stored), spec };
    if (stored?.spec.clusterIP && requested && requested !== stored.spec.clusterIP) {
      plan.errors.push(InstallerErrors.NODEMESH_E_SANDBOX_IMMUTABLE({ object: k, field: 'spec.clusterIP', where: where(e),
        hint: `it is ${stored.spec.clusterIP}; remove spec.clusterIP to keep it, or delete the Service and apply it again` }));
      continue;
    }
    if (stored?.spec.clusterIP) {
      object.spec.clusterIP = stored.spec.clusterIP;
    } else if (requested) {
      const owner = vipOwner.get(requested);
      if (owner && owner !== k) {
        plan.errors.push(InstallerErrors.NODEMESH_E_SANDBOX_IP_CONFLICT({ object: k, ip: requested, owner, where: where(e) }));
        continue;
      }
      if (!inServiceCIDR(view.serviceCIDR, requested) || parseIPv4(requested) === undefined) {
        plan.errors.push(InstallerErrors.NODEMESH_E_SANDBOX_IP_CONFLICT({ object: k, ip: requested, owner: `nothing: it is outside the service range ${view.serviceCIDR}`, where: where(e) }));
        continue;
      }
      vipOwner.set(requested, k);
    } else {
      pendingAlloc.push({ e, object, stored });
    }
    if (object.spec.clusterIP) {
      object.spec.clusterIPs = [object.spec.clusterIP];
      plan.services.push({ object, action: !stored ? 'created' : canonical(object.spec) !== canonical(stored.spec) || metaChanged(object, stored) ? 'configured' : 'unchanged', previous: stored });
    }
  }
  // Requested addresses first (above), then allocate, so an allocation never takes an
  // address another object in the same apply asked for.
  for (const p of pendingAlloc) {
    try {
      const ip = allocateClusterIP(view.serviceCIDR, new Set(vipOwner.keys()));
      vipOwner.set(ip, key(p.object));
      p.object.spec.clusterIP = ip;
      p.object.spec.clusterIPs = [ip];
      plan.services.push({ object: p.object, action: 'created', previous: p.stored });
    } catch (err) {
      plan.errors.push(err as NodemeshError);
    }
  }

  // Pods: new ones are scheduled (spec.nodeName honoured, else the least loaded node);
  // existing ones may only change labels and annotations, as in Kubernetes.
  const load = new Map<string, number>(view.nodes.map((n) => [n, 0]));
  for (const p of view.pods) {
    if (p.spec.nodeName && LIVE.has(p.status?.phase ?? 'Pending')) load.set(p.spec.nodeName, (load.get(p.spec.nodeName) ?? 0) + 1);
  }
  const schedule = (applied: Pod): Pod => {
    let node = applied.spec.nodeName;
    if (!node) {
      node = [...load.entries()].sort((a, b) => a[1] - b[1] || view.nodes.indexOf(a[0]) - view.nodes.indexOf(b[0]))[0]?.[0];
    }
    load.set(node!, (load.get(node!) ?? 0) + 1);
    return { ...applied, metadata: mergeMeta(applied, undefined), spec: { ...applied.spec, nodeName: node } };
  };
  for (const e of typed) {
    if (e.object.kind !== 'Pod') continue;
    if (!needNamespace(e)) continue;
    const applied = strip(e.object);
    const k = key(applied);
    const stored = byKey.get(k) as Pod | undefined;
    if (applied.spec.nodeName && !view.nodes.includes(applied.spec.nodeName)) {
      plan.errors.push(InstallerErrors.NODEMESH_E_SANDBOX_UNKNOWN_NODE({ object: k, node: applied.spec.nodeName, nodes: [...view.nodes], where: where(e) }));
      continue;
    }
    if (stored) {
      const wanted = { ...applied.spec, nodeName: applied.spec.nodeName ?? stored.spec.nodeName };
      const diff = firstDifference(wanted, stored.spec);
      if (diff !== undefined) {
        plan.errors.push(InstallerErrors.NODEMESH_E_SANDBOX_IMMUTABLE({ object: k, field: `spec${diff.startsWith('[') ? '' : '.'}${diff}`, where: where(e),
          hint: "a pod's spec cannot change once it runs; only labels and annotations can: 'nodemesh local delete' it and apply it again" }));
        continue;
      }
      const object: Pod = { ...stored, metadata: mergeMeta(applied, stored) };
      plan.pods.push({ object, action: metaChanged(object, stored) ? 'configured' : 'unchanged', previous: stored });
      continue;
    }
    plan.pods.push({ object: schedule(applied), action: 'created' });
  }

  // Policies: stored as written (the daemons evaluate them); generation counts spec changes,
  // as the API server does for custom resources.
  for (const e of typed) {
    if (!isPolicy(e.object)) continue;
    if (!needNamespace(e)) continue;
    const refusal = refuseUnenforceable(e.object, (ns, name) => isWaypointGatewayIn([...(view.others ?? []), ...others.map((o) => o.object as OtherObject)], ns, name)); // issue 9
    if (refusal) {
      plan.errors.push(InstallerErrors.NODEMESH_E_SANDBOX_APPLY_REJECTED({ problems: [`${where(e)}: ${key(e.object)}: ${refusal}`] }));
      continue;
    }
    // A policy without spec is stored with `spec: {}`: the evaluators read p.spec.* directly.
    const applied = { ...strip(e.object), spec: e.object.spec ?? {} } as Policy;
    const stored = byKey.get(key(applied)) as Policy | undefined;
    const specChanged = !stored || canonical(applied.spec) !== canonical(stored.spec ?? {});
    const generation = (stored?.metadata.generation ?? 0) + (specChanged ? 1 : 0);
    const object = { ...applied, metadata: { ...mergeMeta(applied, stored), generation } } as Policy;
    const action: Action = !stored ? 'created' : specChanged || metaChanged(object, stored) ? 'configured' : 'unchanged';
    plan.policies.push({ object, action, previous: stored });
  }

  planStored(view, others, byKey, needNamespace, schedule, plan);
  return plan;
}

/** Everything of an object but what the cluster owns (metadata, status). */
function contentOf(o: AnyObject): unknown {
  const { metadata: _m, status: _s, ...rest } = o as AnyObject & { status?: unknown };
  return rest;
}

/** A policy the node daemons cannot enforce and no waypoint enforces yet is refused here,
 * never stored and ignored (daemon/policy/enforcement.ts says where each policy holds). */
export function refuseUnenforceable(p: Policy, waypointExists?: (namespace: string, name: string) => boolean): string | undefined {
  if (p.kind !== 'AuthorizationPolicy') return undefined;
  const e = enforcementOf(p);
  if (e.where !== 'waypoint') return undefined;
  // Issue 9: a waypoint Gateway (class nodemesh-waypoint) in the namespace enforces it.
  const ns = p.metadata.namespace ?? 'default';
  const gateways = (p.spec?.targetRefs ?? []).filter((r) => r.kind === 'Gateway');
  if (waypointExists && gateways.every((r) => waypointExists(ns, r.name))) return undefined;
  return `${e.detail}; no waypoint Gateway (class nodemesh-waypoint) of that name exists in its namespace, so it is refused rather than stored and ignored: ` +
    'create the waypoint first (nodemesh waypoint apply -n <namespace>), or attach it to a Service (targetRefs: [{ kind: Service, name: ... }], enforced at L4 by the node daemons) or select the workloads with selector';
}

/** Whether a Gateway of class nodemesh-waypoint is among these objects (issue 9). */
function isWaypointGatewayIn(objects: readonly OtherObject[], namespace: string, name: string): boolean {
  return objects.some((o) => o.kind === 'Gateway' && o.metadata.name === name && (o.metadata.namespace ?? 'default') === namespace &&
    (o.spec as { gatewayClassName?: string } | undefined)?.gatewayClassName === 'nodemesh-waypoint');
}

/** Other kinds: stored as written; Deployments and ReplicaSets reconciled into pods. */
function planStored(view: ClusterView, entries: readonly ManifestEntry[], byKey: ReadonlyMap<string, AnyObject>,
  needNamespace: (e: ManifestEntry) => boolean, schedule: (p: Pod) => Pod, plan: ApplyPlan): void {
  const planObject = (applied: OtherObject): Planned<OtherObject> => {
    const stored = byKey.get(key(applied)) as OtherObject | undefined;
    const object = { ...applied, metadata: mergeMeta(applied, stored) } as OtherObject;
    const action: Action = !stored ? 'created' : canonical(contentOf(applied)) !== canonical(contentOf(stored)) || metaChanged(object, stored) ? 'configured' : 'unchanged';
    const p: Planned<OtherObject> = { object, action, ...(stored ? { previous: stored } : {}) };
    plan.stored.push(p);
    return p;
  };
  const ownPods = (rs: OtherObject): Pod[] => view.pods.filter((p) => p.metadata.namespace === rs.metadata.namespace && ownedBy(p, 'ReplicaSet', rs.metadata.name));
  const reconcileReplicaSet = (rs: Workload): void => {
    const dec = scale(rs.spec.replicas ?? 1, ownPods(rs));
    plan.podDeletions.push(...dec.remove);
    for (let i = 0; i < dec.create; i++) plan.pods.push({ object: schedule(podFor(rs)), action: 'created' });
  };
  for (const e of entries) {
    if (!needNamespace(e)) continue;
    const { object } = planObject(strip(e.object as OtherObject));
    const role = storedKindRole(object);
    if (role === 'not-acted-on') {
      plan.notices.push(`${resourceLabel(object)}: stored; the sandbox does not act on kind ${object.kind} (a cluster would run its controller)`);
    }
    if (role !== 'workload') continue;
    if (object.kind === 'ReplicaSet') {
      reconcileReplicaSet(object as Workload);
      continue;
    }
    const d = object as Workload;
    const wanted = replicaSetFor(d);
    const rs = planObject(wanted).object as Workload;
    if (!rs.metadata.uid) rs.metadata.uid = newUid();
    // A changed template: the old ReplicaSets and their pods go (no rolling window here).
    for (const old of view.others ?? []) {
      if (old.kind !== 'ReplicaSet' || old.metadata.namespace !== d.metadata.namespace || old.metadata.name === rs.metadata.name) continue;
      if (!ownedBy(old, 'Deployment', d.metadata.name)) continue;
      plan.storedDeletions.push(old);
      plan.podDeletions.push(...ownPods(old));
    }
    reconcileReplicaSet(rs);
  }
}

export interface DeletePlan {
  namespaces: Namespace[];
  services: Service[];
  pods: Pod[];
  policies: Policy[];
  /** Stored objects of the other kinds (a Deployment takes its ReplicaSets along). */
  others: OtherObject[];
  notFound: string[];
}

/** Objects to delete for these entries; a Namespace takes everything in it along, a
 * Deployment its ReplicaSets, a ReplicaSet its pods (as the garbage collector would). */
export function planDelete(view: ClusterView, entries: readonly ManifestEntry[]): DeletePlan {
  const plan: DeletePlan = { namespaces: [], services: [], pods: [], policies: [], others: [], notFound: [] };
  const add = <T extends AnyObject>(list: T[], o: T): void => {
    if (!list.some((x) => key(x) === key(o))) list.push(o);
  };
  const others = view.others ?? [];
  const addOther = (o: OtherObject): void => {
    add(plan.others, o);
    const ns = o.metadata.namespace;
    if (o.kind === 'Deployment') {
      for (const rs of others) if (rs.kind === 'ReplicaSet' && rs.metadata.namespace === ns && ownedBy(rs, 'Deployment', o.metadata.name)) addOther(rs);
    } else if (o.kind === 'ReplicaSet') {
      for (const p of view.pods) if (p.metadata.namespace === ns && ownedBy(p, 'ReplicaSet', o.metadata.name)) add(plan.pods, p);
    }
  };
  for (const e of entries) {
    const k = key(e.object);
    const o = e.object;
    if (!isResource(o)) {
      const found = others.find((x) => key(x) === k);
      if (found) addOther(found); else plan.notFound.push(k);
    } else if (o.kind === 'Namespace') {
      const ns = view.namespaces.find((n) => n.metadata.name === o.metadata.name);
      if (!ns) { plan.notFound.push(k); continue; }
      add(plan.namespaces, ns);
      for (const p of view.pods) if (p.metadata.namespace === ns.metadata.name) add(plan.pods, p);
      for (const s of view.services) if (s.metadata.namespace === ns.metadata.name) add(plan.services, s);
      for (const p of view.policies) if (p.metadata.namespace === ns.metadata.name) add(plan.policies, p);
      for (const x of others) if (x.metadata.namespace === ns.metadata.name) add(plan.others, x);
    } else if (isPolicy(o)) {
      const p = view.policies.find((x) => key(x) === k);
      if (p) add(plan.policies, p); else plan.notFound.push(k);
    } else if (o.kind === 'Pod') {
      const p = view.pods.find((x) => key(x) === k);
      if (p) add(plan.pods, p); else plan.notFound.push(k);
    } else if (o.kind === 'Service') {
      const s = view.services.find((x) => key(x) === k);
      if (s) add(plan.services, s); else plan.notFound.push(k);
    }
  }
  return plan;
}
