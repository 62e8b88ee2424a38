// Field paths as the Kubernetes API server prints them: `spec.rules[0].from[0].source`,
// `spec.portLevelMtls.8080.mode`.

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

/** Fields and map keys alike are joined with "." (the API server's OpenAPI validator builds
 * `spec.portLevelMtls.8080.mode` so), list indexes in brackets. */
export function formatFieldPath(segments: readonly PathSegment[]): string {
  let s = '';
  for (const seg of segments) {
    if (typeof seg === 'number') s += `[${seg}]`;
    else s += s ? `.${seg}` : seg;
  }
  return s;
}
