// Where the daemon's view of the cluster comes from. Two implementations: the sandbox's
// object directory (sandbox-source.ts) and Kubernetes informers (kube-source.ts). A source
// delivers incremental batches: objects added or changed (upsert) and removed (delete), the
// kinds whose first complete list has been delivered (synced), and the objects it skipped.
// The daemon applies each batch into its immutable snapshot (state/snapshot.ts
// applyChanges), so an event costs what it touches, not a rebuild of the cluster.
import type { ResourceKind } from '../state/resources';
import { EMPTY_SNAPSHOT, Snapshot, SnapshotChange, applyChanges } from '../state/snapshot';

/** What a source reports: object upserts and deletes (never pod-runtime facts, which are the node's). */
export type SourceChange = Extract<SnapshotChange, { op: 'upsert' | 'delete' }>;

/** Why an object was skipped; a fixed set, so it can be a metric label. */
export type SkipReason = 'unreadable' | 'schema' | 'malformed' | 'gateway-class';
export const SKIP_REASONS: readonly SkipReason[] = ['unreadable', 'schema', 'malformed', 'gateway-class'];

export interface SkippedObject {
  /** The object's kind when known (a fixed set, else 'unknown'). */
  kind: ResourceKind | 'unknown';
  /** `kind ns/name` or a file name: for logs only, never a metric label. */
  object: string;
  reason: SkipReason;
  /** Bounded in length. */
  error: string;
}

export interface SourceBatch {
  changes: readonly SourceChange[];
  /** Kinds whose first complete list is in this batch or before it. */
  synced: readonly ResourceKind[];
  skipped: readonly SkippedObject[];
}

export interface StateSource {
  readonly name: string;
  /** Starts watching; resolves once every kind it serves has been synced (its first complete
   * list delivered), so nothing acts on a half-known cluster. */
  start(onBatch: (b: SourceBatch) => void): Promise<void>;
  stop(): void;
}

const MAX_ERROR_CHARS = 300;

/** Error text fit for a log line: one line, bounded. */
export function boundedError(text: string): string {
  const one = text.replace(/\s+/g, ' ');
  return one.length > MAX_ERROR_CHARS ? `${one.slice(0, MAX_ERROR_CHARS)}...` : one;
}

/** Keeps a snapshot up to date from a source, for consumers that only read it (the identity
 * service's node binding). Resolves when the source has synced. */
export async function followSource(source: StateSource, onSnapshot: (s: Snapshot) => void,
  onSkipped: (s: SkippedObject) => void = () => undefined): Promise<() => Snapshot> {
  let snapshot = EMPTY_SNAPSHOT;
  await source.start((b) => {
    for (const s of b.skipped) onSkipped(s);
    if (b.changes.length === 0 && b.synced.length === 0) return;
    snapshot = applyChanges(snapshot, b.changes, snapshot.version + 1);
    onSnapshot(snapshot);
  });
  return () => snapshot;
}
