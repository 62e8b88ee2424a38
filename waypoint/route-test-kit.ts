// Literal routes for the waypoint's table tests: real HTTPRoute objects (validated against the
// Gateway API schema by @kubernetes-models) converted the way the waypoint converts them.
import assert from 'node:assert/strict';
import { HTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';
import { HttpRouteObject, convertHttpRoute } from './convert-http-route';
import type { RequestView, Route } from './route-model';

type Rules = NonNullable<HttpRouteObject['spec']['rules']>;

/**
 * An HTTPRoute with the Service `shop/api` as parent. `unchecked` skips the schema, for values
 * only the waypoint's own checks catch (or that reach it past an API server without the CRD's
 * validation, as in the sandbox).
 */
export function httpRoute(name: string, rules: Rules, opts: { created?: string; namespace?: string; port?: number; unchecked?: boolean } = {}): HttpRouteObject {
  const obj = {
    apiVersion: 'gateway.networking.k8s.io/v1' as const, kind: 'HTTPRoute' as const,
    metadata: { name, namespace: opts.namespace ?? 'shop', generation: 1, ...(opts.created ? { creationTimestamp: opts.created } : {}) },
    spec: { parentRefs: [{ group: '', kind: 'Service', name: 'api', ...(opts.port ? { port: opts.port } : {}) }], rules },
  };
  // The schema check ignores the experimental `retry` field, which the installed types lack.
  if (!opts.unchecked) new HTTPRoute(JSON.parse(JSON.stringify(obj, (k, v) => (k === 'retry' ? undefined : v)))).validate();
  return obj;
}

/** Converts and insists the route is valid. */
export function route(name: string, rules: Rules, opts: { created?: string; namespace?: string; port?: number } = {}): Route {
  const { value, problems } = convertHttpRoute(httpRoute(name, rules, opts));
  assert.deepEqual(problems, [], `route ${name} should convert cleanly`);
  return value;
}

export function req(path: string, opts: { method?: string; headers?: Record<string, string> } = {}): RequestView {
  const q = path.indexOf('?');
  return { method: opts.method ?? 'GET', path: q < 0 ? path : path.slice(0, q), query: q < 0 ? '' : path.slice(q + 1), headers: opts.headers ?? {} };
}
