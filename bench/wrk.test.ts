// wrk's script and report parsing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDurationMs, parseWrk, wrkScript } from './wrk';

const REPORT = `Running 5s test @ http://10.96.0.10:80/bench
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.12ms    1.03ms  40.10ms   90.00%
    Req/Sec    12.51k   512.00    13.00k    80.00%
  Latency Distribution
     50%    4.98ms
     75%    5.50ms
     90%    6.20ms
     99%    9.87ms
  62280 requests in 5.00s, 71.23MB read
  Socket errors: connect 0, read 3, write 0, timeout 1
  Non-2xx or 3xx responses: 2
Requests/sec:  12455.10
Transfer/sec:     14.25MB
`;

test('parseWrk: rate, percentiles, errors', () => {
  const r = parseWrk(REPORT);
  assert.equal(r.requests, 62280);
  assert.equal(r.seconds, 5);
  assert.equal(r.requestsPerSecond, 12455.1);
  assert.deepEqual(r.latencyMs, { p50: 4.98, p90: 6.2, p99: 9.87, avg: 5.12, max: 40.1 });
  assert.deepEqual(r.socketErrors, { connect: 0, read: 3, write: 0, timeout: 1 });
  assert.equal(r.non2xx, 2);
  assert.equal(r.transferPerSecondBytes, Math.round(14.25 * 1024 * 1024));
  assert.throws(() => parseWrk('wrk: command not found'), /not a wrk report/);
});

test('parseDurationMs and wrkScript', () => {
  assert.equal(parseDurationMs('812.00us'), 0.812);
  assert.equal(parseDurationMs('1.50s'), 1500);
  assert.equal(parseDurationMs('x'), null);
  assert.match(wrkScript(1024, false), /string.rep\("b", 1024\)/);
  assert.ok(!wrkScript(1024, false).includes('Connection'));
  assert.match(wrkScript(10, true), /Connection"\] = "close"/);
  assert.throws(() => wrkScript(-1, false));
});
