// The resources this server serves: the built-in ones nodemesh touches, and those a CRD adds
// once it is Established. One table drives routing, discovery, RBAC names and messages.
import type { StatusCause } from './status';
import type { CustomResourceSchema } from './custom-resources';

export type KubeObject = Record<string, any> & { metadata: Record<string, any> };

export interface ResourceType {
  group: string;
  version: string;
  /** The URL segment: `pods`, `deployments`. */
  plural: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  verbs: string[];
  /** Subresources served: `status` (a separate writer for .status), `token` (TokenRequest). */
  subresources: string[];
  /** metadata.generation is kept and bumped when anything but metadata and status changes. */
  hasGeneration: boolean;
  /** DELETE answers with the object (true) or with a Success Status (false). */
  returnsDeletedObject: boolean;
  /** Create-only kinds (TokenReview): answered, never stored. */
  virtual?: boolean;
  /** Name rule from the real validation of this kind. */
  nameRule: 'dns1123-subdomain' | 'dns1123-label' | 'dns1035-label' | 'path-segment';
  /** Fields a fieldSelector may use beyond metadata.name and metadata.namespace. */
  selectableFields: string[];
  /** What a BOOKMARK object carries besides kind, apiVersion and metadata (Go zero values). */
  bookmarkBody: Record<string, unknown>;
  /** Defaults the API server itself applies on create (no controllers). */
  defaults?: (obj: KubeObject, ctx: DefaultingContext) => void;
  /** Validation beyond names, as field causes. */
  validate?: (obj: KubeObject, old: KubeObject | undefined) => StatusCause[];
  /** Set for resources served from a CRD. */
  crdName?: string;
  customSchema?: CustomResourceSchema;
}

export interface DefaultingContext {
  allocateClusterIP(): string;
}

export function apiVersionOf(t: { group: string; version: string }): string {
  return t.group === '' ? t.version : `${t.group}/${t.version}`;
}

export function groupVersionOf(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? { group: '', version: apiVersion } : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** The key of a resource in maps: `/pods`, `apps/deployments`. */
export function resourceKey(t: { group: string; plural: string }): string {
  return `${t.group}/${t.plural}`;
}

export class ResourceRegistry {
  private readonly byPath = new Map<string, ResourceType>(); // `${group}/${version}/${plural}`
  private readonly byKind = new Map<string, ResourceType>(); // `${apiVersion}/${kind}`

  add(t: ResourceType): void {
    this.byPath.set(`${t.group}/${t.version}/${t.plural}`, t);
    this.byKind.set(`${apiVersionOf(t)}/${t.kind}`, t);
  }

  remove(t: ResourceType): void {
    this.byPath.delete(`${t.group}/${t.version}/${t.plural}`);
    this.byKind.delete(`${apiVersionOf(t)}/${t.kind}`);
  }

  lookup(group: string, version: string, plural: string): ResourceType | undefined {
    return this.byPath.get(`${group}/${version}/${plural}`);
  }

  byApiVersionKind(apiVersion: string, kind: string): ResourceType | undefined {
    return this.byKind.get(`${apiVersion}/${kind}`);
  }

  all(): ResourceType[] {
    return [...this.byPath.values()];
  }

  /** Group versions served, in registration order, core (`v1`) first. */
  groupVersions(): { group: string; version: string }[] {
    const seen = new Map<string, { group: string; version: string }>();
    for (const t of this.byPath.values()) seen.set(apiVersionOf(t), { group: t.group, version: t.version });
    return [...seen.values()];
  }

  inGroupVersion(group: string, version: string): ResourceType[] {
    return this.all().filter((t) => t.group === group && t.version === version);
  }
}

// --- discovery documents ---------------------------------------------------------------------

export function apiResourceList(registry: ResourceRegistry, group: string, version: string): Record<string, unknown> {
  const resources: Record<string, unknown>[] = [];
  for (const t of registry.inGroupVersion(group, version)) {
    const r: Record<string, unknown> = { name: t.plural, singularName: t.singular, namespaced: t.namespaced, kind: t.kind, verbs: t.verbs };
    if (t.shortNames) r.shortNames = t.shortNames;
    if (t.categories) r.categories = t.categories;
    resources.push(r);
    for (const sub of t.subresources) {
      if (sub === 'status') resources.push({ name: `${t.plural}/status`, singularName: '', namespaced: t.namespaced, kind: t.kind, verbs: ['get', 'patch', 'update'] });
      if (sub === 'token') resources.push({ name: `${t.plural}/token`, singularName: '', namespaced: t.namespaced, group: 'authentication.k8s.io', version: 'v1', kind: 'TokenRequest', verbs: ['create'] });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: apiVersionOf({ group, version }), resources };
}

export function apiGroupList(registry: ResourceRegistry): Record<string, unknown> {
  const groups = new Map<string, string[]>();
  for (const gv of registry.groupVersions()) {
    if (gv.group === '') continue;
    const versions = groups.get(gv.group) ?? [];
    if (!versions.includes(gv.version)) versions.push(gv.version);
    groups.set(gv.group, versions);
  }
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: [...groups.entries()].map(([name, versions]) => apiGroup(name, versions)) };
}

export function apiGroup(name: string, versions: string[]): Record<string, unknown> {
  const vs = versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
  return { name, versions: vs, preferredVersion: vs[0] };
}
