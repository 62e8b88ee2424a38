// The sample app on loopback only: http -> http -> tcp-echo, and a bounded load run.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { runLoad, serveHttp, serveTcpEcho } from './sample-app';

async function listening<T extends { address(): unknown; once(e: 'listening', f: () => void): unknown }>(s: T): Promise<number> {
  await once(s as never, 'listening');
  return (s.address() as AddressInfo).port;
}

test('web -> api -> db chain, nested answers, bounded load summary', async () => {
  const db = serveTcpEcho({ port: 0, host: '127.0.0.1' });
  const dbPort = await listening(db);
  const api = serveHttp({ port: 0, host: '127.0.0.1', version: 'v2', upstream: `tcp://127.0.0.1:${dbPort}` });
  const apiPort = await listening(api);
  const web = serveHttp({ port: 0, host: '127.0.0.1', version: 'v1', upstream: `http://127.0.0.1:${apiPort}/` });
  const webPort = await listening(web);
  try {
    let out = '';
    const started = Date.now();
    const code = await runLoad({ url: `http://127.0.0.1:${webPort}/shop`, rps: 50, duration: 5, maxRequests: 10, concurrency: 4, show: 1 }, (s) => { out += s; });
    assert.ok(Date.now() - started < 4000, 'bounded by max-requests at 50 rps');
    assert.equal(code, 0, out);
    const summary = JSON.parse(out) as { requests: number; ok: number; versions: Record<string, number>; samples: Record<string, unknown>[] };
    assert.equal(summary.requests, 10);
    assert.equal(summary.ok, 10);
    assert.deepEqual(summary.versions, { v1: 10 });
    const sample = summary.samples[0] as { version: string; path: string; localAddress: string; upstream: { version: string; upstream: { hello: string; echo: string } } };
    assert.equal(sample.version, 'v1');
    assert.equal(sample.path, '/shop');
    assert.equal(sample.localAddress, `127.0.0.1:${webPort}`);
    assert.equal(sample.upstream.version, 'v2');
    assert.match(sample.upstream.upstream.hello, new RegExp(`^hello from \\S+ 127\\.0\\.0\\.1:${dbPort} to 127\\.0\\.0\\.1:\\d+$`));
    assert.match(sample.upstream.upstream.echo, /^ping from /);
  } finally {
    web.close(); api.close(); db.close();
  }
});

test('an unreachable upstream is a 502 with the error, and load counts failures', async () => {
  const web = serveHttp({ port: 0, host: '127.0.0.1', version: 'v1', upstream: 'tcp://127.0.0.1:1' });
  const port = await listening(web);
  try {
    let out = '';
    const code = await runLoad({ url: `http://127.0.0.1:${port}/`, rps: 100, duration: 2, maxRequests: 3, concurrency: 1, show: 1 }, (s) => { out += s; });
    assert.equal(code, 1);
    const summary = JSON.parse(out) as { failed: number; statuses: Record<string, number>; samples: { upstream: { error: string } }[] };
    assert.equal(summary.failed, 3);
    assert.deepEqual(summary.statuses, { 502: 3 });
    assert.match(summary.samples[0]!.upstream.error, /ECONNREFUSED/);
  } finally {
    web.close();
  }
});
