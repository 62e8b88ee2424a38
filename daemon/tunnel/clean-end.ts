// Ending app connections cleanly when a daemon stops past its drain deadline. Destroying a
// socket whose receive buffer still holds app bytes makes the kernel send RST, and the app
// sees ECONNRESET for a stream nothing went wrong with. Instead: stop relaying, half-close
// with FIN, read and discard what the app still sends, and destroy only once the app closed
// its side or after a short grace (then an RST is the app's own doing: it kept sending).
import type * as net from 'node:net';

/** How long an app gets, after our FIN, to close its side before the socket is destroyed. */
export const CLEAN_END_GRACE_MS = 1_500;

/** Half-closes `socket` toward the app and discards what it still sends; resolves once the
 * socket closed (at the latest after graceMs, when it is destroyed). */
export function endSocketCleanly(socket: net.Socket, graceMs = CLEAN_END_GRACE_MS): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) { resolve(); return; }
    const timer = setTimeout(() => socket.destroy(), graceMs);
    socket.once('close', () => { clearTimeout(timer); resolve(); });
    socket.on('error', () => socket.destroy());
    socket.unpipe();
    socket.on('data', discard);
    socket.resume();
    if (!socket.writableEnded) socket.end();
  });
}

/** Relays that can be ended cleanly at a deadline (one set per owner: the outbound side of an
 * agent, each HBONE server). */
export class CleanEndSet {
  private readonly open = new Set<(graceMs: number) => Promise<void>>();

  add(end: (graceMs: number) => Promise<void>): () => void {
    this.open.add(end);
    return () => this.open.delete(end);
  }

  get size(): number { return this.open.size; }

  /** Ends every open relay cleanly; resolves once all closed (bounded by graceMs each, run at once). */
  async endAll(graceMs = CLEAN_END_GRACE_MS): Promise<void> {
    const all = [...this.open];
    this.open.clear();
    await Promise.all(all.map((end) => end(graceMs)));
  }
}

function discard(): void { /* bytes the app sent after the relay stopped: nowhere to go */ }
