// `wrk` (Debian's, a load generator no one here wrote) beside ours: its Lua script for 1 KiB
// POSTs and the parsing of its report (pure).
export interface WrkResult {
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  transferPerSecondBytes: number | null;
  latencyMs: { p50: number | null; p90: number | null; p99: number | null; avg: number | null; max: number | null };
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  non2xx: number;
}

/** The Lua script: POST with a body of `size` bytes; `close` sends `Connection: close`, so
 * wrk opens a new connection per request (new connections per second at saturation). */
export function wrkScript(size: number, close: boolean): string {
  if (!Number.isInteger(size) || size < 0 || size > 1 << 20) throw new Error(`wrk body size ${size} must be 0..1 MiB`);
  return [
    'wrk.method = "POST"',
    `wrk.body = string.rep("b", ${size})`,
    'wrk.headers["Content-Type"] = "application/octet-stream"',
    ...(close ? ['wrk.headers["Connection"] = "close"'] : []),
    '',
  ].join('\n');
}

const UNITS_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const UNITS_B: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

export function parseDurationMs(text: string): number | null {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  return m ? Number(m[1]) * UNITS_MS[m[2]!]! : null;
}

/** Parses wrk's text report (with --latency); throws when it is not one. */
export function parseWrk(out: string): WrkResult {
  const num = (re: RegExp): number | null => { const m = re.exec(out); return m ? Number(m[1]) : null; };
  const summary = /(\d+) requests in ([\d.]+)(us|ms|s|m),/.exec(out);
  const rps = num(/Requests\/sec:\s+([\d.]+)/);
  if (!summary || rps === null) throw new Error(`not a wrk report: ${out.slice(0, 300)}`);
  const lat = /^\s*Latency\s+(\S+)\s+\S+\s+(\S+)/m.exec(out);
  const pct = (p: string): number | null => { const m = new RegExp(`^\\s*${p}%\\s+(\\S+)`, 'm').exec(out); return m ? parseDurationMs(m[1]!) : null; };
  const tr = /Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB|TB)/.exec(out);
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests: Number(summary[1]),
    seconds: parseDurationMs(`${summary[2]}${summary[3]}`)! / 1000,
    requestsPerSecond: rps,
    transferPerSecondBytes: tr ? Math.round(Number(tr[1]) * UNITS_B[tr[2]!]!) : null,
    latencyMs: { p50: pct('50'), p90: pct('90'), p99: pct('99'), avg: lat ? parseDurationMs(lat[1]!) : null, max: lat ? parseDurationMs(lat[2]!) : null },
    socketErrors: se ? { connect: Number(se[1]), read: Number(se[2]), write: Number(se[3]), timeout: Number(se[4]) } : { connect: 0, read: 0, write: 0, timeout: 0 },
    non2xx: num(/Non-2xx or 3xx responses:\s+(\d+)/) ?? 0,
  };
}
