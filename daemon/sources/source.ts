// Where the daemon's view of the cluster comes from. Two implementations: the sandbox's
// object directory (sandbox-source.ts) and Kubernetes informers (a later kube-source.ts).
// A source delivers the full set of resources on every change; the daemon rebuilds an
// immutable snapshot from it.
import type { Resource } from '../state/resources';

export interface SourceUpdate {
  resources: Resource[];
  /** Objects the source could not read; reported, never fatal for the rest. */
  errors: { object: string; error: string }[];
}

export interface StateSource {
  readonly name: string;
  /** Starts watching; resolves after the first full update has been delivered. */
  start(onUpdate: (u: SourceUpdate) => void): Promise<void>;
  stop(): void;
}

const KINDS = new Set(['Namespace', 'Pod', 'Service', 'AuthorizationPolicy', 'PeerAuthentication']);

/** Keeps the kinds the daemon understands; the rest is ignored here (other parts of the
 * system, such as the waypoint, read their own kinds). */
export function toResources(objects: readonly { kind?: unknown; metadata?: unknown }[]): Resource[] {
  return objects.filter((o) => typeof o.kind === 'string' && KINDS.has(o.kind) &&
    typeof o.metadata === 'object' && o.metadata !== null) as unknown as Resource[];
}
