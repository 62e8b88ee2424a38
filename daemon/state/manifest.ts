// Kubernetes YAML -> validated, typed resources. Pure: text in, objects or issues out; no I/O.
// `nodemesh local apply` uses it before it touches the cluster, so a file with one bad
// document is rejected whole and nothing already applied is lost (as `kubectl apply`
// rejects an invalid object before it reaches storage).
//
// Every issue names the file, the document (1-based, with its line), the object, the field
// path (`spec.containers[0].command`), the bad value, what is wrong and what to do.
//
// Kinds are a table (KINDS): a new kind (Gateway, HTTPRoute) is one entry with its
// apiVersions, scope and a validator. Kinds nodemesh knows
// but does not accept yet, and kinds it does not know at all, are reported, never dropped.
import { Document, LineCounter, isNode, parseAllDocuments } from 'yaml';
import { isNamespaced, validateObjectDetailed as validateWithSchema, type DetailedIssue } from '../schema';
import { SECURITY_API_VERSION, type Labels, type ObjectMeta, type Resource } from './resources';

/** Any other kind with a schema (ConfigMap, Deployment, HTTPRoute, CronJob, ...), carried
 * as written. */
export interface OtherObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

/** What a manifest can hold: the kinds nodemesh reads (typed) or any other kind with a
 * schema. Narrow with isResource(). */
export type ManifestObject = Resource | OtherObject;

const RESOURCE_KINDS = new Set(['Namespace', 'Pod', 'Service', 'AuthorizationPolicy', 'PeerAuthentication']);

/** Whether an object is one of the typed mesh resources. */
export function isResource(o: { kind: string }): o is Resource {
  return RESOURCE_KINDS.has(o.kind);
}

export interface ManifestEntry {
  object: ManifestObject;
  file: string;
  /** 1-based position of the YAML document in the file. */
  document: number;
  /** 1-based line where the object starts. */
  line: number;
}

export type IssueReason =
  | 'yaml' // not parseable YAML
  | 'invalid' // a field has a bad value, or a required field is missing
  | 'unknown-kind' // not a kind nodemesh knows
  | 'unsupported' // a kind or field nodemesh knows but does not accept (yet, or in the sandbox)
  | 'duplicate'; // the same object twice in one file

export interface ManifestIssue {
  reason: IssueReason;
  file: string;
  document: number;
  /** 1-based line of the offending field (or of the document when the field is absent). */
  line?: number;
  /** `Pod shop/web`, when the object got far enough to have a kind and name. */
  object?: string;
  /** Field path from the document root, `spec.containers[0].command`; '' for the whole document. */
  path: string;
  /** The offending value as written (absent when the field is missing). */
  value?: unknown;
  /** What is wrong. */
  problem: string;
  /** What to do about it. */
  fix: string;
}

export type ManifestResult =
  | { ok: true; entries: ManifestEntry[] }
  | { ok: false; issues: ManifestIssue[] };

export interface ManifestOptions {
  /** Service VIP range; spec.clusterIP must lie inside it. */
  serviceCIDR?: string;
  /** Namespace for namespaced objects that name none (kubectl's default). */
  defaultNamespace?: string;
  /** Also enforce what the sandbox runtime needs: it runs commands, not images, so every
   * container needs `command`, and env values can only come from `value` or `fieldRef`. */
  sandbox?: boolean;
}

export const DEFAULT_SERVICE_CIDR = '10.96.0.0/16';
export const DEFAULT_NAMESPACE = 'default';

// --- entry points ----------------------------------------------------------------------

/** Parses one file's text (any number of `---` documents, each an object or a `kind: List`). */
export function parseManifest(text: string, file: string, opts: ManifestOptions = {}): ManifestResult {
  const lineCounter = new LineCounter();
  const parsed = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const docs: Document.Parsed[] = Array.isArray(parsed) ? parsed : [];
  const entries: ManifestEntry[] = [];
  const issues: ManifestIssue[] = [];
  const lineOf = (offset: number | undefined): number | undefined =>
    offset === undefined ? undefined : lineCounter.linePos(offset).line;

  docs.forEach((doc, i) => {
    const document = i + 1;
    const docLine = lineOf(doc.contents?.range?.[0] ?? doc.range?.[0]) ?? 1;
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        issues.push({
          reason: 'yaml', file, document, line: lineOf(e.pos[0]) ?? docLine, path: '',
          problem: `not valid YAML: ${firstLine(e.message)}`,
          fix: 'fix the YAML syntax at that line (indentation, quoting, a duplicate key)',
        });
      }
      return;
    }
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) return; // an empty document (e.g. a trailing `---`)
    const fieldLine = (path: (string | number)[]): number => {
      for (let n = path.length; n > 0; n--) {
        const node = doc.getIn(path.slice(0, n), true);
        if (isNode(node) && node.range) return lineOf(node.range[0]) ?? docLine;
      }
      return docLine;
    };
    const ctx: DocContext = { file, document, docLine, fieldLine, opts };
    const found: ManifestEntry[] = [];
    const docIssues: ManifestIssue[] = [];
    const take = (r: Validated): void => {
      if (r.entry) found.push(r.entry);
      docIssues.push(...r.issues);
    };
    if (isPlainObject(value) && value.kind === 'List' && value.items !== undefined) {
      const v = new Checker(ctx, ['items'], undefined);
      if (value.apiVersion !== 'v1') v.fail(['apiVersion'], value.apiVersion, 'a List must have apiVersion: v1', 'set apiVersion: v1', true);
      if (!Array.isArray(value.items)) {
        v.fail([], value.items, 'items of a List must be a list of objects', 'write items as a YAML list (each entry starting with "- ")');
      } else {
        value.items.forEach((item, j) => take(validateObject(item, ctx, ['items', j])));
      }
      docIssues.push(...v.issues);
    } else {
      take(validateObject(value, ctx, []));
    }
    if (docIssues.length === 0) entries.push(...found);
    issues.push(...docIssues);
  });

  const seen = new Map<string, ManifestEntry>();
  for (const e of entries) {
    const key = describeObject(e.object);
    const first = seen.get(key);
    if (first) {
      issues.push({
        reason: 'duplicate', file, document: e.document, line: e.line, object: key, path: 'metadata.name',
        value: e.object.metadata.name,
        problem: `${key} is also defined in document ${first.document} (line ${first.line})`,
        fix: 'keep one definition of each object per file',
      });
    } else {
      seen.set(key, e);
    }
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, entries };
}

/** `Pod shop/web`, `Namespace shop`. */
export function describeObject(o: { kind: string; metadata: { name: string; namespace?: string } }): string {
  return `${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;
}

/** One line per issue: `shop.yaml: document 2 (line 14), Pod shop/web: spec.containers[0].command:
 * got "node app.js": expected a list of strings; write it as a YAML list ...`. */
export function formatIssue(i: ManifestIssue): string {
  const where = `${i.file}: document ${i.document}${i.line !== undefined ? ` (line ${i.line})` : ''}`;
  const what = [i.object, i.path].filter((s) => s).join(': ');
  const got = i.value === undefined ? '' : ` got ${showValue(i.value)}:`;
  return `${where}${what ? `, ${what}` : ''}:${got} ${i.problem}; ${i.fix}`;
}

// --- addresses (shared with the sandbox's allocators) ------------------------------------

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Dotted quad to a 32-bit unsigned number; undefined when not a canonical IPv4 address. */
export function parseIPv4(s: string): number | undefined {
  if (!IPV4.test(s)) return undefined;
  return s.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Cidr { base: number; bits: number; size: number }

export function parseCidr(s: string): Cidr | undefined {
  const [ip, len, extra] = s.split('/');
  const base = parseIPv4(ip ?? '');
  const bits = Number(len);
  if (base === undefined || extra !== undefined || !/^\d{1,2}$/.test(len ?? '') || bits > 32) return undefined;
  const size = 2 ** (32 - bits);
  if (base % size !== 0) return undefined;
  return { base, bits, size };
}

export function cidrContains(c: Cidr, ip: number): boolean {
  return ip >= c.base && ip < c.base + c.size;
}

// --- validation machinery ----------------------------------------------------------------

type Path = (string | number)[];

interface DocContext {
  file: string;
  document: number;
  docLine: number;
  fieldLine(path: Path): number;
  opts: ManifestOptions;
}

interface Validated { entry?: ManifestEntry; issues: ManifestIssue[] }

/** `spec.containers[0].command`, `metadata.labels["app.kubernetes.io/name"]`. */
export function formatPath(path: Path): string {
  let s = '';
  for (const p of path) {
    if (typeof p === 'number') s += `[${p}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(p)) s += s ? `.${p}` : p;
    else s += `[${JSON.stringify(p)}]`;
  }
  return s;
}

class Checker {
  readonly issues: ManifestIssue[] = [];
  constructor(private readonly ctx: DocContext, private readonly root: Path, public object: string | undefined) {}

  fail(path: Path, value: unknown, problem: string, fix: string, absolute = false, reason: IssueReason = 'invalid'): void {
    const full = absolute ? path : [...this.root, ...path];
    this.issues.push({
      reason, file: this.ctx.file, document: this.ctx.document, line: this.ctx.fieldLine(full),
      ...(this.object ? { object: this.object } : {}),
      path: formatPath(full), ...(value !== undefined ? { value } : {}), problem, fix,
    });
  }
  unsupported(path: Path, value: unknown, problem: string, fix: string): void {
    this.fail(path, value, problem, fix, false, 'unsupported');
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

function showValue(v: unknown): string {
  const s = JSON.stringify(v);
  if (s === undefined) return String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

// Kubernetes name rules (k8s.io/apimachinery/pkg/util/validation).
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const ENV_VAR_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

type NameRule = 'dns1123-label' | 'dns1123-subdomain' | 'dns1035-label';

function checkName(v: Checker, path: Path, value: unknown, rule: NameRule, what: string): value is string {
  if (typeof value !== 'string' || value === '') {
    v.fail(path, value, `${what} is required and must be a string`, `set ${formatPath(path)} to a lower-case name such as "web"`);
    return false;
  }
  const [re, max, desc] =
    rule === 'dns1123-label' ? [DNS1123_LABEL, 63, 'a DNS-1123 label: at most 63 lower-case letters, digits and "-", starting and ending with a letter or digit']
    : rule === 'dns1035-label' ? [DNS1035_LABEL, 63, 'a DNS-1035 label: at most 63 lower-case letters, digits and "-", starting with a letter and ending with a letter or digit']
    : [DNS1123_SUBDOMAIN, 253, 'a DNS-1123 subdomain: at most 253 characters, lower-case labels of letters, digits and "-" separated by "."'];
  if (value.length > max || !re.test(value)) {
    v.fail(path, value, `${what} must be ${desc}`, `rename it, e.g. ${JSON.stringify(suggestName(value, rule))}`);
    return false;
  }
  return true;
}

function suggestName(s: string, rule: NameRule): string {
  let out = s.toLowerCase().replace(rule === 'dns1123-subdomain' ? /[^a-z0-9.-]+/g : /[^a-z0-9-]+/g, '-').replace(/^[-.]+|[-.]+$/g, '');
  if (rule === 'dns1035-label' && !/^[a-z]/.test(out)) out = `x-${out}`;
  return (out || 'name').slice(0, 63).replace(/[-.]+$/, '');
}

function checkQualifiedName(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) {
    return 'the prefix before "/" must be a DNS-1123 subdomain (e.g. "app.kubernetes.io")';
  }
  if (name.length > 63 || !QUALIFIED_NAME_PART.test(name)) {
    return 'the name part must be at most 63 characters of letters, digits, "-", "_" and ".", starting and ending with a letter or digit';
  }
  return undefined;
}

function checkStringMap(v: Checker, path: Path, value: unknown, kind: 'labels' | 'annotations' | 'selector'): value is Labels {
  if (value === undefined || value === null) return true;
  if (!isPlainObject(value)) {
    v.fail(path, value, `${kind} must be a map of key: value strings`, `write ${formatPath(path)} as a YAML map, e.g. { app: web }`);
    return false;
  }
  let ok = true;
  for (const [k, val] of Object.entries(value)) {
    const keyProblem = checkQualifiedName(k);
    if (keyProblem) {
      v.fail([...path, k], k, `key ${JSON.stringify(k)} is not a valid ${kind === 'annotations' ? 'annotation' : 'label'} key: ${keyProblem}`, 'rename the key');
      ok = false;
    }
    if (typeof val !== 'string') {
      v.fail([...path, k], val, `${kind === 'annotations' ? 'annotation' : 'label'} values must be strings`,
        `quote it: ${k}: "${String(val)}"`);
      ok = false;
    } else if (kind !== 'annotations' && val !== '' && (val.length > 63 || !QUALIFIED_NAME_PART.test(val))) {
      v.fail([...path, k], val, 'label values must be empty or at most 63 letters, digits, "-", "_" and ".", starting and ending with a letter or digit',
        'shorten or simplify the value');
      ok = false;
    }
  }
  return ok;
}

function checkPort(v: Checker, path: Path, value: unknown, what: string): value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
    const hint = typeof value === 'string' && /^\d+$/.test(value) ? `write it without quotes: ${value}` : `set ${formatPath(path)} to a number between 1 and 65535`;
    v.fail(path, value, `${what} must be an integer between 1 and 65535`, hint);
    return false;
  }
  return true;
}

function checkProtocol(v: Checker, path: Path, value: unknown): boolean {
  if (value === undefined) return true;
  if (value !== 'TCP' && value !== 'UDP' && value !== 'SCTP') {
    v.fail(path, value, 'protocol must be one of TCP, UDP, SCTP', 'use TCP (the default) or UDP, in upper case');
    return false;
  }
  return true;
}

function checkStringList(v: Checker, path: Path, value: unknown, example: string): boolean {
  if (value === undefined) return true;
  if (!Array.isArray(value)) {
    v.fail(path, value, 'expected a list of strings', `write it as a YAML list, e.g. ${formatPath(path).split('.').pop()?.replace(/\[\d+\]/g, '')}: ${example}`);
    return false;
  }
  let ok = true;
  value.forEach((s, i) => {
    if (typeof s !== 'string') {
      v.fail([...path, i], s, 'every entry must be a string', `quote it: "${String(s)}"`);
      ok = false;
    }
  });
  return ok;
}

// --- kinds -------------------------------------------------------------------------------

/** What the API server checks beyond the schema for a kind nodemesh reads closely: name
 * rules, and the spec checks in validate (port ranges, VIP range, the sandbox's runtime
 * limits). Every other kind with a schema is accepted on its schema alone. */
interface KindSpec {
  apiVersions: readonly string[];
  nameRule: NameRule;
  validate?(v: Checker, raw: Record<string, unknown>, ctx: DocContext): void;
}

const KINDS: Readonly<Record<string, KindSpec>> = {
  Namespace: { apiVersions: ['v1'], nameRule: 'dns1123-label' },
  Pod: { apiVersions: ['v1'], nameRule: 'dns1123-subdomain', validate: (v, raw, ctx) => validatePodSpec(v, raw.spec, ['spec'], 'a Pod', ctx) },
  Service: { apiVersions: ['v1'], nameRule: 'dns1035-label', validate: validateServiceSpec },
  Deployment: { apiVersions: ['apps/v1'], nameRule: 'dns1123-subdomain', validate: validateWorkloadTemplate },
  ReplicaSet: { apiVersions: ['apps/v1'], nameRule: 'dns1123-subdomain', validate: validateWorkloadTemplate },
  AuthorizationPolicy: { apiVersions: [SECURITY_API_VERSION], nameRule: 'dns1123-subdomain' },
  PeerAuthentication: { apiVersions: [SECURITY_API_VERSION], nameRule: 'dns1123-subdomain' },
};

const DEFAULT_KIND: KindSpec = { apiVersions: [], nameRule: 'dns1123-subdomain' };

/** Kinds nodemesh reads closely; any other kind with a schema (installer/crds,
 * kubernetes-models, gateway-api) is accepted too. */
export const SUPPORTED_KINDS: readonly string[] = Object.freeze(Object.keys(KINDS));

function validateObject(raw: unknown, ctx: DocContext, root: Path): Validated {
  const v = new Checker(ctx, root, undefined);
  const record = (): Validated => ({ issues: v.issues });
  if (!isPlainObject(raw)) {
    v.fail([], raw, 'a manifest document must be a map with apiVersion, kind and metadata', 'check the indentation of this document');
    return record();
  }
  const kind = raw.kind;
  if (typeof kind !== 'string' || kind === '') {
    v.fail(['kind'], kind, 'kind is required', 'set kind, e.g. kind: Deployment');
    return record();
  }
  const meta = raw.metadata;
  const nameForMessages = isPlainObject(meta) && typeof meta.name === 'string' ? meta.name : undefined;
  const nsForMessages = isPlainObject(meta) && typeof meta.namespace === 'string' ? meta.namespace : undefined;
  v.object = `${kind} ${nsForMessages ? `${nsForMessages}/` : ''}${nameForMessages ?? '(unnamed)'}`;
  const known = KINDS[kind];
  if (typeof raw.apiVersion !== 'string' || raw.apiVersion === '') {
    v.fail(['apiVersion'], raw.apiVersion, 'apiVersion is required', `set apiVersion${known ? `: ${known.apiVersions[0]}` : ', e.g. apps/v1'}`);
    return record();
  }
  const schema = validateWithSchema(raw);
  if (!schema.schemaKnown) {
    if (known) {
      v.fail(['apiVersion'], raw.apiVersion, `${kind} needs apiVersion ${known.apiVersions.join(' or ')}`, `set apiVersion: ${known.apiVersions[0]}`);
    } else {
      v.fail(['kind'], kind, `no schema for kind ${JSON.stringify(kind)} in apiVersion ${raw.apiVersion}: a cluster without that CRD would refuse it too`,
        'check the spelling of kind and apiVersion; nodemesh knows the Kubernetes built-in kinds, Gateway API kinds and the CRDs in installer/crds', false, 'unknown-kind');
    }
    return record();
  }
  const spec = known ?? DEFAULT_KIND;

  // metadata: the API server's own checks (not in any schema)
  if (!isPlainObject(meta)) {
    v.fail(['metadata'], meta, 'metadata is required and must be a map', 'add metadata: { name: ... }');
    return record();
  }
  if (meta.generateName !== undefined && meta.name === undefined) {
    v.unsupported(['metadata', 'generateName'], meta.generateName, 'generateName is not supported: apply must be repeatable', 'set metadata.name instead');
  } else {
    checkName(v, ['metadata', 'name'], meta.name, spec.nameRule, `${kind} name`);
  }
  let namespace: string | undefined;
  if (isNamespaced(raw.apiVersion, kind)) {
    if (meta.namespace === undefined || meta.namespace === '') namespace = ctx.opts.defaultNamespace ?? DEFAULT_NAMESPACE;
    else if (checkName(v, ['metadata', 'namespace'], meta.namespace, 'dns1123-label', 'namespace')) namespace = meta.namespace;
  } else if (meta.namespace !== undefined) {
    v.fail(['metadata', 'namespace'], meta.namespace, `${kind} is cluster-scoped and has no namespace`, 'remove metadata.namespace');
  }
  checkStringMap(v, ['metadata', 'labels'], meta.labels, 'labels');
  checkStringMap(v, ['metadata', 'annotations'], meta.annotations, 'annotations');

  // The kind's own checks, then the schema's; where both fault a field, the own check
  // speaks (it names the value and a fix made for that field).
  const own = new Checker(ctx, root, v.object);
  spec.validate?.(own, raw, ctx);
  const faulted = new Set([...v.issues, ...own.issues].map((i) => i.path));
  v.issues.push(...own.issues);
  for (const i of schema.issues) {
    const at = [...root, ...i.segments];
    if (faulted.has(formatPath(at))) continue;
    // an unknown field's "value" is its name, as written
    const value = i.message.startsWith('unknown field') ? String(i.segments[i.segments.length - 1]) : valueAt(raw, i.segments);
    v.fail(i.segments as Path, value, i.message, fixFor(i));
    // the API server's spelling of the path (map keys in plain brackets)
    v.issues[v.issues.length - 1]!.path = root.length ? `${formatPath(root)}${i.path && !i.path.startsWith('[') ? '.' : ''}${i.path}` : i.path;
  }
  if (v.issues.length > 0) return record();

  const metadata: ObjectMeta = { ...(meta as unknown as ObjectMeta), name: meta.name as string };
  if (namespace !== undefined) metadata.namespace = namespace;
  const object = { ...raw, metadata } as unknown as ManifestObject;
  const line = root.length > 0 ? ctx.fieldLine(root) : ctx.docLine;
  return { entry: { object, file: ctx.file, document: ctx.document, line }, issues: [] };
}

/** Deployment and ReplicaSet: the pod template is a pod spec (same checks as a Pod's). */
function validateWorkloadTemplate(v: Checker, raw: Record<string, unknown>, ctx: DocContext): void {
  const spec = raw.spec;
  if (!isPlainObject(spec)) {
    v.fail(['spec'], spec, `a ${String(raw.kind)} needs a spec with selector and template`, 'add spec.selector and spec.template');
    return;
  }
  const tmpl = spec.template;
  if (!isPlainObject(tmpl)) {
    v.fail(['spec', 'template'], tmpl, 'a pod template is required', 'add spec.template: { metadata: { labels: ... }, spec: { containers: [...] } }');
    return;
  }
  const tmeta = isPlainObject(tmpl.metadata) ? tmpl.metadata : {};
  checkStringMap(v, ['spec', 'template', 'metadata', 'labels'], tmeta.labels, 'labels');
  const sel = isPlainObject(spec.selector) ? spec.selector : undefined;
  const ml = sel && isPlainObject(sel.matchLabels) ? sel.matchLabels : undefined;
  if (!ml || Object.keys(ml).length === 0) {
    v.fail(['spec', 'selector', 'matchLabels'], undefined, 'a workload needs spec.selector.matchLabels (the sandbox supports matchLabels only)', 'set it to the template\'s labels, e.g. { app: web }');
  } else if (sel?.matchExpressions !== undefined) {
    v.unsupported(['spec', 'selector', 'matchExpressions'], undefined, 'the sandbox supports matchLabels selectors only', 'express the selector with matchLabels');
  } else if (!Object.entries(ml).every(([k, val]) => isPlainObject(tmeta.labels) && tmeta.labels[k] === val)) {
    v.fail(['spec', 'selector'], ml, '`selector` does not match template `labels`', 'make every selector label a label of spec.template.metadata');
  }
  if (spec.replicas !== undefined && (typeof spec.replicas !== 'number' || !Number.isInteger(spec.replicas) || spec.replicas < 0)) {
    v.fail(['spec', 'replicas'], spec.replicas, 'must be greater than or equal to 0', 'set replicas to a whole number, e.g. 3');
  }
  validatePodSpec(v, tmpl.spec, ['spec', 'template', 'spec'], 'a pod template', ctx);
}

const FIELD_REF_PATHS = ['metadata.name', 'metadata.namespace', 'metadata.uid', 'spec.nodeName', 'spec.serviceAccountName', 'status.podIP', 'status.hostIP'];

function validatePodSpec(v: Checker, spec: unknown, at: Path, what: string, ctx: DocContext): void {
  if (!isPlainObject(spec)) {
    v.fail(at, spec, `${what} needs a spec with at least one container`, `add ${formatPath([...at, 'containers'])}`);
    return;
  }
  if (spec.nodeName !== undefined) checkName(v, [...at, 'nodeName'], spec.nodeName, 'dns1123-subdomain', 'nodeName');
  if (spec.serviceAccountName !== undefined) checkName(v, [...at, 'serviceAccountName'], spec.serviceAccountName, 'dns1123-subdomain', 'serviceAccountName');
  if (ctx.opts.sandbox && spec.initContainers !== undefined) {
    v.unsupported([...at, 'initContainers'], undefined, 'the sandbox does not run init containers', 'move the work into the container command');
  }
  const containers = spec.containers;
  if (!Array.isArray(containers) || containers.length === 0) {
    v.fail([...at, 'containers'], containers, `${what} needs at least one container`, 'add spec.containers: [{ name: app, command: [...] }]');
    return;
  }
  const names = new Set<string>();
  const portNames = new Set<string>();
  containers.forEach((c: unknown, i) => {
    const p: Path = [...at, 'containers', i];
    if (!isPlainObject(c)) {
      v.fail(p, c, 'each container must be a map', 'write it as { name: ..., command: [...] }');
      return;
    }
    if (checkName(v, [...p, 'name'], c.name, 'dns1123-label', 'container name')) {
      if (names.has(c.name)) v.fail([...p, 'name'], c.name, 'container names must be unique within the pod', 'rename one of them');
      names.add(c.name);
    }
    checkStringList(v, [...p, 'command'], c.command, '["node", "server.js"]');
    checkStringList(v, [...p, 'args'], c.args, '["--port", "8080"]');
    if (ctx.opts.sandbox && (c.command === undefined || (Array.isArray(c.command) && c.command.length === 0))) {
      v.fail([...p, 'command'], c.command, 'the sandbox runs processes, not images, so each container needs a command',
        'set command to the program and its arguments, e.g. ["nodemesh-sample-app", "http", "--port", "8080"]');
    }
    if (c.env !== undefined) validateEnv(v, [...p, 'env'], c.env, ctx);
    if (c.ports !== undefined) {
      if (!Array.isArray(c.ports)) {
        v.fail([...p, 'ports'], c.ports, 'ports must be a list', 'write ports: [{ name: http, containerPort: 8080 }]');
      } else {
        c.ports.forEach((port: unknown, j) => {
          const pp: Path = [...p, 'ports', j];
          if (!isPlainObject(port)) {
            v.fail(pp, port, 'each port must be a map', 'write it as { name: http, containerPort: 8080 }');
            return;
          }
          checkPort(v, [...pp, 'containerPort'], port.containerPort, 'containerPort');
          checkProtocol(v, [...pp, 'protocol'], port.protocol);
          if (port.name !== undefined) {
            if (typeof port.name !== 'string' || port.name.length > 15 || !IANA_SVC_NAME.test(port.name) || !/[a-z]/.test(port.name) || port.name.includes('--')) {
              v.fail([...pp, 'name'], port.name, 'a port name must be an IANA service name: at most 15 lower-case letters, digits and single "-", with at least one letter',
                'rename it, e.g. "http"');
            } else if (portNames.has(port.name)) {
              v.fail([...pp, 'name'], port.name, 'port names must be unique within the pod', 'rename one of them');
            } else {
              portNames.add(port.name);
            }
          }
        });
      }
    }
  });
}

function validateEnv(v: Checker, path: Path, env: unknown, ctx: DocContext): void {
  if (!Array.isArray(env)) {
    v.fail(path, env, 'env must be a list of { name, value }', 'write env: [{ name: MODE, value: "fast" }]');
    return;
  }
  env.forEach((e: unknown, i) => {
    const p: Path = [...path, i];
    if (!isPlainObject(e)) {
      v.fail(p, e, 'each env entry must be a map', 'write it as { name: MODE, value: "fast" }');
      return;
    }
    if (typeof e.name !== 'string' || !ENV_VAR_NAME.test(e.name)) {
      v.fail([...p, 'name'], e.name, 'an env var name must be letters, digits, "_", "-" and ".", not starting with a digit', 'rename it, e.g. "MY_VAR"');
    }
    if (e.value !== undefined && typeof e.value !== 'string') {
      v.fail([...p, 'value'], e.value, 'env values must be strings', `quote it: value: "${String(e.value)}"`);
    }
    if (e.valueFrom !== undefined) {
      if (e.value !== undefined) v.fail([...p, 'valueFrom'], undefined, 'set either value or valueFrom, not both', 'remove one of them');
      const fieldPath = isPlainObject(e.valueFrom) && isPlainObject(e.valueFrom.fieldRef) ? e.valueFrom.fieldRef.fieldPath : undefined;
      if (fieldPath === undefined) {
        if (ctx.opts.sandbox) {
          v.unsupported([...p, 'valueFrom'], e.valueFrom, 'the sandbox only supports valueFrom.fieldRef (no Secrets or ConfigMaps)', 'set value directly');
        }
      } else if (typeof fieldPath !== 'string' || !FIELD_REF_PATHS.includes(fieldPath)) {
        v.fail([...p, 'valueFrom', 'fieldRef', 'fieldPath'], fieldPath, `fieldRef.fieldPath must be one of ${FIELD_REF_PATHS.join(', ')}`, 'pick one of those fields');
      }
    }
  });
}

function validateServiceSpec(v: Checker, raw: Record<string, unknown>, ctx: DocContext): void {
  const spec = raw.spec;
  if (!isPlainObject(spec)) {
    v.fail(['spec'], spec, 'a Service needs a spec with ports', 'add spec.ports and spec.selector');
    return;
  }
  if (spec.type !== undefined && spec.type !== 'ClusterIP') {
    v.unsupported(['spec', 'type'], spec.type, 'only ClusterIP Services are supported', 'remove spec.type or set it to ClusterIP');
  }
  checkStringMap(v, ['spec', 'selector'], spec.selector, 'selector');

  const cidrText = ctx.opts.serviceCIDR ?? DEFAULT_SERVICE_CIDR;
  const cidr = parseCidr(cidrText);
  if (spec.clusterIP !== undefined && spec.clusterIP !== '') {
    const ip = typeof spec.clusterIP === 'string' ? parseIPv4(spec.clusterIP) : undefined;
    if (spec.clusterIP === 'None') {
      v.unsupported(['spec', 'clusterIP'], spec.clusterIP, 'headless Services are not supported yet', 'remove spec.clusterIP to get a virtual IP');
    } else if (ip === undefined) {
      v.fail(['spec', 'clusterIP'], spec.clusterIP, 'clusterIP must be an IPv4 address', `use an address inside the service range ${cidrText}, or remove it to have one allocated`);
    } else if (cidr && !cidrContains(cidr, ip)) {
      v.fail(['spec', 'clusterIP'], spec.clusterIP, `clusterIP is outside the service range ${cidrText}`, `use an address inside ${cidrText}, or remove it to have one allocated`);
    } else if (cidr && (ip === cidr.base || ip === cidr.base + cidr.size - 1)) {
      v.fail(['spec', 'clusterIP'], spec.clusterIP, `clusterIP is the network or broadcast address of ${cidrText}`, 'pick another address');
    }
    if (spec.clusterIPs !== undefined && (!Array.isArray(spec.clusterIPs) || spec.clusterIPs[0] !== spec.clusterIP)) {
      v.fail(['spec', 'clusterIPs'], spec.clusterIPs, 'clusterIPs[0] must equal clusterIP', 'remove clusterIPs or make its first entry match clusterIP');
    }
  }

  const ports = spec.ports;
  if (!Array.isArray(ports) || ports.length === 0) {
    v.fail(['spec', 'ports'], ports, 'a Service needs at least one port', 'add spec.ports: [{ name: http, port: 80, targetPort: 8080 }]');
    return;
  }
  const names = new Set<string>();
  const portProto = new Set<string>();
  ports.forEach((sp: unknown, i) => {
    const p: Path = ['spec', 'ports', i];
    if (!isPlainObject(sp)) {
      v.fail(p, sp, 'each port must be a map', 'write it as { name: http, port: 80, targetPort: 8080 }');
      return;
    }
    if (checkPort(v, [...p, 'port'], sp.port, 'port')) {
      const key = `${sp.port}/${(sp.protocol as string | undefined) ?? 'TCP'}`;
      if (portProto.has(key)) v.fail([...p, 'port'], sp.port, `port ${key} is listed twice`, 'remove the duplicate');
      portProto.add(key);
    }
    checkProtocol(v, [...p, 'protocol'], sp.protocol);
    const tp = sp.targetPort;
    if (typeof tp === 'number') {
      checkPort(v, [...p, 'targetPort'], tp, 'targetPort');
    } else if (typeof tp === 'string') {
      if (/^\d+$/.test(tp)) {
        v.fail([...p, 'targetPort'], tp, 'a quoted number is read as a port name, and port names need a letter', `write it without quotes: targetPort: ${tp}`);
      } else if (tp.length > 15 || !IANA_SVC_NAME.test(tp) || tp.includes('--')) {
        v.fail([...p, 'targetPort'], tp, 'a named targetPort must be an IANA service name (at most 15 lower-case letters, digits and "-")',
          'use the name of a containerPort of the backing pods, or a number');
      }
    } else if (tp !== undefined) {
      v.fail([...p, 'targetPort'], tp, 'targetPort must be a port number or a container port name', 'e.g. targetPort: 8080 or targetPort: http');
    }
    if (sp.name !== undefined) {
      if (typeof sp.name !== 'string' || sp.name.length > 63 || !DNS1123_LABEL.test(sp.name)) {
        v.fail([...p, 'name'], sp.name, 'a Service port name must be a DNS-1123 label', 'rename it, e.g. "http"');
      } else if (names.has(sp.name)) {
        v.fail([...p, 'name'], sp.name, 'Service port names must be unique', 'rename one of them');
      } else {
        names.add(sp.name);
      }
    } else if (ports.length > 1) {
      v.fail([...p, 'name'], undefined, 'every port of a Service with several ports needs a name', 'add name: http (or similar)');
    }
  });
}

/** Edit distance counting a swap of neighbours as one edit (`form` -> `from` is 1). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The known field a misspelling most likely meant (`principal` -> `principals`). */
function closestField(name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  let best: { field: string; d: number } | undefined;
  for (const k of known) {
    const d = k.toLowerCase() === lower ? 0 : editDistance(lower, k.toLowerCase());
    if (d <= Math.max(1, Math.min(3, Math.floor(k.length / 4))) && (!best || d < best.d)) best = { field: k, d };
  }
  return best?.field;
}


// --- schema issues ---------------------------------------------------------------------
// Everything a schema says (types, required fields, enums, patterns, unknown fields, CEL
// rules) comes from daemon/schema: the CRDs in installer/crds for our custom resources,
// kubernetes-models and @kubernetes-models/gateway-api for the rest. Here it only gets the
// file, document, line and a fix.

function valueAt(raw: unknown, segs: readonly (string | number)[]): unknown {
  let cur = raw;
  for (const s of segs) cur = cur !== null && typeof cur === 'object' ? (cur as Record<string | number, unknown>)[s] : undefined;
  return cur;
}

function fixFor(i: DetailedIssue): string {
  if (i.message.startsWith('unknown field')) {
    const field = String(i.segments[i.segments.length - 1]);
    const near = i.known ? closestField(field, i.known) : undefined;
    if (near) return `did you mean ${near}? (accepted here: ${i.known!.join(', ')})`;
    return i.known ? `remove it; accepted here: ${i.known.join(', ')}` : 'remove it or correct its spelling';
  }
  if (i.message.startsWith('Unsupported value')) {
    const m = /supported values: (.*)$/.exec(i.message);
    return `use one of ${m?.[1] ?? 'the supported values'}, in that spelling`;
  }
  if (i.message === 'Required value') return `add ${String(i.segments[i.segments.length - 1])}`;
  return 'correct the value as the message says (the schema is in installer/crds for nodemesh resources, the Kubernetes API reference otherwise)';
}
