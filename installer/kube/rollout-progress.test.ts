import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { formatProgress, podLagReason, rolloutProgress, type PodLike } from './rollout-progress';
import { certificatesFromMetrics, enrolledPerNode } from './cluster-status';
import { parseDuration } from './cli-commands';

function pod(node: string, gen: number, o: { ready?: boolean; waiting?: string; deleting?: boolean; unscheduled?: string } = {}): PodLike {
  return {
    metadata: { name: `d-${node}`, labels: { 'pod-template-generation': String(gen) }, deletionTimestamp: o.deleting ? '2026-01-01T00:00:00Z' : undefined },
    spec: { nodeName: node },
    status: {
      phase: o.ready ? 'Running' : 'Pending',
      conditions: [
        ...(o.unscheduled ? [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: o.unscheduled }] : []),
        { type: 'Ready', status: o.ready ? 'True' : 'False', reason: o.ready ? undefined : 'ContainersNotReady' },
      ],
      containerStatuses: o.waiting ? [{ name: 'nodemesh-node', restartCount: 3, state: { waiting: { reason: o.waiting } } }] : [],
    },
  };
}

test('podLagReason: why a node is not done', () => {
  const cases: [PodLike, string | undefined][] = [
    [pod('n1', 2, { ready: true }), undefined],
    [pod('n1', 1, { ready: true }), 'runs the previous version (pod-template-generation 1, want 2)'],
    [pod('n1', 2, { waiting: 'CrashLoopBackOff' }), 'nodemesh-node: CrashLoopBackOff (3 restarts)'],
    [pod('n1', 2, { deleting: true, ready: true }), 'terminating (being replaced)'],
    [pod('n1', 2, { unscheduled: '0/3 nodes are available' }), 'not scheduled: Unschedulable 0/3 nodes are available'],
    [pod('n1', 2), 'not ready: ContainersNotReady (readiness on :15021/healthz/ready)'],
  ];
  for (const [p, want] of cases) assert.equal(podLagReason(p, 2), want);
  assert.equal(podLagReason(pod('n1', 2), 2, [{ type: 'Warning', involvedObject: { name: 'd-n1' }, reason: 'FailedMount', message: 'configmap "nodemesh-ca-root" not found' }]),
    'FailedMount: configmap "nodemesh-ca-root" not found');
});

test('rolloutProgress: done only when the controller observed the spec and every node is updated and ready', () => {
  const ds = (observed: number, desired: number, updated: number, ready: number) => ({
    metadata: { generation: 2 }, status: { observedGeneration: observed, desiredNumberScheduled: desired, updatedNumberScheduled: updated, numberReady: ready, numberAvailable: ready },
  });
  assert.equal(rolloutProgress(ds(1, 2, 2, 2), []).done, false);
  assert.equal(rolloutProgress(ds(2, 2, 1, 2), []).done, false);
  assert.equal(rolloutProgress(ds(2, 2, 2, 1), []).done, false);
  assert.equal(rolloutProgress(ds(2, 2, 2, 2), []).done, true);
  const p = rolloutProgress(ds(2, 3, 2, 1), [pod('n3', 1, { ready: true }), pod('n1', 2, { ready: true }), pod('n2', 2, { waiting: 'ImagePullBackOff' })]);
  assert.deepEqual(p.lagging.map((l) => l.node), ['n2', 'n3']);
  assert.equal(formatProgress(p, 'daemonset/x'),
    'daemonset/x: 1/3 nodes ready, 2/3 updated\n  n2 (d-n2): nodemesh-node: ImagePullBackOff (3 restarts)\n  n3 (d-n3): runs the previous version (pod-template-generation 1, want 2)');
});

test('enrolledPerNode: pod label wins over the namespace label; finished and host-network pods do not count', () => {
  const p = (ns: string, node: string, labels: Record<string, string> = {}, phase = 'Running', hostNetwork = false) =>
    ({ metadata: { name: 'p', namespace: ns, labels }, spec: { nodeName: node, hostNetwork }, status: { phase } });
  const nss = [{ metadata: { name: 'a', labels: { 'nodemesh.io/dataplane-mode': 'ambient' } } }, { metadata: { name: 'b' } }];
  const counts = enrolledPerNode([
    p('a', 'n1'), p('a', 'n1', { 'nodemesh.io/dataplane-mode': 'none' }), p('a', 'n1', {}, 'Succeeded'), p('a', 'n2', {}, 'Running', true),
    p('b', 'n2'), p('b', 'n2', { 'nodemesh.io/dataplane-mode': 'ambient' }),
  ], nss);
  assert.deepEqual([...counts], [['n1', 1], ['n2', 1]]);
});

test('certificatesFromMetrics and parseDuration', () => {
  const text = '# HELP nodemesh_certificate_expiry_seconds x\nnodemesh_certificate_expiry_seconds{identity="a"} 3600\nnodemesh_certificate_expiry_seconds{identity="b"} 120\nother 1\n';
  assert.deepEqual(certificatesFromMetrics(text), { reachable: true, certificates: 2, soonestExpirySeconds: 120 });
  assert.deepEqual(certificatesFromMetrics(''), { reachable: true, certificates: 0, soonestExpirySeconds: undefined });
  for (const [v, s] of [['90', 90], ['90s', 90], ['5m', 300], ['1h30m', 5400]] as const) assert.equal(parseDuration(v), s);
  for (const v of ['', '0', 'soon', '5x', '-1']) assert.throws(() => parseDuration(v), v);
});

test('consoleProgress: a pipe gets one line per change; a terminal redraws the block in place', async () => {
  const { consoleProgress } = await import('./cli-commands');
  const sink = (isTTY: boolean) => {
    const chunks: string[] = [];
    return { chunks, stream: { isTTY, write: (s: string) => { chunks.push(s); return true; } } as unknown as NodeJS.WriteStream };
  };
  const pipe = sink(false);
  const p = consoleProgress(pipe.stream);
  p.progress('a: 0/2\n  n1: x');
  p.progress('a: 0/2\n  n1: x');
  p.progress('a: 1/2');
  p.line('done');
  assert.deepEqual(pipe.chunks, ['a: 0/2\n  n1: x\n', 'a: 1/2\n', 'done\n']);
  const tty = sink(true);
  const t = consoleProgress(tty.stream);
  t.progress('a: 0/2\n  n1: x');
  t.progress('a: 1/2');
  t.line('applied');
  assert.deepEqual(tty.chunks, ['a: 0/2\n  n1: x\n', '\x1b[2F\x1b[J', 'a: 1/2\n', '\x1b[1F\x1b[J', 'applied\n']);
});
