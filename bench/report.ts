// The side-by-side report (pure): the result document's shape, the Markdown tables with
// ratios to no mesh and to sidecar mode, and the SVG charts. bench/mesh-compare.ts measures
// and writes; this file only turns numbers into text.
import type { ModeId } from './path-check';
import { barChartSvg, lineChartSvg } from './svg-chart';

export const MODES: readonly { id: ModeId; label: string }[] = [
  { id: 'plain', label: 'no mesh' },
  { id: 'sidecar', label: 'sidecar (nodemesh)' },
  { id: 'haproxy', label: 'sidecar (HAProxy)' },
  { id: 'ambient', label: 'ambient L4' },
  { id: 'waypoint', label: 'ambient + waypoint' },
];

export interface Latency { p50Ms: number; p90Ms: number; p99Ms: number; p999Ms: number; maxMs: number }

export interface LatencyRow {
  /** `keepalive@1000`, `new-conn@500`, `same-node keepalive@1000` ... */
  scenario: string;
  placement: 'cross-node' | 'same-node';
  connMode: 'keepalive' | 'new-conn';
  rate: number;
  seconds: number;
  latency: Latency;
  achievedRate: number;
  ok: number;
  errors: number;
  errorKinds: Record<string, number>;
  /** CPU of every mesh process of the mode during the phase (both nodes), seconds. */
  meshCpuSeconds: number | null;
  /** ... per 1,000 ok requests, milliseconds. */
  meshCpuMsPer1k: number | null;
  /** Times the mesh processes' main threads (event loops) went to sleep, per ok request, all
   * of them together; and their CPU per sleep (microseconds). At a paced rate every request
   * wakes each proxy it crosses, so this splits CPU per request into wake-ups x cost of one. */
  meshSleepsPerRequest?: number | null;
  meshCpuUsPerSleep?: number | null;
  machineBusyPct: number | null;
  /** Ambient + waypoint: the waypoint process alone (also counted in meshCpuSeconds). */
  waypoint?: { cpuSeconds: number | null; cpuMsPer1k: number | null; rssMiB: number | null };
}

export interface ModeResult {
  mode: ModeId;
  label: string;
  /** false: the mode cannot run yet (the waypoint); every value is null and `note` says why. */
  available: boolean;
  note?: string;
  meshProcesses: { name: string; pid: number; node: string }[];
  latency: LatencyRow[];
  maxRps: { wrk: { requestsPerSecond: number; requests: number; errors: number; p99Ms: number | null; meshCpuMsPer1k: number | null; waypointCpuMsPer1k?: number | null } | null; ours: { achievedRate: number; ok: number; errors: number } | null };
  newConnSaturation: { wrk: { connectionsPerSecond: number; requests: number; errors: number; meshCpuMsPer1k: number | null } | null };
  bulk: { mbPerSecond: number; bytes: number; ok: boolean; meshCpuSecondsPerGB: number | null } | null;
  /** The same, both pods on one node (ambient: with the node daemon's kernel splice). */
  bulkSameNode?: ModeResult['bulk'];
  /** Ambient only: same-node bulk with the splice off (the daemon relays in user space). */
  bulkSameNodeRelay?: ModeResult['bulk'];
  memoryVsPods: { podsPerNode: number; meshRssMiB: number; meshProcesses: number }[];
  memoryVsConns: { connections: number; open: number; failed: number; beforeMiB: number; heldMiB: number; afterMiB: number; perConnKiB: number | null }[];
  pathChecks: { placement: 'cross-node' | 'same-node'; ok: boolean; checks: string[]; problems: string[] }[];
}

export interface BenchDoc {
  benchmark: 'mesh-compare';
  version: 1;
  quick: boolean;
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: Record<string, unknown>;
  config: Record<string, unknown>;
  modes: ModeResult[];
  identity: { rssMiB: number | null; note: string };
  notes: string[];
}

export const ratio = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a === null || a === undefined || b === null || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b <= 0 ? null : Math.round((a / b) * 1000) / 1000;

interface Row { label: string; get: (m: ModeResult) => number | null | undefined; digits: number }

const lat = (m: ModeResult, scenario: string) => m.latency.find((r) => r.scenario === scenario);

/** The rows of the tables, from what the document holds (scenarios, scale points). */
export function reportRows(doc: BenchDoc): Row[] {
  const rows: Row[] = [];
  const first = doc.modes.find((m) => m.available) ?? doc.modes[0];
  for (const r of first?.latency ?? []) {
    const name = `${r.placement === 'same-node' ? 'same node, ' : ''}${r.connMode === 'new-conn' ? 'new conn per request' : 'keep-alive'} @ ${r.rate}/s`;
    for (const [k, p] of [['p50Ms', 'p50'], ['p90Ms', 'p90'], ['p99Ms', 'p99'], ['p999Ms', 'p99.9'], ['maxMs', 'max']] as const) {
      if (r.placement === 'same-node' && (k === 'p90Ms' || k === 'p999Ms')) continue;
      rows.push({ label: `${name}: ${p} ms`, get: (m) => lat(m, r.scenario)?.latency[k], digits: 2 });
    }
  }
  rows.push({ label: 'max req/s, wrk, 64 connections', get: (m) => m.maxRps.wrk?.requestsPerSecond, digits: 0 });
  rows.push({ label: 'max req/s, ours (open loop, 64 connections)', get: (m) => m.maxRps.ours?.achievedRate, digits: 0 });
  rows.push({ label: 'new connections/s at saturation (wrk, 64)', get: (m) => m.newConnSaturation.wrk?.connectionsPerSecond, digits: 0 });
  rows.push({ label: 'bulk MB/s, one stream', get: (m) => m.bulk?.mbPerSecond, digits: 1 });
  rows.push({ label: 'same node, bulk MB/s, one stream (ambient: kernel splice)', get: (m) => m.bulkSameNode?.mbPerSecond, digits: 1 });
  rows.push({ label: 'same node, bulk MB/s, one stream, splice off (user-space relay)', get: (m) => m.bulkSameNodeRelay?.mbPerSecond, digits: 1 });
  const ka = first?.latency.find((r) => r.placement === 'cross-node' && r.connMode === 'keepalive' && r.rate === 1000) ?? first?.latency.find((r) => r.placement === 'cross-node' && r.connMode === 'keepalive');
  const nc = first?.latency.find((r) => r.placement === 'cross-node' && r.connMode === 'new-conn');
  if (ka) rows.push({ label: `mesh CPU ms per 1,000 requests (keep-alive @ ${ka.rate}/s)`, get: (m) => lat(m, ka.scenario)?.meshCpuMsPer1k, digits: 1 });
  if (nc) rows.push({ label: `mesh CPU ms per 1,000 new connections (@ ${nc.rate}/s)`, get: (m) => lat(m, nc.scenario)?.meshCpuMsPer1k, digits: 1 });
  for (const r of [ka, nc]) {
    if (!r) continue;
    const what = r.connMode === 'new-conn' ? `new conn @ ${r.rate}/s` : `keep-alive @ ${r.rate}/s`;
    rows.push({ label: `mesh event-loop sleeps per request (${what})`, get: (m) => lat(m, r.scenario)?.meshSleepsPerRequest, digits: 2 });
    rows.push({ label: `mesh CPU us per sleep (${what})`, get: (m) => lat(m, r.scenario)?.meshCpuUsPerSleep, digits: 1 });
  }
  rows.push({ label: 'mesh CPU ms per 1,000 requests at max (wrk)', get: (m) => m.maxRps.wrk?.meshCpuMsPer1k, digits: 1 });
  // The waypoint alone (its mode's mesh CPU above counts both node daemons and it).
  if (doc.modes.some((m) => m.available && m.latency.some((r) => r.waypoint))) {
    for (const r of first?.latency.filter((x) => x.placement === 'cross-node' && x.connMode === 'keepalive') ?? []) {
      rows.push({ label: `waypoint CPU ms per 1,000 requests (keep-alive @ ${r.rate}/s)`, get: (m) => lat(m, r.scenario)?.waypoint?.cpuMsPer1k, digits: 1 });
    }
    if (nc) rows.push({ label: `waypoint CPU ms per 1,000 new connections (@ ${nc.rate}/s)`, get: (m) => lat(m, nc.scenario)?.waypoint?.cpuMsPer1k, digits: 1 });
    rows.push({ label: 'waypoint CPU ms per 1,000 requests at max (wrk)', get: (m) => m.maxRps.wrk?.waypointCpuMsPer1k, digits: 1 });
    if (ka) rows.push({ label: `waypoint RSS MiB (max during keep-alive @ ${ka.rate}/s)`, get: (m) => lat(m, ka.scenario)?.waypoint?.rssMiB, digits: 1 });
  }
  for (const p of first?.memoryVsPods ?? []) rows.push({ label: `mesh memory MiB, ${p.podsPerNode} pods on the node`, get: (m) => m.memoryVsPods.find((x) => x.podsPerNode === p.podsPerNode)?.meshRssMiB, digits: 1 });
  const held = doc.modes.find((m) => m.available && m.memoryVsConns.length)?.memoryVsConns ?? [];
  for (const c of held) {
    rows.push({ label: `mesh memory MiB, ${c.connections} connections held`, get: (m) => m.memoryVsConns.find((x) => x.connections === c.connections)?.heldMiB, digits: 1 });
    rows.push({ label: `mesh memory KiB per connection (${c.connections})`, get: (m) => m.memoryVsConns.find((x) => x.connections === c.connections)?.perConnKiB, digits: 1 });
  }
  return rows;
}

const cell = (v: number | null | undefined, d: number): string => (v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(d));
const rcell = (v: number | null): string => (v === null ? 'n/a' : `${v.toFixed(2)}x`);

/** Three tables: values, ratio to no mesh, ratio to sidecar (nodemesh); path checks below. */
export function markdownReport(doc: BenchDoc): string {
  const rows = reportRows(doc);
  const modes = doc.modes;
  const head = (title: string): string[] => [`| ${title} | ${modes.map((m) => m.label).join(' | ')} |`, `| --- | ${modes.map(() => '---:').join(' | ')} |`];
  const plain = modes.find((m) => m.mode === 'plain');
  const sidecar = modes.find((m) => m.mode === 'sidecar');
  // A mode left out of this run (--modes) or one that cannot run yet.
  const unavailable = (m: ModeResult): string => (m.note?.startsWith('not run') ? 'not run' : 'not yet');
  const out: string[] = [
    `## nodemesh side by side (${doc.quick ? 'quick run: seconds per mode, numbers are indicative only' : 'full run'})`,
    '',
    `Machine: ${doc.machine.nproc} CPUs (${doc.machine.cpuModel}), ${doc.machine.memTotalMiB} MiB, kernel ${doc.machine.kernel}, Node ${doc.machine.node}, commit ${doc.machine.gitCommit}${doc.machine.gitDirty ? ' (dirty)' : ''}; ${doc.startedAt}.`,
    'Client pod on node-1, server pod on node-2 (same node: both on node-1), 1 KiB POST and 1 KiB response, latency open loop from the intended send time (coordinated-omission safe).',
    '',
    ...head('values'),
  ];
  for (const r of rows) out.push(`| ${r.label} | ${modes.map((m) => (m.available ? cell(r.get(m), r.digits) : unavailable(m))).join(' | ')} |`);
  for (const [title, base] of [['ratio to no mesh', plain], ['ratio to sidecar (nodemesh)', sidecar]] as const) {
    if (!base) continue;
    out.push('', ...head(title));
    // A row without any ratio (the base is zero: no mesh has no mesh CPU or memory) says nothing.
    for (const r of rows.filter((x) => modes.some((m) => m.available && m !== base && ratio(x.get(m), x.get(base)) !== null))) {
      out.push(`| ${r.label} | ${modes.map((m) => (m.available ? rcell(ratio(r.get(m), r.get(base))) : unavailable(m))).join(' | ')} |`);
    }
  }
  out.push('', '| path check | ' + modes.map((m) => m.label).join(' | ') + ' |', `| --- | ${modes.map(() => '---').join(' | ')} |`);
  for (const placement of ['cross-node', 'same-node'] as const) {
    out.push(`| ${placement} | ${modes.map((m) => {
      if (!m.available) return unavailable(m);
      const c = m.pathChecks.find((x) => x.placement === placement);
      return c ? (c.ok ? 'passed' : `FAILED: ${c.problems.join('; ')}`) : 'n/a';
    }).join(' | ')} |`);
  }
  if (doc.notes.length) out.push('', 'Notes:', ...doc.notes.map((n) => `- ${n}`));
  return `${out.join('\n')}\n`;
}

/** The charts: latency percentiles per mode and rate, memory vs pods per node, CPU per 1,000. */
export function chartsSvg(doc: BenchDoc): { name: string; svg: string }[] {
  const modes = doc.modes.filter((m) => m.available);
  const series = modes.map((m) => m.label);
  const first = modes[0];
  const cross = (first?.latency ?? []).filter((r) => r.placement === 'cross-node' && r.connMode === 'keepalive');
  const others = (first?.latency ?? []).filter((r) => !(r.placement === 'cross-node' && r.connMode === 'keepalive'));
  const pcts = [['p50', 'p50Ms'], ['p90', 'p90Ms'], ['p99', 'p99Ms'], ['p99.9', 'p999Ms']] as const;
  const panel = (r: LatencyRow, title: string) => ({
    title, groups: pcts.map(([label, k]) => ({ label, values: modes.map((m) => lat(m, r.scenario)?.latency[k] ?? null) })),
  });
  const sub = `${doc.quick ? 'QUICK run (indicative only); ' : ''}1 KiB HTTP, open loop, client node-1 -> server node-2; ${doc.startedAt.slice(0, 16)}Z`;
  const out = [
    { name: 'latency.svg', svg: barChartSvg({ title: 'Latency percentiles by mode and rate (keep-alive)', subtitle: sub, yLabel: 'milliseconds', series, panels: cross.map((r) => panel(r, `${r.rate} req/s`)) }) },
  ];
  if (others.length) {
    out.push({ name: 'latency-other.svg', svg: barChartSvg({ title: 'Latency: new connection per request, and the same-node path', subtitle: sub, yLabel: 'milliseconds', series,
      panels: others.map((r) => panel(r, `${r.placement === 'same-node' ? 'same node ' : ''}${r.connMode} @ ${r.rate}/s`)) }) });
  }
  out.push({ name: 'memory-pods.svg', svg: lineChartSvg({
    title: 'Mesh memory as enrolled pods per node grow', subtitle: 'sum of RSS of every mesh process on the node (no mesh: none)', xLabel: 'pods on the node', yLabel: 'MiB',
    series: modes.map((m) => ({ name: m.label, points: m.memoryVsPods.map((p) => ({ x: p.podsPerNode, y: p.meshRssMiB })) })),
  }) });
  const ka = first?.latency.find((r) => r.placement === 'cross-node' && r.connMode === 'keepalive' && r.rate === 1000) ?? cross[0];
  const nc = first?.latency.find((r) => r.placement === 'cross-node' && r.connMode === 'new-conn');
  // One panel each: the three regimes differ by an order of magnitude.
  const cpuPanels = [
    ...(ka ? [{ title: 'per 1,000 requests', label: `(keep-alive @ ${ka.rate}/s)`, values: modes.map((m) => lat(m, ka.scenario)?.meshCpuMsPer1k ?? null) }] : []),
    ...(nc ? [{ title: 'per 1,000 new connections', label: `(@ ${nc.rate}/s)`, values: modes.map((m) => lat(m, nc.scenario)?.meshCpuMsPer1k ?? null) }] : []),
    { title: 'per 1,000 requests at max', label: '(wrk, 64 connections)', values: modes.map((m) => m.maxRps.wrk?.meshCpuMsPer1k ?? null) },
  ].map((p) => ({ title: p.title, groups: [{ label: p.label, values: p.values }] }));
  out.push({ name: 'cpu.svg', svg: barChartSvg({ title: 'Mesh CPU (all mesh processes, both nodes)', subtitle: sub, yLabel: 'CPU milliseconds', series, panels: cpuPanels }) });
  const wp = modes.find((m) => m.latency.some((r) => r.waypoint));
  if (wp) {
    // Where ambient + waypoint's CPU goes: the node daemons (both) and the waypoint.
    const rows = wp.latency.filter((r) => r.waypoint);
    const daemons = (r: LatencyRow): number | null => (r.meshCpuMsPer1k === null || r.waypoint?.cpuMsPer1k == null ? null : Math.round((r.meshCpuMsPer1k - r.waypoint.cpuMsPer1k) * 100) / 100);
    out.push({ name: 'waypoint-cpu.svg', svg: barChartSvg({
      title: 'ambient + waypoint: CPU per 1,000 requests, node daemons and waypoint', subtitle: sub, yLabel: 'CPU milliseconds', series: ['node daemons (both)', 'waypoint'],
      panels: [{ title: '', groups: rows.map((r) => ({ label: `${r.placement === 'same-node' ? 'same node ' : ''}${r.connMode} (@ ${r.rate}/s)`, values: [daemons(r), r.waypoint!.cpuMsPer1k] })) }],
    }) });
  }
  const held = modes.find((m) => m.memoryVsConns.length)?.memoryVsConns ?? [];
  if (held.length) {
    out.push({ name: 'memory-conns.svg', svg: barChartSvg({ title: 'Mesh memory with many connections held open', subtitle: 'sum of RSS of every mesh process, both nodes', yLabel: 'MiB', series,
      panels: [{ title: '', groups: [{ label: 'before', values: modes.map((m) => m.memoryVsConns[0]?.beforeMiB ?? null) },
        ...held.map((c) => ({ label: `${c.connections} held`, values: modes.map((m) => m.memoryVsConns.find((x) => x.connections === c.connections)?.heldMiB ?? null) })),
        { label: 'after close', values: modes.map((m) => m.memoryVsConns[m.memoryVsConns.length - 1]?.afterMiB ?? null) }] }] }) });
  }
  return out;
}
