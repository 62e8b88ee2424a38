// The real Datapath: loads bpf/build/{capture,inbound}.bpf.o through the native addon, keeps
// every map and link pinned under pinRoot, and programs the maps per enrolled pod.
//
// Pins (all ours, nothing else is ever touched):
//   <pinRoot>/<map>                       every map of bpf-codec.ts MAPS (LIBBPF_PIN_BY_NAME)
//   <pinRoot>/links/<program>             capture programs' cgroup links
//   <pinRoot>/pods/<uid-safe>/sk_lookup   one sk_lookup netns link per enrolled pod
// A restart (stop({keepAttached:true}), or a crash) leaves all of it attached: enrolled pods
// stay captured and, with the daemon's listeners gone, their traffic fails instead of
// escaping the mesh. The next start() adopts the pins and swaps in the new programs.
//
// The daemon's own sockets are told apart by the cgroup of the task that connects them:
// start() registers this process's cgroup id in nm_daemon_cg before any program is
// attached, and a stop() only removes the entry if no newer daemon took it over (a hitless
// restart runs two daemons at once, in one cgroup or two).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { DaemonErrors, DatapathErrors, NodemeshError } from '../errors';
import { loadNative, repoRoot } from '../../native/index';
import type { LinkHandle, NativeBinding, ObjectHandle } from '../../native/native';
import * as codec from './bpf-codec';
import { BPF_FS_MAGIC, cgroupIdOf, isCgroup2Dir, ownCgroupDir } from './cgroup';
import { MESH_PORTS } from './datapath';
import { removeSplicePins } from './splice';
import type { Datapath, DatapathPod, DatapathStatus, SocketAddress, UdpPassthroughCount } from './datapath';

/** Ports inside each pod that inbound steering never touches, beyond MESH_PORTS. */
export const ADMIN_PORTS = Object.freeze({ admin: 15000, metrics: 15020, readiness: 15021 });

export interface DatapathLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface EbpfDatapathOptions {
  /** Directory with capture.bpf.o and inbound.bpf.o (default <repo>/bpf/build). */
  objectDir?: string;
  /** Pin root on bpffs, one per node (default in config: /sys/fs/bpf/nodemesh). */
  pinRoot: string;
  /** cgroup2 directory the capture programs attach to (the node's pod cgroup root). */
  cgroupPath: string;
  /** Destination ports never captured outbound (node-wide). */
  excludeOutboundPorts?: number[];
  logger: DatapathLogger;
  /** Injected addon (tests); default loadNative(). */
  native?: NativeBinding;
  /** cgroup v2 id of the daemon's processes: capture skips sockets they connect (default:
   * this process's cgroup). */
  daemonCgroupId?: bigint;
  /** Source addresses whose plaintext reaches enrolled pods' apps unsteered: the node's own
   * addresses, for kubelet probes (bpf/inbound.bpf.c says why a pod cannot use them). */
  probeSources?: string[];
}

/** Capture programs in attach order: sockops and getpeername before connect, so no
 * connection is redirected before its record can be re-keyed. */
const CAPTURE_PROGRAMS = ['nm_sockops', 'nm_getpeername4', 'nm_getpeername6', 'nm_connect4', 'nm_connect6', 'nm_sendmsg4', 'nm_sendmsg6'] as const;
const SK_LOOKUP_PROGRAM = 'nm_sk_lookup';
const SK_LOOKUP_PIN = 'sk_lookup';
const BTF_PATH = '/sys/kernel/btf/vmlinux';

interface PodState {
  netnsCookie: bigint;
  ips: string[];
  netnsPath?: string;
  link?: LinkHandle;
}

/** A pin-directory name for a uid: readable when the uid is, collision-free always (bpffs
 * refuses '.' in names, so everything outside [A-Za-z0-9_-] becomes %HH, '%' included), and
 * hashed when too long for a file name ('%h' cannot come out of the escaping). */
export function uidPinName(uid: string): string {
  const escaped = uid.replace(/[^A-Za-z0-9_-]/g, (c) =>
    [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join(''));
  if (escaped.length <= 200) return escaped;
  return `%h${crypto.createHash('sha256').update(uid).digest('hex')}`;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message.split('\n')[0] : String(e);
}

function pidAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errCode(e) === 'EPERM';
  }
}

function errCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null ? (e as { code?: string }).code : undefined;
}

export class EbpfDatapath implements Datapath {
  readonly pinRoot: string;
  readonly cgroupPath: string;
  private readonly objectDir: string;
  private readonly excludeOutboundPorts: number[];
  private readonly log: DatapathLogger;
  private readonly daemonCgroupId: bigint | undefined;
  private readonly probeSources: string[];
  private nativeBinding: NativeBinding | undefined;

  private capture: ObjectHandle | undefined;
  private inbound: ObjectHandle | undefined;
  private readonly mapFds = new Map<codec.MapName, number>();
  private readonly captureLinks = new Map<string, LinkHandle>();
  private readonly pods = new Map<string, PodState>();
  private started = false;

  constructor(opts: EbpfDatapathOptions) {
    if (!opts.pinRoot || !path.isAbsolute(opts.pinRoot)) {
      throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'pinRoot', value: String(opts.pinRoot), expected: 'an absolute path on bpffs' });
    }
    if (!opts.cgroupPath || !path.isAbsolute(opts.cgroupPath)) {
      throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'cgroupPath', value: String(opts.cgroupPath), expected: 'an absolute cgroup2 directory' });
    }
    for (const p of opts.excludeOutboundPorts ?? []) {
      if (!Number.isInteger(p) || p < 1 || p > 65535) {
        throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'excludeOutboundPorts', value: String(p), expected: 'ports 1..65535' });
      }
    }
    this.pinRoot = path.resolve(opts.pinRoot);
    this.cgroupPath = path.resolve(opts.cgroupPath);
    this.objectDir = opts.objectDir ?? path.join(repoRoot(), 'bpf', 'build');
    this.excludeOutboundPorts = [...new Set(opts.excludeOutboundPorts ?? [])];
    this.log = opts.logger;
    this.nativeBinding = opts.native;
    this.daemonCgroupId = opts.daemonCgroupId;
    for (const ip of opts.probeSources ?? []) {
      try { codec.encodeIp(ip); } catch {
        throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'probeSources', value: String(ip), expected: 'IP addresses (the node\'s own)' });
      }
    }
    this.probeSources = [...new Set(opts.probeSources ?? [])];
  }

  // --- paths ---------------------------------------------------------------------------

  private get native(): NativeBinding {
    this.nativeBinding ??= loadNative();
    return this.nativeBinding;
  }

  private mapPin(name: codec.MapName): string { return path.join(this.pinRoot, name); }
  private linksDir(): string { return path.join(this.pinRoot, 'links'); }
  private linkPin(prog: string): string { return path.join(this.linksDir(), prog); }
  private podsDir(): string { return path.join(this.pinRoot, 'pods'); }
  private podDir(uid: string): string { return path.join(this.podsDir(), uidPinName(uid)); }
  private podLinkPin(uid: string): string { return path.join(this.podDir(uid), SK_LOOKUP_PIN); }

  // --- start ---------------------------------------------------------------------------

  async start(): Promise<void> {
    if (this.started) return;
    this.preflight();
    // A first start that fails must leave nothing behind: everything under a pin root this
    // call created is ours alone.
    const createdPinRoot = !fs.existsSync(this.pinRoot);
    fs.mkdirSync(this.linksDir(), { recursive: true });
    fs.mkdirSync(this.podsDir(), { recursive: true });
    try {
      this.capture = this.loadObject('capture', (obj) => {
        this.native.objectSetRodata(obj, 'nm_outbound_port', codec.encodeRodataU16(MESH_PORTS.outbound));
      });
      this.inbound = this.loadObject('inbound', (obj) => {
        // Only the port the daemon itself serves at the pod IP: an app listening on any other
        // (15001, 15020, ...) must still get its plaintext through the daemon.
        this.native.objectSetRodata(obj, 'nm_skip_ports', codec.encodeSkipPorts([MESH_PORTS.inboundHbone]));
      });
      for (const [name, spec] of Object.entries(codec.MAPS) as [codec.MapName, codec.MapSpec][]) {
        const obj = spec.object === 'capture' ? this.capture : this.inbound;
        this.mapFds.set(name, this.native.objectMapFd(obj, name));
      }
      this.registerDaemonCgroup();
      this.syncOutboundExclusions(0n, this.excludeOutboundPorts);
      this.syncProbeSources();
      const adopted: string[] = [];
      for (const prog of CAPTURE_PROGRAMS) {
        if (this.attachCapture(prog)) adopted.push(prog);
      }
      this.adoptPods();
      this.started = true;
      this.log.info({ pinRoot: this.pinRoot, cgroup: this.cgroupPath, adoptedLinks: adopted, pods: this.pods.size },
        adopted.length > 0 ? 'datapath started, adopted pinned links' : 'datapath started');
    } catch (e) {
      this.releaseHandles();
      if (createdPinRoot) fs.rmSync(this.pinRoot, { recursive: true, force: true });
      throw e;
    }
  }

  private preflight(): void {
    if (typeof process.getuid === 'function' && process.getuid() !== 0) throw DaemonErrors.NODEMESH_E_NOT_ROOT(undefined);
    if (!fs.existsSync(BTF_PATH)) throw DaemonErrors.NODEMESH_E_NO_BTF({ path: BTF_PATH });
    // The pin root may not exist yet: its nearest existing ancestor must be on bpffs.
    let dir = this.pinRoot;
    while (!fs.existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
    let onBpffs = false;
    try { onBpffs = fs.statfsSync(dir).type === BPF_FS_MAGIC; } catch { /* reported below */ }
    if (!onBpffs) throw DaemonErrors.NODEMESH_E_BPFFS_NOT_MOUNTED({ path: this.pinRoot }, { details: { checked: dir } });
    if (!isCgroup2Dir(this.cgroupPath)) throw DaemonErrors.NODEMESH_E_NO_CGROUP2({ path: this.cgroupPath });
  }

  private loadObject(which: keyof typeof codec.OBJECTS, configure: (obj: ObjectHandle) => void): ObjectHandle {
    const file = path.join(this.objectDir, codec.OBJECTS[which].file);
    if (!fs.existsSync(file)) throw DaemonErrors.NODEMESH_E_BPF_OBJECT({ path: file, reason: 'file not found' });
    let obj: ObjectHandle | undefined;
    try {
      obj = this.native.objectOpen(file, this.pinRoot);
      configure(obj);
      this.native.objectLoad(obj);
      return obj;
    } catch (e) {
      if (obj !== undefined) this.native.objectClose(obj);
      if (NodemeshError.is(e)) throw e;
      const log = (e as { libbpfLog?: string }).libbpfLog;
      throw DaemonErrors.NODEMESH_E_BPF_OBJECT({ path: file, reason: errText(e) }, { cause: e, details: log ? { libbpfLog: log } : undefined });
    }
  }

  /** Attaches one capture program, or adopts its pinned link. Returns true when adopted. */
  private attachCapture(prog: string): boolean {
    const r = this.adoptOrAttach(this.linkPin(prog), this.capture as ObjectHandle, prog, this.cgroupPath,
      () => this.native.attachCgroup(this.capture as ObjectHandle, prog, this.cgroupPath),
      'pinned capture link is defunct (its cgroup was removed); re-attaching');
    this.captureLinks.set(prog, r.link);
    return r.adopted;
  }

  /** The one way a link comes to be ours: adopt the pinned link (pointing it at the program
   * just loaded) or, when there is none or it is defunct (ENOLINK: its cgroup or namespace
   * is gone), attach anew and pin. A link that cannot be pinned is detached again, so
   * nothing stays attached that a restart could not find. */
  private adoptOrAttach(pin: string, obj: ObjectHandle, prog: string, target: string, attach: () => LinkHandle, defunct: string): { link: LinkHandle; adopted: boolean } {
    if (fs.existsSync(pin)) {
      let link: LinkHandle | undefined;
      try {
        link = this.native.linkOpenPinned(pin);
        this.native.linkUpdateProgram(link, obj, prog);
        return { link, adopted: true };
      } catch (e) {
        if (link !== undefined) this.native.linkClose(link);
        if (errCode(e) !== 'ENOLINK') throw DatapathErrors.NODEMESH_E_BPF_PIN({ path: pin, reason: errText(e) }, { cause: e });
        this.log.warn({ pin, program: prog }, defunct);
        fs.rmSync(pin, { force: true });
      }
    }
    fs.mkdirSync(path.dirname(pin), { recursive: true });
    let link: LinkHandle;
    try {
      link = attach();
    } catch (e) {
      throw DaemonErrors.NODEMESH_E_BPF_ATTACH({ program: prog, target, reason: errText(e) }, { cause: e });
    }
    try {
      this.native.linkPin(link, pin);
    } catch (e) {
      this.native.linkDetach(link);
      this.native.linkClose(link);
      throw DatapathErrors.NODEMESH_E_BPF_PIN({ path: pin, reason: errText(e) }, { cause: e });
    }
    return { link, adopted: false };
  }

  /** Reloads the enrolled pods from nm_pods and points their sk_lookup links at the new
   * program. A pod whose namespace is gone keeps its record until unenrol(). */
  private adoptPods(): void {
    for (const [uid, rec] of this.readPodRecords()) {
      const st: PodState = { netnsCookie: rec.netnsCookie, ips: rec.ips };
      const pin = this.podLinkPin(uid);
      if (fs.existsSync(pin)) {
        let link: LinkHandle | undefined;
        try {
          link = this.native.linkOpenPinned(pin);
          this.native.linkUpdateProgram(link, this.inbound as ObjectHandle, SK_LOOKUP_PROGRAM);
          st.link = link;
        } catch (e) {
          if (link !== undefined) this.native.linkClose(link);
          this.log.warn({ uid, pin, err: errText(e) }, 'cannot update the pinned sk_lookup link of an enrolled pod (namespace gone?)');
        }
      } else {
        this.log.warn({ uid, pin }, 'enrolled pod has no pinned sk_lookup link; re-enrol it');
      }
      this.pods.set(uid, st);
    }
  }

  private readPodRecords(fd = this.fd('nm_pods')): [string, codec.PodRecord][] {
    const out: [string, codec.PodRecord][] = [];
    const { keySize, valueSize } = codec.MAPS.nm_pods;
    let key: Buffer | null = null;
    for (let i = 0; i < 100_000; i++) {
      key = this.native.mapNextKey(fd, key, keySize);
      if (key === null) break;
      const v = this.native.mapLookup(fd, key, valueSize);
      if (v !== null) out.push([codec.decodePodKey(key), codec.decodePodRec(v)]);
    }
    return out;
  }

  /** This process's cgroup into nm_daemon_cg, before any capture program is attached; entries
   * of daemons that are gone are dropped. */
  private registerDaemonCgroup(): void {
    const id = this.ownCgroupId();
    const fd = this.fd('nm_daemon_cg');
    const stale: Buffer[] = [];
    let key: Buffer | null = null;
    for (let i = 0; i < 1000; i++) {
      key = this.native.mapNextKey(fd, key, codec.MAPS.nm_daemon_cg.keySize);
      if (key === null) break;
      const v = this.native.mapLookup(fd, key, codec.MAPS.nm_daemon_cg.valueSize);
      if (codec.decodeU64(key) !== id && (v === null || !pidAlive(codec.decodeDaemonInfo(v).pid))) stale.push(key);
    }
    for (const k of stale) this.native.mapDelete(fd, k);
    this.mapUpdate('nm_daemon_cg', codec.encodeU64(id), codec.encodeDaemonInfo(process.pid));
    this.log.info({ cgroupId: id.toString(), pruned: stale.length }, 'daemon cgroup registered: capture skips sockets this cgroup connects');
  }

  /** Removes our nm_daemon_cg entry unless a newer daemon in the same cgroup took it over. */
  private unregisterDaemonCgroup(): void {
    const key = codec.encodeU64(this.ownCgroupId());
    const v = this.native.mapLookup(this.fd('nm_daemon_cg'), key, codec.MAPS.nm_daemon_cg.valueSize);
    if (v !== null && codec.decodeDaemonInfo(v).pid === process.pid) this.native.mapDelete(this.fd('nm_daemon_cg'), key);
  }

  private ownCgroupId(): bigint {
    return this.daemonCgroupId ?? cgroupIdOf(ownCgroupDir());
  }

  private syncProbeSources(): void {
    const fd = this.fd('nm_probe_src');
    const want = new Set(this.probeSources.map((ip) => codec.decodeIpKey(codec.encodeIpKey(ip))));
    const stale: Buffer[] = [];
    let key: Buffer | null = null;
    for (let i = 0; i < 100_000; i++) {
      key = this.native.mapNextKey(fd, key, codec.MAPS.nm_probe_src.keySize);
      if (key === null) break;
      if (!want.delete(codec.decodeIpKey(key))) stale.push(key);
    }
    for (const k of stale) this.native.mapDelete(fd, k);
    for (const ip of want) this.mapUpdate('nm_probe_src', codec.encodeIpKey(ip), codec.encodeFlagU8());
  }

  /** UDP that enrolled pods sent past the mesh (not captured), by family and DNS or not. */
  udpPassthrough(): UdpPassthroughCount[] {
    if (!this.started) return [];
    const out: UdpPassthroughCount[] = [];
    for (let slot = 0; slot < codec.NM_UDP_SLOTS; slot++) {
      const v = this.native.mapLookup(this.fd('nm_udp_stats'), codec.encodeU32(slot), codec.MAPS.nm_udp_stats.valueSize);
      out.push({ ...codec.udpSlot(slot), count: v === null ? 0 : Number(codec.decodeU64(v)) });
    }
    return out;
  }

  /** Makes nm_out_excl hold exactly `ports` for one netns cookie (0n: node-wide). */
  private syncOutboundExclusions(netnsCookie: bigint, ports: readonly number[]): void {
    const fd = this.fd('nm_out_excl');
    const want = new Set(ports);
    const stale: Buffer[] = [];
    let key: Buffer | null = null;
    for (let i = 0; i < 100_000; i++) {
      key = this.native.mapNextKey(fd, key, codec.MAPS.nm_out_excl.keySize);
      if (key === null) break;
      const k = codec.decodeOutExclKey(key);
      if (k.netnsCookie === netnsCookie && !want.delete(k.port)) stale.push(key);
    }
    for (const k of stale) this.native.mapDelete(fd, k);
    for (const port of want) this.mapUpdate('nm_out_excl', codec.encodeOutExclKey({ netnsCookie, port }), codec.encodeFlagU8());
  }

  // --- enrol / unenrol -----------------------------------------------------------------

  async enrol(pod: DatapathPod): Promise<void> {
    this.requireStarted('enrol');
    this.validatePod(pod);
    const prev = this.pods.get(pod.uid);
    if (prev && prev.netnsCookie !== pod.netnsCookie) {
      this.log.info({ uid: pod.uid }, 'pod namespace changed; unenrolling the old one first');
      this.unenrolSync(pod.uid);
    }
    const old = this.pods.get(pod.uid);
    const st: PodState = { netnsCookie: pod.netnsCookie, ips: [...pod.ips], netnsPath: pod.netnsPath, link: old?.link };
    // The record first: whatever happens next, a later unenrol or uninstall can find it.
    this.mapUpdate('nm_pods', codec.encodePodKey(pod.uid),
      codec.encodePodRec({ netnsCookie: pod.netnsCookie, flags: codec.NM_NETNS_CAPTURE_OUTBOUND, ips: pod.ips }));
    this.pods.set(pod.uid, st);

    // Inbound: IPs, listener, exclusions, then the steering link.
    for (const ip of old?.ips ?? []) if (!pod.ips.includes(ip)) this.forgetIp(ip, pod.netnsCookie);
    for (const ip of pod.ips) {
      this.mapUpdate('nm_pod_ips', codec.encodeIpKey(ip), codec.encodePodIpInfo(pod.netnsCookie));
      const fd = net.isIPv6(ip) ? pod.inboundListenerFd6 ?? pod.inboundListenerFd : pod.inboundListenerFd;
      this.mapUpdate('nm_in_listen', codec.encodeIpKey(ip), codec.encodeSockhashFd(fd));
    }
    this.syncInboundExclusions(pod.ips, pod.inboundExcludePorts ?? []);
    this.ensurePodLink(pod, st);

    // Outbound capture last: the pod's outbound listener exists before enrol() is called.
    this.syncOutboundExclusions(pod.netnsCookie, pod.outboundExcludePorts ?? []);
    this.mapUpdate('nm_enrolled', codec.encodeU64(pod.netnsCookie), codec.encodeNetnsInfo(codec.NM_NETNS_CAPTURE_OUTBOUND));
    this.log.info({ uid: pod.uid, netnsCookie: pod.netnsCookie.toString(), ips: pod.ips }, old ? 'pod re-enrolled' : 'pod enrolled');
  }

  private validatePod(pod: DatapathPod): void {
    const bad = (reason: string) => DatapathErrors.NODEMESH_E_ENROL({ pod: pod.uid, reason });
    try {
      codec.encodePodKey(pod.uid);
    } catch (e) {
      throw bad(errText(e));
    }
    if (typeof pod.netnsCookie !== 'bigint' || pod.netnsCookie <= 0n) throw bad('netnsCookie must be a positive bigint (SO_NETNS_COOKIE)');
    if (pod.ips.length === 0) throw bad('the pod has no IP');
    if (pod.ips.length > codec.NM_POD_MAX_IPS) throw bad(`at most ${codec.NM_POD_MAX_IPS} IPs per pod, got ${pod.ips.length}`);
    for (const ip of pod.ips) {
      try { codec.encodeIp(ip); } catch { throw bad(`${JSON.stringify(ip)} is not an IP address`); }
    }
    if (!Number.isInteger(pod.inboundListenerFd) || pod.inboundListenerFd < 0) throw bad('inboundListenerFd must be an open fd');
    if (pod.inboundListenerFd6 !== undefined && (!Number.isInteger(pod.inboundListenerFd6) || pod.inboundListenerFd6 < 0)) throw bad('inboundListenerFd6 must be an open fd');
    for (const [field, ports] of [['inboundExcludePorts', pod.inboundExcludePorts], ['outboundExcludePorts', pod.outboundExcludePorts]] as const) {
      for (const p of ports ?? []) {
        if (!Number.isInteger(p) || p < 1 || p > 65535) throw bad(`${field}: ${p} is not a port`);
      }
    }
    let cookie: bigint;
    try {
      cookie = this.native.netnsCookie(pod.netnsPath);
    } catch (e) {
      throw DaemonErrors.NODEMESH_E_POD_NETNS({ pod: pod.uid, netns: pod.netnsPath, reason: errText(e) }, { cause: e });
    }
    if (cookie !== pod.netnsCookie) {
      throw bad(`netnsCookie ${pod.netnsCookie} does not match ${pod.netnsPath} (cookie ${cookie}); the pod's sandbox was recreated`);
    }
  }

  private ensurePodLink(pod: DatapathPod, st: PodState): void {
    if (st.link !== undefined) return; // attached by this process (or adopted and updated at start)
    st.link = this.adoptOrAttach(this.podLinkPin(pod.uid), this.inbound as ObjectHandle, SK_LOOKUP_PROGRAM, pod.netnsPath,
      () => this.native.attachNetns(this.inbound as ObjectHandle, SK_LOOKUP_PROGRAM, pod.netnsPath),
      'pinned sk_lookup link is defunct (the namespace it steered is gone); re-attaching').link;
  }

  /** Makes nm_in_excl hold exactly `ports` for these IPs. */
  private syncInboundExclusions(ips: string[], ports: number[]): void {
    const fd = this.fd('nm_in_excl');
    const mine = new Set(ips.map((ip) => codec.decodeIpKey(codec.encodeIpKey(ip))));
    const want = new Set<string>();
    for (const ip of mine) for (const p of ports) want.add(`${ip}|${p}`);
    const stale: Buffer[] = [];
    let key: Buffer | null = null;
    for (let i = 0; i < 100_000; i++) {
      key = this.native.mapNextKey(fd, key, codec.MAPS.nm_in_excl.keySize);
      if (key === null) break;
      const k = codec.decodeIpPortKey(key);
      if (mine.has(k.address) && !want.delete(`${k.address}|${k.port}`)) stale.push(key);
    }
    for (const k of stale) this.native.mapDelete(fd, k);
    for (const w of want) {
      const sep = w.lastIndexOf('|');
      this.mapUpdate('nm_in_excl', codec.encodeIpPortKey(w.slice(0, sep), Number(w.slice(sep + 1))), codec.encodeFlagU8());
    }
  }

  /** Drops an IP from the inbound maps, unless it now belongs to another pod. */
  private forgetIp(ip: string, owner: bigint): void {
    const key = codec.encodeIpKey(ip);
    const cur = this.native.mapLookup(this.fd('nm_pod_ips'), key, codec.MAPS.nm_pod_ips.valueSize);
    if (cur !== null && codec.decodePodIpInfo(cur).netnsCookie !== owner) return;
    this.native.mapDelete(this.fd('nm_pod_ips'), key);
    this.native.mapDelete(this.fd('nm_in_listen'), key);
    this.syncInboundExclusions([ip], []);
  }

  async unenrol(uid: string): Promise<void> {
    this.requireStarted('unenrol');
    this.unenrolSync(uid);
  }

  private unenrolSync(uid: string): void {
    const st = this.pods.get(uid);
    if (!st) return;
    // Outbound capture stops first, then inbound steering, then the bookkeeping.
    this.native.mapDelete(this.fd('nm_enrolled'), codec.encodeU64(st.netnsCookie));
    this.syncOutboundExclusions(st.netnsCookie, []);
    this.removePodLink(uid, st.link);
    for (const ip of st.ips) this.forgetIp(ip, st.netnsCookie);
    this.native.mapDelete(this.fd('nm_pods'), codec.encodePodKey(uid));
    this.pods.delete(uid);
    this.log.info({ uid, netnsCookie: st.netnsCookie.toString() }, 'pod unenrolled');
  }

  /** Detaches and unpins a pod's sk_lookup link (ours by construction) and its pin dir. */
  private removePodLink(uid: string, held: LinkHandle | undefined): void {
    this.detachPinned(this.podLinkPin(uid), held);
    this.rmdirQuiet(this.podDir(uid));
  }

  /** Detaches the link behind `pin` (or `held`) and removes the pin file. */
  private detachPinned(pin: string, held: LinkHandle | undefined): void {
    let link = held;
    try {
      if (link === undefined && fs.existsSync(pin)) link = this.native.linkOpenPinned(pin);
      if (link !== undefined) {
        try {
          this.native.linkDetach(link);
        } catch (e) {
          // ENOLINK: its cgroup or namespace is already gone, nothing left to detach.
          if (errCode(e) !== 'ENOLINK') throw e;
        }
      }
    } catch (e) {
      throw DatapathErrors.NODEMESH_E_BPF_PIN({ path: pin, reason: errText(e) }, { cause: e });
    } finally {
      if (link !== undefined) this.native.linkClose(link);
    }
    fs.rmSync(pin, { force: true });
  }

  enrolledUids(): string[] {
    if (this.started) return [...this.pods.keys()];
    // Before start (e.g. a restarted daemon reconciling): read the pinned record directly.
    const pin = this.mapPin('nm_pods');
    if (!fs.existsSync(pin)) return [];
    const fd = this.native.mapOpenPinned(pin);
    try {
      return this.readPodRecords(fd).map(([uid]) => uid);
    } finally {
      this.native.closeFd(fd);
    }
  }

  /** One lookup-and-delete per outbound connection. The key buffer is reused (the call is
   * synchronous; the kernel copies the key); its cookie is rewritten only when the pod changes. */
  takeOriginalDestination(netnsCookie: bigint, clientPort: number, family: 4 | 6): SocketAddress | undefined {
    if (!this.started) return undefined;
    const key = this.origKey;
    if (netnsCookie !== this.origKeyCookie) {
      codec.setConnKeyCookie(key, netnsCookie);
      this.origKeyCookie = netnsCookie;
    }
    codec.setConnKeyPort(key, clientPort, family);
    const v = this.native.mapLookupAndDelete(this.fd('nm_orig_conn'), key, codec.MAPS.nm_orig_conn.valueSize);
    if (v === null) return undefined;
    const d = codec.decodeOrigDst(v);
    return { family: d.family, address: d.address, port: d.port };
  }
  private readonly origKey = Buffer.alloc(codec.LAYOUTS.nm_conn_key.size);
  private origKeyCookie = -1n;

  // --- stop ----------------------------------------------------------------------------

  async stop(opts: { keepAttached: boolean }): Promise<void> {
    if (opts.keepAttached) {
      if (this.started) this.unregisterDaemonCgroup();
      this.releaseHandles();
      this.log.info({ pinRoot: this.pinRoot, pods: this.pods.size }, 'datapath handles released; programs stay attached through their pins');
      this.pods.clear();
      return;
    }
    // Uninstall: works from the pins alone, so it also cleans up after a crashed or
    // incompatible older daemon that this process never started against.
    const removed: string[] = [];
    if (fs.existsSync(this.podsDir())) {
      for (const d of fs.readdirSync(this.podsDir())) {
        const pin = path.join(this.podsDir(), d, SK_LOOKUP_PIN);
        const held = [...this.pods.entries()].find(([uid]) => uidPinName(uid) === d)?.[1].link;
        if (held !== undefined || fs.existsSync(pin)) { this.detachPinned(pin, held); removed.push(pin); }
        this.rmdirQuiet(path.join(this.podsDir(), d));
      }
    }
    for (const st of this.pods.values()) st.link = undefined;
    for (const prog of CAPTURE_PROGRAMS) {
      const pin = this.linkPin(prog);
      const held = this.captureLinks.get(prog);
      this.captureLinks.delete(prog);
      if (held !== undefined || fs.existsSync(pin)) { this.detachPinned(pin, held); removed.push(pin); }
    }
    this.releaseHandles();
    for (const name of Object.keys(codec.MAPS) as codec.MapName[]) {
      const pin = this.mapPin(name);
      if (fs.existsSync(pin)) { fs.rmSync(pin, { force: true }); removed.push(pin); }
    }
    this.pods.clear();
    removed.push(...removeSplicePins(this.pinRoot, { all: true })); // splice.ts: pins of a daemon that did not exit cleanly
    this.rmdirQuiet(this.podsDir());
    this.rmdirQuiet(this.linksDir());
    this.removeEmptyPinDirs();
    this.log.info({ pinRoot: this.pinRoot, removed: removed.length }, 'datapath detached and unpinned');
  }

  /** Removes the pin root and its now-empty parents, stopping at the bpffs mount point. */
  private removeEmptyPinDirs(): void {
    let dir = this.pinRoot;
    for (let i = 0; i < 16; i++) {
      const parent = path.dirname(dir);
      if (parent === dir || !fs.existsSync(dir)) break;
      let parentOnBpffs = false;
      try { parentOnBpffs = fs.statfsSync(parent).type === BPF_FS_MAGIC; } catch { /* stop */ }
      if (!parentOnBpffs) break; // dir is the mount point itself: never remove it
      if (!this.rmdirQuiet(dir)) break;
      dir = parent;
    }
  }

  private rmdirQuiet(dir: string): boolean {
    try {
      fs.rmdirSync(dir);
      return true;
    } catch (e) {
      if (errCode(e) !== 'ENOENT' && errCode(e) !== 'ENOTEMPTY') this.log.warn({ dir, err: errText(e) }, 'cannot remove pin directory');
      return false;
    }
  }

  /** Drops every handle this process holds; pinned objects stay attached. */
  private releaseHandles(): void {
    for (const l of this.captureLinks.values()) this.native.linkClose(l);
    this.captureLinks.clear();
    for (const st of this.pods.values()) {
      if (st.link !== undefined) this.native.linkClose(st.link);
      st.link = undefined;
    }
    for (const obj of [this.capture, this.inbound]) if (obj !== undefined) this.native.objectClose(obj);
    this.capture = undefined;
    this.inbound = undefined;
    this.mapFds.clear();
    this.started = false;
  }

  // --- status --------------------------------------------------------------------------

  status(): DatapathStatus {
    const programs: DatapathStatus['programs'] = CAPTURE_PROGRAMS.map((p) => ({
      name: p, attachedTo: `cgroup:${this.cgroupPath}`, pinned: fs.existsSync(this.linkPin(p)),
    }));
    for (const [uid, st] of this.pods) {
      programs.push({ name: SK_LOOKUP_PROGRAM, attachedTo: `netns:${st.netnsPath ?? `pod ${uid}`}`, pinned: fs.existsSync(this.podLinkPin(uid)) });
    }
    return {
      kind: 'ebpf',
      pinRoot: this.pinRoot,
      cgroup: this.cgroupPath,
      programs,
      enrolled: [...this.pods].map(([uid, st]) => ({ uid, netnsCookie: st.netnsCookie.toString(), ips: [...st.ips] })),
    };
  }

  // --- helpers -------------------------------------------------------------------------

  private requireStarted(op: string): void {
    if (!this.started) throw DaemonErrors.NODEMESH_E_CONFIG({ field: 'datapath', value: op, expected: 'start() to be called first' });
  }

  private fd(name: codec.MapName): number {
    const fd = this.mapFds.get(name);
    if (fd === undefined) throw DatapathErrors.NODEMESH_E_BPF_MAP({ map: name, op: 'open', reason: 'the datapath is not started' });
    return fd;
  }

  private mapUpdate(name: codec.MapName, key: Buffer, value: Buffer): void {
    try {
      this.native.mapUpdate(this.fd(name), key, value, codec.BPF_ANY);
    } catch (e) {
      if (NodemeshError.is(e)) throw e;
      throw DatapathErrors.NODEMESH_E_BPF_MAP({ map: name, op: 'update', reason: errText(e) }, { cause: e });
    }
  }
}
