// Splices an HBONE stream (one HTTP/2 CONNECT tunnel) and a TCP socket both ways, like
// proxy/pipe.ts does for two sockets, without Node stream machinery on the tunnel side:
// socket 'data' -> DATA frame -> TLS write, and DATA payload -> socket.write. Back-pressure:
// a socket that cannot take more pauses the stream (our HTTP/2 window then stops the peer),
// and a stream that cannot send (peer window closed, TLS buffer full) pauses the socket.
// Each direction closes on its own (END_STREAM -> FIN, FIN -> END_STREAM). An RST_STREAM from
// the peer destroys the socket; a socket error resets the stream with CONNECT_ERROR
// (RFC 9113 section 8.5). Buffers are handed through as they come: no copies here.
import type * as net from 'node:net';
import { HboneErrors } from '../errors';
import { endSocketCleanly, type CleanEndSet } from './clean-end';
import { ErrorCode } from './h2/constants';
import type { H2Stream } from './h2/stream';

export interface SpliceResult {
  /** The first error either side reported, if any. */
  error?: Error;
  /** Which side failed first. */
  failedSide?: 'stream' | 'socket';
  /** HTTP/2 RST_STREAM code the stream closed with (0 when it closed cleanly). */
  rstCode?: number;
}

// One object per splice holds its state; the socket and stream callbacks are shared functions
// that find it through a symbol on the socket or stream (EventEmitter and H2Stream call them
// with `this` = socket / stream), instead of a dozen closures per connection.
const SPLICE = Symbol('nodemesh.splice');
type Spliced<T> = T & { [SPLICE]?: Splice };

class Splice {
  error: Error | undefined;
  failedSide: SpliceResult['failedSide'];
  pending = 2;
  // Set once the daemon ends this splice at its drain deadline: END_STREAM toward the peer
  // (its daemon sends its app a FIN), FIN toward our app; the socket's end is then
  // endSocketCleanly's to decide, whatever the stream does meanwhile.
  endingCleanly = false;
  endedCleanly: (() => void) | undefined;
  forget: (() => void) | undefined;

  constructor(readonly stream: H2Stream, readonly socket: net.Socket, readonly authority: string, readonly resolve: (r: SpliceResult) => void) {}

  endCleanly(graceMs: number): Promise<void> {
    this.endingCleanly = true;
    this.socket.off('data', onSocketData);
    this.stream.ondata = null;
    this.stream.resume();
    this.stream.end();
    void endSocketCleanly(this.socket, graceMs);
    // Done once the peer answered our END_STREAM too (its stream then closes cleanly and its
    // daemon reports no failure), or when the grace is over: what is left is the caller's.
    return new Promise<void>((r) => {
      const timer = setTimeout(r, graceMs);
      this.endedCleanly = () => { clearTimeout(timer); r(); };
    });
  }

  done(): void {
    if (--this.pending > 0) return;
    this.forget?.();
    this.endedCleanly?.();
    const r: SpliceResult = { rstCode: this.stream.rstCode };
    if (this.error) { r.error = this.error; r.failedSide = this.failedSide; }
    this.resolve(r);
  }
}

const spliceOf = (o: Spliced<net.Socket> | Spliced<H2Stream>): Splice => o[SPLICE]!;

// peer -> app
function onStreamData(this: H2Stream, c: Buffer): void { const sp = spliceOf(this); if (!sp.socket.write(c)) this.pause(); }
function onSocketDrain(this: net.Socket): void { spliceOf(this).stream.resume(); }
function onStreamEnd(this: H2Stream): void { const sp = spliceOf(this); if (!sp.endingCleanly) sp.socket.end(); }
// app -> peer
function onSocketData(this: net.Socket, c: Buffer): void { if (!spliceOf(this).stream.write(c)) this.pause(); }
function onStreamDrain(this: H2Stream): void { spliceOf(this).socket.resume(); }
function onSocketEnd(this: net.Socket): void { const sp = spliceOf(this); if (!sp.endingCleanly) sp.stream.end(); }

function onSocketError(this: net.Socket, e: Error): void {
  const sp = spliceOf(this);
  if (!sp.error) { sp.error = e; sp.failedSide = 'socket'; }
  if (!sp.stream.closed) sp.stream.reset(ErrorCode.CONNECT_ERROR);
}
function onStreamClose(this: H2Stream, code: number, e?: Error): void {
  const sp = spliceOf(this);
  const socket = sp.socket;
  if (e && !sp.error) { sp.error = HboneErrors.NODEMESH_E_HBONE_STREAM({ authority: sp.authority, reason: e.message }, { cause: e }); sp.failedSide = 'stream'; }
  // Closed cleanly after both END_STREAMs: the socket finishes flushing on its own.
  // Anything else (reset, connection gone, our side never ended) means no more bytes can
  // travel toward the peer, so the app connection goes too.
  if (!sp.endingCleanly && !socket.destroyed && (code !== ErrorCode.NO_ERROR || e || !socket.readableEnded)) socket.destroy();
  sp.done();
}
function onSocketClose(this: net.Socket): void {
  const sp = spliceOf(this);
  const stream = sp.stream;
  // The socket went away without finishing both directions (destroyed by us, or the
  // app reset it): tell the peer, rather than leaving the stream half-open forever.
  if (!stream.closed && (!this.readableEnded || !this.writableFinished)) stream.reset(sp.error ? ErrorCode.CONNECT_ERROR : ErrorCode.CANCEL);
  sp.done();
}

/** `authority` names the tunnel in errors: a stream failure comes back as NODEMESH_E_HBONE_STREAM.
 * `cleanEnds`: where a daemon that stops finds this splice, to end it cleanly at its deadline. */
export function spliceStreamSocket(stream: H2Stream, socket: net.Socket, authority = 'the destination', cleanEnds?: CleanEndSet): Promise<SpliceResult> {
  return new Promise((resolve) => {
    const sp = new Splice(stream, socket, authority, resolve);
    (socket as Spliced<net.Socket>)[SPLICE] = sp;
    (stream as Spliced<H2Stream>)[SPLICE] = sp;
    if (cleanEnds) sp.forget = cleanEnds.add((graceMs) => sp.endCleanly(graceMs));
    // A socket that closes its writable side when its readable side ends would turn the
    // app's half-close into a full close; tunnels must carry half-close unchanged.
    socket.allowHalfOpen = true;

    stream.ondata = onStreamData;
    socket.on('drain', onSocketDrain);
    stream.onend = onStreamEnd;
    socket.on('data', onSocketData);
    stream.ondrain = onStreamDrain;
    socket.on('end', onSocketEnd);
    socket.on('error', onSocketError);
    stream.onclose = onStreamClose;
    socket.once('close', onSocketClose);
    stream.start();
  });
}
