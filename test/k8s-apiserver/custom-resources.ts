// CustomResourceDefinitions: checking a CRD as the apiextensions server does (the parts tests
// meet), and serving its kind: unknown fields pruned (with a warning) or refused under
// fieldValidation=Strict (26, 27), schema defaults applied, then the object validated with the
// project's one CRD validator (daemon/schema: the openAPIV3Schema through ajv, then the
// x-kubernetes-validations CEL rules, only when nothing else is wrong, as the API server does),
// its issues turned into Status causes with the real reasons (25, 28).
//
// CEL is the subset daemon/schema/cel.ts implements. A rule outside it, and every transition
// rule (one that reads oldSelf: the real server runs those on updates only), is NOT evaluated:
// the CRD is still accepted, as a real server accepts it, with a Warning header naming each
// skipped rule, so a test never mistakes a skipped rule for a passing one.
// Not covered: conversion webhooks, the scale subresource, printer columns in tables.
import { compileCrd } from '../../daemon/schema/crd-validator';
import { compileRule } from '../../daemon/schema/validation-rule';
import type { DetailedIssue } from '../../daemon/schema/ajv-errors';
import { FieldErrors, type StatusCause } from './status';
import type { KubeObject, ResourceType } from './resource-types';
import type { ListKeys } from './patches';

type Schema = Record<string, any>;

export interface CustomResourceSchema {
  /** Removes fields the schema does not know (and applies defaults); returns their paths. */
  prune(obj: KubeObject): string[];
  validate(obj: KubeObject): StatusCause[];
  listKeys: ListKeys;
}

const isObject = (v: unknown): v is Record<string, any> => v !== null && typeof v === 'object' && !Array.isArray(v);

function hasCelRules(s: unknown): boolean {
  if (!isObject(s)) return Array.isArray(s) && s.some(hasCelRules);
  if (Array.isArray(s['x-kubernetes-validations']) && s['x-kubernetes-validations'].length > 0) return true;
  return Object.values(s).some(hasCelRules);
}

/** The schema with only the CEL rules the subset evaluates, and the rules it leaves out. */
export function evaluableCel(schema: Schema): { schema: Schema; skipped: string[] } {
  const skipped: string[] = [];
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (!isObject(v)) return v;
    const out: Schema = {};
    for (const [k, c] of Object.entries(v)) {
      if (k === 'x-kubernetes-validations' && Array.isArray(c)) {
        out[k] = c.filter((r: { rule?: string }) => {
          const rule = String(r?.rule ?? '');
          let ok = !/\boldSelf\b/.test(rule);
          if (ok) {
            try { compileRule({ rule }); } catch { ok = false; }
          }
          if (!ok) skipped.push(rule);
          return ok;
        });
      } else {
        out[k] = walk(c);
      }
    }
    return out;
  };
  return { schema: walk(schema) as Schema, skipped };
}

/** Warnings for the rules of a CRD this server does not evaluate. */
export function skippedCelWarnings(crd: KubeObject): string[] {
  const versions: any[] = Array.isArray(crd.spec?.versions) ? crd.spec.versions : [];
  return versions.flatMap((v) => (isObject(v?.schema?.openAPIV3Schema) ? evaluableCel(v.schema.openAPIV3Schema).skipped : []))
    .map((rule) => `x-kubernetes-validations rule ${JSON.stringify(rule)} is not evaluated by the test API server (it does not compile in daemon/schema's CEL environment, or it is a transition rule)`);
}

/** The CRD as the validator compiles it: only the CEL rules the subset evaluates. */
function withEvaluableCel(crd: KubeObject, versions: any[]): Parameters<typeof compileCrd>[0] {
  return {
    ...crd,
    spec: { ...crd.spec, versions: versions.map((v) => (isObject(v?.schema?.openAPIV3Schema) ? { ...v, schema: { ...v.schema, openAPIV3Schema: evaluableCel(v.schema.openAPIV3Schema).schema } } : v)) },
  } as Parameters<typeof compileCrd>[0];
}

/** A validator issue as a Status cause: the reason is what the message's prefix names, as
 * field.Error builds the message from its type. */
export function causeOfIssue(issue: { path: string; message: string }): StatusCause {
  const m = issue.message;
  const reason = m.startsWith('Required value') ? 'FieldValueRequired'
    : m.startsWith('Unsupported value') ? 'FieldValueNotSupported'
      : m.startsWith('Invalid value') && / in body must be of type /.test(m) ? 'FieldValueTypeInvalid'
        : m.startsWith('Too long') ? 'FieldValueTooLong'
          : m.startsWith('Too many') ? 'FieldValueTooMany'
            : m.startsWith('Duplicate value') ? 'FieldValueDuplicate'
              : m.startsWith('Forbidden') ? 'FieldValueForbidden'
                : 'FieldValueInvalid';
  return { reason, message: m, field: issue.path };
}

function pruneValue(value: unknown, s: Schema | undefined, path: string, unknown: string[], isRoot: boolean): void {
  if (!s || s['x-kubernetes-preserve-unknown-fields'] === true && !s.properties && !s.additionalProperties) return;
  if (isObject(value)) {
    const props = s.properties as Schema | undefined;
    const additional = s.additionalProperties;
    for (const key of Object.keys(value)) {
      if (isRoot && (key === 'apiVersion' || key === 'kind' || key === 'metadata')) continue;
      const child = props?.[key] ?? (isObject(additional) ? additional : undefined);
      const childPath = path === '' ? key : `${path}.${key}`;
      if (child === undefined) {
        if (s['x-kubernetes-preserve-unknown-fields'] === true || additional === true) continue;
        unknown.push(childPath);
        delete value[key];
        continue;
      }
      pruneValue(value[key], child, childPath, unknown, false);
    }
    if (props) {
      for (const [key, child] of Object.entries(props)) {
        if (value[key] === undefined && isObject(child) && child.default !== undefined) value[key] = structuredClone(child.default);
      }
    }
  } else if (Array.isArray(value) && isObject(s.items)) {
    value.forEach((item, i) => pruneValue(item, s.items, `${path}[${i}]`, unknown, false));
  }
}

/** The served behaviour of one CRD version: pruning, defaults, validation, keyed lists. */
export function compileCustomResourceSchema(crd: KubeObject, version: string): CustomResourceSchema {
  const v = (crd.spec.versions as any[]).find((x) => x.name === version);
  const openAPIV3Schema = v.schema.openAPIV3Schema as Schema;
  const kind = compileCrd(withEvaluableCel(crd, [v]), `CRD ${crd.metadata.name}`)[0];
  const cel = hasCelRules(openAPIV3Schema);
  return {
    prune(obj) {
      const unknown: string[] = [];
      pruneValue(obj, openAPIV3Schema, '', unknown, true);
      return unknown;
    },
    validate(obj) {
      const issues: DetailedIssue[] = kind.validate(obj);
      const causes = issues.map(causeOfIssue);
      // CEL rules run only on an otherwise valid object; the API server says they were skipped.
      const schemaErrors = causes.length > 0 && !issues.every((i) => celMessage(i.message, openAPIV3Schema));
      if (cel && schemaErrors) {
        causes.push({ reason: 'FieldValueInvalid', message: 'Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation', field: '<nil>' });
      }
      return causes;
    },
    listKeys(path) {
      // Keyed lists: x-kubernetes-list-type map with its keys; everything else is atomic.
      let cur: Schema | undefined = openAPIV3Schema;
      for (const p of path) {
        if (!cur) return undefined;
        const next: Schema | undefined = cur.properties?.[p] ?? cur.items?.properties?.[p];
        cur = next;
      }
      if (cur?.['x-kubernetes-list-type'] === 'map' && Array.isArray(cur['x-kubernetes-list-map-keys'])) return cur['x-kubernetes-list-map-keys'];
      return undefined;
    },
  };
}

/** Whether an issue is a CEL rule's failure (its message is one of the schema's rule messages). */
function celMessage(message: string, s: unknown): boolean {
  if (!isObject(s)) return Array.isArray(s) && s.some((x) => celMessage(message, x));
  const rules = s['x-kubernetes-validations'];
  if (Array.isArray(rules) && rules.some((r: any) => message === `Invalid value: ${r.message ?? `failed rule: ${r.rule}`}`)) return true;
  return Object.values(s).some((x) => celMessage(message, x));
}

// --- the CRD object itself ----------------------------------------------------------------------

function structuralProblems(s: unknown, path: string, out: StatusCause[]): void {
  if (!isObject(s)) return;
  const special = s['x-kubernetes-int-or-string'] === true || s['x-kubernetes-preserve-unknown-fields'] === true;
  if (s.type === undefined && !special && path !== '') out.push(FieldErrors.required(`${path}.type`, 'must not be empty for specified object fields'));
  if (s.properties && s.additionalProperties !== undefined && s.additionalProperties !== true) {
    out.push(FieldErrors.forbidden(`${path}.additionalProperties`, 'additionalProperties and properties are mutual exclusive'));
  }
  for (const [k, v] of Object.entries((s.properties ?? {}) as Schema)) structuralProblems(v, `${path}.properties[${k}]`, out);
  if (isObject(s.items)) structuralProblems(s.items, `${path}.items`, out);
  if (isObject(s.additionalProperties)) structuralProblems(s.additionalProperties, `${path}.additionalProperties`, out);
}

export function crdProblems(crd: KubeObject): StatusCause[] {
  const out: StatusCause[] = [];
  const spec = crd.spec ?? {};
  const names = spec.names ?? {};
  if (!spec.group) out.push(FieldErrors.required('spec.group'));
  else if (!String(spec.group).includes('.')) out.push(FieldErrors.invalid('spec.group', spec.group, 'should be a domain with at least one dot'));
  if (!names.plural) out.push(FieldErrors.required('spec.names.plural'));
  if (!names.kind) out.push(FieldErrors.required('spec.names.kind'));
  if (names.plural && spec.group && crd.metadata.name !== `${names.plural}.${spec.group}`) {
    out.push(FieldErrors.invalid('metadata.name', crd.metadata.name, 'must be spec.names.plural+"."+spec.group'));
  }
  if (!['Namespaced', 'Cluster'].includes(spec.scope)) out.push(spec.scope === undefined ? FieldErrors.required('spec.scope') : FieldErrors.notSupported('spec.scope', spec.scope, ['Cluster', 'Namespaced']));
  const versions: any[] = Array.isArray(spec.versions) ? spec.versions : [];
  if (versions.length === 0) out.push(FieldErrors.invalid('spec.versions', spec.versions ?? null, 'must have exactly one version marked as storage version'));
  else if (versions.filter((v) => v?.storage === true).length !== 1) out.push(FieldErrors.invalid('spec.versions', versions, 'must have exactly one version marked as storage version'));
  versions.forEach((v, i) => {
    const schema = v?.schema?.openAPIV3Schema;
    if (!isObject(schema)) out.push(FieldErrors.required(`spec.versions[${i}].schema.openAPIV3Schema`, 'schemas are required'));
    else {
      if (schema.type !== 'object') out.push(FieldErrors.invalid(`spec.versions[${i}].schema.openAPIV3Schema.type`, schema.type ?? '', 'must be object at the root'));
      structuralProblems(schema, `spec.versions[${i}].schema.openAPIV3Schema`, out);
    }
  });
  if (out.length === 0 && names.kind && spec.group) {
    try {
      compileCrd(withEvaluableCel(crd, versions), `CRD ${crd.metadata.name}`);
    } catch (e) {
      out.push(FieldErrors.invalid('spec.versions', null, `the test API server cannot serve this schema: ${(e as Error).message}`));
    }
  }
  return out;
}

export function crdDefaults(crd: KubeObject): void {
  const names = (crd.spec.names = crd.spec.names ?? {});
  if (names.kind) {
    names.singular = names.singular ?? String(names.kind).toLowerCase();
    names.listKind = names.listKind ?? `${names.kind}List`;
  }
  crd.spec.conversion = crd.spec.conversion ?? { strategy: 'None' };
  crd.status = { conditions: [], acceptedNames: { plural: '', kind: '' }, storedVersions: [] };
}

/** The status the establishing controller of the apiextensions server writes. */
export function establishedStatus(crd: KubeObject, now: string): Record<string, unknown> {
  const names = crd.spec.names;
  const storage = (crd.spec.versions as any[]).find((v) => v.storage)?.name;
  return {
    conditions: [
      { type: 'NamesAccepted', status: 'True', lastTransitionTime: now, reason: 'NoConflicts', message: 'no conflicts found' },
      { type: 'Established', status: 'True', lastTransitionTime: now, reason: 'InitialNamesAccepted', message: 'the initial names have been accepted' },
    ],
    acceptedNames: { plural: names.plural, singular: names.singular, ...(names.shortNames ? { shortNames: names.shortNames } : {}), kind: names.kind, listKind: names.listKind, ...(names.categories ? { categories: names.categories } : {}) },
    storedVersions: [storage],
  };
}

/** One served resource per served version of an established CRD. */
export function resourceTypesOfCrd(crd: KubeObject): ResourceType[] {
  const spec = crd.spec;
  return (spec.versions as any[]).filter((v) => v.served).map((v) => {
    const schema = compileCustomResourceSchema(crd, v.name);
    const t: ResourceType = {
      group: spec.group,
      version: v.name,
      plural: spec.names.plural,
      singular: spec.names.singular,
      kind: spec.names.kind,
      namespaced: spec.scope === 'Namespaced',
      shortNames: spec.names.shortNames,
      categories: spec.names.categories,
      verbs: ['delete', 'deletecollection', 'get', 'list', 'patch', 'create', 'update', 'watch'],
      subresources: v.subresources?.status !== undefined ? ['status'] : [],
      hasGeneration: true,
      returnsDeletedObject: false,
      nameRule: 'dns1123-subdomain',
      selectableFields: ((v.selectableFields ?? []) as { jsonPath: string }[]).map((f) => f.jsonPath.replace(/^\./, '')),
      bookmarkBody: {},
      crdName: crd.metadata.name,
      customSchema: schema,
    };
    return t;
  });
}
