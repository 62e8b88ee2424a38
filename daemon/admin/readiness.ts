// What GET /healthz/ready on 15021 answers (pure). Ready means this daemon serves every pod it
// should: it has started and is not draining, no pod that should be enrolled failed to be,
// and every enrolled pod's certificate has been issued and is not expired. Reasons name mesh
// objects only (pod and service account names from the snapshot, error codes), bounded.

export interface ReadinessInput {
  phase: 'starting' | 'running' | 'draining';
  /** Pods that should be enrolled and are not. */
  failedPods: readonly { namespace: string; name: string; code?: string }[];
  /** Certificates of enrolled pods' service accounts; undefined when no identity service is
   * configured (meshed destinations are then refused, which is not a readiness failure). */
  certificates: readonly { namespace: string; serviceAccount: string; state: string; failures: number; lastError?: { code?: string } }[] | undefined;
}

export interface Readiness { ready: boolean; reasons: string[] }

export const MAX_REASONS = 10;

export function readiness(i: ReadinessInput): Readiness {
  if (i.phase === 'starting') return { ready: false, reasons: ['starting'] };
  if (i.phase === 'draining') return { ready: false, reasons: ['draining: stopping, a newer daemon takes new connections'] };
  const reasons: string[] = [];
  for (const p of i.failedPods) reasons.push(`pod ${p.namespace}/${p.name} is not enrolled${p.code ? ` (${p.code})` : ''}`);
  for (const c of i.certificates ?? []) {
    if (c.state === 'ready') continue;
    const why = c.failures > 0 ? `, ${c.failures} failed attempt(s)${c.lastError?.code ? ` (${c.lastError.code})` : ''}` : '';
    reasons.push(`certificate for ${c.namespace}/${c.serviceAccount} is ${c.state}${why}`);
  }
  if (reasons.length > MAX_REASONS) {
    const more = reasons.length - MAX_REASONS;
    reasons.splice(MAX_REASONS, more, `and ${more} more`);
  }
  return { ready: reasons.length === 0, reasons };
}
