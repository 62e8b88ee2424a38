// The node (V8) flags every nodemesh data-path process runs with: the node daemon in its
// DaemonSet (installer/manifests/node-daemonset.ts, and so the Helm chart), the sandbox's node
// daemons (installer/sandbox/daemons.ts) and the sandbox's sidecars (installer/sandbox/
// sidecars.ts). On the command line, so that every way the daemon is started gets them.
//
// --max-semi-space-size=4 (MiB; V8's default ceiling is 16): the young generation grows with
//   the allocation rate. While 10,000 connections open it grows to 16 MiB per semi-space,
//   which stays committed (RSS) while they are held, and each scavenge then copies up to
//   16 MiB of half-built connection state. Measured on the 2-core sandbox (issue 8), twice:
//   daemon RSS per held connection at 10,000: 10.0-10.4 / 8.8-8.9 KiB -> 8.5-8.7 / 7.2-7.3 KiB
//   (node-1 / node-2); scavenge pauses while they open: p90 10.7 -> 5.2 ms, max 18 -> 12.6 ms.
//   The price: about twice as many (shorter) scavenges at a steady 1000-2000 req/s, still
//   under 0.3% of a core. 1 MiB was measured too: barely less memory, twice the GC time.
// Measured and not adopted (bench/l4-latency.ts keepalive@1000,2000, twice each, one sitting,
//   ambient p99 at 1000 / 2000 req/s; scavenge p90 / max): semi-space 4 alone 3.29-3.35 /
//   3.40-3.96 ms, 2.1-2.2 / 10-12 ms; + --no-parallel-scavenge 4.11-4.42 / 3.89-4.53 ms,
//   2.4 / 9.5-12.7 ms; + --no-concurrent-marking 3.83-4.54 / 3.53-3.63 ms, 2.6 / 14-16 ms
//   (and longer mark-compacts). --single-threaded-gc doubled the median scavenge.
export const DAEMON_NODE_FLAGS: readonly string[] = Object.freeze(['--max-semi-space-size=4']);
