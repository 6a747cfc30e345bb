// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Routing across flips (issue items 1 and 2), for IPv4 and IPv6, TCP and UDP, nat and dsr:
 * new flows go to the live color's table choice; after a flip new flows go to the new
 * color while established flows keep their backend; rollback likewise the other way; a
 * retransmitted SYN keeps its choice; a mid-flow TCP packet without an entry goes to the
 * draining color during a drain and to the live one otherwise; a SYN reusing a closed
 * flow's tuple is a new flow. Every forwarded packet is checked byte for byte.
 */
#include <errno.h>
#include <netinet/in.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include "bgswitch_hash.h"
#include "fixture.h"

struct variant {
	const char *name;
	__u8 family, proto, mode;
};

static const struct variant variants[] = {
	{ "v4_tcp_nat", BGS_AF_INET, IPPROTO_TCP, BGS_MODE_NAT },
	{ "v4_udp_nat", BGS_AF_INET, IPPROTO_UDP, BGS_MODE_NAT },
	{ "v6_tcp_nat", BGS_AF_INET6, IPPROTO_TCP, BGS_MODE_NAT },
	{ "v6_udp_nat", BGS_AF_INET6, IPPROTO_UDP, BGS_MODE_NAT },
	{ "v4_tcp_dsr", BGS_AF_INET, IPPROTO_TCP, BGS_MODE_DSR },
	{ "v4_udp_dsr", BGS_AF_INET, IPPROTO_UDP, BGS_MODE_DSR },
	{ "v6_tcp_dsr", BGS_AF_INET6, IPPROTO_TCP, BGS_MODE_DSR },
	{ "v6_udp_dsr", BGS_AF_INET6, IPPROTO_UDP, BGS_MODE_DSR },
};

#define NFLOWS 48

/* Each scenario gets fresh services; backend numbers never repeat within the binary. */
static int next_n = 10;
static int next_vip = 1;

/* A service with two blue backends behind lb1 and two green ones, one behind lb1 and one
 * on the clients' side (so both XDP_REDIRECT and XDP_TX are exercised). */
static bool setup(const struct variant *v, struct fx_svc *s, __u32 be[4])
{
	char name[32];
	__u16 port = v->mode == BGS_MODE_DSR ? 0 : 8080;
	bool ok = true;

	snprintf(name, sizeof(name), "r%d_%s", next_vip, v->name);
	if (!fx_svc_add(s, name, v->family, next_vip++, 80, v->proto, v->mode, 0))
		return false;
	ok &= fx_be_add(s, BGS_BLUE, FX_NET_BACKEND, next_n++, port, 0, &be[0]);
	ok &= fx_be_add(s, BGS_BLUE, FX_NET_BACKEND, next_n++, port, 0, &be[1]);
	ok &= fx_be_add(s, BGS_GREEN, FX_NET_BACKEND, next_n++, port, 0, &be[2]);
	ok &= fx_be_add(s, BGS_GREEN, FX_NET_CLIENT, next_n++, port, 0, &be[3]);
	return ok;
}

static bool flip(const struct fx_svc *s, int to, __u64 drain_ms, struct bgs_flip *after)
{
	struct bgs_flip_opts o = { .to_color = to, .expect_gen = BGS_ANY_GEN,
				   .drain_ms = drain_ms };
	struct bgs_flip before;
	bool ok = true;

	if (!fx_flip_get(s, &before))
		return false;
	ok &= ASSERT_EQ(bgs_flip(fx.h, s->id, &o, after), 1, "flip changes something");
	ok &= ASSERT_EQ(bgs_fw_live(after->word), (__u32)to, "live color after the flip");
	ok &= ASSERT_TRUE(after->word & BGS_FW_DRAINING, "a flip starts a drain");
	ok &= ASSERT_EQ(bgs_fw_canary(after->word), 0, "a flip resets the canary");
	ok &= ASSERT_GT(bgs_fw_gen(after->word), bgs_fw_gen(before.word), "generation grows");
	return ok;
}

static bool counters_new_flows(const struct fx_svc *s, __u64 exp[2], const char *when)
{
	struct bgs_counter c;
	bool ok = true;
	__u32 col;

	for (col = 0; col < 2; col++) {
		if (!ASSERT_OK(bgs_svc_counters(fx.h, s->id, col, &c), "svc counters"))
			return false;
		test_ctx("%s, color %u", when, col);
		ok &= ASSERT_EQ(c.new_flows, exp[col], "new flows counted per color");
	}
	return ok;
}

static bool scenario_flip_rollback(const struct variant *v)
{
	__u32 be[4], blue_flows[NFLOWS], green_flows[NFLOWS], id;
	__u64 newf[2] = { 0, 0 };
	struct bgs_flip after;
	struct fx_svc s;
	bool ok = true;
	int i;

	if (!setup(v, &s, be))
		return false;

	test_ctx("%s: before any flip", v->name);
	for (i = 0; i < NFLOWS; i++)
		ok &= fx_flow_new(&s, (__u32)i, (__u16)(20000 + i), BGS_BLUE, &blue_flows[i]);
	newf[BGS_BLUE] += NFLOWS;
	ok &= counters_new_flows(&s, newf, "after blue flows");
	if (!ok)
		goto out;

	test_ctx("%s: flip to green", v->name);
	if (!flip(&s, BGS_GREEN, BGS_NO_DEADLINE, &after))
		goto fail;
	for (i = 0; i < NFLOWS; i++)
		ok &= fx_flow_next(&s, (__u32)i, (__u16)(20000 + i), blue_flows[i]);
	for (i = 0; i < NFLOWS; i++)
		ok &= fx_flow_new(&s, (__u32)i, (__u16)(30000 + i), BGS_GREEN, &green_flows[i]);
	newf[BGS_GREEN] += NFLOWS;
	ok &= counters_new_flows(&s, newf, "after the flip");
	if (!ok)
		goto out;

	test_ctx("%s: rollback to blue", v->name);
	if (!flip(&s, BGS_BLUE, BGS_NO_DEADLINE, &after))
		goto fail;
	for (i = 0; i < NFLOWS; i++) {
		ok &= fx_flow_next(&s, (__u32)i, (__u16)(20000 + i), blue_flows[i]);
		ok &= fx_flow_next(&s, (__u32)i, (__u16)(30000 + i), green_flows[i]);
	}
	for (i = 0; i < NFLOWS; i++)
		ok &= fx_flow_new(&s, (__u32)i, (__u16)(40000 + i), BGS_BLUE, &id);
	newf[BGS_BLUE] += NFLOWS;
	ok &= counters_new_flows(&s, newf, "after the rollback");

	/* a flip to the live color is a no-op */
	{
		struct bgs_flip_opts o = { .to_color = BGS_BLUE, .expect_gen = BGS_ANY_GEN,
					   .drain_ms = BGS_NO_DEADLINE };
		struct bgs_flip before, now;

		fx_flip_get(&s, &before);
		ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, &now), 0, "flip --to live color");
		ok &= ASSERT_EQ(now.word, before.word, "no-op flip publishes nothing");
	}
out:
	test_ctx("%s", "");
	return fx_svc_del(&s) && ok;
fail:
	ok = false;
	goto out;
}

static bool test_flip_and_rollback(void)
{
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(variants); i++)
		ok &= scenario_flip_rollback(&variants[i]);
	return ok;
}

/*
 * TCP: a retransmitted SYN keeps its backend across a flip. A SYN reusing the tuple of a
 * closed (FIN or RST) flow is a new flow only once the flow has been quiet for the
 * TIME_WAIT-like interval (item 2): an off-path RST then SYN on the client's tuple cannot
 * move a live connection. In dsr the client's FIN/RST close; in nat only the backend's
 * own FIN/RST (reply path, from its interface) do — a confirmed close, after which a SYN is
 * a new connection at once — and a RST with the backend's address arriving on the
 * client-facing interface is dropped and changes nothing (item 6).
 */
static bool scenario_retransmit(const struct variant *v)
{
	__u32 be[4], first[NFLOWS], id;
	__u64 hz = fx.meta.hz;
	struct bgs_flip before, after;
	struct fx_svc s;
	struct pkt p;
	bool ok = true;
	int i;

	if (!setup(v, &s, be))
		return false;
	test_ctx("%s: SYNs on blue", v->name);
	for (i = 0; i < NFLOWS; i++)
		ok &= fx_flow_new(&s, (__u32)i, (__u16)(21000 + i), BGS_BLUE, &first[i]);
	if (!ok || !fx_flip_get(&s, &before) || !flip(&s, BGS_GREEN, BGS_NO_DEADLINE, &after))
		goto fail;

	test_ctx("%s: retransmitted SYNs after the flip", v->name);
	for (i = 0; i < NFLOWS; i++) {
		fx_client_pkt(&p, &s, (__u32)i, (__u16)(21000 + i), PKT_SYN);
		ok &= fx_expect_fwd(&s, &p, first[i]);
		ok &= fx_flow_check_ct(&s, &p, first[i], BGS_BLUE, bgs_fw_gen(before.word));
	}

	test_ctx("%s: the client's RST or FIN, then at once a SYN on the tuple", v->name);
	for (i = 0; i < NFLOWS; i++) {
		fx_client_pkt(&p, &s, (__u32)i, (__u16)(21000 + i),
			      (i & 1) ? (PKT_FIN | PKT_ACK) : PKT_RST);
		ok &= fx_expect_fwd(&s, &p, first[i]);
		fx_client_pkt(&p, &s, (__u32)i, (__u16)(21000 + i), PKT_SYN);
		ok &= fx_expect_fwd(&s, &p, first[i]);
	}
	if (v->mode == BGS_MODE_NAT) {
		struct pkt r;

		test_ctx("%s: nat, quiet for TIME_WAIT after the client's RST/FIN", v->name);
		for (i = 0; i < NFLOWS; i++) {
			fx_client_pkt(&p, &s, (__u32)i, (__u16)(21000 + i), PKT_SYN);
			ok &= fx_age_flow(&p, (BGS_DEF_TIME_WAIT + 2) * hz);
			ok &= fx_expect_fwd(&s, &p, first[i]);
		}
		test_ctx("%s: nat, the backend's RST from the client-facing interface", v->name);
		for (i = 0; i < NFLOWS; i++) {
			fx_client_pkt(&p, &s, (__u32)i, (__u16)(21000 + i), PKT_ACK);
			fx_reply_pkt(&r, &p, first[i], PKT_RST | PKT_ACK);
			ok &= fx_expect_reply(&r, fx.if_lb0, XDP_DROP, BGS_R_DROP_REPLY_IFACE, NULL,
					      "backend's RST on the clients' interface");
			fx_client_pkt(&p, &s, (__u32)i, (__u16)(21000 + i), PKT_SYN);
			ok &= fx_age_flow(&p, (BGS_DEF_TIME_WAIT + 2) * hz);
			ok &= fx_expect_fwd(&s, &p, first[i]);
		}
		test_ctx("%s: nat, the backend's own FIN/RST close", v->name);
		for (i = 0; i < NFLOWS; i++) {
			struct pkt e;

			fx_client_pkt(&p, &s, (__u32)i, (__u16)(21000 + i), PKT_ACK);
			fx_reply_pkt(&r, &p, first[i], (i & 1) ? (PKT_FIN | PKT_ACK) : PKT_RST);
			fx_expected_reply(&s, &p, &r, s.port, &e);
			ok &= fx_expect_reply(&r, fx.be[first[i]].ifindex,
					      fx.be[first[i]].ifindex == fx.if_lb0 ? XDP_TX :
					      XDP_REDIRECT, fx.be[first[i]].ifindex == fx.if_lb0 ?
					      BGS_R_REPLY_TX : BGS_R_REPLY_REDIRECT, &e,
					      "backend's own close");
		}
	}
	if (v->mode == BGS_MODE_NAT) {
		/* closed by the backend itself: a SYN is a new connection at once (a client that
		 * reuses its port at once gets today's choice) */
		test_ctx("%s: closed by the backend, a SYN at once re-picks", v->name);
		for (i = 0; i < NFLOWS; i++)
			ok &= fx_flow_new(&s, (__u32)i, (__u16)(21000 + i), BGS_GREEN, &id);
		goto out;
	}
	test_ctx("%s: closed, a SYN before TIME_WAIT keeps, after it re-picks", v->name);
	for (i = 0; i < NFLOWS; i++) {
		fx_client_pkt(&p, &s, (__u32)i, (__u16)(21000 + i), PKT_SYN);
		ok &= fx_age_flow(&p, (BGS_DEF_TIME_WAIT - 2) * hz);
		ok &= fx_expect_fwd(&s, &p, first[i]);
		ok &= fx_age_flow(&p, (BGS_DEF_TIME_WAIT + 2) * hz);
		ok &= fx_flow_new(&s, (__u32)i, (__u16)(21000 + i), BGS_GREEN, &id);
	}
out:
	test_ctx("%s", "");
	return fx_svc_del(&s) && ok;
fail:
	ok = false;
	goto out;
}

static bool test_retransmitted_syn(void)
{
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(variants); i++)
		if (variants[i].proto == IPPROTO_TCP)
			ok &= scenario_retransmit(&variants[i]);
	return ok;
}

/* A mid-flow TCP packet without an entry: live color before any flip, the draining color
 * while a drain runs, the live color once the drain ended. It is tracked from then on; an
 * entry on the draining color records the generation before the drain's flip (the drain
 * ends for it too). */
static bool midflow(const struct fx_svc *s, __u32 client, __u16 sport, __u32 color)
{
	struct bgs_flow_key k;
	struct bgs_flip fl;
	struct pkt p;
	__u32 id;
	bool ok;

	fx_client_pkt(&p, s, client, sport, PKT_ACK);
	pkt_flow_key(&p, &k);
	if (!ASSERT_FALSE(fx_ct_get(&p, &(struct bgs_flow){}), "no entry before") ||
	    !fx_flip_get(s, &fl))
		return false;
	id = fx_table_pick_word(s, fl.word, color, &k);
	ok = fx_expect_fwd(s, &p, id);
	ok &= fx_flow_check_ct(s, &p, id, color,
			       color != bgs_fw_live(fl.word) ? bgs_fw_gen(fl.word) - 1 :
							       bgs_fw_gen(fl.word));
	/* and the flow stays there */
	ok &= fx_flow_next(s, client, sport, id);
	return ok;
}

static bool scenario_midflow(const struct variant *v)
{
	struct bgs_flip after;
	struct fx_svc s;
	__u32 be[4];
	bool ok = true;
	int i;

	if (!setup(v, &s, be))
		return false;
	test_ctx("%s: no flip yet", v->name);
	for (i = 0; i < NFLOWS; i++)
		ok &= midflow(&s, (__u32)i, (__u16)(22000 + i), BGS_BLUE);
	if (!flip(&s, BGS_GREEN, BGS_NO_DEADLINE, &after))
		goto fail;
	test_ctx("%s: draining blue", v->name);
	for (i = 0; i < NFLOWS; i++)
		ok &= midflow(&s, (__u32)i, (__u16)(23000 + i), BGS_BLUE);
	test_ctx("%s: drain ended", v->name);
	if (!ASSERT_OK(bgs_drain_end(fx.h, s.id, &after), "drain end") ||
	    !ASSERT_FALSE(after.word & BGS_FW_DRAINING, "drain bit cleared"))
		goto fail;
	for (i = 0; i < NFLOWS; i++)
		ok &= midflow(&s, (__u32)i, (__u16)(24000 + i), BGS_GREEN);
	/* and with a rollback, the draining color is green */
	if (!flip(&s, BGS_BLUE, BGS_NO_DEADLINE, &after))
		goto fail;
	test_ctx("%s: rolled back, draining green", v->name);
	for (i = 0; i < NFLOWS; i++)
		ok &= midflow(&s, (__u32)i, (__u16)(25000 + i), BGS_GREEN);
out:
	test_ctx("%s", "");
	return fx_svc_del(&s) && ok;
fail:
	ok = false;
	goto out;
}

static bool test_midflow_without_entry(void)
{
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(variants); i++)
		if (variants[i].proto == IPPROTO_TCP)
			ok &= scenario_midflow(&variants[i]);
	return ok;
}

/* Expect-generation (compare and swap) refuses a stale flip and publishes nothing. */
static bool test_flip_expect_generation(void)
{
	struct bgs_flip before, after, now;
	struct bgs_flip_opts o = { .to_color = BGS_ANY_COLOR, .drain_ms = BGS_NO_DEADLINE };
	struct fx_svc s;
	__u32 be[4];
	bool ok = true;

	if (!setup(&variants[0], &s, be))
		return false;
	fx_flip_get(&s, &before);
	o.expect_gen = (long long)bgs_fw_gen(before.word) + 5;
	ok &= ASSERT_ERR(bgs_flip(fx.h, s.id, &o, &after), -ESTALE, "stale generation");
	fx_flip_get(&s, &now);
	ok &= ASSERT_EQ(now.word, before.word, "nothing published");
	o.expect_gen = bgs_fw_gen(before.word);
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, &after), 1, "matching generation");
	ok &= ASSERT_EQ(bgs_fw_live(after.word), BGS_GREEN, "flipped");
	return fx_svc_del(&s) && ok;
}

static struct bgs_port port_entry(__u16 port)
{
	struct bgs_port v = {};
	__u32 key = port;

	if (bpf_map_lookup_elem(bgs_map_fd(fx.h, "ports"), &key, &v))
		FAILF("bgs_ports[%u]: %s", port, strerror(errno));
	return v;
}

/*
 * The port filter (cheaper hot path): a VIP port's entry carries a bloom bit per VIP
 * address using it and, when one service alone uses the port with a protocol, that
 * service (a new flow then needs no bgs_vips lookup; other traffic to the port on a
 * non-VIP address none at all). Routing through the hint is the same as through the map:
 * a second service on the port turns the hint off, deleting it turns it back on.
 */
static bool test_port_filter_hint(void)
{
	const struct variant v4 = { "v4_tcp_nat", BGS_AF_INET, IPPROTO_TCP, BGS_MODE_NAT };
	const struct variant v6 = { "v6_udp_nat", BGS_AF_INET6, IPPROTO_UDP, BGS_MODE_NAT };
	struct fx_svc a, b, c;
	struct bgs_port pe;
	struct pkt p;
	__u32 be[4], id;
	bool ok = true;
	int i;

	if (!setup(&v4, &a, be) || !setup(&v6, &c, be))
		return false;
	pe = port_entry(80);
	ok &= ASSERT_EQ(pe.flags & (BGS_PORT_VIP_TCP | BGS_PORT_VIP_UDP),
			BGS_PORT_VIP_TCP | BGS_PORT_VIP_UDP, "flags");
	ok &= ASSERT_EQ(pe.vip_svc[0], a.id + 1, "one TCP service: hinted");
	ok &= ASSERT_EQ(pe.vip_svc[1], c.id + 1, "one UDP service: hinted");
	ok &= ASSERT_TRUE(pe.vip_bloom & bgs_addr_bloom_bit(a.vip.addr), "A's bloom bit");
	ok &= ASSERT_TRUE(pe.vip_bloom & bgs_addr_bloom_bit(c.vip.addr), "C's bloom bit");
	for (i = 0; i < 8; i++)
		ok &= fx_flow_new(&a, (__u32)i, (__u16)(26000 + i), BGS_BLUE, &id);
	if (!setup(&v4, &b, be))
		return false;
	pe = port_entry(80);
	ok &= ASSERT_EQ(pe.vip_svc[0], 0, "two TCP services: no hint");
	for (i = 0; i < 8; i++) {
		ok &= fx_flow_new(&a, (__u32)i, (__u16)(26100 + i), BGS_BLUE, &id);
		ok &= fx_flow_new(&b, (__u32)i, (__u16)(26100 + i), BGS_BLUE, &id);
	}
	ok &= fx_svc_del(&b);
	pe = port_entry(80);
	ok &= ASSERT_EQ(pe.vip_svc[0], a.id + 1, "one again: hinted");
	/* B's VIP, gone: the hint names A, whose record says no */
	fx_client_pkt(&p, &b, 1, 26200, PKT_SYN);
	ok &= fx_expect_untouched(&p, fx.if_lb0, XDP_PASS, "a deleted VIP through the hint");
	/* port 80 on an address no VIP has, its bloom bit clear */
	for (i = 0; i < 64; i++) {
		fx_client_pkt(&p, &a, 1, 26300, PKT_SYN);
		pkt_addr(BGS_AF_INET, "10.99.251.0", p.dst);
		p.dst[0] = htonl(ntohl(p.dst[0]) + (__u32)i);
		if (pe.vip_bloom & bgs_addr_bloom_bit(p.dst))
			continue;
		ok &= fx_expect_untouched(&p, fx.if_lb0, XDP_PASS, "VIP port, no VIP address");
	}
	ok &= fx_svc_del(&c);
	return fx_svc_del(&a) && ok;
}

static const struct test_case tests[] = {
	{ "flip_and_rollback", test_flip_and_rollback },
	{ "retransmitted_syn", test_retransmitted_syn },
	{ "midflow_without_entry", test_midflow_without_entry },
	{ "flip_expect_generation", test_flip_expect_generation },
	{ "port_filter_hint", test_port_filter_hint },
};

int main(int argc, char **argv)
{
	struct bgs_sizes sz = { .max_services = 16, .max_backends = 256, .maglev_size = 1021,
				.ct_entries = 65536 };

	return fx_main(argc, argv, &sz, tests, ARRAY_SIZE(tests), 120);
}
