// One stream's bulk throughput, run inside a client pod by bench/mesh-compare.ts:
//   node bulk-client.js '{"host":"10.96.0.10","port":80,"bytes":268435456,"timeoutMs":60000}'
// GETs /bulk?bytes=N from the bench server (bench/l4-server.ts) over one connection, reads the
// body to the end and prints one JSON line `BULKRESULT {...}`: bytes, seconds (from the request
// to the last byte), MB/s (10^6 bytes). Bounded by timeoutMs.
import * as http from 'node:http';
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';

export const BULK_PREFIX = 'BULKRESULT ';

export interface BulkSpec { host: string; port: number; bytes: number; timeoutMs: number }
export interface BulkResult { ok: boolean; bytes: number; seconds: number; mbPerSecond: number; error?: string }

export function validateBulkSpec(raw: unknown): BulkSpec {
  const s = raw as Partial<BulkSpec>;
  if (typeof s.host !== 'string' || net.isIP(s.host) === 0) throw new Error(`spec.host must be an IP address (got ${JSON.stringify(s.host)})`);
  for (const [k, min, max] of [['port', 1, 65535], ['bytes', 1, 4 * 2 ** 30], ['timeoutMs', 100, 600_000]] as const) {
    const v = s[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new Error(`spec.${k} must be an integer from ${min} to ${max} (got ${JSON.stringify(v)})`);
  }
  return s as BulkSpec;
}

export function runBulk(spec: BulkSpec): Promise<BulkResult> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let got = 0;
    let done = false;
    const finish = (error?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const seconds = (performance.now() - t0) / 1000;
      resolve({ ok: !error && got === spec.bytes, bytes: got, seconds: Math.round(seconds * 1e6) / 1e6, mbPerSecond: seconds > 0 ? Math.round((got / 1e6 / seconds) * 100) / 100 : 0, ...(error ? { error } : {}) });
    };
    const req = http.get({ host: spec.host, port: spec.port, path: `/bulk?bytes=${spec.bytes}`, agent: false }, (res) => {
      if (res.statusCode !== 200) { res.resume(); finish(`http-${res.statusCode}`); return; }
      res.on('data', (d: Buffer) => { got += d.length; });
      res.on('end', () => finish(got === spec.bytes ? undefined : 'short-body'));
      res.on('error', (e) => finish(e.message));
    });
    req.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? e.message));
    const timer = setTimeout(() => { req.destroy(); finish('timeout'); }, spec.timeoutMs);
  });
}

if (require.main === module) {
  const spec = validateBulkSpec(JSON.parse(process.argv[2] ?? 'null'));
  runBulk(spec).then((r) => { process.stdout.write(`${BULK_PREFIX}${JSON.stringify(r)}\n`); }, (e: Error) => { process.stderr.write(`bulk-client: ${e.message}\n`); process.exitCode = 1; });
}
