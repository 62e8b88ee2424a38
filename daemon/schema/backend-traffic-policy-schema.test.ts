// BackendTrafficPolicy (installer/crds/backendtrafficpolicies.policy.nodemesh.io.yaml) validated
// like every other resource: Istio / Envoy Gateway shaped objects pass, bad ones are refused
// with the API server's paths and words. Its CEL rules have their cases in validation-rule.test.ts.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { isNamespaced, validateObject, type SchemaIssue } from './index';
import { crdKinds } from './crd-validator';

const API = 'policy.nodemesh.io/v1alpha1';
const btp = (spec: unknown, extra: Record<string, unknown> = {}): unknown => ({ apiVersion: API, kind: 'BackendTrafficPolicy', metadata: { name: 'p', namespace: 'shop' }, spec, ...extra });
const SVC = [{ kind: 'Service', group: '', name: 'api' }];

const cases: { name: string; obj: unknown; issues: SchemaIssue[] | 'valid' }[] = [
  {
    name: 'everything for a Service (Envoy Gateway / Istio names)',
    obj: btp({
      targetRefs: SVC,
      circuitBreaker: { maxConnections: 100, maxPendingRequests: 10, maxParallelRequests: 50, maxRequestsPerConnection: 1 },
      outlierDetection: { consecutive5xxErrors: 5, consecutiveGatewayErrors: 3, interval: '10s', baseEjectionTime: '30s', maxEjectionPercent: 50 },
      faultInjection: { delay: { fixedDelay: '1m30s', percentage: 0.1 }, abort: { httpStatus: 503, percentage: 50 } },
    }),
    issues: 'valid',
  },
  { name: 'an empty outlierDetection takes the defaults', obj: btp({ targetRefs: SVC, outlierDetection: {} }), issues: 'valid' },
  { name: 'a gRPC abort for a GRPCRoute', obj: btp({ targetRefs: [{ kind: 'GRPCRoute', name: 'g' }], faultInjection: { abort: { grpcStatus: 14, percentage: 100 } } }), issues: 'valid' },
  {
    name: 'status written by a waypoint',
    obj: btp({ targetRefs: SVC, faultInjection: { abort: { httpStatus: 503 } } }, {
      status: { ancestors: [{ ancestorRef: { group: '', kind: 'Service', name: 'api', namespace: 'shop' }, controllerName: 'nodemesh.io/waypoint', conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'ok', observedGeneration: 1, lastTransitionTime: '2026-01-01T00:00:00Z' }] }] },
    }),
    issues: 'valid',
  },

  { name: 'no targetRefs', obj: btp({ faultInjection: { abort: { httpStatus: 503 } } }), issues: [{ path: 'spec.targetRefs', message: 'Required value' }] },
  { name: 'empty targetRefs', obj: btp({ targetRefs: [], faultInjection: { abort: { httpStatus: 503 } } }), issues: [{ path: 'spec.targetRefs', message: 'Invalid value: 0: spec.targetRefs in body should have at least 1 items' }] },
  {
    name: 'a Gateway target', obj: btp({ targetRefs: [{ kind: 'Gateway', name: 'w' }], faultInjection: { abort: { httpStatus: 503 } } }),
    issues: [{ path: 'spec.targetRefs[0].kind', message: 'Unsupported value: "Gateway": supported values: "Service", "HTTPRoute", "GRPCRoute"' }],
  },
  { name: 'a misspelt circuit breaker field', obj: btp({ targetRefs: SVC, circuitBreaker: { maxPendingRequest: 1 } }), issues: [{ path: 'spec.circuitBreaker.maxPendingRequest', message: 'unknown field "spec.circuitBreaker.maxPendingRequest"' }] },
  { name: 'an empty circuit breaker', obj: btp({ targetRefs: SVC, circuitBreaker: {} }), issues: [{ path: 'spec.circuitBreaker', message: 'Invalid value: 0: spec.circuitBreaker in body should have at least 1 properties' }] },
  { name: 'zero parallel requests', obj: btp({ targetRefs: SVC, circuitBreaker: { maxParallelRequests: 0 } }), issues: [{ path: 'spec.circuitBreaker.maxParallelRequests', message: 'Invalid value: 0: spec.circuitBreaker.maxParallelRequests in body should be greater than or equal to 1' }] },
  { name: 'a negative pending queue', obj: btp({ targetRefs: SVC, circuitBreaker: { maxPendingRequests: -1 } }), issues: [{ path: 'spec.circuitBreaker.maxPendingRequests', message: 'Invalid value: -1: spec.circuitBreaker.maxPendingRequests in body should be greater than or equal to 0' }] },
  {
    name: 'a Go-style duration and a share over 100',
    obj: btp({ targetRefs: SVC, outlierDetection: { baseEjectionTime: '1.5s', maxEjectionPercent: 101 } }),
    issues: [
      { path: 'spec.outlierDetection.baseEjectionTime', message: `Invalid value: "1.5s": spec.outlierDetection.baseEjectionTime in body should match '^([0-9]{1,5}(h|m|s|ms)){1,4}$'` },
      { path: 'spec.outlierDetection.maxEjectionPercent', message: 'Invalid value: 101: spec.outlierDetection.maxEjectionPercent in body should be less than or equal to 100' },
    ],
  },
  { name: 'a delay without fixedDelay', obj: btp({ targetRefs: SVC, faultInjection: { delay: { percentage: 10 } } }), issues: [{ path: 'spec.faultInjection.delay.fixedDelay', message: 'Required value' }] },
  { name: 'an abort status as a string', obj: btp({ targetRefs: SVC, faultInjection: { abort: { httpStatus: '503' } } }), issues: [{ path: 'spec.faultInjection.abort.httpStatus', message: 'Invalid value: "string": spec.faultInjection.abort.httpStatus in body must be of type integer: "string"' }] },
  { name: 'a gRPC status out of range', obj: btp({ targetRefs: SVC, faultInjection: { abort: { grpcStatus: 17 } } }), issues: [{ path: 'spec.faultInjection.abort.grpcStatus', message: 'Invalid value: 17: spec.faultInjection.abort.grpcStatus in body should be less than or equal to 16' }] },
  { name: 'a negative percentage', obj: btp({ targetRefs: SVC, faultInjection: { abort: { httpStatus: 503, percentage: -5 } } }), issues: [{ path: 'spec.faultInjection.abort.percentage', message: 'Invalid value: -5: spec.faultInjection.abort.percentage in body should be greater than or equal to 0' }] },
  { name: 'an empty faultInjection', obj: btp({ targetRefs: SVC, faultInjection: {} }), issues: [{ path: 'spec.faultInjection', message: 'Invalid value: 0: spec.faultInjection in body should have at least 1 properties' }] },
];

for (const c of cases) {
  test(`BackendTrafficPolicy schema: ${c.name}`, () => {
    const r = validateObject(c.obj);
    assert.equal(r.schemaKnown, true);
    assert.deepEqual(r.issues, c.issues === 'valid' ? [] : c.issues);
  });
}

test('BackendTrafficPolicy is a namespaced kind of its own CRD file', () => {
  assert.ok(crdKinds().has(`${API}/BackendTrafficPolicy`));
  assert.equal(isNamespaced(API, 'BackendTrafficPolicy'), true);
});
