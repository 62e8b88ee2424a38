// nodemesh-node: wiring only. Configuration, then the datapath, then the agent; every
// listener is bound before the agent reports ready. SIGTERM keeps the eBPF programs attached
// (a restart must not let enrolled pods escape); `--uninstall` removes them.
import { loadConfig } from './config';
import { createLogger } from './log';
import { NodeAgent } from './node-agent';
import { tunnelIdentities } from './tunnel-identities';
import { loadNative } from '../native';
import { EbpfDatapath } from './redirection/ebpf-datapath';
import { MemoryDatapath } from './redirection/memory-datapath';
import * as os from 'node:os';
import { NetnsSocketFactory, nodeAddresses, ownNamespaceListener } from './redirection/socket-factory';
import { SandboxSource } from './sources/sandbox-source';
import { detectCgroup2Root } from './redirection/cgroup';
import { NodemeshError } from './errors';
import type { Logger } from 'pino';
import type { StateSource } from './sources/source';
import type { PodLocator } from './redirection/pod-locator';
import { validateObject } from './schema';

/** The sandbox's pods carry their namespaces as annotations; on a cluster they are found on the node. */
function makeSource(cfg: ReturnType<typeof loadConfig>, log: Logger): { source: StateSource; podFinder?: PodLocator } {
  // Every object is validated at the edge with the schemas `local apply` uses.
  if (cfg.source.kind === 'sandbox') return { source: new SandboxSource(cfg.source.objectsDir, undefined, validateObject) };
  // Loaded only here: @kubernetes/client-node's entry (which its KubeConfig needs) brings every
  // generated API client, ~27 MB of old-generation heap that every full GC would walk; a
  // daemon on the sandbox source never needs it.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { KubeSource } = require('./sources/kube-source') as typeof import('./sources/kube-source');
  const { KubeHttp, loadKubeConfig } = require('./sources/kube-client') as typeof import('./sources/kube-client');
  const { PodLocator } = require('./redirection/pod-locator') as typeof import('./redirection/pod-locator');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const http = new KubeHttp(loadKubeConfig(cfg.source.connection));
  return {
    source: new KubeSource({ http, log: log.child({ component: 'kube-source' }), validate: validateObject }),
    podFinder: new PodLocator({ procDir: cfg.source.hostProc }),
  };
}

async function main(): Promise<void> {
  const cfg = loadConfig();
  const log = createLogger(cfg.logLevel, { node: cfg.nodeName });
  const native = loadNative();
  const datapath = cfg.datapath === 'memory' ? new MemoryDatapath() : new EbpfDatapath({
    objectDir: cfg.bpfObjectDir, pinRoot: cfg.bpfPinRoot, cgroupPath: cfg.cgroupPath ?? detectCgroup2Root(),
    excludeOutboundPorts: cfg.excludeOutboundPorts, logger: log.child({ component: 'datapath' }),
    probeSources: cfg.probeSources ?? nodeAddresses(os.networkInterfaces()),
  });
  const { identities, hbone } = tunnelIdentities(cfg, log);
  const { source, podFinder } = makeSource(cfg, log);
  const agent = new NodeAgent(cfg, {
    datapath, sockets: new NetnsSocketFactory(native), source, podFinder, log, identities, hbone,
    bindListener: ownNamespaceListener(native), releaseMemory: () => native.releaseMemory(),
  });
  if (process.argv.includes('--uninstall')) {
    await datapath.start();
    await datapath.stop({ keepAttached: false });
    log.info('nodemesh removed from this node');
    return;
  }
  // Restart and upgrade: listeners close first (a newer daemon beside us takes new
  // connections), open ones get drainTimeoutMs, then we exit; a stop never outlives that.
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, drainMs: cfg.drainTimeoutMs }, 'stopping; eBPF programs stay attached so enrolled pods stay captured');
    setTimeout(() => { log.error({ drainMs: cfg.drainTimeoutMs }, 'stop did not finish in time; exiting'); process.exit(1); }, cfg.drainTimeoutMs + 5000).unref();
    agent.stop({ keepAttached: true, drainMs: cfg.drainTimeoutMs }).then(() => process.exit(0), (e) => { log.error({ err: e }, 'stop failed'); process.exit(1); });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await agent.start();
}

main().catch((e: unknown) => {
  const err = e as Error;
  const code = NodemeshError.is(e) ? e.code : 'NODEMESH_E_INTERNAL';
  process.stderr.write(`nodemesh-node: ${err.message} (${code})\n`);
  if (!NodemeshError.is(e)) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
