import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from './config';
import { NodemeshError } from './errors';

const base = { NODEMESH_NODE_NAME: 'node-1', NODEMESH_SOURCE: 'sandbox', NODEMESH_SANDBOX_OBJECTS: '/tmp/o' };

test('config: defaults and a frozen result', () => {
  const c = loadConfig(base);
  assert.equal(c.bpfPinRoot, '/sys/fs/bpf/nodemesh');
  assert.equal(c.adminPort, 15000);
  assert.deepEqual(c.source, { kind: 'sandbox', objectsDir: '/tmp/o' });
  assert.ok(Object.isFrozen(c));
});

test('config: bad values name the variable', () => {
  const cases: [Record<string, string>, string][] = [
    [{ ...base, NODEMESH_NODE_NAME: '' }, 'NODEMESH_NODE_NAME'],
    [{ ...base, NODEMESH_SOURCE: 'etcd' }, 'NODEMESH_SOURCE'],
    [{ ...base, NODEMESH_ADMIN_PORT: '70000' }, 'NODEMESH_ADMIN_PORT'],
    [{ ...base, NODEMESH_EXCLUDE_OUTBOUND_PORTS: '22,x' }, 'NODEMESH_EXCLUDE_OUTBOUND_PORTS'],
    [{ ...base, NODEMESH_SANDBOX_OBJECTS: '' }, 'NODEMESH_SANDBOX_OBJECTS'],
  ];
  for (const [env, field] of cases) {
    assert.throws(() => loadConfig(env), (e: unknown) => NodemeshError.is(e, 'NODEMESH_E_CONFIG') && e.message.includes(field), field);
  }
});

test('config: the Kubernetes source is the default, in-cluster or through a kubeconfig', () => {
  const node = { NODEMESH_NODE_NAME: 'node-1' };
  assert.deepEqual(loadConfig(node).source, { kind: 'kube', hostProc: '/proc', connection: { kind: 'in-cluster' } });
  assert.deepEqual(loadConfig({ ...node, NODEMESH_KUBECONFIG: '/etc/kube/config', NODEMESH_KUBE_CONTEXT: 'prod' }).source,
    { kind: 'kube', hostProc: '/proc', connection: { kind: 'kubeconfig', path: '/etc/kube/config', context: 'prod' } });
  const cases: [Record<string, string>, string][] = [
    [{ ...node, NODEMESH_KUBECONFIG: 'relative/config' }, 'NODEMESH_KUBECONFIG'],
    [{ ...node, NODEMESH_KUBE_CONTEXT: 'prod' }, 'NODEMESH_KUBE_CONTEXT'],
    [{ ...node, NODEMESH_HOST_PROC: 'host/proc' }, 'NODEMESH_HOST_PROC'],
  ];
  for (const [env, field] of cases) {
    assert.throws(() => loadConfig(env), (e: unknown) => NodemeshError.is(e, 'NODEMESH_E_CONFIG') && e.message.includes(field), field);
  }
});
