// The kernel side of redirection, as the daemon sees it. Two implementations:
// ebpf-datapath.ts (real: bpf/ programs through native/) and memory-datapath.ts (tests).
// The daemon decides; the datapath only programs the kernel and reads it back.

export interface SocketAddress {
  family: 4 | 6;
  address: string;
  port: number;
}

export interface DatapathPod {
  /** Stable key of the pod (metadata.uid, or ns/name when there is no uid). */
  uid: string;
  /** Path of the pod's network namespace (/run/netns/..., /proc/<pid>/ns/net). */
  netnsPath: string;
  /** SO_NETNS_COOKIE of that namespace. */
  netnsCookie: bigint;
  /** The pod's IPs; inbound plaintext to these is steered. */
  ips: string[];
  /** fd of the daemon's inbound plaintext listener (15006) inside the pod's namespace. */
  inboundListenerFd: number;
  /** fd of the IPv6 one ([::1]:15006), for the pod's IPv6 addresses; without it they go to
   * inboundListenerFd (which must then be dual-stack). */
  inboundListenerFd6?: number;
  /** Destination ports never steered inbound (beyond the mesh's own ports). */
  inboundExcludePorts?: number[];
  /** Destination ports this pod's outbound connections reach directly (never captured). */
  outboundExcludePorts?: number[];
}

export interface DatapathStatus {
  kind: 'ebpf' | 'memory';
  pinRoot?: string;
  cgroup?: string;
  programs: { name: string; attachedTo: string; pinned: boolean }[];
  enrolled: { uid: string; netnsCookie: string; ips: string[] }[];
}

export interface Datapath {
  /** Load and attach (or adopt pinned maps and links from a previous run). Idempotent. */
  start(): Promise<void>;
  /** Capture this pod's outbound TCP and steer its inbound plaintext. Re-enrolling an
   * enrolled pod updates it (e.g. a new listener fd after a daemon restart). */
  enrol(pod: DatapathPod): Promise<void>;
  /** Stop capturing and steering for this pod. Unknown uids are ignored. */
  unenrol(uid: string): Promise<void>;
  /** uids the kernel still treats as enrolled (from pins), for reconciling after restart. */
  enrolledUids(): string[];
  /** The original destination of an app connection accepted on the outbound listener of the
   * pod whose namespace has this cookie; clientPort is the app socket's local port (the
   * accepted socket's remotePort). Consumes the record. */
  takeOriginalDestination(netnsCookie: bigint, clientPort: number, family: 4 | 6): SocketAddress | undefined;
  /** Release this process's handles. keepAttached=true (restart, crash-safe) leaves programs
   * attached and pinned so enrolled pods stay captured (fail closed); false (uninstall)
   * detaches and unpins everything this datapath created, and nothing else. */
  stop(opts: { keepAttached: boolean }): Promise<void>;
  status(): DatapathStatus;
  /** Enrolled pods' UDP, which is not captured: what went past the mesh, counted by the
   * kernel (absent on datapaths that cannot count it). */
  udpPassthrough?(): UdpPassthroughCount[];
}

/** UDP sockets connected, or datagrams sent unconnected, by enrolled pods. */
export interface UdpPassthroughCount { family: 4 | 6; dns: boolean; count: number }

/** Ports the mesh owns inside each enrolled pod's namespace. */
export const MESH_PORTS = Object.freeze({
  outbound: 15001,
  inboundPlaintext: 15006,
  inboundHbone: 15008,
});
const MESH_PORT_SET: ReadonlySet<number> = new Set(Object.values(MESH_PORTS));
/** Whether `port` is one of the mesh's own ports (never an app's destination through the mesh). */
export const isMeshPort = (port: number): boolean => MESH_PORT_SET.has(port);
/** Source address for the daemon's connections to a local app (as Istio's 127.0.0.6):
 * inbound steering ignores loopback sources, so these reach the app directly. Capture
 * recognises the daemon's sockets by its cgroup, not by a mark (bpf/capture.bpf.c). */
export const INBOUND_PASSTHROUGH_SOURCE_V4 = '127.0.0.6';
/** The same for a pod's IPv6 addresses. */
export const INBOUND_PASSTHROUGH_SOURCE_V6 = '::1';

/** How the daemon connects to a local app at `ip` so inbound steering lets it through: the
 * family of the address, from the loopback source of that family. */
export function appConnection(ip: string): { family: 4 | 6; localAddress: string } {
  return ip.includes(':') && !ip.startsWith('::ffff:')
    ? { family: 6, localAddress: INBOUND_PASSTHROUGH_SOURCE_V6 }
    : { family: 4, localAddress: INBOUND_PASSTHROUGH_SOURCE_V4 };
}
