// The edge between Kubernetes objects and mesh state (pure): every object a source reads is
// validated with the project's schemas, checked for the fields the mesh relies on, and
// trimmed to those fields (a Pod keeps its identity, placement, ports and readiness; not its
// volumes, env or managedFields), so a node that watches every pod of a large cluster keeps a
// few hundred bytes per pod. A bad object becomes a reason, never an exception.
import {
  AuthorizationPolicy, BackendTrafficPolicy, Container, EndpointSlice, GRPCRoute, Gateway, HTTPRoute, Labels, Namespace, ObjectMeta, PeerAuthentication, Pod,
  RESOURCE_KINDS, Resource, ResourceKind, Service, WAYPOINT_GATEWAY_CLASS,
} from '../state/resources';
import { meshAnnotations } from '../state/snapshot';
import { SkipReason, boundedError } from './source';

/** The project's schema validator (daemon/schema): same schemas as `local apply`. */
export type ObjectValidator = (obj: unknown) => { schemaKnown: boolean; issues: { path: string; message: string }[] };
/** Until a validator is wired: every object passes the schema step (the shape checks below still apply). */
export const ACCEPT_ALL: ObjectValidator = () => ({ schemaKnown: false, issues: [] });

export type Converted =
  | { ok: true; resource: Resource }
  | { ok: false; kind: ResourceKind | 'unknown'; object: string; reason: SkipReason; error: string };

const KINDS = new Set<string>(RESOURCE_KINDS);

type Raw = Record<string, unknown>;
const isObj = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

class Malformed extends Error {}
function need(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Malformed(what);
}

/** `Kind ns/name` for logs, from whatever the object has. */
export function describeObject(raw: unknown): string {
  if (!isObj(raw)) return `(${typeof raw})`;
  const m = isObj(raw.metadata) ? raw.metadata : {};
  const name = str(m.name) ?? '?';
  const ns = str(m.namespace);
  return boundedError(`${str(raw.kind) ?? '?'} ${ns ? `${ns}/` : ''}${name}`).slice(0, 200);
}

function labels(v: unknown, what: string): Labels | undefined {
  if (v === undefined || v === null) return undefined;
  need(isObj(v), `${what} must be a map of strings`);
  for (const x of Object.values(v)) need(typeof x === 'string', `${what} must be a map of strings`);
  return v as Labels;
}

/** Annotations the mesh reads (its own and the sandbox's runtime facts); the rest is dropped. */
function meta(raw: Raw, namespaced: boolean): ObjectMeta {
  need(isObj(raw.metadata), 'metadata is missing');
  const m = raw.metadata;
  const name = str(m.name);
  need(name && name.length > 0, 'metadata.name is missing');
  const out: ObjectMeta = { name };
  if (namespaced) {
    need(m.namespace === undefined || (typeof m.namespace === 'string' && m.namespace.length > 0), 'metadata.namespace must be a non-empty string');
    if (m.namespace !== undefined) out.namespace = m.namespace as string;
  }
  if (typeof m.uid === 'string') out.uid = m.uid;
  if (typeof m.resourceVersion === 'string') out.resourceVersion = m.resourceVersion;
  if (typeof m.generation === 'number') out.generation = m.generation;
  if (typeof m.deletionTimestamp === 'string') out.deletionTimestamp = m.deletionTimestamp;
  const l = labels(m.labels, 'metadata.labels');
  if (l) out.labels = l;
  const a = meshAnnotations(labels(m.annotations, 'metadata.annotations'));
  if (a) out.annotations = a;
  if (Array.isArray(m.ownerReferences)) {
    const refs = m.ownerReferences.filter(isObj).filter((r) => typeof r.kind === 'string' && typeof r.name === 'string')
      .map((r) => ({ kind: r.kind as string, name: r.name as string, ...(r.controller === true ? { controller: true } : {}) }));
    if (refs.length > 0) out.ownerReferences = refs;
  }
  return out;
}

function port(v: unknown, what: string): number {
  need(typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535, `${what} must be a port number 1-65535`);
  return v;
}

function pod(raw: Raw): Pod {
  const metadata = meta(raw, true);
  need(isObj(raw.spec), 'spec is missing');
  const spec = raw.spec;
  need(Array.isArray(spec.containers), 'spec.containers must be a list');
  const containers: Container[] = spec.containers.map((c, i) => {
    need(isObj(c) && typeof c.name === 'string', `spec.containers[${i}].name is missing`);
    const ports = Array.isArray(c.ports) ? c.ports.filter(isObj).map((p, j) => ({
      ...(typeof p.name === 'string' ? { name: p.name } : {}),
      containerPort: port(p.containerPort, `spec.containers[${i}].ports[${j}].containerPort`),
      ...(typeof p.protocol === 'string' ? { protocol: p.protocol as 'TCP' } : {}),
    })) : undefined;
    return { name: c.name, ...(ports && ports.length > 0 ? { ports } : {}) };
  });
  const out: Pod = {
    apiVersion: 'v1', kind: 'Pod', metadata,
    spec: {
      containers,
      ...(typeof spec.nodeName === 'string' && spec.nodeName ? { nodeName: spec.nodeName } : {}),
      ...(typeof spec.serviceAccountName === 'string' && spec.serviceAccountName ? { serviceAccountName: spec.serviceAccountName } : {}),
      ...(spec.hostNetwork === true ? { hostNetwork: true } : {}),
    },
  };
  if (isObj(raw.status)) {
    const s = raw.status;
    const status: NonNullable<Pod['status']> = {};
    if (typeof s.phase === 'string') status.phase = s.phase as 'Running';
    if (typeof s.podIP === 'string' && s.podIP) status.podIP = s.podIP;
    if (Array.isArray(s.podIPs)) status.podIPs = s.podIPs.filter((p): p is Raw => isObj(p) && typeof p.ip === 'string').map((p) => ({ ip: p.ip as string }));
    if (typeof s.hostIP === 'string') status.hostIP = s.hostIP;
    if (Array.isArray(s.conditions)) {
      const ready = s.conditions.find((c) => isObj(c) && c.type === 'Ready') as Raw | undefined;
      if (ready && typeof ready.status === 'string') status.conditions = [{ type: 'Ready', status: ready.status as 'True' }];
    }
    out.status = status;
  }
  return out;
}

function service(raw: Raw): Service {
  const metadata = meta(raw, true);
  need(isObj(raw.spec), 'spec is missing');
  const spec = raw.spec;
  const ports = (Array.isArray(spec.ports) ? spec.ports : []).map((p, i) => {
    need(isObj(p), `spec.ports[${i}] must be an object`);
    need(p.targetPort === undefined || typeof p.targetPort === 'string' || typeof p.targetPort === 'number', `spec.ports[${i}].targetPort must be a number or a name`);
    return {
      port: port(p.port, `spec.ports[${i}].port`),
      ...(typeof p.name === 'string' ? { name: p.name } : {}),
      ...(p.targetPort !== undefined ? { targetPort: p.targetPort as number | string } : {}),
      ...(typeof p.protocol === 'string' ? { protocol: p.protocol as 'TCP' } : {}),
      ...(typeof p.appProtocol === 'string' ? { appProtocol: p.appProtocol } : {}),
    };
  });
  const selector = labels(spec.selector, 'spec.selector');
  return {
    apiVersion: 'v1', kind: 'Service', metadata,
    spec: {
      ports,
      ...(selector ? { selector } : {}),
      ...(typeof spec.clusterIP === 'string' ? { clusterIP: spec.clusterIP } : {}),
      ...(Array.isArray(spec.clusterIPs) ? { clusterIPs: spec.clusterIPs.filter((x): x is string => typeof x === 'string') } : {}),
    },
  };
}

function endpointSlice(raw: Raw): EndpointSlice {
  const metadata = meta(raw, true);
  const addressType = raw.addressType;
  need(addressType === 'IPv4' || addressType === 'IPv6' || addressType === 'FQDN', 'addressType must be IPv4, IPv6 or FQDN');
  need(raw.endpoints === undefined || raw.endpoints === null || Array.isArray(raw.endpoints), 'endpoints must be a list');
  const endpoints = ((raw.endpoints ?? []) as unknown[]).map((e, i) => {
    need(isObj(e) && Array.isArray(e.addresses), `endpoints[${i}].addresses must be a list`);
    const c = isObj(e.conditions) ? e.conditions : {};
    const t = isObj(e.targetRef) ? e.targetRef : undefined;
    return {
      addresses: e.addresses.filter((a): a is string => typeof a === 'string'),
      conditions: {
        ...(typeof c.ready === 'boolean' ? { ready: c.ready } : {}),
        ...(typeof c.serving === 'boolean' ? { serving: c.serving } : {}),
        ...(typeof c.terminating === 'boolean' ? { terminating: c.terminating } : {}),
      },
      ...(typeof e.nodeName === 'string' ? { nodeName: e.nodeName } : {}),
      ...(t ? { targetRef: { kind: str(t.kind), namespace: str(t.namespace), name: str(t.name), uid: str(t.uid) } } : {}),
    };
  });
  const ports = (Array.isArray(raw.ports) ? raw.ports : []).filter(isObj).map((p) => ({
    name: typeof p.name === 'string' ? p.name : '',
    ...(typeof p.port === 'number' ? { port: p.port } : {}),
    ...(typeof p.protocol === 'string' ? { protocol: p.protocol as 'TCP' } : {}),
  }));
  return { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata, addressType, endpoints, ports };
}

/** Policies and Gateway API objects are few and read whole (the sandbox's `local apply` checks
 * a daemon shows them exactly as stored): kept as they came, minus managedFields. */
function whole<T>(raw: Raw, namespaced: boolean): T {
  meta(raw, namespaced);
  const { managedFields: _drop, ...m } = raw.metadata as Raw;
  void _drop;
  return { ...raw, metadata: m } as T;
}

function specObject(raw: Raw): Raw {
  need(isObj(raw.spec), 'spec is missing');
  return raw.spec;
}

/**
 * Kubernetes object -> the mesh's resource, or why not. `null` for kinds the daemon does not
 * read (other parts of the system read their own).
 */
export function convertObject(raw: unknown, validate: ObjectValidator = ACCEPT_ALL): Converted | null {
  if (!isObj(raw) || typeof raw.kind !== 'string') {
    return { ok: false, kind: 'unknown', object: describeObject(raw), reason: 'malformed', error: 'not a Kubernetes object (no kind)' };
  }
  if (!KINDS.has(raw.kind)) return null;
  const kind = raw.kind as ResourceKind;
  const object = describeObject(raw);
  let issues: { path: string; message: string }[];
  try {
    issues = validate(raw).issues;
  } catch (e) {
    issues = [{ path: '', message: `validator failed: ${(e as Error).message}` }];
  }
  if (issues.length > 0) {
    const text = issues.slice(0, 3).map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ');
    return { ok: false, kind, object, reason: 'schema', error: boundedError(issues.length > 3 ? `${text}; and ${issues.length - 3} more` : text) };
  }
  try {
    switch (kind) {
      case 'Namespace': return { ok: true, resource: { apiVersion: 'v1', kind, metadata: meta(raw, false) } as Namespace };
      case 'Pod': return { ok: true, resource: pod(raw) };
      case 'Service': return { ok: true, resource: service(raw) };
      case 'EndpointSlice': return { ok: true, resource: endpointSlice(raw) };
      case 'AuthorizationPolicy':
        need(raw.spec === undefined || isObj(raw.spec), 'spec must be an object');
        return { ok: true, resource: whole<AuthorizationPolicy>(raw, true) };
      case 'PeerAuthentication':
        need(raw.spec === undefined || isObj(raw.spec), 'spec must be an object');
        return { ok: true, resource: whole<PeerAuthentication>(raw, true) };
      case 'Gateway': {
        const spec = specObject(raw);
        const gw = whole<Gateway>(raw, true);
        if (spec.gatewayClassName !== WAYPOINT_GATEWAY_CLASS) {
          return { ok: false, kind, object, reason: 'gateway-class', error: boundedError(`gatewayClassName ${JSON.stringify(spec.gatewayClassName)} is not ${WAYPOINT_GATEWAY_CLASS}; not a waypoint, ignored`) };
        }
        return { ok: true, resource: gw };
      }
      case 'HTTPRoute': specObject(raw); return { ok: true, resource: whole<HTTPRoute>(raw, true) };
      case 'GRPCRoute': specObject(raw); return { ok: true, resource: whole<GRPCRoute>(raw, true) };
      case 'BackendTrafficPolicy': specObject(raw); return { ok: true, resource: whole<BackendTrafficPolicy>(raw, true) };
    }
  } catch (e) {
    if (!(e instanceof Malformed)) throw e;
    return { ok: false, kind, object, reason: 'malformed', error: boundedError(e.message) };
  }
}
