import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { routeParentStatuses, type RouteLookups } from './route-parent-status';
import type { KubeObject } from './kube-object';

const NOW = '2026-01-01T00:00:10Z';
const meta = (namespace: string | undefined, name: string, labels?: Record<string, string>) => ({ metadata: { name, namespace, labels } });

function world(o: { nsLabel?: string; svcLabels?: Record<string, Record<string, string>>; gateways?: Record<string, string> }): RouteLookups {
  const services = new Map(Object.entries(o.svcLabels ?? {}).map(([n, l]) => [n, meta('shop', n, l) as KubeObject]));
  return {
    service: (ns, name) => (ns === 'shop' ? services.get(name) : undefined),
    namespace: (name) => (name === 'shop' ? meta(undefined, 'shop', o.nsLabel ? { 'nodemesh.io/use-waypoint': o.nsLabel } : {}) as KubeObject : undefined),
    gateway: (ns, name) => {
      const cls = o.gateways?.[name];
      return ns === 'shop' && cls ? { metadata: { name, namespace: ns }, spec: { gatewayClassName: cls } } : undefined;
    },
  };
}

const route = (spec: unknown, status?: unknown): KubeObject => ({ metadata: { name: 'r', namespace: 'shop', generation: 2 }, spec, status });
const svcParent = (name: string, extra: Record<string, unknown> = {}) => ({ group: '', kind: 'Service', name, ...extra });
const rules = (...backends: unknown[]) => [{ backendRefs: backends }];

test('Accepted and ResolvedRefs per Service parent', () => {
  const wpWorld = { nsLabel: 'wp', svcLabels: { api: {}, 'api-v1': {}, 'api-v2': {} }, gateways: { wp: 'nodemesh-waypoint' } };
  const cases: [string, Parameters<typeof world>[0], unknown, [string, string], [string, string]][] = [
    ['namespace label names our waypoint', wpWorld, { parentRefs: [svcParent('api')], rules: rules({ name: 'api-v1', port: 80 }, { name: 'api-v2', port: 80 }) }, ['True', 'Accepted'], ['True', 'ResolvedRefs']],
    ['Service label wins over the namespace', { ...wpWorld, nsLabel: undefined, svcLabels: { api: { 'nodemesh.io/use-waypoint': 'wp' }, 'api-v1': {} } }, { parentRefs: [svcParent('api')], rules: rules({ name: 'api-v1', port: 80 }) }, ['True', 'Accepted'], ['True', 'ResolvedRefs']],
    ['Service opts out with none', { ...wpWorld, svcLabels: { api: { 'nodemesh.io/use-waypoint': 'none' }, 'api-v1': {} } }, { parentRefs: [svcParent('api')], rules: rules({ name: 'api-v1', port: 80 }) }, ['False', 'NoMatchingParent'], ['True', 'ResolvedRefs']],
    ['no waypoint label', { svcLabels: { api: {}, 'api-v1': {} } }, { parentRefs: [svcParent('api')], rules: rules({ name: 'api-v1', port: 80 }) }, ['False', 'NoMatchingParent'], ['True', 'ResolvedRefs']],
    ['label names a missing Gateway', { ...wpWorld, gateways: {} }, { parentRefs: [svcParent('api')] }, ['False', 'NoMatchingParent'], ['True', 'ResolvedRefs']],
    ['label names a Gateway of another class', { ...wpWorld, gateways: { wp: 'istio-waypoint' } }, { parentRefs: [svcParent('api')] }, ['False', 'NoMatchingParent'], ['True', 'ResolvedRefs']],
    ['parent Service missing', wpWorld, { parentRefs: [svcParent('nope')] }, ['False', 'NoMatchingParent'], ['True', 'ResolvedRefs']],
    ['parent in another namespace', wpWorld, { parentRefs: [svcParent('api', { namespace: 'other' })] }, ['False', 'UnsupportedValue'], ['True', 'ResolvedRefs']],
    ['backend missing', wpWorld, { parentRefs: [svcParent('api')], rules: rules({ name: 'gone', port: 80 }) }, ['True', 'Accepted'], ['False', 'BackendNotFound']],
    ['backend of another kind', wpWorld, { parentRefs: [svcParent('api')], rules: rules({ group: 'x.io', kind: 'Thing', name: 'api-v1' }) }, ['True', 'Accepted'], ['False', 'InvalidKind']],
    ['backend in another namespace', wpWorld, { parentRefs: [svcParent('api')], rules: rules({ name: 'api-v1', namespace: 'other', port: 80 }) }, ['True', 'Accepted'], ['False', 'RefNotPermitted']],
    ['mirror target missing', wpWorld, { parentRefs: [svcParent('api')], rules: [{ backendRefs: [{ name: 'api-v1', port: 80 }], filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'shadow', port: 80 } } }] }] }, ['True', 'Accepted'], ['False', 'BackendNotFound']],
  ];
  for (const [name, w, spec, accepted, resolved] of cases) {
    const r = routeParentStatuses(route(spec), world(w), NOW);
    assert.equal(r.kind, 'parents', name);
    if (r.kind !== 'parents') continue;
    assert.equal(r.parents.length, 1, name);
    const [p] = r.parents;
    assert.equal(p.controllerName, 'nodemesh.io/waypoint-controller', name);
    assert.deepEqual(p.parentRef, (spec as { parentRefs: unknown[] }).parentRefs[0], name);
    const get = (t: string) => p.conditions.find((c) => c.type === t)!;
    assert.deepEqual([get('Accepted').status, get('Accepted').reason], accepted, name);
    assert.deepEqual([get('ResolvedRefs').status, get('ResolvedRefs').reason], resolved, name);
    assert.equal(get('Accepted').observedGeneration, 2, name);
  }
});

test('routes without Service parents, malformed routes, other controllers and transition times', () => {
  const w = world({ nsLabel: 'wp', svcLabels: { api: {} }, gateways: { wp: 'nodemesh-waypoint' } });
  assert.deepEqual(routeParentStatuses(route({ parentRefs: [{ name: 'public-gw' }] }), w, NOW), { kind: 'none' });
  assert.deepEqual(routeParentStatuses(route({}), w, NOW), { kind: 'none' });
  assert.deepEqual(routeParentStatuses(route({ parentRefs: 'api' }), w, NOW), { kind: 'malformed', reason: 'spec.parentRefs is not a list' });
  assert.deepEqual(routeParentStatuses(route({ parentRefs: [{ kind: 'Service' }] }), w, NOW), { kind: 'malformed', reason: 'spec.parentRefs[0].name missing' });

  const other = { parentRef: { name: 'public-gw' }, controllerName: 'example.com/gateway', conditions: [] };
  const mineBefore = { parentRef: svcParent('api'), controllerName: 'nodemesh.io/waypoint-controller', conditions: [
    { type: 'Accepted', status: 'True', reason: 'Accepted', message: '', lastTransitionTime: 'then' },
    { type: 'ResolvedRefs', status: 'False', reason: 'BackendNotFound', message: '', lastTransitionTime: 'then' },
  ] };
  const r = routeParentStatuses(route({ parentRefs: [{ name: 'public-gw' }, svcParent('api')] }, { parents: [other, mineBefore] }), w, NOW);
  assert.equal(r.kind, 'parents');
  if (r.kind !== 'parents') return;
  assert.deepEqual(r.parents[0], other);
  assert.deepEqual(r.parents[1].conditions.map((c) => [c.type, c.status, c.lastTransitionTime]), [['Accepted', 'True', 'then'], ['ResolvedRefs', 'True', NOW]]);
});
