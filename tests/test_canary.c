// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Canary (issue item 3): with the canary at 1%, 10% and 50%, 100,000 distinct new flows
 * (fixed tuples, so the run is reproducible) go to the idle color in a share within 0.5
 * percentage points of the weight, and each flow goes exactly where the shared canary hash
 * says (bgs_hash_flow with BGS_CANARY_SEED), to the backend that color's Maglev table
 * gives it, byte for byte. Sticky mode draws by source address: every flow of one source
 * goes to the same color. Changing the canary never moves established flows.
 */
#include <errno.h>
#include <math.h>
#include <netinet/in.h>

#include "bgswitch_hash.h"
#include "fixture.h"

#define NFLOWS 100000

static bool pools(struct fx_svc *s, const char *name, __u8 family, int vip, __u8 proto,
		  int n0)
{
	__u32 id;
	bool ok;
	int i;

	ok = fx_svc_add(s, name, family, vip, 80, proto, BGS_MODE_NAT, 0);
	for (i = 0; ok && i < 3; i++) {
		ok &= fx_be_add(s, BGS_BLUE, FX_NET_BACKEND, n0 + i, 8080, 0, &id);
		ok &= fx_be_add(s, BGS_GREEN, FX_NET_BACKEND, n0 + 3 + i, 8080, 0, &id);
	}
	return ok;
}

/* Flow i of phase ph: client (i % 50000), port 2000 + ph * 4 + i / 50000. */
static void flow_pkt(struct pkt *p, const struct fx_svc *s, int ph, __u32 i, __u8 flags)
{
	fx_client_pkt(p, s, i % 50000, (__u16)(2000 + ph * 4 + i / 50000), flags);
}

static bool canary_phase(const struct fx_svc *s, int ph, __u32 bps, __u32 *first_be)
{
	struct bgs_flip after;
	struct bgs_flow_key k;
	struct pkt p;
	__u32 i, idle_n = 0, wrong_color = 0, wrong_be = 0, id, want_color, want_be, live;
	double share;
	bool ok = true;

	if (!ASSERT_OK(bgs_canary_set(fx.h, s->id, bps, false, BGS_ANY_GEN, &after), "canary set"))
		return false;
	ok &= ASSERT_EQ(bgs_fw_canary(after.word), bps, "canary weight in the flip word");
	ok &= ASSERT_FALSE(after.word & BGS_FW_STICKY, "not sticky");
	live = bgs_fw_live(after.word);
	test_ctx("canary %u bps", bps);
	for (i = 0; i < NFLOWS; i++) {
		flow_pkt(&p, s, ph, i, PKT_SYN);
		pkt_flow_key(&p, &k);
		want_color = bgs_hash_flow(&k, fx.meta.canary_seed) % BGS_CANARY_SCALE < bps ?
				     !live : live;
		want_be = fx_table_pick_word(s, after.word, want_color, &k);
		id = fx_send(s, &p);
		if (!id)
			return false; /* fx_send reported it */
		if (first_be)
			first_be[i] = id;
		idle_n += fx.be[id].color != live;
		if (fx.be[id].color != want_color) {
			if (wrong_color++ < 5)
				FAILF("flow %u went to color %u, the canary hash says %u", i,
				      fx.be[id].color, want_color);
		} else if (id != want_be) {
			if (wrong_be++ < 5)
				FAILF("flow %u went to backend %u, the table says %u", i, id,
				      want_be);
		}
	}
	share = 100.0 * idle_n / NFLOWS;
	test_logf("canary %5.2f%%: %u of %u new flows to the idle color (%.3f%%)", bps / 100.0,
		  idle_n, NFLOWS, share);
	ok &= ASSERT_EQ(wrong_color, 0, "flows whose color differs from the canary hash");
	ok &= ASSERT_EQ(wrong_be, 0, "flows whose backend differs from the table");
	if (fabs(share - bps / 100.0) > 0.5) {
		FAILF("idle share %.3f%% is more than 0.5 points from %.2f%%", share, bps / 100.0);
		ok = false;
	}
	test_ctx("%s", "");
	return ok;
}

static bool run_weights(const char *name, __u8 family, int vip, __u8 proto, int n0)
{
	static const __u32 weights[] = { 100, 1000, 5000 };
	static __u32 first[NFLOWS];
	struct fx_svc s;
	struct pkt p;
	bool ok = true;
	size_t w;
	__u32 i;

	if (!pools(&s, name, family, vip, proto, n0))
		return false;
	for (w = 0; w < ARRAY_SIZE(weights); w++)
		ok &= canary_phase(&s, (int)w, weights[w], first);
	/* established flows (those of the 50% phase) stay put when the canary changes */
	if (ok && ASSERT_OK(bgs_canary_set(fx.h, s.id, 0, false, BGS_ANY_GEN, NULL), "canary 0")) {
		test_ctx("canary back to 0");
		for (i = 0; i < NFLOWS; i += 37) {
			flow_pkt(&p, &s, 2, i, PKT_ACK);
			if (!fx_expect_fwd(&s, &p, first[i])) {
				ok = false;
				break;
			}
		}
	}
	/* 0 and 10000 are all-live and all-idle */
	if (ok)
		ok &= canary_phase(&s, 3, 0, NULL);
	if (ok)
		ok &= canary_phase(&s, 4, BGS_CANARY_SCALE, NULL);
	return fx_svc_del(&s) && ok;
}

static bool test_canary_v4_tcp(void)
{
	return run_weights("canary4", BGS_AF_INET, 1, IPPROTO_TCP, 10);
}

static bool test_canary_v6_udp(void)
{
	return run_weights("canary6", BGS_AF_INET6, 2, IPPROTO_UDP, 20);
}

/* Sticky: the draw is by source address; every flow of a source lands on one color. */
static bool sticky(const char *name, __u8 family, int vip, __u8 proto, int n0)
{
	const __u32 bps = 3000, sources = 3000, per_source = 8;
	__u32 src, j, id, color, want, wrong = 0, idle_sources = 0, live;
	struct bgs_flip after;
	struct fx_svc s;
	struct pkt p;
	double share;
	bool ok = true;

	if (!pools(&s, name, family, vip, proto, n0))
		return false;
	if (!ASSERT_OK(bgs_canary_set(fx.h, s.id, bps, true, BGS_ANY_GEN, &after), "sticky canary"))
		goto out;
	ok &= ASSERT_TRUE(after.word & BGS_FW_STICKY, "sticky bit set");
	live = bgs_fw_live(after.word);
	for (src = 0; src < sources && ok; src++) {
		test_ctx("%s sticky source %u", name, src);
		fx_client_pkt(&p, &s, src, 1, PKT_SYN);
		want = bgs_hash_addr(p.src, fx.meta.canary_seed) % BGS_CANARY_SCALE < bps;
		want = want ? !live : live;
		idle_sources += want != live;
		for (j = 0; j < per_source; j++) {
			fx_client_pkt(&p, &s, src, (__u16)(3000 + j * 977), PKT_SYN);
			id = fx_send(&s, &p);
			if (!id) {
				ok = false;
				break;
			}
			color = fx.be[id].color;
			if (color != want && wrong++ < 5)
				FAILF("flow %u of source %u went to color %u, expected %u", j, src,
				      color, want);
		}
	}
	ok &= ASSERT_EQ(wrong, 0, "flows not on their source's color");
	share = 100.0 * idle_sources / sources;
	test_logf("%s sticky canary 30%%: %u of %u sources on the idle color (%.2f%%)", name,
		  idle_sources, sources, share);
	/* a loose sanity bound on the hash (3000 sources: sd ~0.84 points) */
	if (fabs(share - 30.0) > 4.0) {
		FAILF("sticky idle share %.2f%% is far from 30%%", share);
		ok = false;
	}
out:
	test_ctx("%s", "");
	return fx_svc_del(&s) && ok;
}

static bool test_sticky(void)
{
	bool ok = sticky("sticky4", BGS_AF_INET, 3, IPPROTO_TCP, 30);

	return sticky("sticky6", BGS_AF_INET6, 4, IPPROTO_UDP, 40) && ok;
}

/*
 * A canary flow keeps its color when its entry is missing (item 4): the canary draw is
 * deterministic, so the next ACK of a flow whose entry was evicted goes where its SYN went,
 * per-flow and sticky, IPv4 and IPv6.
 */
static bool canary_midflow(const char *name, __u8 family, int vip, bool sticky_mode, int n0)
{
	const __u32 bps = 4000;
	__u32 i, id, n_idle = 0;
	struct fx_svc s;
	struct pkt p;
	bool ok = true;

	if (!pools(&s, name, family, vip, IPPROTO_TCP, n0))
		return false;
	if (!ASSERT_OK(bgs_canary_set(fx.h, s.id, bps, sticky_mode, BGS_ANY_GEN, NULL), "canary"))
		goto out;
	for (i = 0; i < 400 && ok; i++) {
		test_ctx("%s flow %u", name, i);
		fx_client_pkt(&p, &s, i, (__u16)(7000 + i), PKT_SYN);
		id = fx_send(&s, &p);
		if (!ASSERT_NEQ(id, 0, "SYN forwarded"))
			break;
		n_idle += fx.be[id].color == BGS_GREEN;
		ok &= ASSERT_OK(fx_ct_delete(&p), "entry evicted");
		fx_client_pkt(&p, &s, i, (__u16)(7000 + i), PKT_ACK);
		ok &= fx_expect_fwd(&s, &p, id);
		ok &= fx_flow_check_ct(&s, &p, id, fx.be[id].color, FX_ANY_GEN);
	}
	test_ctx("%s", "");
	test_logf("%s: %u of 400 canary-drawn flows on the idle color", name, n_idle);
	ok &= ASSERT_GT(n_idle, 50, "some flows on the idle color");
out:
	return fx_svc_del(&s) && ok;
}

static bool test_canary_midflow(void)
{
	bool ok = canary_midflow("cmid4", BGS_AF_INET, 6, false, 60);

	ok &= canary_midflow("cmid6", BGS_AF_INET6, 7, false, 70);
	return canary_midflow("cmid4s", BGS_AF_INET, 8, true, 80) && ok;
}

static bool test_canary_bounds(void)
{
	struct bgs_flip before, now;
	struct fx_svc s;
	bool ok = true;

	if (!pools(&s, "canarybad", BGS_AF_INET, 5, IPPROTO_TCP, 50))
		return false;
	fx_flip_get(&s, &before);
	ok &= ASSERT_ERR(bgs_canary_set(fx.h, s.id, BGS_CANARY_SCALE + 1, false, BGS_ANY_GEN, NULL),
			 -EINVAL, "canary above 100%");
	ok &= ASSERT_ERR(bgs_canary_set(fx.h, s.id, 10, false, bgs_fw_gen(before.word) + 3, NULL),
			 -ESTALE, "canary with a stale generation");
	fx_flip_get(&s, &now);
	ok &= ASSERT_EQ(now.word, before.word, "refused changes publish nothing");
	return fx_svc_del(&s) && ok;
}

static const struct test_case tests[] = {
	{ "canary_v4_tcp", test_canary_v4_tcp },
	{ "canary_v6_udp", test_canary_v6_udp },
	{ "sticky", test_sticky },
	{ "canary_bounds", test_canary_bounds },
	{ "canary_midflow", test_canary_midflow },
};

int main(int argc, char **argv)
{
	struct bgs_sizes sz = { .max_services = 8, .max_backends = 64, .maglev_size = 1021,
				.ct_entries = 262144 };

	return fx_main(argc, argv, &sz, tests, ARRAY_SIZE(tests), 240);
}
