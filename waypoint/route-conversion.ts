// What HTTPRoute and GRPCRoute conversion share: parents, backends, header matches and the
// filters both kinds have. A problem found here makes the route not Accepted (reason
// UnsupportedValue); it is never routed half-understood.
import type { BackendTarget, HeaderModifier, InvalidBackend, RouteFilter, RouteParent, ValueMatch, WeightedBackend } from './route-model';

export interface ConversionProblem {
  /** Where in the object, e.g. `spec.rules[0].matches[1].path.value`. */
  field: string;
  message: string;
}

export interface Converted<T> { value: T; problems: ConversionProblem[] }

/** A regex longer than this is refused: matching runs on every request. */
export const MAX_REGEX_LENGTH = 1024;

export class ProblemList {
  readonly problems: ConversionProblem[] = [];
  add(field: string, message: string): void { this.problems.push({ field, message }); }
}

/** Compiles a Gateway API regular expression anchored to the whole value. */
export function compileRegex(pattern: string, field: string, out: ProblemList): RegExp | undefined {
  if (pattern.length > MAX_REGEX_LENGTH) { out.add(field, `regular expression longer than ${MAX_REGEX_LENGTH} characters`); return undefined; }
  try {
    return new RegExp(`^(?:${pattern})$`);
  } catch (e) {
    out.add(field, `invalid regular expression ${JSON.stringify(pattern)}: ${(e as Error).message}`);
    return undefined;
  }
}

interface RawValueMatch { name: string; type?: 'Exact' | 'RegularExpression'; value: string }

export function convertValueMatches(raw: readonly RawValueMatch[] | undefined, field: string, out: ProblemList, lowerCaseNames: boolean): ValueMatch[] {
  const seen = new Set<string>();
  const result: ValueMatch[] = [];
  (raw ?? []).forEach((m, i) => {
    const name = lowerCaseNames ? m.name.toLowerCase() : m.name;
    // The spec: when several entries name the same header or parameter, only the first counts.
    if (seen.has(name)) return;
    seen.add(name);
    const type = m.type ?? 'Exact';
    if (type === 'RegularExpression') {
      const regex = compileRegex(m.value, `${field}[${i}].value`, out);
      if (regex) result.push({ name, type, value: m.value, regex });
    } else {
      result.push({ name, type, value: m.value });
    }
  });
  return result;
}

interface RawHeaderModifier { set?: { name: string; value: string }[]; add?: { name: string; value: string }[]; remove?: string[] }

export function convertHeaderModifier(raw: RawHeaderModifier): HeaderModifier {
  return {
    set: (raw.set ?? []).map((h) => ({ name: h.name.toLowerCase(), value: h.value })),
    add: (raw.add ?? []).map((h) => ({ name: h.name.toLowerCase(), value: h.value })),
    remove: (raw.remove ?? []).map((h) => h.toLowerCase()),
  };
}

interface RawBackendRef { group?: string; kind?: string; name: string; namespace?: string; port?: number }

/** A Service in the route's own namespace (no ReferenceGrant support yet), or why not. */
export function backendTarget(ref: RawBackendRef, routeNamespace: string): BackendTarget | { invalid: 'InvalidKind' | 'RefNotPermitted' | 'UnsupportedValue'; message: string } {
  const group = ref.group ?? '';
  const kind = ref.kind ?? 'Service';
  if (group !== '' || kind !== 'Service') return { invalid: 'InvalidKind', message: `backend ${group}/${kind} ${ref.name} is not a core Service` };
  const namespace = ref.namespace ?? routeNamespace;
  if (namespace !== routeNamespace) return { invalid: 'RefNotPermitted', message: `backend Service ${namespace}/${ref.name} is in another namespace; ReferenceGrant is not supported` };
  if (ref.port === undefined) return { invalid: 'UnsupportedValue', message: `backend Service ${ref.name} needs a port` };
  return { namespace, name: ref.name, port: ref.port };
}

/**
 * Splits backendRefs into usable ones and ones that must answer 500 for their share of the
 * weight (the spec: traffic for an invalid backend fails, the rest still flows).
 */
export function convertBackends<F>(
  refs: readonly (RawBackendRef & { weight?: number; filters?: F[] })[] | undefined, routeNamespace: string, field: string, out: ProblemList,
  convertFilter: (f: F, field: string) => RouteFilter | undefined,
): { backends: WeightedBackend[]; invalid: InvalidBackend[] } {
  const backends: WeightedBackend[] = [];
  const invalid: InvalidBackend[] = [];
  (refs ?? []).forEach((ref, i) => {
    const weight = ref.weight ?? 1;
    if (!Number.isInteger(weight) || weight < 0 || weight > 1_000_000) { out.add(`${field}[${i}].weight`, 'weight must be an integer from 0 to 1000000'); return; }
    const t = backendTarget(ref, routeNamespace);
    if ('invalid' in t) {
      if (t.invalid === 'UnsupportedValue') out.add(`${field}[${i}].port`, t.message);
      else invalid.push({ weight, reason: t.invalid, message: t.message });
      return;
    }
    const filters: RouteFilter[] = [];
    (ref.filters ?? []).forEach((f, j) => { const c = convertFilter(f, `${field}[${i}].filters[${j}]`); if (c) filters.push(c); });
    backends.push({ ...t, weight, filters });
  });
  return { backends, invalid };
}

interface RawParentRef { group?: string; kind?: string; name: string; namespace?: string; port?: number }

/** GAMMA parents: Services. Other parents (Gateways) belong to other controllers and are ignored. */
export function serviceParents(refs: readonly RawParentRef[] | undefined, routeNamespace: string): RouteParent[] {
  return (refs ?? [])
    .filter((p) => (p.group ?? 'gateway.networking.k8s.io') === '' && p.kind === 'Service')
    .map((p) => ({ namespace: p.namespace ?? routeNamespace, name: p.name, ...(p.port !== undefined ? { port: p.port } : {}) }));
}

interface RawSharedFilter {
  type: string;
  requestHeaderModifier?: RawHeaderModifier;
  responseHeaderModifier?: RawHeaderModifier;
  requestMirror?: { backendRef: RawBackendRef };
}

/** The filters HTTPRoute and GRPCRoute share; undefined (with a problem) for anything else. */
export function convertSharedFilter(f: RawSharedFilter, routeNamespace: string, field: string, out: ProblemList): RouteFilter | undefined {
  switch (f.type) {
    case 'RequestHeaderModifier':
      if (!f.requestHeaderModifier) break;
      return { type: 'RequestHeaderModifier', modifier: convertHeaderModifier(f.requestHeaderModifier) };
    case 'ResponseHeaderModifier':
      if (!f.responseHeaderModifier) break;
      return { type: 'ResponseHeaderModifier', modifier: convertHeaderModifier(f.responseHeaderModifier) };
    case 'RequestMirror': {
      if (!f.requestMirror) break;
      const t = backendTarget(f.requestMirror.backendRef, routeNamespace);
      if ('invalid' in t) { out.add(`${field}.requestMirror.backendRef`, t.message); return undefined; }
      return { type: 'RequestMirror', backend: t };
    }
    default:
      out.add(`${field}.type`, `filter type ${f.type} is not supported by the nodemesh waypoint`);
      return undefined;
  }
  out.add(field, `filter of type ${f.type} has no ${f.type[0].toLowerCase()}${f.type.slice(1)} field`);
  return undefined;
}
