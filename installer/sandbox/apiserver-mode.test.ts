import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { installObjectsForSandbox, nodeDaemonPods, relayedKubeconfig, serverEndpoint, tlsServerName } from './apiserver-mode';
import type { ClusterState } from './state';

test('serverEndpoint: host and port of a server URL', () => {
  const cases: [string, { host: string; port: number }][] = [
    ['https://127.0.0.1:6443', { host: '127.0.0.1', port: 6443 }],
    ['https://api.example.com', { host: 'api.example.com', port: 443 }],
    ['https://[::1]:8443', { host: '::1', port: 8443 }],
  ];
  for (const [url, want] of cases) assert.deepEqual(serverEndpoint(url), want, url);
});

test('tlsServerName: the server\'s own name through the relay; loopback IPs are localhost; an explicit one wins', () => {
  const cases: [string, string | undefined, string][] = [
    ['https://127.0.0.1:6443', undefined, 'localhost'],
    ['https://[::1]:6443', undefined, 'localhost'],
    ['https://api.example.com:6443', undefined, 'api.example.com'],
    ['https://10.0.0.5:6443', undefined, '10.0.0.5'],
    ['https://127.0.0.1:6443', 'kubernetes.default.svc', 'kubernetes.default.svc'],
  ];
  for (const [url, existing, want] of cases) assert.equal(tlsServerName(url, existing), want, `${url} ${existing}`);
});

test('relayedKubeconfig: the admin\'s CA, the relay\'s address, the server\'s name, a token user', () => {
  const admin = new k8s.KubeConfig();
  admin.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:41234', caData: 'Q0E=' }],
    users: [{ name: 'admin', token: 'admin-token' }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'admin' }],
    currentContext: 'ctx',
  });
  const kc = new k8s.KubeConfig();
  kc.loadFromString(relayedKubeconfig(admin, '172.30.0.1:6443', 'nodemesh-node', 'node-token'));
  assert.equal(kc.getCurrentCluster()?.server, 'https://172.30.0.1:6443');
  assert.equal(kc.getCurrentCluster()?.caData, 'Q0E=');
  assert.equal(kc.getCurrentCluster()?.tlsServerName, 'localhost');
  assert.equal(kc.getCurrentUser()?.token, 'node-token');
});

test('nodeDaemonPods: one Running pod of nodemesh-node per node, what the DaemonSet would make', () => {
  const c = { nodes: [{ name: 'node-1', ip: '172.30.0.11' }, { name: 'node-2', ip: '172.30.0.12' }] } as unknown as ClusterState;
  assert.deepEqual(nodeDaemonPods(c).map((p) => [p.metadata.namespace, p.metadata.name, p.spec.nodeName, p.spec.serviceAccountName, p.status?.phase, p.status?.podIP]), [
    ['nodemesh-system', 'nodemesh-node-node-1', 'node-1', 'nodemesh-node', 'Running', '172.30.0.11'],
    ['nodemesh-system', 'nodemesh-node-node-2', 'node-2', 'nodemesh-node', 'Running', '172.30.0.12'],
  ]);
});

test('installObjectsForSandbox: the install objects without the workloads the sandbox runs itself', () => {
  const kinds = new Set(installObjectsForSandbox().map((o) => o.kind));
  for (const k of ['DaemonSet', 'Deployment', 'PodDisruptionBudget', 'Service']) assert.ok(!kinds.has(k), k);
  for (const k of ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition']) assert.ok(kinds.has(k), k);
});
