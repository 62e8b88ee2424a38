import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { formatMeshStatus, type NodeMeshStatus } from './mesh-status';

test('nodemesh status shows, per policy, where it is enforced and on which workloads (all nodes merged)', () => {
  const enforcement = (workloads: string[]) => [
    { kind: 'AuthorizationPolicy' as const, namespace: 'shop', name: 'deny-svc', where: 'node-l4-service' as const, detail: 'at L4 by the node daemons, on the pods Service/api selects, on its target ports', workloads },
    { kind: 'AuthorizationPolicy' as const, namespace: 'shop', name: 'at-waypoint', where: 'waypoint' as const, detail: 'targetRefs Gateway/waypoint needs a waypoint: enforced fail-closed (the node daemons deny every connection it governs)', workloads: [] },
  ];
  const node = (name: string, workloads: string[]): NodeMeshStatus => ({
    node: name, ready: true,
    workloads: { pods: [], failed: [], snapshotVersion: 3 } as unknown as NodeMeshStatus['workloads'],
    policies: { authorizationPolicies: [], peerAuthentications: [], policyEnforcement: enforcement(workloads) },
  });
  const text = formatMeshStatus([node('node-1', ['shop/api-1']), node('node-2', ['shop/api-2'])]);
  assert.match(text, /^POLICY\s+ENFORCED\s+WORKLOADS$/m);
  assert.match(text, /^AuthorizationPolicy shop\/deny-svc\s+at L4 by the node daemons, on the pods Service\/api selects, on its target ports\s+shop\/api-1,shop\/api-2$/m);
  assert.match(text, /^AuthorizationPolicy shop\/at-waypoint\s+targetRefs Gateway\/waypoint needs a waypoint: enforced fail-closed .*\s+-$/m);
});

test('nodemesh status against daemons without policyEnforcement (older) shows no enforcement table', () => {
  const text = formatMeshStatus([{ node: 'node-1', ready: true, workloads: { pods: [], failed: [] } as unknown as NodeMeshStatus['workloads'], policies: { authorizationPolicies: [], peerAuthentications: [] } }]);
  assert.doesNotMatch(text, /ENFORCED/);
});
