// What the mesh e2e tests share: a TCP probe run inside a pod against the sample app's
// tcp-echo server, and the node daemons' connection records.
import * as assert from 'node:assert/strict';
import { adminGet, exec } from './sandbox';
import type { ConnectionRecord } from '../../../daemon/proxy/connection-table';

export interface EchoResult {
  /** The client socket's own port (to tell whether the server saw it or the daemon's). */
  localPort?: number;
  greeting?: string;
  echo?: string;
  error?: string;
  closedAfterMs?: number;
}

/** From inside a pod: connect (optionally from a fixed source port), read the tcp-echo
 * greeting, optionally send a line and read its echo, or hold the connection until the
 * other side closes it. Never throws: failures come back in `error`. */
export async function echoProbe(pod: string, host: string, port: number,
  opts: { send?: string; holdMs?: number; localPort?: number } = {}): Promise<EchoResult> {
  const script = `
    const out = (o) => { console.log(JSON.stringify({ localPort: s.localPort, ...o })); process.exit(0); };
    const s = require('net').connect({ port: ${port}, host: ${JSON.stringify(host)}${opts.localPort ? `, localPort: ${opts.localPort}` : ''} });
    const started = Date.now();
    setTimeout(() => out({ error: 'TIMEOUT' }), ${5000 + (opts.holdMs ?? 0)});
    let buf = ''; let greeting;
    s.setEncoding('utf8');
    s.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\\n')) >= 0) {
        const line = buf.slice(0, i); buf = buf.slice(i + 1);
        if (greeting === undefined) {
          greeting = line;
          ${opts.send ? `s.write(${JSON.stringify(`${opts.send}\n`)});` : opts.holdMs ? "console.log(JSON.stringify({ open: true }));" : 'out({ greeting });'}
        } else { out({ greeting, echo: line }); }
      }
    });
    s.on('close', () => out(greeting === undefined ? { error: 'CLOSED_WITHOUT_GREETING' } : { greeting, closedAfterMs: Date.now() - started }));
    s.on('error', (e) => out({ error: e.code || e.message }));`;
  const r = await exec(pod, ['node', '-e', script], { timeoutMs: 30_000 + (opts.holdMs ?? 0) });
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1] || '{"error":"NO_OUTPUT"}') as EchoResult;
}

/** "hello from <pod> <ip>:<port> to <ip>:<port>", the tcp-echo greeting. */
export function parseGreeting(line: string | undefined) {
  const m = /^hello from (\S+) (\S+):(\d+) to (\S+):(\d+)$/.exec(line ?? '');
  assert.ok(m, `unexpected greeting ${JSON.stringify(line)}`);
  return { pod: m[1], local: `${m[2]}:${m[3]}`, remoteIP: m[4], remotePort: Number(m[5]) };
}

/** Open and recently closed connections a node daemon reports. */
export async function connections(node: string): Promise<ConnectionRecord[]> {
  const j = (await adminGet(node, '/debug/connections')).json<{ open: ConnectionRecord[]; closed: ConnectionRecord[] }>();
  return [...j.open, ...j.closed];
}
