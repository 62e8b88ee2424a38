// The l4-latency orchestrator's pure parts: arguments, medians, ratios, the path check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPaths, manifest, median, medianMetrics, parseArgs, parseScenarios, ratio, saturationNotes, type PhaseMetrics } from './l4-latency';
import type { PhaseResult } from './l4-loadgen';

test('parseScenarios and parseArgs: defaults, bounds, named errors', () => {
  assert.deepEqual(parseScenarios('keepalive@200, new-conn@1000'), [{ mode: 'keepalive', rate: 200 }, { mode: 'new-conn', rate: 1000 }]);
  assert.throws(() => parseScenarios('pipelined@200'), /pipelined@200/);
  assert.throws(() => parseScenarios('keepalive@0'), /rate 0/);
  const a = parseArgs([]);
  assert.equal(a.rounds, 3);
  assert.equal(a.seconds, 15);
  assert.equal(a.scenarios.length, 4);
  assert.equal(parseArgs(['--rounds', '2', '--seconds', '5']).rounds, 2);
  assert.throws(() => parseArgs(['--seconds', '600']), /--seconds/);
  assert.throws(() => parseArgs(['--bogus', '1']), /unknown option --bogus/);
  assert.throws(() => parseArgs(['--rounds']), /needs a value/);
});

test('median and ratio', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.ok(Number.isNaN(median([])));
  assert.equal(ratio(3, 2), 1.5);
  assert.equal(ratio(3, 0), null);
});

const metrics = (p50: number, daemon: number | null): PhaseMetrics => ({
  p50Ms: p50, p90Ms: p50, p99Ms: p50, p999Ms: p50, maxMs: p50, meanMs: p50, serviceP50Ms: p50, serviceP99Ms: p50, sendLagP99Ms: 1,
  achievedRate: 200, ok: 3000, errors: 0, cpuPer1k: { 'daemon node-1': daemon }, cpuPct: { 'daemon node-1': daemon }, rssMaxMiB: { 'daemon node-1': 80 },
  daemonsCpuPer1k: daemon, daemonsCpuPct: daemon, serverPodCpuPer1k: 0.2, serverPodCpuPct: 4,
  cpuCores: { busy: 0.2, daemons: daemon, identity: 0, loadgen: 0.05, serverPod: 0.04, other: 0.01 }, loadgenCpuPct: 5, loadgenCpuPer1k: 0.1, machineBusyPct: 10,
});

test('medianMetrics: per field over rounds; a round that lacks a number makes it null, not a guess', () => {
  const m = medianMetrics([metrics(1, 0.5), metrics(3, 0.7), metrics(2, 0.6)]);
  assert.equal(m.p50Ms, 2);
  assert.equal(m.daemonsCpuPer1k, 0.6);
  assert.equal(m.cpuPct['daemon node-1'], 0.6);
  assert.equal(m.cpuCores.daemons, 0.6);
  assert.equal(medianMetrics([metrics(1, 0.5), metrics(3, null)]).daemonsCpuPer1k, null);
});

test('saturationNotes: errors and a saturated process are said, a clean phase says nothing', () => {
  const r = { scheduled: 3000, ok: 3000, errorCount: 0, errors: {}, achievedRate: 200, offeredRate: 200, machine: { cores: 2, busyShare: 0.1 } } as unknown as PhaseResult;
  assert.deepEqual(saturationNotes('x', r, metrics(1, 0.5)), []);
  const bad = { ...r, ok: 2000, errorCount: 1000, errors: { timeout: 1000 }, achievedRate: 130 } as PhaseResult;
  const m = { ...metrics(1, 0.5), cpuPct: { 'daemon node-1': 97 }, machineBusyPct: 99, cpuCores: { busy: 1.98, daemons: 1.5, identity: 0, loadgen: 0.3, serverPod: 0.1, other: 0.08 } };
  const notes = saturationNotes('x', bad, m).join('\n');
  assert.match(notes, /CPU-saturated .*cores used: daemons 1\.50, loadgen 0\.30, serverPod 0\.10, other 0\.08/);
  assert.match(saturationNotes('x', r, { ...m, machineBusyPct: 83, cpuPct: {} }).join('\n'), /near CPU saturation/);
  assert.match(notes, /daemon node-1 used 97% of one core/);
  assert.match(notes, /only 2000 of 3000/);
  assert.match(notes, /did not keep up/);
});

test('checkPaths: the mesh arm must be HBONE with both identities; the plain arm must bypass the daemons', () => {
  const out = { direction: 'outbound', pod: { namespace: 'mesh', name: 'client' }, path: 'hbone', verdict: 'allow', sourceIdentity: 'spiffe://cluster.local/ns/mesh/sa/client', destinationIdentity: 'spiffe://cluster.local/ns/mesh/sa/server' };
  const inb = { direction: 'inbound-hbone', pod: { namespace: 'mesh', name: 'server' }, verdict: 'allow', sourceIdentity: 'spiffe://cluster.local/ns/mesh/sa/client', destinationIdentity: 'spiffe://cluster.local/ns/mesh/sa/server' };
  assert.equal(checkPaths([{ node: 'node-1', connections: [out] }, { node: 'node-2', connections: [inb] }]).ok, true);
  const passthrough = checkPaths([{ node: 'node-1', connections: [{ ...out, path: 'passthrough' }] }, { node: 'node-2', connections: [inb] }]);
  assert.equal(passthrough.ok, false);
  assert.match(passthrough.summary, /no outbound HBONE/);
  const plainSeen = checkPaths([{ node: 'node-1', connections: [out, { ...out, pod: { namespace: 'plain', name: 'client' } }] }, { node: 'node-2', connections: [inb] }]);
  assert.match(plainSeen.summary, /plain namespace/);
  assert.match(checkPaths([{ node: 'node-1', error: 'ECONNREFUSED', connections: [] }, { node: 'node-2', connections: [inb] }]).summary, /did not answer/);
});

test('manifest: two namespaces, only mesh enrolled, clients on node-1, servers on node-2', () => {
  const y = manifest({ size: 1024, clientSleepSeconds: 100 });
  assert.equal((y.match(/nodemesh\.io\/dataplane-mode: ambient/g) ?? []).length, 1);
  assert.equal((y.match(/nodeName: node-1/g) ?? []).length, 2);
  assert.equal((y.match(/nodeName: node-2/g) ?? []).length, 2);
  assert.match(y, /l4-server\.js", "--port", "8080", "--size", "1024"/);
});
