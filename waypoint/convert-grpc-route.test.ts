import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GRPCRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1alpha2/GRPCRoute';
import { GrpcRouteObject, convertGrpcRoute } from './convert-grpc-route';
import { selectRoute } from './route-match';
import { req } from './route-test-kit';

type Rules = NonNullable<GrpcRouteObject['spec']['rules']>;
const grpcRoute = (rules: Rules): GrpcRouteObject => {
  const obj: GrpcRouteObject = {
    apiVersion: 'gateway.networking.k8s.io/v1alpha2', kind: 'GRPCRoute', metadata: { name: 'g', namespace: 'shop' },
    spec: { parentRefs: [{ group: '', kind: 'Service', name: 'api' }], rules },
  };
  new GRPCRoute(obj as never).validate();
  return obj;
};

test('gRPC methods become path matches with service+method > service > method precedence', () => {
  const { value, problems } = convertGrpcRoute(grpcRoute([
    { matches: [{ method: { service: 'shop.Catalog', method: 'Get' } }], backendRefs: [{ name: 'exact', port: 9000 }] },
    { matches: [{ method: { service: 'shop.Catalog' } }], backendRefs: [{ name: 'service', port: 9000 }] },
    { matches: [{ method: { method: 'Health' } }], backendRefs: [{ name: 'method', port: 9000 }] },
    { matches: [{ method: { type: 'RegularExpression', service: 'shop\\..*', method: 'List.*' } }], backendRefs: [{ name: 'regex', port: 9000 }] },
    { matches: [{ headers: [{ name: 'x-tenant', value: 'a' }] }], backendRefs: [{ name: 'tenant', port: 9000 }] },
  ]));
  assert.deepEqual(problems, []);
  assert.deepEqual(value.rules.map((r) => [r.matches[0].path.type, r.matches[0].path.value]), [
    ['Exact', '/shop.Catalog/Get'], ['PathPrefix', '/shop.Catalog'], ['RegularExpression', '/[^/]+/Health'],
    ['RegularExpression', '/shop\\..*/List.*'], ['PathPrefix', '/'],
  ]);
  const post = (path: string, headers: Record<string, string> = {}) => selectRoute([value], req(path, { method: 'POST', headers }))?.rule.backends[0].name;
  assert.equal(post('/shop.Catalog/Get'), 'exact');
  assert.equal(post('/shop.Catalog/List'), 'service');
  assert.equal(post('/other.Svc/Health'), 'method');
  assert.equal(post('/shop.Orders/ListAll'), 'regex');
  assert.equal(post('/other.Svc/Get', { 'x-tenant': 'a' }), 'tenant');
  assert.equal(post('/other.Svc/Get'), undefined);
});

test('a bad gRPC name or regex is a problem naming the field', () => {
  const { problems } = convertGrpcRoute(grpcRoute([
    { matches: [{ method: { service: 'bad/name' } }] },
    { matches: [{ method: { type: 'RegularExpression', method: '(' } }] },
  ]));
  assert.deepEqual(problems.map((p) => p.field), ['spec.rules[0].matches[0].method.service', 'spec.rules[1].matches[0].method']);
});
