// Holds many concurrent connections open, run inside a client pod by bench/mesh-compare.ts
// to measure the mesh's memory per connection:
//   node conn-hold.js '{"host":"10.96.0.10","port":80,"count":10000,"openPerSecond":2000,"holdMs":4000,"timeoutMs":30000}'
// Opens `count` HTTP/1.1 keep-alive connections at a bounded rate, sends one small request on
// each (so every one is established end to end, through whatever proxies are in the way),
// prints `HOLD {"open":n,"failed":m}` once all have answered, keeps them open for holdMs,
// closes them all, prints `CLOSED {...}` and exits. Bounded by timeoutMs overall.
import * as net from 'node:net';

export const HOLD_PREFIX = 'HOLD ';
export const CLOSED_PREFIX = 'CLOSED ';

export interface HoldSpec { host: string; port: number; count: number; openPerSecond: number; holdMs: number; timeoutMs: number }

export function validateHoldSpec(raw: unknown): HoldSpec {
  const s = raw as Partial<HoldSpec>;
  if (typeof s.host !== 'string' || net.isIP(s.host) === 0) throw new Error(`spec.host must be an IP address (got ${JSON.stringify(s.host)})`);
  for (const [k, min, max] of [['port', 1, 65535], ['count', 1, 20_000], ['openPerSecond', 1, 20_000], ['holdMs', 0, 120_000], ['timeoutMs', 1000, 600_000]] as const) {
    const v = s[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new Error(`spec.${k} must be an integer from ${min} to ${max} (got ${JSON.stringify(v)})`);
  }
  return s as HoldSpec;
}

async function main(spec: HoldSpec): Promise<void> {
  const request = Buffer.from(`GET /hold HTTP/1.1\r\nHost: ${spec.host}\r\nContent-Length: 0\r\n\r\n`, 'latin1');
  const socks: net.Socket[] = [];
  let answered = 0;
  let failed = 0;
  const deadline = setTimeout(() => { process.stdout.write(`${CLOSED_PREFIX}${JSON.stringify({ open: answered, failed, timedOut: true })}\n`); process.exit(3); }, spec.timeoutMs);
  await new Promise<void>((resolve) => {
    let started = 0;
    let done = false;
    const settle = (): void => { if (!done && answered + failed === spec.count) { done = true; resolve(); } };
    // A proxy at its connection limit leaves the rest neither answered nor refused (queued in a
    // backlog): after half the budget they count as failed, and what did open is held.
    setTimeout(() => { if (!done) { done = true; failed = spec.count - answered; resolve(); } }, spec.timeoutMs / 2).unref();
    const batch = Math.max(1, Math.ceil(spec.openPerSecond / 100));
    const tick = setInterval(() => {
      for (let k = 0; k < batch && started < spec.count; k++, started++) {
        const s = net.connect({ host: spec.host, port: spec.port, noDelay: true });
        let seen = false;
        s.on('connect', () => s.write(request));
        // The bench server answers 200 with a body; the first bytes are enough to know the
        // connection is through.
        s.once('data', () => { if (!seen && !done) { seen = true; answered++; settle(); } });
        s.on('data', () => undefined);
        s.on('error', () => { if (!seen && !done) { seen = true; failed++; settle(); } });
        s.on('close', () => { if (!seen && !done) { seen = true; failed++; settle(); } });
        socks.push(s);
      }
      if (started >= spec.count) clearInterval(tick);
    }, 10);
  });
  process.stdout.write(`${HOLD_PREFIX}${JSON.stringify({ open: answered, failed })}\n`);
  await new Promise((r) => setTimeout(r, spec.holdMs));
  for (const s of socks) s.destroy();
  await new Promise((r) => setTimeout(r, 500));
  clearTimeout(deadline);
  process.stdout.write(`${CLOSED_PREFIX}${JSON.stringify({ open: answered, failed })}\n`);
}

if (require.main === module) {
  main(validateHoldSpec(JSON.parse(process.argv[2] ?? 'null'))).catch((e: Error) => { process.stderr.write(`conn-hold: ${e.message}\n`); process.exitCode = 1; });
}
