// Deployments and ReplicaSets in the sandbox, as their controllers do it (pure): a
// Deployment owns one ReplicaSet per pod template, named `<deployment>-<pod-template-hash>`;
// a ReplicaSet owns its pods, named `<replicaset>-<5 random characters>`, with the
// template's labels (plus pod-template-hash), service account and containers, and an
// owner reference to the ReplicaSet. Re-applying with another replica count scales; a
// changed Deployment template makes a new ReplicaSet and replaces the old one's pods (the
// sandbox has no rolling window: old pods go, new pods start, in one apply).
import { randomInt, randomUUID } from 'node:crypto';
import type { OtherObject } from '../../daemon/state/manifest';
import type { Labels, ObjectMeta, Pod } from '../../daemon/state/resources';

export const LABEL_POD_TEMPLATE_HASH = 'pod-template-hash';

/** k8s.io/apimachinery/pkg/util/rand's alphabet: no vowels (no words), no 0/1/3 (look-alikes). */
const SAFE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface PodTemplate {
  metadata?: { labels?: Labels; annotations?: Labels };
  spec: Pod['spec'];
}

export interface WorkloadSpec {
  replicas?: number;
  selector: { matchLabels?: Labels };
  template: PodTemplate;
}

export type Workload = OtherObject & { spec: WorkloadSpec };

const ownerRefsOf = (o: { metadata: ObjectMeta }): OwnerReference[] =>
  ((o.metadata as ObjectMeta & { ownerReferences?: OwnerReference[] }).ownerReferences ?? []);

export function ownedBy(o: { metadata: ObjectMeta }, kind: string, name: string): boolean {
  return ownerRefsOf(o).some((r) => r.kind === kind && r.name === name && r.controller !== false);
}

/** FNV-1a, 32 bit, as the Deployment controller hashes a pod template. */
function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** rand.SafeEncodeString: each character of the decimal hash mapped into the safe alphabet. */
function safeEncode(s: string): string {
  return [...s].map((c) => SAFE_ALPHABET[c.charCodeAt(0) % SAFE_ALPHABET.length]).join('');
}

/** JSON with sorted keys: equal templates hash equal whatever the key order. */
function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) =>
    val && typeof val === 'object' && !Array.isArray(val)
      ? Object.fromEntries(Object.entries(val as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : val);
}

/** The pod-template-hash label value of a template (stable, DNS-label safe). */
export function podTemplateHash(template: PodTemplate): string {
  return safeEncode(String(fnv1a32(canonicalJson(template))));
}

export function randomSuffix(n = 5): string {
  let s = '';
  for (let i = 0; i < n; i++) s += SAFE_ALPHABET[randomInt(SAFE_ALPHABET.length)];
  return s;
}

const withLabel = (l: Labels | undefined, k: string, v: string): Labels => ({ ...(l ?? {}), [k]: v });

/** The ReplicaSet a Deployment's current template calls for. */
export function replicaSetFor(d: Workload): Workload {
  const hash = podTemplateHash(d.spec.template);
  const name = `${d.metadata.name}-${hash}`.slice(0, 253);
  const labels = withLabel(d.spec.template.metadata?.labels, LABEL_POD_TEMPLATE_HASH, hash);
  return {
    apiVersion: 'apps/v1', kind: 'ReplicaSet',
    metadata: {
      name, namespace: d.metadata.namespace, labels,
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata.name, uid: d.metadata.uid ?? '', controller: true, blockOwnerDeletion: true }],
    } as ObjectMeta,
    spec: {
      replicas: d.spec.replicas ?? 1,
      selector: { matchLabels: withLabel(d.spec.selector.matchLabels, LABEL_POD_TEMPLATE_HASH, hash) },
      template: { ...d.spec.template, metadata: { ...(d.spec.template.metadata ?? {}), labels } },
    },
  };
}

/** A new pod of a ReplicaSet (not yet scheduled, no uid: the planner gives both). */
export function podFor(rs: Workload, suffix = randomSuffix()): Pod {
  const t = rs.spec.template;
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: {
      name: `${rs.metadata.name}-${suffix}`, namespace: rs.metadata.namespace,
      ...(t.metadata?.labels ? { labels: { ...t.metadata.labels } } : {}),
      ...(t.metadata?.annotations ? { annotations: { ...t.metadata.annotations } } : {}),
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs.metadata.name, uid: rs.metadata.uid ?? '', controller: true, blockOwnerDeletion: true }],
    } as ObjectMeta,
    spec: { ...t.spec },
  };
}

export interface ScaleDecision {
  /** Pods to create (count). */
  create: number;
  /** Existing pods to delete (newest first, as the ReplicaSet controller prefers). */
  remove: Pod[];
}

const LIVE = new Set(['Pending', 'Running']);

/** How a ReplicaSet with `replicas` reaches that many live pods from `pods` (its own). */
export function scale(replicas: number, pods: readonly Pod[]): ScaleDecision {
  const live = pods.filter((p) => LIVE.has(p.status?.phase ?? 'Pending'));
  const dead = pods.filter((p) => !LIVE.has(p.status?.phase ?? 'Pending'));
  if (live.length <= replicas) return { create: replicas - live.length, remove: dead };
  const created = (p: Pod): string => (p.metadata as ObjectMeta & { creationTimestamp?: string }).creationTimestamp ?? '';
  const newestFirst = [...live].sort((a, b) => created(b).localeCompare(created(a)) || b.metadata.name.localeCompare(a.metadata.name));
  return { create: 0, remove: [...dead, ...newestFirst.slice(0, live.length - replicas)] };
}

export const newUid = (): string => randomUUID();
