// An HBONE tunnel (an HTTP/2 stream) dressed as a socket, so Node's HTTP/1.1 and HTTP/2
// servers and clients can run inside it. Node documents that any Duplex may be given to an
// HTTP server as a connection, but writing straight to an Http2Stream garbles the latin1
// strings the HTTP/1.1 code writes with writev; this adapter hands it Buffers only, and
// provides the few socket methods the HTTP code calls.
import { Duplex } from 'node:stream';

export class TunnelSocket extends Duplex {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  private bytesIn = 0;
  private bytesOut = 0;

  constructor(private readonly inner: Duplex, peer: { address?: string; port?: number } = {}) {
    super({ allowHalfOpen: true });
    this.remoteAddress = peer.address;
    this.remotePort = peer.port;
    inner.on('data', (d: Buffer) => { this.bytesIn += d.length; if (!this.push(d)) inner.pause(); });
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
    this.inner.write(b, cb);
  }

  override _final(cb: (e?: Error | null) => void): void { this.inner.end(); cb(); }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (!this.inner.destroyed) this.inner.destroy(err ?? undefined);
    cb(err);
  }

  setNoDelay(): this { return this; }
  setKeepAlive(): this { return this; }
  setTimeout(): this { return this; }
  ref(): this { return this; }
  unref(): this { return this; }
}
