// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The forwarding benchmark's programs (bench/fwd_bench.c, bench/fwd.sh):
 *
 *   fwd_gen    the traffic generator: run by BPF_PROG_TEST_RUN in live-frames mode on the
 *              client's veth; writes each frame from a template (the frames are recycled
 *              pages another program may have rewritten), cycles through the established
 *              flows' templates, makes every new_every-th frame a SYN of a flow never seen
 *              before, stamps the payload with the generation time (checksums kept valid)
 *              and sends it with XDP_TX;
 *   fwd_count  on every backend's veth: counts what arrives per backend (the last byte of
 *              the destination MAC) and kind (SYN or not), per CPU, in 10 ms bins, notes
 *              every packet of a flow that reaches another backend than its first one, and
 *              (when asked) logs each SYN's generation and arrival time and backend to a
 *              ring buffer; then drops the packet;
 *   fwd_min    the ceiling: parse Ethernet/IPv4|IPv6/TCP|UDP, one hash lookup of the
 *              destination, rewrite the destination address and port (checksums updated),
 *              TTL - 1, MACs, XDP_REDIRECT through a devmap: the switch's egress path;
 *   fwd_null   the floor: every frame redirected to the first backend, untouched.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "fwd.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Generator templates: 0..n_est-1 established flows, n_est the SYN. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FWD_MAX_FLOWS + 1);
	__type(key, __u32);
	__type(value, struct fwd_tpl);
} fwd_tpl SEC(".maps");

/* Generator configuration (one entry). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fwd_gen_cfg);
} fwd_cfg SEC(".maps");

/* Counters per CPU (one entry). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fwd_counts);
} fwd_counts SEC(".maps");

/* Packets per (backend, kind, 10 ms bin since bin_t0), per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FWD_MAX_BE * FWD_KINDS * FWD_NBINS);
	__type(key, __u32);
	__type(value, __u64);
} fwd_bins SEC(".maps");

/* Established flow (client address low word, port, protocol) -> 1 + its first backend. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4 * FWD_MAX_FLOWS);
	__type(key, __u64);
	__type(value, __u32);
} fwd_flow_be SEC(".maps");

/* Every SYN that arrived, while log_syn is set. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} fwd_syn_log SEC(".maps");

/* The minimal program's services and egress interfaces. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct fwd_min_key);
	__type(value, struct fwd_min_val);
} fwd_min_svc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
} fwd_tx SEC(".maps");

/* Generator state (one CPU generates). */
__u64 gen_seq;
__u64 gen_new;

/* One's complement update of a checksum for one 16-bit word changing from old to new. */
static __always_inline void csum_upd(__u16 *csum, __u16 old, __u16 new)
{
	__u32 s = (__u16)~*csum;

	s += (__u16)~old;
	s += new;
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	*csum = (__u16)~s;
}

/* A 16-bit word at a configured offset, bounded so the verifier sees the access. */
#define WORD_AT(data, end, off)                                                          \
	({                                                                               \
		__u16 *__w = (void *)((__u8 *)(data) + ((off) & 0x7f));                  \
		if ((void *)(__w + 1) > (end))                                           \
			return XDP_ABORTED;                                              \
		__w;                                                                     \
	})

SEC("xdp")
int fwd_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct fwd_gen_cfg *cfg;
	struct fwd_tpl *t;
	__u16 *l4c, *ipc = NULL, *w, v;
	__u32 zero = 0, idx, i;
	__u64 seq = gen_seq++, ts;
	bool syn = false;

	cfg = bpf_map_lookup_elem(&fwd_cfg, &zero);
	if (!cfg || !cfg->n_est)
		return XDP_ABORTED;
	if (cfg->new_every && seq % cfg->new_every == 0) {
		idx = cfg->n_est;
		syn = true;
	} else {
		idx = seq % cfg->n_est;
	}
	t = bpf_map_lookup_elem(&fwd_tpl, &idx);
	if (!t)
		return XDP_ABORTED;
	if (cfg->len == 64) {
		if (data + 64 > end)
			return XDP_ABORTED;
		__builtin_memcpy(data, t->data, 64);
	} else {
		if (data + 84 > end)
			return XDP_ABORTED;
		__builtin_memcpy(data, t->data, 84);
	}
	l4c = WORD_AT(data, end, cfg->l4_csum_off);
	if (cfg->ip_csum_off)
		ipc = WORD_AT(data, end, cfg->ip_csum_off);
	ts = bpf_ktime_get_ns();
	for (i = 0; i < FWD_TS_LEN / 2; i++) {
		w = WORD_AT(data, end, cfg->ts_off + 2 * i);
		v = (__u16)(ts >> (16 * i));
		csum_upd(l4c, *w, v);
		*w = v;
	}
	if (syn) {
		__u64 id = gen_new++;

		w = WORD_AT(data, end, cfg->sport_off);
		v = bpf_htons(1024 + id % 64000);
		csum_upd(l4c, *w, v);
		*w = v;
		w = WORD_AT(data, end, cfg->saddr_lo_off);
		/* 0x8000 and up: never the client address of an established flow */
		v = bpf_htons(0x8000 | (id / 64000));
		csum_upd(l4c, *w, v);
		if (ipc)
			csum_upd(ipc, *w, v);
		*w = v;
	}
	if (cfg->udp && !*l4c)
		*l4c = 0xffff;
	return XDP_TX;
}

SEC("xdp")
int fwd_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct fwd_gen_cfg *cfg;
	struct fwd_counts *c;
	__u32 zero = 0, be, kind = 0, l4len, *fb, bin_idx;
	__u64 now = bpf_ktime_get_ns(), flow, ts = 0, *bin;
	__u8 proto, *l4;

	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	be = eth->h_dest[5] & (FWD_MAX_BE - 1);
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end)
			return XDP_DROP;
		proto = ip->protocol;
		l4 = (__u8 *)ip + ip->ihl * 4;
		flow = ip->saddr;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end)
			return XDP_DROP;
		proto = ip6->nexthdr;
		l4 = (__u8 *)(ip6 + 1);
		flow = ip6->saddr.in6_u.u6_addr32[3];
	} else {
		return XDP_DROP;
	}
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = (void *)l4;

		if ((void *)(th + 1) > end)
			return XDP_DROP;
		kind = th->syn && !th->ack;
		l4len = th->doff * 4;
		flow |= (__u64)th->source << 32;
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *uh = (void *)l4;

		if ((void *)(uh + 1) > end)
			return XDP_DROP;
		l4len = sizeof(*uh);
		flow |= (__u64)uh->source << 32;
	} else {
		return XDP_DROP;
	}
	flow |= (__u64)proto << 48;
	l4 += l4len & 0x3f;
	if ((void *)(l4 + FWD_TS_LEN) <= end)
		__builtin_memcpy(&ts, l4, FWD_TS_LEN);

	c = bpf_map_lookup_elem(&fwd_counts, &zero);
	cfg = bpf_map_lookup_elem(&fwd_cfg, &zero);
	if (!c || !cfg)
		return XDP_DROP;
	c->pkts[be][kind]++;
	if (cfg->bin_t0 && now >= cfg->bin_t0 && now - cfg->bin_t0 < FWD_NBINS * FWD_BIN_NS) {
		bin_idx = (be * FWD_KINDS + kind) * FWD_NBINS + (now - cfg->bin_t0) / FWD_BIN_NS;
		bin = bpf_map_lookup_elem(&fwd_bins, &bin_idx);
		if (bin)
			(*bin)++;
	}
	if (kind) {
		struct fwd_syn_rec *r;

		if (!cfg->log_syn)
			return XDP_DROP;
		r = bpf_ringbuf_reserve(&fwd_syn_log, sizeof(*r), 0);
		if (!r) {
			c->syn_log_lost++;
			return XDP_DROP;
		}
		r->gen_ns = ts;
		r->arr_ns = now;
		r->be = be;
		r->pad = 0;
		bpf_ringbuf_submit(r, 0);
		return XDP_DROP;
	}
	fb = bpf_map_lookup_elem(&fwd_flow_be, &flow);
	if (!fb) {
		__u32 v = be + 1;

		bpf_map_update_elem(&fwd_flow_be, &flow, &v, BPF_NOEXIST);
	} else if (*fb != be + 1) {
		c->misrouted++;
	}
	return XDP_DROP;
}

SEC("xdp")
int fwd_min(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct fwd_min_key k = {};
	struct fwd_min_val *v;
	struct ipv6hdr *ip6 = NULL;
	struct iphdr *ip = NULL;
	__u16 *l4c, *port, *old;
	__u8 *l4;
	int i;

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->ihl != 5 || ip->ttl <= 1)
			return XDP_PASS;
		k.family = 4;
		k.addr[0] = ip->daddr;
		k.proto = ip->protocol;
		l4 = (__u8 *)(ip + 1);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end || ip6->hop_limit <= 1)
			return XDP_PASS;
		k.family = 6;
		__builtin_memcpy(k.addr, &ip6->daddr, 16);
		k.proto = ip6->nexthdr;
		l4 = (__u8 *)(ip6 + 1);
	} else {
		return XDP_PASS;
	}
	if (k.proto == IPPROTO_TCP) {
		struct tcphdr *th = (void *)l4;

		if ((void *)(th + 1) > end)
			return XDP_PASS;
		l4c = &th->check;
		port = &th->dest;
	} else if (k.proto == IPPROTO_UDP) {
		struct udphdr *uh = (void *)l4;

		if ((void *)(uh + 1) > end || !uh->check)
			return XDP_PASS;
		l4c = &uh->check;
		port = &uh->dest;
	} else {
		return XDP_PASS;
	}
	k.port = *port;
	v = bpf_map_lookup_elem(&fwd_min_svc, &k);
	if (!v)
		return XDP_PASS;

	csum_upd(l4c, *port, v->port);
	*port = v->port;
	if (ip) {
		__u16 *o = (__u16 *)&ip->daddr, *n = (__u16 *)&v->addr[0];
		__u16 ttl_old = *(__u16 *)&ip->ttl;

		for (i = 0; i < 2; i++) {
			csum_upd(l4c, o[i], n[i]);
			csum_upd(&ip->check, o[i], n[i]);
		}
		ip->daddr = v->addr[0];
		ip->ttl--;
		csum_upd(&ip->check, ttl_old, *(__u16 *)&ip->ttl);
	} else if (ip6) {
		__u16 *n = (__u16 *)v->addr;

		old = (__u16 *)&ip6->daddr;
		for (i = 0; i < 8; i++)
			csum_upd(l4c, old[i], n[i]);
		__builtin_memcpy(&ip6->daddr, v->addr, 16);
		ip6->hop_limit--;
	}
	__builtin_memcpy(eth->h_dest, v->dmac, 6);
	__builtin_memcpy(eth->h_source, v->smac, 6);
	return bpf_redirect_map(&fwd_tx, v->slot, 0);
}

/* The harness's floor: every frame straight to fwd_tx slot 0 (b1), untouched. What it
 * costs the LB's thread is what every case pays besides the LB's own decision: the veth's
 * receive, the redirect and transmit, the backend's receive and count. */
SEC("xdp")
int fwd_null(struct xdp_md *ctx)
{
	return bpf_redirect_map(&fwd_tx, 0, 0);
}
