// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Inbound plaintext steering. An sk_lookup program attached (bpf_link) to each enrolled
 * pod's network namespace: a TCP connection to one of the pod's IPs that did not come from
 * loopback and is not for a mesh port lands on the daemon's inbound plaintext listener
 * (15006) inside that namespace, whatever port the app listens on. If the listener is gone
 * (daemon down) the SYN is dropped: plaintext never reaches the app behind the mesh's back.
 * Shared structs: nodemesh.h.
 *
 * What is not steered, and why nobody outside the pod can use it:
 *   - loopback sources: the kernel drops packets from 127/8 or ::1 arriving on a real
 *     interface (martian source), so only the pod's own processes (talking to themselves)
 *     and the daemon (connecting to the app from 127.0.0.6 / ::1) have them;
 *   - sources in nm_probe_src, the node's own IPv4 addresses (kubelet probes, as Istio
 *     ambient's probe exemption): a node drops an IPv4 packet arriving from a pod or a peer
 *     with one of its own addresses as source (fib_validate_source, accept_local=0), so only
 *     processes of the node itself (kubelet, host-network pods) send from them. IPv6 has no
 *     such check, so the daemon puts no IPv6 address here by default;
 *   - the HBONE port (mutual TLS, the daemon's own listener) and ports the pod excluded
 *     by annotation (nm_in_excl); no other port, so an app listening on 15020 or 15001 of
 *     its pod IP still gets its plaintext through the daemon;
 *   - UDP: not captured (documented in capture.bpf.c).
 */
#include "vmlinux.h"
#include "nodemesh_bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define NM_SKIP_PORTS 8

/* Destination ports the daemon itself listens on at the pod IP (HBONE); 0 = unused slot.
 * Set by ebpf-datapath.ts before load. */
const volatile __u16 nm_skip_ports[NM_SKIP_PORTS] = { 15008, 0, 0, 0, 0, 0, 0, 0 };

/* Source addresses whose plaintext reaches an enrolled pod's app directly: the node's own
 * addresses (kubelet probes). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct nm_ip_key);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_probe_src SEC(".maps");

/* IPs of enrolled pods on this node -> owner. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct nm_ip_key);
	__type(value, struct nm_pod_ip_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_pod_ips SEC(".maps");

/* Pod IP -> the daemon's inbound plaintext listener in that pod's namespace. The kernel
 * drops an entry when its socket closes, which is what makes a dead daemon fail closed. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 8192);
	__type(key, struct nm_ip_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_in_listen SEC(".maps");

/* (pod IP, port) the pod asked us not to steer. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct nm_ip_port_key);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_in_excl SEC(".maps");

NM_INLINE bool nm_is_mesh_port(__u16 port)
{
	int i;

#pragma unroll
	for (i = 0; i < NM_SKIP_PORTS; i++) {
		if (nm_skip_ports[i] != 0 && nm_skip_ports[i] == port)
			return true;
	}
	return false;
}

/* Fills the pod IP key from the destination; false when the source is loopback (the
 * daemon's own connections to the app come from 127.0.0.6), a probe source, or the family
 * is unknown.
 * Every context field is read once, up front, with a constant offset: clang would
 * otherwise merge the v4 and v6 reads into one load through a computed ctx pointer,
 * which the verifier rejects. */
NM_INLINE bool nm_dst_key(struct bpf_sk_lookup *ctx, struct nm_ip_key *k)
{
	__u32 family = ctx->family;
	__u32 remote4 = ctx->remote_ip4;
	__u32 local4 = ctx->local_ip4;
	__u32 remote6[4], local6[4];

	remote6[0] = ctx->remote_ip6[0];
	remote6[1] = ctx->remote_ip6[1];
	remote6[2] = ctx->remote_ip6[2];
	remote6[3] = ctx->remote_ip6[3];
	local6[0] = ctx->local_ip6[0];
	local6[1] = ctx->local_ip6[1];
	local6[2] = ctx->local_ip6[2];
	local6[3] = ctx->local_ip6[3];

	struct nm_ip_key src = {};

	if (family == AF_INET) {
		if (nm_v4_is_loopback(remote4))
			return false;
		nm_addr_set_v4(src.addr, remote4);
		src.family = NM_FAMILY_V4;
		if (bpf_map_lookup_elem(&nm_probe_src, &src))
			return false;
		nm_addr_set_v4(k->addr, local4);
		k->family = NM_FAMILY_V4;
		return true;
	}
	if (family == AF_INET6) {
		if (nm_v6_is_loopback(remote6))
			return false;
		nm_addr_set_v6(src.addr, remote6);
		src.family = NM_FAMILY_V6;
		if (bpf_map_lookup_elem(&nm_probe_src, &src))
			return false;
		nm_addr_set_v6(k->addr, local6);
		k->family = NM_FAMILY_V6;
		return true;
	}
	return false;
}

NM_INLINE int nm_steer(struct bpf_sk_lookup *ctx)
{
	struct nm_ip_port_key excl = {};
	struct nm_ip_key k = {};
	struct bpf_sock *sk;
	__u16 port;
	long err;

	if (ctx->protocol != IPPROTO_TCP)
		return SK_PASS;
	port = (__u16)ctx->local_port; /* host byte order */
	if (nm_is_mesh_port(port) || !nm_dst_key(ctx, &k))
		return SK_PASS;
	if (!bpf_map_lookup_elem(&nm_pod_ips, &k))
		return SK_PASS; /* not a pod IP we steer (e.g. another address in the netns) */
	__builtin_memcpy(excl.addr, k.addr, sizeof(excl.addr));
	excl.family = k.family;
	excl.port = port;
	if (bpf_map_lookup_elem(&nm_in_excl, &excl))
		return SK_PASS;
	sk = bpf_map_lookup_elem(&nm_in_listen, &k);
	if (!sk)
		return SK_DROP; /* enrolled but no listener: the daemon is down, fail closed */
	/* Exactly the daemon's listener in the map, not its SO_REUSEPORT group: a process in
	 * the pod that joins the group (same address, same uid) gets none of this traffic. */
	err = bpf_sk_assign(ctx, sk, BPF_SK_LOOKUP_F_NO_REUSEPORT);
	bpf_sk_release(sk);
	return err ? SK_DROP : SK_PASS;
}

SEC("sk_lookup")
int nm_sk_lookup(struct bpf_sk_lookup *ctx)
{
	return nm_steer(ctx);
}
