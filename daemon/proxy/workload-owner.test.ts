import { test } from 'node:test';
import assert from 'node:assert/strict';
import { workloadOwner } from './workload-owner';

test('workload owner: the controller a pod belongs to, else the pod', () => {
  const cases: [string, Record<string, string>, string, string?][] = [
    ['reviews-v1-7d8f9c6b5-x2k9p', { 'pod-template-hash': '7d8f9c6b5' }, 'reviews-v1'],
    ['web-5f6d-abcde', { 'pod-template-hash': 'zzzz' }, 'web-5f6d'], // a ReplicaSet of its own
    ['db-2', { 'statefulset.kubernetes.io/pod-name': 'db-2', 'controller-revision-hash': 'db-6c' }, 'db'],
    ['agent-q8w2z', { 'controller-revision-hash': '5b7', 'pod-template-generation': '3' }, 'agent'],
    ['backup-28391-7h2kq', { 'job-name': 'backup-28391' }, 'backup-28391'],
    ['client', {}, 'client'],
    ['client', { 'pod-template-hash': 'abc' }, 'client'], // the name does not fit: keep it
    ['whatever-abcde', { 'pod-template-hash': 'h' }, 'shop-api', 'shop-api'], // an owner the snapshot knows wins
  ];
  for (const [name, labels, want, owner] of cases) assert.equal(workloadOwner({ name, labels, owner }), want, name);
});
