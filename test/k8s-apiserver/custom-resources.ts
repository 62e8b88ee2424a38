// CustomResourceDefinitions: checking a CRD as the apiextensions server does (the parts tests
// meet), and serving its kind: unknown fields pruned (with a warning) or refused under
// fieldValidation=Strict (26, 27), schema defaults applied, then the object validated against
// openAPIV3Schema with ajv, errors reported with Kubernetes field paths and reasons (25).
//
// NOT covered: CEL rules (x-kubernetes-validations) are not evaluated. As the real server does
// when other errors exist, a failing object whose schema has CEL rules gets the "some
// validation rules were not checked" cause; a valid object is accepted without running them.
// Also not covered: conversion webhooks, the scale subresource, printer columns in tables.
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
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

const K8S_FORMATS = ['int32', 'int64', 'float', 'double', 'byte', 'binary', 'password', 'bsonobjectid', 'isbn', 'isbn10', 'isbn13', 'creditcard', 'ssn', 'hexcolor', 'rgbcolor', 'cidr', 'mac', 'k8s-short-name', 'k8s-long-name', 'dns1123-label', 'dns1123-subdomain'];

function makeAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: true, verbose: true });
  addFormats(ajv);
  for (const f of K8S_FORMATS) ajv.addFormat(f, true);
  return ajv;
}

const isObject = (v: unknown): v is Record<string, any> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** openAPIV3Schema (structural) to a JSON Schema ajv checks the same way. */
function toJsonSchema(s: Schema, root = false): Schema {
  const out: Schema = {};
  for (const [k, v] of Object.entries(s)) {
    if (k.startsWith('x-kubernetes-') || k === 'nullable' || k === 'default' || k === 'example' || k === 'externalDocs') continue;
    if (k === 'properties') {
      out.properties = Object.fromEntries(Object.entries(v as Schema).filter(([pk]) => !(root && pk === 'metadata')).map(([pk, pv]) => [pk, toJsonSchema(pv as Schema)]));
    } else if (k === 'items' || k === 'additionalProperties' || k === 'not') {
      out[k] = isObject(v) ? toJsonSchema(v) : v;
    } else if (k === 'allOf' || k === 'anyOf' || k === 'oneOf') {
      out[k] = (v as Schema[]).map((x) => toJsonSchema(x));
    } else {
      out[k] = v;
    }
  }
  if (s['x-kubernetes-int-or-string']) {
    delete out.type;
    out.anyOf = [...(out.anyOf ?? []), { type: 'integer' }, { type: 'string' }];
  }
  if (s.nullable && typeof out.type === 'string') out.type = [out.type, 'null'];
  if (root && Array.isArray(out.required)) out.required = out.required.filter((r: string) => r !== 'metadata');
  return out;
}

function hasCelRules(s: unknown): boolean {
  if (!isObject(s)) return Array.isArray(s) && s.some(hasCelRules);
  if (Array.isArray(s['x-kubernetes-validations']) && s['x-kubernetes-validations'].length > 0) return true;
  return Object.values(s).some(hasCelRules);
}

/** `/spec/sources/0/principals` -> `spec.sources[0].principals` */
export function fieldPath(instancePath: string): string {
  let out = '';
  for (const raw of instancePath.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(part) ? `[${part}]` : out === '' ? part : `.${part}`;
  }
  return out;
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function causeOf(e: ErrorObject): StatusCause | undefined {
  const field = fieldPath(e.instancePath);
  const where = field === '' ? '<root>' : field;
  const p = e.params as Record<string, any>;
  switch (e.keyword) {
    case 'required': {
      const f = field === '' ? p.missingProperty : `${field}.${p.missingProperty}`;
      return FieldErrors.required(f);
    }
    case 'enum': return FieldErrors.notSupported(field, e.data, p.allowedValues);
    case 'type': {
      if (e.schemaPath.includes('/anyOf/')) return undefined;
      const t = jsonType(e.data);
      return FieldErrors.typeInvalid(field, t, `${where} in body must be of type ${Array.isArray(p.type) ? p.type.join(',') : p.type}: ${JSON.stringify(t)}`);
    }
    case 'anyOf': {
      const t = jsonType(e.data);
      return FieldErrors.typeInvalid(field, t, `${where} in body must be of type integer,string: ${JSON.stringify(t)}`);
    }
    case 'pattern': return FieldErrors.invalid(field, e.data, `${where} in body should match '${p.pattern}'`);
    case 'minimum': return FieldErrors.invalid(field, e.data, `${where} in body should be greater than or equal to ${p.limit}`);
    case 'maximum': return FieldErrors.invalid(field, e.data, `${where} in body should be less than or equal to ${p.limit}`);
    case 'exclusiveMinimum': return FieldErrors.invalid(field, e.data, `${where} in body should be greater than ${p.limit}`);
    case 'exclusiveMaximum': return FieldErrors.invalid(field, e.data, `${where} in body should be less than ${p.limit}`);
    case 'minLength': return FieldErrors.invalid(field, e.data, `${where} in body should be at least ${p.limit} chars long`);
    case 'maxLength': return FieldErrors.tooLong(field, p.limit);
    case 'minItems': return FieldErrors.invalid(field, Array.isArray(e.data) ? e.data.length : e.data, `${where} in body should have at least ${p.limit} items`);
    case 'maxItems': return FieldErrors.tooMany(field, Array.isArray(e.data) ? e.data.length : 0, p.limit);
    case 'minProperties': return FieldErrors.invalid(field, e.data, `${where} in body should have at least ${p.limit} properties`);
    case 'maxProperties': return FieldErrors.invalid(field, e.data, `${where} in body should have at most ${p.limit} properties`);
    case 'format': return FieldErrors.invalid(field, e.data, `${where} in body must be of type ${p.format}: ${JSON.stringify(e.data)}`);
    case 'uniqueItems': return FieldErrors.duplicate(`${field}[${p.j}]`, Array.isArray(e.data) ? e.data[p.j] : e.data);
    default: return FieldErrors.invalid(field, e.data, `${where} in body ${e.message ?? 'is invalid'}`);
  }
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

export function compileCustomResourceSchema(openAPIV3Schema: Schema): CustomResourceSchema {
  const validate: ValidateFunction = makeAjv().compile(toJsonSchema(openAPIV3Schema, true));
  const cel = hasCelRules(openAPIV3Schema);
  return {
    prune(obj) {
      const unknown: string[] = [];
      pruneValue(obj, openAPIV3Schema, '', unknown, true);
      return unknown;
    },
    validate(obj) {
      if (validate(obj)) return [];
      const causes = (validate.errors ?? []).map(causeOf).filter((c): c is StatusCause => c !== undefined);
      if (cel && causes.length > 0) {
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
    const schema = compileCustomResourceSchema(v.schema.openAPIV3Schema);
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
