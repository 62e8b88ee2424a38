// ajv's errors in the API server's words: `Unsupported value: "AUDIT": supported values:
// "ALLOW", "DENY"`, `Required value`, `Invalid value: ...`, and strict field validation's
// `unknown field "spec.rules[0].from[0].source.principal"` (what `kubectl apply` reports by
// default). Shared by the CRD validator and the kubernetes-models / gateway-api adapters,
// whose validators are ajv-generated too.
import type { ErrorObject } from 'ajv';
import { formatFieldPath, segmentsOf, type PathSegment } from './field-path';

export interface DetailedIssue {
  readonly path: string;
  readonly segments: readonly PathSegment[];
  readonly message: string;
  /** For an unknown field: the fields accepted there (for a "did you mean" hint). */
  readonly known?: readonly string[];
}

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v) ?? String(v));

function valueAt(data: unknown, segs: readonly PathSegment[]): unknown {
  let cur = data;
  for (const s of segs) cur = cur && typeof cur === 'object' ? (cur as Record<string | number, unknown>)[s] : undefined;
  return cur;
}

/** One issue per ajv error, deduplicated (anyOf/oneOf branches repeat themselves). */
export function issuesFromAjv(errors: readonly ErrorObject[] | null | undefined, data: unknown): DetailedIssue[] {
  const out: DetailedIssue[] = [];
  const seen = new Set<string>();
  const push = (segments: PathSegment[], message: string, known?: string[]): void => {
    const path = formatFieldPath(segments);
    const k = `${path}\0${message}`;
    if (seen.has(k)) return;
    seen.add(k);
    out.push({ path, segments, message, ...(known ? { known } : {}) });
  };
  for (const e of errors ?? []) {
    const segs = segmentsOf(e.instancePath, data);
    const value = valueAt(data, segs);
    const p = e.params as Record<string, unknown>;
    switch (e.keyword) {
      case 'required':
        push([...segs, String(p.missingProperty)], 'Required value');
        break;
      case 'additionalProperties': {
        const full = [...segs, String(p.additionalProperty)];
        const props = (e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties;
        push(full, `unknown field ${JSON.stringify(formatFieldPath(full))}`, props ? Object.keys(props).filter((x) => segs.length > 0 || !['apiVersion', 'kind', 'metadata'].includes(x)) : undefined);
        break;
      }
      case 'enum':
        push(segs, `Unsupported value: ${show(value)}: supported values: ${(p.allowedValues as unknown[]).map(show).join(', ')}`);
        break;
      case 'type':
        push(segs, `Invalid value: ${show(typeof value === 'object' ? (Array.isArray(value) ? 'array' : value === null ? 'null' : 'object') : typeof value)}: ${formatFieldPath(segs)} in body must be of type ${String(p.type).replace(',', ' or ')}: ${show(value)}`);
        break;
      case 'pattern':
        push(segs, `Invalid value: ${show(value)}: ${formatFieldPath(segs)} in body should match '${String(p.pattern)}'`);
        break;
      case 'minItems': case 'maxItems': case 'minLength': case 'maxLength': case 'minProperties': case 'maxProperties': {
        const what = e.keyword.endsWith('Items') ? 'items' : e.keyword.endsWith('Length') ? 'chars long' : 'properties';
        const bound = e.keyword.startsWith('min') ? 'at least' : 'at most';
        const size = Array.isArray(value) ? value.length : typeof value === 'string' ? value.length : value && typeof value === 'object' ? Object.keys(value).length : 0;
        push(segs, `Invalid value: ${size}: ${formatFieldPath(segs)} in body should have ${bound} ${String(p.limit)} ${what}`);
        break;
      }
      case 'minimum': case 'maximum': case 'exclusiveMinimum': case 'exclusiveMaximum':
        push(segs, `Invalid value: ${show(value)}: ${formatFieldPath(segs)} in body should be ${String(p.comparison) === '<=' ? 'less than or equal to' : String(p.comparison) === '>=' ? 'greater than or equal to' : String(p.comparison) === '<' ? 'less than' : 'greater than'} ${String(p.limit)}`);
        break;
      case 'format':
        push(segs, `Invalid value: ${show(value)}: ${formatFieldPath(segs)} in body must be of type ${String(p.format)}: ${show(value)}`);
        break;
      case 'anyOf': case 'oneOf': case 'if': case 'not': case 'allOf':
        // the branch errors say what is wrong
        break;
      default:
        push(segs, `Invalid value: ${show(value)}: ${e.message ?? e.keyword}`);
    }
  }
  // A wrong branch of anyOf (int-or-string) reports each branch; one message is enough.
  if (out.length === 0 && (errors ?? []).length > 0) {
    const e = errors![0]!;
    const segs = segmentsOf(e.instancePath, data);
    push(segs, `Invalid value: ${show(valueAt(data, segs))}: ${e.message ?? e.keyword}`);
  }
  return out;
}
