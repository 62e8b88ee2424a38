// The l4-latency load generator's pure parts, and its accounting against a loopback server.
// No assertion on any timing: benches report numbers, tests only check that every request is
// counted exactly once, as ok or as an error of a named kind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { buildRequest, parseResponseHead, runPhase, schedule, validateSpec, type LoadSpec } from './l4-loadgen';
import { serveBench, responseBody } from './l4-server';
import { parseMachineCpu, parseProcStat, parseVmRss, parseVoluntarySwitches } from './proc-stats';

const head = (s: string) => parseResponseHead(Buffer.from(s, 'latin1'));

test('parseResponseHead: the cases the bench server and broken peers produce', () => {
  const ok = 'HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n';
  assert.deepEqual(head(ok), { kind: 'head', status: 200, contentLength: 1024, headerBytes: ok.length, close: false });
  const closing = 'HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nConnection: close\r\n\r\n';
  assert.deepEqual(head(`${closing}xyz`), { kind: 'head', status: 503, contentLength: 0, headerBytes: closing.length, close: true });
  assert.equal((head('HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n') as { close?: boolean }).close, true);
  assert.deepEqual(head('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n'), { kind: 'incomplete' });
  assert.deepEqual(head('SSH-2.0-OpenSSH\r\n\r\n'), { kind: 'error', reason: 'bad-status-line' });
  assert.deepEqual(head('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'), { kind: 'error', reason: 'unsupported-transfer-encoding' });
  assert.deepEqual(head('HTTP/1.1 200 OK\r\n\r\n'), { kind: 'error', reason: 'no-content-length' });
  assert.deepEqual(head('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n'), { kind: 'error', reason: 'bad-content-length' });
  assert.deepEqual(head('HTTP/1.1 200 OK\r\nno colon\r\n\r\n'), { kind: 'error', reason: 'bad-header' });
  assert.deepEqual(parseResponseHead(Buffer.alloc(17 * 1024, 0x41)), { kind: 'error', reason: 'head-too-large' });
});

test('buildRequest: a POST with the body size announced and sent', () => {
  const b = buildRequest('10.96.0.10', 80, '/bench', 1024, false);
  const text = b.toString('latin1');
  const end = text.indexOf('\r\n\r\n') + 4;
  assert.match(text, /^POST \/bench HTTP\/1\.1\r\nHost: 10\.96\.0\.10:80\r\n/);
  assert.match(text.slice(0, end), /Content-Length: 1024\r\n/);
  assert.doesNotMatch(text.slice(0, end), /Connection: close/);
  assert.equal(b.length - end, 1024);
  assert.match(buildRequest('10.0.0.1', 8080, '/', 0, true).toString('latin1'), /Connection: close\r\n\r\n$/);
});

test('schedule: bounded by count and by time; request i is due at i/rate', () => {
  assert.equal(schedule(1000, 15, 1e9).total, 15_000);
  assert.equal(schedule(1000, 15, 100).total, 100);
  assert.equal(schedule(200, 0.5, 1e9).total, 100);
  const s = schedule(200, 1, 1e9);
  assert.equal(s.dueMs(0), 0);
  assert.equal(s.dueMs(1), 5);
  assert.equal(s.dueMs(199), 995);
});

const spec = (o: Partial<LoadSpec>): LoadSpec => ({
  host: '127.0.0.1', port: 1, path: '/bench', rate: 500, seconds: 0.5, maxRequests: 40, mode: 'keepalive', conns: 4,
  bodySize: 1024, expectBodySize: 1024, timeoutMs: 2000, drainMs: 3000, watchPids: [], watchCgroups: [], clkTck: 100, ...o,
});

test('validateSpec: names the wrong field', () => {
  assert.doesNotThrow(() => validateSpec(spec({})));
  assert.throws(() => validateSpec({ ...spec({}), host: 'example.com' }), /spec\.host/);
  assert.throws(() => validateSpec({ ...spec({}), mode: 'pipelined' }), /spec\.mode/);
  assert.throws(() => validateSpec({ ...spec({}), rate: 0 }), /spec\.rate/);
  assert.throws(() => validateSpec({ ...spec({}), seconds: 1000 }), /spec\.seconds/);
  assert.throws(() => validateSpec({ ...spec({}), watchPids: [{ name: 'x', pid: -1 }] }), /spec\.watchPids/);
});

test('proc-stats parsers', () => {
  // A command name with spaces and a parenthesis, as /proc shows it.
  const stat = '4242 (node (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 11 0 987654 1000000 20000 18446744073709551615';
  assert.deepEqual(parseProcStat(stat, 100), { cpuSeconds: 3, startTime: '987654' });
  assert.equal(parseProcStat('garbage'), undefined);
  assert.equal(parseVmRss('Name:\tnode\nVmRSS:\t   80644 kB\nVmData: 1 kB\n'), 80644 * 1024);
  assert.equal(parseVmRss('Name:\tkthreadd\n'), undefined);
  assert.equal(parseVoluntarySwitches('Name:\tnode\nvoluntary_ctxt_switches:\t15231\nnonvoluntary_ctxt_switches:\t88\n'), 15231);
  assert.equal(parseVoluntarySwitches('Name:\tnode\n'), undefined);
  assert.deepEqual(parseMachineCpu('cpu  100 5 50 800 20 1 2 3 0 0\ncpu0 1 2 3 4\n'), { busy: 161, total: 981 });
});

function listening(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.once('listening', () => resolve((server.address() as net.AddressInfo).port)));
}

test('runPhase against the bench server on loopback: every request is answered and counted once, in both modes', async () => {
  const server = serveBench({ port: 0, host: '127.0.0.1', size: 1024 });
  const port = await listening(server);
  try {
    for (const mode of ['keepalive', 'new-conn'] as const) {
      const r = await runPhase(spec({ port, mode, watchPids: [{ name: 'self', pid: process.pid }] }), 2);
      assert.equal(r.scheduled, 40, mode);
      assert.equal(r.ok, 40, `${mode}: ${JSON.stringify(r.errors)}`);
      assert.equal(r.errorCount, 0, mode);
      assert.equal(r.sent, 40, mode);
      assert.equal(r.latencyUs.count, 40, mode);
      assert.ok(r.latencyUs.p50 >= r.serviceUs.p50 || r.latencyUs.p50 > 0, mode);
      assert.equal(r.processes[0]!.alive, true);
      if (mode === 'keepalive') assert.ok(r.connectionsOpened <= 4, `pool bounded: ${r.connectionsOpened}`);
      else assert.equal(r.connectionsOpened, 40);
    }
  } finally {
    server.close();
    server.closeAllConnections();
  }
});

test('runPhase: a refusing port and a wrong body size are counted as errors, none dropped', async () => {
  // A port that was just free: connects are refused.
  const probe = net.createServer().listen(0, '127.0.0.1');
  const closedPort = await listening(probe);
  await new Promise<void>((r) => probe.close(() => r()));
  for (const mode of ['keepalive', 'new-conn'] as const) {
    const r = await runPhase(spec({ port: closedPort, mode, maxRequests: 10 }), 2);
    assert.equal(r.ok, 0, mode);
    assert.equal(r.errorCount, 10, `${mode}: ${JSON.stringify(r.errors)}`);
    assert.equal(Object.values(r.errors).reduce((a, b) => a + b, 0), 10, mode);
  }

  const short = http.createServer((req, res) => { req.resume(); req.on('end', () => res.end(responseBody(10))); }).listen(0, '127.0.0.1');
  const port = await listening(short);
  try {
    const r = await runPhase(spec({ port, maxRequests: 10 }), 2);
    assert.deepEqual(r.errors, { 'bad-length': 10 });
    assert.equal(r.ok, 0);
  } finally {
    short.close();
    short.closeAllConnections();
  }
});
