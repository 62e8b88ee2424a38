// nodemesh-identity: wiring only. Configuration, the CA (created on first start), the state
// source for node binding, the node authenticator, then the gRPC server; it is bound before
// "ready" is logged. SIGTERM/SIGINT stop it cleanly (in-flight calls get a grace period).
import { loadIdentityConfig } from './identity/identity-config';
import { loadOrCreateMeshCA } from './identity/ca';
import { IdentityServer } from './identity/identity-server';
import { NodeCredentialAuthenticator } from './identity/node-credentials';
import { SandboxSource } from './sources/sandbox-source';
import type { Snapshot } from './state/snapshot';
import { followSource } from './sources/source';
import { createLogger } from './log';
import { NodemeshError } from './errors';

const SHUTDOWN_GRACE_MS = 5000;

async function main(): Promise<void> {
  const cfg = loadIdentityConfig();
  const log = createLogger(cfg.logLevel, { component: 'nodemesh-identity' });

  const { ca, created } = await loadOrCreateMeshCA(cfg.caDir, cfg.trustDomain);
  log.info({ caDir: cfg.caDir, trustDomain: ca.trustDomain, created, rootNotAfter: ca.rootNotAfter.toISOString() }, created ? 'mesh CA created' : 'mesh CA loaded');

  let snapshot: Snapshot | undefined;
  const source = new SandboxSource(cfg.source.objectsDir);
  await followSource(source, (s) => { snapshot = s; },
    (e) => log.warn({ object: e.object, reason: e.reason, err: e.error }, 'state object skipped'));

  const authenticator = new NodeCredentialAuthenticator(cfg.nodeCredentialsFile,
    (e) => log.error({ err: e.message, code: e.code }, 'node credential file unreadable; keeping the previous credentials'));
  const server = new IdentityServer({
    ca, authenticator, snapshot: () => snapshot, maxTtlSeconds: cfg.maxCertTtlSeconds,
    logger: log, serving: { dnsNames: cfg.servingDnsNames },
  });
  const port = await server.listen(cfg.listenHost, cfg.listenPort);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    server.stop(SHUTDOWN_GRACE_MS).then(() => {
      source.stop();
      log.info('stopped');
      process.exit(0);
    }, (e: unknown) => { log.error({ err: e }, 'stop failed'); process.exit(1); });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  log.info({
    host: cfg.listenHost, port, trustDomain: ca.trustDomain, spiffeId: server.servingId, maxCertTtlSeconds: cfg.maxCertTtlSeconds,
    nodes: authenticator.nodes, source: source.name,
  }, 'nodemesh-identity ready');
}

main().catch((e: unknown) => {
  const err = e as Error;
  const code = NodemeshError.is(e) ? e.code : 'NODEMESH_E_INTERNAL';
  process.stderr.write(`nodemesh-identity: ${err.message} (${code})\n`);
  if (!NodemeshError.is(e)) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
