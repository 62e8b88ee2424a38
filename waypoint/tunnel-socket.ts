// An HBONE tunnel (an HTTP/2 stream) dressed as a socket, so Node's HTTP/1.1 and HTTP/2
// servers and clients can run inside it. Node documents that any Duplex may be given to an
// HTTP server as a connection; this one is the stream's own Duplex (TunnelDuplex: Buffers
// only, one DATA frame per corked write) plus the few socket methods the HTTP code calls,
// including an idle timeout (an http.Agent keeping upstream tunnels for the next request
// times idle ones out with it). One Duplex layer per tunnel: each chunk crosses Node's stream
// machinery once, not twice (a wrapper Duplex around the TunnelDuplex cost a push, a read
// and a write callback more per chunk).
import type { Duplex } from 'node:stream';
import { ErrorCode } from '../daemon/tunnel/h2/constants';
import type { H2Stream } from '../daemon/tunnel/h2/stream';
import { TunnelDuplex } from '../daemon/tunnel/h2/tunnel-duplex';

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

export class TunnelSocket extends TunnelDuplex {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly endOnDestroy: boolean;

  /** `inner`: the HBONE stream, or a TunnelDuplex nobody else reads any more (what it
   * buffered, e.g. bytes a protocol sniffer put back, is taken over; it is left unused). */
  constructor(inner: H2Stream | TunnelDuplex, o: TunnelSocketOptions = {}) {
    const adopted = inner instanceof TunnelDuplex ? inner : undefined;
    super(adopted ? adopted.stream : inner as H2Stream, { allowHalfOpen: o.allowHalfOpen ?? true });
    this.endOnDestroy = o.endOnDestroy ?? false;
    this.remoteAddress = o.address;
    this.remotePort = o.port;
    const stream = this.stream;
    const base = stream.ondata!;
    stream.ondata = (c) => { this.idleTimer?.refresh(); base(c); };
    if (adopted) takeOver(adopted, this);
  }

  get bytesRead(): number { return this.stream.bytesRead; }
  get bytesWritten(): number { return this.stream.bytesWritten; }

  override _write(chunk: Buffer, enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.idleTimer?.refresh();
    super._write(chunk, enc, cb);
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (this.idleTimer) { clearTimeout(this.idleTimer); this.idleTimer = undefined; }
    const stream = this.stream;
    if (!err && this.endOnDestroy && !stream.closed && !stream.localEnded) {
      // Nothing reads it any more: let it flow to its end (its window goes back), end our side.
      stream.ondata = null;
      stream.onend = null;
      stream.resume();
      stream.end();
      setTimeout(() => { if (!stream.closed) stream.reset(ErrorCode.CANCEL); }, GRACEFUL_END_MS).unref();
      cb(null);
      return;
    }
    super._destroy(err, cb);
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

/** Moves what `old` buffered (and its end, if it saw one) to `to`, which now owns the stream. */
function takeOver(old: Duplex, to: TunnelSocket): void {
  let c: Buffer | null;
  while ((c = old.read() as Buffer | null) !== null) to.push(c);
  const stream = to.stream;
  if (stream.remoteEnded) to.push(null);
  if (stream.closed && (stream.error || stream.rstCode !== ErrorCode.NO_ERROR)) to.destroy(stream.error ?? new Error('the stream was reset'));
}
