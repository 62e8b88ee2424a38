// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Outbound capture. Attached (bpf_link, multi-attach) to one cgroup: the node's pod cgroup
 * root. For a TCP connect() from an enrolled network namespace, remember the destination the
 * app asked for and send the connection to the daemon's outbound listener on loopback inside
 * that same namespace. sockops then re-keys the record by what the daemon can see after
 * accept(): (netns cookie, app's local port, family). Shared structs: nodemesh.h.
 *
 * The daemon's own sockets are recognised by the cgroup of the task that connects them
 * (nm_daemon_cg, filled by the daemon at start), never by anything the socket carries: a
 * process in a pod cannot move itself into the daemon's cgroup, while it can set SO_MARK
 * with CAP_NET_ADMIN. No mark is used anywhere.
 *
 * UDP (DNS included) is not captured: it passes through unchanged and is counted per
 * family and DNS/other in nm_udp_stats (the daemon exports it as a metric).
 *
 * Never blocks a connect: every program returns 1 (allow). Failure is closed anyway: if the
 * daemon is down there is nothing on loopback:15001 and the app's connect is refused.
 */
#include "vmlinux.h"
#include "nodemesh_bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Load-time constants (daemon/redirection/ebpf-datapath.ts sets them before load). */
const volatile __u16 nm_outbound_port = 15001; /* daemon's outbound listener, loopback */

/* Enrolled pod namespaces: netns cookie -> flags. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct nm_netns_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_enrolled SEC(".maps");

/* cgroup v2 ids of the daemon's processes (a restart may run two at once, in two cgroups). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, struct nm_daemon_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_daemon_cg SEC(".maps");

/* UDP sockets connected, or datagrams sent unconnected, by enrolled pods: passed through. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NM_UDP_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_udp_stats SEC(".maps");

/* Destination ports never captured: node-wide (cookie 0) or per pod (annotations). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct nm_out_excl_key);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_out_excl SEC(".maps");

/* Original destination by socket cookie, from connect until the socket closes (read by
 * getpeername, re-keyed by sockops). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct nm_orig_dst);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_orig_sock SEC(".maps");

/* Original destination by what the daemon computes after accept(); the daemon deletes
 * what it reads, the LRU bounds what it never reads. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct nm_conn_key);
	__type(value, struct nm_orig_dst);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_orig_conn SEC(".maps");

/* Enrolled pods by uid: user space bookkeeping that must survive a daemon restart (bpffs
 * holds only BPF objects, so it lives in a map). No program reads it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct nm_pod_key);
	__type(value, struct nm_pod_rec);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_pods SEC(".maps");

/* The task connecting is one of the daemon's: its cgroup was registered by the daemon. */
NM_INLINE bool nm_is_daemon(void)
{
	__u64 cg = bpf_get_current_cgroup_id();

	return bpf_map_lookup_elem(&nm_daemon_cg, &cg) != NULL;
}

NM_INLINE bool nm_enrolled_netns(struct bpf_sock_addr *ctx)
{
	struct nm_netns_info *info;
	__u64 netns = bpf_get_netns_cookie(ctx);

	info = bpf_map_lookup_elem(&nm_enrolled, &netns);
	return info && (info->flags & NM_NETNS_CAPTURE_OUTBOUND);
}

NM_INLINE bool nm_should_capture(struct bpf_sock_addr *ctx)
{
	if (ctx->type != SOCK_STREAM || ctx->protocol != IPPROTO_TCP)
		return false;
	if (!ctx->sk)
		return false;
	return !nm_is_daemon() && nm_enrolled_netns(ctx);
}

/* An enrolled pod's UDP goes out unchanged; count it (slot: family, DNS or not). */
NM_INLINE void nm_count_udp(struct bpf_sock_addr *ctx, __u32 v6, __u16 port)
{
	__u32 slot;
	__u64 *n;

	if (ctx->protocol != IPPROTO_UDP || nm_is_daemon() || !nm_enrolled_netns(ctx))
		return;
	slot = v6 * 2 + (port == 53 ? 1 : 0);
	n = bpf_map_lookup_elem(&nm_udp_stats, &slot);
	if (n)
		__sync_fetch_and_add(n, 1);
}

NM_INLINE bool nm_port_excluded(struct bpf_sock_addr *ctx, __u16 port)
{
	struct nm_out_excl_key k = {};

	k.port = port;
	if (bpf_map_lookup_elem(&nm_out_excl, &k))
		return true;
	k.netns_cookie = bpf_get_netns_cookie(ctx);
	return bpf_map_lookup_elem(&nm_out_excl, &k) != NULL;
}

/* user_port holds a __be16 in a __u32 slot. */
NM_INLINE __u16 nm_user_port(struct bpf_sock_addr *ctx)
{
	return bpf_ntohs((__u16)ctx->user_port);
}

NM_INLINE void nm_remember(struct bpf_sock_addr *ctx, struct nm_orig_dst *dst)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);

	/* If this fails the connection is still redirected: the daemon finds no record and
	 * refuses it, which is the closed failure we want. */
	bpf_map_update_elem(&nm_orig_sock, &cookie, dst, BPF_ANY);
}

NM_INLINE int nm_capture4(struct bpf_sock_addr *ctx)
{
	struct nm_orig_dst dst = {};
	__u32 ip = ctx->user_ip4;
	__u16 port = nm_user_port(ctx);

	if (ctx->protocol == IPPROTO_UDP) {
		if (!nm_v4_is_loopback(ip))
			nm_count_udp(ctx, 0, port);
		return 1;
	}
	if (nm_v4_is_loopback(ip) || nm_port_excluded(ctx, port) || !nm_should_capture(ctx))
		return 1;
	nm_addr_set_v4(dst.addr, ip);
	dst.port = port;
	dst.family = NM_FAMILY_V4;
	nm_remember(ctx, &dst);
	ctx->user_ip4 = bpf_htonl(0x7f000001);
	ctx->user_port = bpf_htons(nm_outbound_port);
	return 1;
}

NM_INLINE int nm_capture6(struct bpf_sock_addr *ctx)
{
	struct nm_orig_dst dst = {};
	__u16 port = nm_user_port(ctx);
	__u32 ip[4];

	ip[0] = ctx->user_ip6[0];
	ip[1] = ctx->user_ip6[1];
	ip[2] = ctx->user_ip6[2];
	ip[3] = ctx->user_ip6[3];
	if (ctx->protocol == IPPROTO_UDP) {
		if (!nm_v6_is_loopback(ip))
			nm_count_udp(ctx, nm_v6_is_v4_mapped(ip) ? 0 : 1, port);
		return 1;
	}
	if (nm_v6_is_loopback(ip) || nm_port_excluded(ctx, port) || !nm_should_capture(ctx))
		return 1;
	dst.port = port;
	if (nm_v6_is_v4_mapped(ip)) {
		/* The packets are IPv4: the daemon accepts this on its IPv4 listener. */
		nm_addr_set_v4(dst.addr, ip[3]);
		dst.family = NM_FAMILY_V4;
		dst.flags = NM_ORIG_V4_MAPPED;
		nm_remember(ctx, &dst);
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0x0000ffff);
		ctx->user_ip6[3] = bpf_htonl(0x7f000001);
	} else {
		nm_addr_set_v6(dst.addr, ip);
		dst.family = NM_FAMILY_V6;
		nm_remember(ctx, &dst);
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = 0;
		ctx->user_ip6[3] = bpf_htonl(1);
	}
	ctx->user_port = bpf_htons(nm_outbound_port);
	return 1;
}

/* A captured socket sent its SYN: ask for state callbacks, so its socket-cookie record is
 * dropped when it closes, whether it was established or refused. */
NM_INLINE void nm_on_tcp_connect(struct bpf_sock_ops *skops)
{
	__u64 cookie = bpf_get_socket_cookie(skops);

	if (!bpf_map_lookup_elem(&nm_orig_sock, &cookie))
		return;
	/* If this fails, the record stays until LRU eviction: harmless, cookies are unique. */
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
}

/* The app's connection reached the outbound listener: re-key by what the daemon sees. The
 * socket-cookie record stays until the socket closes (getpeername reads it). */
NM_INLINE void nm_on_active_established(struct bpf_sock_ops *skops)
{
	__u64 cookie = bpf_get_socket_cookie(skops);
	struct nm_conn_key key = {};
	struct nm_orig_dst *dst;

	dst = bpf_map_lookup_elem(&nm_orig_sock, &cookie);
	if (!dst)
		return;
	key.netns_cookie = bpf_get_netns_cookie(skops);
	key.port = (__u16)skops->local_port; /* host byte order in sock_ops */
	key.family = dst->family;
	bpf_map_update_elem(&nm_orig_conn, &key, dst, BPF_ANY);
}

NM_INLINE void nm_on_state(struct bpf_sock_ops *skops)
{
	__u64 cookie;

	if (skops->args[1] != BPF_TCP_CLOSE)
		return;
	cookie = bpf_get_socket_cookie(skops);
	bpf_map_delete_elem(&nm_orig_sock, &cookie);
}

/* getpeername() on a captured socket shows the original destination, not loopback:15001. */
NM_INLINE int nm_peer4(struct bpf_sock_addr *ctx)
{
	struct nm_orig_dst *dst;
	__u64 cookie;

	if (ctx->user_ip4 != bpf_htonl(0x7f000001) || nm_user_port(ctx) != nm_outbound_port)
		return 1;
	cookie = bpf_get_socket_cookie(ctx);
	dst = bpf_map_lookup_elem(&nm_orig_sock, &cookie);
	if (!dst || dst->family != NM_FAMILY_V4 || (dst->flags & NM_ORIG_V4_MAPPED))
		return 1;
	ctx->user_ip4 = *(__u32 *)dst->addr;
	ctx->user_port = bpf_htons(dst->port);
	return 1;
}

NM_INLINE int nm_peer6(struct bpf_sock_addr *ctx)
{
	struct nm_orig_dst *dst;
	__u64 cookie;
	__u32 ip[4];

	if (nm_user_port(ctx) != nm_outbound_port)
		return 1;
	ip[0] = ctx->user_ip6[0];
	ip[1] = ctx->user_ip6[1];
	ip[2] = ctx->user_ip6[2];
	ip[3] = ctx->user_ip6[3];
	if (!nm_v6_is_loopback(ip))
		return 1;
	cookie = bpf_get_socket_cookie(ctx);
	dst = bpf_map_lookup_elem(&nm_orig_sock, &cookie);
	if (!dst)
		return 1;
	if (dst->flags & NM_ORIG_V4_MAPPED) {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0x0000ffff);
		ctx->user_ip6[3] = *(__u32 *)dst->addr;
	} else if (dst->family == NM_FAMILY_V6) {
		__u32 *a = (__u32 *)dst->addr;

		ctx->user_ip6[0] = a[0];
		ctx->user_ip6[1] = a[1];
		ctx->user_ip6[2] = a[2];
		ctx->user_ip6[3] = a[3];
	} else {
		return 1;
	}
	ctx->user_port = bpf_htons(dst->port);
	return 1;
}

SEC("cgroup/connect4")
int nm_connect4(struct bpf_sock_addr *ctx)
{
	return nm_capture4(ctx);
}

SEC("cgroup/connect6")
int nm_connect6(struct bpf_sock_addr *ctx)
{
	return nm_capture6(ctx);
}

/* Unconnected UDP sends (sendto with an address): counted, never changed. */
SEC("cgroup/sendmsg4")
int nm_sendmsg4(struct bpf_sock_addr *ctx)
{
	if (!nm_v4_is_loopback(ctx->user_ip4))
		nm_count_udp(ctx, 0, nm_user_port(ctx));
	return 1;
}

SEC("cgroup/sendmsg6")
int nm_sendmsg6(struct bpf_sock_addr *ctx)
{
	__u32 ip[4];

	ip[0] = ctx->user_ip6[0];
	ip[1] = ctx->user_ip6[1];
	ip[2] = ctx->user_ip6[2];
	ip[3] = ctx->user_ip6[3];
	if (!nm_v6_is_loopback(ip))
		nm_count_udp(ctx, nm_v6_is_v4_mapped(ip) ? 0 : 1, nm_user_port(ctx));
	return 1;
}

SEC("sockops")
int nm_sockops(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		nm_on_tcp_connect(skops);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		nm_on_active_established(skops);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		nm_on_state(skops);
		break;
	}
	return 1;
}

SEC("cgroup/getpeername4")
int nm_getpeername4(struct bpf_sock_addr *ctx)
{
	return nm_peer4(ctx);
}

SEC("cgroup/getpeername6")
int nm_getpeername6(struct bpf_sock_addr *ctx)
{
	return nm_peer6(ctx);
}
