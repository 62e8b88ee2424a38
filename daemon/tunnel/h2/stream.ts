// One HTTP/2 stream of an H2Connection: a light object with callback fields instead of a
// Duplex. The relay (../splice.ts) sets ondata/onend/onclose/ondrain and calls write/end/
// pause/resume; nothing here allocates per chunk beyond the frame header.
//
// Data that arrives before the reader called start() waits in a small inbox (bounded by our
// stream window: the peer cannot send more until we give window back, which we only do for
// bytes the reader took while not paused).
import { ErrorCode, errorName } from './constants';
import type { H2Connection } from './connection';
import { FrameType, Flag } from './constants';
import { frameHeader } from './frames';

/** Header fields as node:http2 gives them: lowercase names, pseudo-headers included. */
export type HeaderMap = Record<string, string | string[]>;

export class H2Stream {
  /** Bytes from the peer, in order. */
  ondata: ((chunk: Buffer) => void) | null = null;
  /** The peer half-closed (END_STREAM). */
  onend: (() => void) | null = null;
  /** The stream is over: `code` is the RST_STREAM code (0: closed cleanly), `error` why it failed. */
  onclose: ((code: number, error?: Error) => void) | null = null;
  /** write() returned false earlier; it may be called again. */
  ondrain: (() => void) | null = null;
  /** Client: the final response headers. */
  onresponse: ((status: number, headers: HeaderMap) => void) | null = null;

  /** Client: the final response arrived. Server: the response was sent. */
  responded = false;
  remoteEnded = false;
  localEnded = false;
  closed = false;
  /** RST_STREAM code it closed with (0 when it closed cleanly). */
  rstCode = 0;
  error?: Error;
  bytesRead = 0;
  bytesWritten = 0;

  /** @internal */ queue: Buffer[] = [];
  /** @internal */ queuedBytes = 0;
  /** @internal */ endQueued = false;
  /** @internal */ sendWindow: number;
  private recvWindow: number;
  private readonly recvTarget: number;
  private recvUnacked = 0;
  /** Bytes delivered (or waiting in the inbox) whose window we have not given back. */
  private held = 0;
  private paused = false;
  private started = false;
  private inbox: Buffer[] | null = null;
  private wantDrain = false;
  private endDelivered = false;

  constructor(private readonly conn: H2Connection, readonly id: number, sendWindow: number, recvWindow: number) {
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
    this.recvTarget = recvWindow;
  }

  /** Starts delivering: what arrived before is handed over now. */
  start(): void {
    if (this.started) return;
    this.started = true;
    const inbox = this.inbox;
    this.inbox = null;
    if (inbox) for (const c of inbox) { if (this.closed) return; this.ondata?.(c); }
    if (!this.paused && this.held > 0) { const h = this.held; this.held = 0; this.credit(h); }
    if (this.remoteEnded && !this.closed) this.deliverEnd();
  }

  /** Queues bytes toward the peer; false when the caller should wait for ondrain. */
  write(chunk: Buffer): boolean {
    if (this.closed || this.localEnded || this.endQueued) return false;
    const n = chunk.length;
    if (n === 0) return true;
    this.bytesWritten += n;
    const conn = this.conn;
    if (this.queue.length === 0 && n <= this.sendWindow && n <= conn.sendWindow && n <= conn.peerMaxFrameSize) {
      conn.queue(frameHeader(n, FrameType.DATA, 0, this.id), chunk);
      this.sendWindow -= n;
      conn.sendWindow -= n;
    } else {
      this.queue.push(chunk);
      this.queuedBytes += n;
      conn.sendQueued(this);
    }
    if (this.queuedBytes > 0 || !conn.writable) {
      this.wantDrain = true;
      if (this.queuedBytes === 0) conn.waitDrain(this);
      return false;
    }
    return true;
  }

  /** Half-closes toward the peer (END_STREAM after what is queued). */
  end(): void {
    if (this.closed || this.localEnded || this.endQueued) return;
    if (this.queue.length > 0) { this.endQueued = true; return; }
    this.conn.queue(frameHeader(0, FrameType.DATA, Flag.END_STREAM, this.id));
    this.localEnd();
  }

  /** Server: the response headers (`endStream`: and nothing more from us). */
  respond(status: number, headers: Record<string, string> = {}, endStream = false): void {
    if (this.closed || this.responded || this.conn.role !== 'server') return;
    this.responded = true;
    const list = [':status', String(status)];
    for (const k in headers) list.push(k, headers[k]);
    this.conn.sendHeaders(this.id, list, endStream);
    if (!endStream) return;
    // A complete answer (a refusal) while the request is still open: ask the client to stop
    // sending with RST_STREAM NO_ERROR (RFC 9113 section 8.1), as node:http2 does.
    if (!this.remoteEnded) { this.conn.sendRst(this.id, ErrorCode.NO_ERROR); this.finish(ErrorCode.NO_ERROR, undefined); return; }
    this.localEnd();
  }

  /** RST_STREAM with `code` (CANCEL by default); the stream closes now. */
  reset(code: number = ErrorCode.CANCEL): void {
    if (this.closed) return;
    this.conn.sendRst(this.id, code);
    this.finish(code, undefined);
  }

  /** Stop giving the peer window: it stops sending once the current window is used. */
  pause(): void { this.paused = true; }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.started && this.held > 0) { const h = this.held; this.held = 0; this.credit(h); }
  }

  get isPaused(): boolean { return this.paused; }

  // ------------------------------------------------------------ @internal (H2Connection)

  /** @internal */
  receive(chunk: Buffer): void {
    const n = chunk.length;
    if (this.closed) { this.conn.consumed(n); return; }
    this.bytesRead += n;
    if (!this.started) {
      (this.inbox ??= []).push(chunk);
      this.held += n;
      return;
    }
    if (this.paused) this.held += n; else this.credit(n);
    this.ondata?.(chunk);
  }

  /** @internal false when the peer overran our window. */
  takeWindow(n: number): boolean {
    this.recvWindow -= n;
    return this.recvWindow >= 0;
  }

  /** @internal padding counts against the window but is never read: give it back at once. */
  creditPadding(n: number): void { this.creditStream(n); }

  /** @internal */
  hasQueued(): boolean { return this.queue.length > 0 || this.endQueued; }

  /** @internal END_STREAM received. */
  remoteEnd(): void {
    if (this.remoteEnded || this.closed) return;
    this.remoteEnded = true;
    if (this.started) this.deliverEnd();
    if (this.localEnded && !this.closed) this.finish(0, undefined);
  }

  /** @internal END_STREAM sent. */
  localEnd(): void {
    this.localEnded = true;
    if (this.remoteEnded && (this.endDelivered || !this.started)) this.finish(0, undefined);
  }

  /** @internal The queue emptied. */
  queueDrained(): void {
    if (!this.wantDrain) return;
    if (!this.conn.writable) { this.conn.waitDrain(this); return; }
    this.wantDrain = false;
    this.ondrain?.();
  }

  /** @internal The socket drained. */
  drained(): void {
    if (this.queuedBytes > 0 || !this.wantDrain) return;
    this.wantDrain = false;
    this.ondrain?.();
  }

  /** @internal A stream error we detected: RST to the peer, logged once per connection. */
  resetBy(code: number, reason: string): void {
    if (this.closed) return;
    this.conn.sendRst(this.id, code);
    this.conn.protocolError(reason, code, false);
    this.finish(code, new Error(`HTTP/2 stream error ${errorName(code)}: ${reason}`));
  }

  /** @internal Closed from outside: RST from the peer (`byPeer`), GOAWAY, or the connection died. */
  closeBy(code: number, byPeer: boolean, error?: Error): void {
    if (this.closed) return;
    if (!error && byPeer && code !== ErrorCode.NO_ERROR) error = new Error(`the peer reset the stream (RST_STREAM ${errorName(code)})`);
    this.finish(code, error);
  }

  /** @internal */
  onResponse(status: number, headers: HeaderMap): void { this.onresponse?.(status, headers); }

  private deliverEnd(): void {
    if (this.endDelivered) return;
    this.endDelivered = true;
    this.onend?.();
    if (this.localEnded && !this.closed) this.finish(0, undefined);
  }

  private credit(n: number): void {
    this.conn.consumed(n);
    this.creditStream(n);
  }

  private creditStream(n: number): void {
    if (this.remoteEnded) return;
    this.recvUnacked += n;
    if (this.recvUnacked >= this.recvTarget >>> 1) {
      this.conn.streamWindowUpdate(this.id, this.recvUnacked);
      this.recvWindow += this.recvUnacked;
      this.recvUnacked = 0;
    }
  }

  private finish(code: number, error: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.rstCode = code;
    this.error = error;
    // What the peer sent that nobody read still gives the connection window back.
    if (this.held > 0) { this.conn.consumed(this.held); this.held = 0; }
    this.inbox = null;
    this.queue = [];
    this.queuedBytes = 0;
    this.conn.streamClosed(this);
    this.onclose?.(code, error);
  }
}
