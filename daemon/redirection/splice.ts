// The same-node splice's kernel side (bpf/splice.bpf.c): loads the object once, attaches its
// stream verdict program to the rx sockhash, and puts pairs of the daemon's sockets into the
// maps so the kernel moves their bytes (splice-pipe.ts runs a spliced connection).
//
// Pins: <pinRoot>/splice/<pid>/{nm_splice_tx,nm_splice_rx,nm_splice_peer}. One directory per
// daemon process: spliced sockets belong to the process that spliced them, so nothing here
// outlives it or is shared with a restarted daemon beside it (a hitless restart runs two).
// The pins are for inspection (bpftool map dump pinned ...): removed when the process exits,
// pruned for dead pids at the next load, and all removed by an uninstall.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NativeBinding, ObjectHandle } from '../../native/native';

export const SPLICE_OBJECT_FILE = 'splice.bpf.o';
export const SPLICE_PROGRAM = 'nm_splice_verdict';
export const SPLICE_MAPS = ['nm_splice_tx', 'nm_splice_rx', 'nm_splice_peer'] as const;
const SPLICE_DIR = 'splice';
/** spliceSockets flag: SO_RCVLOWAT kick after the insert (see native/src/splice.cc). */
const FLAG_KICK = 1;

export interface SpliceLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** NODEMESH_SAME_NODE_SPLICE: 'on', or 'off' (the default). Off by default because the kernel
 * queues a spliced socket's bytes for its peer without limit (measured: a client writing to an
 * app that does not read had 256 MiB taken off its socket, 4 MiB of it written on; none of it
 * counted in tcp_mem), so a pod could make the node hold any amount of memory; see
 * bpf/splice.bpf.c. Anything else is off, and reported. */
export function spliceSetting(env: NodeJS.ProcessEnv): { enabled: boolean; invalid?: string } {
  const v = (env.NODEMESH_SAME_NODE_SPLICE ?? '').trim().toLowerCase();
  if (v === 'on') return { enabled: true };
  if (v === '' || v === 'off') return { enabled: false };
  return { enabled: false, invalid: v.slice(0, 32) };
}

/** <pinRoot>/splice/<pid>: the pin directory of one daemon process. */
export function splicePinDir(pinRoot: string, pid: number): string {
  return path.join(pinRoot, SPLICE_DIR, String(pid));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes splice pin directories under pinRoot: those of dead processes, or all (uninstall). */
export function removeSplicePins(pinRoot: string, opts: { all: boolean }): string[] {
  const root = path.join(pinRoot, SPLICE_DIR);
  if (!fs.existsSync(root)) return [];
  const removed: string[] = [];
  for (const d of fs.readdirSync(root)) {
    const pid = Number(d);
    if (!opts.all && Number.isInteger(pid) && pid > 0 && pidAlive(pid)) continue;
    const dir = path.join(root, d);
    for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f), { force: true });
    fs.rmdirSync(dir);
    removed.push(dir);
  }
  try { fs.rmdirSync(root); } catch { /* another daemon's pins are still there */ }
  return removed;
}

/** Two sockets the kernel now carries between; rx says which directions (bit 0: A's bytes to
 * B, bit 1: B's bytes to A). */
export interface SplicedPair { rx: number; cookieA: bigint; cookieB: bigint }

export class Splicer {
  private closed = false;

  private constructor(
    private readonly native: NativeBinding,
    private readonly obj: ObjectHandle,
    private readonly fds: { tx: number; rx: number; peer: number },
    readonly pinDir: string,
    private readonly kick: boolean,
  ) {}

  /** Loads and attaches (throws when the kernel or the object cannot). */
  static load(opts: { native: NativeBinding; objectDir: string; pinRoot: string; log: SpliceLogger; pid?: number; kick?: boolean }): Splicer {
    const { native } = opts;
    const pruned = removeSplicePins(opts.pinRoot, { all: false });
    const pinDir = splicePinDir(opts.pinRoot, opts.pid ?? process.pid);
    const file = path.join(opts.objectDir, SPLICE_OBJECT_FILE);
    if (!fs.existsSync(file)) throw new Error(`${file} not found (make bpf)`);
    fs.mkdirSync(pinDir, { recursive: true });
    let obj: ObjectHandle | undefined;
    try {
      obj = native.objectOpen(file, pinDir);
      native.objectLoad(obj);
      const fds = {
        tx: native.objectMapFd(obj, 'nm_splice_tx'),
        rx: native.objectMapFd(obj, 'nm_splice_rx'),
        peer: native.objectMapFd(obj, 'nm_splice_peer'),
      };
      native.attachSockmap(obj, SPLICE_PROGRAM, fds.rx);
      opts.log.info({ pinDir, prunedStale: pruned.length }, 'same-node splice loaded');
      return new Splicer(native, obj, fds, pinDir, opts.kick ?? true);
    } catch (e) {
      if (obj !== undefined) native.objectClose(obj);
      fs.rmSync(pinDir, { recursive: true, force: true });
      try { fs.rmdirSync(path.dirname(pinDir)); } catch { /* other daemons' pins */ }
      throw e;
    }
  }

  /** Splices two connected sockets whose bytes user space has not read (throws, with nothing
   * changed, when the kernel refuses, e.g. a socket that is already half-closed). */
  splice(fdA: number, fdB: number): SplicedPair {
    if (this.closed) throw Object.assign(new Error('splice is closed'), { code: 'ESHUTDOWN' });
    return this.native.spliceSockets(this.fds.tx, this.fds.rx, this.fds.peer, fdA, fdB, this.kick ? FLAG_KICK : 0);
  }

  /** Drops a pair's entries (its closed sockets have already left the sockhashes). */
  release(p: SplicedPair): void {
    if (!this.closed) this.native.spliceRemove(this.fds.tx, this.fds.rx, this.fds.peer, p.cookieA, p.cookieB);
  }

  /** [bytes_acked, bytes_received, unsent] of a socket (TCP_INFO, SIOCOUTQ). */
  counters(fd: number): [number, number, number] {
    return this.native.tcpCounters(fd);
  }

  /** Entries in each map (for status and tests; bounded walk). */
  entries(): Record<(typeof SPLICE_MAPS)[number], number> {
    const out = { nm_splice_tx: 0, nm_splice_rx: 0, nm_splice_peer: 0 };
    if (this.closed) return out;
    for (const [name, fd] of [['nm_splice_tx', this.fds.tx], ['nm_splice_rx', this.fds.rx], ['nm_splice_peer', this.fds.peer]] as const) {
      let key: Buffer | null = null;
      for (let i = 0; i < 1_000_000; i++) {
        key = this.native.mapNextKey(fd, key, 8);
        if (key === null) break;
        out[name]++;
      }
    }
    return out;
  }

  /** Unpins and closes the object. Only at exit: the maps hold live pairs' sockets, and
   * closing the last reference to them ends every splice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.objectClose(this.obj);
    fs.rmSync(this.pinDir, { recursive: true, force: true });
    try { fs.rmdirSync(path.dirname(this.pinDir)); } catch { /* other daemons' pins */ }
  }
}
