/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Helpers shared by the nodemesh eBPF objects (BPF side only; include after vmlinux.h). */
#ifndef NODEMESH_BPF_H
#define NODEMESH_BPF_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "nodemesh.h"

/* Macros that vmlinux.h cannot carry. */
#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#ifndef SOCK_STREAM
#define SOCK_STREAM 1
#endif

#define NM_INLINE static __always_inline

/* 127.0.0.0/8, with addr in network byte order. */
NM_INLINE bool nm_v4_is_loopback(__u32 addr_be)
{
	return (bpf_ntohl(addr_be) >> 24) == 127;
}

/* ::ffff:a.b.c.d */
NM_INLINE bool nm_v6_is_v4_mapped(const __u32 a[4])
{
	return a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0x0000ffff);
}

/* ::1, or a v4-mapped loopback address. */
NM_INLINE bool nm_v6_is_loopback(const __u32 a[4])
{
	if (a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == bpf_htonl(1))
		return true;
	return nm_v6_is_v4_mapped(a) && nm_v4_is_loopback(a[3]);
}

NM_INLINE void nm_addr_set_v4(__u8 dst[16], __u32 addr_be)
{
	__u32 *d = (__u32 *)dst;

	d[0] = addr_be;
	d[1] = 0;
	d[2] = 0;
	d[3] = 0;
}

NM_INLINE void nm_addr_set_v6(__u8 dst[16], const __u32 a[4])
{
	__u32 *d = (__u32 *)dst;

	d[0] = a[0];
	d[1] = a[1];
	d[2] = a[2];
	d[3] = a[3];
}

#endif /* NODEMESH_BPF_H */
