// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Forwarding modes (issue item 6), IPv4 and IPv6, TCP and UDP: nat forwards with the
 * destination rewritten and TTL decremented, and rewrites the backend's replies back to the
 * VIP out the interface and MACs the client's packet came by; dsr rewrites only the MACs.
 * Also: replies nobody asked for pass untouched, a backend's next hop that is unresolved
 * hands nat packets to the kernel and drops dsr ones (counted), ICMP errors about a
 * tracked flow follow it, and the per-verdict, per-service and per-backend counters (a
 * backend's resets among them).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <bpf/bpf.h>

#include "fixture.h"

struct variant {
	const char *name;
	__u8 family, proto;
};

static const struct variant variants[] = {
	{ "v4_tcp", BGS_AF_INET, IPPROTO_TCP },
	{ "v4_udp", BGS_AF_INET, IPPROTO_UDP },
	{ "v6_tcp", BGS_AF_INET6, IPPROTO_TCP },
	{ "v6_udp", BGS_AF_INET6, IPPROTO_UDP },
};

static int next_n = 10;
static int next_vip = 1;
static int next_unresolved_n = FX_UNRESOLVED_N;

static bool svc_setup(const struct variant *v, __u8 mode, struct fx_svc *s, __u32 be[2])
{
	char name[32];
	__u16 port = mode == BGS_MODE_NAT ? 8080 : 0;
	bool ok = true;

	snprintf(name, sizeof(name), "m%d_%s", next_vip, v->name);
	if (!fx_svc_add(s, name, v->family, next_vip++, 80, v->proto, mode, 0))
		return false;
	/* one backend behind lb1 (XDP_REDIRECT), one on the clients' side (XDP_TX) */
	ok &= fx_be_add(s, BGS_BLUE, FX_NET_BACKEND, next_n++, port, 0, &be[0]);
	ok &= fx_be_add(s, BGS_BLUE, FX_NET_CLIENT, next_n++, port, 0, &be[1]);
	return ok;
}

/* The backend's reply must leave from the VIP, to the MAC the client's packet came from,
 * out the interface it came in on; byte for byte, with its verdict and counter. */
static bool expect_reply(const struct fx_svc *s, const struct pkt *c, __u32 be_id, __u8 flags)
{
	const struct fx_be *b = &fx.be[be_id];
	struct bgs_reason_counter before[BGS_R_MAX];
	__u8 in[PKT_MAX], eb[PKT_MAX];
	struct pkt r, e;
	struct fx_out o;
	__u32 verdict;
	int len, elen;
	bool ok;

	fx_reply_pkt(&r, c, be_id, flags);
	/* some replies carry Ethernet padding: it is not payload and comes out as it went in */
	if (flags & PKT_PSH) {
		r.pad_len = 12;
		r.pad_byte = 0xee;
	}
	e = r;
	memcpy(e.src, s->vip.addr, 16);
	e.sport = s->port;
	e.ttl = r.ttl - 1;
	memcpy(e.dmac, c->smac, 6);
	memcpy(e.smac, c->dmac, 6);
	verdict = b->ifindex == fx.if_lb0 ? XDP_TX : XDP_REDIRECT;
	len = pkt_build(&r, in, sizeof(in));
	elen = pkt_build(&e, eb, sizeof(eb));

	fx_reasons(before);
	if (!ASSERT_OK(fx_run(in, (__u32)len, b->ifindex, &o), "test run"))
		return false;
	if (o.retval != verdict) {
		FAILF("reply from backend %u: verdict %s, expected %s", be_id,
		      fx_xdp_str(o.retval), fx_xdp_str(verdict));
		return false;
	}
	ok = pkt_expect_frame("nat reply", o.data, o.len, eb, (size_t)elen, true);
	ok &= fx_expect_reason(before, verdict == XDP_TX ? BGS_R_REPLY_TX : BGS_R_REPLY_REDIRECT,
			       1, (__u64)len);
	return ok;
}

static bool expect_counted_fwd(const struct fx_svc *s, const struct pkt *p, __u32 be_id)
{
	struct bgs_reason_counter before[BGS_R_MAX];
	__u8 tmp[PKT_MAX];
	int len = pkt_build(p, tmp, sizeof(tmp));
	bool ok;

	fx_reasons(before);
	ok = fx_expect_fwd(s, p, be_id);
	ok &= fx_expect_reason(before, fx.be[be_id].ifindex == fx.if_lb0 ? BGS_R_FWD_TX :
			       BGS_R_FWD_REDIRECT, 1, (__u64)len);
	return ok;
}

#define NFLOWS 24

static long ct_entries_of(const struct fx_svc *s)
{
	struct bgs_flow_key k, next;
	struct bgs_flow f;
	void *prev = NULL;
	long n = 0;

	while (!bpf_map_get_next_key(fx.ct_fd, prev, &next)) {
		if (!bpf_map_lookup_elem(fx.ct_fd, &next, &f) && f.svc_id == s->id &&
		    !memcmp(next.dst, s->vip.addr, 16))
			n++;
		k = next;
		prev = &k;
	}
	return n;
}

/*
 * TCP replies other than a SYN-ACK without a flow, outside a flood: translated only from the
 * backend the mid-flow rule sends the flow's client packets to (an evicted flow's reply:
 * the client's next packet goes there), dropped and counted from any other. Client 9998
 * has no neighbour: a translated reply goes to the kernel.
 */
static bool untracked_tcp_replies(const struct fx_svc *s, __u32 be_id)
{
	const struct fx_be *b = &fx.be[be_id];
	struct bgs_flow_key k;
	struct pkt o, r, e;
	int seen = 0, sp;
	bool ok = true, its;

	for (sp = 34000; sp < 34200 && seen != 3; sp++) {
		fx_client_pkt(&o, s, 9998, (__u16)sp, PKT_ACK);
		pkt_flow_key(&o, &k);
		its = fx_table_pick(s, BGS_BLUE, &k) == be_id;
		if (seen & (its ? 1 : 2))
			continue;
		seen |= its ? 1 : 2;
		fx_reply_pkt(&r, &o, be_id, PKT_ACK);
		if (!its) {
			ok &= fx_expect_reply(&r, b->ifindex, XDP_DROP, BGS_R_DROP_REPLY_NO_FLOW,
					      NULL, "TCP ACK without a flow, not its backend");
			continue;
		}
		fx_expected_reply_kernel(s, &o, &r, s->port, &e);
		ok &= fx_expect_reply(&r, b->ifindex, XDP_PASS, BGS_R_PASS_REPLY_UNTRACKED, &e,
				      "TCP ACK without a flow, from its mid-flow backend");
	}
	return ASSERT_EQ(seen, 3, "tuples of this backend and of another found") && ok;
}

/*
 * Replies without a flow (item 3 and "backend-sourced packets"): a SYN-ACK (its SYN went
 * untracked past the flood guard) and a UDP datagram are translated without an entry, to
 * the FIB's next hop (the kernel's when the client's neighbour is unknown); other TCP only
 * from the backend the flow's next client packet would go to (untracked_tcp_replies); a
 * packet to this host (the agent's health check, an operator's curl to the backend) goes
 * to the kernel untouched.
 */
static bool untracked_replies(const struct variant *v, const struct fx_svc *s, __u32 be_id)
{
	const struct fx_be *b = &fx.be[be_id];
	struct pkt c, r, e;
	char a[INET6_ADDRSTRLEN];
	__u8 flags = v->proto == IPPROTO_TCP ? PKT_SYN | PKT_ACK : 0;
	bool ok = true;

	test_ctx("nat %s: replies without a flow", v->name);
	if (v->proto == IPPROTO_TCP)
		ok &= untracked_tcp_replies(s, be_id);
	fx_client_pkt(&c, s, 9999, 33999, PKT_SYN);
	fx_reply_pkt(&r, &c, be_id, flags);
	/* no neighbour for the client: rewritten, the kernel forwards (TTL and MACs its job) */
	fx_expected_reply_kernel(s, &c, &r, s->port, &e);
	ok &= fx_expect_reply(&r, b->ifindex, XDP_PASS, BGS_R_PASS_REPLY_UNTRACKED, &e,
			      "untracked reply, neighbour unknown");
	/* with the client's neighbour known: out lb0 to it */
	inet_ntop(v->family == BGS_AF_INET ? AF_INET : AF_INET6, c.src, a, sizeof(a));
	ok &= ASSERT_OK(fx_sh("ip neigh replace %s lladdr 02:c1:00:00:99:99 dev lb0 nud "
			      "permanent", a), "client neighbour");
	fx_expected_reply(s, &c, &r, s->port, &e);
	memcpy(e.dmac, (__u8[]){ 0x02, 0xc1, 0, 0, 0x99, 0x99 }, 6);
	memcpy(e.smac, fx.mac_lb0, 6);
	ok &= fx_expect_reply(&r, b->ifindex, XDP_REDIRECT, BGS_R_REPLY_UNTRACKED, &e,
			      "untracked reply");
	ok &= ASSERT_OK(fx_sh("ip neigh del %s dev lb0", a), "client neighbour gone");
	/* to this host's own address on lb1: the kernel's, untouched */
	fx_reply_pkt(&r, &c, be_id, v->proto == IPPROTO_TCP ? PKT_ACK : 0);
	if (v->family == BGS_AF_INET)
		inet_pton(AF_INET, "10.99.1.1", r.dst);
	else
		inet_pton(AF_INET6, "fd00:99:1::1", r.dst);
	ok &= fx_expect_reply(&r, b->ifindex, XDP_PASS, BGS_R_PASS_REPLY_NO_FLOW, NULL,
			      "the host's own connection to a backend");
	/* and from the backend's address on the clients' interface: spoofed */
	fx_reply_pkt(&r, &c, be_id, flags);
	ok &= fx_expect_reply(&r, fx.if_lb0, XDP_DROP, BGS_R_DROP_REPLY_IFACE, NULL,
			      "backend's address on the clients' interface");
	test_ctx("%s", "");
	return ok;
}

static bool scenario_nat(const struct variant *v, bool udp_no_csum)
{
	struct bgs_reason_counter before[BGS_R_MAX];
	struct bgs_counter bc[2], sc;
	__u64 pk[2] = { 0, 0 }, by[2] = { 0, 0 }, nf[2] = { 0, 0 }, tot_pk = 0, tot_by = 0;
	__u8 tmp[PKT_MAX];
	struct bgs_flow_key k;
	struct fx_svc s;
	struct pkt c, r;
	__u32 be[2], id;
	bool ok = true;
	int i, j, len;

	if (!svc_setup(v, BGS_MODE_NAT, &s, be))
		return false;
	for (i = 0; i < NFLOWS; i++) {
		test_ctx("nat %s%s flow %d", v->name, udp_no_csum ? " (no UDP checksum)" : "", i);
		fx_client_pkt(&c, &s, (__u32)i, (__u16)(33000 + i), PKT_SYN);
		c.udp_csum_zero = udp_no_csum;
		pkt_flow_key(&c, &k);
		id = fx_table_pick(&s, BGS_BLUE, &k);
		ok &= expect_counted_fwd(&s, &c, id);
		ok &= expect_reply(&s, &c, id, PKT_SYN | PKT_ACK);
		len = pkt_build(&c, tmp, sizeof(tmp));
		j = id == be[0] ? 0 : 1;
		pk[j]++;
		by[j] += (__u64)len;
		nf[j]++;
		/* the client's next packet and another reply */
		fx_client_pkt(&c, &s, (__u32)i, (__u16)(33000 + i), PKT_ACK);
		c.udp_csum_zero = udp_no_csum;
		ok &= expect_counted_fwd(&s, &c, id);
		ok &= expect_reply(&s, &c, id, PKT_ACK | PKT_PSH);
		len = pkt_build(&c, tmp, sizeof(tmp));
		pk[j]++;
		by[j] += (__u64)len;
		if (!ok)
			break;

		/* the other backend answering for this flow is not the flow's backend: dropped,
		 * not passed untranslated to a kernel that forwards */
		fx_client_pkt(&c, &s, (__u32)i, (__u16)(33000 + i), PKT_ACK);
		c.udp_csum_zero = udp_no_csum;
		fx_reply_pkt(&r, &c, id == be[0] ? be[1] : be[0], PKT_ACK);
		ok &= fx_expect_reply(&r, fx.be[id == be[0] ? be[1] : be[0]].ifindex, XDP_DROP,
				      BGS_R_DROP_REPLY_NO_FLOW, NULL,
				      "reply from a backend that is not the flow's");

		/* a reply about to expire goes to the kernel, untouched */
		fx_reply_pkt(&r, &c, id, PKT_ACK);
		r.ttl = 1;
		len = pkt_build(&r, tmp, sizeof(tmp));
		fx_reasons(before);
		ok &= fx_expect_untouched(&r, fx.be[id].ifindex, XDP_PASS, "reply with TTL 1");
		ok &= fx_expect_reason(before, BGS_R_PASS_TTL, 1, (__u64)len);
	}
	ok &= untracked_replies(v, &s, be[0]);

	/* one conntrack entry per flow serves both directions */
	ok &= ASSERT_EQ(ct_entries_of(&s), NFLOWS, "conntrack entries of the service");

	/* per-backend and per-service counters saw exactly the forwarded packets */
	test_ctx("nat %s: counters", v->name);
	for (j = 0; j < 2; j++) {
		if (!ASSERT_OK(bgs_backend_counters(fx.h, be[j], &bc[j]), "backend counters"))
			continue;
		ok &= ASSERT_EQ(bc[j].packets, pk[j], "backend packets");
		ok &= ASSERT_EQ(bc[j].bytes, by[j], "backend bytes");
		ok &= ASSERT_EQ(bc[j].new_flows, nf[j], "backend new flows");
		tot_pk += pk[j];
		tot_by += by[j];
	}
	if (ASSERT_OK(bgs_svc_counters(fx.h, s.id, BGS_BLUE, &sc), "service counters")) {
		ok &= ASSERT_EQ(sc.packets, tot_pk, "service packets (blue)");
		ok &= ASSERT_EQ(sc.bytes, tot_by, "service bytes (blue)");
		ok &= ASSERT_EQ(sc.new_flows, nf[0] + nf[1], "service new flows (blue)");
	}
	if (ASSERT_OK(bgs_svc_counters(fx.h, s.id, BGS_GREEN, &sc), "service counters"))
		ok &= ASSERT_EQ(sc.packets, 0, "service packets (green)");
	test_ctx("%s", "");
	return fx_svc_del(&s) && ok;
}

static bool test_nat_forward_and_reply(void)
{
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(variants); i++)
		ok &= scenario_nat(&variants[i], false);
	/* IPv4 UDP without a checksum must stay without one, both ways */
	ok &= scenario_nat(&variants[1], true);
	return ok;
}

static bool scenario_dsr(const struct variant *v)
{
	struct bgs_reason_counter before[BGS_R_MAX];
	__u8 tmp[PKT_MAX];
	struct bgs_flow_key k;
	struct fx_svc s;
	struct pkt c, r;
	__u32 be[2], id;
	bool ok = true;
	int i, len;

	if (!svc_setup(v, BGS_MODE_DSR, &s, be))
		return false;
	for (i = 0; i < NFLOWS; i++) {
		test_ctx("dsr %s flow %d", v->name, i);
		fx_client_pkt(&c, &s, (__u32)i, (__u16)(34000 + i), PKT_SYN);
		/* dsr routes at layer 2: a TTL of 1 is the next router's business */
		if (i == 1)
			c.ttl = 1;
		pkt_flow_key(&c, &k);
		id = fx_table_pick(&s, BGS_BLUE, &k);
		/* fx_expect_fwd builds the expected frame: MACs changed, every other byte equal */
		ok &= expect_counted_fwd(&s, &c, id);
		fx_client_pkt(&c, &s, (__u32)i, (__u16)(34000 + i), PKT_ACK);
		ok &= expect_counted_fwd(&s, &c, id);
		/* a dsr backend answers the client itself: if its packet shows up here it is
		 * not ours to rewrite */
		fx_reply_pkt(&r, &c, id, PKT_ACK);
		memcpy(r.src, s.vip.addr, 16);
		len = pkt_build(&r, tmp, sizeof(tmp));
		fx_reasons(before);
		ok &= fx_expect_untouched(&r, fx.be[id].ifindex, XDP_PASS, "dsr backend's answer");
		ok &= fx_expect_reason(before, BGS_R_PASS_NOT_VIP, 1, (__u64)len);
		if (!ok)
			break;
	}
	test_ctx("%s", "");
	return fx_svc_del(&s) && ok;
}

static bool test_dsr_rewrites_only_macs(void)
{
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(variants); i++)
		ok &= scenario_dsr(&variants[i]);
	return ok;
}

/* Backends without a resolved next hop: nat hands the rewritten packet to the kernel (which
 * resolves, decrements the TTL and forwards); dsr cannot, and drops it, counted. */
static bool scenario_unresolved(const struct variant *v, __u8 mode)
{
	struct bgs_reason_counter before[BGS_R_MAX];
	__u16 port = mode == BGS_MODE_NAT ? 8080 : 0;
	__u8 tmp[PKT_MAX];
	struct fx_svc s;
	struct pkt c;
	char name[32];
	__u32 id;
	bool ok = true;
	int i, len;

	snprintf(name, sizeof(name), "u%d_%s", next_vip, v->name);
	if (!fx_svc_add(&s, name, v->family, next_vip++, 80, v->proto, mode, 0))
		return false;
	if (!fx_be_add(&s, BGS_BLUE, FX_NET_BACKEND, next_unresolved_n++, port, 0, &id))
		goto fail;
	for (i = 0; i < 8; i++) {
		test_ctx("unresolved %s %s flow %d", mode == BGS_MODE_NAT ? "nat" : "dsr", v->name,
			 i);
		fx_client_pkt(&c, &s, (__u32)i, (__u16)(35000 + i), i & 1 ? PKT_ACK : PKT_SYN);
		len = pkt_build(&c, tmp, sizeof(tmp));
		fx_reasons(before);
		if ((i & 1) && v->proto == IPPROTO_TCP) {
			/* a TCP ACK without an entry also counts as a mid-flow packet */
			before[BGS_R_CT_MIDFLOW].packets++;
			before[BGS_R_CT_MIDFLOW].bytes += (__u64)len;
		}
		/* fx_expected_fwd: nat -> XDP_PASS, address rewritten, TTL and MACs as they
		 * were; dsr -> XDP_DROP */
		ok &= fx_expect_fwd(&s, &c, id);
		ok &= fx_expect_reason(before, mode == BGS_MODE_NAT ? BGS_R_PASS_NO_NEXTHOP :
				       BGS_R_DROP_NO_NEXTHOP, 1, (__u64)len);
	}
out:
	test_ctx("%s", "");
	return fx_svc_del(&s) && ok;
fail:
	ok = false;
	goto out;
}

static bool test_unresolved_next_hop(void)
{
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(variants); i++) {
		ok &= scenario_unresolved(&variants[i], BGS_MODE_NAT);
		ok &= scenario_unresolved(&variants[i], BGS_MODE_DSR);
	}
	return ok;
}

/*
 * An ICMP error about a packet the service sent to a client (e.g. "fragmentation needed"
 * from a router on the client's path), addressed to the VIP, goes to the flow's backend.
 * dsr: MACs only. nat: outer destination -> backend, TTL - 1, quoted source address and
 * port -> the backend's, quoted IPv4 header checksum fixed, ICMP checksum right; the quoted
 * L4 checksum is left as it was.
 */
static bool icmp_error_case(const struct fx_svc *s, __u32 client, __u16 sport, __u32 be_id)
{
	const struct fx_be *b = &fx.be[be_id];
	struct bgs_reason_counter before[BGS_R_MAX];
	__u8 quote[PKT_MAX], equote[PKT_MAX], in[PKT_MAX], eb[PKT_MAX];
	struct pkt c, q, e, err;
	struct fx_out o;
	int qlen, hl = s->family == BGS_AF_INET ? 20 : 40, len, elen, keep;
	__u32 verdict;
	bool ok;

	fx_client_pkt(&c, s, client, sport, PKT_ACK);
	/* the packet the service sent: VIP:port -> client:sport, as the client saw it */
	memset(&q, 0, sizeof(q));
	q.family = s->family;
	memcpy(q.src, s->vip.addr, 16);
	memcpy(q.dst, c.src, 16);
	q.proto = s->proto;
	q.ttl = 57;
	q.sport = s->port;
	q.dport = sport;
	q.tcp_flags = PKT_ACK;
	q.seq = 5;
	q.payload_len = 1200;
	qlen = pkt_build_l3(&q, quote, sizeof(quote));
	/* routers quote the IP header and at least 8 bytes: keep 8 of L4 for IPv4, 28 for v6 */
	keep = hl + (s->family == BGS_AF_INET ? 8 : 28);
	if (!ASSERT_GT(qlen, keep, "quote built"))
		return false;
	memcpy(equote, quote, (size_t)keep);
	if (s->mode == BGS_MODE_NAT) {
		/* quoted source becomes the backend (address and port) */
		if (s->family == BGS_AF_INET) {
			memcpy(equote + 12, b->ip.addr, 4);
			equote[10] = equote[11] = 0;
			{
				__u16 cs = pkt_csum_fold(pkt_csum_partial(equote, 20, 0));

				equote[10] = (__u8)(cs >> 8);
				equote[11] = (__u8)cs;
			}
		} else {
			memcpy(equote + 8, b->ip.addr, 16);
		}
		equote[hl] = (__u8)(b->port >> 8);
		equote[hl + 1] = (__u8)b->port;
	}

	memset(&err, 0, sizeof(err));
	memcpy(err.dmac, fx.mac_lb0, 6);
	memcpy(err.smac, fx.mac_cl0, 6);
	err.family = s->family;
	fx_client_ip(s->family, 60000 + client, err.src); /* some router near the client */
	memcpy(err.dst, s->vip.addr, 16);
	err.ttl = 60;
	if (s->family == BGS_AF_INET) {
		err.proto = IPPROTO_ICMP;
		err.icmp_type = 3; /* destination unreachable */
		err.icmp_code = 4; /* fragmentation needed */
		err.icmp_rest = 1400;
	} else {
		err.proto = IPPROTO_ICMPV6;
		err.icmp_type = 2; /* packet too big */
		err.icmp_rest = 1400;
	}
	err.payload = quote;
	err.payload_len = (__u16)keep;
	len = pkt_build(&err, in, sizeof(in));

	e = err;
	memcpy(e.dmac, b->mac, 6);
	memcpy(e.smac, b->smac, 6);
	if (s->mode == BGS_MODE_NAT) {
		memcpy(e.dst, b->ip.addr, 16);
		e.ttl = err.ttl - 1;
		e.payload = equote;
	}
	elen = pkt_build(&e, eb, sizeof(eb));
	verdict = b->ifindex == fx.if_lb0 ? XDP_TX : XDP_REDIRECT;

	fx_reasons(before);
	if (!ASSERT_OK(fx_run(in, (__u32)len, fx.if_lb0, &o), "test run"))
		return false;
	if (o.retval != verdict) {
		FAILF("ICMP error: verdict %s, expected %s", fx_xdp_str(o.retval),
		      fx_xdp_str(verdict));
		return false;
	}
	ok = pkt_expect_frame("ICMP error to the flow's backend", o.data, o.len, eb, (size_t)elen,
			      true);
	ok &= fx_expect_reason(before, BGS_R_ICMP_FWD, 1, (__u64)len);

	/* the same error about a flow nobody tracks goes to the kernel untouched */
	fx_client_ip(s->family, client + 5000, q.dst);
	qlen = pkt_build_l3(&q, quote, sizeof(quote));
	len = pkt_build(&err, in, sizeof(in));
	fx_reasons(before);
	ok &= fx_expect_untouched(&err, fx.if_lb0, XDP_PASS, "ICMP error about no flow");
	ok &= fx_expect_reason(before, BGS_R_PASS_ICMP, 1, (__u64)len);
	return ok;
}

static bool test_icmp_errors_follow_flow(void)
{
	bool ok = true;
	size_t i;
	int m;

	for (m = 0; m < 2; m++) {
		for (i = 0; i < ARRAY_SIZE(variants); i++) {
			const struct variant *v = &variants[i];
			struct fx_svc s;
			__u32 be[2], id;
			int f;

			if (!svc_setup(v, m ? BGS_MODE_DSR : BGS_MODE_NAT, &s, be))
				return false;
			for (f = 0; f < 8; f++) {
				test_ctx("ICMP error %s %s flow %d", m ? "dsr" : "nat", v->name, f);
				if (!fx_flow_new(&s, (__u32)f, (__u16)(36000 + f), BGS_BLUE, &id)) {
					ok = false;
					continue;
				}
				ok &= icmp_error_case(&s, (__u32)f, (__u16)(36000 + f), id);
			}
			test_ctx("%s", "");
			ok &= fx_svc_del(&s);
		}
	}
	return ok;
}

/*
 * An ICMP error from the backend side about a nat flow (a router between the LB and the
 * backend sends Fragmentation Needed / Packet Too Big to the client, quoting client ->
 * backend:port): the quote is rewritten to client -> VIP:port (quoted IPv4 header and ICMP
 * checksums right) and the error goes the flow's way to the client, TTL one less, so the
 * client's path-MTU discovery works. From the clients' interface it is not taken.
 */
static bool icmp_from_backend_case(const struct fx_svc *s, __u32 client, __u16 sport,
				   __u32 be_id)
{
	const struct fx_be *b = &fx.be[be_id];
	__u8 quote[PKT_MAX], equote[PKT_MAX];
	struct pkt c, q, err, e;
	int qlen, hl = s->family == BGS_AF_INET ? 20 : 40, keep;
	bool ok = true;

	fx_client_pkt(&c, s, client, sport, PKT_ACK);
	/* the packet as the backend's side saw it: client:sport -> backend:port */
	memset(&q, 0, sizeof(q));
	q.family = s->family;
	memcpy(q.src, c.src, 16);
	memcpy(q.dst, b->ip.addr, 16);
	q.proto = s->proto;
	q.ttl = 62;
	q.sport = sport;
	q.dport = b->port;
	q.tcp_flags = PKT_ACK;
	q.seq = 77;
	q.payload_len = 1400;
	qlen = pkt_build_l3(&q, quote, sizeof(quote));
	keep = hl + (s->family == BGS_AF_INET ? 8 : 28);
	if (!ASSERT_GT(qlen, keep, "quote built"))
		return false;
	/* expected quote: destination VIP:port, the quoted IPv4 header checksum redone */
	memcpy(equote, quote, (size_t)keep);
	if (s->family == BGS_AF_INET) {
		__u16 cs;

		memcpy(equote + 16, s->vip.addr, 4);
		equote[10] = equote[11] = 0;
		cs = pkt_csum_fold(pkt_csum_partial(equote, 20, 0));
		equote[10] = (__u8)(cs >> 8);
		equote[11] = (__u8)cs;
	} else {
		memcpy(equote + 24, s->vip.addr, 16);
	}
	equote[hl + 2] = (__u8)(s->port >> 8);
	equote[hl + 3] = (__u8)s->port;

	memset(&err, 0, sizeof(err));
	memcpy(err.dmac, b->smac, 6);
	memcpy(err.smac, b->mac, 6);
	err.family = s->family;
	if (s->family == BGS_AF_INET)
		pkt_addr(BGS_AF_INET, "10.99.1.254", err.src); /* a router on the backends' side */
	else
		pkt_addr(BGS_AF_INET6, "fd00:99:1::fe", err.src);
	memcpy(err.dst, c.src, 16);
	err.ttl = 60;
	if (s->family == BGS_AF_INET) {
		err.proto = IPPROTO_ICMP;
		err.icmp_type = 3;
		err.icmp_code = 4;
		err.icmp_rest = 1300;
	} else {
		err.proto = IPPROTO_ICMPV6;
		err.icmp_type = 2;
		err.icmp_rest = 1300;
	}
	err.payload = quote;
	err.payload_len = (__u16)keep;
	e = err;
	memcpy(e.dmac, c.smac, 6);
	memcpy(e.smac, c.dmac, 6);
	e.ttl = err.ttl - 1;
	e.payload = equote;
	ok &= fx_expect_reply(&err, b->ifindex, b->ifindex == fx.if_lb0 ? XDP_TX : XDP_REDIRECT,
			      BGS_R_ICMP_TO_CLIENT, &e, "ICMP error from the backend side");
	if (b->ifindex != fx.if_lb0) {
		/* the same error arriving on the clients' interface is not the backend side's */
		struct bgs_reason_counter before[BGS_R_MAX];
		__u8 tmp[PKT_MAX];
		int len = pkt_build(&err, tmp, sizeof(tmp));

		fx_reasons(before);
		ok &= fx_expect_untouched(&err, fx.if_lb0, XDP_PASS, "from the clients' side");
		ok &= fx_expect_reason(before, BGS_R_PASS_NOT_VIP, 1, (__u64)len);
	}
	return ok;
}

static bool test_icmp_from_backend_side(void)
{
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(variants); i++) {
		const struct variant *v = &variants[i];
		struct fx_svc s;
		__u32 be[2], id;
		int f;

		if (!svc_setup(v, BGS_MODE_NAT, &s, be))
			return false;
		for (f = 0; f < 8; f++) {
			test_ctx("ICMP error from the backend side, %s flow %d", v->name, f);
			if (!fx_flow_new(&s, (__u32)f, (__u16)(37000 + f), BGS_BLUE, &id)) {
				ok = false;
				continue;
			}
			ok &= icmp_from_backend_case(&s, (__u32)f, (__u16)(37000 + f), id);
		}
		test_ctx("%s", "");
		ok &= fx_svc_del(&s);
	}
	return ok;
}

/*
 * The reply path refreshes last_seen: a server-push UDP nat flow whose client stays quiet
 * longer than the UDP timeout keeps its backend while the backend keeps sending.
 */
static bool test_reply_keeps_flow_alive(void)
{
	struct bgs_flip_opts fo = { .to_color = BGS_GREEN, .expect_gen = BGS_ANY_GEN,
				    .drain_ms = BGS_NO_DEADLINE };
	const __u64 step = (BGS_DEF_TIMEOUT_UDP - 20) * (__u64)fx.meta.hz;
	size_t vi;
	bool ok = true;

	for (vi = 1; vi < ARRAY_SIZE(variants); vi += 2) { /* v4 and v6 UDP */
		const struct variant *v = &variants[vi];
		struct fx_svc s;
		struct pkt c, r, e;
		__u32 be[2], id, gid;

		test_ctx("%s", v->name);
		if (!svc_setup(v, BGS_MODE_NAT, &s, be) ||
		    !fx_be_add(&s, BGS_GREEN, FX_NET_BACKEND, next_n++, 8080, 0, &gid))
			return false;
		ok &= fx_flow_new(&s, 1, 38000, BGS_BLUE, &id);
		ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &fo, NULL), 1, "flip, blue drains");
		fx_client_pkt(&c, &s, 1, 38000, 0);
		/* the backend sends, the client is quiet: twice nearly the UDP timeout */
		ok &= fx_age_flow(&c, step);
		fx_reply_pkt(&r, &c, id, 0);
		fx_expected_reply(&s, &c, &r, s.port, &e);
		ok &= fx_expect_reply(&r, fx.be[id].ifindex, fx.be[id].ifindex == fx.if_lb0 ?
				      XDP_TX : XDP_REDIRECT, fx.be[id].ifindex == fx.if_lb0 ?
				      BGS_R_REPLY_TX : BGS_R_REPLY_REDIRECT, &e, "server push");
		ok &= fx_age_flow(&c, step);
		/* the client's next datagram: still its blue backend, not a new flow on green */
		ok &= fx_expect_fwd(&s, &c, id);
		ok &= fx_svc_del(&s);
	}
	test_ctx("%s", "");
	return ok;
}

/* Counters of be[0], be[1] and the service's blue pool, in that order. */
static bool reset_counters(const struct fx_svc *s, const __u32 be[2], struct bgs_counter c[3])
{
	return ASSERT_OK(bgs_backend_counters(fx.h, be[0], &c[0]), "backend counters") &&
	       ASSERT_OK(bgs_backend_counters(fx.h, be[1], &c[1]), "backend counters") &&
	       ASSERT_OK(bgs_svc_counters(fx.h, s->id, BGS_BLUE, &c[2]), "service counters");
}

/* Since `before`, be[j] counted d[j] more resets (blue: their sum) and nothing else moved;
 * the green pool, which has no backend, counted nothing at all. */
static bool resets_moved(const struct fx_svc *s, const __u32 be[2],
			 const struct bgs_counter before[3], const __u64 d[2], const char *when)
{
	static const char *const who[3] = { "backend 0", "backend 1", "blue pool" };
	const __u64 want[3] = { d[0], d[1], d[0] + d[1] };
	struct bgs_counter now[3], green;
	bool ok = true;
	int k;

	test_ctx("%s", when);
	if (!reset_counters(s, be, now))
		return false;
	for (k = 0; k < 3; k++) {
		ok &= ASSERT_EQ(now[k].resets - before[k].resets, want[k], who[k]);
		ok &= ASSERT_EQ(now[k].packets, before[k].packets, who[k]);
		ok &= ASSERT_EQ(now[k].bytes, before[k].bytes, who[k]);
		ok &= ASSERT_EQ(now[k].new_flows, before[k].new_flows, who[k]);
	}
	if (ASSERT_OK(bgs_svc_counters(fx.h, s->id, BGS_GREEN, &green), "green counters"))
		ok &= ASSERT_EQ(green.packets + green.bytes + green.new_flows + green.resets, 0,
				"green pool");
	return ok;
}

/*
 * The reset counter (nat, v4 and v6): a backend's RST for its tracked flow, on its own
 * interface, counts once for that backend and its color; other replies, and an RST from
 * the backend's address on another interface (spoofed: dropped), count nothing.
 */
static bool test_nat_backend_resets(void)
{
	size_t vi;
	bool ok = true;

	for (vi = 0; vi < ARRAY_SIZE(variants); vi += 2) { /* v4 and v6 TCP */
		const struct variant *v = &variants[vi];
		struct bgs_counter before[3];
		struct pkt c[2], r;
		struct fx_svc s;
		__u32 be[2], id, i;
		bool have[2] = { false, false };
		int j;

		test_ctx("%s: flows", v->name);
		if (!svc_setup(v, BGS_MODE_NAT, &s, be))
			return false;
		/* one tracked flow per backend, answered with a SYN-ACK */
		for (i = 0; i < 64 && !(have[0] && have[1]); i++) {
			if (!fx_flow_new(&s, i, (__u16)(39000 + i), BGS_BLUE, &id))
				return false;
			j = id == be[0] ? 0 : 1;
			if (have[j])
				continue;
			have[j] = true;
			fx_client_pkt(&c[j], &s, i, (__u16)(39000 + i), PKT_SYN);
			ok &= expect_reply(&s, &c[j], id, PKT_SYN | PKT_ACK);
		}
		if (!ASSERT_TRUE(have[0] && have[1], "a flow on each backend"))
			return false;
		ok &= reset_counters(&s, be, before);

		test_ctx("%s: replies without RST", v->name);
		for (j = 0; j < 2; j++)
			ok &= expect_reply(&s, &c[j], be[j], PKT_ACK | PKT_PSH);
		/* backend 0 closes its flow first; its RST below still counts */
		ok &= expect_reply(&s, &c[0], be[0], PKT_FIN | PKT_ACK);
		ok &= resets_moved(&s, be, before, (__u64[]){ 0, 0 }, "no RST, no reset");

		/* be[0] sits behind lb1: its address on lb0 is not the backend */
		test_ctx("%s: spoofed RST", v->name);
		fx_reply_pkt(&r, &c[0], be[0], PKT_RST | PKT_ACK);
		ok &= fx_expect_reply(&r, fx.if_lb0, XDP_DROP, BGS_R_DROP_REPLY_IFACE, NULL,
				      "RST from the backend's address on the clients' interface");
		ok &= resets_moved(&s, be, before, (__u64[]){ 0, 0 }, "spoofed RST");

		test_ctx("%s: backend RST", v->name);
		ok &= expect_reply(&s, &c[1], be[1], PKT_RST | PKT_ACK);
		ok &= resets_moved(&s, be, before, (__u64[]){ 0, 1 }, "RST of backend 1");
		ok &= expect_reply(&s, &c[0], be[0], PKT_RST);
		ok &= resets_moved(&s, be, before, (__u64[]){ 1, 1 }, "RST of backend 0");
		ok &= fx_svc_del(&s);
	}
	test_ctx("%s", "");
	return ok;
}

static const struct test_case tests[] = {
	{ "nat_forward_and_reply", test_nat_forward_and_reply },
	{ "dsr_rewrites_only_macs", test_dsr_rewrites_only_macs },
	{ "unresolved_next_hop", test_unresolved_next_hop },
	{ "icmp_errors_follow_flow", test_icmp_errors_follow_flow },
	{ "icmp_from_backend_side", test_icmp_from_backend_side },
	{ "reply_keeps_flow_alive", test_reply_keeps_flow_alive },
	{ "nat_backend_resets", test_nat_backend_resets },
};

int main(int argc, char **argv)
{
	struct bgs_sizes sz = { .max_services = 16, .max_backends = 256, .maglev_size = 1021,
				.ct_entries = 65536 };

	return fx_main(argc, argv, &sz, tests, ARRAY_SIZE(tests), 120);
}
