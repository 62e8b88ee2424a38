import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readObject, writeObject } from '../daemon/sources/object-directory';
import type { PolicyEntry } from './backend-traffic-policy';
import { writePolicyStatuses } from './policy-status-writer';

const entry = (name: string, ancestors: [string, string, 'True' | 'False', PolicyEntry['ancestors'][0]['condition']['reason']][]): PolicyEntry => ({
  policy: { namespace: 'shop', name, generation: 1, creationTimestamp: '', targets: [], problems: [] },
  ancestors: ancestors.map(([target, svc, status, reason]) => ({
    ancestorRef: { group: '', kind: 'Service', name: target, namespace: 'shop' }, services: [{ namespace: 'shop', name: svc }],
    condition: { type: 'Accepted', status, reason, message: reason, observedGeneration: 1 },
  })),
});

test('policy status: this waypoint\'s targets and its namespace\'s refusals, written only on change', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodemesh-policy-status-'));
  try {
    for (const name of ['p', 'q']) writeObject(dir, { apiVersion: 'policy.nodemesh.io/v1alpha1', kind: 'BackendTrafficPolicy', metadata: { name, namespace: 'shop' }, spec: {} });
    const serves = (s: { name: string }) => s.name === 'api';
    const entries = [entry('p', [['api', 'api', 'True', 'Accepted'], ['gone', 'gone', 'False', 'TargetNotFound'], ['other', 'other', 'True', 'Accepted']]), entry('q', [['other', 'other', 'True', 'Accepted']])];
    assert.deepEqual(writePolicyStatuses(dir, entries, { namespace: 'shop' }, serves, 't1'), ['BackendTrafficPolicy/shop/p']);
    const p = readObject(dir, 'BackendTrafficPolicy', 'shop', 'p') as unknown as { status: { ancestors: { ancestorRef: { name: string }; controllerName: string; conditions: { reason: string; lastTransitionTime: string }[] }[] } };
    assert.deepEqual(p.status.ancestors.map((a) => `${a.ancestorRef.name} ${a.conditions[0].reason} ${a.conditions[0].lastTransitionTime}`), ['api Accepted t1', 'gone TargetNotFound t1']);
    assert.equal(p.status.ancestors[0].controllerName, 'nodemesh.io/waypoint-controller');
    // nothing changed: nothing written, so the write does not feed another rebuild
    assert.deepEqual(writePolicyStatuses(dir, entries, { namespace: 'shop' }, serves, 't2'), []);
    // one condition changes: only it gets a new transition time
    const changed = [entry('p', [['api', 'api', 'False', 'Conflicted'], ['gone', 'gone', 'False', 'TargetNotFound']])];
    assert.deepEqual(writePolicyStatuses(dir, changed, { namespace: 'shop' }, serves, 't3'), ['BackendTrafficPolicy/shop/p']);
    const p2 = readObject(dir, 'BackendTrafficPolicy', 'shop', 'p') as unknown as typeof p;
    assert.deepEqual(p2.status.ancestors.map((a) => `${a.ancestorRef.name} ${a.conditions[0].reason} ${a.conditions[0].lastTransitionTime}`), ['api Conflicted t3', 'gone TargetNotFound t1']);
    // a waypoint of another namespace writes nothing here
    assert.deepEqual(writePolicyStatuses(dir, changed, { namespace: 'other' }, () => false, 't4'), []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
