// Gateway API objects in manifests (Gateway, HTTPRoute, GRPCRoute): checked against the
// published CRD schemas (the @kubernetes-models/gateway-api types), as an API server with the
// CRDs installed would at apply time. What the schema allows but a waypoint cannot route
// (a bad regular expression, an unsupported filter) is reported in the route's status, as in
// Kubernetes. Pure.
import { Gateway } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/Gateway';
import { HTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';
import { GRPCRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1alpha2/GRPCRoute';

export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
export const GATEWAY_API_KINDS: readonly string[] = Object.freeze(['Gateway', 'HTTPRoute', 'GRPCRoute']);
export const GATEWAY_API_VERSIONS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  Gateway: [`${GATEWAY_API_GROUP}/v1`],
  HTTPRoute: [`${GATEWAY_API_GROUP}/v1`],
  GRPCRoute: [`${GATEWAY_API_GROUP}/v1`, `${GATEWAY_API_GROUP}/v1alpha2`],
});

export interface SchemaIssue { path: (string | number)[]; value: unknown; problem: string; fix: string }

interface AjvError { instancePath: string; message?: string; params?: { allowedValues?: unknown[]; additionalProperty?: string; missingProperty?: string }; data?: unknown }

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  Gateway: Gateway as never, HTTPRoute: HTTPRoute as never, GRPCRoute: GRPCRoute as never,
};

function toPath(instancePath: string): (string | number)[] {
  return instancePath.split('/').filter(Boolean).map((s) => (/^\d+$/.test(s) ? Number(s) : s.replace(/~1/g, '/').replace(/~0/g, '~')));
}

/** Schema problems of one Gateway API object (kind and apiVersion already checked). */
export function gatewayApiIssues(raw: Record<string, unknown>): SchemaIssue[] {
  const Model = MODELS[String(raw.kind)];
  if (!Model) return [];
  // The experimental HTTPRoute `retry` field (GEP-1731) is not in the installed schema yet:
  // it is checked by the waypoint's conversion, not refused here.
  const forSchema = JSON.parse(JSON.stringify({ ...raw, apiVersion: (Model as unknown as { apiVersion: string }).apiVersion }, (k, v: unknown) => (k === 'retry' ? undefined : v)));
  try {
    new Model(forSchema as never).validate();
  } catch (e) {
    const errors = ((e as { errors?: AjvError[] }).errors ?? []);
    if (errors.length === 0) return [{ path: [], value: undefined, problem: (e as Error).message, fix: 'compare the object with the Gateway API reference' }];
    return errors.map((a) => {
      const path = toPath(a.instancePath);
      if (a.params?.missingProperty) path.push(a.params.missingProperty);
      const allowed = a.params?.allowedValues ? `: one of ${a.params.allowedValues.map((x) => JSON.stringify(x)).join(', ')}` : '';
      const extra = a.params?.additionalProperty ? ` (${a.params.additionalProperty})` : '';
      return { path, value: a.data, problem: `${a.message ?? 'invalid'}${allowed}${extra}`, fix: 'see the Gateway API reference for this field' };
    });
  }
  return [];
}
