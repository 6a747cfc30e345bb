/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared by bench/xdp_bench.bpf.c and bench/xdp_bench.c: the wrapper's per-case settings. */
#ifndef BGS_XDP_BENCH_H
#define BGS_XDP_BENCH_H

#include <linux/types.h>

/* Bytes of the frame the wrapper restores: Ethernet + IPv4 + TCP header (frames >= this). */
#define BENCH_HDR_LEN 54

/* Set by user space (through the mmapped .bss) before each case. */
struct bench_cfg {
	__u32 len;	   /* frame length every run must see */
	__u32 vary;	   /* 1: distinct source address/port every run */
	__u32 tcp;	   /* the frame is TCP: varying keeps its checksum right */
	__u32 seq;	   /* next variation; runs continue it across rounds */
	__u8 hdr[BENCH_HDR_LEN];
};

#endif /* BGS_XDP_BENCH_H */
