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

/** `authority` names the tunnel in errors: a stream failure comes back as NODEMESH_E_HBONE_STREAM.
 * `cleanEnds`: where a daemon that stops finds this splice, to end it cleanly at its deadline. */
export function spliceStreamSocket(stream: H2Stream, socket: net.Socket, authority = 'the destination', cleanEnds?: CleanEndSet): Promise<SpliceResult> {
  return new Promise((resolve) => {
    let error: Error | undefined;
    let failedSide: SpliceResult['failedSide'];
    let pending = 2;
    // Set once the daemon ends this splice at its drain deadline: END_STREAM toward the peer
    // (its daemon sends its app a FIN), FIN toward our app; the socket's end is then
    // endSocketCleanly's to decide, whatever the stream does meanwhile.
    let endingCleanly = false;
    let endedCleanly: (() => void) | undefined;
    const onSocketData = (c: Buffer): void => { if (!stream.write(c)) socket.pause(); };
    const forget = cleanEnds?.add((graceMs) => {
      endingCleanly = true;
      socket.off('data', onSocketData);
      stream.ondata = null;
      stream.resume();
      stream.end();
      void endSocketCleanly(socket, graceMs);
      // Done once the peer answered our END_STREAM too (its stream then closes cleanly and its
      // daemon reports no failure), or when the grace is over: what is left is the caller's.
      return new Promise<void>((r) => {
        const timer = setTimeout(r, graceMs);
        endedCleanly = () => { clearTimeout(timer); r(); };
      });
    });
    const done = (): void => {
      if (--pending > 0) return;
      forget?.();
      endedCleanly?.();
      const r: SpliceResult = { rstCode: stream.rstCode };
      if (error) { r.error = error; r.failedSide = failedSide; }
      resolve(r);
    };
    // A socket that closes its writable side when its readable side ends would turn the
    // app's half-close into a full close; tunnels must carry half-close unchanged.
    socket.allowHalfOpen = true;

    // peer -> app
    stream.ondata = (c) => { if (!socket.write(c)) stream.pause(); };
    socket.on('drain', () => stream.resume());
    stream.onend = () => { if (!endingCleanly) socket.end(); };
    // app -> peer
    socket.on('data', onSocketData);
    stream.ondrain = () => socket.resume();
    socket.on('end', () => { if (!endingCleanly) stream.end(); });

    socket.on('error', (e) => {
      if (!error) { error = e; failedSide = 'socket'; }
      if (!stream.closed) stream.reset(ErrorCode.CONNECT_ERROR);
    });
    stream.onclose = (code, e) => {
      if (e && !error) { error = HboneErrors.NODEMESH_E_HBONE_STREAM({ authority, reason: e.message }, { cause: e }); failedSide = 'stream'; }
      // Closed cleanly after both END_STREAMs: the socket finishes flushing on its own.
      // Anything else (reset, connection gone, our side never ended) means no more bytes can
      // travel toward the peer, so the app connection goes too.
      if (!endingCleanly && !socket.destroyed && (code !== ErrorCode.NO_ERROR || e || !socket.readableEnded)) socket.destroy();
      done();
    };
    socket.once('close', () => {
      // The socket went away without finishing both directions (destroyed by us, or the
      // app reset it): tell the peer, rather than leaving the stream half-open forever.
      if (!stream.closed && (!socket.readableEnded || !socket.writableFinished)) stream.reset(error ? ErrorCode.CONNECT_ERROR : ErrorCode.CANCEL);
      done();
    });
    stream.start();
  });
}
