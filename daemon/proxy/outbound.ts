// The outbound listener's handler (15001 inside each enrolled pod), as ztunnel's proxy_to:
//
//   1. recover where the app wanted to go (the kernel recorded it at connect())
//   2. decide, purely (routing/decide.ts)
//   3. build the connection record once, from the decision
//   4. run the decision's branch: HBONE tunnel (outbound-hbone.ts), same node
//      (outbound-local.ts) or plain TCP (outbound-passthrough.ts); a refusal resets the app's
//      connection (RST), so the client sees ECONNRESET rather than a server that said nothing
//   5. a Service endpoint that could not be reached before any app byte was sent is replaced
//      by another (back to 2, without it)
import type * as net from 'node:net';
import type { Logger } from 'pino';
import type { Datapath, SocketAddress } from '../redirection/datapath';
import type { SocketFactory } from '../redirection/socket-factory';
import { decide, spiffeIdOf, type Decision } from '../routing/decide';
import type { PowerOfTwoChoices } from '../routing/balancer';
import type { Snapshot, Workload } from '../state/snapshot';
import type { ConnectionCause, ConnectionTable, LiveConnection, NewConnection, PeerWorkload, Verdict } from './connection-table';
import type { OpenInboundSet } from './open-inbound';
import type { HboneClient } from '../tunnel/hbone-client';
import type { IssuedIdentity } from '../tunnel/tls-identity';
import type { CleanEndSet } from '../tunnel/clean-end';
import { endpointKey, formatAuthority } from '../tunnel/authority';
import { DaemonErrors, NodemeshError } from '../errors';
import { viaPassthrough } from './outbound-passthrough';
import { viaHbone } from './outbound-hbone';
import { viaLocal } from './outbound-local';

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
  /** Tunnelled app connections, ended cleanly when the daemon stops past its drain deadline. */
  cleanEnds?: CleanEndSet;
}

export interface PodContext {
  workload: Workload;
  netnsPath: string;
  netnsCookie: bigint;
}

/** One app connection being proxied: what every branch works with. */
export interface OutboundCall {
  deps: ProxyDeps;
  pod: PodContext;
  client: net.Socket;
  rec: LiveConnection;
  snapshot: Snapshot;
}

/** How a branch ended; a branch throws instead when it failed before any app byte moved.
 * bytes: when the client socket's own counters do not tell (the kernel carried them). */
export interface Outcome { verdict: Verdict; cause: ConnectionCause; reason: string; error?: Error; bytes?: { sent: number; received: number } }

export const CONNECT_TIMEOUT_MS = 5_000;
const MAX_ATTEMPTS = 3;

/** Snapshot workloads are immutable and live until the next snapshot: one ref each. */
const refs = new WeakMap<Workload, PeerWorkload>();
export function peerWorkload(w: Workload): PeerWorkload {
  let r = refs.get(w);
  if (!r) {
    r = Object.freeze({ uid: w.uid, namespace: w.namespace, name: w.name, owner: w.owner?.name ?? w.name });
    refs.set(w, r);
  }
  return r;
}

const family = (s: net.Socket): 4 | 6 => (s.remoteFamily === 'IPv6' && !s.remoteAddress?.startsWith('::ffff:') ? 6 : 4);

/** Errors after which another endpoint may well work (nothing was sent yet). */
export function retryable(e: unknown): boolean {
  if (NodemeshError.is(e)) return e.code === 'NODEMESH_E_HBONE_CONNECT' || e.code === 'NODEMESH_E_HBONE_CONNECT_TIMEOUT' || e.code === 'NODEMESH_E_HBONE_UPSTREAM';
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ECONNREFUSED' || code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH';
}

export function handleOutbound(deps: ProxyDeps, pod: PodContext, client: net.Socket): void {
  client.on('error', noop); // reported through the splice results
  const dst = deps.datapath.takeOriginalDestination(pod.netnsCookie, client.remotePort ?? 0, family(client));
  if (!dst) {
    const err = DaemonErrors.NODEMESH_E_ORIGINAL_DST_MISSING({ pod: `${pod.workload.namespace}/${pod.workload.name}`, port: client.remotePort ?? 0 });
    const rec = deps.connections.add({ ...recordOf(deps, pod, client, undefined, undefined), verdict: 'deny', cause: 'original-destination-missing', reason: err.code });
    reset(client);
    deps.connections.close(rec, 0, 0);
    return;
  }
  client.pause();
  void proxyTo(deps, pod, client, dst);
}

async function proxyTo(deps: ProxyDeps, pod: PodContext, client: net.Socket, dst: SocketAddress): Promise<void> {
  // Endpoints that failed for this connection; made only on a failure (decide filters the
  // Service's endpoints by it, building a key per endpoint, only when there is one).
  let exclude: Set<string> | undefined;
  let rec: LiveConnection | undefined;
  let lastError: unknown;
  const finish = (o: Outcome) => {
    rec!.verdict = o.verdict;
    rec!.cause = o.cause;
    rec!.reason = o.reason;
    if (o.verdict !== 'allow') reset(client);
    deps.connections.close(rec!, o.bytes?.sent ?? client.bytesRead, o.bytes?.received ?? client.bytesWritten, o.error);
  };
  try {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const snapshot = deps.snapshot();
      const d = decide(snapshot, pod.workload, dst, { node: deps.node, trustDomain: deps.trustDomain, picker: deps.picker, exclude });
      if (!rec) rec = deps.connections.add(recordOf(deps, pod, client, dst, d));
      else if (d.kind !== 'deny') retarget(deps, rec, d);
      if (d.kind === 'deny') {
        const failedBefore = lastError !== undefined && d.reason === 'no-healthy-endpoint';
        return finish({ verdict: failedBefore ? 'error' : 'deny', cause: d.reason, reason: `${d.reason}: ${d.message}`, error: lastError as Error | undefined });
      }
      const endpoint = d.kind === 'passthrough' ? d.target : d.authority;
      const untrack = deps.picker.track(endpoint.address);
      const call: OutboundCall = { deps, pod, client, rec, snapshot };
      try {
        const outcome = d.kind === 'hbone' ? await viaHbone(call, d) : d.kind === 'local' ? await viaLocal(call, d) : await viaPassthrough(call, d);
        return finish(outcome);
      } catch (e) {
        lastError = e;
        if (NodemeshError.is(e, 'NODEMESH_E_HBONE_DENIED')) return finish({ verdict: 'deny', cause: 'destination-denied', reason: e.message, error: e });
        if (!d.service || !retryable(e)) return finish({ verdict: 'error', cause: 'upstream-failed', reason: (e as Error).message, error: e as Error });
        deps.log.debug({ endpoint: formatAuthority(endpoint.address, endpoint.port), err: (e as Error).message }, 'endpoint failed, trying another');
        (exclude ??= new Set()).add(endpointKey(endpoint.address, endpoint.port));
      } finally {
        untrack();
      }
    }
    const why = (lastError as Error | undefined)?.message ?? 'unknown';
    return finish({ verdict: 'error', cause: 'upstream-failed', reason: `gave up after ${MAX_ATTEMPTS} endpoints: ${why}`, error: lastError as Error | undefined });
  } catch (e) {
    deps.log.error({ err: e }, 'outbound connection failed unexpectedly');
    if (rec) finish({ verdict: 'error', cause: 'error', reason: (e as Error).message, error: e as Error });
    else reset(client);
  }
}

/** The record of an outbound connection, from its decision (undefined: no destination known). */
function recordOf(deps: ProxyDeps, pod: PodContext, client: net.Socket, dst: SocketAddress | undefined, d: Decision | undefined): NewConnection {
  const w = pod.workload;
  const me = peerWorkload(w);
  const r: NewConnection = {
    direction: 'outbound', pod: me,
    source: { workload: me, address: formatAuthority(w.ips[0] ?? '', client.remotePort ?? 0) },
    originalDestination: { address: dst ? formatAuthority(dst.address, dst.port) : 'unknown', service: d?.service },
    sourceIdentity: spiffeIdOf(deps.trustDomain, w),
    verdict: 'allow', cause: 'connecting', reason: 'connecting',
  };
  if (d && d.kind !== 'deny') retarget(deps, r, d);
  return r;
}

/** The endpoint the decision picked (it changes when a failed endpoint is replaced). */
function retarget(deps: ProxyDeps, r: NewConnection, d: Exclude<Decision, { kind: 'deny' }>): void {
  r.originalDestination.workload = d.destination && peerWorkload(d.destination);
  r.destinationIdentity = d.kind === 'hbone' ? d.expectedServerIds[0] : d.kind === 'local' ? spiffeIdOf(deps.trustDomain, d.destination) : undefined;
}

/** A refusal the app can see: RST (ECONNRESET), not a clean close. */
export function reset(s: net.Socket): void {
  if (s.destroyed) return;
  try {
    s.resetAndDestroy();
  } catch {
    s.destroy();
  }
}

function noop(): void { /* see callers */ }
