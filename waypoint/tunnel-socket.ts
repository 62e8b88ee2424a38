// An HBONE tunnel (an HTTP/2 stream) dressed as a socket, so Node's HTTP/1.1 and HTTP/2
// servers and clients can run inside it. Node documents that any Duplex may be given to an
// HTTP server as a connection, but writing straight to an Http2Stream garbles the latin1
// strings the HTTP/1.1 code writes with writev; this adapter hands it Buffers only, and
// provides the few socket methods the HTTP code calls, including an idle timeout (an
// http.Agent keeping upstream tunnels for the next request times idle ones out with it).
import { Duplex } from 'node:stream';

export interface TunnelSocketOptions {
  address?: string;
  port?: number;
  /** false: when the peer ends its side, end ours too (a pooled upstream connection the
   * server closed must leave the pool, not take the next request). Default true. */
  allowHalfOpen?: boolean;
  /** true: destroy() without an error ends the tunnel cleanly (END_STREAM, then the peer's
   * end) instead of resetting it, so the destination records a finished, allowed connection
   * (an idle kept tunnel closing is not a failure). Bounded by GRACEFUL_END_MS. */
  endOnDestroy?: boolean;
}

/** How long a clean end may take before the tunnel is reset after all. */
export const GRACEFUL_END_MS = 5_000;

function noop(): void { /* data nobody reads */ }

export class TunnelSocket extends Duplex {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  private bytesIn = 0;
  private bytesOut = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  private readonly endOnDestroy: boolean;

  constructor(private readonly inner: Duplex, o: TunnelSocketOptions = {}) {
    super({ allowHalfOpen: o.allowHalfOpen ?? true });
    this.endOnDestroy = o.endOnDestroy ?? false;
    this.remoteAddress = o.address;
    this.remotePort = o.port;
    inner.on('data', (d: Buffer) => {
      this.bytesIn += d.length;
      this.idleTimer?.refresh();
      if (!this.push(d)) inner.pause();
    });
    inner.on('end', () => this.push(null));
    inner.on('error', (e: Error) => this.destroy(e));
    inner.on('close', () => { if (!this.destroyed) this.destroy(); });
  }

  get bytesRead(): number { return this.bytesIn; }
  get bytesWritten(): number { return this.bytesOut; }

  override _read(): void { this.inner.resume(); }

  override _write(chunk: Buffer | string, encoding: BufferEncoding, cb: (e?: Error | null) => void): void {
    const b = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk;
    this.bytesOut += b.length;
    this.idleTimer?.refresh();
    this.inner.write(b, cb);
  }

  override _writev(chunks: { chunk: Buffer | string; encoding: BufferEncoding }[], cb: (e?: Error | null) => void): void {
    // One write for the HTTP code's head and body: one DATA frame instead of several.
    const bufs = chunks.map((c) => (typeof c.chunk === 'string' ? Buffer.from(c.chunk, c.encoding) : c.chunk));
    const b = bufs.length === 1 ? bufs[0]! : Buffer.concat(bufs);
    this.bytesOut += b.length;
    this.idleTimer?.refresh();
    this.inner.write(b, cb);
  }

  override _final(cb: (e?: Error | null) => void): void { this.inner.end(); cb(); }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (this.idleTimer) { clearTimeout(this.idleTimer); this.idleTimer = undefined; }
    if (!this.inner.destroyed) {
      if (!err && this.endOnDestroy && !this.inner.writableEnded) {
        // Nothing reads it any more: let it flow to its end, and end our side.
        this.inner.removeAllListeners('data');
        this.inner.on('data', noop);
        this.inner.end();
        setTimeout(() => { if (!this.inner.destroyed) this.inner.destroy(); }, GRACEFUL_END_MS).unref();
      } else {
        this.inner.destroy(err ?? undefined);
      }
    }
    cb(err);
  }

  /** As net.Socket: 'timeout' once after `ms` without bytes either way (0: off). */
  setTimeout(ms: number, onTimeout?: () => void): this {
    if (this.idleTimer) { clearTimeout(this.idleTimer); this.idleTimer = undefined; }
    if (onTimeout) { if (ms === 0) this.off('timeout', onTimeout); else this.once('timeout', onTimeout); }
    if (ms > 0 && !this.destroyed) {
      this.idleTimer = setTimeout(() => this.emit('timeout'), ms);
      this.idleTimer.unref();
    }
    return this;
  }

  setNoDelay(): this { return this; }
  setKeepAlive(): this { return this; }
  ref(): this { return this; }
  unref(): this { return this; }
}
