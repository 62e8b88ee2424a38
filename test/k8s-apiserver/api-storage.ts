// The verbs with the semantics of the generic registry (k8s.io/apiserver/pkg/registry/generic)
// and the few per-kind strategies that matter, independent of HTTP so the in-process seeding
// API and the wire path share them: create (generateName, uid, timestamps, generation,
// defaults, validation), update with resourceVersion preconditions, the patch types and
// server-side apply with field ownership, status subresources, graceful pod deletion,
// finalizers, namespace and CRD deletion that empties them, lists at a revision with
// pagination, TokenRequest and TokenReview.
import { randomUUID, randomInt } from 'node:crypto';
import YAML from 'yaml';
import { ApiError, FieldErrors, Statuses, successStatus, type StatusCause } from './status';
import { ObjectStore, objectKey, type StoredEvent } from './object-store';
import { BUILTIN_RESOURCES } from './builtin-resources';
import { ResourceRegistry, apiVersionOf, resourceKey, type KubeObject, type ResourceType } from './resource-types';
import { labelProblems, nameProblems } from './object-names';
import { builtinListKeys, jsonPatch, mergePatch, strategicMergePatch, PatchError, type ListKeys } from './patches';
import { recordUpdate, serverSideApply } from './managed-fields';
import { crdDefaults, crdProblems, establishedStatus, resourceTypesOfCrd } from './custom-resources';
import { audienceError, TokenIssuer, userInfoOf } from './service-account-tokens';
import { fieldsMatch, labelsMatch, parseFieldSelector, parseLabelSelector, SelectorError, type FieldRequirement, type Requirement } from './selectors';

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

export interface WriteOptions {
  manager: string;
  fieldValidation?: FieldValidation;
  subresource?: 'status';
  dryRun?: boolean;
}

export interface WriteResult { object: KubeObject; code: number; warnings: string[] }

export interface ListQuery {
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  resourceVersionMatch?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

export interface Filter { namespace?: string; labels: Requirement[]; fields: FieldRequirement[] }

export interface StorageOptions {
  historyLimit: number;
  issuer: TokenIssuer;
  apiAudiences: string[];
  crdEstablishDelayMs: number;
}

const GENERATE_NAME_CHARS = 'bcdfghjklmnpqrstvwxz2456789';
const CRD_RESOURCE = 'apiextensions.k8s.io/customresourcedefinitions';

export function nowTimestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const isObject = (v: unknown): v is Record<string, any> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Everything except metadata and status: what bumps metadata.generation. */
function specOf(o: KubeObject | undefined): string {
  if (!o) return '';
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = o;
  void _m; void _s; void _a; void _k;
  return JSON.stringify(rest);
}

/** The object minus what a no-op write would still change (ownership counts, its timestamps
 * do not: the real server skips writes that only move managedFields times). */
function comparable(o: KubeObject): string {
  const c = structuredClone(o);
  delete c.metadata.resourceVersion;
  for (const e of c.metadata.managedFields ?? []) delete e.time;
  return JSON.stringify(c);
}

export class ApiStorage {
  readonly registry = new ResourceRegistry();
  readonly store: ObjectStore;
  private nextClusterIP = 1;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly opts: StorageOptions) {
    this.store = new ObjectStore(opts.historyLimit, 1);
    for (const t of BUILTIN_RESOURCES) this.registry.add(t);
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  typeOf(apiVersion: string, kind: string): ResourceType {
    const t = this.registry.byApiVersionKind(apiVersion, kind);
    if (!t) throw new ApiError(Statuses.badRequest(`no matches for kind "${kind}" in version "${apiVersion}"`));
    return t;
  }

  listKeysOf(t: ResourceType): ListKeys {
    return t.customSchema ? t.customSchema.listKeys : builtinListKeys;
  }

  // --- reads ----------------------------------------------------------------------------------

  get(t: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const o = this.store.get(resourceKey(t), t.namespaced ? namespace : undefined, name);
    if (!o) throw new ApiError(Statuses.notFound(t, name));
    return o;
  }

  parseFilter(t: ResourceType, namespace: string | undefined, q: ListQuery): Filter {
    try {
      return {
        namespace: t.namespaced ? namespace : undefined,
        labels: q.labelSelector ? parseLabelSelector(q.labelSelector) : [],
        fields: q.fieldSelector ? parseFieldSelector(q.fieldSelector, t.selectableFields) : [],
      };
    } catch (e) {
      if (e instanceof SelectorError) throw new ApiError(Statuses.badRequest(e.message));
      throw e;
    }
  }

  static matches(f: Filter, o: KubeObject): boolean {
    if (f.namespace !== undefined && o.metadata.namespace !== f.namespace) return false;
    return labelsMatch(f.labels, o.metadata.labels) && fieldsMatch(f.fields, o);
  }

  list(t: ResourceType, namespace: string | undefined, q: ListQuery): KubeObject {
    const filter = this.parseFilter(t, namespace, q);
    let rv = this.store.revision;
    let start = '';
    if (q.continue) {
      if (q.resourceVersion) throw new ApiError(Statuses.badRequest('specifying resource version is not allowed when using continue'));
      let token: { v?: string; rv?: number; start?: string };
      try {
        token = JSON.parse(Buffer.from(q.continue, 'base64').toString('utf8'));
      } catch {
        throw new ApiError(Statuses.badRequest('continue key is not valid: illegal base64 data'));
      }
      if (token.v !== 'meta.k8s.io/v1' || typeof token.rv !== 'number' || typeof token.start !== 'string') {
        throw new ApiError(Statuses.badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)'));
      }
      if (token.rv < this.store.compactedRevision) throw new ApiError(Statuses.continueTooOld());
      rv = token.rv;
      start = token.start;
    } else if (q.resourceVersion !== undefined && q.resourceVersion !== '' && q.resourceVersion !== '0') {
      const asked = Number(q.resourceVersion);
      if (!Number.isInteger(asked) || asked < 0) throw new ApiError(Statuses.badRequest(`invalid resource version "${q.resourceVersion}"`));
      if (asked > this.store.revision) throw new ApiError(Statuses.resourceVersionTooLarge(asked, this.store.revision));
      if (q.resourceVersionMatch === 'Exact') {
        if (asked < this.store.compactedRevision) throw new ApiError(Statuses.listTooOld());
        rv = asked;
      }
    }
    const items = (rv === this.store.revision ? this.store.list(resourceKey(t), filter.namespace) : this.store.listAt(resourceKey(t), rv, filter.namespace))
      .filter((o) => objectKey(o.metadata.namespace, o.metadata.name) >= start)
      .filter((o) => ApiStorage.matches(filter, o));
    const limit = q.limit && q.limit > 0 ? q.limit : items.length;
    const page = items.slice(0, limit);
    const metadata: Record<string, unknown> = { resourceVersion: String(rv) };
    if (page.length < items.length) {
      const last = page[page.length - 1];
      const next = `${objectKey(last.metadata.namespace, last.metadata.name)}\u0000`;
      metadata.continue = Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv, start: next })).toString('base64url');
      // As etcd counts it: known only when no selector filtered the range.
      if (filter.labels.length === 0 && filter.fields.length === 0) metadata.remainingItemCount = items.length - page.length;
    }
    return {
      kind: `${t.kind}List`,
      apiVersion: apiVersionOf(t),
      metadata,
      items: page.map((o) => this.forList(t, o)),
    };
  }

  /** Built-in list items carry no kind/apiVersion on the wire (01); custom resources do. */
  private forList(t: ResourceType, o: KubeObject): KubeObject {
    if (t.crdName) return o;
    const { kind: _k, apiVersion: _a, ...rest } = o;
    void _k; void _a;
    return rest as KubeObject;
  }

  // --- writes ---------------------------------------------------------------------------------

  /** Parses a request body: JSON, or YAML for application/yaml and apply patches. */
  static parseBody(raw: string, contentType: string, what: string): unknown {
    try {
      if (/yaml/.test(contentType)) return YAML.parse(raw);
      return JSON.parse(raw);
    } catch (e) {
      throw new ApiError(Statuses.badRequest(`${what}: ${(e as Error).message}`));
    }
  }

  private checkKind(t: ResourceType, body: unknown): KubeObject {
    if (!isObject(body)) throw new ApiError(Statuses.badRequest(`Object 'Kind' is missing in '${JSON.stringify(body)}'`));
    const obj = body as KubeObject;
    if (obj.kind === undefined || obj.kind === '') obj.kind = t.kind;
    if (obj.apiVersion === undefined || obj.apiVersion === '') obj.apiVersion = apiVersionOf(t);
    if (obj.kind !== t.kind) throw new ApiError(Statuses.badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${apiVersionOf(t)})`));
    if (obj.apiVersion !== apiVersionOf(t)) throw new ApiError(Statuses.badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${apiVersionOf(t)})`));
    if (!isObject(obj.metadata)) obj.metadata = {};
    return obj;
  }

  private checkNamespace(t: ResourceType, obj: KubeObject, namespace: string | undefined): void {
    if (!t.namespaced) {
      delete obj.metadata.namespace;
      return;
    }
    if (obj.metadata.namespace !== undefined && obj.metadata.namespace !== '' && obj.metadata.namespace !== namespace) {
      throw new ApiError(Statuses.badRequest('the namespace of the provided object does not match the namespace sent on the request'));
    }
    obj.metadata.namespace = namespace;
  }

  /** Unknown fields of custom resources: pruned with a warning, or refused under Strict. */
  private pruneUnknown(t: ResourceType, obj: KubeObject, fv: FieldValidation | undefined): string[] {
    if (!t.customSchema) return [];
    const unknown = t.customSchema.prune(obj);
    if (unknown.length === 0 || fv === 'Ignore') return [];
    if (fv === 'Strict') {
      throw new ApiError(Statuses.badRequest(`${t.kind} in version "${t.version}" cannot be handled as a ${t.kind}: strict decoding error: ${unknown.map((u) => `unknown field "${u}"`).join(', ')}`));
    }
    return unknown.map((u) => `unknown field "${u}"`);
  }

  private validate(t: ResourceType, obj: KubeObject, old: KubeObject | undefined): void {
    const causes: StatusCause[] = [];
    if (!old) causes.push(...nameProblems(t.nameRule, obj.metadata.name));
    causes.push(...labelProblems(obj.metadata.labels));
    if (t.validate) causes.push(...t.validate(obj, old));
    if (t === this.registry.lookup('apiextensions.k8s.io', 'v1', 'customresourcedefinitions')) causes.push(...crdProblems(obj));
    if (t.customSchema) causes.push(...t.customSchema.validate(obj));
    if (causes.length > 0) throw new ApiError(Statuses.invalid(t.kind, t.group, obj.metadata.name ?? '', causes));
  }

  /** applied: set when a server-side apply creates the object (ownership is then an Apply). */
  create(t: ResourceType, namespace: string | undefined, body: unknown, o: WriteOptions, applied?: KubeObject): WriteResult {
    if (t.virtual) throw new ApiError(Statuses.methodNotAllowed());
    const obj = this.checkKind(t, body);
    this.checkNamespace(t, obj, namespace);
    const warnings = this.pruneUnknown(t, obj, o.fieldValidation);
    const meta = obj.metadata;
    if (!meta.name) {
      if (!meta.generateName) {
        throw new ApiError(Statuses.invalid(t.kind, t.group, '', [FieldErrors.required('metadata.name', 'name or generateName is required')]));
      }
      meta.name = `${meta.generateName}${Array.from({ length: 5 }, () => GENERATE_NAME_CHARS[randomInt(GENERATE_NAME_CHARS.length)]).join('')}`;
    }
    if (t.namespaced) this.requireNamespace(namespace!, t, meta.name);
    for (const k of ['uid', 'resourceVersion', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation', 'managedFields', 'selfLink']) delete meta[k];
    // Status is the status writer's: reset on create, except for Nodes (their kubelet creates
    // them with status, and the real strategy keeps it).
    if (t.subresources.includes('status') && t.kind !== 'Node') delete obj.status;
    this.validate(t, obj, undefined);
    if (this.store.get(resourceKey(t), meta.namespace, meta.name)) throw new ApiError(Statuses.alreadyExists(t, meta.name));
    if (t.defaults) t.defaults(obj, { allocateClusterIP: () => this.allocateClusterIP() });
    if (t.crdName === undefined && t.plural === 'customresourcedefinitions') crdDefaults(obj);
    const now = nowTimestamp();
    const ordered: KubeObject = { kind: obj.kind, apiVersion: obj.apiVersion, metadata: { name: meta.name, ...(meta.generateName ? { generateName: meta.generateName } : {}), ...(meta.namespace ? { namespace: meta.namespace } : {}), uid: randomUUID(), resourceVersion: '', ...(t.hasGeneration ? { generation: 1 } : {}), creationTimestamp: now } };
    for (const [k, v] of Object.entries(meta)) if (!(k in ordered.metadata)) ordered.metadata[k] = v;
    for (const [k, v] of Object.entries(obj)) if (k !== 'kind' && k !== 'apiVersion' && k !== 'metadata') ordered[k] = v;
    ordered.metadata.managedFields = applied
      ? serverSideApply(undefined, applied, o.manager, true, 'main', apiVersionOf(t), this.listKeysOf(t), now).managedFields
      : recordUpdate(undefined, ordered, o.manager, 'main', apiVersionOf(t), this.listKeysOf(t), now);
    if (ordered.metadata.managedFields.length === 0) delete ordered.metadata.managedFields;
    if (o.dryRun) return { object: ordered, code: 201, warnings };
    const stored = this.store.write(resourceKey(t), ordered);
    if (t.plural === 'customresourcedefinitions' && t.group === 'apiextensions.k8s.io') this.scheduleEstablish(stored);
    return { object: stored, code: 201, warnings };
  }

  private requireNamespace(namespace: string, t: ResourceType, name: string): void {
    const ns = this.store.get('/namespaces', undefined, namespace);
    if (!ns) throw new ApiError(Statuses.notFound({ group: '', plural: 'namespaces' }, namespace));
    if (ns.metadata.deletionTimestamp) {
      throw new ApiError(Statuses.forbiddenWithReason(t, name, `unable to create new content in namespace ${namespace} because it is being terminated`));
    }
  }

  private allocateClusterIP(): string {
    const n = ++this.nextClusterIP; // 10.96.0.1 is the kubernetes Service's
    return `10.96.${Math.floor(n / 256) % 256}.${n % 256}`;
  }

  /** PUT: the whole object, guarded by metadata.resourceVersion when the client sends one. */
  update(t: ResourceType, namespace: string | undefined, name: string, body: unknown, o: WriteOptions): WriteResult {
    const obj = this.checkKind(t, body);
    this.checkNamespace(t, obj, namespace);
    if (obj.metadata.name !== undefined && obj.metadata.name !== name) {
      throw new ApiError(Statuses.badRequest(`the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`));
    }
    const old = this.store.get(resourceKey(t), t.namespaced ? namespace : undefined, name);
    if (!old) {
      if (o.subresource) throw new ApiError(Statuses.notFound(t, name));
      obj.metadata.name = name;
      return this.create(t, namespace, obj, o);
    }
    const rv = obj.metadata.resourceVersion;
    if (rv !== undefined && rv !== '' && rv !== old.metadata.resourceVersion) throw new ApiError(Statuses.staleResourceVersion(t, name));
    return this.commit(t, old, obj, o, this.pruneUnknown(t, obj, o.fieldValidation), (next) => {
      next.metadata.managedFields = recordUpdate(old, next, o.manager, o.subresource ?? 'main', apiVersionOf(t), this.listKeysOf(t), nowTimestamp());
    });
  }

  patch(t: ResourceType, namespace: string | undefined, name: string, patchType: string, rawBody: string, o: WriteOptions & { force?: boolean }): WriteResult {
    const ns = t.namespaced ? namespace : undefined;
    const old = this.store.get(resourceKey(t), ns, name);
    if (patchType === 'application/apply-patch+yaml' || patchType === 'application/apply-patch+cbor') {
      return this.apply(t, namespace, name, old, ApiStorage.parseBody(rawBody, 'yaml', 'error decoding YAML'), o);
    }
    if (!old) throw new ApiError(Statuses.notFound(t, name));
    const patch = ApiStorage.parseBody(rawBody, 'json', 'error decoding patch');
    let next: unknown;
    try {
      switch (patchType) {
        case 'application/merge-patch+json': next = mergePatch(old, patch); break;
        case 'application/json-patch+json': next = jsonPatch(old, patch); break;
        case 'application/strategic-merge-patch+json':
          if (t.crdName) throw new ApiError({ ...Statuses.unsupportedMediaType(patchType), message: 'strategic merge patch is not supported for custom resources' });
          next = strategicMergePatch(old, patch, this.listKeysOf(t));
          break;
        default: throw new ApiError(Statuses.unsupportedMediaType(patchType));
      }
    } catch (e) {
      if (e instanceof PatchError) throw new ApiError(Statuses.invalid(t.kind, t.group, name, [{ reason: 'FieldValueInvalid', message: e.message, field: '' }]));
      throw e;
    }
    const obj = this.checkKind(t, next);
    if (obj.metadata.name !== name) throw new ApiError(Statuses.invalid(t.kind, t.group, name, [FieldErrors.invalid('metadata.name', obj.metadata.name, 'field is immutable')]));
    const rv = isObject(patch) && isObject((patch as any).metadata) ? (patch as any).metadata.resourceVersion : undefined;
    if (rv !== undefined && rv !== old.metadata.resourceVersion) throw new ApiError(Statuses.staleResourceVersion(t, name));
    return this.commit(t, old, obj, o, this.pruneUnknown(t, obj, o.fieldValidation), (n) => {
      n.metadata.managedFields = recordUpdate(old, n, o.manager, o.subresource ?? 'main', apiVersionOf(t), this.listKeysOf(t), nowTimestamp());
    });
  }

  private apply(t: ResourceType, namespace: string | undefined, name: string, old: KubeObject | undefined, body: unknown, o: WriteOptions & { force?: boolean }): WriteResult {
    if (!o.manager) {
      throw new ApiError(Statuses.invalid('PatchOptions', 'meta.k8s.io', '', [FieldErrors.required('fieldManager', 'is required for apply patch')]));
    }
    const applied = this.checkKind(t, body);
    if (applied.metadata.name !== undefined && applied.metadata.name !== name) {
      throw new ApiError(Statuses.badRequest(`the name of the object (${applied.metadata.name}) does not match the name on the URL (${name})`));
    }
    applied.metadata.name = name;
    this.checkNamespace(t, applied, namespace);
    const warnings = this.pruneUnknown(t, applied, o.fieldValidation);
    const scope = o.subresource ?? 'main';
    const result = serverSideApply(old, applied, o.manager, o.force === true, scope, apiVersionOf(t), this.listKeysOf(t), nowTimestamp());
    if (result.conflicts.length > 0) {
      const n = result.conflicts.length;
      const list = result.conflicts.map((c) => `conflict with "${c.manager}": ${c.field}`);
      const message = n === 1 ? `Apply failed with 1 conflict: ${list[0]}` : `Apply failed with ${n} conflicts: ${list.join('\n')}`;
      throw new ApiError({
        kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'Conflict',
        details: { causes: result.conflicts.map((c) => ({ reason: 'FieldManagerConflict', message: `conflict with "${c.manager}"`, field: c.field })) },
        code: 409,
      });
    }
    const merged = result.object as KubeObject;
    merged.metadata.managedFields = result.managedFields;
    if (!old) {
      if (o.subresource) throw new ApiError(Statuses.notFound(t, name));
      const created = this.create(t, namespace, merged, { ...o, fieldValidation: 'Ignore' }, applied);
      return { ...created, warnings: [...warnings, ...created.warnings] };
    }
    return this.commit(t, old, merged, o, warnings, () => undefined);
  }

  /** The shared end of update, patch and apply: subresource rules, immutable metadata,
   * validation, generation, no-op detection, finalizer completion, then the write. */
  private commit(t: ResourceType, old: KubeObject, candidate: KubeObject, o: WriteOptions, warnings: string[], setManagedFields: (next: KubeObject) => void): WriteResult {
    let next: KubeObject;
    if (o.subresource === 'status') {
      // A status write changes status only (and nothing of spec or metadata but ownership).
      next = structuredClone(old);
      next.status = candidate.status;
    } else {
      next = candidate;
      if (t.subresources.includes('status')) next.status = old.status;
      if (t.kind === 'Service' && next.spec && next.spec.clusterIP === undefined) {
        next.spec.clusterIP = old.spec?.clusterIP;
        next.spec.clusterIPs = old.spec?.clusterIPs;
      }
      if (t.defaults) t.defaults(next, { allocateClusterIP: () => this.allocateClusterIP() });
      if (t.kind === 'Namespace' || t.kind === 'CustomResourceDefinition') next.status = old.status;
    }
    for (const k of ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation', 'namespace', 'name']) {
      if (old.metadata[k] === undefined) delete next.metadata[k];
      else next.metadata[k] = old.metadata[k];
    }
    if (old.metadata.generateName !== undefined && next.metadata.generateName === undefined) next.metadata.generateName = old.metadata.generateName;
    next.metadata.resourceVersion = old.metadata.resourceVersion;
    this.validate(t, next, old);
    if (t.hasGeneration && specOf(next) !== specOf(old)) next.metadata.generation = (old.metadata.generation ?? 1) + 1;
    setManagedFields(next);
    if (!next.metadata.managedFields || next.metadata.managedFields.length === 0) delete next.metadata.managedFields;
    if (comparable(next) === comparable(old)) return { object: old, code: 200, warnings };
    if (o.dryRun) return { object: next, code: 200, warnings };
    if (next.metadata.deletionTimestamp && (next.metadata.finalizers ?? []).length === 0 && t.kind !== 'Pod' && t.kind !== 'Namespace') {
      this.store.write(resourceKey(t), next);
      const gone = this.store.remove(resourceKey(t), next.metadata.namespace, next.metadata.name)!;
      return { object: gone, code: 200, warnings };
    }
    const written = this.store.write(resourceKey(t), next);
    if (t.kind === 'CustomResourceDefinition' && t.group === 'apiextensions.k8s.io') this.refreshCrdTypes();
    return { object: written, code: 200, warnings };
  }

  // --- delete ---------------------------------------------------------------------------------

  delete(t: ResourceType, namespace: string | undefined, name: string, options: Record<string, any>): { code: number; body: unknown } {
    const ns = t.namespaced ? namespace : undefined;
    const old = this.store.get(resourceKey(t), ns, name);
    if (!old) throw new ApiError(Statuses.notFound(t, name));
    const pre = options.preconditions ?? {};
    if (pre.uid !== undefined && pre.uid !== old.metadata.uid) {
      throw new ApiError(Statuses.conflict(t, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata.uid}`));
    }
    if (pre.resourceVersion !== undefined && pre.resourceVersion !== old.metadata.resourceVersion) {
      throw new ApiError(Statuses.conflict(t, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion}`));
    }
    if (options.dryRun) return { code: 200, body: t.returnsDeletedObject ? old : successStatus(t, name, old.metadata.uid) };

    if (t.kind === 'Namespace') return { code: 200, body: this.deleteNamespace(old) };
    if (t.kind === 'CustomResourceDefinition' && t.group === 'apiextensions.k8s.io') return { code: 200, body: this.deleteCrd(old) };

    // A scheduled pod goes away only when its kubelet confirms (a delete with grace 0); until
    // then it is MODIFIED with a deletionTimestamp (03). Unscheduled pods go at once.
    if (t.kind === 'Pod' && old.spec?.nodeName) {
      const grace = options.gracePeriodSeconds ?? old.metadata.deletionGracePeriodSeconds ?? old.spec?.terminationGracePeriodSeconds ?? 30;
      if (grace > 0) {
        if (old.metadata.deletionTimestamp) return { code: 200, body: old };
        const marked = structuredClone(old);
        marked.metadata.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
        marked.metadata.deletionGracePeriodSeconds = grace;
        marked.metadata.generation = (old.metadata.generation ?? 1) + 1;
        return { code: 200, body: this.store.write(resourceKey(t), marked) };
      }
    }
    if ((old.metadata.finalizers ?? []).length > 0) {
      if (old.metadata.deletionTimestamp) return { code: 200, body: old };
      const marked = structuredClone(old);
      marked.metadata.deletionTimestamp = nowTimestamp();
      marked.metadata.deletionGracePeriodSeconds = 0;
      if (t.hasGeneration) marked.metadata.generation = (old.metadata.generation ?? 1) + 1;
      return { code: 200, body: this.store.write(resourceKey(t), marked) };
    }
    const gone = this.store.remove(resourceKey(t), ns, name)!;
    return { code: 200, body: t.returnsDeletedObject ? gone : successStatus(t, name, old.metadata.uid) };
  }

  deleteCollection(t: ResourceType, namespace: string | undefined, q: ListQuery, options: Record<string, any>): KubeObject {
    const list = this.list(t, namespace, { labelSelector: q.labelSelector, fieldSelector: q.fieldSelector });
    const items: KubeObject[] = [];
    for (const item of list.items as KubeObject[]) {
      const r = this.delete(t, item.metadata.namespace, item.metadata.name, options);
      if (isObject(r.body) && (r.body as any).kind !== 'Status') items.push(r.body as KubeObject);
    }
    return { kind: `${t.kind}List`, apiVersion: apiVersionOf(t), metadata: { resourceVersion: String(this.store.revision) }, items };
  }

  /** Terminating, then what the namespace controller does: delete every object in it, then
   * the namespace itself. */
  private deleteNamespace(old: KubeObject): KubeObject {
    if (old.metadata.deletionTimestamp) return old;
    const marked = structuredClone(old);
    marked.metadata.deletionTimestamp = nowTimestamp();
    marked.status = { ...(marked.status ?? {}), phase: 'Terminating' };
    const written = this.store.write('/namespaces', marked);
    const name = old.metadata.name;
    this.later(0, () => {
      for (const t of this.registry.all()) {
        if (!t.namespaced || t.virtual) continue;
        for (const o of this.store.list(resourceKey(t), name)) this.store.remove(resourceKey(t), name, o.metadata.name);
      }
      this.store.remove('/namespaces', undefined, name);
    });
    return written;
  }

  private deleteCrd(old: KubeObject): KubeObject {
    if (old.metadata.deletionTimestamp) return old;
    const marked = structuredClone(old);
    marked.metadata.deletionTimestamp = nowTimestamp();
    marked.metadata.finalizers = ['customresourcecleanup.apiextensions.k8s.io'];
    marked.metadata.generation = (old.metadata.generation ?? 1) + 1;
    const written = this.store.write(CRD_RESOURCE, marked);
    this.later(0, () => {
      for (const t of this.registry.all().filter((r) => r.crdName === old.metadata.name)) {
        for (const o of this.store.list(resourceKey(t))) this.store.remove(resourceKey(t), o.metadata.namespace, o.metadata.name);
        this.registry.remove(t);
      }
      this.store.remove(CRD_RESOURCE, undefined, old.metadata.name);
    });
    return written;
  }

  // --- CRDs -----------------------------------------------------------------------------------

  /** The establishing controller: names accepted, Established, and the kind served. */
  private scheduleEstablish(crd: KubeObject): void {
    this.later(this.opts.crdEstablishDelayMs, () => {
      const current = this.store.get(CRD_RESOURCE, undefined, crd.metadata.name);
      if (!current || current.metadata.uid !== crd.metadata.uid) return;
      for (const t of resourceTypesOfCrd(current)) this.registry.add(t);
      current.status = establishedStatus(current, nowTimestamp());
      this.store.write(CRD_RESOURCE, current);
    });
  }

  /** A CRD updated after it is established re-registers its versions with the new schema. */
  refreshCrdTypes(): void {
    for (const crd of this.store.list(CRD_RESOURCE)) {
      if (!(crd.status?.conditions ?? []).some((c: any) => c.type === 'Established' && c.status === 'True')) continue;
      if (crd.metadata.deletionTimestamp) continue;
      for (const old of this.registry.all().filter((r) => r.crdName === crd.metadata.name)) this.registry.remove(old);
      for (const t of resourceTypesOfCrd(crd)) this.registry.add(t);
    }
  }

  // --- TokenRequest / TokenReview -------------------------------------------------------------

  tokenRequest(namespace: string, saName: string, body: unknown, manager: string): KubeObject {
    const sa = this.store.get('/serviceaccounts', namespace, saName);
    if (!sa) throw new ApiError(Statuses.notFound({ group: '', plural: 'serviceaccounts' }, saName));
    const req = isObject(body) ? body : {};
    const spec = isObject(req.spec) ? req.spec : {};
    const expirationSeconds = spec.expirationSeconds ?? 3600;
    if (!Number.isInteger(expirationSeconds) || expirationSeconds < 600) {
      throw new ApiError(Statuses.invalid('TokenRequest', 'authentication.k8s.io', saName, [FieldErrors.invalid('spec.expirationSeconds', expirationSeconds, 'may not specify a duration less than 10 minutes')]));
    }
    const audiences: string[] = Array.isArray(spec.audiences) && spec.audiences.length > 0 ? spec.audiences : this.opts.apiAudiences;
    let pod: { name: string; uid: string } | undefined;
    let node: { name: string; uid: string } | undefined;
    let secret: { name: string; uid: string } | undefined;
    const ref = isObject(spec.boundObjectRef) ? spec.boundObjectRef : undefined;
    if (ref) {
      const kinds: Record<string, string> = { Pod: '/pods', Secret: '/secrets', Node: '/nodes' };
      const resource = kinds[ref.kind];
      if (!resource || (ref.apiVersion ?? 'v1') !== 'v1') {
        throw new ApiError(Statuses.invalid('TokenRequest', 'authentication.k8s.io', saName, [FieldErrors.notSupported('spec.boundObjectRef.kind', ref.kind, ['Node', 'Pod', 'Secret'])]));
      }
      const obj = this.store.get(resource, resource === '/nodes' ? undefined : namespace, ref.name);
      if (!obj) throw new ApiError(Statuses.notFound({ group: '', plural: resource.slice(1) }, ref.name));
      if (ref.uid && ref.uid !== obj.metadata.uid) {
        throw new ApiError(Statuses.conflict({ group: '', plural: resource.slice(1) }, ref.name, `the UID in the bound object reference (${ref.uid}) does not match the UID in record. The object might have been deleted and then recreated`));
      }
      const named = { name: obj.metadata.name, uid: obj.metadata.uid };
      if (ref.kind === 'Pod') {
        pod = named;
        if (obj.spec?.nodeName) {
          const n = this.store.get('/nodes', undefined, obj.spec.nodeName);
          if (n) node = { name: n.metadata.name, uid: n.metadata.uid };
        }
      } else if (ref.kind === 'Node') node = named;
      else secret = named;
    }
    const { token, claims } = this.opts.issuer.issue({ namespace, serviceAccount: { name: saName, uid: sa.metadata.uid }, audiences, expirationSeconds, pod, node, secret });
    const now = nowTimestamp();
    const out: KubeObject = {
      kind: 'TokenRequest',
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { name: saName, namespace, uid: sa.metadata.uid, creationTimestamp: now },
      spec: { audiences, expirationSeconds, boundObjectRef: ref ? { kind: ref.kind, apiVersion: ref.apiVersion ?? 'v1', name: ref.name, uid: ref.uid ?? (pod ?? node ?? secret)!.uid } : null },
      status: { token, expirationTimestamp: new Date(claims.exp * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') },
    };
    const mf = recordUpdate(undefined, { metadata: {}, spec: req.spec ?? {} }, manager, 'main', 'authentication.k8s.io/v1', builtinListKeys, now);
    if (mf.length > 0) out.metadata.managedFields = mf.map((e) => ({ ...e, subresource: 'token' }));
    return out;
  }

  /** Who a service account token is, or why it is not valid (for TokenReview and for bearer
   * authentication alike). */
  reviewToken(token: string, audiences: string[]): { user: ReturnType<typeof userInfoOf>; audiences: string[] } | { error: string } {
    const v = this.opts.issuer.verify(token);
    if (!v.ok) return { error: v.error };
    const wanted = audiences.length > 0 ? audiences : this.opts.apiAudiences;
    const common = wanted.filter((a) => v.claims.aud.includes(a));
    if (common.length === 0) return { error: audienceError(v.claims.aud, wanted) };
    const k = v.claims['kubernetes.io'];
    const sa = this.store.get('/serviceaccounts', k.namespace, k.serviceaccount.name);
    if (!sa || sa.metadata.uid !== k.serviceaccount.uid) return { error: '[invalid bearer token, service account token has been invalidated]' };
    if (k.pod) {
      const pod = this.store.get('/pods', k.namespace, k.pod.name);
      if (!pod || pod.metadata.uid !== k.pod.uid) return { error: '[invalid bearer token, service account token has been invalidated]' };
    }
    if (k.secret) {
      const secret = this.store.get('/secrets', k.namespace, k.secret.name);
      if (!secret || secret.metadata.uid !== k.secret.uid) return { error: '[invalid bearer token, service account token has been invalidated]' };
    }
    return { user: userInfoOf(v.claims), audiences: common };
  }

  tokenReview(body: unknown, manager: string): KubeObject {
    const req = isObject(body) ? body : {};
    const spec = isObject(req.spec) ? req.spec : {};
    if (typeof spec.token !== 'string' || spec.token === '') {
      throw new ApiError(Statuses.invalid('TokenReview', 'authentication.k8s.io', '', [FieldErrors.required('spec.token')]));
    }
    const audiences: string[] = Array.isArray(spec.audiences) ? spec.audiences : [];
    const r = this.reviewToken(spec.token, audiences);
    const status = 'error' in r ? { user: {}, error: r.error } : { authenticated: true, user: r.user, audiences: r.audiences };
    const mf = recordUpdate(undefined, { metadata: {}, spec }, manager, 'main', 'authentication.k8s.io/v1', builtinListKeys, nowTimestamp());
    return { kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', metadata: mf.length > 0 ? { managedFields: mf } : {}, spec, status };
  }

  subscribe(fn: (e: StoredEvent) => void): () => void {
    return this.store.subscribe(fn);
  }
}
