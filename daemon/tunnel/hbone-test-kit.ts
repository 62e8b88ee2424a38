// Test and bench helpers for the tunnel: a mesh CA with workload identities, a loopback HBONE
// listener wired to an HboneListener (daemon/proxy/inbound-hbone.ts), apps on ephemeral 127.0.0.1 ports, a log sink. Nothing
// here leaves 127.0.0.1.
import * as net from 'node:net';
import pino, { Logger } from 'pino';
import { MeshCA, describeLeaf, spiffeId } from '../identity/ca';
import { HboneClient, HboneClientOptions, HboneConnectRequest } from './hbone-client';
import { HboneListener, type HboneConnectionEvent, type HboneListenerOptions } from '../proxy/inbound-hbone';
import type { IssuedIdentity } from './tls-identity';
import { TunnelDuplex } from './h2/tunnel-duplex';

export const LOOPBACK = '127.0.0.1';

export async function issueIdentity(ca: MeshCA, ns: string, sa: string, opts: { ttlSeconds?: number; notBefore?: Date; trustBundlePem?: string[] } = {}): Promise<IssuedIdentity> {
  const id = spiffeId(ca.trustDomain, ns, sa);
  const { keyPem, certPem } = await ca.issue(id, opts.ttlSeconds ?? 3600, opts.notBefore ? { notBefore: opts.notBefore } : {});
  const leaf = describeLeaf(certPem);
  return { spiffeId: id, keyPem, certChainPem: [certPem], trustBundlePem: opts.trustBundlePem ?? [ca.rootCertPem], notBefore: leaf.notBefore, notAfter: leaf.notAfter };
}

export interface LogSink { log: Logger; lines: Record<string, unknown>[]; find(re: RegExp): Record<string, unknown> | undefined }

export function logSink(level = 'debug'): LogSink {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level }, { write: (s: string) => { lines.push(JSON.parse(s)); } });
  return { log, lines, find: (re) => lines.find((l) => re.test(JSON.stringify(l))) };
}

export function listen(onConnection: (s: net.Socket) => void): Promise<net.Server> {
  const server = net.createServer({ allowHalfOpen: true }, onConnection);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: LOOPBACK, port: 0 }, () => resolve(server));
  });
}

export function portOf(server: net.Server): number {
  return (server.address() as net.AddressInfo).port;
}

/** An app that echoes every byte and half-closes when its peer does. */
export function echoApp(): Promise<net.Server> {
  return listen((s) => { s.on('error', () => undefined); s.pipe(s); });
}

export interface Destination {
  server: HboneListener;
  /** Where clients dial (the pod's "15008"). */
  hbonePort: number;
  listener: net.Server;
  events: HboneConnectionEvent[];
  sink: LogSink;
  /** Raw sockets accepted on the HBONE port. */
  accepted: net.Socket[];
  stop(): Promise<void>;
}

export async function startDestination(opts: Partial<HboneListenerOptions> & { identity: () => IssuedIdentity; trustDomain: string }): Promise<Destination> {
  const sink = logSink();
  const events: HboneConnectionEvent[] = [];
  const server = new HboneListener({
    podIPs: [LOOPBACK],
    authorize: () => ({ allow: true }),
    connectApp: (port) => net.connect({ host: LOOPBACK, port, allowHalfOpen: true }),
    log: sink.log,
    onConnection: (e) => events.push(e),
    ...opts,
  });
  const accepted: net.Socket[] = [];
  const listener = await listen((s) => { accepted.push(s); server.handle(s); });
  return {
    server, listener, events, sink, accepted, hbonePort: portOf(listener),
    async stop() {
      await server.close({ timeoutMs: 1000 });
      for (const s of accepted) s.destroy();
      await new Promise<void>((r) => listener.close(() => r()));
    },
  };
}

export function newClient(opts: Partial<HboneClientOptions> = {}): { client: HboneClient; sink: LogSink } {
  const sink = logSink();
  return { client: new HboneClient({ log: sink.log, ...opts }), sink };
}

/** A connect request to a loopback destination, with `appPort` as the real destination. */
export function request(source: IssuedIdentity, dst: { hbonePort: number }, appPort: number, serverIds: string[], extra: Partial<HboneConnectRequest> = {}): HboneConnectRequest {
  return {
    source,
    target: { address: LOOPBACK, port: dst.hbonePort },
    authority: `${LOOPBACK}:${appPort}`,
    expectedServerIds: serverIds,
    dial: () => net.connect({ host: LOOPBACK, port: dst.hbonePort }),
    ...extra,
  };
}

/** A tunnel as a Duplex (tests read and write it like a socket). */
export async function openTunnel(client: HboneClient, req: HboneConnectRequest): Promise<TunnelDuplex> {
  return new TunnelDuplex(await client.connect(req));
}

/** Reads a stream to its end; resolves with everything it carried. */
export function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('error', reject);
  });
}

export function closeServer(s: net.Server): Promise<void> {
  return new Promise((r) => s.close(() => r()));
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` every 10 ms until true or `ms` elapse. */
export async function waitFor(cond: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

export interface MeshFixture { ca: MeshCA; clientId: IssuedIdentity; serverId: IssuedIdentity; app: net.Server; dst: Destination }

/** The usual cast: a mesh CA, a client (shop/web) and a server (shop/api) identity, an echo
 * app and an HBONE destination presenting the server identity. */
export async function startMeshFixture(): Promise<MeshFixture> {
  const ca = await MeshCA.create({ trustDomain: 'cluster.local' });
  const clientId = await issueIdentity(ca, 'shop', 'web');
  const serverId = await issueIdentity(ca, 'shop', 'api');
  const app = await echoApp();
  const dst = await startDestination({ identity: () => serverId, trustDomain: 'cluster.local' });
  return { ca, clientId, serverId, app, dst };
}

export async function stopMeshFixture(f: Pick<MeshFixture, 'app' | 'dst'>): Promise<void> {
  await f.dst.stop();
  await closeServer(f.app);
}
