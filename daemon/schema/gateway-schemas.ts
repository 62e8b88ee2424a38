// Gateway API kinds with strict field validation. @kubernetes-models/gateway-api 0.5.x ships
// each kind's published OpenAPI schema as a JSON literal in its module (`const schema =
// {...}`), registered with its own validator, which accepts unknown fields. A real API server
// under `kubectl apply` refuses them (and an HTTPRoute field silently dropped changes
// routing), so the schema literal is read from the module file and compiled here like a CRD
// schema (./crd-validator.ts: objects with properties refuse other fields). If the package's
// layout ever changes, this returns undefined and the package's own validator is used
// (schema.test.ts fails loudly in that case, so it cannot go unnoticed).
import * as fs from 'node:fs';
import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { issuesFromAjv, type DetailedIssue } from './ajv-errors';
import { toAjvSchema } from './crd-validator';

let ajv: Ajv | undefined;
const compiled = new Map<string, ValidateFunction | undefined>();

/** The schema literal of a module file; undefined when the file has none we can read. */
export function schemaLiteral(source: string): Record<string, unknown> | undefined {
  const start = source.indexOf('\nconst schema = {');
  if (start < 0) return undefined;
  const end = source.indexOf('\n};\n', start);
  if (end < 0) return undefined;
  try {
    return JSON.parse(source.slice(start + '\nconst schema = '.length, end + 2)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Drops what this validator does not evaluate: CEL rules (the package's validator skips them
 * too) and the ObjectMeta reference (metadata is checked apart). */
function prepare(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(prepare);
  if (!node || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
    if (k === 'x-kubernetes-validations') continue;
    out[k] = prepare(v);
  }
  if (typeof out.$ref === 'string') return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  return out;
}

const DURATION = { type: 'string', pattern: '^([0-9]{1,5}(h|m|s|ms)){1,4}$' };
const RULE_NAME = { type: 'string', minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$' };
const SESSION_PERSISTENCE = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };

/** Route rule fields of Gateway API releases newer than the package's schema (standard
 * `name`; experimental `retry` (GEP-1731, read by the waypoint) and `sessionPersistence`),
 * so that they are checked, not refused as unknown. */
const NEWER_RULE_FIELDS: Readonly<Record<string, Record<string, unknown>>> = {
  HTTPRoute: {
    name: RULE_NAME,
    sessionPersistence: SESSION_PERSISTENCE,
    retry: {
      type: 'object',
      properties: {
        codes: { type: 'array', items: { type: 'integer', minimum: 400, maximum: 599 } },
        attempts: { type: 'integer', minimum: 0 },
        backoff: DURATION,
      },
    },
  },
  GRPCRoute: { name: RULE_NAME, sessionPersistence: SESSION_PERSISTENCE },
};

function withNewerFields(kind: string, schema: Record<string, unknown>): Record<string, unknown> {
  const extra = NEWER_RULE_FIELDS[kind];
  const rule = (schema as { properties?: { spec?: { properties?: { rules?: { items?: { properties?: Record<string, unknown> } } } } } })
    .properties?.spec?.properties?.rules?.items;
  if (extra && rule?.properties) rule.properties = { ...extra, ...rule.properties };
  return schema;
}

function validatorFor(apiVersion: string, kind: string): ValidateFunction | undefined {
  const key = `${apiVersion}/${kind}`;
  if (compiled.has(key)) return compiled.get(key);
  let fn: ValidateFunction | undefined;
  try {
    const file = require.resolve(`@kubernetes-models/gateway-api/${apiVersion}/${kind}`);
    const literal = schemaLiteral(fs.readFileSync(file, 'utf8'));
    if (literal) {
      if (!ajv) {
        ajv = new Ajv({ allErrors: true, verbose: true, strict: false, logger: false, allowUnionTypes: true, unicodeRegExp: false });
        addFormats(ajv);
        for (const f of ['int32', 'int64', 'float', 'double', 'byte']) ajv.addFormat(f, true);
      }
      fn = ajv.compile(toAjvSchema(withNewerFields(kind, prepare(literal) as Record<string, unknown>)));
    }
  } catch {
    fn = undefined;
  }
  compiled.set(key, fn);
  return fn;
}

/** Issues of a Gateway API object under strict field validation; undefined when this kind's
 * schema literal could not be read (use the package's validator then). */
export function validateGatewayStrict(obj: Record<string, unknown>, schemaApiVersion: string, kind: string): DetailedIssue[] | undefined {
  const fn = validatorFor(schemaApiVersion, kind);
  if (!fn) return undefined;
  const data = { ...obj, apiVersion: schemaApiVersion };
  return fn(data) ? [] : issuesFromAjv(fn.errors, data);
}
