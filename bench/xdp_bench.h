/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared by bench/xdp_bench.bpf.c and bench/xdp_bench.c: the wrapper's per-case settings. */
#ifndef BGS_XDP_BENCH_H
#define BGS_XDP_BENCH_H

#include <linux/types.h>

/* Bytes of the frame the wrapper restores: Ethernet + IPv4 + TCP header (frames >= this). */
#define BENCH_HDR_LEN 54
/* Flows a known-flow case cycles through (a power of two). */
#define BENCH_NR_FLOWS 256

/* What the wrapper does to the restored frame before each run. */
enum bench_mode {
	BENCH_SAME = 0,	  /* nothing: every run sees the template */
	BENCH_NEW = 1,	  /* a source address and port never seen before */
	BENCH_ROTATE = 2, /* the port at port_off cycles through ports[] */
};

/* Set by user space (through the mmapped .bss) before each case. */
struct bench_cfg {
	__u32 len;	/* frame length every run must see */
	__u32 mode;	/* enum bench_mode */
	__u32 l4;	/* IPPROTO_TCP or IPPROTO_UDP: whose checksum follows the changes */
	__u32 port_off; /* BENCH_ROTATE: offset of the port that cycles (source or destination) */
	__u32 seq;	/* runs so far; continues across rounds */
	__u32 pad;
	__u8 hdr[BENCH_HDR_LEN + 2];
	__u16 ports[BENCH_NR_FLOWS]; /* BENCH_ROTATE: network order */
};

#endif /* BGS_XDP_BENCH_H */
