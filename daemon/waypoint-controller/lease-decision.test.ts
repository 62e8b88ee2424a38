import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { leaseAction, leaseSpec, microTime } from './lease-decision';
import type { KubeObject } from './kube-object';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const lease = (spec: Record<string, unknown>): KubeObject => ({ metadata: { name: 'l', namespace: 'ns', resourceVersion: '7' }, spec });

test('lease actions', () => {
  const cases: [string, KubeObject | undefined, number, ReturnType<typeof leaseAction>][] = [
    ['no Lease yet', undefined, T0, { kind: 'create' }],
    ['mine: renew', lease({ holderIdentity: 'me', renewTime: microTime(T0), leaseDurationSeconds: 15 }), T0 + 60_000, { kind: 'renew' }],
    ['released (empty holder): take it', lease({ holderIdentity: '', renewTime: microTime(T0), leaseDurationSeconds: 15 }), T0, { kind: 'acquire' }],
    ['held and fresh: follow', lease({ holderIdentity: 'other', renewTime: microTime(T0), leaseDurationSeconds: 15 }), T0 + 14_999, { kind: 'follow', holder: 'other' }],
    ['held but expired: take it', lease({ holderIdentity: 'other', renewTime: microTime(T0), leaseDurationSeconds: 15 }), T0 + 15_001, { kind: 'acquire', previousHolder: 'other' }],
    ['acquireTime when never renewed', lease({ holderIdentity: 'other', acquireTime: microTime(T0), leaseDurationSeconds: 15 }), T0 + 1000, { kind: 'follow', holder: 'other' }],
    ['garbled time: expired', lease({ holderIdentity: 'other', renewTime: 'yesterday', leaseDurationSeconds: 15 }), T0, { kind: 'acquire', previousHolder: 'other' }],
    ['garbled duration: expired', lease({ holderIdentity: 'other', renewTime: microTime(T0), leaseDurationSeconds: -1 }), T0, { kind: 'acquire', previousHolder: 'other' }],
  ];
  for (const [name, l, now, want] of cases) assert.deepEqual(leaseAction(l, 'me', now), want, name);
});

test('lease specs: MicroTime, transitions counted on takeover only', () => {
  assert.equal(microTime(T0 + 123), '2026-01-01T00:00:00.123000Z');
  const held = lease({ holderIdentity: 'other', renewTime: microTime(T0), acquireTime: microTime(T0), leaseDurationSeconds: 15, leaseTransitions: 3 });
  assert.deepEqual(leaseSpec({ kind: 'acquire', previousHolder: 'other' }, held, 'me', T0 + 20_000, 15),
    { holderIdentity: 'me', leaseDurationSeconds: 15, acquireTime: microTime(T0 + 20_000), renewTime: microTime(T0 + 20_000), leaseTransitions: 4 });
  const mine = lease({ holderIdentity: 'me', renewTime: microTime(T0), acquireTime: microTime(T0), leaseDurationSeconds: 15, leaseTransitions: 4 });
  assert.deepEqual(leaseSpec({ kind: 'renew' }, mine, 'me', T0 + 5000, 15),
    { holderIdentity: 'me', leaseDurationSeconds: 15, acquireTime: microTime(T0), renewTime: microTime(T0 + 5000), leaseTransitions: 4 });
  assert.equal(leaseSpec({ kind: 'create' }, undefined, 'me', T0, 15).leaseTransitions, 0);
});
