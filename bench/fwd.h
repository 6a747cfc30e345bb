/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared by bench/fwd.bpf.c and bench/fwd_bench.c: the forwarding benchmark's maps. */
#ifndef BGS_FWD_BENCH_H
#define BGS_FWD_BENCH_H

#include <linux/types.h>

/* Largest frame the generator writes (a template holds this many bytes). */
#define FWD_FRAME_MAX 96
/* Established-flow templates the generator cycles through, plus one SYN template. */
#define FWD_MAX_FLOWS 1024
/* Backends the counter tells apart, by the last byte of the destination MAC (0..7). */
#define FWD_MAX_BE 8
/* Kinds of packet the counter counts: 0 a packet of an established flow, 1 a SYN. */
#define FWD_KINDS 2
/* Time bins of the counter: 10 ms each, 60 s in all. */
#define FWD_BIN_NS 10000000ULL
#define FWD_NBINS 6000
/* Offset of the 8-byte generation timestamp in the payload (after the L4 header). */
#define FWD_TS_LEN 8

/* One generator template: a complete frame with valid checksums and a zero timestamp. */
struct fwd_tpl {
	__u8 data[FWD_FRAME_MAX];
};

/* The run's configuration (fwd_cfg, one entry): the generator's frames, the counter's log. */
struct fwd_gen_cfg {
	__u32 len;	  /* frame length: 64 or 84 */
	__u32 n_est;	  /* established-flow templates 0..n_est-1; the SYN template is n_est */
	__u32 new_every;  /* every new_every-th frame is a new flow (a SYN); 0: none */
	__u32 ts_off;	  /* offset of the timestamp in the frame */
	__u32 l4_csum_off;/* offset of the TCP/UDP checksum */
	__u32 ip_csum_off;/* offset of the IPv4 header checksum; 0 for IPv6 */
	__u32 saddr_lo_off;/* offset of the low 16 bits of the source address */
	__u32 sport_off;  /* offset of the source port */
	__u32 udp;	  /* 1: a UDP checksum (0 is written as 0xffff) */
	__u32 log_syn;	  /* fwd_count: log every SYN to fwd_syn_log */
	__u64 bin_t0;	  /* fwd_count: 10 ms bins start here (CLOCK_MONOTONIC ns); 0: none */
};

/* The minimal program's one lookup: destination address, port, protocol. */
struct fwd_min_key {
	__u32 addr[4];
	__u16 port; /* network order */
	__u8 proto;
	__u8 family; /* 4 or 6 */
};

struct fwd_min_val {
	__u32 addr[4]; /* backend address */
	__u16 port;    /* backend port, network order */
	__u8 dmac[6];
	__u8 smac[6];
	__u16 slot;    /* fwd_tx slot of the egress interface */
};

/* Counters per CPU: packets per backend and kind, packets of an established flow that
 * reached another backend than its first one, SYN records the ring buffer had no room for. */
struct fwd_counts {
	__u64 pkts[FWD_MAX_BE][FWD_KINDS];
	__u64 misrouted;
	__u64 syn_log_lost;
};

/* One SYN as the backend saw it: when the generator made it, when it arrived, where. */
struct fwd_syn_rec {
	__u64 gen_ns;
	__u64 arr_ns;
	__u32 be;
	__u32 pad;
};

#endif /* BGS_FWD_BENCH_H */
