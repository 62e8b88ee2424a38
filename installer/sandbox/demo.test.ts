import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { splitScript } from './demo';

/** A loopback server answering the i-th request with versions[i] (or a 503 for 'fail'). */
async function withServer(versions: string[], run: (url: string) => Promise<void>): Promise<void> {
  let i = 0;
  const server = http.createServer((_req, res) => {
    const v = versions[i++ % versions.length]!;
    if (v === 'fail') { res.writeHead(503, { 'nodemesh-reason': 'upstream reset before the response' }); res.end(); return; }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ version: v }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try { await run(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`); } finally { server.close(); }
}

/** Runs the script in a child (asynchronously: the server above answers in this process). */
const runScript = (url: string, n: number) => new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
  execFile(process.execPath, ['-e', splitScript(url, n)], { encoding: 'utf8', timeout: 30_000 }, (e, stdout, stderr) =>
    resolve({ status: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr }));
});
const share = (v1: number, v2: number, fail = 0) => [...Array(v1).fill('v1'), ...Array(v2).fill('v2'), ...Array(fail).fill('fail')];

test('the demo\'s split run: counts each version, accepts 90/10 within tolerance, refuses a split far from it or too many failures', async () => {
  await withServer(share(180, 20), async (url) => {
    const r = await runScript(url, 200);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /api v1\s+180\s+90\.0%/);
    assert.match(r.stdout, /api v2\s+20\s+10\.0%/);
  });
  await withServer(share(197, 3), async (url) => assert.equal((await runScript(url, 200)).status, 1, 'v2 3 in 200 is no 90/10 split'));
  await withServer(share(196, 4), async (url) => assert.equal((await runScript(url, 200)).status, 0, 'v2 4 in 200 is at the edge of the tolerance'));
  await withServer(share(163, 37), async (url) => assert.equal((await runScript(url, 200)).status, 1, 'v2 37 in 200 is too many'));
  await withServer(share(100, 100), async (url) => assert.equal((await runScript(url, 200)).status, 1, 'v2 half is no 90/10 split'));
  await withServer(share(177, 20, 3), async (url) => {
    const r = await runScript(url, 200);
    assert.equal(r.status, 1, 'three failures are too many');
    assert.match(r.stdout, /failed 3: 503 upstream reset before the response/);
  });
  await withServer(share(178, 20, 2), async (url) => assert.equal((await runScript(url, 200)).status, 0, 'two failures are tolerated (and shown)'));
});
