// From a request's method, path and query to what it asks of the API: a discovery document,
// a resource verb (with the RBAC verb the authorizer checks), or one of the two kinds of 404 a
// real server gives (plain text for a path nothing serves, as for a group whose CRD is not
// installed (15); a Status for an unknown resource inside a served group version).
import type { ResourceRegistry, ResourceType } from './resource-types';

export type Route =
  | { kind: 'discovery'; doc: 'version' | 'api' | 'apis' | 'health' }
  | { kind: 'group'; group: string }
  | { kind: 'groupVersion'; group: string; version: string }
  | { kind: 'resource'; type: ResourceType; namespace?: string; name?: string; subresource?: string; verb: string }
  | { kind: 'notFoundPlain' }
  | { kind: 'notFoundStatus' }
  | { kind: 'methodNotAllowed' };

function isWatch(q: URLSearchParams): boolean {
  const w = q.get('watch');
  return w === 'true' || w === '1';
}

export function routeOf(method: string, pathname: string, query: URLSearchParams, registry: ResourceRegistry): Route {
  const segs = pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
  if (segs.length === 1 && segs[0] === 'version') return { kind: 'discovery', doc: 'version' };
  if (segs.length >= 1 && ['healthz', 'livez', 'readyz'].includes(segs[0])) return { kind: 'discovery', doc: 'health' };
  let group: string;
  let version: string;
  let rest: string[];
  if (segs[0] === 'api') {
    if (segs.length === 1) return { kind: 'discovery', doc: 'api' };
    group = '';
    version = segs[1];
    rest = segs.slice(2);
  } else if (segs[0] === 'apis') {
    if (segs.length === 1) return { kind: 'discovery', doc: 'apis' };
    group = segs[1];
    if (registry.groupVersions().every((gv) => gv.group !== group)) return { kind: 'notFoundPlain' };
    if (segs.length === 2) return { kind: 'group', group };
    version = segs[2];
    rest = segs.slice(3);
  } else {
    return { kind: 'notFoundPlain' };
  }
  if (registry.inGroupVersion(group, version).length === 0) return { kind: 'notFoundPlain' };
  if (rest.length === 0) return { kind: 'groupVersion', group, version };

  let namespace: string | undefined;
  let plural: string;
  let name: string | undefined;
  let subresource: string | undefined;
  const nsScoped = rest[0] === 'namespaces' && rest.length >= 3 ? registry.lookup(group, version, rest[2]) : undefined;
  if (nsScoped && nsScoped.namespaced) {
    namespace = rest[1];
    [plural, name, subresource] = [rest[2], rest[3], rest[4]];
    if (rest.length > 5) return { kind: 'notFoundStatus' };
  } else {
    [plural, name, subresource] = [rest[0], rest[1], rest[2]];
    if (rest.length > 3) return { kind: 'notFoundStatus' };
  }
  const type = registry.lookup(group, version, plural);
  if (!type) return { kind: 'notFoundStatus' };
  if (type.namespaced && namespace === undefined && name !== undefined) return { kind: 'notFoundStatus' };
  if (subresource !== undefined && !type.subresources.includes(subresource)) return { kind: 'notFoundStatus' };

  let verb: string | undefined;
  if (name === undefined) {
    if (method === 'GET') verb = isWatch(query) ? 'watch' : 'list';
    else if (method === 'POST') verb = 'create';
    else if (method === 'DELETE') verb = 'deletecollection';
  } else if (subresource === 'token') {
    if (method === 'POST') verb = 'create';
  } else {
    if (method === 'GET') verb = isWatch(query) ? 'watch' : 'get';
    else if (method === 'PUT') verb = 'update';
    else if (method === 'PATCH') verb = 'patch';
    else if (method === 'DELETE' && subresource === undefined) verb = 'delete';
  }
  if (verb === undefined || (!type.verbs.includes(verb) && subresource === undefined)) return { kind: 'methodNotAllowed' };
  return { kind: 'resource', type, namespace, name, subresource, verb };
}
