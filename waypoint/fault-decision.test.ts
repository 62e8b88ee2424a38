import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FaultConfig } from './backend-traffic-policy';
import { GRPC_CODE_NAMES, decideFault, httpStatusOfGrpc, isGrpcRequest } from './fault-decision';

/** A random source that returns these draws in order. */
const draws = (...xs: number[]) => () => { const x = xs.shift(); assert.ok(x !== undefined, 'drew more than expected'); return x; };

test('delay and abort each draw once against their percentage (random * 100 < percentage)', () => {
  const fault: FaultConfig = { delay: { ms: 200, percentage: 30 }, abort: { httpStatus: 503, percentage: 50 } };
  const table: [number, number, number, number | undefined][] = [
    // delay draw, abort draw -> delayMs, abort status
    [0, 0, 200, 503],
    [0.2999, 0.4999, 200, 503],
    [0.3, 0.5, 0, undefined],
    [0.99, 0.1, 0, 503],
    [0.1, 0.9, 200, undefined],
  ];
  for (const [d, a, delayMs, status] of table) {
    const v = decideFault(fault, draws(d, a), false);
    assert.equal(v.delayMs, delayMs, `draws ${d} ${a}`);
    assert.deepEqual(v.abort, status === undefined ? undefined : { kind: 'http', status }, `draws ${d} ${a}`);
  }
});

test('0% never fires and does not draw; 100% always fires', () => {
  assert.deepEqual(decideFault({ abort: { httpStatus: 500, percentage: 0 } }, draws(), false), { delayMs: 0 });
  for (const r of [0, 0.5, 0.999999]) {
    assert.deepEqual(decideFault({ delay: { ms: 5, percentage: 100 }, abort: { httpStatus: 429, percentage: 100 } }, () => r, false), { delayMs: 5, abort: { kind: 'http', status: 429 } });
  }
  // a fraction of a percent, as Istio's percentage.value allows
  assert.equal(decideFault({ abort: { httpStatus: 500, percentage: 0.1 } }, () => 0.0009, false).abort?.kind, 'http');
  assert.equal(decideFault({ abort: { httpStatus: 500, percentage: 0.1 } }, () => 0.001, false).abort, undefined);
});

test('a gRPC status: the code for gRPC requests, its HTTP mapping for others', () => {
  const fault: FaultConfig = { abort: { grpcStatus: 14, percentage: 100 } };
  assert.deepEqual(decideFault(fault, () => 0, true).abort, { kind: 'grpc', code: 14, name: 'UNAVAILABLE' });
  assert.deepEqual(decideFault(fault, () => 0, false).abort, { kind: 'http', status: 503 });
  const mapping: [number, number][] = [[0, 200], [1, 499], [4, 504], [5, 404], [7, 403], [8, 429], [12, 501], [13, 500], [14, 503], [16, 401]];
  for (const [code, status] of mapping) assert.equal(httpStatusOfGrpc(code), status, GRPC_CODE_NAMES[code]);
  assert.equal(GRPC_CODE_NAMES.length, 17);
  // an HTTP status aborts gRPC requests with that HTTP status (gRPC clients map it)
  assert.deepEqual(decideFault({ abort: { httpStatus: 503, percentage: 100 } }, () => 0, true).abort, { kind: 'http', status: 503 });
});

test('over many draws a 50% abort lands near half', () => {
  let seed = 42;
  const lcg = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
  let aborted = 0;
  for (let i = 0; i < 10_000; i++) if (decideFault({ abort: { httpStatus: 503, percentage: 50 } }, lcg, false).abort) aborted++;
  assert.ok(aborted > 4700 && aborted < 5300, `${aborted} of 10000`);
});

test('isGrpcRequest: application/grpc and its +format variants only', () => {
  const table: [string | string[] | undefined, boolean][] = [
    ['application/grpc', true], ['application/grpc+proto', true], ['application/grpc;charset=utf-8', true], ['Application/GRPC', true],
    [['application/grpc'], true], ['application/grpc-web', false], ['application/json', false], [undefined, false], ['', false],
  ];
  for (const [ct, want] of table) assert.equal(isGrpcRequest(ct), want, String(ct));
});
