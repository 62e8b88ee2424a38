import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convertHttpRoute } from './convert-http-route';
import { isAccepted, routeStatus, StatusInputs } from './route-status';
import { httpRoute } from './route-test-kit';

const services = new Set(['shop/api', 'shop/api-v1', 'shop/api-v2', 'shop/plain']);
const inputs: StatusInputs = {
  serviceExists: (s) => services.has(`${s.namespace}/${s.name}`),
  waypointOf: (s) => (s.name === 'plain' ? undefined : 'waypoint'),
  now: '2026-01-01T00:00:00Z',
};
const conditions = (obj: ReturnType<typeof httpRoute>, i: StatusInputs = inputs) => {
  const { value, problems } = convertHttpRoute(obj);
  return routeStatus(value, problems, i)[0].conditions.map((c) => [c.type, c.status, c.reason]);
};

test('route status: Accepted and ResolvedRefs with the Gateway API reasons', () => {
  const withParent = (name: string, rules: Parameters<typeof httpRoute>[1]) => {
    const o = httpRoute('r', rules);
    o.spec.parentRefs = [{ group: '', kind: 'Service', name, ...(name === 'far' ? { namespace: 'other' } : {}) }];
    return o;
  };
  const ok = [{ backendRefs: [{ name: 'api-v1', port: 80 }] }];
  const table: [ReturnType<typeof httpRoute>, string[][]][] = [
    [httpRoute('r', ok), [['Accepted', 'True', 'Accepted'], ['ResolvedRefs', 'True', 'ResolvedRefs']]],
    [httpRoute('r', [{ matches: [{ path: { type: 'RegularExpression', value: '(' } }] }]), [['Accepted', 'False', 'UnsupportedValue'], ['ResolvedRefs', 'True', 'ResolvedRefs']]],
    [withParent('missing', ok), [['Accepted', 'False', 'NoMatchingParent'], ['ResolvedRefs', 'True', 'ResolvedRefs']]],
    [withParent('plain', ok), [['Accepted', 'False', 'NoMatchingParent'], ['ResolvedRefs', 'True', 'ResolvedRefs']]],
    [withParent('far', ok), [['Accepted', 'False', 'UnsupportedValue'], ['ResolvedRefs', 'True', 'ResolvedRefs']]],
    [httpRoute('r', [{ backendRefs: [{ name: 'gone', port: 80 }] }]), [['Accepted', 'True', 'Accepted'], ['ResolvedRefs', 'False', 'BackendNotFound']]],
    [httpRoute('r', [{ filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'gone', port: 80 } } }], backendRefs: [{ name: 'api-v1', port: 80 }] }]), [['Accepted', 'True', 'Accepted'], ['ResolvedRefs', 'False', 'BackendNotFound']]],
    [httpRoute('r', [{ backendRefs: [{ group: 'x.io', kind: 'Bucket', name: 'b' }] }]), [['Accepted', 'True', 'Accepted'], ['ResolvedRefs', 'False', 'InvalidKind']]],
    [httpRoute('r', [{ backendRefs: [{ name: 'api-v1', namespace: 'other', port: 80 }] }]), [['Accepted', 'True', 'Accepted'], ['ResolvedRefs', 'False', 'RefNotPermitted']]],
  ];
  for (const [obj, want] of table) assert.deepEqual(conditions(obj), want, JSON.stringify(obj.spec));
});

test('route status: the message names the field, the generation is observed, transitions keep their time', () => {
  const { value, problems } = convertHttpRoute(httpRoute('r', [{ timeouts: { request: 'soon' } }], { unchecked: true }));
  const first = routeStatus(value, problems, inputs);
  assert.equal(first[0].controllerName, 'nodemesh.io/waypoint-controller');
  assert.deepEqual(first[0].parentRef, { group: '', kind: 'Service', name: 'api', namespace: 'shop' });
  const accepted = first[0].conditions[0];
  assert.match(accepted.message, /^spec\.rules\[0\]\.timeouts\.request: "soon" is not a duration/);
  assert.equal(accepted.observedGeneration, 1);
  const later = routeStatus(value, problems, { ...inputs, now: '2026-02-02T00:00:00Z', previous: first });
  assert.equal(later[0].conditions[0].lastTransitionTime, '2026-01-01T00:00:00Z');
  const fixed = convertHttpRoute(httpRoute('r', [{ backendRefs: [{ name: 'api-v1', port: 80 }] }]));
  const accepted2 = routeStatus(fixed.value, fixed.problems, { ...inputs, now: '2026-02-02T00:00:00Z', previous: first });
  assert.equal(accepted2[0].conditions[0].lastTransitionTime, '2026-02-02T00:00:00Z');
  assert.equal(isAccepted(first, { namespace: 'shop', name: 'api' }), false);
  assert.equal(isAccepted(accepted2, { namespace: 'shop', name: 'api' }), true);
});
