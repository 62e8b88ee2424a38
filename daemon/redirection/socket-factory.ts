// How the daemon gets sockets inside pods' network namespaces. The netns implementation
// creates them natively (setns there and back on one thread) and hands the fd to Node;
// every socket is marked so the capture programs skip it (no loop). Tests use the loopback
// implementation, which ignores namespaces.
import * as net from 'node:net';
import type { NativeBinding } from '../../native/native';
import { DAEMON_SOCKET_MARK } from './datapath';

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
}

const SO_REUSEADDR = 1;
const V6ONLY = 4;

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

  constructor(private readonly native: NativeBinding, private readonly mark = DAEMON_SOCKET_MARK) {}

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
    const fd = this.native.socketInNetns(netnsPath, opts.family, opts.host, opts.port, this.mark,
      opts.backlog ?? 511, SO_REUSEADDR | (opts.family === 6 ? V6ONLY : 0));
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
    const fd = this.native.socketInNetnsFd(this.nsFd(netnsPath), opts.family, opts.localAddress ?? '', 0, this.mark, -1, 0);
    const s = new net.Socket({ fd, allowHalfOpen: true });
    s.connect({ port: opts.port, host: opts.host });
    return s;
  }

  netnsCookie(netnsPath: string): bigint {
    return this.native.netnsCookie(netnsPath);
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
