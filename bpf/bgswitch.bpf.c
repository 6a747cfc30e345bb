// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bgswitch: the switch. Sends each flow of a service to a backend of its blue or green
 * pool, as one 64-bit flip word per service says. Every decision of a packet is taken from
 * one read of that word. Known flows keep their backend (conntrack) whatever the word says,
 * until they end, their backend goes down, or their drain deadline passes.
 *
 * Hot path of a known flow: parse, port filter, conntrack lookup (the one hash lookup),
 * service record (checked against the packet), flip word, backend record, rewrite,
 * forward. New flows add the VIP lookup, the color choice, the Maglev table and an insert
 * (and, during a drain, a fresh-flow mark: include/bgswitch.h, bgs_fresh).
 * docs/datapath.md is the reference for every decision and verdict.
 */
#include "parse.h"
#include "maps.h"
#include "switch_maps.h"
#include "bgswitch_hash.h"
#include "bgswitch_flow.h"

/* Jiffies per second; libbpf fills it from the kernel config. */
extern unsigned int CONFIG_HZ __kconfig;

#define READ_ONCE_U64(x) (*(volatile __u64 *)&(x))

/* Everything the routing of one packet decides, from one read of the flip word. */
struct route {
	struct bgs_flip_view v; /* the flip word as read, its drain fields, the live color */
	__u64 now;	 /* jiffies */
	__u32 svc_id;
	__u32 color;	 /* color chosen for this packet */
	__u32 backend_id;
	__u8 is_new;	 /* counts as a new flow */
};

static __always_inline int count(struct pkt *p, __u32 reason, int action)
{
	struct bgs_reason_counter *rc;
	__u32 more = reason - BGS_R_BASE_ENTRIES;

	/* reason is a constant at nearly every call: one of the two lookups is compiled */
	if (reason < BGS_R_BASE_ENTRIES)
		rc = bpf_map_lookup_elem(&bgs_reasons, &reason);
	else
		rc = bpf_map_lookup_elem(&bgs_reasons_more, &more);

	if (rc) {
		rc->packets++;
		rc->bytes += p->len;
	}
	return action;
}

static __always_inline void count_flow(struct pkt *p, struct route *r)
{
	struct bgs_counter *c;
	__u32 idx = r->svc_id * BGS_NR_COLORS + r->color;

	/* new_flows is written only for a new flow: a known flow's packet (the hot path)
	 * does not load and store it back unchanged */
	c = bpf_map_lookup_elem(&bgs_svc_stats, &idx);
	if (c) {
		c->packets++;
		c->bytes += p->len;
		if (r->is_new)
			c->new_flows++;
	}
	c = bpf_map_lookup_elem(&bgs_be_stats, &r->backend_id);
	if (c) {
		c->packets++;
		c->bytes += p->len;
		if (r->is_new)
			c->new_flows++;
	}
}

/* A backend's RST on the reply path of its tracked flow f: counted for the backend and its
 * service's color (a release whose servers reset connections shows there). */
static __always_inline void count_reset(const struct bgs_flow *f)
{
	struct bgs_counter *c;
	__u32 idx = f->svc_id * BGS_NR_COLORS + f->color;

	c = bpf_map_lookup_elem(&bgs_svc_stats, &idx);
	if (c)
		c->resets++;
	c = bpf_map_lookup_elem(&bgs_be_stats, &f->backend_id);
	if (c)
		c->resets++;
}

/* Backend id for hash h from a color's live table slot, 0 if that pool is empty. */
static __always_inline __u32 table_pick(struct route *r, __u32 color, __u32 h)
{
	__u32 m = cfg_maglev_size, key, *id;

	/* ids come from our own maps; the bound keeps the index arithmetic in its table */
	if (!m || r->svc_id >= cfg_max_services)
		return 0;
	key = (__u32)bgs_maglev_index(r->svc_id, color, bgs_fw_slot(r->v.word, color), m, h % m);
	id = bpf_map_lookup_elem(&bgs_maglev, &key);
	return id ? *id : 0;
}

/* Picks a backend of r->color, or of the other color when that pool is empty; h is the
 * flow's Maglev hash. */
static __always_inline __u32 pick_backend(struct route *r, __u32 h)
{
	__u32 id;

	id = table_pick(r, r->color, h);
	if (!id) {
		r->color ^= 1;
		id = table_pick(r, r->color, h);
	}
	r->backend_id = id;
	return id;
}

/* The fresh-flow marks line of a flow with Maglev hash h (bgs_fresh, include/bgswitch.h). */
static __always_inline struct bgs_fresh_line *fresh_line(__u32 h)
{
	__u32 line = h & cfg_fresh_mask;

	return bpf_map_lookup_elem(&bgs_fresh, &line);
}

/* Marks p's flow as started during the current drain of r's service (a SYN routed as new):
 * its stamp replaces the oldest mark of its line, unless it is there already (a SYN sent
 * again). Concurrent writers may both pick one mark: one of the two flows loses its mark. */
static __always_inline void fresh_mark(struct route *r, struct pkt *p, __u32 h)
{
	__u32 stamp = bgs_fresh_stamp(&p->key, r->svc_id, r->v.drain_gen), now = (__u32)r->now;
	struct bgs_fresh_line *l = fresh_line(h);
	__u32 i, oldest = 0, age, max_age = 0;

	if (!l)
		return;
#pragma unroll
	for (i = 0; i < BGS_FRESH_WAYS; i++) {
		if (l->mark[i].stamp == stamp)
			return;
		age = l->mark[i].stamp ? now - l->mark[i].at : ~0u;
		if (i == 0 || age > max_age) {
			max_age = age;
			oldest = i;
		}
	}
	l->mark[oldest & (BGS_FRESH_WAYS - 1)].stamp = stamp;
	l->mark[oldest & (BGS_FRESH_WAYS - 1)].at = now;
}

/* Whether flow key (Maglev hash h) was marked by its SYN during the current drain. */
static __always_inline bool fresh_marked(struct route *r, const struct bgs_flow_key *key, __u32 h)
{
	__u32 stamp = bgs_fresh_stamp(key, r->svc_id, r->v.drain_gen), i;
	struct bgs_fresh_line *l = fresh_line(h);

	if (!l)
		return false;
#pragma unroll
	for (i = 0; i < BGS_FRESH_WAYS; i++)
		if (l->mark[i].stamp == stamp)
			return true;
	return false;
}

/*
 * Color of a flow without a usable entry: preview port or prefix -> idle; canary draw ->
 * idle; else, for a mid-flow packet while a drain runs, the drained color (where such a flow
 * most likely started) unless its SYN marked it fresh in this drain (it started live: its
 * entry was evicted or never inserted); else live. Preview and canary come first: both are
 * deterministic, so a flow keeps its color when its entry is missing (eviction, restart,
 * ECMP move). key is the flow's client-side tuple, h its Maglev hash. *drained is set when
 * the drain rule chose the color; the drain rule counts its choice for packet p if counted.
 */
static __always_inline __u32 flow_color(struct route *r, struct pkt *p,
					const struct bgs_flow_key *key, struct bgs_vip_val *vv,
					struct bgs_service *svc, __u32 seed, __u32 h,
					bool midflow, bool *drained, bool counted)
{
	__u32 idle = r->v.live ^ 1, canary = bgs_fw_canary(r->v.word), ch;
	struct bgs_preview_key pk;

	if (vv->flags & BGS_VIP_PREVIEW_PORT)
		return idle;
	if (svc->flags & BGS_SVC_HAS_PREVIEW) {
		pk.prefixlen = 32 + (key->family == BGS_AF_INET ? 32 : 128);
		pk.svc_id = bpf_htonl(r->svc_id);
		__builtin_memcpy(pk.addr, key->src, 16);
		if (bpf_map_lookup_elem(&bgs_preview, &pk))
			return idle;
	}
	if (canary) {
		if (r->v.word & BGS_FW_STICKY)
			ch = bgs_hash_addr(key->src, seed);
		else
			ch = bgs_hash_flow(key, seed);
		if (ch % BGS_CANARY_SCALE < canary)
			return idle;
	}
	if (midflow && r->v.draining) {
		if (fresh_marked(r, key, h)) {
			if (counted)
				count(p, BGS_R_MIDFLOW_FRESH, 0);
			return r->v.live;
		}
		*drained = true;
		if (counted)
			count(p, BGS_R_MIDFLOW_DRAINED, 0);
		return idle;
	}
	return r->v.live;
}

/*
 * The color (flow_color) and backend of a flow without a usable entry: the table of that
 * color, or of the other when that pool is empty. Returns the backend's record, or NULL
 * when no pool has a usable backend. One rule for new_flow and for the reply path's
 * midflow_goes_to, which must agree on where a flow without an entry goes.
 */
static __always_inline struct bgs_backend *
choose_backend(struct route *r, struct pkt *p, const struct bgs_flow_key *key,
	       struct bgs_vip_val *vv, struct bgs_service *svc, const struct bgs_meta *m, __u32 h,
	       bool midflow, bool *drained, bool counted)
{
	struct bgs_backend *be;

	r->color = flow_color(r, p, key, vv, svc, m->canary_seed, h, midflow, drained, counted);
	if (!pick_backend(r, h))
		return NULL;
	be = bpf_map_lookup_elem(&bgs_backends, &r->backend_id);
	return be && (be->flags & BGS_BE_IN_USE) ? be : NULL;
}

/* Whether some CPU's SYN-flood guard refused an insert within the last `within` jiffies. */
static __always_inline bool guard_within(__u64 within)
{
	struct bgs_guard *g;
	__u32 zero = 0;
	__u64 t;

	g = bpf_map_lookup_elem(&bgs_guard, &zero);
	if (!g)
		return false;
	t = g->tripped_at;
	return t && bpf_jiffies64() - t < within;
}

/* SYN-flood guard: false once this CPU inserted cfg_new_flow_rate entries this second. */
static __always_inline bool flood_allow(struct route *r)
{
	__u32 zero = 0;
	struct bgs_flood *f;

	if (!cfg_new_flow_rate)
		return true;
	f = bpf_map_lookup_elem(&bgs_flood, &zero);
	if (!f)
		return true;
	if (r->now - f->window >= CONFIG_HZ) {
		f->window = r->now;
		f->count = 0;
	}
	if (f->count >= cfg_new_flow_rate) {
		struct bgs_guard *g = bpf_map_lookup_elem(&bgs_guard, &zero);

		/* for the reply path: flows go untracked (one write per 1/8 s at most) */
		if (g && g->tripped_at + CONFIG_HZ / 8 <= r->now)
			g->tripped_at = r->now;
		return false;
	}
	f->count++;
	return true;
}

static __always_inline __u8 tcp_state_next(__u8 st, __u8 fl)
{
	if ((fl & TCP_FL_ACK) && (st & BGS_TCP_SYN))
		st |= BGS_TCP_EST;
	if (fl & TCP_FL_FIN)
		st |= BGS_TCP_FIN;
	if (fl & TCP_FL_RST)
		st |= BGS_TCP_RST;
	return st;
}

static __always_inline bool is_syn(struct pkt *p)
{
	return p->proto == IPPROTO_TCP && (p->tcp_flags & (TCP_FL_SYN | TCP_FL_ACK)) == TCP_FL_SYN;
}

/*
 * The flow-liveness rule (bgswitch_flow.h) for a known flow and this packet, with the loaded
 * timeouts of bgs_meta; *bep gets the backend record. Anything but BGS_FLOW_LIVE routes the
 * packet as new.
 */
static __always_inline int flow_verdict(struct route *r, struct pkt *p, struct bgs_flow *f,
					struct bgs_backend **bep)
{
	struct bgs_backend *be;
	struct bgs_meta *m;
	__u32 id = f->backend_id, zero = 0;

	m = bpf_map_lookup_elem(&bgs_meta, &zero);
	if (!m)
		return BGS_FLOW_BACKEND_GONE;
	be = bpf_map_lookup_elem(&bgs_backends, &id);
	*bep = be;
	return bgs_flow_verdict(f, p->proto, is_syn(p) ? BGS_FLOW_PKT_SYN : 0, r->now, CONFIG_HZ,
				&m->timeouts, be, &r->v);
}

/* Sends the frame out ifindex: XDP_TX when it is where the frame came in. */
static __always_inline int emit(struct xdp_md *ctx, struct pkt *p, __u32 ifindex,
				__u32 reason_tx, __u32 reason_redirect)
{
	int act;

	if (ifindex == ctx->ingress_ifindex)
		return count(p, reason_tx, XDP_TX);
	act = bpf_redirect_map(&bgs_tx_ports, ifindex, XDP_DROP);
	if (act != XDP_REDIRECT)
		return count(p, BGS_R_DROP_NO_NEXTHOP, XDP_DROP);
	return count(p, reason_redirect, XDP_REDIRECT);
}

/* The TTL/protocol word (as loaded from bytes 8-9 of an IPv4 header) with the TTL one less. */
static __always_inline __u16 ttl_word_dec(__u16 w)
{
	__u16 ttl = *(__u8 *)&w;

	((__u8 *)&w)[0] = (__u8)(ttl - 1);
	return w;
}

/* Rewrites the destination (or, for replies, the source) address and port of a nat packet,
 * keeping the IP and L4 checksums right; decrements the TTL when dec_ttl. */
static __always_inline int nat_rewrite(struct xdp_md *ctx, struct pkt *p, const __u32 *addr,
				       __be16 port, bool is_src, bool dec_ttl)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l4d = 0, ipd = 0, i, l4off = p->l4_off;
	__u16 *l4csum = NULL, *pp;
	__u8 *l4;
	__be16 oldport;

	if (l4off > MAX_L3_LEN + ETH_HLEN)
		return -1;
	l4 = data + l4off;
	if ((void *)(l4 + sizeof(struct udphdr)) > data_end)
		return -1;
	if (p->proto == IPPROTO_TCP) {
		if ((void *)(l4 + sizeof(struct tcphdr)) > data_end)
			return -1;
		l4csum = (__u16 *)(l4 + offsetof(struct tcphdr, check));
	} else {
		l4csum = (__u16 *)(l4 + offsetof(struct udphdr, check));
	}
	/* source and destination ports lead both headers */
	pp = (__be16 *)l4 + (is_src ? 0 : 1);
	oldport = *pp;
	l4d = csum_delta16(l4d, oldport, port);
	*pp = port;

	if (p->family == BGS_AF_INET) {
		struct iphdr *ip = data + ETH_HLEN;
		__u32 *a;
		__u16 old_ttl_word, new_ttl_word;

		if ((void *)(ip + 1) > data_end)
			return -1;
		a = is_src ? &ip->saddr : &ip->daddr;
		l4d = csum_delta32(l4d, *a, addr[0]);
		ipd = csum_delta32(ipd, *a, addr[0]);
		*a = addr[0];
		if (dec_ttl) {
			/* TTL and protocol as one raw word; the new one is computed, not read
			 * back from the byte just written */
			old_ttl_word = *(__u16 *)((void *)ip + 8);
			new_ttl_word = ttl_word_dec(old_ttl_word);
			ip->ttl = *(__u8 *)&new_ttl_word;
			ipd = csum_delta16(ipd, old_ttl_word, new_ttl_word);
		}
		ip->check = csum_apply(ip->check, ipd);
		/* UDP over IPv4 without a checksum stays without one */
		if (p->proto == IPPROTO_UDP && *l4csum == 0)
			return 0;
	} else {
		struct ipv6hdr *ip6 = data + ETH_HLEN;
		__u32 *a;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		a = is_src ? (__u32 *)&ip6->saddr : (__u32 *)&ip6->daddr;
#pragma unroll
		for (i = 0; i < 4; i++) {
			l4d = csum_delta32(l4d, a[i], addr[i]);
			a[i] = addr[i];
		}
		if (dec_ttl)
			ip6->hop_limit--;
	}
	*l4csum = csum_apply(*l4csum, l4d);
	if (p->proto == IPPROTO_UDP && *l4csum == 0)
		*l4csum = 0xffff;
	return 0;
}

/* Forwards a client packet to r->backend_id. */
static __always_inline int forward(struct xdp_md *ctx, struct pkt *p, struct route *r,
				   struct bgs_backend *be, __u8 mode)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	count_flow(p, r);
	if (!(be->flags & BGS_BE_NEXTHOP)) {
		if (mode == BGS_MODE_DSR)
			return count(p, BGS_R_DROP_NO_NEXTHOP, XDP_DROP);
		/* the kernel forwards it (and decrements the TTL) once the address is rewritten */
		if (nat_rewrite(ctx, p, be->addr, be->port, false, false))
			return count(p, BGS_R_DROP_MALFORMED, XDP_DROP);
		return count(p, BGS_R_PASS_NO_NEXTHOP, XDP_PASS);
	}
	if (mode == BGS_MODE_NAT && nat_rewrite(ctx, p, be->addr, be->port, false, true))
		return count(p, BGS_R_DROP_MALFORMED, XDP_DROP);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return count(p, BGS_R_DROP_MALFORMED, XDP_DROP);
	/* both MACs in two stores, not twelve byte copies: the record holds them as the frame
	 * does (destination, then source), 8-aligned */
	_Static_assert(__builtin_offsetof(struct bgs_backend, smac) ==
			       __builtin_offsetof(struct bgs_backend, dmac) + ETH_ALEN &&
		       __builtin_offsetof(struct bgs_backend, dmac) % 8 == 0,
		       "bgs_backend: dmac, smac adjacent and 8-aligned");
	*(__u64 *)eth = *(const __u64 *)be->dmac;
	*(__u32 *)((void *)eth + 8) = *(const __u32 *)(be->dmac + 8);
	return emit(ctx, p, be->ifindex, BGS_R_FWD_TX, BGS_R_FWD_REDIRECT);
}

/* Reads the flip word once and derives everything the packet needs from it. */
static __always_inline int route_init(struct route *r, __u32 svc_id)
{
	struct bgs_flip *fl = bpf_map_lookup_elem(&bgs_flip, &svc_id);
	__u64 word;

	if (!fl)
		return -1;
	r->svc_id = svc_id;
	word = READ_ONCE_U64(fl->word);
	if (!(word & BGS_FW_ACTIVE))
		return -1;
	r->now = bpf_jiffies64();
	/* the drain fields are trusted only when not newer than the word (bgswitch_flow.h) */
	bgs_flip_view_init(&r->v, word, fl, r->now);
	return 0;
}

/*
 * A packet of a tracked flow (conntrack hit, looked up before the service: the hot path).
 * Returns the verdict, or -1 when the flow must be routed as new (stale entry, or an entry
 * that does not belong to the service this packet is for); *stale then says why (enum
 * bgs_flow_verdict).
 */
static __always_inline int known_flow(struct xdp_md *ctx, struct pkt *p, struct bgs_flow *f,
				      __u32 *stale)
{
	struct bgs_backend *be = NULL;
	struct route r;
	int verdict;
	__u8 st;

	/* the entry names its service and the service's epoch: the key (the packet's tuple)
	 * matched, so the epoch alone says whether it is this service's (no record read) */
	if (route_init(&r, f->svc_id)) {
		*stale = BGS_FLOW_SERVICE_GONE;
		count(p, BGS_R_CT_STALE_SERVICE_GONE, 0);
		return -1;
	}
	if (f->mode == BGS_MODE_NAT && p->ttl <= 1)
		return count(p, BGS_R_PASS_TTL, XDP_PASS);
	verdict = flow_verdict(&r, p, f, &be);
	if (verdict != BGS_FLOW_LIVE || !be) {
		_Static_assert(BGS_R_CT_STALE_SERVICE_GONE - BGS_R_CT_STALE_BACKEND_GONE ==
				       BGS_FLOW_SERVICE_GONE - BGS_FLOW_BACKEND_GONE &&
			       BGS_FLOW_SERVICE_GONE + 1 == BGS_FLOW_NR,
			       "one ct_stale reason per verdict, in its order");
		if (verdict < BGS_FLOW_BACKEND_GONE || verdict > BGS_FLOW_SERVICE_GONE)
			verdict = BGS_FLOW_BACKEND_GONE; /* LIVE without a record: cannot be */
		count(p, BGS_R_CT_STALE_BACKEND_GONE + verdict - BGS_FLOW_BACKEND_GONE, 0);
		*stale = verdict;
		return -1;
	}
	/* a known flow: its backend, whatever the live color */
	r.color = f->color;
	r.backend_id = f->backend_id;
	r.is_new = 0;
	if (p->proto == IPPROTO_TCP) {
		/* in nat only the backend's FIN or RST (reply path) close a flow: an off-path
		 * RST with the client's tuple changes nothing */
		st = tcp_state_next(f->tcp_state, f->mode == BGS_MODE_NAT ?
				    p->tcp_flags & ~(TCP_FL_FIN | TCP_FL_RST) : p->tcp_flags);
		if (st != f->tcp_state)
			f->tcp_state = st;
	}
	if (r.now - f->last_seen >= CONFIG_HZ)
		f->last_seen = r.now;
	return forward(ctx, p, &r, be, f->mode);
}

/* A packet to a service that starts a flow, continues one we have no entry for (f NULL, or
 * f with stale BGS_FLOW_IDLE or BGS_FLOW_SERVICE_GONE: an entry that idled out or is
 * another service's), or belongs to an entry f that is stale for another reason. */
static __always_inline int new_flow(struct xdp_md *ctx, struct pkt *p, struct bgs_vip_val *vv,
				    struct bgs_flow *f, __u32 stale)
{
	/* a flow that only idled out is still a flow: its non-SYN packets are mid-flow; an
	 * entry of another epoch is as good as none */
	bool f_missing = stale == BGS_FLOW_IDLE || stale == BGS_FLOW_SERVICE_GONE;
	bool midflow, drained = false, tracked = true;
	struct bgs_meta *m;
	__u32 zero = 0;
	struct bgs_backend *be;
	struct bgs_service *svc;
	struct bgs_flow nf = {};
	struct route r = {};
	struct ethhdr *eth;
	__u32 svc_id = vv->svc_id, h;

	svc = bpf_map_lookup_elem(&bgs_svcs, &svc_id);
	if (!svc || route_init(&r, svc_id))
		return count(p, BGS_R_DROP_INACTIVE, XDP_DROP);
	if (p->frag)
		return count(p, BGS_R_DROP_FRAGMENT, XDP_DROP);
	if (p->ext)
		return count(p, p->family == BGS_AF_INET ? BGS_R_DROP_IP_OPTIONS :
				BGS_R_DROP_EXT_HDR, XDP_DROP);
	if (!p->l4_whole)
		return count(p, BGS_R_DROP_L4_TRUNC, XDP_DROP);
	if (svc->mode == BGS_MODE_NAT && p->ttl <= 1)
		return count(p, BGS_R_PASS_TTL, XDP_PASS);

	/* mid-flow without an entry (restart, eviction, idle timeout, another LB's flow): the
	 * color it most likely started on */
	midflow = p->proto == IPPROTO_TCP && !is_syn(p) && (!f || f_missing);
	if (midflow)
		count(p, BGS_R_CT_MIDFLOW, 0);
	m = bpf_map_lookup_elem(&bgs_meta, &zero);
	if (!m)
		return count(p, BGS_R_DROP_INACTIVE, XDP_DROP);
	/* one flow hash: the Maglev index and the fresh-flow mark's slot */
	h = bgs_hash_flow(&p->key, m->maglev_seed);
	if (midflow) {
		nf.tcp_state = tcp_state_next(BGS_TCP_SYN, p->tcp_flags | TCP_FL_ACK);
	} else {
		r.is_new = 1;
		nf.tcp_state = p->proto == IPPROTO_TCP ?
			tcp_state_next(BGS_TCP_SYN, p->tcp_flags) : 0;
		/* whatever the guard or the insert do below: its later packets find the mark
		 * if they find no entry */
		if (r.v.draining && is_syn(p))
			fresh_mark(&r, p, h);
	}
	be = choose_backend(&r, p, &p->key, vv, svc, m, h, midflow, &drained, true);
	if (!be)
		return count(p, BGS_R_DROP_NO_BACKEND, XDP_DROP);

	nf.backend_id = r.backend_id;
	nf.incarnation = be->incarnation;
	/* a flow sent to the drained color belongs to before the drain's flip: the drain ends
	 * for it too (unless the drained pool was empty and it went live) */
	nf.gen = drained && r.color != r.v.live ? r.v.drain_gen - 1 : bgs_fw_gen(r.v.word);
	nf.svc_id = svc_id;
	nf.epoch = r.v.epoch;
	nf.mode = svc->mode;
	nf.last_seen = r.now;
	nf.rev_ifindex = ctx->ingress_ifindex;
	nf.color = r.color;
	/* the entry its drain's end let go: bgs_drain_kill counts the flow as one it ended */
	nf.flags = stale == BGS_FLOW_DRAINED ? BGS_FLOW_MOVED : 0;
	eth = (void *)(long)ctx->data;
	if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
		return count(p, BGS_R_DROP_MALFORMED, XDP_DROP);
	__builtin_memcpy(nf.rev_dmac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(nf.rev_smac, eth->h_dest, ETH_ALEN);
	/* a mid-flow packet without an entry inserts none while some CPU's guard refuses
	 * inserts (random ACKs of a flood must not take the budget; such flows still work) */
	if ((midflow && guard_within(CONFIG_HZ)) || !flood_allow(&r)) {
		tracked = false;
		count(p, BGS_R_CT_SKIPPED, 0);
	} else if (bpf_map_update_elem(&bgs_ct, &p->key, &nf, BPF_ANY)) {
		tracked = false;
		count(p, BGS_R_CT_FULL, 0);
	}
	/* replies of an untracked nat flow are translated to the service port: one on the
	 * preview port cannot be served */
	if (!tracked && svc->mode == BGS_MODE_NAT && (vv->flags & BGS_VIP_PREVIEW_PORT))
		return count(p, BGS_R_DROP_UNTRACKABLE, XDP_DROP);
	return forward(ctx, p, &r, be, svc->mode);
}

/* Whether f is the entry of a flow of the backend slot e describes (its id, incarnation and
 * service): only that backend may answer for the flow. */
static __always_inline bool reply_of(struct bgs_flow *f, const struct bgs_revnat_slot *e)
{
	return f && f->backend_id == e->backend_id && f->incarnation == e->incarnation &&
	       f->svc_id == e->svc_id;
}

/* Slot of bgs_revnat holding key kw, or NULL. */
static __always_inline struct bgs_revnat_slot *revnat_slot_match(__u32 slot, const __u32 *kw)
{
	struct bgs_revnat_slot *e = bpf_map_lookup_elem(&bgs_revnat, &slot);
	const __u32 *ew;

	if (!e || !*(volatile __u32 *)&e->used)
		return NULL;
	ew = (const __u32 *)&e->key;
	if (ew[0] != kw[0] || ew[1] != kw[1] || ew[2] != kw[2] || ew[3] != kw[3] ||
	    ew[4] != kw[4])
		return NULL;
	return e;
}

/* The slot of a nat backend (its service, id, interface, VIP): probes bgs_revnat. */
static __always_inline struct bgs_revnat_slot *revnat_find(const struct bgs_revnat_key *k)
{
	const __u32 *kw = (const __u32 *)k;
	struct bgs_revnat_slot *e;
	__u32 h = bgs_revnat_hash(k), i;

#pragma unroll
	for (i = 0; i < BGS_REVNAT_PROBES; i++) {
		e = revnat_slot_match((h + i) & cfg_revnat_mask, kw);
		if (e)
			return e;
	}
	return NULL;
}

/* Address families of struct bpf_fib_lookup (no socket headers here). */
#define FIB_AF_INET 2
#define FIB_AF_INET6 10

/* The kernel's route for p's destination, as if sent from src (a VIP): BPF_FIB_LKUP_RET_*;
 * on success fp holds the next hop's MACs and interface. */
static __always_inline long fib_route(struct xdp_md *ctx, struct pkt *p, const __u32 *src,
				      struct bpf_fib_lookup *fp)
{
	__builtin_memset(fp, 0, sizeof(*fp));
	fp->l4_protocol = p->proto;
	fp->sport = p->key.sport;
	fp->dport = p->key.dport;
	fp->ifindex = ctx->ingress_ifindex;
	if (p->family == BGS_AF_INET) {
		fp->family = FIB_AF_INET;
		fp->ipv4_src = src[0];
		fp->ipv4_dst = p->key.dst[0];
	} else {
		fp->family = FIB_AF_INET6;
		__builtin_memcpy(fp->ipv6_src, src, 16);
		__builtin_memcpy(fp->ipv6_dst, p->key.dst, 16);
	}
	return bpf_fib_lookup(ctx, fp, sizeof(*fp), 0);
}

/* Whether the FIB says p is for this host (or the kernel forwards nothing anyway). */
static __always_inline bool fib_local(long rc)
{
	return rc == BPF_FIB_LKUP_RET_NOT_FWDED || rc == BPF_FIB_LKUP_RET_FWD_DISABLED;
}

/* A packet from a nat backend's address that is no reply: the kernel's if it is for this
 * host (health checks, an operator's own connections), else dropped and counted. */
static __always_inline int not_reply(struct xdp_md *ctx, struct pkt *p, const __u32 *vip,
				     __u32 reason)
{
	struct bpf_fib_lookup fp;

	if (fib_local(fib_route(ctx, p, vip, &fp)))
		return count(p, BGS_R_PASS_REPLY_NO_FLOW, XDP_PASS);
	return count(p, reason, XDP_DROP);
}


/*
 * Whether the mid-flow rule sends the next client packet of tuple key (no entry) to nat
 * backend e (its id and incarnation), as new_flow would route it: then a reply of e without
 * an entry is that flow's (its entry was evicted between the client's packet and the reply).
 */
static __always_inline bool midflow_goes_to(struct pkt *p, const struct bgs_flow_key *key,
					    const struct bgs_revnat_slot *e)
{
	struct bgs_vip_val vv = { .svc_id = e->svc_id, .flags = 0 };
	__u32 zero = 0, svc_id = e->svc_id, h;
	struct bgs_service *svc;
	struct bgs_backend *be;
	struct route r = {};
	bool drained = false;
	struct bgs_meta *m;

	svc = bpf_map_lookup_elem(&bgs_svcs, &svc_id);
	m = bpf_map_lookup_elem(&bgs_meta, &zero);
	if (!svc || !m || route_init(&r, svc_id))
		return false;
	h = bgs_hash_flow(key, m->maglev_seed);
	be = choose_backend(&r, p, key, &vv, svc, m, h, true, &drained, false);
	return be && r.backend_id == e->backend_id && be->incarnation == e->incarnation;
}

/*
 * A packet from nat backend e with no entry of its flow key (the service port's; conflict:
 * an entry of the tuple names another backend). A SYN-ACK (whose SYN the flood guard or a
 * failed insert left untracked), a UDP datagram, during a flood any TCP packet, and any
 * TCP packet of a backend the mid-flow rule sends the flow's client packets to (its entry
 * was evicted: the client's next packet would go there and make one again), are translated
 * without an entry: the slot knows the VIP and port, the kernel's FIB the way to the client. The
 * source becomes the service port: a flow on the preview port is always tracked (or
 * dropped, DROP_UNTRACKABLE), so an untracked one is the service port's. Anything else that
 * is not for this host is dropped and counted.
 */
static __always_inline int reply_untracked(struct xdp_md *ctx, struct pkt *p,
					   const struct bgs_flow_key *key,
					   const struct bgs_revnat_slot *e, __u32 conflict)
{
	void *data, *data_end;
	struct bpf_fib_lookup fp;
	struct ethhdr *eth;
	bool synack, ok;
	long rc;

	rc = fib_route(ctx, p, e->vip, &fp);
	if (fib_local(rc))
		return count(p, BGS_R_PASS_REPLY_NO_FLOW, XDP_PASS);
	if (conflict)
		return count(p, BGS_R_DROP_REPLY_NO_FLOW, XDP_DROP);
	if (p->proto == IPPROTO_TCP) {
		synack = (p->tcp_flags & (TCP_FL_SYN | TCP_FL_ACK | TCP_FL_RST)) ==
			 (TCP_FL_SYN | TCP_FL_ACK);
		ok = synack || guard_within((__u64)BGS_GUARD_HOLD_S * CONFIG_HZ) ||
		     midflow_goes_to(p, key, e);
	} else {
		ok = true;
	}
	if (!ok)
		return count(p, BGS_R_DROP_REPLY_NO_FLOW, XDP_DROP);
	if (p->ttl <= 1)
		return count(p, BGS_R_PASS_TTL, XDP_PASS);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		/* the kernel resolves the neighbour, forwards and decrements the TTL */
		if (nat_rewrite(ctx, p, e->vip, e->vip_port, true, false))
			return count(p, BGS_R_DROP_MALFORMED, XDP_DROP);
		return count(p, BGS_R_PASS_REPLY_UNTRACKED, XDP_PASS);
	}
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return count(p, BGS_R_DROP_REPLY_NO_FLOW, XDP_DROP);
	if (nat_rewrite(ctx, p, e->vip, e->vip_port, true, true))
		return count(p, BGS_R_DROP_MALFORMED, XDP_DROP);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return count(p, BGS_R_DROP_MALFORMED, XDP_DROP);
	__builtin_memcpy(eth->h_dest, fp.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fp.smac, ETH_ALEN);
	return emit(ctx, p, fp.ifindex, BGS_R_REPLY_UNTRACKED, BGS_R_REPLY_UNTRACKED);
}

/*
 * A packet from nat backend e: back to the client, from the VIP. It must come in on the
 * backend's own interface (its next hop's); only then may its FIN or RST close the flow.
 */
static __always_inline int from_backend(struct xdp_md *ctx, struct pkt *p,
					const struct bgs_revnat_slot *e)
{
	void *data, *data_end;
	union {
		struct bgs_flow_key key;
		__u64 w[5];
	} k;
	struct ethhdr *eth;
	struct bgs_flow *f, *g;
	__u32 conflict;
	__u64 now;
	__u8 st;

	if (p->frag || p->ext || !p->l4_whole)
		return count(p, BGS_R_PASS_REPLY_NO_FLOW, XDP_PASS);
	if (e->ifindex && e->ifindex != ctx->ingress_ifindex)
		return not_reply(ctx, p, e->vip, BGS_R_DROP_REPLY_IFACE);
	/* the client-side key, in whole words (see parse.h) */
	k.w[0] = p->key_w[2];
	k.w[1] = p->key_w[3];
	k.w[2] = *(const __u64 *)&e->vip[0];
	k.w[3] = *(const __u64 *)&e->vip[2];
	k.w[4] = key_tail(p->key.dport, e->vip_port, p->proto, p->family);
	/* a client may use one source port towards both the service port and the preview
	 * port: the flow is the one whose backend this reply comes from */
	f = bpf_map_lookup_elem(&bgs_ct, &k.key);
	conflict = 0;
	if (!reply_of(f, e)) {
		if (f)
			conflict = 1;
		f = NULL;
		if (e->preview_port) {
			k.w[4] = key_tail(p->key.dport, e->preview_port, p->proto, p->family);
			g = bpf_map_lookup_elem(&bgs_ct, &k.key);
			if (reply_of(g, e))
				f = g;
			else if (g)
				conflict = 1;
		}
	}
	barrier_var(conflict); /* a scalar, not an OR of the two pointers */
	if (!f) {
		k.w[4] = key_tail(p->key.dport, e->vip_port, p->proto, p->family);
		return reply_untracked(ctx, p, &k.key, e, conflict);
	}
	if (p->ttl <= 1)
		return count(p, BGS_R_PASS_TTL, XDP_PASS);
	if (p->proto == IPPROTO_TCP) {
		/* the backend's own FIN or RST close the flow (a client's do not, in nat): a
		 * confirmed close, so a SYN on the tuple is a new connection at once */
		st = tcp_state_next(f->tcp_state, p->tcp_flags);
		if (p->tcp_flags & (TCP_FL_FIN | TCP_FL_RST))
			st |= BGS_TCP_BE_CLOSED;
		if (p->tcp_flags & TCP_FL_RST)
			count_reset(f);
		if (st != f->tcp_state)
			f->tcp_state = st;
	}
	/* replies keep a flow alive too (a server-push UDP flow) */
	now = bpf_jiffies64();
	if (now - f->last_seen >= CONFIG_HZ)
		f->last_seen = now;
	if (nat_rewrite(ctx, p, e->vip, k.key.dport, true, true))
		return count(p, BGS_R_DROP_MALFORMED, XDP_DROP);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return count(p, BGS_R_DROP_MALFORMED, XDP_DROP);
	__builtin_memcpy(eth->h_dest, f->rev_dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, f->rev_smac, ETH_ALEN);
	return emit(ctx, p, f->rev_ifindex, BGS_R_REPLY_TX, BGS_R_REPLY_REDIRECT);
}

/* A bgs_vips key, in whole words (see parse.h). */
union vip_key_u {
	struct bgs_vip_key key;
	__u64 w[2];
	__u32 w32[5];
};

static __always_inline void vip_key(union vip_key_u *vk, struct pkt *p, __be16 port, __u8 proto)
{
	vk->w[0] = p->key_w[2];
	vk->w[1] = p->key_w[3];
	vk->w32[4] = (__u32)port | (__u32)proto << 16 | (__u32)p->family << 24;
}

/* Whether p is the key of service id's VIP (its port or preview port): vv gets what the
 * bgs_vips entry says. For a port only that service uses with p's protocol. */
static __always_inline bool vip_hint(struct pkt *p, __u32 id, struct bgs_vip_val *vv)
{
	struct bgs_service *svc = bpf_map_lookup_elem(&bgs_svcs, &id);

	if (!svc || svc->proto != p->proto || svc->family != p->family ||
	    svc->vip[0] != p->key.dst[0] || svc->vip[1] != p->key.dst[1] ||
	    svc->vip[2] != p->key.dst[2] || svc->vip[3] != p->key.dst[3])
		return false;
	vv->svc_id = id;
	if (svc->port == p->key.dport)
		vv->flags = 0;
	else if (svc->preview_port && svc->preview_port == p->key.dport)
		vv->flags = BGS_VIP_PREVIEW_PORT;
	else
		return false;
	return true;
}

/* Offsets of an ICMP error's parts when the outer IP header has no options/extensions. */
#define ICMP4_OFF (ETH_HLEN + sizeof(struct iphdr))
#define ICMP6_OFF (ETH_HLEN + sizeof(struct ipv6hdr))
#define ICMP_HLEN 8
/* Ports of the embedded packet: the first 8 bytes of its L4 header are always quoted. */
#define INNER_L4_LEN 8

/* Whether an ICMP/ICMPv6 type reports an error about a packet it quotes. */
static __always_inline bool icmp_is_error(__u8 family, __u8 type)
{
	if (family == BGS_AF_INET)
		return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED ||
		       type == ICMP_PARAMETERPROB;
	return type == ICMPV6_DEST_UNREACH || type == ICMPV6_PKT_TOOBIG ||
	       type == ICMPV6_TIME_EXCEED || type == ICMPV6_PARAMPROB;
}

/* Where an ICMP error's quote lies, once icmp_quote has checked it. */
struct icmp_quote {
	__u8 *icmp;  /* the ICMP header */
	__u8 *inner; /* the quoted IP header (no options, no extension headers) */
	__u8 *inl4;  /* the quoted TCP/UDP ports */
};

/*
 * The ICMP error in p quotes a TCP or UDP packet whose IP header and ports lie inside the
 * outer IP packet (not in the frame's padding); -1 otherwise. Shared by both directions of
 * ICMP error translation.
 */
static __always_inline int icmp_quote(struct xdp_md *ctx, const struct pkt *p,
				      struct icmp_quote *q)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (p->ext || p->frag)
		return -1;
	if (p->family == BGS_AF_INET) {
		struct iphdr *iip;

		q->icmp = data + ICMP4_OFF;
		q->inner = q->icmp + ICMP_HLEN;
		iip = (struct iphdr *)q->inner;
		if (ICMP4_OFF + ICMP_HLEN + sizeof(*iip) + INNER_L4_LEN > p->l3_end ||
		    (void *)(iip + 1) + INNER_L4_LEN > data_end)
			return -1;
		if (!icmp_is_error(BGS_AF_INET, q->icmp[0]))
			return -1;
		if (iip->ihl != 5 || (iip->protocol != IPPROTO_TCP && iip->protocol != IPPROTO_UDP))
			return -1;
		q->inl4 = q->inner + sizeof(*iip);
	} else {
		struct ipv6hdr *iip6;

		q->icmp = data + ICMP6_OFF;
		q->inner = q->icmp + ICMP_HLEN;
		iip6 = (struct ipv6hdr *)q->inner;
		if (ICMP6_OFF + ICMP_HLEN + sizeof(*iip6) + INNER_L4_LEN > p->l3_end ||
		    (void *)(iip6 + 1) + INNER_L4_LEN > data_end)
			return -1;
		if (!icmp_is_error(BGS_AF_INET6, q->icmp[0]))
			return -1;
		if (iip6->nexthdr != IPPROTO_TCP && iip6->nexthdr != IPPROTO_UDP)
			return -1;
		q->inl4 = q->inner + sizeof(*iip6);
	}
	return 0;
}

/*
 * An ICMP error sent to a VIP about a packet the VIP sent to a client (path MTU, host
 * unreachable, ...) follows that flow to its backend. In nat the backend must see its own
 * address in it: outer destination, quoted source address and port are rewritten, with
 * the outer, quoted and ICMP checksums kept right. The quoted L4 checksum is left as is
 * (receivers do not check it in a quote). Returns -1 for anything that is not an error
 * quoting a packet from a service's VIP:port, for the caller to classify.
 */
static __always_inline int icmp_error(struct xdp_md *ctx, struct pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct bgs_flow_key key = {};
	struct bgs_vip_key vk = {};
	struct route r = {};
	struct bgs_meta *m;
	struct bgs_service *svc;
	struct bgs_backend *be;
	struct bgs_vip_val *vv;
	struct bgs_flow *f;
	__u32 svc_id, id, i, icd = 0, ipd = 0, ind = 0, zero = 0;
	struct icmp_quote q;
	__u8 *icmp, *inner, *inl4;
	__be16 *ports;
	__u16 *icsum;

	if (icmp_quote(ctx, p, &q))
		return -1;
	icmp = q.icmp;
	inner = q.inner;
	inl4 = q.inl4;
	if (p->family == BGS_AF_INET) {
		struct iphdr *iip = (struct iphdr *)inner;

		/* the quoted packet went VIP -> client */
		key.src[0] = iip->daddr;
		key.dst[0] = iip->saddr;
		key.proto = iip->protocol;
	} else {
		struct ipv6hdr *iip6 = (struct ipv6hdr *)inner;

		__builtin_memcpy(key.src, &iip6->daddr, 16);
		__builtin_memcpy(key.dst, &iip6->saddr, 16);
		key.proto = iip6->nexthdr;
	}
	ports = (__be16 *)inl4;
	key.sport = ports[1];
	key.dport = ports[0];
	key.family = p->family;

	/* the error must be addressed to the VIP that sent the quoted packet */
	if (key.dst[0] != p->key.dst[0] || key.dst[1] != p->key.dst[1] ||
	    key.dst[2] != p->key.dst[2] || key.dst[3] != p->key.dst[3])
		return -1;
	__builtin_memcpy(vk.addr, key.dst, 16);
	vk.port = key.dport;
	vk.proto = key.proto;
	vk.family = key.family;
	vv = bpf_map_lookup_elem(&bgs_vips, &vk);
	if (!vv)
		return -1;
	svc_id = vv->svc_id;
	svc = bpf_map_lookup_elem(&bgs_svcs, &svc_id);
	f = bpf_map_lookup_elem(&bgs_ct, &key);
	m = bpf_map_lookup_elem(&bgs_meta, &zero);
	if (!svc || !f || !m || route_init(&r, svc_id))
		return count(p, BGS_R_PASS_ICMP, XDP_PASS);
	id = f->backend_id;
	be = bpf_map_lookup_elem(&bgs_backends, &id);
	/* the flow's backend by the same liveness rule its packets follow */
	if (bgs_flow_verdict(f, key.proto, 0, r.now, CONFIG_HZ, &m->timeouts, be, &r.v) !=
		    BGS_FLOW_LIVE || !be || !(be->flags & BGS_BE_NEXTHOP))
		return count(p, BGS_R_PASS_ICMP, XDP_PASS);

	if (svc->mode == BGS_MODE_NAT) {
		if (p->ttl <= 1)
			return count(p, BGS_R_PASS_TTL, XDP_PASS);
		icsum = (__u16 *)(icmp + 2);
		/* quoted source port */
		icd = csum_delta16(icd, ports[0], be->port);
		ports[0] = be->port;
		if (p->family == BGS_AF_INET) {
			struct iphdr *ip = data + ETH_HLEN, *iip = (struct iphdr *)inner;
			__u16 old_ttl_word, new_ttl_word, old_check;

			if ((void *)(ip + 1) > data_end)
				return count(p, BGS_R_DROP_MALFORMED, XDP_DROP);
			/* quoted source address and the quoted header's checksum */
			ind = csum_delta32(ind, iip->saddr, be->addr[0]);
			icd = csum_delta32(icd, iip->saddr, be->addr[0]);
			iip->saddr = be->addr[0];
			old_check = iip->check;
			iip->check = csum_apply(iip->check, ind);
			icd = csum_delta16(icd, old_check, iip->check);
			/* outer destination and TTL */
			ipd = csum_delta32(ipd, ip->daddr, be->addr[0]);
			ip->daddr = be->addr[0];
			old_ttl_word = *(__u16 *)((void *)ip + 8);
			new_ttl_word = ttl_word_dec(old_ttl_word);
			ip->ttl = *(__u8 *)&new_ttl_word;
			ipd = csum_delta16(ipd, old_ttl_word, new_ttl_word);
			ip->check = csum_apply(ip->check, ipd);
		} else {
			struct ipv6hdr *ip6 = data + ETH_HLEN, *iip6 = (struct ipv6hdr *)inner;
			__u32 *oa, *ia;

			if ((void *)(ip6 + 1) > data_end)
				return count(p, BGS_R_DROP_MALFORMED, XDP_DROP);
			oa = (__u32 *)&ip6->daddr;
			ia = (__u32 *)&iip6->saddr;
			/* ICMPv6 sums the pseudo-header (outer destination) and the quote */
#pragma unroll
			for (i = 0; i < 4; i++) {
				icd = csum_delta32(icd, oa[i], be->addr[i]);
				icd = csum_delta32(icd, ia[i], be->addr[i]);
				oa[i] = be->addr[i];
				ia[i] = be->addr[i];
			}
			ip6->hop_limit--;
		}
		*icsum = csum_apply(*icsum, icd);
	}
	{
		struct ethhdr *eth = data;

		__builtin_memcpy(eth->h_dest, be->dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, be->smac, ETH_ALEN);
	}
	return emit(ctx, p, be->ifindex, BGS_R_ICMP_FWD, BGS_R_ICMP_FWD);
}

/*
 * An ICMP error from the backend side about a nat flow's packet to its backend: a router
 * between the LB and the backend sends Fragmentation Needed / Packet Too Big (or another
 * error) to the client, quoting client -> backend:port. The client's stack finds its
 * connection only by the quote it sent, client -> VIP:port, so the quoted destination
 * address and port become the VIP's (with the quoted IPv4 header and the ICMP checksums
 * kept right; the outer addresses stay), and the error goes the flow's way back to the
 * client, TTL one less. Returns -1 for anything else, for the caller to classify.
 */
static __always_inline int icmp_error_backend(struct xdp_md *ctx, struct pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct bgs_revnat_key rk = {};
	struct bgs_revnat_slot *e;
	union {
		struct bgs_flow_key key;
		__u64 w[5];
	} k = {};
	struct bgs_flow *f, *g;
	__u32 i, icd = 0, ind = 0, *qd;
	struct icmp_quote q;
	__u8 *icmp, *inner, *inl4;
	__be16 *ports;
	__u16 *icsum;

	if (icmp_quote(ctx, p, &q))
		return -1;
	icmp = q.icmp;
	inner = q.inner;
	inl4 = q.inl4;
	if (p->family == BGS_AF_INET) {
		struct iphdr *iip = (struct iphdr *)inner;

		/* the quoted packet went client -> backend; the error goes to the client */
		if (iip->saddr != p->key.dst[0])
			return -1;
		rk.addr[0] = iip->daddr;
		rk.proto = iip->protocol;
		k.key.src[0] = iip->saddr;
		qd = &iip->daddr;
	} else {
		struct ipv6hdr *iip6 = (struct ipv6hdr *)inner;

		__builtin_memcpy(k.key.src, &iip6->saddr, 16);
		if (k.key.src[0] != p->key.dst[0] || k.key.src[1] != p->key.dst[1] ||
		    k.key.src[2] != p->key.dst[2] || k.key.src[3] != p->key.dst[3])
			return -1;
		__builtin_memcpy(rk.addr, &iip6->daddr, 16);
		rk.proto = iip6->nexthdr;
		qd = (__u32 *)&iip6->daddr;
	}
	ports = (__be16 *)inl4;
	rk.port = ports[1];
	rk.family = p->family;
	e = revnat_find(&rk);
	if (!e)
		return -1;
	if (e->ifindex && e->ifindex != ctx->ingress_ifindex)
		return -1;
	k.key.sport = ports[0];
	k.key.proto = rk.proto;
	k.key.family = p->family;
	__builtin_memcpy(k.key.dst, e->vip, 16);
	k.key.dport = e->vip_port;
	f = bpf_map_lookup_elem(&bgs_ct, &k.key);
	if (!reply_of(f, e)) {
		f = NULL;
		if (e->preview_port) {
			k.key.dport = e->preview_port;
			g = bpf_map_lookup_elem(&bgs_ct, &k.key);
			if (reply_of(g, e))
				f = g;
		}
	}
	if (!f)
		return count(p, BGS_R_PASS_ICMP, XDP_PASS);
	if (p->ttl <= 1)
		return count(p, BGS_R_PASS_TTL, XDP_PASS);

	icsum = (__u16 *)(icmp + 2);
	/* quoted destination port */
	icd = csum_delta16(icd, ports[1], k.key.dport);
	ports[1] = k.key.dport;
	if (p->family == BGS_AF_INET) {
		struct iphdr *ip = data + ETH_HLEN, *iip = (struct iphdr *)inner;
		__u16 old_ttl_word, new_ttl_word, old_check;
		__u32 ipd = 0;

		if ((void *)(ip + 1) > data_end || (void *)(qd + 1) > data_end ||
		    (void *)(iip + 1) > data_end)
			return count(p, BGS_R_DROP_MALFORMED, XDP_DROP);
		ind = csum_delta32(ind, *qd, e->vip[0]);
		icd = csum_delta32(icd, *qd, e->vip[0]);
		*qd = e->vip[0];
		old_check = iip->check;
		iip->check = csum_apply(iip->check, ind);
		icd = csum_delta16(icd, old_check, iip->check);
		old_ttl_word = *(__u16 *)((void *)ip + 8);
		new_ttl_word = ttl_word_dec(old_ttl_word);
		ip->ttl = *(__u8 *)&new_ttl_word;
		ipd = csum_delta16(ipd, old_ttl_word, new_ttl_word);
		ip->check = csum_apply(ip->check, ipd);
	} else {
		struct ipv6hdr *ip6 = data + ETH_HLEN;

		if ((void *)(ip6 + 1) > data_end || (void *)(qd + 4) > data_end)
			return count(p, BGS_R_DROP_MALFORMED, XDP_DROP);
		/* the pseudo-header (outer addresses) is unchanged; the quote is summed */
#pragma unroll
		for (i = 0; i < 4; i++) {
			icd = csum_delta32(icd, qd[i], e->vip[i]);
			qd[i] = e->vip[i];
		}
		ip6->hop_limit--;
	}
	*icsum = csum_apply(*icsum, icd);
	{
		struct ethhdr *eth = data;

		__builtin_memcpy(eth->h_dest, f->rev_dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, f->rev_smac, ETH_ALEN);
	}
	return emit(ctx, p, f->rev_ifindex, BGS_R_ICMP_TO_CLIENT, BGS_R_ICMP_TO_CLIENT);
}

SEC("xdp")
int bgs_switch(struct xdp_md *ctx)
{
	struct bgs_revnat_key rk = {};
	struct bgs_vip_val vv_hint;
	struct bgs_revnat_slot *e;
	struct bgs_flow *f = NULL;
	struct bgs_port *pf;
	__u32 stale = BGS_FLOW_LIVE;
	union vip_key_u vk;
	struct bgs_vip_val *vv;
	struct pkt p = {};
	__u32 port, hint;
	int err;

	err = parse_packet(ctx, &p);
	switch (err) {
	case PARSE_OK:
		break;
	case PARSE_NOT_IP:
		return count(&p, BGS_R_PASS_NOT_IP, XDP_PASS);
	case PARSE_VLAN:
		return count(&p, BGS_R_PASS_VLAN, XDP_PASS);
	case PARSE_L4_TRUNC:
		if (!p.has_ports)
			return count(&p, BGS_R_DROP_L4_TRUNC, XDP_DROP);
		break; /* ports known: a VIP's is dropped below, anyone else's passes */
	default:
		return count(&p, BGS_R_DROP_MALFORMED, XDP_DROP);
	}

	if ((p.proto == IPPROTO_ICMP && p.family == BGS_AF_INET) ||
	    (p.proto == IPPROTO_ICMPV6 && p.family == BGS_AF_INET6)) {
		err = icmp_error(ctx, &p);
		if (err >= 0)
			return err;
		err = icmp_error_backend(ctx, &p);
		if (err >= 0)
			return err;
	}
	if ((p.proto != IPPROTO_TCP && p.proto != IPPROTO_UDP) || p.frag == 2) {
		/* no ports: all that can be known is whether the address is a VIP's */
		vip_key(&vk, &p, 0, 0);
		if (!bpf_map_lookup_elem(&bgs_vips, &vk.key))
			return count(&p, p.frag == 2 ? BGS_R_PASS_FRAGMENT : BGS_R_PASS_NOT_VIP,
				     XDP_PASS);
		if (p.frag == 2)
			return count(&p, BGS_R_DROP_FRAGMENT, XDP_DROP);
		/* more extension headers than the parser walks: to a VIP, it cannot be routed */
		if (p.ext_over)
			return count(&p, BGS_R_DROP_EXT_HDR, XDP_DROP);
		return count(&p, BGS_R_PASS_PROTO, XDP_PASS);
	}

	/* to a VIP port and a VIP address (as far as the filter knows): conntrack first, so a
	 * known flow costs one hash lookup and other traffic none */
	port = bpf_ntohs(p.key.dport);
	pf = bpf_map_lookup_elem(&bgs_ports, &port);
	if (pf && (pf->flags & (p.proto == IPPROTO_UDP ? BGS_PORT_VIP_UDP : BGS_PORT_VIP_TCP)) &&
	    (pf->vip_bloom & bgs_addr_bloom_bit(p.key.dst))) {
		if (p.l4_whole && !p.frag && !p.ext) {
			f = bpf_map_lookup_elem(&bgs_ct, &p.key);
			if (f) {
				err = known_flow(ctx, &p, f, &stale);
				if (err >= 0)
					return err;
			}
		}
		hint = pf->vip_svc[p.proto == IPPROTO_UDP];
		if (hint) {
			/* one service alone uses this port: its record says whether this is
			 * its key, no bgs_vips lookup */
			if (vip_hint(&p, hint - 1, &vv_hint))
				return new_flow(ctx, &p, &vv_hint, f, stale);
		} else {
			vip_key(&vk, &p, p.key.dport, p.proto);
			vv = bpf_map_lookup_elem(&bgs_vips, &vk.key);
			if (vv)
				return new_flow(ctx, &p, vv, f, stale);
		}
	}

	/* from a nat backend's port: a reply */
	port = bpf_ntohs(p.key.sport);
	pf = bpf_map_lookup_elem(&bgs_ports, &port);
	if (pf && (pf->flags & (p.proto == IPPROTO_UDP ? BGS_PORT_NAT_UDP : BGS_PORT_NAT_TCP))) {
		__builtin_memcpy(rk.addr, p.key.src, 16);
		rk.port = p.key.sport;
		rk.proto = p.proto;
		rk.family = p.family;
		e = revnat_find(&rk);
		if (e)
			return from_backend(ctx, &p, e);
	}
	return count(&p, BGS_R_PASS_NOT_VIP, XDP_PASS);
}

/* Lets user space read the program's clock (drain deadlines are in jiffies). */
SEC("syscall")
int bgs_read_clock(struct bgs_clock *c)
{
	c->jiffies = bpf_jiffies64();
	c->hz = CONFIG_HZ;
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
