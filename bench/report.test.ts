// The side-by-side report's pure parts: ratios, the Markdown tables, the charts it asks for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MODES, chartsSvg, markdownReport, ratio, reportRows, type BenchDoc, type LatencyRow, type ModeResult } from './report';

const row = (scenario: string, p50: number, cpu: number | null, placement: LatencyRow['placement'] = 'cross-node', connMode: LatencyRow['connMode'] = 'keepalive', rate = 1000): LatencyRow => ({
  scenario, placement, connMode, rate, seconds: 10, latency: { p50Ms: p50, p90Ms: p50 * 1.5, p99Ms: p50 * 3, p999Ms: p50 * 5, maxMs: p50 * 9 },
  achievedRate: rate, ok: rate * 10, errors: 0, errorKinds: {}, meshCpuSeconds: cpu, meshCpuMsPer1k: cpu, machineBusyPct: 40,
  meshSleepsPerRequest: cpu === null ? null : 4, meshCpuUsPerSleep: cpu === null ? null : cpu / 4,
});

function mode(id: ModeResult['mode'], p50: number, cpu: number | null, mem: number, available = id !== 'waypoint'): ModeResult {
  const label = MODES.find((m) => m.id === id)!.label;
  if (!available) return { mode: id, label, available: false, note: 'not yet', meshProcesses: [], latency: [], maxRps: { wrk: null, ours: null }, newConnSaturation: { wrk: null }, bulk: null, memoryVsPods: [], memoryVsConns: [], pathChecks: [] };
  return {
    mode: id, label, available: true, meshProcesses: [],
    latency: [row('keepalive@1000', p50, cpu), row('new-conn@500', p50 * 2, cpu === null ? null : cpu * 4, 'cross-node', 'new-conn', 500), row('same-node keepalive@1000', p50 / 2, cpu, 'same-node')],
    maxRps: { wrk: { requestsPerSecond: 10_000 / p50, requests: 50_000, errors: 0, p99Ms: p50 * 3, meshCpuMsPer1k: cpu }, ours: { achievedRate: 9000 / p50, ok: 1, errors: 0 } },
    newConnSaturation: { wrk: { connectionsPerSecond: 2000 / p50, requests: 1, errors: 0, meshCpuMsPer1k: cpu } },
    bulk: { mbPerSecond: 900 / p50, bytes: 1, ok: true, meshCpuSecondsPerGB: cpu },
    memoryVsPods: [{ podsPerNode: 2, meshRssMiB: mem, meshProcesses: 1 }, { podsPerNode: 10, meshRssMiB: mem * 5, meshProcesses: 5 }],
    memoryVsConns: id === 'plain' ? [] : [{ connections: 1000, open: 1000, failed: 0, beforeMiB: mem, heldMiB: mem + 10, afterMiB: mem + 1, perConnKiB: 10.24 }],
    pathChecks: [{ placement: 'cross-node', ok: true, checks: ['x'], problems: [] }, { placement: 'same-node', ok: id !== 'haproxy', checks: [], problems: id === 'haproxy' ? ['wire: saw plaintext'] : [] }],
  };
}

const doc = (): BenchDoc => ({
  benchmark: 'mesh-compare', version: 1, quick: false, startedAt: '2026-11-29T10:00:00.000Z', finishedAt: '2026-11-29T10:10:00.000Z', command: 'nodemesh bench',
  machine: { nproc: 2, cpuModel: 'cpu', memTotalMiB: 1, kernel: 'k', node: 'v20', gitCommit: 'abc', gitDirty: false }, config: {},
  modes: [mode('plain', 1, 0, 0), mode('sidecar', 2, 300, 60), mode('haproxy', 1.5, 100, 20), mode('ambient', 1.2, 150, 70), mode('waypoint', 0, null, 0)],
  identity: { rssMiB: 50, note: '' }, notes: ['a note'],
});

test('ratio: a/b, null when either side is missing or the base is not positive', () => {
  const cases: [number | null | undefined, number | null | undefined, number | null][] = [[3, 2, 1.5], [1, 3, 0.333], [5, 0, null], [null, 2, null], [2, undefined, null], [Number.NaN, 1, null]];
  for (const [a, b, want] of cases) assert.equal(ratio(a, b), want, `${a}/${b}`);
});

test('reportRows: a row per latency percentile per scenario, saturation, CPU and memory rows', () => {
  const rows = reportRows(doc());
  const labels = rows.map((r) => r.label);
  assert.ok(labels.includes('keep-alive @ 1000/s: p99 ms'));
  assert.ok(labels.includes('new conn per request @ 500/s: p50 ms'));
  assert.ok(labels.includes('same node, keep-alive @ 1000/s: p99 ms'));
  assert.ok(!labels.includes('same node, keep-alive @ 1000/s: p90 ms'));
  assert.ok(labels.includes('mesh CPU ms per 1,000 requests (keep-alive @ 1000/s)'));
  assert.ok(labels.includes('mesh CPU ms per 1,000 new connections (@ 500/s)'));
  assert.ok(labels.includes('mesh memory MiB, 10 pods on the node'));
  assert.ok(labels.includes('mesh memory KiB per connection (1000)'));
  const sidecar = doc().modes[1]!;
  assert.equal(rows.find((r) => r.label === 'keep-alive @ 1000/s: p99 ms')!.get(sidecar), 6);
  // CPU per request split into wake-ups x the cost of one, for keep-alive and new connections.
  assert.equal(rows.find((r) => r.label === 'mesh event-loop sleeps per request (keep-alive @ 1000/s)')!.get(sidecar), 4);
  assert.equal(rows.find((r) => r.label === 'mesh CPU us per sleep (new conn @ 500/s)')!.get(sidecar), 300);
});

test('markdownReport: values, ratios to no mesh and to sidecar, waypoint "not yet", path checks', () => {
  const md = markdownReport(doc());
  assert.match(md, /\| values \| no mesh \| sidecar \(nodemesh\) \| sidecar \(HAProxy\) \| ambient L4 \| ambient \+ waypoint \|/);
  assert.match(md, /\| ratio to no mesh \|/);
  assert.match(md, /\| ratio to sidecar \(nodemesh\) \|/);
  // p50 keep-alive: 1, 2, 1.5, 1.2 ms -> to no mesh 2x, 1.5x, 1.2x; to sidecar 0.5x, 1x, 0.75x, 0.6x
  const lines = md.split('\n').filter((l) => l.startsWith('| keep-alive @ 1000/s: p50 ms |'));
  assert.equal(lines.length, 3);
  assert.equal(lines[0], '| keep-alive @ 1000/s: p50 ms | 1.00 | 2.00 | 1.50 | 1.20 | not yet |');
  assert.equal(lines[1], '| keep-alive @ 1000/s: p50 ms | 1.00x | 2.00x | 1.50x | 1.20x | not yet |');
  assert.equal(lines[2], '| keep-alive @ 1000/s: p50 ms | 0.50x | 1.00x | 0.75x | 0.60x | not yet |');
  // CPU of no mesh is 0: no ratio to it, so no such row in that table; to sidecar there is one.
  const cpuRows = md.split('\n').filter((l) => l.startsWith('| mesh CPU ms per 1,000 requests (keep-alive @ 1000/s) |'));
  assert.deepEqual(cpuRows, ['| mesh CPU ms per 1,000 requests (keep-alive @ 1000/s) | 0.0 | 300.0 | 100.0 | 150.0 | not yet |',
    '| mesh CPU ms per 1,000 requests (keep-alive @ 1000/s) | 0.00x | 1.00x | 0.33x | 0.50x | not yet |']);
  assert.match(md, /\| same-node \| passed \| passed \| FAILED: wire: saw plaintext \| passed \| not yet \|/);
  assert.match(md, /- a note/);
});

test('the waypoint mode, once measured: its own CPU and RSS rows, n/a for the others, and its CPU chart', () => {
  const d = doc();
  const wp = mode('waypoint', 1.5, 200, 80, true);
  wp.latency = wp.latency.map((r) => ({ ...r, waypoint: { cpuSeconds: 1, cpuMsPer1k: 120, rssMiB: 64 } }));
  wp.maxRps.wrk = { ...wp.maxRps.wrk!, waypointCpuMsPer1k: 90 };
  d.modes[4] = wp;
  const md = markdownReport(d);
  assert.match(md, /\| waypoint CPU ms per 1,000 requests \(keep-alive @ 1000\/s\) \| n\/a \| n\/a \| n\/a \| n\/a \| 120\.0 \|/);
  assert.match(md, /\| waypoint CPU ms per 1,000 requests at max \(wrk\) \| n\/a \| n\/a \| n\/a \| n\/a \| 90\.0 \|/);
  assert.match(md, /\| waypoint RSS MiB \(max during keep-alive @ 1000\/s\) \| n\/a \| n\/a \| n\/a \| n\/a \| 64\.0 \|/);
  assert.match(md, /\| keep-alive @ 1000\/s: p50 ms \| 1\.00 \| 2\.00 \| 1\.50 \| 1\.20 \| 1\.50 \|/);
  const charts = chartsSvg(d);
  assert.ok(charts.every((c) => c.name === 'waypoint-cpu.svg' || c.svg.includes('ambient + waypoint')), 'the waypoint is a series of every chart');
  const w = charts.find((c) => c.name === 'waypoint-cpu.svg')!;
  assert.ok(w.svg.includes('node daemons (both)') && w.svg.includes('>120<'), 'daemons (200 - 120) and the waypoint (120) per scenario');
  assert.ok(w.svg.includes('>80<'));
});

test('chartsSvg: latency, memory vs pods, CPU and memory vs connections charts, one series per available mode', () => {
  const charts = chartsSvg(doc());
  assert.deepEqual(charts.map((c) => c.name), ['latency.svg', 'latency-other.svg', 'memory-pods.svg', 'cpu.svg', 'memory-conns.svg']);
  for (const c of charts) {
    assert.match(c.svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.match(c.svg, /<\/svg>\n$/);
    assert.ok(c.svg.includes('sidecar (HAProxy)'));
    assert.ok(!c.svg.includes('ambient + waypoint'), 'the waypoint has no data yet: no series');
  }
});
