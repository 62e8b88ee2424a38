// A plain HTTPS client for tests that speak to an API server without any Kubernetes library:
// one request, or one watch read line by line until the server ends it.
import * as https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';

export interface Target { url: string; caPem: string }

export interface Reply { status: number; headers: IncomingHttpHeaders; text: string; json: any }

export interface RequestOptions {
  token?: string;
  body?: unknown;
  contentType?: string;
  userAgent?: string;
}

export function request(t: Target, method: string, path: string, o: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload = o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
    const headers: Record<string, string> = { 'User-Agent': o.userAgent ?? 'nodemesh-test/1.0' };
    if (o.token) headers.Authorization = `Bearer ${o.token}`;
    if (payload !== undefined) {
      headers['Content-Type'] = o.contentType ?? 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(payload));
    }
    const req = https.request(new URL(path, t.url), { method, ca: t.caPem, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: any;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

export interface WatchHandle {
  status: Promise<number>;
  headers: Promise<IncomingHttpHeaders>;
  events: { type: string; object: any }[];
  /** Resolves when the server ends the stream (or the connection drops). */
  ended: Promise<'end' | 'error'>;
  /** Resolves once at least n events have arrived. */
  waitFor(n: number): Promise<void>;
  abort(): void;
}

export function watch(t: Target, path: string, token?: string): WatchHandle {
  const events: { type: string; object: any }[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  let resolveStatus!: (n: number) => void;
  let resolveHeaders!: (h: IncomingHttpHeaders) => void;
  let resolveEnded!: (r: 'end' | 'error') => void;
  const status = new Promise<number>((r) => (resolveStatus = r));
  const headers = new Promise<IncomingHttpHeaders>((r) => (resolveHeaders = r));
  const ended = new Promise<'end' | 'error'>((r) => (resolveEnded = r));
  const check = () => {
    for (const w of [...waiters]) if (events.length >= w.n) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
  };
  const req = https.request(new URL(path, t.url), { method: 'GET', ca: t.caPem, headers: token ? { Authorization: `Bearer ${token}` } : {}, agent: false }, (res) => {
    resolveStatus(res.statusCode ?? 0);
    resolveHeaders(res.headers);
    let buf = '';
    res.on('data', (c: Buffer) => {
      buf += c.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() !== '') events.push(JSON.parse(line));
      }
      check();
    });
    res.on('end', () => resolveEnded('end'));
    res.on('error', () => resolveEnded('error'));
    res.on('aborted', () => resolveEnded('error'));
  });
  req.on('error', () => { resolveStatus(0); resolveEnded('error'); });
  req.end();
  return {
    status,
    headers,
    events,
    ended,
    waitFor: (n) => new Promise<void>((resolve) => { waiters.push({ n, resolve }); check(); }),
    abort: () => req.destroy(),
  };
}

/** The same top-level keys, in any order. */
export function keysOf(o: Record<string, unknown>): string[] {
  return Object.keys(o).sort();
}
