// Splices two sockets both ways with back-pressure (stream.pipe pauses the fast side) and
// half-close (one side's FIN ends only that direction). Resolves once both sockets are
// closed, with the first error if any.
import type * as net from 'node:net';

export interface PipeResult { error?: Error }

export function pipeBoth(a: net.Socket, b: net.Socket): Promise<PipeResult> {
  return new Promise((resolve) => {
    let error: Error | undefined;
    let closed = 0;
    const onClose = () => { if (++closed === 2) resolve(error ? { error } : {}); };
    const onError = (e: Error) => {
      error ??= e;
      a.destroy();
      b.destroy();
    };
    a.on('error', onError);
    b.on('error', onError);
    a.once('close', onClose);
    b.once('close', onClose);
    a.pipe(b);
    b.pipe(a);
  });
}
