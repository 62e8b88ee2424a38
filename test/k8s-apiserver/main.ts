// The test API server as a process, for tests that run other processes against it:
//   node dist/test/k8s-apiserver/main.js --port 0 --kubeconfig-out FILE [--token T] [--host H]
// Prints the URL on the first line of stdout once it accepts connections; stops on SIGTERM/SIGINT.
import * as fs from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { startTestApiServer } from './test-api-server';

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`--port must be 0-65535, got ${JSON.stringify(v)}`);
  return n;
}

async function main(): Promise<void> {
  const cmd = new Command('k8s-test-apiserver')
    .description('A Kubernetes API server for tests (no controllers), speaking the real wire format')
    .option('--port <n>', 'port to listen on (0: any free port)', port, 0)
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .requiredOption('--kubeconfig-out <file>', 'where to write the admin kubeconfig')
    .option('--token <token>', 'the admin bearer token (default: random)')
    .option('--bookmark-interval-ms <ms>', 'how often watches get a BOOKMARK', (v) => Number(v), 5000)
    .parse();
  const o = cmd.opts<{ port: number; host: string; kubeconfigOut: string; token?: string; bookmarkIntervalMs: number }>();
  const s = await startTestApiServer({ port: o.port, host: o.host, adminToken: o.token, bookmarkIntervalMs: o.bookmarkIntervalMs });
  fs.copyFileSync(s.kubeconfigPath, o.kubeconfigOut);
  fs.chmodSync(o.kubeconfigOut, 0o600);
  process.stdout.write(`${s.url}\n`);
  const stop = () => {
    void s.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e: unknown) => {
  process.stderr.write(`k8s-test-apiserver: ${(e as Error).message ?? String(e)}\n`);
  process.exit(1);
});
