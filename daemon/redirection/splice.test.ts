// The splice's pure parts: the setting, the drain arithmetic, pin directory pruning, and
// holding/resuming Node's reads (unprivileged; the kernel path is test/e2e/same-node-splice).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { removeSplicePins, spliceSetting, splicePinDir } from './splice';
import { holdReads, resumeReads, undelivered, unread } from './splice-pipe';

describe('NODEMESH_SAME_NODE_SPLICE', () => {
  it('off by default, on when asked, off (and reported, bounded) for anything else', () => {
    assert.deepEqual(spliceSetting({}), { enabled: false });
    assert.deepEqual(spliceSetting({ NODEMESH_SAME_NODE_SPLICE: ' ON ' }), { enabled: true });
    assert.deepEqual(spliceSetting({ NODEMESH_SAME_NODE_SPLICE: 'off' }), { enabled: false });
    const bad = spliceSetting({ NODEMESH_SAME_NODE_SPLICE: 'yes'.repeat(100) });
    assert.equal(bad.enabled, false);
    assert.ok(bad.invalid && bad.invalid.length <= 32);
  });
});

describe('undelivered bytes of a spliced direction', () => {
  it('counts the FIN once the source ended and the baseline of the destination (SYN of an active open)', () => {
    // 1000 bytes and a FIN received; destination (active open, SYN acked = base 1) acked 600, 400 unacked.
    assert.equal(undelivered(1001, true, 601, 400, 1), 0);
    // 100 still queued in the kernel for the destination.
    assert.equal(undelivered(1001, true, 501, 400, 1), 100);
    // Passive open destination (base 0), source still open.
    assert.equal(undelivered(5000, false, 4000, 1000, 0), 0);
  });
});

describe('splice pin directories', () => {
  it('prunes the directories of dead processes, keeps live ones, removes all on uninstall', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'splice-pins-'));
    try {
      const live = splicePinDir(root, process.pid);
      const dead = splicePinDir(root, 2 ** 22 + 12345); // above pid_max's ceiling: never a live pid
      for (const d of [live, dead]) {
        fs.mkdirSync(d, { recursive: true });
        fs.writeFileSync(path.join(d, 'nm_splice_peer'), '');
      }
      assert.deepEqual(removeSplicePins(root, { all: false }), [dead]);
      assert.ok(fs.existsSync(live));
      assert.deepEqual(removeSplicePins(root, { all: true }), [live]);
      assert.ok(!fs.existsSync(path.join(root, 'splice')));
      assert.deepEqual(removeSplicePins(root, { all: true }), []);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('holding reads until the splice', () => {
  it('no byte reaches the stream while held; resumeReads gets them all, in order', async () => {
    let accepted!: (s: net.Socket) => void;
    const got = new Promise<net.Socket>((r) => { accepted = r; });
    const server = net.createServer({ pauseOnConnect: false }, (s) => { holdReads(s); accepted(s); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const c = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    try {
      c.write('first ');
      const s = await got;
      c.write('second');
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(s.bytesRead, 0);
      assert.ok(unread(s));
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      const ended = new Promise((r) => s.once('end', r));
      resumeReads(s);
      c.end();
      await ended;
      assert.equal(Buffer.concat(chunks).toString(), 'first second');
      assert.ok(!unread(s));
      s.destroy();
    } finally {
      c.destroy();
      server.close();
    }
  });
});
