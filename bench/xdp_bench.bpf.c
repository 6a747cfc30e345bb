// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Benchmark programs run with BPF_PROG_TEST_RUN by bench/xdp_bench.c.
 *
 * bench_wrap is the program that is timed. Before every run it restores the packet's headers
 * from a template (with repeat > 1 the kernel runs the program again on its own output); for
 * new-flow cases it gives every run a distinct source address and port, for known flows it
 * cycles the client port through a set of tracked flows (checksums kept valid); then it
 * tail-calls whatever bench_target[0] holds: the switch, or one of the
 * baselines below. Switch and baselines thus carry exactly the same wrapper cost, which
 * bl_tx alone measures.
 *
 * The baselines:
 *   bl_min        parse Ethernet/IPv4/TCP|UDP, one hash lookup of the 5-tuple, MAC rewrite,
 *                 XDP_TX;
 *   bl_min_insert the same with a conntrack-like LRU (key and value of the switch's, same
 *                 size, full): lookup (a miss for a new flow), one insert, MAC rewrite,
 *                 XDP_TX; _nc with BPF_F_NO_COMMON_LRU, _pc with one LRU per CPU (an
 *                 array of maps, Katran's layout), the same total size;
 *   bl_two        the floor of the switch's design for a known flow: parse, a service
 *                 lookup (the switch's VIP key, same map kind) and a conntrack lookup (the
 *                 LRU above), MAC rewrite, XDP_TX;
 *   bl_tx         XDP_TX: the wrapper's own cost.
 * Each counts the runs that took its intended path, so the harness proves every timed run
 * took it (the switch is checked through its own counters).
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "bgswitch.h"
#include "xdp_bench.h"
/* Offsets in the frame (IPv4 without options). */
#define OFF_IP_CSUM (14 + 10)
#define OFF_SADDR_LO (14 + 12 + 2)
#define OFF_SPORT (14 + 20)
#define OFF_DPORT (14 + 20 + 2)
#define OFF_TCP_CSUM (14 + 20 + 16)
#define OFF_UDP_CSUM (14 + 20 + 6)

struct bench_cfg cfg;
/* Runs that did not reach their target (bad length or a failed tail call). */
__u64 wrap_bad;
/* Per-baseline path counters. */
__u64 bl_min_hits;
__u64 bl_min_miss;
__u64 bl_ins_ok;
__u64 bl_ins_fail;
__u64 bl_tx_runs;
__u64 bl_two_hits;
__u64 bl_two_miss;
/* MACs the insert baseline writes (stands for a backend record read). */
__u8 bl_dmac[6];
__u8 bl_smac[6];

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_target SEC(".maps");

struct bl_mac {
	__u8 dmac[6];
	__u8 smac[6];
};

/* 5-tuple -> MACs, for bl_min. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct bgs_flow_key);
	__type(value, struct bl_mac);
} bl_flows SEC(".maps");

/* Conntrack stand-in for bl_min_insert; user space sets its size to the switch's. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BGS_DEF_CT_ENTRIES);
	__type(key, struct bgs_flow_key);
	__type(value, struct bgs_flow);
} bl_lru SEC(".maps");

/* The same with an LRU list per CPU (BPF_F_NO_COMMON_LRU), for bl_min_insert_nc. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BGS_DEF_CT_ENTRIES);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct bgs_flow_key);
	__type(value, struct bgs_flow);
} bl_lru_nc SEC(".maps");

/* One LRU per CPU (Katran): an array of maps indexed by CPU, each 1/ncpus of the size;
 * user space creates the inner maps. For bl_min_insert_pc. */
struct bl_lru_inner {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1);
	__type(key, struct bgs_flow_key);
	__type(value, struct bgs_flow);
} bl_lru_inner SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct bl_lru_inner);
} bl_lru_pc SEC(".maps");

/* Services, as bgs_vips holds them, for bl_two. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 128);
	__type(key, struct bgs_vip_key);
	__type(value, struct bgs_vip_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} bl_vips SEC(".maps");

static __always_inline __u16 csum_replace16(__u16 csum, __u16 old, __u16 new)
{
	__u32 s = (__u16)~csum + (__u32)(__u16)~old + new;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

SEC("xdp")
int bench_wrap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 *d = data;
	__u64 *s = (__u64 *)cfg.hdr;

	if (data + BENCH_HDR_LEN > data_end || data_end - data != cfg.len)
		goto bad;

	/* 54 bytes: six words, then 4 and 2 bytes. */
	d[0] = s[0];
	d[1] = s[1];
	d[2] = s[2];
	d[3] = s[3];
	d[4] = s[4];
	d[5] = s[5];
	*(__u32 *)(data + 48) = *(__u32 *)(cfg.hdr + 48);
	*(__u16 *)(data + 52) = *(__u16 *)(cfg.hdr + 52);

	if (cfg.mode != BENCH_SAME) {
		__u32 seq = cfg.seq++;
		__u16 *lo = data + OFF_SADDR_LO, *ipc = data + OFF_IP_CSUM, *pp, *l4c, nlo, np;
		bool udp = cfg.l4 == IPPROTO_UDP;

		if (cfg.mode == BENCH_NEW) {
			pp = data + OFF_SPORT;
			nlo = bpf_htons((__u16)(seq >> 15));
			np = bpf_htons(0x8000 | (seq & 0x7fff));
		} else {
			pp = cfg.port_off == OFF_DPORT ? data + OFF_DPORT : data + OFF_SPORT;
			nlo = *lo;
			np = cfg.ports[seq & (BENCH_NR_FLOWS - 1)];
		}
		l4c = udp ? data + OFF_UDP_CSUM : data + OFF_TCP_CSUM;
		if (nlo != *lo) {
			*ipc = csum_replace16(*ipc, *lo, nlo);
			if (!udp || *l4c)
				*l4c = csum_replace16(*l4c, *lo, nlo) ?: (udp ? 0xffff : 0);
			*lo = nlo;
		}
		if (!udp || *l4c)
			*l4c = csum_replace16(*l4c, *pp, np) ?: (udp ? 0xffff : 0);
		*pp = np;
	}

	bpf_tail_call(ctx, &bench_target, 0);
bad:
	wrap_bad++;
	return XDP_ABORTED;
}

/* Parses Ethernet/IPv4 (no options)/TCP|UDP into the flow key; NULL if not that. */
static __always_inline struct ethhdr *parse(struct xdp_md *ctx, struct bgs_flow_key *k)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	__u16 *ports;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return NULL;
	if (ip->ihl != 5 || (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP))
		return NULL;
	ports = (void *)(ip + 1);
	if (ip->protocol == IPPROTO_TCP) {
		if ((void *)ports + sizeof(struct tcphdr) > data_end)
			return NULL;
	} else if ((void *)ports + sizeof(struct udphdr) > data_end) {
		return NULL;
	}
	k->src[0] = ip->saddr;
	k->dst[0] = ip->daddr;
	k->sport = ports[0];
	k->dport = ports[1];
	k->proto = ip->protocol;
	k->family = BGS_AF_INET;
	return eth;
}

SEC("xdp")
int bl_min(struct xdp_md *ctx)
{
	struct bgs_flow_key k = {};
	struct ethhdr *eth;
	struct bl_mac *m;

	eth = parse(ctx, &k);
	if (!eth)
		return XDP_PASS;
	m = bpf_map_lookup_elem(&bl_flows, &k);
	if (!m) {
		bl_min_miss++;
		return XDP_PASS;
	}
	__builtin_memcpy(eth->h_dest, m->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, m->smac, ETH_ALEN);
	bl_min_hits++;
	return XDP_TX;
}

/* Lookup (a miss), insert, MAC rewrite, XDP_TX: the floor of a new flow with map lru. */
static __always_inline int min_insert(struct xdp_md *ctx, void *lru)
{
	struct bgs_flow_key k = {};
	struct bgs_flow f = {};
	struct ethhdr *eth;

	eth = parse(ctx, &k);
	if (!eth || !lru)
		return XDP_PASS;
	if (bpf_map_lookup_elem(lru, &k)) {
		bl_ins_fail++;
		return XDP_PASS;
	}
	f.backend_id = 1;
	f.incarnation = 1;
	f.color = BGS_BLUE;
	f.tcp_state = BGS_TCP_SYN;
	if (bpf_map_update_elem(lru, &k, &f, BPF_ANY)) {
		bl_ins_fail++;
		return XDP_PASS;
	}
	__builtin_memcpy(eth->h_dest, bl_dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, bl_smac, ETH_ALEN);
	bl_ins_ok++;
	return XDP_TX;
}

SEC("xdp")
int bl_min_insert(struct xdp_md *ctx)
{
	return min_insert(ctx, &bl_lru);
}

SEC("xdp")
int bl_min_insert_nc(struct xdp_md *ctx)
{
	return min_insert(ctx, &bl_lru_nc);
}

SEC("xdp")
int bl_min_insert_pc(struct xdp_md *ctx)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return min_insert(ctx, bpf_map_lookup_elem(&bl_lru_pc, &cpu));
}

SEC("xdp")
int bl_two(struct xdp_md *ctx)
{
	struct bgs_flow_key k = {};
	struct bgs_vip_key vk = {};
	struct ethhdr *eth;

	eth = parse(ctx, &k);
	if (!eth)
		return XDP_PASS;
	vk.addr[0] = k.dst[0];
	vk.port = k.dport;
	vk.proto = k.proto;
	vk.family = k.family;
	if (!bpf_map_lookup_elem(&bl_vips, &vk) || !bpf_map_lookup_elem(&bl_lru, &k)) {
		bl_two_miss++;
		return XDP_PASS;
	}
	__builtin_memcpy(eth->h_dest, bl_dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, bl_smac, ETH_ALEN);
	bl_two_hits++;
	return XDP_TX;
}

SEC("xdp")
int bl_tx(struct xdp_md *ctx)
{
	bl_tx_runs++;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
