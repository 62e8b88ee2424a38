// Splices an HTTP/2 stream (one HBONE tunnel) and a TCP socket both ways, like
// proxy/pipe.ts does for two sockets: stream.pipe pauses the fast side (back-pressure; the
// HTTP/2 window is only returned to the peer as the socket drains), and each direction
// closes on its own (END_STREAM -> FIN, FIN -> END_STREAM). An RST_STREAM from the peer
// destroys the socket; a socket error resets the stream with CONNECT_ERROR (RFC 9113 §8.5).
// Buffers are handed through as they come: no copies, no per-chunk allocation here.
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import { HboneErrors } from '../errors';
import { endSocketCleanly, type CleanEndSet } from './clean-end';

const { NGHTTP2_NO_ERROR, NGHTTP2_CONNECT_ERROR, NGHTTP2_CANCEL } = http2.constants;

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
export function spliceStreamSocket(stream: http2.Http2Stream, socket: net.Socket, authority = 'the destination', cleanEnds?: CleanEndSet): Promise<SpliceResult> {
  return new Promise((resolve) => {
    let error: Error | undefined;
    let failedSide: SpliceResult['failedSide'];
    let pending = 2;
    // Set once the daemon ends this splice at its drain deadline: END_STREAM toward the peer
    // (its daemon sends its app a FIN), FIN toward our app; the socket's end is then
    // endSocketCleanly's to decide, whatever the stream does meanwhile.
    let endingCleanly = false;
    let endedCleanly: (() => void) | undefined;
    const forget = cleanEnds?.add((graceMs) => {
      endingCleanly = true;
      stream.unpipe(socket);
      stream.on('data', discard);
      stream.resume();
      if (!stream.writableEnded && !stream.closed && !stream.destroyed) stream.end();
      void endSocketCleanly(socket, graceMs);
      // Done once the peer answered our END_STREAM too (its stream then closes cleanly and its
      // daemon reports no failure), or when the grace is over: what is left is the caller's.
      return new Promise<void>((r) => {
        const timer = setTimeout(r, graceMs);
        endedCleanly = () => { clearTimeout(timer); r(); };
      });
    });
    const done = () => {
      if (--pending > 0) return;
      forget?.();
      endedCleanly?.();
      const r: SpliceResult = { rstCode: stream.rstCode ?? NGHTTP2_NO_ERROR };
      if (error) { r.error = error; r.failedSide = failedSide; }
      resolve(r);
    };
    // A socket that closes its writable side when its readable side ends would turn the
    // app's half-close into a full close; tunnels must carry half-close unchanged.
    socket.allowHalfOpen = true;

    socket.on('error', (e) => {
      if (!error) { error = e; failedSide = 'socket'; }
      if (!stream.destroyed && !stream.closed) stream.close(NGHTTP2_CONNECT_ERROR);
    });
    stream.on('error', (e) => {
      if (!error) { error = HboneErrors.NODEMESH_E_HBONE_STREAM({ authority, reason: e.message }, { cause: e }); failedSide = 'stream'; }
      if (!endingCleanly) socket.destroy();
    });
    stream.once('close', () => {
      // Closed cleanly after both END_STREAMs: the socket finishes flushing on its own.
      // Anything else (reset, session gone, our side never ended) means no more bytes can
      // travel toward the peer, so the app connection goes too.
      if (!endingCleanly && !socket.destroyed && (stream.rstCode !== NGHTTP2_NO_ERROR || !socket.readableEnded)) socket.destroy();
      done();
    });
    socket.once('close', () => {
      if (!stream.closed && !stream.destroyed) {
        // The socket went away without finishing both directions (destroyed by us, or the
        // app reset it): tell the peer, rather than leaving the stream half-open forever.
        if (!socket.readableEnded || !socket.writableFinished) stream.close(error ? NGHTTP2_CONNECT_ERROR : NGHTTP2_CANCEL);
      }
      done();
    });
    stream.pipe(socket);
    socket.pipe(stream);
  });
}

function discard(): void { /* the peer's bytes after the relay stopped: our app no longer reads */ }
