// One HTTP/2 connection (RFC 9113), client or server, carrying CONNECT tunnels only: what HBONE
// needs and nothing else. It replaces node:http2 on the L4 path, whose per-stream objects
// (Http2Stream, its Duplex machinery, nghttp2 callbacks) dominated the daemon's CPU profile.
//
// Shape: bytes from the (TLS) socket are parsed into frames in place; a DATA payload is handed
// to its stream as a slice of the socket's chunk, as it arrives, without waiting for the whole
// frame. Frames we send are queued and written once per turn of the event loop (setImmediate:
// everything the reads of one poll phase produced, for all streams, goes out in one TLS write).
//
// Flow control both ways: we honour the peer's connection and stream windows (DATA waits in
// the stream's queue when a window is closed), and give our windows back in batches, once half
// of a window has been consumed. "Consumed" means handed to the stream's reader while it is not
// paused: a reader that cannot keep up pauses the stream, and the window it holds back stops
// the peer (end-to-end back-pressure, as node:http2 does it).
//
// A hostile peer gets a stream error (RST_STREAM) or a connection error (GOAWAY with the
// RFC's code, then close) for every malformed input; nothing it sends throws out of the
// parser. Floods of SETTINGS, PING, RST_STREAM (rapid reset, CVE-2023-44487), empty DATA and
// CONTINUATION frames are cut off with ENHANCE_YOUR_CALM.
import type * as net from 'node:net';
import {
  DEFAULT_WINDOW, ErrorCode, FRAME_HEADER_LENGTH, Flag, FrameType, MAX_MAX_FRAME_SIZE, MAX_STREAM_ID, MAX_WINDOW,
  MIN_MAX_FRAME_SIZE, PREFACE, Setting, errorName,
} from './constants';
import { HpackDecoder, HpackEncoder, HpackError, type HeaderList } from './hpack';
import { H2Stream, type HeaderMap } from './stream';
import { frameHeader, windowUpdateFrame, writeFrameHeader } from './frames';
import { validateRequest, validateResponse } from './headers';

export interface H2LocalSettings {
  /** SETTINGS_INITIAL_WINDOW_SIZE: our receive window per stream. */
  initialWindowSize: number;
  /** SETTINGS_MAX_FRAME_SIZE we accept. */
  maxFrameSize: number;
  /** Streams the peer may open at once (servers); clients advertise 0 (no push). */
  maxConcurrentStreams?: number;
  maxHeaderListSize?: number;
  headerTableSize?: number;
}

/** Rates above which the peer is told ENHANCE_YOUR_CALM and the connection closes. */
export interface H2FloodLimits {
  /** Per second, each. */
  settingsPerSecond: number;
  pingsPerSecond: number;
  resetsPerSecond: number;
  emptyDataPerSecond: number;
  /** Per header block. */
  continuationFrames: number;
  /** Bytes of one header block, compressed. */
  headerBlockBytes: number;
}

export const DEFAULT_FLOOD_LIMITS: Readonly<H2FloodLimits> = Object.freeze({
  settingsPerSecond: 100,
  pingsPerSecond: 100,
  resetsPerSecond: 1_000,
  emptyDataPerSecond: 1_000,
  continuationFrames: 64,
  headerBlockBytes: 64 * 1024,
});

export interface H2ConnectionOptions {
  role: 'client' | 'server';
  settings: H2LocalSettings;
  /** Our connection-level receive window (raised from 65,535 with WINDOW_UPDATE at once). */
  connectionWindow: number;
  limits?: Partial<H2FloodLimits>;
  /** With streams open and no frame from the peer for this long, PING (0: never)... */
  keepaliveMs?: number;
  /** ...and close the connection if the PING is not answered within this long. */
  pingTimeoutMs?: number;
  /** Called just before an unanswered keepalive PING closes the connection. */
  onKeepaliveTimeout?: () => void;
  /** Close, gracefully, after this long without streams and without frames (0: never). */
  idleTimeoutMs?: number;
  /** Server: a new request stream (CONNECT or not; the caller answers). */
  onStream?: (stream: H2Stream, headers: HeaderMap) => void;
  /** Every stream, once, when it closed (the pool's accounting). */
  onStreamClose?: (stream: H2Stream) => void;
  onRemoteSettings?: (s: { maxConcurrentStreams?: number }) => void;
  onGoaway?: (code: number, lastStreamId: number, debug: Buffer) => void;
  /** The first protocol error of this connection, ours or the peer's (log it; bounded: once). */
  onProtocolError?: (reason: string, code: number, byPeer: boolean) => void;
  onClose?: (error?: Error) => void;
}

/** An H2Connection error a caller may retry on a fresh connection (the peer did not process the stream). */
export class H2RefusedError extends Error {
  readonly retryable = true;
}

const EMPTY = Buffer.alloc(0);

/** Counts events per second; true once `limit` is passed. Date.now only on counted frames. */
class Rate {
  private count = 0;
  private windowStart = 0;
  constructor(private readonly limit: number) {}
  over(): boolean {
    const now = Date.now();
    if (now - this.windowStart >= 1000) { this.windowStart = now; this.count = 0; }
    return ++this.count > this.limit;
  }
}

interface PendingHeaders { streamId: number; flags: number; fragments: Buffer[]; bytes: number; frames: number }

export class H2Connection {
  readonly role: 'client' | 'server';
  /** Open streams by id. */
  readonly streams = new Map<number, H2Stream>();
  /** Set once the connection is closing or closed: the first error, if it failed. */
  error?: Error;
  closed = false;
  goawaySent = false;
  goawayReceived = false;
  /** The peer's settings as they matter to us. */
  peerMaxConcurrentStreams = 100;
  peerInitialWindow = DEFAULT_WINDOW;
  peerMaxFrameSize = MIN_MAX_FRAME_SIZE;
  /** Frames received; the keepalive timer compares it between ticks. */
  framesReceived = 0;

  /** @internal Connection send window (the peer's receive window for us). */
  sendWindow = DEFAULT_WINDOW;
  /** @internal bytes received and consumed but not yet given back. */
  private recvUnacked = 0;
  private recvWindow = DEFAULT_WINDOW;
  private readonly recvWindowTarget: number;
  readonly localSettings: Required<H2LocalSettings>;
  private readonly limits: H2FloodLimits;
  private readonly decoder: HpackDecoder;
  private readonly encoder = new HpackEncoder();
  private readonly opts: H2ConnectionOptions;

  private nextStreamId: number;
  /** Highest stream id the peer opened (server) or we opened (client's knowledge of idle ids). */
  private lastPeerStreamId = 0;
  private peerStreamsOpen = 0;
  private prefaceLeft: number;
  private settingsReceived = false;

  // Input state: frames split across reads are collected, then joined once.
  private inParts: Buffer[] = [];
  private inBytes = 0;
  private inNeed = 0;
  /** The rest of a DATA payload still to come from the socket, and its stream (null: dropped). */
  private dataLeft = 0;
  private dataStream: H2Stream | null = null;
  private dataEndStream = false;
  private continuation?: PendingHeaders;

  // Output: frames of this turn, written together.
  private out: Buffer[] = [];
  private outBytes = 0;
  private flushScheduled = false;
  /** The socket's buffer is full: streams that were told to wait, woken on 'drain'. */
  private socketBlocked = false;
  /** Streams with DATA queued behind a closed window or a full socket. */
  private readonly blocked = new Set<H2Stream>();
  private readonly waitingDrain = new Set<H2Stream>();

  private readonly rates: { settings: Rate; ping: Rate; rst: Rate; emptyData: Rate };
  private keepaliveTimer?: NodeJS.Timeout;
  private pingTimer?: NodeJS.Timeout;
  private idleSince = Date.now();
  private protocolErrorReported = false;
  private closeTimer?: NodeJS.Timeout;

  constructor(readonly socket: net.Socket, opts: H2ConnectionOptions) {
    this.opts = opts;
    this.role = opts.role;
    this.nextStreamId = opts.role === 'client' ? 1 : 2;
    this.prefaceLeft = opts.role === 'server' ? PREFACE.length : 0;
    const s = opts.settings;
    this.localSettings = {
      initialWindowSize: s.initialWindowSize, maxFrameSize: s.maxFrameSize,
      maxConcurrentStreams: s.maxConcurrentStreams ?? (opts.role === 'client' ? 0 : 100),
      maxHeaderListSize: s.maxHeaderListSize ?? 64 * 1024, headerTableSize: s.headerTableSize ?? 4096,
    };
    this.limits = { ...DEFAULT_FLOOD_LIMITS, ...opts.limits };
    this.rates = {
      settings: new Rate(this.limits.settingsPerSecond), ping: new Rate(this.limits.pingsPerSecond),
      rst: new Rate(this.limits.resetsPerSecond), emptyData: new Rate(this.limits.emptyDataPerSecond),
    };
    this.decoder = new HpackDecoder({ maxTableSize: this.localSettings.headerTableSize, maxHeaderListSize: this.localSettings.maxHeaderListSize });
    this.recvWindowTarget = Math.max(DEFAULT_WINDOW, opts.connectionWindow);

    socket.on('data', (chunk: Buffer) => this.onSocketData(chunk));
    socket.on('drain', () => this.onSocketDrain());
    socket.on('error', (e: Error) => { this.error ??= e; });
    socket.on('end', () => { if (!this.closed) this.onSocketEnd(); });
    socket.on('close', () => this.onSocketClose());

    // Preface (client) and our SETTINGS, then the connection window.
    if (opts.role === 'client') this.queue(PREFACE);
    this.queue(this.settingsFrame());
    if (this.recvWindowTarget > DEFAULT_WINDOW) {
      this.queue(windowUpdateFrame(0, this.recvWindowTarget - DEFAULT_WINDOW));
      this.recvWindow = this.recvWindowTarget;
    }
    this.startTimers();
  }

  get activeStreams(): number { return this.streams.size; }

  /** Client: opens a CONNECT (or any) request stream. Throws H2RefusedError when this
   * connection takes no new streams (GOAWAY, closing, ids exhausted). */
  request(headers: string[]): H2Stream {
    if (this.role !== 'client') throw new TypeError('only a client opens streams');
    if (this.closed || this.goawayReceived || this.goawaySent) throw new H2RefusedError('the HTTP/2 connection is closing (GOAWAY); it takes no new streams');
    const id = this.nextStreamId;
    if (id > MAX_STREAM_ID) throw new H2RefusedError('the HTTP/2 connection ran out of stream ids');
    this.nextStreamId += 2;
    const stream = new H2Stream(this, id, this.peerInitialWindow, this.localSettings.initialWindowSize);
    this.streams.set(id, stream);
    this.idleSince = 0;
    this.sendHeaders(id, headers, false);
    return stream;
  }

  /** Sends PING; `onAck` runs when the peer answers. */
  ping(onAck: () => void): void {
    const payload = Buffer.allocUnsafe(8);
    payload.writeDoubleBE(Math.random());
    this.pendingPing = { payload, onAck };
    this.queue(frameHeader(8, FrameType.PING, 0, 0), payload);
  }
  private pendingPing?: { payload: Buffer; onAck: () => void };

  /** Graceful: GOAWAY NO_ERROR (no new streams), open streams finish, then the socket ends. */
  close(): void {
    if (this.closed) return;
    if (!this.goawaySent) this.sendGoaway(ErrorCode.NO_ERROR, EMPTY);
    this.maybeFinish();
  }

  /** GOAWAY with an error code and debug text, then close (the connection is refused). */
  refuse(code: number, debug: string): void {
    this.connectionError(code, debug, false);
  }

  /** Now: streams end with CANCEL (and `error`), the socket is destroyed. */
  destroy(error?: Error): void {
    if (error) this.error ??= error;
    this.socket.destroy();
    this.onSocketClose();
  }

  // ---------------------------------------------------------------- input

  private onSocketData(chunk: Buffer): void {
    if (this.closed || this.goawayError) return;
    let buf = chunk;
    let off = 0;
    if (this.dataLeft > 0) {
      off = this.continueData(buf);
      if (off >= buf.length) return;
    }
    if (this.inBytes > 0) {
      this.inParts.push(off > 0 ? buf.subarray(off) : buf);
      this.inBytes += buf.length - off;
      if (this.inBytes < this.inNeed) return;
      buf = this.inParts.length === 1 ? this.inParts[0] : Buffer.concat(this.inParts, this.inBytes);
      this.inParts = [];
      this.inBytes = 0;
      off = 0;
    }
    if (this.prefaceLeft > 0) {
      const n = Math.min(this.prefaceLeft, buf.length - off);
      const at = PREFACE.length - this.prefaceLeft;
      if (buf.compare(PREFACE, at, at + n, off, off + n) !== 0) {
        this.connectionError(ErrorCode.PROTOCOL_ERROR, 'the client did not send the HTTP/2 connection preface', false);
        return;
      }
      this.prefaceLeft -= n;
      off += n;
    }
    this.parse(buf, off);
  }

  private parse(buf: Buffer, off: number): void {
    const end = buf.length;
    while (end - off >= FRAME_HEADER_LENGTH) {
      const len = (buf[off] << 16) | (buf[off + 1] << 8) | buf[off + 2];
      const type = buf[off + 3];
      const flags = buf[off + 4];
      const id = buf.readUInt32BE(off + 5) & 0x7fff_ffff;
      if (len > this.localSettings.maxFrameSize) {
        this.connectionError(ErrorCode.FRAME_SIZE_ERROR, `a frame of ${len} bytes exceeds our SETTINGS_MAX_FRAME_SIZE ${this.localSettings.maxFrameSize}`, false);
        return;
      }
      this.framesReceived++;
      if (!this.settingsReceived && (type !== FrameType.SETTINGS || (flags & Flag.ACK))) {
        this.connectionError(ErrorCode.PROTOCOL_ERROR, 'the first frame was not SETTINGS', false);
        return;
      }
      // DATA without padding streams through: its payload need not be here in full.
      if (type === FrameType.DATA && !(flags & Flag.PADDED) && this.continuation === undefined) {
        const available = Math.min(len, end - off - FRAME_HEADER_LENGTH);
        if (!this.startData(id, flags, len)) return;
        off += FRAME_HEADER_LENGTH;
        if (available > 0) this.deliver(buf.subarray(off, off + available));
        off += available;
        this.dataLeft = len - available;
        if (this.dataLeft === 0) this.endData();
        if (this.closed || this.goawayError) return;
        continue;
      }
      if (end - off < FRAME_HEADER_LENGTH + len) break;
      const p = off + FRAME_HEADER_LENGTH;
      off = p + len;
      this.onFrame(type, flags, id, buf, p, off);
      if (this.closed || this.goawayError) return;
    }
    if (off < end) {
      const rest = buf.subarray(off);
      this.inParts = [rest];
      this.inBytes = rest.length;
      this.inNeed = rest.length < FRAME_HEADER_LENGTH ? FRAME_HEADER_LENGTH : FRAME_HEADER_LENGTH + ((rest[0] << 16) | (rest[1] << 8) | rest[2]);
    }
  }

  /** The rest of a DATA payload; returns how much of `buf` it took. */
  private continueData(buf: Buffer): number {
    const n = Math.min(this.dataLeft, buf.length);
    this.dataLeft -= n;
    this.deliver(n === buf.length ? buf : buf.subarray(0, n));
    if (this.dataLeft === 0) this.endData();
    return n;
  }

  private deliver(payload: Buffer): void {
    const s = this.dataStream;
    if (s === null) { this.consumed(payload.length); return; }
    s.receive(payload);
  }

  private endData(): void {
    const s = this.dataStream;
    this.dataStream = null;
    if (s !== null && this.dataEndStream) s.remoteEnd();
  }

  /** Checks a DATA frame header and its flow control; false when the connection failed. */
  private startData(id: number, flags: number, len: number): boolean {
    this.dataStream = null;
    this.dataEndStream = (flags & Flag.END_STREAM) !== 0;
    if (id === 0) { this.connectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0', false); return false; }
    if (len === 0 && !this.dataEndStream && this.rates.emptyData.over()) {
      this.connectionError(ErrorCode.ENHANCE_YOUR_CALM, 'flood of empty DATA frames', false);
      return false;
    }
    this.recvWindow -= len;
    if (this.recvWindow < 0) {
      this.connectionError(ErrorCode.FLOW_CONTROL_ERROR, 'DATA beyond the connection window', false);
      return false;
    }
    const s = this.streams.get(id);
    if (s === undefined) {
      if (this.isIdle(id)) { this.connectionError(ErrorCode.PROTOCOL_ERROR, `DATA on idle stream ${id}`, false); return false; }
      return true; // a stream we closed or reset: drop, but give the connection window back
    }
    // Refused payloads still count against the connection window: deliver() gives it back.
    if (s.remoteEnded) { s.resetBy(ErrorCode.STREAM_CLOSED, 'DATA after END_STREAM'); return true; }
    if (this.role === 'client' && !s.responded) { s.resetBy(ErrorCode.PROTOCOL_ERROR, 'DATA before the response headers'); return true; }
    if (!s.takeWindow(len)) { s.resetBy(ErrorCode.FLOW_CONTROL_ERROR, 'DATA beyond the stream window'); return true; }
    this.dataStream = s;
    return true;
  }

  private isIdle(id: number): boolean {
    const ours = (id & 1) === (this.role === 'client' ? 1 : 0);
    return ours ? id >= this.nextStreamId : id > this.lastPeerStreamId;
  }

  private onFrame(type: number, flags: number, id: number, buf: Buffer, p: number, end: number): void {
    const len = end - p;
    if (this.continuation !== undefined && (type !== FrameType.CONTINUATION || id !== this.continuation.streamId)) {
      this.connectionError(ErrorCode.PROTOCOL_ERROR, 'a header block was interrupted by another frame', false);
      return;
    }
    switch (type) {
      case FrameType.DATA: { // padded (unpadded DATA streams through parse())
        if (len < 1 || buf[p] >= len) { this.connectionError(ErrorCode.PROTOCOL_ERROR, 'DATA padding longer than the frame', false); return; }
        if (!this.startData(id, flags, len)) return;
        const padding = buf[p] + 1;
        const dataEnd = end - buf[p];
        this.consumed(padding);
        if (this.dataStream) this.dataStream.creditPadding(padding);
        if (dataEnd > p + 1) this.deliver(buf.subarray(p + 1, dataEnd));
        this.endData();
        return;
      }
      case FrameType.HEADERS: return this.onHeaders(flags, id, buf, p, end);
      case FrameType.PRIORITY:
        if (id === 0) { this.connectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0', false); return; }
        if (len !== 5) this.streamError(id, ErrorCode.FRAME_SIZE_ERROR, 'PRIORITY frame not 5 bytes');
        return; // priorities are ignored (RFC 9113 deprecates them)
      case FrameType.RST_STREAM: {
        if (id === 0) { this.connectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0', false); return; }
        if (len !== 4) { this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM frame not 4 bytes', false); return; }
        if (this.isIdle(id)) { this.connectionError(ErrorCode.PROTOCOL_ERROR, `RST_STREAM on idle stream ${id}`, false); return; }
        if (this.rates.rst.over()) { this.connectionError(ErrorCode.ENHANCE_YOUR_CALM, 'flood of RST_STREAM frames (rapid reset)', false); return; }
        this.streams.get(id)?.closeBy(buf.readUInt32BE(p), true);
        return;
      }
      case FrameType.SETTINGS: return this.onSettings(flags, id, buf, p, end);
      case FrameType.PUSH_PROMISE:
        this.connectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE: push is disabled', false);
        return;
      case FrameType.PING: {
        if (id !== 0) { this.connectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream', false); return; }
        if (len !== 8) { this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING frame not 8 bytes', false); return; }
        if (flags & Flag.ACK) {
          const pp = this.pendingPing;
          if (pp && buf.compare(pp.payload, 0, 8, p, end) === 0) { this.pendingPing = undefined; pp.onAck(); }
          return;
        }
        if (this.rates.ping.over()) { this.connectionError(ErrorCode.ENHANCE_YOUR_CALM, 'flood of PING frames', false); return; }
        this.queue(frameHeader(8, FrameType.PING, Flag.ACK, 0), Buffer.from(buf.subarray(p, end)));
        return;
      }
      case FrameType.GOAWAY: {
        if (id !== 0) { this.connectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream', false); return; }
        if (len < 8) { this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY frame shorter than 8 bytes', false); return; }
        this.onGoaway(buf.readUInt32BE(p) & 0x7fff_ffff, buf.readUInt32BE(p + 4), Buffer.from(buf.subarray(p + 8, Math.min(end, p + 8 + 1024))));
        return;
      }
      case FrameType.WINDOW_UPDATE: {
        if (len !== 4) { this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE frame not 4 bytes', false); return; }
        const inc = buf.readUInt32BE(p) & 0x7fff_ffff;
        if (id === 0) {
          if (inc === 0) { this.connectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0 on the connection', false); return; }
          this.sendWindow += inc;
          if (this.sendWindow > MAX_WINDOW) { this.connectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window above 2^31-1', false); return; }
          this.unblock();
          return;
        }
        const s = this.streams.get(id);
        if (s === undefined) {
          if (this.isIdle(id)) this.connectionError(ErrorCode.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${id}`, false);
          return;
        }
        if (inc === 0) { s.resetBy(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0'); return; }
        s.sendWindow += inc;
        if (s.sendWindow > MAX_WINDOW) { s.resetBy(ErrorCode.FLOW_CONTROL_ERROR, 'stream window above 2^31-1'); return; }
        if (s.hasQueued()) this.sendQueued(s);
        return;
      }
      case FrameType.CONTINUATION: {
        const c = this.continuation;
        if (c === undefined) { this.connectionError(ErrorCode.PROTOCOL_ERROR, 'CONTINUATION without HEADERS', false); return; }
        c.frames++;
        c.bytes += len;
        if (c.frames > this.limits.continuationFrames || c.bytes > this.limits.headerBlockBytes) {
          this.connectionError(ErrorCode.ENHANCE_YOUR_CALM, `header block of more than ${this.limits.continuationFrames} frames or ${this.limits.headerBlockBytes} bytes`, false);
          return;
        }
        c.fragments.push(buf.subarray(p, end));
        if (flags & Flag.END_HEADERS) {
          this.continuation = undefined;
          this.onHeaderBlock(c.streamId, c.flags, Buffer.concat(c.fragments, c.bytes));
        }
        return;
      }
      default:
        return; // unknown frame types are ignored (section 5.5)
    }
  }

  private onHeaders(flags: number, id: number, buf: Buffer, p: number, end: number): void {
    if (id === 0) { this.connectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0', false); return; }
    let padLen = 0;
    if (flags & Flag.PADDED) {
      if (p >= end) { this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'HEADERS too short for its padding', false); return; }
      padLen = buf[p++];
    }
    if (flags & Flag.PRIORITY) {
      if (end - p < 5) { this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'HEADERS too short for its priority', false); return; }
      if ((buf.readUInt32BE(p) & 0x7fff_ffff) === id) { this.streamError(id, ErrorCode.PROTOCOL_ERROR, 'stream depends on itself'); }
      p += 5;
    }
    if (padLen > end - p) { this.connectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS padding longer than the frame', false); return; }
    const fragment = buf.subarray(p, end - padLen);
    if (flags & Flag.END_HEADERS) { this.onHeaderBlock(id, flags, fragment); return; }
    if (fragment.length > this.limits.headerBlockBytes) {
      this.connectionError(ErrorCode.ENHANCE_YOUR_CALM, `header block larger than ${this.limits.headerBlockBytes} bytes`, false);
      return;
    }
    // The fragment may be a slice of a socket chunk that is reused? No: Node hands out fresh
    // buffers per read, so holding the slice until END_HEADERS is safe.
    this.continuation = { streamId: id, flags, fragments: [fragment], bytes: fragment.length, frames: 1 };
  }

  private onHeaderBlock(id: number, flags: number, block: Buffer): void {
    let list: HeaderList;
    let tooLarge: boolean;
    try {
      ({ headers: list, tooLarge } = this.decoder.decode(block));
    } catch (e) {
      const why = e instanceof HpackError ? e.message : 'header block could not be decoded';
      this.connectionError(ErrorCode.COMPRESSION_ERROR, why, false);
      return;
    }
    const endStream = (flags & Flag.END_STREAM) !== 0;
    const existing = this.streams.get(id);
    if (this.role === 'server') {
      if (existing) { // trailers
        if (existing.remoteEnded) { this.connectionError(ErrorCode.STREAM_CLOSED, `HEADERS on half-closed stream ${id}`, false); return; }
        if (!endStream) { existing.resetBy(ErrorCode.PROTOCOL_ERROR, 'trailers without END_STREAM'); return; }
        existing.remoteEnd();
        return;
      }
      if ((id & 1) === 0) { this.connectionError(ErrorCode.PROTOCOL_ERROR, `client opened even stream id ${id}`, false); return; }
      if (id <= this.lastPeerStreamId) { this.connectionError(ErrorCode.STREAM_CLOSED, `HEADERS on closed stream ${id}`, false); return; }
      this.lastPeerStreamId = id;
      if (this.goawaySent || this.closed) { this.sendRst(id, ErrorCode.REFUSED_STREAM); return; }
      if (tooLarge) { this.sendRst(id, ErrorCode.PROTOCOL_ERROR); this.protocolError(`request headers larger than ${this.localSettings.maxHeaderListSize} bytes`, ErrorCode.PROTOCOL_ERROR, false); return; }
      const v = validateRequest(list);
      if (typeof v === 'string') { this.sendRst(id, ErrorCode.PROTOCOL_ERROR); this.protocolError(`malformed request: ${v}`, ErrorCode.PROTOCOL_ERROR, false); return; }
      if (this.peerStreamsOpen >= this.localSettings.maxConcurrentStreams) { this.sendRst(id, ErrorCode.REFUSED_STREAM); return; }
      const stream = new H2Stream(this, id, this.peerInitialWindow, this.localSettings.initialWindowSize);
      this.streams.set(id, stream);
      this.peerStreamsOpen++;
      this.idleSince = 0;
      if (endStream) stream.remoteEnded = true;
      this.opts.onStream?.(stream, v);
      return;
    }
    // client: responses to our streams
    if (!existing) {
      if ((id & 1) === 0) { this.connectionError(ErrorCode.PROTOCOL_ERROR, `server opened stream ${id}`, false); return; }
      if (this.isIdle(id)) { this.connectionError(ErrorCode.PROTOCOL_ERROR, `HEADERS on idle stream ${id}`, false); return; }
      return; // a stream we reset meanwhile
    }
    if (existing.remoteEnded) { this.connectionError(ErrorCode.STREAM_CLOSED, `HEADERS on half-closed stream ${id}`, false); return; }
    if (existing.responded) {
      if (!endStream) { existing.resetBy(ErrorCode.PROTOCOL_ERROR, 'trailers without END_STREAM'); return; }
      existing.remoteEnd();
      return;
    }
    if (tooLarge) { existing.resetBy(ErrorCode.PROTOCOL_ERROR, 'response headers too large'); return; }
    const v = validateResponse(list);
    if (typeof v === 'string') { existing.resetBy(ErrorCode.PROTOCOL_ERROR, `malformed response: ${v}`); return; }
    const status = v.status;
    if (status < 200) {
      if (endStream) existing.resetBy(ErrorCode.PROTOCOL_ERROR, 'informational response with END_STREAM');
      return; // 1xx: wait for the final response
    }
    existing.responded = true;
    existing.onResponse(status, v.headers);
    if (endStream && !existing.closed) existing.remoteEnd();
  }

  private onSettings(flags: number, id: number, buf: Buffer, p: number, end: number): void {
    if (id !== 0) { this.connectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream', false); return; }
    const len = end - p;
    if (flags & Flag.ACK) {
      if (len !== 0) this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload', false);
      return;
    }
    if (len % 6 !== 0) { this.connectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS length not a multiple of 6', false); return; }
    if (this.settingsReceived && this.rates.settings.over()) { this.connectionError(ErrorCode.ENHANCE_YOUR_CALM, 'flood of SETTINGS frames', false); return; }
    this.settingsReceived = true;
    let maxStreams: number | undefined;
    for (let i = p; i < end; i += 6) {
      const key = buf.readUInt16BE(i);
      const value = buf.readUInt32BE(i + 2);
      switch (key) {
        case Setting.HEADER_TABLE_SIZE: this.encoder.peerTableSizeChanged(); break;
        case Setting.ENABLE_PUSH:
          if (value > 1 || (value === 1 && this.role === 'client')) { this.connectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH ${value}`, false); return; }
          break;
        case Setting.MAX_CONCURRENT_STREAMS: maxStreams = value; this.peerMaxConcurrentStreams = value; break;
        case Setting.INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW) { this.connectionError(ErrorCode.FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE ${value} above 2^31-1`, false); return; }
          const delta = value - this.peerInitialWindow;
          this.peerInitialWindow = value;
          for (const s of this.streams.values()) {
            s.sendWindow += delta;
            if (s.sendWindow > MAX_WINDOW) { this.connectionError(ErrorCode.FLOW_CONTROL_ERROR, 'a stream window went above 2^31-1', false); return; }
          }
          if (delta > 0) for (const s of this.streams.values()) if (s.hasQueued()) this.sendQueued(s);
          break;
        }
        case Setting.MAX_FRAME_SIZE:
          if (value < MIN_MAX_FRAME_SIZE || value > MAX_MAX_FRAME_SIZE) { this.connectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value} out of range`, false); return; }
          this.peerMaxFrameSize = value;
          break;
        default: break; // MAX_HEADER_LIST_SIZE is advisory; unknown settings are ignored
      }
    }
    this.queue(frameHeader(0, FrameType.SETTINGS, Flag.ACK, 0));
    this.opts.onRemoteSettings?.({ maxConcurrentStreams: maxStreams });
  }

  private onGoaway(lastStreamId: number, code: number, debug: Buffer): void {
    this.goawayReceived = true;
    if (code !== ErrorCode.NO_ERROR) this.protocolError(`the peer sent GOAWAY ${errorName(code)}${debug.length ? `: ${debug.toString('latin1').slice(0, 200)}` : ''}`, code, true);
    // Our streams above lastStreamId were not processed: they may be retried elsewhere.
    if (this.role === 'client') {
      for (const s of [...this.streams.values()]) {
        if (s.id > lastStreamId) s.closeBy(ErrorCode.REFUSED_STREAM, true, new H2RefusedError('the stream was refused by GOAWAY (not processed)'));
      }
    }
    this.opts.onGoaway?.(code, lastStreamId, debug);
    this.maybeFinish();
  }

  // ---------------------------------------------------------------- output

  /** @internal */
  queue(a: Buffer, b?: Buffer): void {
    this.out.push(a);
    this.outBytes += a.length;
    if (b !== undefined) { this.out.push(b); this.outBytes += b.length; }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushBound);
    }
  }

  private readonly flushBound = (): void => this.flush();

  private flush(): void {
    this.flushScheduled = false;
    const out = this.out;
    if (out.length === 0) return;
    const bytes = this.outBytes;
    this.out = [];
    this.outBytes = 0;
    const sock = this.socket;
    if (sock.destroyed || !sock.writable) return;
    let ok: boolean;
    // One buffer, one write: a TLS socket given several (writev) copies them into a fresh
    // native buffer anyway, which showed as GC and writev time in the bulk profile.
    ok = sock.write(out.length === 1 ? out[0] : Buffer.concat(out, bytes));
    if (!ok) this.socketBlocked = true;
  }

  /** @internal false when the stream should wait for 'drain' (socket buffer full). */
  get writable(): boolean { return !this.socketBlocked; }

  /** @internal */
  waitDrain(s: H2Stream): void { this.waitingDrain.add(s); }

  private onSocketDrain(): void {
    this.socketBlocked = false;
    if (this.waitingDrain.size === 0) return;
    const waiting = [...this.waitingDrain];
    this.waitingDrain.clear();
    for (const s of waiting) s.drained();
  }

  /** @internal Sends what fits of a stream's queue; the rest waits for WINDOW_UPDATE. */
  sendQueued(s: H2Stream): void {
    const maxFrame = this.peerMaxFrameSize;
    while (s.queue.length > 0) {
      const chunk = s.queue[0];
      const room = Math.min(s.sendWindow, this.sendWindow);
      if (room <= 0 && chunk.length > 0) { this.blocked.add(s); return; }
      const n = Math.min(chunk.length, room, maxFrame);
      const last = n === chunk.length;
      const endStream = last && s.queue.length === 1 && s.endQueued;
      this.queue(frameHeader(n, FrameType.DATA, endStream ? Flag.END_STREAM : 0, s.id), last ? chunk : chunk.subarray(0, n));
      s.sendWindow -= n;
      this.sendWindow -= n;
      s.queuedBytes -= n;
      if (last) s.queue.shift(); else s.queue[0] = chunk.subarray(n);
      if (endStream) { s.endQueued = false; s.localEnd(); return; }
    }
    this.blocked.delete(s);
    if (s.endQueued) {
      s.endQueued = false;
      this.queue(frameHeader(0, FrameType.DATA, Flag.END_STREAM, s.id));
      s.localEnd();
    } else {
      s.queueDrained();
    }
  }

  private unblock(): void {
    if (this.blocked.size === 0) return;
    for (const s of [...this.blocked]) {
      if (this.sendWindow <= 0) return;
      this.blocked.delete(s);
      if (!s.closed) this.sendQueued(s);
    }
  }

  /** @internal HEADERS (+ CONTINUATION when the block exceeds the peer's frame size). */
  sendHeaders(id: number, list: string[], endStream: boolean): void {
    const block = this.encoder.encode(list);
    const max = this.peerMaxFrameSize;
    let flags = endStream ? Flag.END_STREAM : 0;
    if (block.length <= max) {
      this.queue(frameHeader(block.length, FrameType.HEADERS, flags | Flag.END_HEADERS, id), block);
      return;
    }
    let type = FrameType.HEADERS;
    for (let off = 0; off < block.length; off += max) {
      const part = block.subarray(off, off + max);
      const last = off + max >= block.length;
      this.queue(frameHeader(part.length, type, flags | (last ? Flag.END_HEADERS : 0), id), part);
      type = FrameType.CONTINUATION;
      flags = 0;
    }
  }

  /** @internal */
  sendRst(id: number, code: number): void {
    const f = Buffer.allocUnsafe(13);
    writeFrameHeader(f, 4, FrameType.RST_STREAM, 0, id);
    f.writeUInt32BE(code, 9);
    this.queue(f);
  }

  /** @internal Bytes handed to a reader: give the connection window back in batches. */
  consumed(n: number): void {
    this.recvUnacked += n;
    if (this.recvUnacked >= this.recvWindowTarget >>> 1) {
      this.queue(windowUpdateFrame(0, this.recvUnacked));
      this.recvWindow += this.recvUnacked;
      this.recvUnacked = 0;
    }
  }

  /** @internal */
  streamWindowUpdate(id: number, n: number): void {
    this.queue(windowUpdateFrame(id, n));
  }

  /** @internal A stream is done: forget it, and finish a closing connection once none is left. */
  streamClosed(s: H2Stream): void {
    if (this.streams.get(s.id) !== s) return;
    this.streams.delete(s.id);
    this.blocked.delete(s);
    this.waitingDrain.delete(s);
    if ((s.id & 1) === (this.role === 'server' ? 1 : 0)) this.peerStreamsOpen--;
    if (this.streams.size === 0) this.idleSince = Date.now();
    this.opts.onStreamClose?.(s);
    this.maybeFinish();
  }

  /** @internal a stream-level protocol problem the peer caused (logged once per connection). */
  protocolError(reason: string, code: number, byPeer: boolean): void {
    if (this.protocolErrorReported) return;
    this.protocolErrorReported = true;
    this.opts.onProtocolError?.(reason, code, byPeer);
  }

  private streamError(id: number, code: number, reason: string): void {
    const s = this.streams.get(id);
    if (s) s.resetBy(code, reason); else this.sendRst(id, code);
  }

  private sendGoaway(code: number, debug: Buffer): void {
    this.goawaySent = true;
    const f = Buffer.allocUnsafe(17 + debug.length);
    writeFrameHeader(f, 8 + debug.length, FrameType.GOAWAY, 0, 0);
    f.writeUInt32BE(this.lastPeerStreamId, 9);
    f.writeUInt32BE(code, 13);
    debug.copy(f, 17);
    this.queue(f);
  }

  private goawayError = false;

  /** GOAWAY with `code`, streams fail, the socket ends (and is destroyed if it lingers). */
  private connectionError(code: number, reason: string, byPeer: boolean): void {
    if (this.closed || this.goawayError) return;
    this.goawayError = true;
    this.protocolError(reason, code, byPeer);
    this.error ??= new Error(`HTTP/2 connection error ${errorName(code)}: ${reason}`);
    this.sendGoaway(code, Buffer.from(reason.slice(0, 256), 'latin1'));
    this.flush();
    const err = this.error;
    for (const s of [...this.streams.values()]) s.closeBy(ErrorCode.CANCEL, false, err);
    this.socket.end();
    this.closeTimer = setTimeout(() => this.socket.destroy(), 1000);
    this.closeTimer.unref();
  }

  private maybeFinish(): void {
    if (this.closed || this.streams.size > 0) return;
    if (!this.goawaySent && !this.goawayReceived) return;
    if (!this.goawaySent) this.sendGoaway(ErrorCode.NO_ERROR, EMPTY);
    this.flush();
    this.socket.end();
    this.closeTimer ??= setTimeout(() => this.socket.destroy(), 2000);
    this.closeTimer.unref();
  }

  private onSocketEnd(): void {
    // The peer will send nothing more: streams still waiting for its bytes cannot finish.
    const err = this.error ?? new Error('the peer closed the HBONE connection');
    for (const s of [...this.streams.values()]) if (!s.remoteEnded) s.closeBy(ErrorCode.CANCEL, false, err);
    if (this.streams.size === 0) this.socket.end();
  }

  private onSocketClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopTimers();
    if (this.closeTimer) clearTimeout(this.closeTimer);
    const err = this.error ?? new Error('the HBONE connection closed');
    for (const s of [...this.streams.values()]) s.closeBy(ErrorCode.CANCEL, false, err);
    this.out = [];
    this.opts.onClose?.(this.error);
  }

  private startTimers(): void {
    const ka = this.opts.keepaliveMs ?? 0;
    const idle = this.opts.idleTimeoutMs ?? 0;
    const tick = Math.min(ka || Infinity, idle || Infinity);
    if (tick === Infinity) return;
    let seen = -1;
    this.keepaliveTimer = setInterval(() => {
      const quiet = this.framesReceived === seen;
      seen = this.framesReceived;
      if (idle > 0 && this.streams.size === 0 && this.idleSince > 0 && Date.now() - this.idleSince >= idle) { this.close(); return; }
      if (ka > 0 && quiet && this.streams.size > 0 && this.pingTimer === undefined) {
        this.pingTimer = setTimeout(() => {
          this.opts.onKeepaliveTimeout?.();
          this.error ??= new Error(`no answer to an HTTP/2 PING within ${this.opts.pingTimeoutMs ?? 10_000} ms; the peer or the network path to it is down`);
          this.destroy();
        }, this.opts.pingTimeoutMs ?? 10_000);
        this.pingTimer.unref();
        this.ping(() => { clearTimeout(this.pingTimer); this.pingTimer = undefined; });
      }
    }, tick);
    this.keepaliveTimer.unref();
  }

  private stopTimers(): void {
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    if (this.pingTimer) clearTimeout(this.pingTimer);
  }

  private settingsFrame(): Buffer {
    const s = this.localSettings;
    const entries: [number, number][] = [
      [Setting.MAX_CONCURRENT_STREAMS, s.maxConcurrentStreams],
      [Setting.INITIAL_WINDOW_SIZE, s.initialWindowSize],
      [Setting.MAX_FRAME_SIZE, s.maxFrameSize],
      [Setting.MAX_HEADER_LIST_SIZE, s.maxHeaderListSize],
    ];
    if (this.role === 'client') entries.unshift([Setting.ENABLE_PUSH, 0]);
    if (s.headerTableSize !== 4096) entries.unshift([Setting.HEADER_TABLE_SIZE, s.headerTableSize]);
    const f = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + 6 * entries.length);
    writeFrameHeader(f, 6 * entries.length, FrameType.SETTINGS, 0, 0);
    entries.forEach(([k, v], i) => { f.writeUInt16BE(k, 9 + 6 * i); f.writeUInt32BE(v, 11 + 6 * i); });
    return f;
  }
}
