// The loader, and the addon's argument checking and error shape (no privileges needed; the
// addon must be built: `make native`, which `make test` does).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { NodemeshError } from '../daemon/errors';
import { loadNative, loadNativeFrom, nativeCandidates, repoRoot } from './index';

describe('native loader', () => {
  it('finds the repository root from the compiled file', () => {
    assert.ok(fs.existsSync(path.join(repoRoot(), 'native', 'native.d.ts')));
  });

  it('tries $NODEMESH_NATIVE_PATH first, then the build output', () => {
    const c = nativeCandidates({ NODEMESH_NATIVE_PATH: '/opt/x/nodemesh_native.node' });
    assert.deepEqual(c, ['/opt/x/nodemesh_native.node', path.join(repoRoot(), 'native', 'build', 'Release', 'nodemesh_native.node')]);
    assert.equal(nativeCandidates({}).length, 1);
  });

  it('names every path it tried when nothing loads', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nm-native-'));
    const junk = path.join(dir, 'junk.node');
    fs.writeFileSync(junk, 'not an ELF file');
    try {
      assert.throws(() => loadNativeFrom(['/nonexistent/a.node', junk]), (e: unknown) => {
        assert.ok(NodemeshError.is(e, 'NODEMESH_E_NATIVE_MISSING'));
        assert.match(e.message, /\/nonexistent\/a\.node/);
        assert.match(e.message, /junk\.node/);
        assert.match(e.message, /make native/);
        return true;
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('native addon: arguments and errors', () => {
  const n = loadNative();

  it('reports the libbpf version', () => assert.match(n.libbpfVersion(), /^1\.\d+$/));

  it('throws TypeError with usage text on wrong arguments', () => {
    const cases: [string, () => unknown, RegExp][] = [
      ['objectOpen', () => (n.objectOpen as (...a: unknown[]) => unknown)(1, ''), /usage: objectOpen\(path: string, pinRoot: string\)/],
      ['objectOpen arity', () => (n.objectOpen as (...a: unknown[]) => unknown)('x'), /usage: objectOpen/],
      ['mapUpdate', () => (n.mapUpdate as (...a: unknown[]) => unknown)(3, 'k', Buffer.alloc(1), 0), /usage: mapUpdate/],
      ['mapLookup negative size', () => (n.mapLookup as (...a: unknown[]) => unknown)(3, Buffer.alloc(1), -1), /usage: mapLookup/],
      ['socketInNetns family', () => n.socketInNetns('/proc/self/ns/net', 5, '', 0, 0, -1, 0), /usage: socketInNetns/],
      ['socketInNetns port', () => n.socketInNetns('/proc/self/ns/net', 4, '', 70000, 0, -1, 0), /usage: socketInNetns/],
      ['socketInNetns flags', () => n.socketInNetns('/proc/self/ns/net', 4, '', 0, 0, -1, 64), /usage: socketInNetns/],
      ['socketInNetns address', () => n.socketInNetns('/proc/self/ns/net', 4, '::1', 0, 0, -1, 0), /not an IPv4 address/],
      ['setSocketMark', () => (n.setSocketMark as (...a: unknown[]) => unknown)(1.5, 1), /usage: setSocketMark/],
      ['closeFd', () => (n.closeFd as (...a: unknown[]) => unknown)('3'), /usage: closeFd/],
      ['linkClose unknown handle', () => n.linkClose(987654), /unknown or closed link handle/],
    ];
    for (const [what, fn, re] of cases) {
      assert.throws(fn, (e: unknown) => {
        assert.ok(e instanceof Error, what);
        assert.match(e.message, re, what);
        return true;
      }, what);
    }
    assert.throws(() => (n.objectOpen as (...a: unknown[]) => unknown)(1, ''), TypeError);
  });

  it('throws errno errors with code and syscall', () => {
    assert.throws(() => n.objectOpen('/nonexistent/x.bpf.o', ''), (e: unknown) => {
      const err = e as NodeJS.ErrnoException;
      assert.equal(err.code, 'ENOENT');
      assert.equal(err.syscall, 'bpf_object__open_file');
      assert.equal(err.errno, -2);
      return true;
    });
    assert.throws(() => n.netnsCookie('/nonexistent/netns'), (e: unknown) => {
      assert.equal((e as NodeJS.ErrnoException).code, 'ENOENT');
      assert.equal((e as NodeJS.ErrnoException).syscall, 'open');
      return true;
    });
    assert.throws(() => n.mapOpenPinned('/nonexistent/pin'), (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT');
    assert.throws(() => n.closeFd(1 << 30), (e: unknown) => (e as NodeJS.ErrnoException).code === 'EBADF');
  });

  it('creates sockets and reads cookies in its own namespace (no privileges needed)', () => {
    const own = n.netnsCookie('/proc/self/ns/net');
    assert.equal(typeof own, 'bigint');
    const fd = n.socketInNetns('/proc/self/ns/net', 4, '127.0.0.1', 0, 0, 16, 1);
    try {
      assert.equal(n.socketNetnsCookie(fd), own);
      assert.ok(n.socketCookie(fd) > 0n);
    } finally {
      n.closeFd(fd);
    }
  });

  it('creates sockets through a namespace fd kept open (socketInNetnsFd)', () => {
    const own = n.netnsCookie('/proc/self/ns/net');
    const ns = n.netnsOpen('/proc/self/ns/net');
    try {
      for (let i = 0; i < 3; i++) {
        const fd = n.socketInNetnsFd(ns, 4, '127.0.0.1', 0, 0, -1, 0);
        try { assert.equal(n.socketNetnsCookie(fd), own); } finally { n.closeFd(fd); }
      }
      assert.throws(() => n.socketInNetnsFd(ns, 4, '::1', 0, 0, -1, 0), /not an IPv4 address.*usage: socketInNetnsFd/);
      assert.throws(() => n.socketInNetnsFd(ns, 5, '', 0, 0, -1, 0), /usage: socketInNetnsFd/);
    } finally {
      n.closeFd(ns);
    }
    assert.throws(() => n.netnsOpen('/nonexistent/netns'), (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT');
  });
});
