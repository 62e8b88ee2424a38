import type * as net from 'node:net';

/** Resolves once a connecting socket is connected; rejects (and destroys it) on error or
 * after timeoutMs. */
export function whenConnected(s: net.Socket, timeoutMs: number, what: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      const e = Object.assign(new Error(`connect to ${what} timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' });
      s.destroy(e);
    }, timeoutMs);
    const onError = (e: Error) => { clearTimeout(timer); reject(e); };
    s.once('error', onError);
    s.once('connect', () => { clearTimeout(timer); s.off('error', onError); resolve(s); });
  });
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    p.then((v) => { clearTimeout(t); resolve(v); }, (e) => { clearTimeout(t); reject(e); });
  });
}

