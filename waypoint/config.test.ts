import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadWaypointConfig } from './config';

const base = {
  NODEMESH_WAYPOINT_NAME: 'waypoint', NODEMESH_WAYPOINT_NAMESPACE: 'shop', NODEMESH_POD_IP: '10.244.1.9',
  NODEMESH_SANDBOX_OBJECTS: 'objects', NODEMESH_IDENTITY_ADDRESS: '172.30.0.1:15012', NODEMESH_NODE_CREDENTIAL_FILE: 'cred', NODEMESH_CA_ROOT_FILE: 'ca.crt',
};

test('waypoint config: defaults, and errors naming the variable', () => {
  const c = loadWaypointConfig(base);
  assert.equal(c.serviceAccount, 'waypoint');
  assert.equal(c.listenPort, 15008);
  assert.equal(c.trustDomain, 'cluster.local');
  assert.equal(c.netnsPath, undefined);
  assert.deepEqual(c.source, { kind: 'sandbox', objectsDir: 'objects' });
  // On Kubernetes: the pod's ServiceAccount (in-cluster), or a kubeconfig file; no object directory.
  const { NODEMESH_SANDBOX_OBJECTS: _o, ...kube } = base;
  assert.deepEqual(loadWaypointConfig({ ...kube, NODEMESH_SOURCE: 'kube' }).source, { kind: 'kube', connection: { kind: 'in-cluster' } });
  assert.deepEqual(loadWaypointConfig({ ...kube, NODEMESH_SOURCE: 'kube', NODEMESH_KUBECONFIG: '/etc/kc' }).source, { kind: 'kube', connection: { kind: 'kubeconfig', path: '/etc/kc' } });
  assert.equal(loadWaypointConfig({ ...kube, NODEMESH_SOURCE: 'kube', NODEMESH_WAYPOINT_READINESS_PORT: '15021' }).readinessPort, 15021);
  const table: [Record<string, string>, RegExp][] = [
    [{ NODEMESH_WAYPOINT_NAME: '' }, /NODEMESH_WAYPOINT_NAME/],
    [{ NODEMESH_WAYPOINT_NAME: 'Bad_Name' }, /NODEMESH_WAYPOINT_NAME.*DNS label/],
    [{ NODEMESH_POD_IP: '' }, /NODEMESH_POD_IP/],
    [{ NODEMESH_WAYPOINT_HBONE_PORT: '99999' }, /NODEMESH_WAYPOINT_HBONE_PORT/],
    [{ NODEMESH_SOURCE: 'etcd' }, /NODEMESH_SOURCE/],
    [{ NODEMESH_SOURCE: 'kube', NODEMESH_KUBECONFIG: 'relative/kubeconfig' }, /NODEMESH_KUBECONFIG.*absolute/],
    [{ NODEMESH_WAYPOINT_READINESS_PORT: '15008' }, /NODEMESH_WAYPOINT_READINESS_PORT/],
    [{ NODEMESH_NODE_CREDENTIAL_FILE: '' }, /NODEMESH_NODE_CREDENTIAL_FILE/],
  ];
  for (const [over, re] of table) assert.throws(() => loadWaypointConfig({ ...base, ...over }), (e: Error & { code?: string }) => e.code === 'NODEMESH_E_CONFIG' && re.test(e.message), JSON.stringify(over));
});
