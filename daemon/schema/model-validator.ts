// Core, apps, batch, ... kinds through kubernetes-models 4.x, Gateway API kinds through
// @kubernetes-models/gateway-api 0.5.x: both ship ajv-generated validators of the published
// OpenAPI schemas. A kind is found by its apiVersion (the package's module path) and kind
// (the class name), so every kind either package knows is covered with no table here.
//
// GRPCRoute: the package has it only as v1alpha2. Gateway API v1.1 promoted it to v1 with
// the same structure, so a `gateway.networking.k8s.io/v1` GRPCRoute is validated with the
// v1alpha2 schema (apiVersion aside); a GRPCRoute field added after v1alpha2 would be
// reported as unknown.
//
// These published schemas carry types, required fields and enums, but no list of allowed
// fields: strict field validation of the built-in kinds is ./strict-fields.ts. The API
// server's hand-written checks (name formats, port ranges) stay in daemon/state/manifest.ts.
// Gateway API kinds get no unknown-field check (their package has no field lists).
import { issuesFromAjv, type DetailedIssue } from './ajv-errors';
import { unknownFields } from './strict-fields';

interface ModelClass {
  apiVersion: string;
  kind: string;
  new (data: unknown): { validate(): void };
}

const API_VERSION = /^(([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?\/)?v[0-9]+((alpha|beta)[0-9]+)?$/;

/** apiVersions validated with another version's schema (see the file comment). */
const SCHEMA_ALIASES: Readonly<Record<string, string>> = {
  'gateway.networking.k8s.io/v1/GRPCRoute': 'gateway.networking.k8s.io/v1alpha2',
};

const modules = new Map<string, Record<string, unknown> | undefined>();

function loadModule(id: string): Record<string, unknown> | undefined {
  if (modules.has(id)) return modules.get(id);
  let m: Record<string, unknown> | undefined;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    m = require(id) as Record<string, unknown>;
  } catch {
    m = undefined;
  }
  modules.set(id, m);
  return m;
}

const MODEL_CACHE = new Map<string, ModelClass | undefined>();

export function modelFor(apiVersion: string, kind: string): ModelClass | undefined {
  const key = `${apiVersion}/${kind}`;
  if (MODEL_CACHE.has(key)) return MODEL_CACHE.get(key);
  let found: ModelClass | undefined;
  if (API_VERSION.test(apiVersion) && /^[A-Z][A-Za-z0-9]*$/.test(kind)) {
    const schemaVersion = SCHEMA_ALIASES[key] ?? apiVersion;
    const candidates = schemaVersion.startsWith('gateway.networking.k8s.io/')
      ? [`@kubernetes-models/gateway-api/${schemaVersion}`]
      : [`kubernetes-models/${schemaVersion}`];
    for (const id of candidates) {
      const cls = loadModule(id)?.[kind] as ModelClass | undefined;
      if (typeof cls === 'function' && cls.kind === kind) { found = cls; break; }
    }
  }
  MODEL_CACHE.set(key, found);
  return found;
}

export function validateWithModel(cls: ModelClass, obj: Record<string, unknown>): DetailedIssue[] {
  // The model's own apiVersion, so an aliased version is checked by the schema's enum.
  const data = { ...obj, apiVersion: cls.apiVersion };
  let issues: DetailedIssue[] = [];
  try {
    new cls(data).validate();
  } catch (e) {
    const errors = (e as { errors?: import('ajv').ErrorObject[] }).errors;
    if (!Array.isArray(errors)) throw e;
    issues = issuesFromAjv(errors, data);
  }
  if (!cls.apiVersion.startsWith('gateway.networking.k8s.io/')) {
    const seen = new Set(issues.map((i) => i.path));
    issues.push(...unknownFields(data, cls.apiVersion, cls.kind).filter((i) => !seen.has(i.path)));
  }
  return issues;
}
