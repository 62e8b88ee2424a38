// The admin listeners where item 6 of issue 7 wants them: the unix socket 0600 in a 0700
// directory and taken over atomically by a newer daemon; admin on loopback only; readiness
// and metrics dual-stack; readiness 503 with its reasons.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { startAdminServers } from './admin-server';

function get(opts: { socketPath?: string; host?: string; port?: number; path: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...opts, method: 'GET', agent: false, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('admin servers', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nm-admin-'));
  const sock = path.join(dir, 'node', 'admin.sock');
  const servers: http.Server[] = [];
  let ready = { ready: false, reasons: ['certificate for shop/web is pending'] };
  after(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const cfg = { adminPort: 0, metricsPort: 0, readinessPort: 0, adminSocket: sock };
  const routes = { ready: () => ready, json: { '/debug/who': () => ({ who: servers.length }) } };

  it('binds admin on loopback, readiness and metrics on [::] dual-stack, the socket 0600 in a 0700 directory', async () => {
    servers.push(...await startAdminServers(cfg, routes, new Registry()));
    const [admin, , readiness, metrics] = servers.map((s) => s.address() as net.AddressInfo | string);
    assert.equal((admin as net.AddressInfo).address, '127.0.0.1');
    assert.equal((readiness as net.AddressInfo).address, '::');
    assert.equal((metrics as net.AddressInfo).address, '::');
    assert.equal((fs.statSync(sock).mode & 0o777).toString(8), '600');
    assert.equal((fs.statSync(path.dirname(sock)).mode & 0o777).toString(8), '700');
    assert.deepEqual(fs.readdirSync(path.dirname(sock)), ['admin.sock'], 'no staging name left behind');
    const port = (readiness as net.AddressInfo).port;
    for (const host of ['127.0.0.1', '::1']) {
      const r = await get({ host, port, path: '/healthz/ready' });
      assert.equal(r.status, 503, host);
      assert.equal(r.body, 'not ready: certificate for shop/web is pending\n');
    }
    ready = { ready: true, reasons: [] };
    assert.equal((await get({ socketPath: sock, path: '/healthz/ready' })).status, 200);
  });

  it('a second set of servers takes the socket path over; closing the first leaves it in place', async () => {
    const second = await startAdminServers({ ...cfg }, { ...routes, json: { '/debug/who': () => ({ who: 'second' }) } }, new Registry());
    assert.equal((await get({ socketPath: sock, path: '/debug/who' })).body.includes('second'), true);
    const first = servers.splice(0, servers.length, ...second);
    await Promise.all(first.map((s) => new Promise((r) => s.close(r))));
    assert.ok(fs.existsSync(sock), 'the older daemon\'s close did not remove the newer one\'s socket');
    assert.equal((await get({ socketPath: sock, path: '/debug/who' })).body.includes('second'), true);
  });
});
