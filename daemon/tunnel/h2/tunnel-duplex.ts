// An HBONE stream as a Duplex, for the one place that needs Node stream machinery: the
// waypoint, which runs Node's HTTP/1.1 and HTTP/2 code inside a tunnel (and pipes a TCP
// pass-through with stream.pipeline). The L4 relay (../splice.ts) uses the light H2Stream
// directly. Back-pressure both ways: a full readable buffer pauses the stream (no window
// goes back to the peer), and a write waits for the stream's drain.
import { Duplex } from 'node:stream';
import { ErrorCode, errorName } from './constants';
import type { H2Stream } from './stream';

export class TunnelDuplex extends Duplex {
  private pendingWrite: ((e?: Error | null) => void) | null = null;

  constructor(readonly stream: H2Stream, o: { allowHalfOpen?: boolean } = {}) {
    super({ allowHalfOpen: o.allowHalfOpen ?? true });
    // As node:http2 streams had in HboneClient: a late error (the connection died) must never
    // become an uncaught 'error' that takes the process down; users that care listen too.
    this.on('error', noop);
    stream.ondata = (c) => { if (!this.push(c)) stream.pause(); };
    stream.onend = () => { this.push(null); };
    stream.ondrain = () => this.wrote();
    stream.onclose = (code, err) => {
      if (err || code !== ErrorCode.NO_ERROR) {
        this.wrote(err ?? new Error(`the stream was reset (${errorName(code)})`));
        if (!this.destroyed) this.destroy(err ?? Object.assign(new Error(`the stream was reset (${errorName(code)})`), { rstCode: code }));
      } else {
        this.wrote();
      }
    };
    stream.start();
  }

  /** The RST_STREAM code the stream closed with (0: cleanly, or still open). */
  get rstCode(): number { return this.stream.rstCode; }

  /** RST_STREAM with `code` and destroy, as node:http2's stream.close(code). */
  close(code: number = ErrorCode.CANCEL): void {
    this.stream.reset(code);
    if (!this.destroyed) this.destroy();
  }

  override _read(): void { this.stream.resume(); }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.stream.closed || this.stream.localEnded) { cb(new Error('the HBONE stream is closed')); return; }
    if (this.stream.write(chunk)) cb(); else this.pendingWrite = cb;
  }

  override _writev(chunks: { chunk: Buffer; encoding: BufferEncoding }[], cb: (e?: Error | null) => void): void {
    // Corked writes (the HTTP code's head and body) as one DATA frame instead of several.
    this._write(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)), chunks[0]!.encoding, cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.stream.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (!this.stream.closed) this.stream.reset(err ? ErrorCode.INTERNAL_ERROR : ErrorCode.CANCEL);
    this.wrote(err ?? undefined);
    cb(err);
  }

  private wrote(err?: Error): void {
    const cb = this.pendingWrite;
    this.pendingWrite = null;
    cb?.(err);
  }
}

function noop(): void { /* see the constructor */ }
