import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { formatIssue, formatPath, parseCidr, parseIPv4, parseManifest, type ManifestIssue, type ManifestOptions } from './manifest';

const POD = `apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
  labels: { app: web }
spec:
  containers:
  - name: app
    command: ["nodemesh-sample-app", "http"]
    ports: [{ name: http, containerPort: 8080 }]
`;

const SERVICE = `apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: http }]
`;

interface Case {
  name: string;
  text: string;
  opts?: ManifestOptions;
  /** Expected objects (`Kind ns/name`) when valid. */
  objects?: string[];
  /** Expected first issue when invalid. */
  issue?: Partial<ManifestIssue> & { problemIncludes?: string; fixIncludes?: string };
  issues?: number;
}

const cases: Case[] = [
  { name: 'single pod, namespace kept', text: POD, objects: ['Pod shop/web'] },
  { name: 'multi-document with a trailing separator', text: `${POD}---\n${SERVICE}---\n`, objects: ['Pod shop/web', 'Service shop/web'] },
  { name: 'empty file', text: '', objects: [] },
  { name: 'comments only', text: '# nothing here\n---\n# still nothing\n', objects: [] },
  {
    name: 'namespace defaults to default',
    text: 'apiVersion: v1\nkind: Service\nmetadata: { name: api }\nspec: { ports: [{ port: 80 }] }\n',
    objects: ['Service default/api'],
  },
  {
    name: 'kind List expands its items',
    text: `apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: { name: shop }\n- apiVersion: v1\n  kind: Service\n  metadata: { name: db, namespace: shop }\n  spec: { ports: [{ port: 5432 }] }\n`,
    objects: ['Namespace shop', 'Service shop/db'],
  },
  {
    name: 'command as a string names the field path',
    text: POD.replace('command: ["nodemesh-sample-app", "http"]', 'command: nodemesh-sample-app http'),
    issue: { reason: 'invalid', path: 'spec.containers[0].command', document: 1, line: 10, value: 'nodemesh-sample-app http', object: 'Pod shop/web', problemIncludes: 'list of strings' },
  },
  {
    name: 'sandbox needs a command',
    text: POD.replace('    command: ["nodemesh-sample-app", "http"]\n', '    image: nginx\n'),
    opts: { sandbox: true },
    issue: { path: 'spec.containers[0].command', problemIncludes: 'not images' },
  },
  {
    name: 'an image-only pod is a valid Kubernetes pod outside the sandbox',
    text: POD.replace('    command: ["nodemesh-sample-app", "http"]\n', '    image: nginx\n'),
    objects: ['Pod shop/web'],
  },
  {
    name: 'numeric arg must be quoted',
    text: POD.replace('"http"]', '"http", "--port", 8080]'),
    issue: { path: 'spec.containers[0].command[3]', value: 8080, fixIncludes: 'quote it' },
  },
  {
    name: 'bad pod name',
    text: POD.replace('name: web\n  namespace', 'name: Web_1\n  namespace'),
    issue: { path: 'metadata.name', value: 'Web_1', problemIncludes: 'DNS-1123 subdomain', fixIncludes: '"web-1"' },
  },
  {
    name: 'service name must start with a letter',
    text: SERVICE.replace('name: web,', 'name: 1web,'),
    issue: { path: 'metadata.name', value: '1web', problemIncludes: 'DNS-1035' },
  },
  {
    name: 'namespace object with a namespace',
    text: 'apiVersion: v1\nkind: Namespace\nmetadata: { name: shop, namespace: x }\n',
    issue: { path: 'metadata.namespace', problemIncludes: 'cluster-scoped' },
  },
  {
    name: 'label value must be a string',
    text: POD.replace('labels: { app: web }', 'labels: { app: web, version: 2 }'),
    issue: { path: 'metadata.labels.version', value: 2, fixIncludes: 'quote it' },
  },
  {
    name: 'label key with a bad prefix',
    text: POD.replace('labels: { app: web }', 'labels: { "Bad_Prefix/app": web }'),
    issue: { path: 'metadata.labels["Bad_Prefix/app"]', problemIncludes: 'prefix' },
  },
  {
    name: 'label value too long',
    text: POD.replace('labels: { app: web }', `labels: { app: ${'a'.repeat(64)} }`),
    issue: { path: 'metadata.labels.app', problemIncludes: '63' },
  },
  {
    name: 'container port out of range',
    text: POD.replace('containerPort: 8080', 'containerPort: 70000'),
    issue: { path: 'spec.containers[0].ports[0].containerPort', value: 70000, problemIncludes: '1 and 65535' },
  },
  {
    name: 'service port zero',
    text: SERVICE.replace('port: 80,', 'port: 0,'),
    issue: { path: 'spec.ports[0].port', value: 0 },
  },
  {
    name: 'quoted numeric targetPort',
    text: SERVICE.replace('targetPort: http', 'targetPort: "8080"'),
    issue: { path: 'spec.ports[0].targetPort', fixIncludes: 'without quotes' },
  },
  {
    name: 'clusterIP inside the range is honoured',
    text: SERVICE.replace('selector:', 'clusterIP: 10.96.7.7\n  selector:'),
    objects: ['Service shop/web'],
  },
  {
    name: 'clusterIP outside the service range',
    text: SERVICE.replace('selector:', 'clusterIP: 10.0.0.7\n  selector:'),
    issue: { path: 'spec.clusterIP', value: '10.0.0.7', problemIncludes: '10.96.0.0/16' },
  },
  {
    name: 'clusterIP checked against a custom range',
    text: SERVICE.replace('selector:', 'clusterIP: 10.96.7.7\n  selector:'),
    opts: { serviceCIDR: '10.100.0.0/16' },
    issue: { path: 'spec.clusterIP', problemIncludes: '10.100.0.0/16' },
  },
  {
    name: 'clusterIP not an address',
    text: SERVICE.replace('selector:', 'clusterIP: 10.96.300.1\n  selector:'),
    issue: { path: 'spec.clusterIP', problemIncludes: 'IPv4' },
  },
  {
    name: 'headless is not supported yet',
    text: SERVICE.replace('selector:', 'clusterIP: None\n  selector:'),
    issue: { reason: 'unsupported', path: 'spec.clusterIP' },
  },
  {
    name: 'several unnamed service ports',
    text: SERVICE.replace('[{ name: http, port: 80, targetPort: http }]', '[{ port: 80 }, { port: 81 }]'),
    issue: { path: 'spec.ports[0].name' },
    issues: 2,
  },
  {
    name: 'unknown kind is reported, not dropped',
    text: `${POD}---\napiVersion: v1\nkind: ConfigMapp\nmetadata: { name: x }\n`,
    issue: { reason: 'unknown-kind', document: 2, path: 'kind', value: 'ConfigMapp' },
  },
  {
    name: 'a Gateway is checked against the Gateway API schema',
    text: 'apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: { name: w, namespace: shop }\nspec: {}\n',
    issue: { reason: 'invalid', path: 'spec.gatewayClassName', problem: 'Required value' },
  },
  {
    name: 'ordinary manifests: ServiceAccount, ConfigMap, Secret, Deployment, CronJob, HTTPRoute and a v1 GRPCRoute',
    text: [
      'apiVersion: v1\nkind: ServiceAccount\nmetadata: { name: web, namespace: shop }\n',
      'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: settings, namespace: shop }\ndata: { mode: fast }\n',
      'apiVersion: v1\nkind: Secret\nmetadata: { name: creds, namespace: shop }\nstringData: { token: x }\n',
      `apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web, namespace: shop }\nspec:\n  replicas: 3\n  selector: { matchLabels: { app: web } }\n  template:\n    metadata: { labels: { app: web } }\n    spec:\n      serviceAccountName: web\n      containers: [{ name: web, image: nginx, command: ["nodemesh-sample-app", "http"] }]\n`,
      'apiVersion: batch/v1\nkind: CronJob\nmetadata: { name: nightly, namespace: shop }\nspec:\n  schedule: "0 3 * * *"\n  jobTemplate: { spec: { template: { spec: { restartPolicy: Never, containers: [{ name: j, image: busybox }] } } } }\n',
      'apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: { name: r, namespace: shop }\nspec:\n  parentRefs: [{ name: waypoint }]\n  rules: [{ backendRefs: [{ name: web, port: 80 }] }]\n',
      'apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: { name: g, namespace: shop }\nspec:\n  rules: [{ backendRefs: [{ name: web, port: 80 }] }]\n',
    ].join('---\n'),
    opts: { sandbox: true },
    objects: ['ServiceAccount shop/web', 'ConfigMap shop/settings', 'Secret shop/creds', 'Deployment shop/web', 'CronJob shop/nightly', 'HTTPRoute shop/r', 'GRPCRoute shop/g'],
  },
  {
    name: 'a Deployment with replicas as a string: the kubernetes-models schema path',
    text: 'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec:\n  replicas: "3"\n  selector: { matchLabels: { app: web } }\n  template:\n    metadata: { labels: { app: web } }\n    spec: { containers: [{ name: web, command: ["x"] }] }\n',
    issue: { path: 'spec.replicas', line: 5, value: '3' },
  },
  {
    name: 'a misspelt Deployment field is an unknown field, with the likely one (strict field validation)',
    text: 'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec:\n  replica: 3\n  selector: { matchLabels: { app: web } }\n  template:\n    metadata: { labels: { app: web } }\n    spec: { containers: [{ name: web, command: ["x"] }] }\n',
    issue: { path: 'spec.replica', line: 5, problem: 'unknown field "spec.replica"', fixIncludes: 'did you mean replicas?' },
  },
  {
    name: 'a Deployment container without a name',
    text: 'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec:\n  selector: { matchLabels: { app: web } }\n  template:\n    metadata: { labels: { app: web } }\n    spec: { containers: [{ command: ["x"] }] }\n',
    issue: { path: 'spec.template.spec.containers[0].name' },
  },
  {
    name: 'sandbox: a Deployment template needs a command like a Pod',
    text: 'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec:\n  selector: { matchLabels: { app: web } }\n  template:\n    metadata: { labels: { app: web } }\n    spec: { containers: [{ name: web, image: nginx }] }\n',
    opts: { sandbox: true },
    issue: { path: 'spec.template.spec.containers[0].command', problemIncludes: 'needs a command' },
  },
  {
    name: 'a Deployment whose selector does not match its template',
    text: 'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec:\n  selector: { matchLabels: { app: web } }\n  template:\n    metadata: { labels: { app: api } }\n    spec: { containers: [{ name: web, command: ["x"] }] }\n',
    issue: { path: 'spec.selector', problemIncludes: 'does not match template' },
  },
  {
    name: 'an HTTPRoute backend port out of range',
    text: 'apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: { name: r }\nspec:\n  rules: [{ backendRefs: [{ name: web, port: 70000 }] }]\n',
    issue: { path: 'spec.rules[0].backendRefs[0].port', value: 70000, problemIncludes: 'less than or equal to 65535' },
  },
  {
    name: 'wrong apiVersion',
    text: POD.replace('apiVersion: v1', 'apiVersion: apps/v1'),
    issue: { path: 'apiVersion', value: 'apps/v1' },
  },
  {
    name: 'one bad document rejects the file',
    text: `${SERVICE}---\n${POD.replace('containerPort: 8080', 'containerPort: -1')}`,
    issue: { document: 2, path: 'spec.containers[0].ports[0].containerPort' },
  },
  {
    name: 'bad item in a List names its index',
    text: `apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: { name: ok }\n- apiVersion: v1\n  kind: Namespace\n  metadata: { name: NotOk }\n`,
    issue: { path: 'items[1].metadata.name', line: 9, value: 'NotOk' },
  },
  {
    name: 'YAML syntax error carries a line',
    text: 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n   labels: x\n',
    issue: { reason: 'yaml', document: 1 },
  },
  {
    name: 'duplicate YAML key',
    text: 'apiVersion: v1\nkind: Namespace\nkind: Namespace\nmetadata: { name: a }\n',
    issue: { reason: 'yaml', line: 3 },
  },
  {
    name: 'not a map',
    text: '- just\n- a list\n',
    issue: { path: '', problemIncludes: 'must be a map' },
  },
  {
    name: 'same object twice in one file',
    text: `${SERVICE}---\n${SERVICE}`,
    issue: { reason: 'duplicate', document: 2, object: 'Service shop/web' },
  },
  {
    name: 'duplicate container names',
    text: POD.replace('    ports:', '  - name: app\n    command: ["true"]\n    ports:').replace(/\n    ports: \[\{ name: http, containerPort: 8080 \}\]\n$/, '\n'),
    issue: { path: 'spec.containers[1].name', problemIncludes: 'unique' },
  },
  {
    name: 'env value must be a string',
    text: POD.replace('    ports:', '    env: [{ name: RETRIES, value: 3 }]\n    ports:'),
    issue: { path: 'spec.containers[0].env[0].value', fixIncludes: 'quote it' },
  },
  {
    name: 'env fieldRef is accepted',
    text: POD.replace('    ports:', '    env: [{ name: POD, valueFrom: { fieldRef: { fieldPath: metadata.name } } }]\n    ports:'),
    opts: { sandbox: true },
    objects: ['Pod shop/web'],
  },
  {
    name: 'env secretKeyRef is not supported in the sandbox',
    text: POD.replace('    ports:', '    env: [{ name: PW, valueFrom: { secretKeyRef: { name: s, key: k } } }]\n    ports:'),
    opts: { sandbox: true },
    issue: { reason: 'unsupported', path: 'spec.containers[0].env[0].valueFrom' },
  },
  {
    name: 'port name must be an IANA service name',
    text: POD.replace('name: http, containerPort', 'name: this-name-is-far-too-long, containerPort'),
    issue: { path: 'spec.containers[0].ports[0].name', problemIncludes: 'IANA' },
  },
  {
    name: 'pod without containers',
    text: 'apiVersion: v1\nkind: Pod\nmetadata: { name: p }\nspec: { containers: [] }\n',
    issue: { path: 'spec.containers', problemIncludes: 'at least one container' },
  },
];

// --- AuthorizationPolicy / PeerAuthentication -------------------------------------------

const AP = `apiVersion: security.nodemesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: api-allow, namespace: shop }
spec:
  selector:
    matchLabels: { app: api }
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/shop/sa/web"]
        namespaces: ["shop"]
        ipBlocks: ["10.244.0.0/16", "fd00::1"]
    to:
    - operation:
        ports: ["8080"]
`;

const PA = `apiVersion: security.nodemesh.io/v1alpha1
kind: PeerAuthentication
metadata: { name: strict, namespace: shop }
spec:
  mtls: { mode: STRICT }
`;

/** AP with its rules replaced by `rules` (YAML, indented by two spaces under spec). */
const apRules = (rules: string): string => AP.replace(/  rules:\n[\s\S]*$/, `  rules:\n${rules}`);
const apSpec = (spec: string): string => AP.replace(/spec:\n[\s\S]*$/, `spec:\n${spec}`);
const paSpec = (spec: string): string => PA.replace(/spec:\n[\s\S]*$/, `spec:\n${spec}`);

// The CRDs in installer/crds decide; paths and messages are the API server's (strict field
// validation's "unknown field", "Unsupported value", CEL rule messages).
const SRC = 'spec.rules[0].from[0].source';
const OP = 'spec.rules[0].to[0].operation';
cases.push(
  { name: 'AuthorizationPolicy: a full L4 policy is accepted', text: AP, objects: ['AuthorizationPolicy shop/api-allow'] },
  { name: 'AuthorizationPolicy: no spec (deny all) is accepted', text: AP.replace(/spec:\n[\s\S]*$/, ''), objects: ['AuthorizationPolicy shop/api-allow'] },
  { name: 'AuthorizationPolicy: an empty rule (allow all) is accepted', text: apRules('  - {}\n'), objects: ['AuthorizationPolicy shop/api-allow'] },
  {
    name: 'AuthorizationPolicy: DENY with L7 fields and not* fields is accepted',
    text: apRules('  - from: [{ source: { notPrincipals: ["*/sa/bad"], notNamespaces: ["dev*"], notIpBlocks: ["10.0.0.0/8"] } }]\n    to: [{ operation: { notPorts: ["22"], methods: ["GET"], paths: ["/admin*"], hosts: ["*.shop"], notMethods: ["PUT"], notPaths: ["/x"], notHosts: ["a"] } }]\n').replace('action: ALLOW', 'action: DENY'),
    objects: ['AuthorizationPolicy shop/api-allow'],
  },
  {
    name: 'AuthorizationPolicy: targetRefs to a Service and a Gateway are accepted by the schema',
    text: apSpec('  targetRefs: [{ kind: Service, name: api }, { kind: Gateway, group: gateway.networking.k8s.io, name: waypoint }]\n'),
    objects: ['AuthorizationPolicy shop/api-allow'],
  },
  {
    name: 'AuthorizationPolicy: `when` header conditions (values, notValues) are accepted',
    text: apRules('  - to: [{ operation: { methods: ["DELETE"] } }]\n    when: [{ key: "request.headers[X-Tool]", notValues: ["admin-*"] }, { key: "request.headers[x-tenant]", values: ["*"] }]\n'),
    objects: ['AuthorizationPolicy shop/api-allow'],
  },
  { name: 'AuthorizationPolicy: a `when` key other than a request header is refused', text: apRules('  - when: [{ key: "source.ip", values: ["10.0.0.1"] }]\n'), issue: { path: 'spec.rules[0].when[0].key', problemIncludes: 'should match' } },
  { name: 'AuthorizationPolicy: a `when` condition without values or notValues is refused', text: apRules('  - when: [{ key: "request.headers[x-a]" }]\n'), issue: { path: 'spec.rules[0].when[0]', problemIncludes: 'a condition needs values or notValues' } },
  {
    name: 'AuthorizationPolicy: mesh-wide policy in nodemesh-system',
    text: AP.replace('namespace: shop', 'namespace: nodemesh-system'), objects: ['AuthorizationPolicy nodemesh-system/api-allow'],
  },
  {
    name: 'AuthorizationPolicy: a principal: typo is an unknown field with the API server path and the likely field',
    text: AP.replace('principals:', 'principal:'),
    issue: { reason: 'invalid', path: `${SRC}.principal`, line: 11, problem: `unknown field "${SRC}.principal"`, fixIncludes: 'did you mean principals?' },
  },
  { name: 'AuthorizationPolicy: an unknown spec field is an error', text: AP.replace('action: ALLOW', 'action: ALLOW\n  actions: DENY'), issue: { path: 'spec.actions', problemIncludes: 'unknown field', fixIncludes: 'did you mean action?' } },
  { name: 'AuthorizationPolicy: an unknown operation field is an error', text: AP.replace('ports: ["8080"]', 'port: ["8080"]'), issue: { path: `${OP}.port`, fixIncludes: 'did you mean ports?' } },
  { name: 'AuthorizationPolicy: an unknown rule field is an error', text: apRules('  - form: [{ source: { namespaces: ["shop"] } }]\n'), issue: { path: 'spec.rules[0].form', fixIncludes: 'did you mean from?' } },
  { name: 'AuthorizationPolicy: AUDIT is not a supported action', text: AP.replace('action: ALLOW', 'action: AUDIT'), issue: { path: 'spec.action', value: 'AUDIT', problem: 'Unsupported value: "AUDIT": supported values: "ALLOW", "DENY"' } },
  { name: 'AuthorizationPolicy: CUSTOM is not a supported action', text: AP.replace('action: ALLOW', 'action: CUSTOM'), issue: { path: 'spec.action', problemIncludes: 'Unsupported value: "CUSTOM"' } },
  { name: 'AuthorizationPolicy: lower-case action', text: AP.replace('action: ALLOW', 'action: deny'), issue: { path: 'spec.action', value: 'deny', fixIncludes: '"ALLOW", "DENY"' } },
  { name: 'AuthorizationPolicy: action neither ALLOW nor DENY', text: AP.replace('action: ALLOW', 'action: PERMIT'), issue: { path: 'spec.action', problemIncludes: 'supported values: "ALLOW", "DENY"' } },
  { name: 'AuthorizationPolicy: a bare port number must be a string', text: AP.replace('ports: ["8080"]', 'ports: [8080]'), issue: { path: `${OP}.ports[0]`, problemIncludes: 'must be of type string' } },
  { name: 'AuthorizationPolicy: port out of range', text: AP.replace('ports: ["8080"]', 'ports: ["70000"]'), issue: { path: `${OP}.ports[0]`, problemIncludes: 'should match' } },
  { name: 'AuthorizationPolicy: a named port is refused', text: AP.replace('ports: ["8080"]', 'notPorts: ["http"]'), issue: { path: `${OP}.notPorts[0]`, value: 'http' } },
  { name: 'AuthorizationPolicy: ports as a string', text: AP.replace('ports: ["8080"]', 'ports: "8080"'), issue: { path: `${OP}.ports`, problemIncludes: 'must be of type array' } },
  { name: 'AuthorizationPolicy: a bad ipBlock prefix', text: AP.replace('"10.244.0.0/16"', '"10.244.0.0/33"'), issue: { path: `${SRC}.ipBlocks[0]`, problemIncludes: 'must be an IPv4 or IPv6 address or CIDR' } },
  { name: 'AuthorizationPolicy: an ipBlock that is a name', text: AP.replace('"10.244.0.0/16"', '"web.shop"'), issue: { path: `${SRC}.ipBlocks[0]`, problemIncludes: 'should match' } },
  { name: 'AuthorizationPolicy: an IPv6 CIDR is accepted', text: AP.replace('"fd00::1"', '"fd00::/64"'), objects: ['AuthorizationPolicy shop/api-allow'] },
  { name: 'AuthorizationPolicy: an IPv6 prefix over 128', text: AP.replace('"fd00::1"', '"fd00::/129"'), issue: { path: `${SRC}.ipBlocks[1]`, problemIncludes: 'CIDR' } },
  { name: 'AuthorizationPolicy: an empty principals list would widen the rule', text: AP.replace('principals: ["cluster.local/ns/shop/sa/web"]', 'principals: []'), issue: { path: `${SRC}.principals`, problemIncludes: 'at least 1 items' } },
  { name: 'AuthorizationPolicy: a principals key with no value', text: AP.replace('principals: ["cluster.local/ns/shop/sa/web"]', 'principals:'), issue: { path: `${SRC}.principals`, problemIncludes: 'must be of type array' } },
  { name: 'AuthorizationPolicy: an empty string value', text: AP.replace('namespaces: ["shop"]', 'namespaces: [""]'), issue: { path: `${SRC}.namespaces[0]`, problemIncludes: 'should match' } },
  { name: 'AuthorizationPolicy: a * in the middle', text: AP.replace('namespaces: ["shop"]', 'namespaces: ["sh*op"]'), issue: { path: `${SRC}.namespaces[0]`, problemIncludes: 'should match' } },
  { name: 'AuthorizationPolicy: an empty source matches everyone', text: apRules('  - from: [{ source: {} }]\n'), issue: { path: 'spec.rules[0].from[0].source', problemIncludes: 'at least 1 properties' } },
  { name: 'AuthorizationPolicy: a from entry without source', text: apRules('  - from: [{}]\n'), issue: { path: 'spec.rules[0].from[0].source', problem: 'Required value' } },
  { name: 'AuthorizationPolicy: an empty from list', text: apRules('  - from: []\n'), issue: { path: 'spec.rules[0].from', problemIncludes: 'at least 1 items' } },
  { name: 'AuthorizationPolicy: an empty operation', text: apRules('  - to: [{ operation: {} }]\n'), issue: { path: 'spec.rules[0].to[0].operation', problemIncludes: 'at least 1 properties' } },
  { name: 'AuthorizationPolicy: a source written without the source key', text: apRules('  - from: [{ principals: ["a/b"] }]\n'), issues: 2, issue: { path: 'spec.rules[0].from[0].source', problem: 'Required value' } },
  { name: 'AuthorizationPolicy: an unknown `when` field is an error', text: apRules('  - when: [{ key: "request.headers[x]", value: ["y"] }]\n'), issue: { path: 'spec.rules[0].when[0].value', problemIncludes: 'unknown field' } },
  { name: 'AuthorizationPolicy: requestPrincipals is not supported', text: AP.replace('namespaces: ["shop"]', 'requestPrincipals: ["*"]'), issue: { path: `${SRC}.requestPrincipals`, problemIncludes: 'unknown field' } },
  { name: 'AuthorizationPolicy: rules not a list', text: apRules('    from: []\n'), issue: { path: 'spec.rules', problemIncludes: 'must be of type array' } },
  {
    name: 'AuthorizationPolicy: selector and targetRefs together (CEL rule on spec)',
    text: AP.replace('  action: ALLOW', '  targetRefs: [{ kind: Service, name: api }]\n  action: ALLOW'),
    issue: { path: 'spec', problemIncludes: 'Invalid value: only one of selector or targetRefs can be set' },
  },
  { name: 'AuthorizationPolicy: targetRefs kind Pod', text: apSpec('  targetRefs: [{ kind: Pod, name: api }]\n'), issue: { path: 'spec.targetRefs[0].kind', problem: 'Unsupported value: "Pod": supported values: "Service", "Gateway"' } },
  { name: 'AuthorizationPolicy: targetRefs without a name', text: apSpec('  targetRefs: [{ kind: Service }]\n'), issue: { path: 'spec.targetRefs[0].name', problem: 'Required value' } },
  { name: 'AuthorizationPolicy: targetRefs with the wrong group', text: apSpec('  targetRefs: [{ kind: Gateway, group: "", name: w }]\n'), issue: { path: 'spec.targetRefs[0]', problemIncludes: 'group must be' } },
  { name: 'AuthorizationPolicy: targetRefs in another namespace', text: apSpec('  targetRefs: [{ kind: Service, name: w, namespace: other }]\n'), issue: { path: 'spec.targetRefs[0].namespace', problemIncludes: 'unknown field' } },
  { name: 'AuthorizationPolicy: targetRef (singular)', text: apSpec('  targetRef: { kind: Service, name: w }\n'), issue: { path: 'spec.targetRef', fixIncludes: 'did you mean targetRefs?' } },
  { name: 'AuthorizationPolicy: empty targetRefs', text: apSpec('  targetRefs: []\n'), issue: { path: 'spec.targetRefs', problemIncludes: 'at least 1 items' } },
  { name: 'AuthorizationPolicy: selector without labels', text: apSpec('  selector: {}\n'), issue: { path: 'spec.selector.matchLabels', problem: 'Required value' } },
  { name: 'AuthorizationPolicy: matchLabels value must be a string', text: AP.replace('{ app: api }', '{ version: 2 }'), issue: { path: 'spec.selector.matchLabels.version', problemIncludes: 'must be of type string' } },
  { name: 'AuthorizationPolicy: misspelt matchLabels', text: AP.replace('matchLabels:', 'matchLabel:'), issues: 2, issue: { path: 'spec.selector.matchLabels', problem: 'Required value' } },
  { name: 'AuthorizationPolicy: Istio apiVersion', text: AP.replace('security.nodemesh.io/v1alpha1', 'security.istio.io/v1'), issue: { path: 'apiVersion', problemIncludes: 'needs apiVersion security.nodemesh.io/v1alpha1' } },
  { name: 'AuthorizationPolicy: spec not a map', text: apSpec('  - ALLOW\n'), issue: { path: 'spec', problemIncludes: 'must be of type object' } },

  { name: 'PeerAuthentication: namespace-wide STRICT', text: PA, objects: ['PeerAuthentication shop/strict'] },
  {
    name: 'PeerAuthentication: selector with port-level modes',
    text: paSpec('  selector: { matchLabels: { app: api } }\n  mtls: { mode: STRICT }\n  portLevelMtls: { 8080: { mode: PERMISSIVE } }\n'),
    objects: ['PeerAuthentication shop/strict'],
  },
  { name: 'PeerAuthentication: UNSET is accepted', text: PA.replace('STRICT', 'UNSET'), objects: ['PeerAuthentication shop/strict'] },
  { name: 'PeerAuthentication: lower-case mode', text: PA.replace('STRICT', 'strict'), issue: { path: 'spec.mtls.mode', value: 'strict', fixIncludes: '"STRICT"' } },
  { name: 'PeerAuthentication: unknown mode', text: PA.replace('STRICT', 'MUTUAL'), issue: { path: 'spec.mtls.mode', problemIncludes: '"UNSET", "DISABLE", "PERMISSIVE", "STRICT"' } },
  { name: 'PeerAuthentication: misspelt mtls', text: PA.replace('mtls:', 'mTLS:'), issue: { path: 'spec.mTLS', fixIncludes: 'did you mean mtls?' } },
  { name: 'PeerAuthentication: unknown mtls field', text: PA.replace('{ mode: STRICT }', '{ mode: STRICT, strict: true }'), issue: { path: 'spec.mtls.strict' } },
  { name: 'PeerAuthentication: portLevelMtls needs a selector', text: paSpec('  portLevelMtls: { 8080: { mode: DISABLE } }\n'), issue: { path: 'spec', problemIncludes: 'portLevelMtls requires selector' } },
  { name: 'PeerAuthentication: portLevelMtls key not a port', text: paSpec('  selector: { matchLabels: { app: api } }\n  portLevelMtls: { http: { mode: DISABLE } }\n'), issue: { path: 'spec.portLevelMtls', problemIncludes: 'port must be between 1 and 65535' } },
  { name: 'PeerAuthentication: portLevelMtls port out of range', text: paSpec('  selector: { matchLabels: { app: api } }\n  portLevelMtls: { 70000: { mode: DISABLE } }\n'), issue: { path: 'spec.portLevelMtls', problemIncludes: 'port must be between 1 and 65535' } },
  { name: 'PeerAuthentication: portLevelMtls entry without a mode', text: paSpec('  selector: { matchLabels: { app: api } }\n  portLevelMtls: { 8080: {} }\n'), issue: { path: 'spec.portLevelMtls.8080.mode', problem: 'Required value' } },
  { name: 'PeerAuthentication: unknown spec field', text: paSpec('  mtls: { mode: STRICT }\n  action: ALLOW\n'), issue: { path: 'spec.action', problemIncludes: 'unknown field' } },
  { name: 'PeerAuthentication: no spec is accepted', text: PA.replace(/spec:\n[\s\S]*$/, ''), objects: ['PeerAuthentication shop/strict'] },
);

for (const c of cases) {
  test(`parseManifest: ${c.name}`, () => {
    const r = parseManifest(c.text, 'm.yaml', c.opts);
    if (c.objects) {
      assert.equal(r.ok, true, r.ok ? '' : r.issues.map(formatIssue).join('\n'));
      if (!r.ok) return;
      assert.deepEqual(r.entries.map((e) => `${e.object.kind} ${e.object.metadata.namespace ? `${e.object.metadata.namespace}/` : ''}${e.object.metadata.name}`), c.objects);
      return;
    }
    assert.equal(r.ok, false, 'expected the manifest to be rejected');
    if (r.ok) return;
    if (c.issues !== undefined) assert.equal(r.issues.length, c.issues, r.issues.map(formatIssue).join('\n'));
    const got = r.issues[0]!;
    const { problemIncludes, fixIncludes, ...exact } = c.issue!;
    assert.equal(got.file, 'm.yaml');
    for (const [k, v] of Object.entries(exact)) assert.deepEqual(got[k as keyof ManifestIssue], v, `${k} of ${formatIssue(got)}`);
    if (problemIncludes) assert.ok(got.problem.includes(problemIncludes), got.problem);
    if (fixIncludes) assert.ok(got.fix.includes(fixIncludes), got.fix);
    assert.ok(got.fix.length > 0, 'every issue says what to do');
  });
}

test('formatIssue names file, document, line, object, field, value and fix', () => {
  const r = parseManifest(POD.replace('containerPort: 8080', 'containerPort: "8080"'), 'shop/web.yaml');
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(formatIssue(r.issues[0]!),
    'shop/web.yaml: document 1 (line 11), Pod shop/web: spec.containers[0].ports[0].containerPort: got "8080": containerPort must be an integer between 1 and 65535; write it without quotes: 8080');
});

test('objects carry unknown fields through untouched', () => {
  const r = parseManifest(POD.replace('spec:\n', 'spec:\n  terminationGracePeriodSeconds: 3\n'), 'm.yaml');
  assert.equal(r.ok, true);
  if (!r.ok) return;
  assert.equal(((r.entries[0]!.object as unknown as { spec: Record<string, unknown> }).spec).terminationGracePeriodSeconds, 3);
});

test('formatPath quotes keys that are not identifiers', () => {
  assert.equal(formatPath(['spec', 'containers', 0, 'command']), 'spec.containers[0].command');
  assert.equal(formatPath(['metadata', 'labels', 'app.kubernetes.io/name']), 'metadata.labels["app.kubernetes.io/name"]');
});

test('address helpers', () => {
  assert.equal(parseIPv4('10.96.0.1'), 0x0a600001);
  assert.equal(parseIPv4('10.96.0.01'), undefined);
  assert.equal(parseIPv4('256.0.0.1'), undefined);
  assert.deepEqual(parseCidr('10.96.0.0/16'), { base: 0x0a600000, bits: 16, size: 65536 });
  assert.equal(parseCidr('10.96.0.1/16'), undefined);
  assert.equal(parseCidr('10.96.0.0/33'), undefined);
});
