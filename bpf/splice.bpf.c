// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Same-node splice. Once the daemon has decided a connection between two pods of this node
 * (policy checked, app connected), it hands the kernel its two sockets (the client's
 * redirected socket and its own connection into the destination pod) and never touches the
 * bytes again: every skb arriving on one is sent out of the other by this stream verdict
 * program (BPF_SK_SKB_VERDICT, no strparser).
 *
 * Three maps, all keyed by socket cookie (SO_COOKIE), written by daemon/redirection/splice.ts:
 *   nm_splice_tx    sockets that may be redirected to (no program attached);
 *   nm_splice_rx    sockets whose incoming data is redirected (the verdict program is
 *                   attached to this map);
 *   nm_splice_peer  cookie -> the cookie of its peer.
 * The daemon fills them in that order (both sockets into tx, both peers, then rx), so when
 * the program first runs on a socket its peer is already a valid target: no byte is ever
 * passed to a socket's own receive queue or dropped for want of a peer while a pair is
 * being set up. A closing socket leaves both sockhashes by itself (the kernel unlinks it);
 * the daemon deletes the peer entries.
 *
 * Known limit (why daemon/redirection/splice.ts leaves this off unless asked): there is no
 * flow control. The kernel takes each skb off the socket's receive queue (tcp_read_skb), so
 * its window never closes, and queues it for the peer's psock backlog, uncharged and without
 * bound; if the peer app reads slowly, the sender is not held back. Measured here: 256 MiB
 * taken off a client socket while 4 MiB reached a server that did not read. Passing skbs
 * (SK_PASS) past a threshold does not fix it: what fails to charge goes to the psock's own
 * backlog and can be read after newer bytes of the receive queue (reordering, seen here).
 */
#include "vmlinux.h"
#include "nodemesh_bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define NM_SPLICE_MAX 65536

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, NM_SPLICE_MAX);
	__type(key, __u64);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_splice_tx SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, NM_SPLICE_MAX);
	__type(key, __u64);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_splice_rx SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NM_SPLICE_MAX);
	__type(key, __u64);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_splice_peer SEC(".maps");

/* Redirect to the peer's egress (flags 0). Without a peer entry the skb stays with its own
 * socket (SK_PASS); with one whose socket has gone, bpf_sk_redirect_hash drops it, as a
 * relay writing to a closed socket would. */
/* "sk_skb": libbpf 1.1 has no "sk_skb/verdict" section; attached as BPF_SK_SKB_VERDICT. */
SEC("sk_skb")
int nm_splice_verdict(struct __sk_buff *skb)
{
	/* A bare FIN comes here as an empty skb (tcp_read_skb hands over every skb). Redirected,
	 * the peer's psock backlog would send 0 bytes, take that for a broken pipe (EPIPE on the
	 * peer) and stop sending to it. The FIN itself is already recorded on the socket
	 * (RCV_SHUTDOWN): the daemon sees the EOF and passes it on. */
	if (skb->len == 0)
		return SK_DROP;
	__u64 cookie = bpf_get_socket_cookie(skb);
	__u64 *peer = bpf_map_lookup_elem(&nm_splice_peer, &cookie);
	if (!peer)
		return SK_PASS;
	__u64 key = *peer;
	return bpf_sk_redirect_hash(skb, &nm_splice_tx, &key, 0);
}
