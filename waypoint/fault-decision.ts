// Fault injection, pure (Istio HTTPFaultInjection, Envoy's fault filter): whether this request
// is delayed and whether it is aborted, each drawn on its own against its percentage, and what
// an abort answers. A gRPC request aborted with a gRPC status gets HTTP 200 and the status in
// the grpc-status trailer; any other request gets an HTTP status (a gRPC status mapped as Envoy
// maps it for HTTP callers).
import type { FaultConfig } from './backend-traffic-policy';

export type FaultAbort = { kind: 'http'; status: number } | { kind: 'grpc'; code: number; name: string };

export interface FaultVerdict {
  /** 0: no delay. */
  delayMs: number;
  abort?: FaultAbort;
}

export const GRPC_CODE_NAMES: readonly string[] = Object.freeze([
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
]);

/** The HTTP status a gRPC code stands for (gRPC's HTTP mapping, as Envoy applies it). */
const GRPC_TO_HTTP: readonly number[] = Object.freeze([200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401]);

export function httpStatusOfGrpc(code: number): number {
  return GRPC_TO_HTTP[code] ?? 500;
}

/** `random` returns a number in [0, 1), like Math.random; one draw for the delay, one for the abort. */
export function decideFault(fault: FaultConfig, random: () => number, grpcRequest: boolean): FaultVerdict {
  const drawn = (percentage: number) => percentage > 0 && random() * 100 < percentage;
  const verdict: FaultVerdict = { delayMs: fault.delay && drawn(fault.delay.percentage) ? fault.delay.ms : 0 };
  const a = fault.abort;
  if (a && drawn(a.percentage)) {
    if ('grpcStatus' in a) {
      verdict.abort = grpcRequest ? { kind: 'grpc', code: a.grpcStatus, name: GRPC_CODE_NAMES[a.grpcStatus] ?? String(a.grpcStatus) } : { kind: 'http', status: httpStatusOfGrpc(a.grpcStatus) };
    } else {
      verdict.abort = { kind: 'http', status: a.httpStatus };
    }
  }
  return verdict;
}

/** gRPC over HTTP/2: `application/grpc`, `application/grpc+proto`, ... */
export function isGrpcRequest(contentType: string | string[] | undefined): boolean {
  const v = Array.isArray(contentType) ? contentType[0] : contentType;
  return typeof v === 'string' && /^application\/grpc($|[+;])/i.test(v);
}
