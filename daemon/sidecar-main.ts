// nodemesh-sidecar: the same proxy as nodemesh-node, deployed as one process per pod (the
// "sidecar mode" of the side-by-side bench, issue 8). Not a fork: it is the NodeAgent with
// three differences, all set here:
//   - it enrols exactly one pod (NODEMESH_SIDECAR_POD_UID), wherever that pod runs;
//   - its eBPF capture programs attach to that pod's own cgroup (NODEMESH_CGROUP) and its
//     maps and links are pinned under their own root (NODEMESH_BPF_PIN_ROOT), so the
//     enrolment map holds that pod only;
//   - its view of the cluster counts pods labelled `nodemesh.io/dataplane-mode: sidecar` (pod
//     or namespace) as meshed, and it has no node of its own, so every meshed destination,
//     on this node or another, is reached over HBONE mTLS (sidecar to sidecar), never by the
//     node daemon's same-node shortcut.
// The process runs outside the pod's cgroup (its own sockets are never captured) and creates
// its listeners (15001, 15006, 15008) inside the pod's network namespace, as the node daemon
// does (capture recognises its sockets by their cgroup, not by a mark). Node daemons leave
// `sidecar` pods alone (that value does not enrol a pod in ambient mode).
//
// Environment: NODEMESH_SIDECAR_POD_UID, and the node daemon's variables (daemon/config.ts):
// NODEMESH_NODE_NAME (the pod's node; it names the identity credential's node),
// NODEMESH_SOURCE, NODEMESH_SANDBOX_OBJECTS, NODEMESH_CGROUP, NODEMESH_BPF_PIN_ROOT,
// NODEMESH_ADMIN_SOCKET, NODEMESH_ADMIN_PORT/METRICS_PORT/READINESS_PORT (0: any free port,
// so many sidecars share a node namespace), NODEMESH_IDENTITY_ADDRESS,
// NODEMESH_NODE_CREDENTIAL_FILE, NODEMESH_CA_ROOT_FILE, NODEMESH_TRUST_DOMAIN.
import { loadConfig } from './config';
import { createLogger } from './log';
import { NodeAgent } from './node-agent';
import { tunnelIdentities } from './tunnel-identities';
import { loadNative } from '../native';
import { EbpfDatapath } from './redirection/ebpf-datapath';
import { NetnsSocketFactory } from './redirection/socket-factory';
import { SandboxSource } from './sources/sandbox-source';
import { validateObject } from './schema';
import type { SourceBatch, StateSource } from './sources/source';
import { DaemonErrors, NodemeshError } from './errors';
import { DATAPLANE_AMBIENT, LABEL_DATAPLANE_MODE, type Resource } from './state/resources';
import type { Snapshot, Workload } from './state/snapshot';

/** The label value that asks for a sidecar instead of the node daemon. */
export const DATAPLANE_SIDECAR = 'sidecar';

/** The cluster as a sidecar sees it (pure): a pod or namespace labelled `sidecar` is meshed
 * (it has an HBONE listener, its sidecar's), so it reads as `ambient` to the shared routing
 * and policy code. Everything else is passed through unchanged (same objects). */
export function sidecarView(resources: readonly Resource[]): Resource[] {
  return resources.map((r) => {
    if ((r.kind !== 'Pod' && r.kind !== 'Namespace') || r.metadata.labels?.[LABEL_DATAPLANE_MODE] !== DATAPLANE_SIDECAR) return r;
    return { ...r, metadata: { ...r.metadata, labels: { ...r.metadata.labels, [LABEL_DATAPLANE_MODE]: DATAPLANE_AMBIENT } } } as Resource;
  });
}

/** The one workload a sidecar enrols (pure). */
export function sidecarScope(podUid: string): (s: Snapshot) => Workload[] {
  return (s) => {
    const w = s.workloads.get(podUid);
    return w ? [w] : [];
  };
}

/** The name a sidecar proxy goes by where the shared code expects a node: no pod is ever on
 * it, so no destination takes the node daemon's same-node path. */
export const sidecarProxyName = (node: string, podUid: string): string => `${node}/sidecar/${podUid}`;

/** A state source seen through sidecarView. */
export class SidecarViewSource implements StateSource {
  readonly name: string;
  constructor(private readonly inner: StateSource) { this.name = `sidecar-view:${inner.name}`; }
  start(onBatch: (b: SourceBatch) => void): Promise<void> {
    return this.inner.start((b) => onBatch({
      ...b,
      changes: b.changes.map((c) => (c.op === 'upsert' ? { ...c, resource: sidecarView([c.resource])[0] } : c)),
    }));
  }
  stop(): void { this.inner.stop(); }
}

async function main(): Promise<void> {
  const podUid = process.env.NODEMESH_SIDECAR_POD_UID ?? '';
  if (!podUid) throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_SIDECAR_POD_UID', value: '', expected: 'the metadata.uid of the pod this sidecar serves' });
  const node = process.env.NODEMESH_NODE_NAME ?? '';
  const cfg = loadConfig({ ...process.env, NODEMESH_NODE_NAME: sidecarProxyName(node, podUid) });
  if (cfg.source.kind !== 'sandbox') {
    throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_SOURCE', value: 'kube', expected: "'sandbox' (the Kubernetes source is not in this build yet)" });
  }
  if (!cfg.cgroupPath) throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'NODEMESH_CGROUP', value: '', expected: "the pod's own cgroup (capture is attached there, for this pod only)" });
  const log = createLogger(cfg.logLevel, { sidecar: podUid, node });
  const datapath = new EbpfDatapath({
    objectDir: cfg.bpfObjectDir, pinRoot: cfg.bpfPinRoot, cgroupPath: cfg.cgroupPath,
    excludeOutboundPorts: cfg.excludeOutboundPorts, logger: log.child({ component: 'datapath' }),
  });
  const { identities, hbone } = tunnelIdentities(cfg, log);
  const agent = new NodeAgent(cfg, {
    datapath, sockets: new NetnsSocketFactory(loadNative()), source: new SidecarViewSource(new SandboxSource(cfg.source.objectsDir, undefined, validateObject)),
    log, identities, hbone, enrolScope: sidecarScope(podUid),
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    // As the node daemon: capture stays attached, so the pod fails closed while we are away.
    log.info({ signal }, 'stopping; eBPF programs stay attached so the pod stays captured');
    agent.stop({ keepAttached: true }).then(() => process.exit(0), (e) => { log.error({ err: e }, 'stop failed'); process.exit(1); });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await agent.start();
}

if (require.main === module) {
  main().catch((e: unknown) => {
    const err = e as Error;
    const code = NodemeshError.is(e) ? e.code : 'NODEMESH_E_INTERNAL';
    process.stderr.write(`nodemesh-sidecar: ${err.message} (${code})\n`);
    if (!NodemeshError.is(e)) process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  });
}
