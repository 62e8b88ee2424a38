// nodemesh-identity: wiring only. Configuration, the CA (created on first start), the state
// source for node binding, the node authenticator, then the gRPC server; it is bound before
// "ready" is logged. NODEMESH_SOURCE=kube: TokenReview, pods and the CA Secret through the
// Kubernetes API; sandbox: the sandbox's files. SIGTERM/SIGINT stop it cleanly (in-flight calls get a grace period).
import { loadIdentityConfig } from './identity/identity-config';
import { loadOrCreateMeshCA } from './identity/ca';
import { IdentityServer } from './identity/identity-server';
import { NodeCredentialAuthenticator, type NodeAuthenticator } from './identity/node-credentials';
import { KubeConfig } from '@kubernetes/client-node';
import { TokenReviewAuthenticator, kubeTokenReviewApi } from './identity/token-review';
import { KubeNodeBinding, kubeListNodePods } from './identity/kube-node-binding';
import { loadOrCreateCaFromSecret, publishCaRoot } from './identity/kube-ca';
import type { BindingDecision } from './identity/node-binding';
import type { MeshCA } from './identity/ca';
import { SandboxSource } from './sources/sandbox-source';
import type { Snapshot } from './state/snapshot';
import { followSource } from './sources/source';
import { createLogger } from './log';
import { DaemonErrors, NodemeshError } from './errors';
import { startWaypointController } from './waypoint-controller/start-controller';

const SHUTDOWN_GRACE_MS = 5000;

async function main(): Promise<void> {
  const cfg = loadIdentityConfig();
  const log = createLogger(cfg.logLevel, { component: 'nodemesh-identity' });

  let ca: MeshCA;
  let created: boolean;
  let snapshot: Snapshot | undefined;
  let stopSource = (): void => undefined;
  let authenticator: NodeAuthenticator;
  let binding: ((node: string, ns: string, sa: string) => Promise<BindingDecision>) | undefined;
  let describe: Record<string, unknown>;
  const src = cfg.source;
  if (src.kind === 'kube') {
    // In a pod: its ServiceAccount (in-cluster config); outside (local up --apiserver): a kubeconfig.
    const kc = new KubeConfig();
    try {
      if (src.kubeconfig) kc.loadFromFile(src.kubeconfig);
      else kc.loadFromCluster();
    } catch (e) {
      throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_KUBECONFIG', value: src.kubeconfig, expected: `a readable kubeconfig (${(e as Error).message.split('\n')[0]})` }, { cause: e });
    }
    ({ ca, created } = cfg.caDir ? await loadOrCreateMeshCA(cfg.caDir, cfg.trustDomain) : await loadOrCreateCaFromSecret(kc, src.caSecret, cfg.trustDomain));
    if (!cfg.caDir) await publishCaRoot(kc, src.caRootConfigMap, ca.rootCertPem);
    authenticator = new TokenReviewAuthenticator(kubeTokenReviewApi(kc), { audience: src.audience, serviceAccount: src.nodeServiceAccount });
    const nodes = new KubeNodeBinding(kubeListNodePods(kc));
    binding = (node, ns, sa) => nodes.check(node, ns, sa);
    describe = { source: 'kube', server: kc.getCurrentCluster()?.server, audience: src.audience, nodeServiceAccount: `${src.nodeServiceAccount.namespace}/${src.nodeServiceAccount.name}` };
    // Gateways of class nodemesh-waypoint -> waypoint Deployments; only the Lease holder writes.
    stopSource = startWaypointController(kc, process.env, { trustDomain: cfg.trustDomain, logLevel: cfg.logLevel, namespace: src.caSecret.namespace, caRootPem: ca.rootCertPem, caKeyPem: ca.toPem().keyPem }, log);
  } else {
    ({ ca, created } = await loadOrCreateMeshCA(cfg.caDir, cfg.trustDomain));
    const source = new SandboxSource(src.objectsDir);
    await followSource(source, (s) => { snapshot = s; },
      (e) => log.warn({ object: e.object, reason: e.reason, err: e.error }, 'state object skipped'));
    stopSource = () => source.stop();
    const creds = new NodeCredentialAuthenticator(cfg.nodeCredentialsFile,
      (e) => log.error({ err: e.message, code: e.code }, 'node credential file unreadable; keeping the previous credentials'));
    authenticator = creds;
    describe = { source: source.name, nodes: creds.nodes };
  }
  log.info({ ca: cfg.caDir || (src.kind === 'kube' ? `secret ${src.caSecret.namespace}/${src.caSecret.name}` : ''), trustDomain: ca.trustDomain, created, rootNotAfter: ca.rootNotAfter.toISOString() }, created ? 'mesh CA created' : 'mesh CA loaded');

  const server = new IdentityServer({
    ca, authenticator, snapshot: () => snapshot, binding, maxTtlSeconds: cfg.maxCertTtlSeconds,
    logger: log, serving: { dnsNames: cfg.servingDnsNames },
  });
  const port = await server.listen(cfg.listenHost, cfg.listenPort);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    server.stop(SHUTDOWN_GRACE_MS).then(() => {
      stopSource();
      log.info('stopped');
      process.exit(0);
    }, (e: unknown) => { log.error({ err: e }, 'stop failed'); process.exit(1); });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  log.info({
    host: cfg.listenHost, port, trustDomain: ca.trustDomain, spiffeId: server.servingId, maxCertTtlSeconds: cfg.maxCertTtlSeconds,
    ...describe,
  }, 'nodemesh-identity ready');
}

main().catch((e: unknown) => {
  const err = e as Error;
  const code = NodemeshError.is(e) ? e.code : 'NODEMESH_E_INTERNAL';
  process.stderr.write(`nodemesh-identity: ${err.message} (${code})\n`);
  if (!NodemeshError.is(e)) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
