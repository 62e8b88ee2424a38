// How far a DaemonSet rollout is, from the DaemonSet's status and its pods, the way
// `kubectl rollout status` decides it, plus which nodes lag and why. Pure.

export interface DaemonSetLike {
  metadata: { generation?: number };
  status?: {
    observedGeneration?: number; desiredNumberScheduled?: number; currentNumberScheduled?: number;
    updatedNumberScheduled?: number; numberReady?: number; numberAvailable?: number; numberUnavailable?: number;
  };
}

export interface PodLike {
  metadata: { name: string; labels?: Record<string, string>; deletionTimestamp?: string };
  spec?: { nodeName?: string };
  status?: {
    phase?: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    containerStatuses?: { name: string; ready?: boolean; restartCount?: number; state?: { waiting?: { reason?: string; message?: string }; terminated?: { reason?: string; exitCode?: number } } }[];
  };
}

export interface EventLike { involvedObject?: { name?: string }; reason?: string; message?: string; type?: string; lastTimestamp?: string; eventTime?: string }

export interface Lagging { node: string; pod?: string; reason: string }

export interface RolloutProgress {
  desired: number;
  ready: number;
  updated: number;
  available: number;
  /** The controller has not yet seen the latest spec. */
  observed: boolean;
  done: boolean;
  lagging: Lagging[];
}

/** Why one pod is not (yet) a ready, updated daemon; undefined if it is. */
export function podLagReason(pod: PodLike, generation: number | undefined, events: EventLike[] = []): string | undefined {
  if (pod.metadata.deletionTimestamp) return 'terminating (being replaced)';
  const podGen = pod.metadata.labels?.['pod-template-generation'];
  const old = generation !== undefined && podGen !== undefined && Number(podGen) !== generation;
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready');
  if (!old && ready?.status === 'True') return undefined;
  for (const cs of pod.status?.containerStatuses ?? []) {
    const w = cs.state?.waiting;
    if (w?.reason) return `${cs.name}: ${w.reason}${w.message ? `: ${w.message}` : ''}${cs.restartCount ? ` (${cs.restartCount} restarts)` : ''}`;
    const t = cs.state?.terminated;
    if (t) return `${cs.name}: terminated (${t.reason ?? 'exit'} ${t.exitCode ?? ''})`.trimEnd();
  }
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False') return `not scheduled: ${scheduled.reason ?? ''} ${scheduled.message ?? ''}`.trim();
  const warning = [...events].reverse().find((e) => e.type === 'Warning' && e.involvedObject?.name === pod.metadata.name);
  if (old) return `runs the previous version (pod-template-generation ${podGen}, want ${generation})`;
  if (warning) return `${warning.reason ?? 'Warning'}: ${warning.message ?? ''}`.trim();
  if (ready) return `not ready${ready.reason ? `: ${ready.reason}` : ''}${ready.message ? ` (${ready.message})` : ''} (readiness on :15021/healthz/ready)`;
  return `${pod.status?.phase ?? 'Pending'}: not ready yet`;
}

export function rolloutProgress(ds: DaemonSetLike, pods: PodLike[], events: EventLike[] = []): RolloutProgress {
  const s = ds.status ?? {};
  const generation = ds.metadata.generation;
  const observed = generation === undefined || (s.observedGeneration ?? 0) >= generation;
  const desired = s.desiredNumberScheduled ?? 0;
  const updated = s.updatedNumberScheduled ?? 0;
  const available = s.numberAvailable ?? 0;
  const ready = s.numberReady ?? 0;
  const lagging: Lagging[] = [];
  for (const pod of pods) {
    const reason = podLagReason(pod, generation, events);
    if (reason) lagging.push({ node: pod.spec?.nodeName ?? '(unscheduled)', pod: pod.metadata.name, reason });
  }
  lagging.sort((a, b) => a.node.localeCompare(b.node));
  const done = observed && updated >= desired && available >= desired && ready >= desired;
  return { desired, ready, updated, available, observed, done, lagging };
}

export function formatProgress(p: RolloutProgress, name: string): string {
  const head = `${name}: ${p.ready}/${p.desired} nodes ready, ${p.updated}/${p.desired} updated${p.observed ? '' : ' (waiting for the controller to see the new spec)'}`;
  if (p.done) return `${head}: rollout complete`;
  const lag = p.lagging.slice(0, 5).map((l) => `\n  ${l.node}${l.pod ? ` (${l.pod})` : ''}: ${l.reason}`).join('');
  const more = p.lagging.length > 5 ? `\n  ... and ${p.lagging.length - 5} more` : '';
  return `${head}${lag}${more}`;
}
