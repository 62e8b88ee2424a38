import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { MAX_REASONS, readiness } from './readiness';

const cert = (serviceAccount: string, state: string, failures = 0, code?: string) =>
  ({ namespace: 'shop', serviceAccount, state, failures, lastError: code ? { code } : undefined });

describe('readiness', () => {
  const cases = [
    { name: 'starting', in: { phase: 'starting' as const, failedPods: [], certificates: [] }, ready: false, reasons: ['starting'] },
    { name: 'draining', in: { phase: 'draining' as const, failedPods: [], certificates: [] }, ready: false, reasons: ['draining: stopping, a newer daemon takes new connections'] },
    { name: 'all good', in: { phase: 'running' as const, failedPods: [], certificates: [cert('web', 'ready')] }, ready: true, reasons: [] },
    { name: 'no identity service', in: { phase: 'running' as const, failedPods: [], certificates: undefined }, ready: true, reasons: [] },
    {
      name: 'a pod not enrolled', in: { phase: 'running' as const, failedPods: [{ namespace: 'shop', name: 'web-1', code: 'NODEMESH_E_POD_NETNS' }], certificates: [] },
      ready: false, reasons: ['pod shop/web-1 is not enrolled (NODEMESH_E_POD_NETNS)'],
    },
    {
      name: 'certificates pending and failing', in: { phase: 'running' as const, failedPods: [], certificates: [cert('web', 'pending'), cert('db', 'expired', 3, 'NODEMESH_E_IDENTITY_UNAVAILABLE')] },
      ready: false, reasons: ['certificate for shop/web is pending', 'certificate for shop/db is expired, 3 failed attempt(s) (NODEMESH_E_IDENTITY_UNAVAILABLE)'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(readiness(c.in), { ready: c.ready, reasons: c.reasons }));
  }
  it('bounds the reasons', () => {
    const failedPods = Array.from({ length: 50 }, (_, i) => ({ namespace: 'shop', name: `p${i}` }));
    const r = readiness({ phase: 'running', failedPods, certificates: [] });
    assert.equal(r.ready, false);
    assert.equal(r.reasons.length, MAX_REASONS + 1);
    assert.equal(r.reasons[MAX_REASONS], 'and 40 more');
  });
});
