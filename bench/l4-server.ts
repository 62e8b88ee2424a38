// The HTTP server of the l4-latency bench (bench/l4-latency.ts), run inside the server pods as
// `node <repo>/dist/bench/l4-server.js --port 8080 [--size 1024]`.
//
// Every request's body is read to the end and counted; the answer is 200 with a body of
// exactly --size bytes (default 1 KiB, the same bytes every time, built once), so the load
// generator can check each response and the two sides of the comparison do identical app work.
// A request whose body is larger than 1 MiB is answered 413 (a bench server, not a sink).
import * as http from 'node:http';
import * as net from 'node:net';

const MAX_BODY = 1 << 20;

export interface BenchServerOptions { port: number; host?: string; size?: number }

export function responseBody(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = 0x61 + (i % 26); // a..z, repeated
  return b;
}

const BULK_CHUNK = Buffer.alloc(64 * 1024, 0x7a);
const MAX_BULK = 4 * 2 ** 30;

/** GET /bulk?bytes=N: N bytes of body (one stream's bulk throughput), written as fast as the
 * connection drains them. */
function sendBulk(res: http.ServerResponse, bytes: number): void {
  if (!Number.isInteger(bytes) || bytes < 0 || bytes > MAX_BULK) { res.writeHead(400, { connection: 'close' }); res.end(); return; }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes });
  let left = bytes;
  const pump = (): void => {
    while (left > 0) {
      const n = Math.min(left, BULK_CHUNK.length);
      left -= n;
      if (!res.write(n === BULK_CHUNK.length ? BULK_CHUNK : BULK_CHUNK.subarray(0, n))) { res.once('drain', pump); return; }
    }
    res.end();
  };
  pump();
}

export function serveBench(o: BenchServerOptions): http.Server {
  const body = responseBody(o.size ?? 1024);
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url?.startsWith('/bulk?bytes=')) { sendBulk(res, Number(req.url.slice('/bulk?bytes='.length))); return; }
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > MAX_BODY) { res.writeHead(413, { connection: 'close' }); res.end(); req.destroy(); }
    });
    req.on('end', () => {
      if (res.headersSent) return;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length, 'x-request-bytes': String(n) });
      res.end(body);
    });
    req.on('error', () => undefined);
  });
  // The load generator's keep-alive connections live for one phase (up to a minute or so).
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 130_000;
  server.requestTimeout = 30_000;
  server.maxRequestsPerSocket = 0;
  server.on('clientError', (_e, socket) => { socket.destroy(); });
  server.listen({ port: o.port, host: o.host ?? '0.0.0.0', backlog: 4096 });
  return server;
}

function parseArgs(argv: string[]): BenchServerOptions {
  const o: BenchServerOptions = { port: 8080, size: 1024 };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i];
    const v = Number(argv[i + 1]);
    if (k !== '--host' && (!Number.isInteger(v) || v < 0)) throw new Error(`${k} needs a non-negative integer`);
    if (k === '--host' && net.isIPv4(argv[i + 1] ?? '')) { o.host = argv[i + 1]; continue; }
    if (k === '--port' && v > 0 && v < 65536) o.port = v;
    else if (k === '--size' && v <= MAX_BODY) o.size = v;
    else throw new Error(`usage: l4-server.js [--host IPv4] [--port 1-65535] [--size 0-${MAX_BODY}] (bad ${k})`);
  }
  return o;
}

if (require.main === module) {
  const o = parseArgs(process.argv.slice(2));
  const server = serveBench(o);
  server.on('listening', () => console.log(JSON.stringify({ msg: 'l4-server listening', port: o.port, size: o.size, pid: process.pid })));
  server.on('error', (e) => { console.error(`l4-server: ${e.message}`); process.exit(1); });
  const stop = (): void => { server.close(); server.closeAllConnections(); setTimeout(() => process.exit(0), 200).unref(); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
