// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * SYN-flood guard and verdict names. Past the configured new-flow rate on one CPU within
 * a second, new flows are still forwarded (to the same backend the table gives them) but no
 * longer tracked, and each is counted (CT_SKIPPED); the next second tracks again, and the
 * untracked flows' later packets still reach the same backend. Every verdict reason has a
 * name of its own.
 */
#include <netinet/in.h>
#include <errno.h>
#include <unistd.h>

#include "fixture.h"

#define RATE 200
#define BURST 600

static bool test_flood_guard(void)
{
	struct bgs_reason_counter before[BGS_R_MAX], after[BGS_R_MAX];
	__u32 be[BURST], id;
	struct bgs_flow f;
	struct fx_svc s;
	struct pkt p;
	unsigned long tracked = 0, skipped;
	bool ok = true;
	int i;

	if (!fx_pin_cpu0() ||
	    !fx_svc_add(&s, "flood", BGS_AF_INET, 1, 80, IPPROTO_TCP, BGS_MODE_NAT, 0))
		return false;
	for (i = 0; i < 3; i++)
		ok &= fx_be_add(&s, BGS_BLUE, FX_NET_BACKEND, 10 + i, 8080, 0, &id);
	if (!ok)
		goto out;
	/* start a fresh one-second window */
	sleep(1);
	fx_reasons(before);
	for (i = 0; i < BURST; i++) {
		struct bgs_flow_key k;

		fx_client_pkt(&p, &s, (__u32)i, 5000, PKT_SYN);
		pkt_flow_key(&p, &k);
		be[i] = fx_table_pick(&s, BGS_BLUE, &k);
		ok &= fx_expect_fwd(&s, &p, be[i]);
	}
	fx_reasons(after);
	for (i = 0; i < BURST; i++) {
		fx_client_pkt(&p, &s, (__u32)i, 5000, PKT_SYN);
		tracked += fx_ct_get(&p, &f);
	}
	skipped = after[BGS_R_CT_SKIPPED].packets - before[BGS_R_CT_SKIPPED].packets;
	test_logf("%d new flows in a burst at a rate limit of %d per second: %lu tracked, %lu "
		  "skipped", BURST, RATE, tracked, skipped);
	ok &= ASSERT_EQ(tracked + skipped, BURST, "every new flow tracked or counted skipped");
	ok &= ASSERT_GE(tracked, RATE, "the rate's worth of flows tracked");
	/* the burst takes milliseconds: at most two one-second windows */
	ok &= ASSERT_LE(tracked, 2 * RATE, "no more than the rate per window tracked");
	ok &= ASSERT_EQ(after[BGS_R_CT_FULL].packets, before[BGS_R_CT_FULL].packets, "no ct full");
	ok &= ASSERT_EQ(after[BGS_R_FWD_REDIRECT].packets - before[BGS_R_FWD_REDIRECT].packets,
			BURST, "every new flow forwarded");

	/* untracked flows' next packets still reach their backend (mid-flow -> live table) */
	for (i = 0; i < BURST; i++)
		ok &= fx_flow_next(&s, (__u32)i, 5000, be[i]);

	/* a new window tracks again */
	sleep(1);
	for (i = 0; i < 20; i++)
		ok &= fx_flow_new(&s, (__u32)i, 6000, BGS_BLUE, &id);
out:
	return fx_svc_del(&s) && ok;
}

/*
 * Past the guard a canary SYN goes to the idle color untracked; its ACK (no entry) must
 * follow it there, not to the live color (item 4), IPv4 and IPv6.
 */
static bool test_flood_canary(void)
{
	static const __u8 fams[] = { BGS_AF_INET, BGS_AF_INET6 };
	__u32 be[BURST], id, n_idle = 0;
	struct bgs_flow f;
	struct fx_svc s;
	struct pkt p;
	unsigned long untracked = 0;
	bool ok = true;
	size_t v;
	int i;

	if (!fx_pin_cpu0())
		return false;
	for (v = 0; v < ARRAY_SIZE(fams) && ok; v++) {
		test_ctx("%s", fams[v] == BGS_AF_INET ? "v4" : "v6");
		if (!fx_svc_add(&s, fams[v] == BGS_AF_INET ? "floodc4" : "floodc6", fams[v],
				2 + (int)v, 80, IPPROTO_TCP, BGS_MODE_DSR, 0))
			return false;
		for (i = 0; i < 3; i++) {
			ok &= fx_be_add(&s, BGS_BLUE, FX_NET_BACKEND, 20 + (int)v * 10 + i, 0, 0, &id);
			ok &= fx_be_add(&s, BGS_GREEN, FX_NET_BACKEND, 25 + (int)v * 10 + i, 0, 0,
					&id);
		}
		ok &= ASSERT_OK(bgs_canary_set(fx.h, s.id, 5000, false, BGS_ANY_GEN, NULL), "canary");
		sleep(1);
		for (i = 0; i < BURST && ok; i++) {
			fx_client_pkt(&p, &s, (__u32)i, 5100, PKT_SYN);
			be[i] = fx_send(&s, &p);
			ok &= ASSERT_NEQ(be[i], 0, "SYN forwarded");
		}
		for (i = 0; i < BURST && ok; i++) {
			fx_client_pkt(&p, &s, (__u32)i, 5100, PKT_ACK);
			if (fx_ct_get(&p, &f))
				continue;
			untracked++;
			n_idle += fx.be[be[i]].color == BGS_GREEN;
			ok &= fx_expect_fwd(&s, &p, be[i]);
		}
		ok &= fx_svc_del(&s);
	}
	test_ctx("%s", "");
	test_logf("%lu untracked flows, %u of them canary flows on the idle color", untracked,
		  n_idle);
	ok &= ASSERT_GT(untracked, 0, "flows past the guard") && ASSERT_GT(n_idle, 0, "canary");
	return ok;
}

/*
 * A nat connection completes when its SYN was not tracked (item 3), IPv4 and IPv6: past
 * the guard, the backend's SYN-ACK, the client's ACK and the backend's data all get
 * through, the backend's packets rewritten to the VIP without an entry; a new flow on the
 * preview port that cannot be tracked is dropped (its replies could not be told from the
 * service port's) and counted.
 */
static bool test_flood_nat(void)
{
	static const __u8 fams[] = { BGS_AF_INET, BGS_AF_INET6 };
	struct bgs_reason_counter before[BGS_R_MAX], after[BGS_R_MAX];
	__u32 be[BURST], id;
	unsigned long untracked = 0, dropped;
	struct fx_svc s;
	struct bgs_flow f;
	struct pkt p, r, e;
	bool ok = true;
	size_t v;
	int i;

	if (!fx_pin_cpu0())
		return false;
	for (v = 0; v < ARRAY_SIZE(fams) && ok; v++) {
		test_ctx("%s", fams[v] == BGS_AF_INET ? "v4" : "v6");
		if (!fx_svc_add(&s, fams[v] == BGS_AF_INET ? "floodn4" : "floodn6", fams[v],
				4 + (int)v, 80, IPPROTO_TCP, BGS_MODE_NAT, 8443))
			return false;
		for (i = 0; i < 3; i++)
			ok &= fx_be_add(&s, BGS_BLUE, FX_NET_BACKEND, 40 + (int)v * 10 + i, 8080, 0,
					&id);
		sleep(1);
		for (i = 0; i < BURST && ok; i++) {
			fx_client_pkt(&p, &s, (__u32)i, 5200, PKT_SYN);
			be[i] = fx_send(&s, &p);
			ok &= ASSERT_NEQ(be[i], 0, "SYN forwarded");
		}
		for (i = 0; i < BURST && ok; i++) {
			fx_client_pkt(&p, &s, (__u32)i, 5200, PKT_SYN);
			if (fx_ct_get(&p, &f))
				continue;
			untracked++;
			fx_reply_pkt(&r, &p, be[i], PKT_SYN | PKT_ACK);
			fx_expected_reply(&s, &p, &r, s.port, &e);
			e.ttl = r.ttl; /* no neighbour for the client: the kernel forwards */
			memcpy(e.dmac, r.dmac, 6);
			memcpy(e.smac, r.smac, 6);
			ok &= fx_expect_reply(&r, fx.be[be[i]].ifindex, XDP_PASS,
					      BGS_R_PASS_REPLY_UNTRACKED, &e, "untracked SYN-ACK");
			fx_client_pkt(&p, &s, (__u32)i, 5200, PKT_ACK);
			ok &= fx_expect_fwd(&s, &p, be[i]);
			if (fx_ct_get(&p, &f))
				continue; /* the guard's next window tracked it */
			fx_reply_pkt(&r, &p, be[i], PKT_ACK | PKT_PSH);
			fx_expected_reply(&s, &p, &r, s.port, &e);
			e.ttl = r.ttl;
			memcpy(e.dmac, r.dmac, 6);
			memcpy(e.smac, r.smac, 6);
			ok &= fx_expect_reply(&r, fx.be[be[i]].ifindex, XDP_PASS,
					      BGS_R_PASS_REPLY_UNTRACKED, &e,
					      "untracked flow's data during the flood");
		}
		/* the preview port past the guard */
		sleep(1);
		fx_reasons(before);
		for (i = 0; i < BURST; i++) {
			__u8 in[PKT_MAX];
			struct fx_out o;
			int len;

			fx_client_pkt(&p, &s, (__u32)i, 5300, PKT_SYN);
			p.dport = 8443;
			len = pkt_build(&p, in, sizeof(in));
			ok &= ASSERT_OK(fx_run(in, (__u32)len, fx.if_lb0, &o), "run");
			if (o.retval == XDP_DROP)
				ok &= ASSERT_FALSE(fx_ct_get(&p, &f), "dropped ones untracked");
		}
		fx_reasons(after);
		dropped = after[BGS_R_DROP_UNTRACKABLE].packets -
			  before[BGS_R_DROP_UNTRACKABLE].packets;
		ok &= ASSERT_EQ(dropped, after[BGS_R_CT_SKIPPED].packets -
				before[BGS_R_CT_SKIPPED].packets, "every untracked one dropped");
		ok &= ASSERT_GT(dropped, 0, "preview-port flows past the guard");
		ok &= fx_svc_del(&s);
	}
	test_ctx("%s", "");
	test_logf("%lu nat flows past the guard completed their handshake", untracked);
	ok &= ASSERT_GT(untracked, 0, "flows past the guard");
	return ok;
}

static bool test_reason_names(void)
{
	const char *names[BGS_R_MAX];
	bool ok = true;
	int r, q;

	for (r = 0; r < BGS_R_MAX; r++) {
		names[r] = bgs_reason_name((enum bgs_reason)r);
		test_ctx("reason %d", r);
		ok &= ASSERT_TRUE(names[r] && names[r][0], "named");
		if (!names[r])
			continue;
		ok &= ASSERT_FALSE(!strcmp(names[r], "unknown"), "a name of its own");
		for (q = 0; q < r; q++)
			if (names[q] && !strcmp(names[q], names[r])) {
				FAILF("reasons %d and %d are both called %s", q, r, names[r]);
				ok = false;
			}
	}
	test_ctx("%s", "");
	ok &= ASSERT_STRSTR(bgs_reason_name(BGS_R_MAX), "unknown", "out of range");
	return ok;
}

static const struct test_case tests[] = {
	{ "flood_guard", test_flood_guard },
	{ "flood_canary", test_flood_canary },
	{ "flood_nat", test_flood_nat },
	{ "reason_names", test_reason_names },
};

int main(int argc, char **argv)
{
	struct bgs_sizes sz = { .max_services = 4, .max_backends = 16, .maglev_size = 1021,
				.ct_entries = 16384, .new_flow_rate = RATE };

	return fx_main(argc, argv, &sz, tests, ARRAY_SIZE(tests), 60);
}
