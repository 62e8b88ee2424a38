// The slice of a Kubernetes object the controller reads. Objects come from the API server as
// JSON; every field is checked where it is used, so a malformed object is skipped, not fatal.
export interface KubeMeta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: KubeMeta;
  spec?: any;
  status?: any;
}

export const GATEWAY_API_VERSION = 'gateway.networking.k8s.io/v1';
export const WAYPOINT_CLASS = 'nodemesh-waypoint';
export const CONTROLLER_NAME = 'nodemesh.io/waypoint-controller';
export const FIELD_MANAGER = 'nodemesh-waypoint-controller';
export const USE_WAYPOINT_LABEL = 'nodemesh.io/use-waypoint';

/** Why an object cannot be used, or undefined when its metadata is sound. */
export function metadataProblem(o: unknown): string | undefined {
  if (typeof o !== 'object' || o === null) return 'not an object';
  const m = (o as { metadata?: unknown }).metadata;
  if (typeof m !== 'object' || m === null) return 'metadata missing';
  const name = (m as { name?: unknown }).name;
  if (typeof name !== 'string' || name === '') return 'metadata.name missing';
  const labels = (m as { labels?: unknown }).labels;
  if (labels !== undefined && (typeof labels !== 'object' || labels === null)) return 'metadata.labels is not a map';
  return undefined;
}

export const keyOf = (namespace: string | undefined, name: string): string => `${namespace ?? ''}/${name}`;
