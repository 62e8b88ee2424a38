// Leader election over a coordination.k8s.io/v1 Lease, pure: what a candidate does with the
// Lease it just read. client-go's rules: the holder renews; anyone takes a Lease whose holder
// has not renewed within leaseDurationSeconds (or that has no holder); otherwise wait. The
// write that follows carries the resourceVersion read, so of two candidates only one wins.
import type { KubeObject } from './kube-object';

export type LeaseAction =
  | { kind: 'create' }
  | { kind: 'renew' }
  | { kind: 'acquire'; previousHolder?: string }
  | { kind: 'follow'; holder: string };

/** Lease times are MicroTime: RFC 3339 with six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

export function leaseAction(lease: KubeObject | undefined, me: string, nowMs: number): LeaseAction {
  if (!lease) return { kind: 'create' };
  const holder = typeof lease.spec?.holderIdentity === 'string' ? lease.spec.holderIdentity : '';
  if (holder === me) return { kind: 'renew' };
  if (!holder) return { kind: 'acquire' };
  const renewed = Date.parse(lease.spec?.renewTime ?? lease.spec?.acquireTime ?? '');
  const duration = Number(lease.spec?.leaseDurationSeconds);
  // An unreadable time or duration is treated as expired: a garbled Lease must not stop the
  // controller for good.
  if (!Number.isFinite(renewed) || !Number.isFinite(duration) || duration <= 0 || nowMs > renewed + duration * 1000) {
    return { kind: 'acquire', previousHolder: holder };
  }
  return { kind: 'follow', holder };
}

/** The Lease spec to write for an action other than follow. */
export function leaseSpec(action: LeaseAction, lease: KubeObject | undefined, me: string, nowMs: number, durationSeconds: number): Record<string, unknown> {
  const now = microTime(nowMs);
  const transitions = Number(lease?.spec?.leaseTransitions) || 0;
  if (action.kind === 'renew') return { ...lease?.spec, holderIdentity: me, leaseDurationSeconds: durationSeconds, renewTime: now };
  return {
    holderIdentity: me, leaseDurationSeconds: durationSeconds, acquireTime: now, renewTime: now,
    leaseTransitions: action.kind === 'acquire' ? transitions + 1 : 0,
  };
}
