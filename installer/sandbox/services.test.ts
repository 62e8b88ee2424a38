import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { Pod, Service } from '../../daemon/state/resources';
import { allocateClusterIP, expandVars, renderServiceRules, serviceEndpoints, serviceEnvVars } from './services';

const pod = (name: string, labels: Record<string, string>, ip: string, phase: 'Running' | 'Pending' | 'Failed' = 'Running', ns = 'shop'): Pod => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels },
  spec: { containers: [{ name: 'app', command: ['x'], ports: [{ name: 'http', containerPort: 8080 }] }] },
  status: { phase, podIP: ip },
});
const svc = (name: string, selector: Record<string, string>, clusterIP: string, ports: Service['spec']['ports'], ns = 'shop'): Service => ({
  apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec: { selector, clusterIP, ports },
});

const pods = [
  pod('api-v1', { app: 'api' }, '10.244.1.2'),
  pod('api-v2', { app: 'api' }, '10.244.2.2'),
  pod('api-v3', { app: 'api' }, '10.244.2.3', 'Pending'),
  pod('api-old', { app: 'api' }, '10.244.2.4', 'Failed'),
  pod('api-elsewhere', { app: 'api' }, '10.244.1.9', 'Running', 'other'),
];

test('serviceEndpoints: Running pods of the namespace matching the selector, named ports resolved', () => {
  const [http, raw] = serviceEndpoints(svc('api', { app: 'api' }, '10.96.0.10', [{ name: 'http', port: 80, targetPort: 'http' }, { name: 'raw', port: 81, targetPort: 'nope' }]), pods);
  assert.deepEqual(http!.endpoints, [{ pod: 'shop/api-v1', ip: '10.244.1.2', port: 8080 }, { pod: 'shop/api-v2', ip: '10.244.2.2', port: 8080 }]);
  assert.deepEqual(raw!.endpoints, [], 'a named port no pod declares has no endpoints');
});

test('serviceEndpoints: no selector, no endpoints', () => {
  const [p] = serviceEndpoints({ ...svc('x', {}, '10.96.0.11', [{ port: 80 }]), spec: { clusterIP: '10.96.0.11', ports: [{ port: 80 }] } }, pods);
  assert.deepEqual(p!.endpoints, []);
});

test('renderServiceRules: kube-proxy style vmap, random pick over endpoints, reject when none', () => {
  const text = renderServiceRules([
    svc('api', { app: 'api' }, '10.96.0.10', [{ name: 'http', port: 80, targetPort: 'http' }]),
    svc('db', { app: 'db' }, '10.96.0.11', [{ port: 5432, protocol: 'TCP' }]),
  ], pods);
  assert.match(text, /^table ip nodemesh-sandbox\ndelete table ip nodemesh-sandbox\ntable ip nodemesh-sandbox \{/);
  assert.match(text, /10\.96\.0\.10 \. tcp \. 80 : goto svc-shop\/api\/tcp\/80/);
  assert.match(text, /numgen random mod 2 vmap \{ 0 : goto ep-10\.244\.1\.2-tcp-8080, 1 : goto ep-10\.244\.2\.2-tcp-8080 \}/);
  assert.match(text, /chain ep-10\.244\.1\.2-tcp-8080 \{\n\t\tcomment "shop\/api-v1"\n\t\tmeta l4proto tcp dnat to 10\.244\.1\.2:8080/);
  assert.match(text, /set no-endpoint-services \{\n\t\ttype ipv4_addr \. inet_proto \. inet_service\n\t\telements = \{ 10\.96\.0\.11 \. tcp \. 5432 \}/);
  assert.match(text, /type nat hook prerouting priority dstnat/);
  assert.match(text, /type nat hook output priority -100/);
});

test('renderServiceRules: nothing to serve still yields a valid, empty table', () => {
  const text = renderServiceRules([], []);
  assert.doesNotMatch(text, /elements/);
  assert.match(text, /map service-ips/);
});

test('renderServiceRules: one endpoint is a direct goto', () => {
  const text = renderServiceRules([svc('one', { app: 'api' }, '10.96.0.12', [{ port: 80, targetPort: 8080 }])], [pods[0]!]);
  assert.match(text, /chain svc-shop\/one\/tcp\/80 \{\n\t\tcomment "shop\/one port 80"\n\t\tgoto ep-10\.244\.1\.2-tcp-8080\n\t\}/);
});

test('serviceEnvVars: Kubernetes names and values', () => {
  const env = serviceEnvVars([
    svc('api-gw', { app: 'x' }, '10.96.0.10', [{ name: 'http', port: 80 }, { name: 'grpc-web', port: 9090, protocol: 'TCP' }]),
    svc('dns', { app: 'y' }, '10.96.0.53', [{ name: 'dns', port: 53, protocol: 'UDP' }]),
  ]);
  assert.equal(env.API_GW_SERVICE_HOST, '10.96.0.10');
  assert.equal(env.API_GW_SERVICE_PORT, '80');
  assert.equal(env.API_GW_SERVICE_PORT_HTTP, '80');
  assert.equal(env.API_GW_SERVICE_PORT_GRPC_WEB, '9090');
  assert.equal(env.API_GW_PORT, 'tcp://10.96.0.10:80');
  assert.equal(env.API_GW_PORT_9090_TCP, 'tcp://10.96.0.10:9090');
  assert.equal(env.API_GW_PORT_9090_TCP_PROTO, 'tcp');
  assert.equal(env.API_GW_PORT_9090_TCP_PORT, '9090');
  assert.equal(env.API_GW_PORT_9090_TCP_ADDR, '10.96.0.10');
  assert.equal(env.DNS_PORT, 'udp://10.96.0.53:53');
  assert.equal(env.DNS_PORT_53_UDP_PROTO, 'udp');
});

test('expandVars: Kubernetes $(VAR) rules', () => {
  const vars: Record<string, string> = { HOST: '10.96.0.10', PORT: '80', EMPTY: '' };
  const cases: [string, string][] = [
    ['http://$(HOST):$(PORT)/', 'http://10.96.0.10:80/'],
    ['$(MISSING) stays', '$(MISSING) stays'],
    ['$$(HOST) is escaped', '$(HOST) is escaped'],
    ['$$ alone', '$ alone'],
    ['$HOST is not a reference', '$HOST is not a reference'],
    ['unterminated $(HOST', 'unterminated $(HOST'],
    ['empty=$(EMPTY).', 'empty=.'],
    ['$()', '$()'],
    ['trailing $', 'trailing $'],
  ];
  for (const [input, want] of cases) assert.equal(expandVars(input, (n) => vars[n]), want, input);
});

test('allocateClusterIP: lowest free from .10, skipping used', () => {
  assert.equal(allocateClusterIP('10.96.0.0/16', new Set()), '10.96.0.10');
  assert.equal(allocateClusterIP('10.96.0.0/16', new Set(['10.96.0.10', '10.96.0.11'])), '10.96.0.12');
  assert.throws(() => allocateClusterIP('10.96.0.0/28', new Set(['10.96.0.10', '10.96.0.11', '10.96.0.12', '10.96.0.13', '10.96.0.14'])),
    (e: unknown) => (e as { code?: string }).code === 'NODEMESH_E_SANDBOX_EXHAUSTED');
});
