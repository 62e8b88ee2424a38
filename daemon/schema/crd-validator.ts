// Custom resources validated through their CRD's openAPIV3Schema, as the API server does:
// every CRD file in installer/crds is loaded (no code per CRD), its structural schema turned
// into an ajv schema once, and objects checked with strict field validation (unknown fields
// are errors, as `kubectl apply` reports them by default) and the schema's
// `x-kubernetes-validations` CEL rules (./cel.ts), which, as on the API server, are only
// evaluated when the object has no other error.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv, { type AnySchema, type ValidateFunction } from 'ajv';
import type { DataValidationCxt } from 'ajv/dist/types';
import addFormats from 'ajv-formats';
import { parseAllDocuments } from 'yaml';
import { issuesFromAjv, type DetailedIssue } from './ajv-errors';
import { compileRule } from './cel';
import { formatFieldPath, segmentsOf } from './field-path';

/** Where the CRDs live: <repo>/installer/crds (this file is dist/daemon/schema/*.js or
 * daemon/schema/*.ts); NODEMESH_CRD_DIR overrides it (a container image ships them elsewhere). */
export function crdDirectory(): string {
  if (process.env.NODEMESH_CRD_DIR) return process.env.NODEMESH_CRD_DIR;
  const fromDist = path.resolve(__dirname, '..', '..', '..', 'installer', 'crds');
  return fs.existsSync(fromDist) ? fromDist : path.resolve(__dirname, '..', '..', 'installer', 'crds');
}

export interface CrdKind {
  group: string;
  version: string;
  kind: string;
  plural: string;
  namespaced: boolean;
  validate(obj: unknown): DetailedIssue[];
}

interface CelFailure { instancePath: string; message: string; fieldPath?: string }

/** Filled by the CEL keyword during one (synchronous) validation. */
let celFailures: CelFailure[] = [];

function newAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, verbose: true, strict: false, logger: false, allowUnionTypes: true });
  addFormats(ajv);
  for (const f of ['int32', 'int64', 'float', 'double', 'byte', 'quantity']) ajv.addFormat(f, true);
  ajv.addKeyword({
    keyword: 'x-kubernetes-validations',
    schemaType: 'array',
    compile(rules: { rule: string; message?: string; messageExpression?: string; fieldPath?: string }[]) {
      const compiled = rules.map((r) => ({ test: compileRule(r.rule), message: r.message ?? `failed rule: ${r.rule}`, fieldPath: r.fieldPath }));
      return (data: unknown, cxt?: DataValidationCxt): boolean => {
        for (const c of compiled) {
          if (!c.test(data)) celFailures.push({ instancePath: cxt?.instancePath ?? '', message: c.message, ...(c.fieldPath ? { fieldPath: c.fieldPath } : {}) });
        }
        return true; // reported after the schema errors, see validate()
      };
    },
  });
  return ajv;
}

/** A structural schema as ajv must read it: objects with properties refuse other fields
 * unless they preserve unknown fields; int-or-string is an integer or a string. */
export function toAjvSchema(s: Record<string, unknown>, root = true): Record<string, unknown> {
  const out: Record<string, unknown> = { ...s };
  if (out['x-kubernetes-int-or-string'] === true) {
    delete out.anyOf;
    out.type = ['integer', 'string'];
  }
  if (out.properties && typeof out.properties === 'object') {
    out.properties = Object.fromEntries(Object.entries(out.properties as Record<string, Record<string, unknown>>).map(([k, v]) => [k, toAjvSchema(v, false)]));
  }
  if (out.items && typeof out.items === 'object') out.items = toAjvSchema(out.items as Record<string, unknown>, false);
  if (out.additionalProperties && typeof out.additionalProperties === 'object') {
    out.additionalProperties = toAjvSchema(out.additionalProperties as Record<string, unknown>, false);
  }
  for (const k of ['anyOf', 'oneOf', 'allOf'] as const) {
    if (Array.isArray(out[k])) out[k] = (out[k] as Record<string, unknown>[]).map((x) => toAjvSchema(x, false));
  }
  if (root) {
    // The API server owns these; ObjectMeta is checked apart (it is not in a CRD schema).
    out.properties = { apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { type: 'object' }, ...(out.properties as object) };
  }
  const isObject = out.type === 'object' || (out.type === undefined && out.properties !== undefined);
  if (isObject && out.properties && out.additionalProperties === undefined && out['x-kubernetes-preserve-unknown-fields'] !== true) {
    out.additionalProperties = false;
  }
  return out;
}

interface CrdDoc {
  kind?: string;
  metadata?: { name?: string };
  spec?: {
    group: string; scope: string; names: { kind: string; plural: string };
    versions: { name: string; served?: boolean; schema?: { openAPIV3Schema?: Record<string, unknown> } }[];
  };
}

export function compileCrd(crd: CrdDoc, source: string): CrdKind[] {
  if (crd.kind !== 'CustomResourceDefinition' || !crd.spec) throw new Error(`${source}: not a CustomResourceDefinition`);
  const ajv = newAjv();
  const { group, scope, names } = crd.spec;
  return crd.spec.versions.filter((v) => v.served !== false).map((v) => {
    const schema = v.schema?.openAPIV3Schema;
    if (!schema) throw new Error(`${source}: version ${v.name} has no openAPIV3Schema`);
    let fn: ValidateFunction;
    try {
      fn = ajv.compile(toAjvSchema(schema) as AnySchema);
    } catch (e) {
      throw new Error(`${source}: version ${v.name}: ${(e as Error).message}`);
    }
    return {
      group, version: v.name, kind: names.kind, plural: names.plural, namespaced: scope === 'Namespaced',
      validate(obj: unknown): DetailedIssue[] {
        celFailures = [];
        const ok = fn(obj);
        const cel = celFailures;
        celFailures = [];
        if (!ok) return issuesFromAjv(fn.errors, obj);
        return cel.map((c) => {
          const segments = segmentsOf(c.instancePath, obj);
          const full = c.fieldPath ? [...segments, ...c.fieldPath.replace(/^\./, '').split('.')] : segments;
          return { path: formatFieldPath(full), segments: full, message: `Invalid value: ${c.message}` };
        });
      },
    };
  });
}

let cache: Map<string, CrdKind> | undefined;

/** `group/version/Kind` -> compiled validator, for every CRD in the directory (read once). */
export function crdKinds(dir = crdDirectory()): ReadonlyMap<string, CrdKind> {
  if (cache && dir === crdDirectory()) return cache;
  const out = new Map<string, CrdKind>();
  let files: string[] = [];
  try {
    files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  for (const f of files) {
    const file = path.join(dir, f);
    for (const doc of parseAllDocuments(fs.readFileSync(file, 'utf8'))) {
      if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0]!.message}`);
      const crd = doc.toJS() as CrdDoc | null;
      if (!crd) continue;
      for (const k of compileCrd(crd, file)) out.set(`${k.group}/${k.version}/${k.kind}`, k);
    }
  }
  if (dir === crdDirectory()) cache = out;
  return out;
}
