// The sidecar's pure parts: its view of the cluster and its one-pod scope.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sidecarProxyName, sidecarScope, sidecarView } from './sidecar-main';
import { buildSnapshot } from './state/snapshot';
import type { Resource } from './state/resources';

const ns = (name: string, mode?: string): Resource => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: mode ? { 'nodemesh.io/dataplane-mode': mode } : {} } });
const pod = (namespace: string, name: string, node: string, labels: Record<string, string> = {}): Resource => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, uid: `uid-${namespace}-${name}`, labels },
  spec: { nodeName: node, containers: [] }, status: { phase: 'Running', podIP: `10.244.1.${name.length}` },
} as unknown as Resource);

test('sidecarView: `sidecar` (namespace or pod label) reads as meshed; nothing else changes', () => {
  const input = [ns('sc', 'sidecar'), ns('amb', 'ambient'), ns('plain'), pod('sc', 'a', 'node-1'), pod('plain', 'b', 'node-1', { 'nodemesh.io/dataplane-mode': 'sidecar' }), pod('plain', 'c', 'node-1')];
  const view = sidecarView(input);
  assert.equal(view[0]!.metadata.labels?.['nodemesh.io/dataplane-mode'], 'ambient');
  assert.equal(input[0]!.metadata.labels?.['nodemesh.io/dataplane-mode'], 'sidecar', 'the input is not modified');
  assert.equal(view[1], input[1]);
  assert.equal(view[2], input[2]);
  const s = buildSnapshot(view, 1);
  assert.equal(s.workloads.get('uid-sc-a')?.enrolled, true);
  assert.equal(s.workloads.get('uid-plain-b')?.enrolled, true);
  assert.equal(s.workloads.get('uid-plain-c')?.enrolled, false);
  // The node daemons' own view: `sidecar` does not enrol a pod in ambient mode.
  assert.equal(buildSnapshot(input, 1).workloads.get('uid-sc-a')?.enrolled, false);
});

test('sidecarScope: exactly its own pod, wherever it runs; the proxy name is no node', () => {
  const s = buildSnapshot(sidecarView([ns('sc', 'sidecar'), pod('sc', 'a', 'node-1'), pod('sc', 'bb', 'node-1')]), 1);
  assert.deepEqual(sidecarScope('uid-sc-a')(s).map((w) => w.name), ['a']);
  assert.deepEqual(sidecarScope('uid-missing')(s), []);
  assert.notEqual(sidecarProxyName('node-1', 'uid-sc-a'), 'node-1');
});
