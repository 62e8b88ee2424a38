// The native surface (native/src/*.cc), declared once. Primitive arguments only; every
// function throws a TypeError with usage text on wrong arguments, and an Error whose
// `code` is the errno name (e.g. 'EPERM') and whose `syscall` names the failing call on a
// kernel or libbpf failure. All logic lives in TypeScript; this is only the syscall layer.

/** Opaque handle to a libbpf bpf_object (opened, maybe loaded). */
export type ObjectHandle = number;
/** Opaque handle to a libbpf bpf_link. */
export type LinkHandle = number;

export interface NativeBinding {
  /** libbpf version string, e.g. "1.1". */
  libbpfVersion(): string;

  // --- objects -----------------------------------------------------------------------
  /** bpf_object__open_file with pin_root_path set: maps declared with
   * LIBBPF_PIN_BY_NAME are reused from / pinned under pinRoot at load ('' = libbpf's
   * default root). bpffs refuses '.' in names, so pin paths must not contain one. */
  objectOpen(path: string, pinRoot: string): ObjectHandle;
  /** Overwrite a `const volatile` global in .rodata before load (BTF gives its offset). */
  objectSetRodata(obj: ObjectHandle, varName: string, value: Buffer): void;
  objectLoad(obj: ObjectHandle): void;
  /** Closes the object (programs and maps stay alive only through links and pins). */
  objectClose(obj: ObjectHandle): void;
  /** The fd of a map of a loaded object (owned by the object; do not close). */
  objectMapFd(obj: ObjectHandle, mapName: string): number;

  // --- links -------------------------------------------------------------------------
  /** bpf_program__attach_cgroup: a bpf_link (multi-attach semantics; never flagless). */
  attachCgroup(obj: ObjectHandle, progName: string, cgroupPath: string): LinkHandle;
  /** bpf_program__attach_netns (sk_lookup) on the namespace at netnsPath. */
  attachNetns(obj: ObjectHandle, progName: string, netnsPath: string): LinkHandle;
  /** bpf_prog_attach(prog, mapFd, BPF_SK_SKB_VERDICT): a SOCKMAP/SOCKHASH's stream verdict
   * program (held by the map, not a link). */
  attachSockmap(obj: ObjectHandle, progName: string, mapFd: number): void;
  /** bpf_link__open on a pinned link. */
  linkOpenPinned(path: string): LinkHandle;
  /** bpf_link__update_program: replace the program behind a link atomically. */
  linkUpdateProgram(link: LinkHandle, obj: ObjectHandle, progName: string): void;
  linkPin(link: LinkHandle, path: string): void;
  /** Removes the pin file (the link lives on while a handle or another pin holds it). */
  linkUnpin(link: LinkHandle): void;
  /** bpf_link__detach: detach now, even if pinned elsewhere. Use only on our own links. */
  linkDetach(link: LinkHandle): void;
  /** Drops this process's handle (bpf_link__destroy without detaching a pinned link). */
  linkClose(link: LinkHandle): void;

  // --- maps (by fd) ------------------------------------------------------------------
  mapOpenPinned(path: string): number;
  mapUpdate(fd: number, key: Buffer, value: Buffer, flags: number): void;
  /** Returns the value, or null when the key is absent (ENOENT). */
  mapLookup(fd: number, key: Buffer, valueSize: number): Buffer | null;
  /** Lookup and delete in one call (BPF_MAP_LOOKUP_AND_DELETE_ELEM where supported,
   * else lookup then delete); null when absent. */
  mapLookupAndDelete(fd: number, key: Buffer, valueSize: number): Buffer | null;
  /** Returns false when the key was absent. */
  mapDelete(fd: number, key: Buffer): boolean;
  /** Next key after `key` (or the first when null); null at the end. */
  mapNextKey(fd: number, key: Buffer | null, keySize: number): Buffer | null;

  // --- sockets and namespaces --------------------------------------------------------
  /**
   * Creates a TCP socket inside the network namespace at netnsPath (setns there and back
   * on the calling thread in one synchronous call), optionally binding and listening, and
   * returns its fd (O_CLOEXEC, non-blocking) for Node to adopt with net.Server.listen({fd})
   * or new net.Socket({fd}). family: 4 or 6. mark: SO_MARK (0 = none). backlog < 0 means do
   * not listen. bindAddress '' means do not bind. flags: bit 0 SO_REUSEADDR, bit 1
   * IP_FREEBIND, bit 2 IPV6_V6ONLY, bit 3 IP_TRANSPARENT, bit 4 SO_REUSEPORT (a restarting
   * daemon listens beside the old one on the same address). For family 6 without bit 2 the
   * socket is explicitly dual-stack (IPV6_V6ONLY=0), whatever the namespace's bindv6only.
   * When netnsPath is the caller's own namespace no setns happens (no privilege needed).
   */
  socketInNetns(netnsPath: string, family: number, bindAddress: string, bindPort: number,
    mark: number, backlog: number, flags: number): number;
  /** Opens the namespace at netnsPath (O_RDONLY | O_CLOEXEC) for socketInNetnsFd; the caller
   * keeps the fd per pod and closes it with closeFd when the pod goes. */
  netnsOpen(netnsPath: string): number;
  /** socketInNetns with the namespace already open (netnsOpen): no path lookups per socket,
   * only the two setns calls (none when it is the caller's own namespace). */
  socketInNetnsFd(netnsFd: number, family: number, bindAddress: string, bindPort: number,
    mark: number, backlog: number, flags: number): number;
  /** SO_NETNS_COOKIE of the namespace at netnsPath (through a throwaway socket in it). */
  netnsCookie(netnsPath: string): bigint;
  /** SO_NETNS_COOKIE of the namespace a socket lives in. */
  socketNetnsCookie(fd: number): bigint;
  /** SO_COOKIE of a socket. */
  socketCookie(fd: number): bigint;
  setSocketMark(fd: number, mark: number): void;
  /** Writes /proc/sys/net/<name> as seen from the network namespace at netnsPath (e.g.
   * 'ipv4/tcp_migrate_req', '1'); name is [a-z0-9_./-] without '..'. */
  writeNetSysctlInNetns(netnsPath: string, name: string, value: string): void;
  /** Closes an fd this process owns (for fds never handed to Node). */
  closeFd(fd: number): void;
  // --- same-node splice (bpf/splice.bpf.c) --------------------------------------------
  /** Splices two connected TCP sockets: both into the tx sockhash, both peer entries, then
   * each into the rx sockhash (whose verdict program redirects its bytes to the peer). Throws
   * (everything rolled back) unless A joined rx; rx says which joined (bit 0 A, bit 1 B).
   * flags bit 0: kick (SO_RCVLOWAT=1) so bytes queued before the insert move at once. */
  spliceSockets(txFd: number, rxFd: number, peerFd: number, fdA: number, fdB: number, flags: number): { rx: number; cookieA: bigint; cookieB: bigint };
  /** Removes both sockets' entries from the three splice maps (absent ones are ignored). */
  spliceRemove(txFd: number, rxFd: number, peerFd: number, cookieA: bigint, cookieB: bigint): void;
  /** [TCP_INFO bytes_acked, TCP_INFO bytes_received, SIOCOUTQ] of a TCP socket. */
  tcpCounters(fd: number): [number, number, number];
  /** Gives freed memory back to the system: V8 critical memory pressure (a full, synchronous
   * GC that releases unused heap pages), then malloc_trim. For after a burst of closes. */
  releaseMemory(): void;
}
