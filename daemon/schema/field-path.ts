// Field paths as the Kubernetes API server prints them: `spec.rules[0].from[0].source`,
// map keys in brackets (`metadata.labels[app.kubernetes.io/name]`, `spec.portLevelMtls[8080]`).

export type PathSegment = string | number;

/** Segments of an ajv instancePath (`/spec/rules/0`), typed by walking the data: an index
 * into an array is a number, a key into an object a string. */
export function segmentsOf(instancePath: string, data: unknown): PathSegment[] {
  if (instancePath === '') return [];
  const out: PathSegment[] = [];
  let cur: unknown = data;
  for (const raw of instancePath.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur) && /^\d+$/.test(key)) {
      out.push(Number(key));
      cur = cur[Number(key)];
    } else {
      out.push(key);
      cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[key] : undefined;
    }
  }
  return out;
}

/** Whether a segment is one of a schema's fixed property names (printed `.name`) rather than
 * a free map key (printed `[key]`): identifiers are fields. */
const IDENT = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

export function formatFieldPath(segments: readonly PathSegment[], mapKeys: ReadonlySet<number> = new Set()): string {
  let s = '';
  segments.forEach((seg, i) => {
    if (typeof seg === 'number') s += `[${seg}]`;
    else if (mapKeys.has(i) || !IDENT.test(seg)) s += `[${seg}]`;
    else s += s ? `.${seg}` : seg;
  });
  return s;
}
