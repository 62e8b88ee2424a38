// A request body on its way through the waypoint: streamed upstream as it arrives, as Envoy's
// router does, never held whole. Retries and mirrors need to send it again, so the first
// RETRY_BUFFER_LIMIT bytes are kept (Envoy's per_request_buffer_limit_bytes does the same job):
// while the whole body fits, each attempt replays it from the start; once it outgrows the
// buffer the copy is dropped, the attempt under way is the only one (`replayable` false: the
// retry stage answers that attempt's failure) and a mirror gets nothing (`whole()` resolves
// undefined). That makes client-streaming and bidirectional gRPC work (the upstream call starts
// with the first bytes, not at the client's half-close) and large uploads cost the buffer, not
// their size.
import { Readable } from 'node:stream';

/** Bytes of a request body kept for retries and mirrors. 64 KiB holds ordinary unary gRPC calls
 * and JSON/form requests (so they stay retryable and mirrorable) while a waypoint serving a few
 * thousand concurrent requests keeps at most a few hundred MiB for them. linkerd2-proxy keeps the
 * same 64 KiB for its retries; Envoy's buffer limit defaults to 1 MiB per connection, which
 * at the waypoint's concurrency would cost far more memory for little gain. */
export const RETRY_BUFFER_LIMIT = 64 * 1024;

export class RequestBody {
  private kept: Buffer[] = [];
  private keptBytes = 0;
  private ended = false;
  private failed: Error | undefined;
  private overflowed = false;
  private current: Readable | undefined;
  private released = false;
  private readonly waiters: Array<(b: Buffer | undefined) => void> = [];
  /** Bytes read from the caller so far. */
  received = 0;

  /** `source` undefined: the body is `fixed` (empty by default), known whole. */
  private constructor(private readonly source: Readable | undefined, readonly limit: number) {
    if (!source) { this.ended = true; return; }
    source.pause();
    source.on('data', (c: Buffer) => this.onData(c));
    source.on('end', () => this.onEnd());
    source.on('error', (e: Error) => this.onFail(e));
    source.on('close', () => { if (!this.ended) this.onFail(new Error('the caller went away before the request body ended')); });
  }

  /** The body of a caller's request, read from `source` only as fast as an attempt sends it.
   * `empty`: the request said it has none (so attempts send none, without waiting for its end).
   * `length`: its content-length; one over the limit is never kept (as linkerd2-proxy does). */
  static stream(source: Readable, opts: { empty?: boolean; length?: number; limit?: number } = {}): RequestBody {
    if (opts.empty) { source.resume(); return RequestBody.of(); }
    const b = new RequestBody(source, opts.limit ?? RETRY_BUFFER_LIMIT);
    if (opts.length !== undefined && opts.length > b.limit) b.overflowed = true;
    return b;
  }

  /** A body known whole (a mirror's copy, a test). */
  static of(buf: Buffer = Buffer.alloc(0)): RequestBody {
    const b = new RequestBody(undefined, Math.max(buf.length, RETRY_BUFFER_LIMIT));
    if (buf.length > 0) { b.kept.push(buf); b.keptBytes = buf.length; b.received = buf.length; }
    return b;
  }

  /** True while the body read so far is all kept (or none was read yet: an attempt that failed
   * to connect took nothing): another attempt can send it whole. */
  get replayable(): boolean { return !this.failed && (!this.overflowed || this.received === 0); }

  /** True when the body is known to be empty (nothing will come). */
  get empty(): boolean { return this.ended && this.received === 0; }

  /** Bytes kept for replay right now (at most `limit`). */
  get buffered(): number { return this.keptBytes; }

  /** The body for one attempt, from its first byte; undefined when it can no longer be sent
   * whole (it outgrew the buffer after an earlier attempt read from it, or the caller failed). An
   * earlier attempt's stream stops receiving. */
  open(): Readable | undefined {
    if (!this.replayable) return undefined;
    const prev = this.current;
    const stream: Readable = new Readable({
      read: () => { if (this.current === stream && !this.ended) this.source?.resume(); },
      destroy: (e, cb) => { if (this.current === stream) { this.current = undefined; this.idle(); } cb(e); },
    });
    this.current = stream;
    if (prev && !prev.destroyed) prev.destroy();
    for (const c of this.kept) stream.push(c);
    if (this.ended) stream.push(null);
    return stream;
  }

  /** No attempt will be opened any more (the exchange has its answer): what nobody sends is read
   * and dropped, so the caller's connection is not left waiting (a mirror still gets the whole
   * body, if it fits). */
  release(): void {
    this.released = true;
    if (!this.current) this.idle();
  }

  /** No attempt is reading: wait for the next one, or drain once there will be none. */
  private idle(): void {
    if (this.released && !this.ended) this.source?.resume();
    else this.source?.pause();
  }

  /** The whole body once it has ended, if it fitted the buffer; undefined if it did not (or the
   * caller failed). Never a part presented as the whole. */
  whole(): Promise<Buffer | undefined> {
    if (this.ended) return Promise.resolve(this.overflowed ? undefined : Buffer.concat(this.kept));
    if (this.overflowed || this.failed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private onData(c: Buffer): void {
    this.received += c.length;
    if (!this.overflowed) {
      if (this.keptBytes + c.length <= this.limit) { this.kept.push(c); this.keptBytes += c.length; }
      else { this.overflowed = true; this.kept = []; this.keptBytes = 0; this.settle(undefined); }
    }
    const s = this.current;
    if (!s) { this.idle(); return; }
    if (!s.push(c)) this.source?.pause();
  }

  private onEnd(): void {
    this.ended = true;
    this.current?.push(null);
    this.settle(this.overflowed ? undefined : Buffer.concat(this.kept));
  }

  private onFail(e: Error): void {
    if (this.ended || this.failed) return;
    this.failed = e;
    this.kept = [];
    this.keptBytes = 0;
    this.current?.destroy(e);
    this.settle(undefined);
  }

  private settle(b: Buffer | undefined): void {
    for (const w of this.waiters.splice(0)) w(b);
  }
}
