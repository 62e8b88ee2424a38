// `nodemesh bench --quick` end to end: it brings up its own sandbox, runs every mode briefly
// (no mesh, sidecar (nodemesh), sidecar (HAProxy), ambient L4, ambient + waypoint),
// and writes the JSON, the Markdown and the SVG charts. Asserts behaviour, never timings: every
// mode present and measured, no errors at the fixed rates, the path check of every mode passed
// (its traffic took the path it claims), the charts parse as XML. Needs root; fails, never skips.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { down, leftovers, nodemesh, requireSandboxPrerequisites } from './helpers/sandbox';
import type { BenchDoc } from '../../bench/report';

const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodemesh-bench-quick-'));

after(async () => {
  await down(); // a no-op when the bench took its sandbox down itself, as it must
  fs.rmSync(outDir, { recursive: true, force: true });
});

test('nodemesh bench --quick: every mode measured, path checks passed, report and charts written', { timeout: 280_000 }, async () => {
  requireSandboxPrerequisites();
  for (const tool of ['wrk', 'haproxy', 'tcpdump', 'openssl', 'python3']) {
    assert.equal(spawnSync('sh', ['-c', `command -v ${tool}`]).status, 0, `${tool} is missing: make system-deps installs it`);
  }
  const r = await nodemesh(['bench', '--quick', '--out-dir', outDir], { timeoutMs: 270_000 });
  assert.equal(r.code, 0, `nodemesh bench --quick exited ${r.code}\nstdout: ${r.stdout.slice(-4000)}\nstderr: ${r.stderr.slice(-3000)}`);
  assert.deepEqual(leftovers(), [], 'the bench took its sandbox down');

  const latest = JSON.parse(fs.readFileSync(path.join(outDir, 'latest.json'), 'utf8')) as { json: string; markdown: string; svgs: string[] };
  const doc = JSON.parse(fs.readFileSync(latest.json, 'utf8')) as BenchDoc;
  assert.equal(doc.benchmark, 'mesh-compare');
  assert.equal(doc.quick, true);
  assert.deepEqual(doc.modes.map((m) => m.mode), ['plain', 'sidecar', 'haproxy', 'ambient', 'waypoint']);
  for (const m of doc.modes) {
    assert.equal(m.available, true, m.mode);
    assert.ok(m.latency.length >= 3, `${m.mode}: latency rows`);
    for (const row of m.latency) {
      assert.ok(row.ok > 0, `${m.mode} ${row.scenario}: requests answered`);
      assert.equal(row.errors, 0, `${m.mode} ${row.scenario}: errors ${JSON.stringify(row.errorKinds)}`);
    }
    assert.ok((m.maxRps.wrk?.requests ?? 0) > 0, `${m.mode}: wrk measured`);
    assert.ok((m.maxRps.ours?.ok ?? 0) > 0, `${m.mode}: our max-rate phase measured`);
    assert.ok((m.newConnSaturation.wrk?.requests ?? 0) > 0, `${m.mode}: new connections measured`);
    assert.equal(m.bulk?.ok, true, `${m.mode}: bulk transfer complete`);
    assert.ok(m.memoryVsPods.length >= 2, `${m.mode}: memory vs pods`);
    if (m.mode !== 'plain') {
      assert.ok(m.meshProcesses.length > 0, `${m.mode}: mesh processes watched`);
      assert.ok(m.memoryVsPods.every((p) => p.meshRssMiB > 0), `${m.mode}: mesh memory measured`);
      assert.ok(m.memoryVsConns.length > 0 && m.memoryVsConns.every((c) => c.open > 0 && c.failed === 0), `${m.mode}: connections held ${JSON.stringify(m.memoryVsConns)}`);
    }
    assert.deepEqual(m.pathChecks.map((c) => c.placement), ['cross-node', 'same-node']);
    for (const c of m.pathChecks) assert.ok(c.ok, `${m.mode} ${c.placement} path check: ${c.problems.join('; ')}`);
  }
  // Sidecar mode grows by a proxy per pod; ambient keeps one daemon per node.
  const sidecar = doc.modes.find((m) => m.mode === 'sidecar')!;
  const ambient = doc.modes.find((m) => m.mode === 'ambient')!;
  assert.ok(sidecar.memoryVsPods.at(-1)!.meshProcesses > sidecar.memoryVsPods[0]!.meshProcesses);
  assert.equal(ambient.memoryVsPods.at(-1)!.meshProcesses, 1);
  // The waypoint mode: the daemons and the waypoint watched, the waypoint's own CPU and RSS.
  const waypoint = doc.modes.find((m) => m.mode === 'waypoint')!;
  assert.deepEqual(waypoint.meshProcesses.map((p) => p.name.split(' ')[0]).sort(), ['daemon', 'daemon', 'waypoint']);
  for (const row of waypoint.latency) {
    // The waypoint's Node process (not its supervising shell): it served the phase's requests.
    assert.ok(row.waypoint && (row.waypoint.cpuSeconds ?? 0) > 0 && (row.waypoint.rssMiB ?? 0) > 10, `waypoint ${row.scenario}: its own CPU and RSS ${JSON.stringify(row.waypoint)}`);
  }

  const md = fs.readFileSync(latest.markdown, 'utf8');
  assert.match(md, /\| ratio to no mesh \|/);
  assert.match(md, /\| ratio to sidecar \(nodemesh\) \|/);
  assert.ok(latest.svgs.length >= 4, 'latency, memory vs pods, CPU charts at least');
  assert.ok(latest.svgs.some((f) => f.endsWith('-waypoint-cpu.svg')), 'the waypoint CPU chart');
  for (const f of latest.svgs) {
    const x = spawnSync('python3', ['-c', 'import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); sys.exit(0 if r.tag.endswith("svg") else 3)', f], { encoding: 'utf8' });
    assert.equal(x.status, 0, `${f} is not well-formed SVG: ${x.stderr}`);
  }
});
