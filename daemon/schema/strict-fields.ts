// Strict field validation for the built-in kinds, as `kubectl apply` asks of the API server
// by default (`unknown field "spec.replica"`): the published OpenAPI validators of
// kubernetes-models carry types but no list of allowed fields, so the field names come from
// @kubernetes/client-node's generated models (each class's attributeTypeMap is the
// OpenAPI definition's properties, with their types). Walked lazily, one model file per
// type, cached. A kind whose model is not found (an ambiguous one such as events.k8s.io
// Event) gets no strict check rather than a wrong one.
import type { DetailedIssue } from './ajv-errors';
import { formatFieldPath, type PathSegment } from './field-path';

interface Attribute { baseName: string; type: string }

const MODELS_DIR = '@kubernetes/client-node/dist/gen/models/';
const typeMaps = new Map<string, readonly Attribute[] | undefined>();

function attributesOf(typeName: string): readonly Attribute[] | undefined {
  if (typeMaps.has(typeName)) return typeMaps.get(typeName);
  let attrs: readonly Attribute[] | undefined;
  if (/^[A-Z][A-Za-z0-9]*$/.test(typeName)) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const mod = require(`${MODELS_DIR}${typeName}.js`) as Record<string, { getAttributeTypeMap?: () => Attribute[] } | undefined>;
      attrs = mod[typeName]?.getAttributeTypeMap?.();
    } catch {
      attrs = undefined;
    }
  }
  typeMaps.set(typeName, attrs);
  return attrs;
}

/** `apps/v1` + `Deployment` -> `V1Deployment`; `autoscaling/v2` -> `V2...`; `v1beta1` -> `V1beta1`. */
export function modelTypeName(apiVersion: string, kind: string): string {
  const version = apiVersion.slice(apiVersion.lastIndexOf('/') + 1);
  return `${version.charAt(0).toUpperCase()}${version.slice(1)}${kind}`;
}

const ARRAY = /^Array<(.+)>$/;
const MAP = /^\{ \[key: string\]: (.+); \}$/;

function walk(value: unknown, type: string, path: PathSegment[], out: DetailedIssue[]): void {
  if (value === null || value === undefined) return;
  const arr = ARRAY.exec(type);
  if (arr) {
    if (Array.isArray(value)) value.forEach((v, i) => walk(v, arr[1]!, [...path, i], out));
    return;
  }
  const map = MAP.exec(type);
  if (map) {
    if (typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) walk(v, map[1]!, [...path, k], out);
    }
    return;
  }
  if (typeof value !== 'object' || Array.isArray(value)) return; // the type check is the schema's
  const attrs = attributesOf(type);
  if (!attrs) return; // a primitive, IntOrString, any, object: nothing to say about fields
  const byName = new Map(attrs.map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    const t = byName.get(k);
    if (t === undefined) {
      const full = [...path, k];
      out.push({ path: formatFieldPath(full), segments: full, message: `unknown field ${JSON.stringify(formatFieldPath(full))}`, known: [...byName.keys()] });
    } else {
      walk(v, t, [...path, k], out);
    }
  }
}

/** Unknown fields of a built-in object; [] when its model is not known. */
export function unknownFields(obj: Record<string, unknown>, apiVersion: string, kind: string): DetailedIssue[] {
  const type = modelTypeName(apiVersion, kind);
  if (!attributesOf(type)) return [];
  const out: DetailedIssue[] = [];
  walk(obj, type, [], out);
  return out;
}
