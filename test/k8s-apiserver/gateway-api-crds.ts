// The Gateway API kinds as CRDs with open schemas, for tests about the code that reads them
// (the waypoint controller, the waypoint's source), not about the CRDs' validation: the
// project validates these kinds itself at the edge (daemon/schema).
export function gatewayApiCrd(kind: string, plural: string, scope: 'Namespaced' | 'Cluster') {
  const open = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  return {
    apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.gateway.networking.k8s.io` },
    spec: {
      group: 'gateway.networking.k8s.io', scope,
      names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
      versions: [{ name: 'v1', served: true, storage: true, subresources: { status: {} }, schema: { openAPIV3Schema: { type: 'object', properties: { spec: open, status: open } } } }],
    },
  };
}

