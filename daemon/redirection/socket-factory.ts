// How the daemon gets sockets inside pods' network namespaces. The netns implementation
// creates them natively (setns there and back on one thread) and hands the fd to Node; the
// capture programs skip them because they are connected from the daemon's cgroup (no mark:
// a pod could set the same mark). Tests use the loopback implementation, which ignores
// namespaces.
import * as net from 'node:net';
import type { NativeBinding } from '../../native/native';

export interface ListenOptions { family: 4 | 6; host: string; port: number; backlog?: number }
export interface ConnectOptions { family: 4 | 6; host: string; port: number; localAddress?: string }

export interface SocketFactory {
  /** A listening server inside the namespace; resolves once Node owns the listener. */
  listen(netnsPath: string, opts: ListenOptions, onConnection: (s: net.Socket) => void): Promise<{ server: net.Server; fd: number; port: number }>;
  /** Starts an outbound connection from inside the namespace (listen for 'connect'/'error'). */
  connect(netnsPath: string, opts: ConnectOptions): net.Socket;
  netnsCookie(netnsPath: string): bigint;
  /** The pod at netnsPath is gone: drop what the factory keeps for its namespace. */
  release(netnsPath: string): void;
  /** Readies a pod's namespace for the daemon's listeners: net.ipv4.tcp_migrate_req=1, so
   * when a restarting daemon's old listener closes, what is queued on it moves to the new
   * daemon's listener on the same address instead of being reset. */
  prepareNamespace?(netnsPath: string): void;
}

/** socketInNetns flags (native/native.d.ts). */
export const SOCKET_FLAGS = Object.freeze({ reuseAddr: 1, v6Only: 4, reusePort: 16 });

/** Every listener the daemon owns is SO_REUSEPORT: during a restart the new daemon binds the
 * same addresses while the old one still serves, and the kernel (net.ipv4.tcp_migrate_req)
 * moves what is queued on the old listener to the new one when the old closes. */
export function listenerFlags(family: 4 | 6): number {
  return SOCKET_FLAGS.reuseAddr | SOCKET_FLAGS.reusePort | (family === 6 ? SOCKET_FLAGS.v6Only : 0);
}

function serverFd(server: net.Server): number {
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' ? fd : -1;
}

function adoptListener(fd: number, onConnection: (s: net.Socket) => void): Promise<net.Server> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false }, onConnection);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd }, () => { server.off('error', reject); resolve(server); });
  });
}

export class NetnsSocketFactory implements SocketFactory {
  /** One open fd per pod namespace: a socket then costs socket() and two setns, not two
   * procfs opens as well. Held until release() (the pod left this node). */
  private readonly nsFds = new Map<string, number>();

  constructor(private readonly native: NativeBinding) {}

  private nsFd(netnsPath: string): number {
    let fd = this.nsFds.get(netnsPath);
    if (fd === undefined) {
      fd = this.native.netnsOpen(netnsPath);
      this.nsFds.set(netnsPath, fd);
    }
    return fd;
  }

  release(netnsPath: string): void {
    const fd = this.nsFds.get(netnsPath);
    if (fd === undefined) return;
    this.nsFds.delete(netnsPath);
    this.native.closeFd(fd);
  }

  async listen(netnsPath: string, opts: ListenOptions, onConnection: (s: net.Socket) => void) {
    const fd = this.native.socketInNetns(netnsPath, opts.family, opts.host, opts.port, 0,
      opts.backlog ?? 511, listenerFlags(opts.family));
    let server: net.Server;
    try {
      server = await adoptListener(fd, onConnection);
    } catch (e) {
      this.native.closeFd(fd);
      throw e;
    }
    return { server, fd, port: opts.port };
  }

  connect(netnsPath: string, opts: ConnectOptions): net.Socket {
    const fd = this.native.socketInNetnsFd(this.nsFd(netnsPath), opts.family, opts.localAddress ?? '', 0, 0, -1, 0);
    const s = new net.Socket({ fd, allowHalfOpen: true });
    s.connect({ port: opts.port, host: opts.host });
    return s;
  }

  netnsCookie(netnsPath: string): bigint {
    return this.native.netnsCookie(netnsPath);
  }

  prepareNamespace(netnsPath: string): void {
    this.native.writeNetSysctlInNetns(netnsPath, 'ipv4/tcp_migrate_req', '1');
  }
}

/** Test factory: everything on loopback in the current namespace, ephemeral ports. */
export class LoopbackSocketFactory implements SocketFactory {
  private cookies = new Map<string, bigint>();

  async listen(netnsPath: string, opts: ListenOptions, onConnection: (s: net.Socket) => void) {
    void netnsPath;
    const server = net.createServer({ allowHalfOpen: true }, onConnection);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: opts.family === 6 ? '::1' : '127.0.0.1', port: 0 }, () => resolve());
    });
    return { server, fd: serverFd(server), port: (server.address() as net.AddressInfo).port };
  }

  connect(netnsPath: string, opts: ConnectOptions): net.Socket {
    void netnsPath;
    // Tests run in the host namespace: never let a pod address leak out as real traffic.
    if (!/^(127\.|::1$|::ffff:127\.)/.test(opts.host)) throw new Error(`LoopbackSocketFactory refuses ${opts.host}: only loopback addresses in tests`);
    return net.connect({ port: opts.port, host: opts.host, allowHalfOpen: true });
  }

  release(netnsPath: string): void {
    this.cookies.delete(netnsPath);
  }

  netnsCookie(netnsPath: string): bigint {
    let c = this.cookies.get(netnsPath);
    if (c === undefined) { c = BigInt(this.cookies.size + 1000); this.cookies.set(netnsPath, c); }
    return c;
  }
}

/** Listeners in the daemon's own namespace (admin, metrics, readiness): SO_REUSEPORT like the
 * in-pod ones; an IPv6 one is dual-stack, so '::' serves IPv4 and IPv6. */
export function ownNamespaceListener(native: NativeBinding): (family: 4 | 6, host: string, port: number) => number {
  return (family, host, port) => native.socketInNetns('/proc/self/ns/net', family, host, port, 0, 511, SOCKET_FLAGS.reuseAddr | SOCKET_FLAGS.reusePort);
}

/** The default probe sources: this node's own IPv4 addresses (every non-loopback one of the
 * daemon's namespace; a DaemonSet runs in the host's). IPv4 only: a node drops a forwarded
 * IPv4 packet whose source is one of its own addresses (accept_local=0), so no pod can send
 * from them; IPv6 has no such check, so a pod could forge the node's IPv6 address, and
 * IPv6 kubelet probes to STRICT pods are not exempted (set NODEMESH_PROBE_SOURCES only where
 * the network drops such packets). */
export function nodeAddresses(ifaces: NodeJS.Dict<import('node:os').NetworkInterfaceInfo[]>): string[] {
  const out: string[] = [];
  for (const list of Object.values(ifaces)) {
    for (const a of list ?? []) {
      if (a.internal || a.family !== 'IPv4') continue;
      out.push(a.address);
    }
  }
  return [...new Set(out)];
}
