// The outbound listener's handler (15001 inside each enrolled pod): recover where the app
// wanted to go, decide (pure), then execute the decision: an mTLS HBONE tunnel to a meshed
// pod on another node, the same-node path for a meshed pod here, or plain TCP for a
// destination outside the mesh. A Service endpoint that cannot be reached is replaced by
// another one before any app byte has been sent.
import type * as net from 'node:net';
import type { Logger } from 'pino';
import type { Datapath } from '../redirection/datapath';
import { appConnection } from '../redirection/datapath';
import type { SocketFactory } from '../redirection/socket-factory';
import { decide, spiffeIdOf, workloadRef } from '../routing/decide';
import type { PowerOfTwoChoices } from '../routing/balancer';
import type { Snapshot, Workload } from '../state/snapshot';
import type { ConnectionRecord, ConnectionTable } from './connection-table';
import type { OpenInboundSet } from './open-inbound';
import type { HboneClient } from '../tunnel/hbone-client';
import type { IssuedIdentity } from '../tunnel/tls-identity';
import { spliceStreamSocket } from '../tunnel/splice';
import { formatAuthority } from '../tunnel/authority';
import { inboundVerdict } from '../policy/inbound';
import { pipeBoth } from './pipe';
import { whenConnected, withTimeout } from './connect';
import { DaemonErrors, NodemeshError } from '../errors';

export interface IdentitySource {
  get(namespace: string, serviceAccount: string): IssuedIdentity | undefined;
  whenReady(namespace: string, serviceAccount: string): Promise<IssuedIdentity>;
}

export interface ProxyDeps {
  node: string;
  trustDomain: string;
  datapath: Datapath;
  sockets: SocketFactory;
  snapshot: () => Snapshot;
  connections: ConnectionTable;
  log: Logger;
  picker: PowerOfTwoChoices;
  /** Absent without an identity service: meshed destinations are then refused. */
  identities?: IdentitySource;
  hbone?: HboneClient;
  /** An enrolled pod of this node, for the same-node path. */
  localPod: (uid: string) => PodContext | undefined;
  openInbound: OpenInboundSet;
}

export interface PodContext {
  workload: Workload;
  netnsPath: string;
  netnsCookie: bigint;
}

const CONNECT_TIMEOUT_MS = 5_000;
const IDENTITY_WAIT_MS = 5_000;
const MAX_ATTEMPTS = 3;
const family = (s: net.Socket): 4 | 6 => (s.remoteFamily === 'IPv6' && !s.remoteAddress?.startsWith('::ffff:') ? 6 : 4);

/** Errors after which another endpoint may well work (nothing was sent yet). */
function retryable(e: unknown): boolean {
  if (NodemeshError.is(e)) return ['NODEMESH_E_HBONE_CONNECT', 'NODEMESH_E_HBONE_CONNECT_TIMEOUT', 'NODEMESH_E_HBONE_UPSTREAM'].includes(e.code);
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ECONNREFUSED' || code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH';
}

export function handleOutbound(deps: ProxyDeps, pod: PodContext, client: net.Socket): void {
  const w = pod.workload;
  const podRef = workloadRef(w);
  const source = { workload: podRef, address: formatAuthority(w.ips[0] ?? '', client.remotePort ?? 0) };
  client.on('error', () => undefined); // reported through pipe/splice results
  const dst = deps.datapath.takeOriginalDestination(pod.netnsCookie, client.remotePort ?? 0, family(client));
  if (!dst) {
    const err = DaemonErrors.NODEMESH_E_ORIGINAL_DST_MISSING({ pod: `${w.namespace}/${w.name}`, port: client.remotePort ?? 0 });
    const rec = deps.connections.add({ direction: 'outbound', pod: podRef, source, originalDestination: { address: 'unknown' }, verdict: 'deny', reason: err.code });
    client.destroy();
    deps.connections.close(rec, { sent: 0, received: 0 });
    return;
  }
  const rec = deps.connections.add({
    direction: 'outbound', pod: podRef, source, originalDestination: { address: formatAuthority(dst.address, dst.port) },
    sourceIdentity: spiffeIdOf(deps.trustDomain, w), verdict: 'allow', reason: 'connecting',
  });
  client.pause();
  const finish = (verdict: ConnectionRecord['verdict'], reason: string, error?: Error) => {
    rec.verdict = verdict;
    rec.reason = reason;
    if (verdict !== 'allow') client.destroy();
    deps.connections.close(rec, { sent: client.bytesRead, received: client.bytesWritten }, error);
  };
  run(deps, pod, client, dst, rec, finish).catch((e: Error) => {
    deps.log.error({ err: e }, 'outbound connection failed unexpectedly');
    finish('error', e.message, e);
  });
}

async function run(deps: ProxyDeps, pod: PodContext, client: net.Socket, dst: { family: 4 | 6; address: string; port: number },
  rec: ConnectionRecord, finish: (v: ConnectionRecord['verdict'], reason: string, error?: Error) => void): Promise<void> {
  const w = pod.workload;
  const exclude = new Set<string>();
  let lastError: unknown;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const snapshot = deps.snapshot();
    const d = decide(snapshot, w, dst, { node: deps.node, trustDomain: deps.trustDomain, picker: deps.picker, exclude });
    if (d.service) rec.originalDestination.service = d.service;
    if (d.kind === 'deny') {
      return finish(lastError && d.reason === 'no-healthy-endpoint' ? 'error' : 'deny', `${d.reason}: ${d.message}`, lastError as Error | undefined);
    }
    if (d.destination) rec.originalDestination.workload = workloadRef(d.destination);
    const endpoint = d.kind === 'passthrough' ? d.target : d.authority;
    const endpointText = formatAuthority(endpoint.address, endpoint.port);
    const untrack = deps.picker.track(endpoint.address);
    try {
      if (d.kind === 'passthrough') {
        const up = await whenConnected(deps.sockets.connect(pod.netnsPath, { family: d.target.family, host: d.target.address, port: d.target.port }), CONNECT_TIMEOUT_MS, endpointText);
        Object.assign(rec, { upstream: endpointText, path: 'passthrough', reason: d.reason });
        client.resume();
        const r = await pipeBoth(client, up);
        untrack();
        return finish('allow', d.reason, r.error);
      }
      if (d.kind === 'hbone') {
        rec.destinationIdentity = d.expectedServerIds[0];
        if (!deps.identities || !deps.hbone) return finish('deny', 'no-identity: this node has no identity service configured, so meshed destinations are refused (fail closed)');
        const src = deps.identities.get(w.namespace, w.serviceAccount) ??
          await withTimeout(deps.identities.whenReady(w.namespace, w.serviceAccount), IDENTITY_WAIT_MS, `certificate for ${spiffeIdOf(deps.trustDomain, w)}`);
        const target = formatAuthority(d.target.address, d.target.port);
        const stream = await deps.hbone.connect({
          source: src, target: d.target, authority: endpointText, expectedServerIds: d.expectedServerIds,
          headers: { forwarded: `for=${JSON.stringify(formatAuthority(w.ips[0] ?? '', client.remotePort ?? 0))}` },
          dial: () => deps.sockets.connect(pod.netnsPath, { family: d.target.family, host: d.target.address, port: d.target.port }),
        });
        Object.assign(rec, { upstream: `${target} (HBONE)`, path: 'hbone', reason: 'mTLS tunnel' });
        client.resume();
        const r = await spliceStreamSocket(stream, client, endpointText);
        untrack();
        return finish('allow', 'mTLS tunnel', r.error);
      }
      // Same node: both ends are this daemon. No TLS on the wire (there is no wire), the same
      // checks as the destination's HBONE server would make.
      rec.destinationIdentity = spiffeIdOf(deps.trustDomain, d.destination);
      const dest = deps.localPod(d.destination.uid);
      if (!dest) throw Object.assign(new Error(`destination pod ${d.destination.namespace}/${d.destination.name} is not enrolled on this node yet`), { code: 'ECONNREFUSED' });
      const subject = { principal: rec.sourceIdentity, ip: w.ips[0] ?? '' };
      const v = inboundVerdict(snapshot, d.destination, subject, d.authority.port);
      if (!v.allow) { untrack(); return finish('deny', `${v.reason}: ${v.message}`); }
      const app = await whenConnected(deps.sockets.connect(dest.netnsPath, { ...appConnection(d.authority.address), host: d.authority.address, port: d.authority.port }), CONNECT_TIMEOUT_MS, endpointText);
      Object.assign(rec, { upstream: endpointText, path: 'local', reason: 'same node' });
      let closedBy: string | undefined;
      const forget = deps.openInbound.add({
        destinationUid: d.destination.uid, subject, port: d.authority.port,
        close: (why) => { closedBy = why; client.destroy(); app.destroy(); },
      });
      client.resume();
      const r = await pipeBoth(client, app);
      forget();
      untrack();
      return closedBy ? finish('deny', `closed: ${closedBy}`) : finish('allow', 'same node', r.error);
    } catch (e) {
      untrack();
      lastError = e;
      if (NodemeshError.is(e, 'NODEMESH_E_HBONE_DENIED')) return finish('deny', e.message, e);
      if (d.service && retryable(e)) {
        deps.log.debug({ endpoint: endpointText, err: (e as Error).message }, 'endpoint failed, trying another');
        exclude.add(endpointText);
        continue;
      }
      return finish('error', (e as Error).message, e as Error);
    }
  }
  return finish('error', `gave up after ${MAX_ATTEMPTS} endpoints: ${(lastError as Error | undefined)?.message ?? 'unknown'}`, lastError as Error | undefined);
}
