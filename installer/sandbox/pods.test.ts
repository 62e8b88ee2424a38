import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { Pod, Service } from '../../daemon/state/resources';
import { containerArgv, containerEnv } from './pods';

const pod: Pod = {
  apiVersion: 'v1', kind: 'Pod',
  metadata: { name: 'web', namespace: 'shop', uid: 'u-1' },
  spec: {
    nodeName: 'node-1', serviceAccountName: 'web',
    containers: [{
      name: 'web',
      command: ['nodemesh-sample-app', 'http'],
      args: ['--upstream', 'http://$(API_SERVICE_HOST):$(API_SERVICE_PORT)/', '--me', '$(ME)', '--literal', '$$(API_SERVICE_HOST)'],
      env: [
        { name: 'ME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } } as never,
        { name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } } as never,
        { name: 'UPSTREAM', value: '$(API_SERVICE_HOST):$(API_SERVICE_PORT)' },
        { name: 'LATER', value: '$(NOT_YET)' },
        { name: 'NOT_YET', value: 'x' },
      ],
    }],
  },
  status: { phase: 'Pending', podIP: '10.244.1.4' },
};
const api: Service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'api', namespace: 'shop' }, spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }] } };

const env = containerEnv({ pod, container: pod.spec.containers[0]!, services: [api], repoRoot: '/repo', nodeBinDir: '/opt/node/bin', hostIP: '172.30.0.11' });

test('containerEnv: sandbox identity, PATH with the repo bin and node, service variables', () => {
  assert.equal(env.NODEMESH_POD_NAME, 'web');
  assert.equal(env.NODEMESH_POD_NAMESPACE, 'shop');
  assert.equal(env.NODEMESH_POD_IP, '10.244.1.4');
  assert.equal(env.NODEMESH_NODE_NAME, 'node-1');
  assert.equal(env.HOSTNAME, 'web');
  assert.ok(env.PATH!.startsWith('/repo/installer/bin:/opt/node/bin:'), env.PATH);
  assert.equal(env.API_SERVICE_HOST, '10.96.0.10');
});

test('containerEnv: fieldRef, $(VAR) over earlier variables only (Kubernetes order)', () => {
  assert.equal(env.ME, 'web');
  assert.equal(env.IP, '10.244.1.4');
  assert.equal(env.UPSTREAM, '10.96.0.10:80');
  assert.equal(env.LATER, '$(NOT_YET)');
});

test('containerArgv: command + args with $(VAR) expanded and $$ escaped', () => {
  assert.deepEqual(containerArgv(pod.spec.containers[0]!, env),
    ['nodemesh-sample-app', 'http', '--upstream', 'http://10.96.0.10:80/', '--me', 'web', '--literal', '$(API_SERVICE_HOST)']);
});
