// Runs a spliced connection: the kernel moves the bytes (splice.ts, bpf/splice.bpf.c); Node
// reads each socket only to see its EOF and passes the half-close on, once the kernel has
// handed every byte of that direction to the other socket (a FIN sent earlier would overtake
// bytes still queued for the peer, and the peer would then refuse them).
import type * as net from 'node:net';
import type { SplicedPair, Splicer } from './splice';

/** How long a direction may make no progress toward its peer before its FIN is sent anyway. */
export const DRAIN_STALL_MS = 10_000;

interface Handle { fd?: number; reading?: boolean; readStop?(): number; readStart?(): number }

/** The fd of a socket Node owns (-1 when it has none, e.g. destroyed). */
export function socketFd(s: net.Socket): number {
  const fd = (s as unknown as { _handle?: Handle })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

/** Stops Node reading a socket (not only pausing the stream: libuv would otherwise keep
 * reading into the stream's buffer). resume() starts it again. Call it in the same tick the
 * socket came to be, and no byte reaches user space. */
export function holdReads(s: net.Socket): void {
  s.pause();
  const h = (s as unknown as { _handle?: Handle })._handle;
  if (h?.reading && h.readStop) {
    h.reading = false;
    h.readStop();
  }
}

/** Undoes holdReads: starts libuv reading again (the stream still counts the read it asked for
 * before holdReads as pending, so resume() alone would not) and lets the stream flow. */
export function resumeReads(s: net.Socket): void {
  const h = (s as unknown as { _handle?: Handle })._handle;
  if (h && !h.reading && h.readStart && !s.destroyed) {
    h.reading = true;
    const err = h.readStart();
    if (err) s.destroy(Object.assign(new Error(`readStart failed (${err})`), { errno: err }));
  }
  s.resume();
}

/** Whether a socket can still be spliced: Node has read nothing from it and has not seen it end. */
export function unread(s: net.Socket): boolean {
  return !s.destroyed && s.readableLength === 0 && s.bytesRead === 0 && !s.readableEnded && socketFd(s) >= 0;
}

/**
 * Bytes of one direction that the kernel has not yet handed to the destination socket:
 * what the source received (TCP_INFO bytes_received, which counts the FIN once it came) less
 * what was written into the destination (bytes_acked + still unacked, less what it held at
 * splice time: an active open counts its SYN as acked).
 */
export function undelivered(srcReceived: number, srcEnded: boolean, dstAcked: number, dstUnsent: number, dstBase: number): number {
  return srcReceived - (srcEnded ? 1 : 0) - (dstAcked + dstUnsent - dstBase);
}

export interface SpliceRun {
  /** Resolves once both sockets are closed. bytes: from TCP_INFO (unknown when a socket was
   * gone before it could be read). */
  done: Promise<{ error?: Error; sent: number; received: number; bytesKnown: boolean; relayed: number; stalled: number }>;
  /** Ends both sockets now (policy). */
  destroy(): void;
}

/**
 * Splices a (the client) and b (the app), both connected and never read by Node. Throws when
 * the kernel refuses (nothing changed: the caller relays instead). A direction the kernel did
 * not take (its socket half-closed between the two inserts) is relayed here in user space.
 */
export function runSplice(splicer: Splicer, a: net.Socket, b: net.Socket): SpliceRun {
  const fdA = socketFd(a);
  const fdB = socketFd(b);
  const baseA = splicer.counters(fdA);
  const baseB = splicer.counters(fdB);
  const pair: SplicedPair = splicer.splice(fdA, fdB);
  const socks = [a, b] as const;
  const fds = [fdA, fdB] as const;
  // An fd number is only read while its socket still holds it (a closed one may be reused).
  const open = (i: 0 | 1) => socketFd(socks[i]) === fds[i];
  const base = [baseA[0] + baseA[2], baseB[0] + baseB[2]] as const;
  const received = [0, 0];
  const ended = [false, false];
  let known = true;
  let error: Error | undefined;
  let relayed = 0;
  let stalled = 0;

  /** Bytes each socket has received so far (its FIN not counted); final from its 'end' on.
   * Unknown when a socket whose direction had not ended is gone. */
  const sample = () => {
    for (const i of [0, 1] as const) {
      if (!open(i)) { if (!ended[i]) known = false; continue; }
      try {
        received[i] = splicer.counters(fds[i])[1] - (ended[i] ? 1 : 0);
      } catch {
        if (!ended[i]) known = false;
      }
    }
  };
  const fail = (e: Error) => {
    error ??= e;
    sample();
    a.destroy();
    b.destroy();
  };

  /** Ends dst's write side once everything src received (final: src has seen its FIN, and
   * may close before dst has drained) has been written into dst. */
  const passEnd = (i: 0 | 1) => {
    const dst = socks[1 - i];
    let srcReceived: number;
    try {
      srcReceived = splicer.counters(fds[i])[1];
    } catch {
      srcReceived = 0;
    }
    sample();
    let last = -1;
    let lastProgress = Date.now();
    const check = () => {
      if (dst.destroyed || !open((1 - i) as 0 | 1)) return;
      let left: number;
      try {
        const d = splicer.counters(fds[1 - i]);
        left = undelivered(srcReceived, true, d[0], d[2], base[1 - i]);
      } catch {
        left = 0; // dst went away under us: nothing left to wait for
      }
      if (left <= 0 || Date.now() - lastProgress > DRAIN_STALL_MS) {
        if (left > 0) stalled++;
        dst.end();
        return;
      }
      if (left !== last) { last = left; lastProgress = Date.now(); }
      setTimeout(check, 1);
    };
    check();
  };

  for (const i of [0, 1] as const) {
    const s = socks[i];
    const kernel = (pair.rx & (1 << i)) !== 0;
    s.on('error', fail);
    if (kernel) {
      // The verdict program takes every byte; user space seeing one means the pair broke.
      s.on('data', (chunk: Buffer) => { relayed += chunk.length; fail(new Error('same-node splice: bytes reached user space')); });
      s.on('end', () => { ended[i] = true; passEnd(i); });
    } else {
      s.on('data', (chunk: Buffer) => { relayed += chunk.length; if (!socks[1 - i].write(chunk)) s.pause(); });
      socks[1 - i].on('drain', () => s.resume());
      s.on('end', () => { ended[i] = true; sample(); socks[1 - i].end(); });
    }
  }
  const done = new Promise<{ error?: Error; sent: number; received: number; bytesKnown: boolean; relayed: number; stalled: number }>((resolve) => {
    let closed = 0;
    const onClose = () => {
      if (++closed < 2) return;
      splicer.release(pair);
      resolve({ error, sent: received[0], received: received[1], bytesKnown: known, relayed, stalled });
    };
    a.once('close', onClose);
    b.once('close', onClose);
  });
  resumeReads(a);
  resumeReads(b);
  return { done, destroy: () => { sample(); a.destroy(); b.destroy(); } };
}
