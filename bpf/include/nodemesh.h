/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * nodemesh: structs, map names and constants shared between the eBPF programs and user
 * space. Mirrored, by hand, in daemon/redirection/bpf-codec.ts; the unit test
 * daemon/redirection/bpf-codec.test.ts compares that codec with the BTF of the compiled
 * objects, so a change here without the matching change there fails the build.
 *
 * Rules for everything in this file:
 *   - fixed-width types only, explicit padding fields, no implicit holes (map keys are
 *     hashed byte for byte, so every byte must be written by both sides);
 *   - addresses are stored as 16 bytes: IPv4 in the first 4 bytes (network order) and
 *     zeros after, IPv6 as-is; `family` says which (NM_FAMILY_V4 / NM_FAMILY_V6), so a
 *     v4-mapped IPv6 destination is recorded as IPv4 (that is what the daemon sees after
 *     accept());
 *   - ports are host byte order.
 */
#ifndef NODEMESH_H
#define NODEMESH_H

/* Family codes in keys and values (not AF_*: user space compares with 4 and 6). */
#define NM_FAMILY_V4 4
#define NM_FAMILY_V6 6

/* Upper bounds sized into the structs below. */
#define NM_UID_MAX 320      /* "namespace/name" is at most 63 + 1 + 253 bytes */
#define NM_POD_MAX_IPS 8

/* nm_netns_info.flags */
#define NM_NETNS_CAPTURE_OUTBOUND 0x1

/* Slots of nm_udp_stats: (family == 6) * 2 + (destination port == 53). */
#define NM_UDP_SLOTS 4

/* nm_orig_dst.flags */
#define NM_ORIG_V4_MAPPED 0x1 /* the app used an AF_INET6 socket to ::ffff:a.b.c.d */

/* An address of either family, e.g. a pod IP. Key of nm_pod_ips and nm_in_listen. */
struct nm_ip_key {
	__u8 addr[16];
	__u8 family;
	__u8 _pad[3];
};

/* Key of nm_in_excl: inbound destination ports never steered for one pod IP. */
struct nm_ip_port_key {
	__u8 addr[16];
	__u8 family;
	__u8 _pad;
	__u16 port;
};

/* Key of nm_out_excl: outbound destination ports never captured, for one pod (its netns
 * cookie) or, with netns_cookie 0, for every pod of the node. */
struct nm_out_excl_key {
	__u64 netns_cookie;
	__u16 port;
	__u8 _pad[6];
};

/* Value of nm_enrolled, keyed by the pod's netns cookie (__u64). */
struct nm_netns_info {
	__u32 flags;
	__u32 _pad;
};

/* The destination the app asked for, before connect4/6 rewrote it. Value of nm_orig_sock
 * (keyed by socket cookie, __u64) and nm_orig_conn (keyed by nm_conn_key). */
struct nm_orig_dst {
	__u8 addr[16];
	__u16 port;
	__u8 family;
	__u8 flags;
	__u32 _pad;
};

/* Key of nm_orig_conn: what the daemon knows after accept() on its outbound listener.
 * The app socket's local port is unique per (netns, family) among connections to the
 * single outbound listener address, and the netns cookie separates pods. */
struct nm_conn_key {
	__u64 netns_cookie;
	__u16 port;
	__u8 family;
	__u8 _pad[5];
};

/* Value of nm_daemon_cg, keyed by a cgroup v2 id (__u64): the nodemesh-node process that
 * registered the cgroup. Sockets connected from these cgroups are the daemon's own. */
struct nm_daemon_info {
	__u32 pid;
	__u32 _pad;
};

/* Value of nm_pod_ips: which enrolled pod owns this IP. */
struct nm_pod_ip_info {
	__u64 netns_cookie;
};

/* Key of nm_pods (user space only, BPF never reads it): the pod uid, UTF-8, NUL padded. */
struct nm_pod_key {
	char uid[NM_UID_MAX];
};

/* Value of nm_pods: what unenrol needs after a daemon restart. */
struct nm_pod_rec {
	__u64 netns_cookie;
	__u32 flags;
	__u32 ip_count;
	struct nm_ip_key ips[NM_POD_MAX_IPS];
};

#endif /* NODEMESH_H */
