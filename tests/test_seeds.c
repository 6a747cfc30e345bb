// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The Maglev and canary hash seeds come from bgs_init options (stored in bgs_meta): with a
 * private pair the program picks backends and draws the canary by them (every flow where
 * bgs_hash_flow with those seeds says, and not where the default seeds would send some),
 * and pins made with one pair refuse an init that asks for another.
 */
#include <errno.h>
#include <netinet/in.h>

#include "bgswitch_hash.h"
#include "fixture.h"

#define MSEED 0x1badb002u
#define CSEED 0x0ddba11u

static bool test_private_seeds(void)
{
	struct bgs_sizes other = { .maglev_seed = MSEED + 1 };
	struct bgs_flow_key k;
	struct fx_svc s;
	struct bgs *h2 = NULL;
	struct pkt p;
	__u32 i, id, want_color, n_diff = 0, n_idle = 0;
	bool ok = true;

	ok &= ASSERT_EQ(fx.meta.maglev_seed, MSEED, "maglev seed stored");
	ok &= ASSERT_EQ(fx.meta.canary_seed, CSEED, "canary seed stored");
	if (!ok || !fx_svc_add(&s, "seeds", BGS_AF_INET, 1, 80, IPPROTO_TCP, BGS_MODE_NAT, 0))
		return false;
	for (i = 0; i < 4; i++) {
		ok &= fx_be_add(&s, BGS_BLUE, FX_NET_BACKEND, 10 + (int)i, 8080, 0, &id);
		ok &= fx_be_add(&s, BGS_GREEN, FX_NET_BACKEND, 20 + (int)i, 8080, 0, &id);
	}
	ok &= ASSERT_OK(bgs_canary_set(fx.h, s.id, 5000, false, BGS_ANY_GEN, NULL), "canary");
	for (i = 0; i < 400 && ok; i++) {
		test_ctx("flow %u", i);
		fx_client_pkt(&p, &s, i, (__u16)(4000 + i), PKT_SYN);
		pkt_flow_key(&p, &k);
		want_color = bgs_hash_flow(&k, CSEED) % BGS_CANARY_SCALE < 5000 ? BGS_GREEN :
										   BGS_BLUE;
		n_idle += want_color == BGS_GREEN;
		id = fx_send(&s, &p);
		ok &= ASSERT_EQ(fx.be[id].color, want_color, "canary drawn with the private seed");
		/* fx_table_pick hashes with fx.meta.maglev_seed; the default would differ */
		ok &= ASSERT_EQ(id, fx_table_pick(&s, want_color, &k), "Maglev pick");
		n_diff += bgs_hash_flow(&k, MSEED) % fx.meta.maglev_size !=
			  bgs_hash_flow(&k, BGS_MAGLEV_SEED) % fx.meta.maglev_size;
	}
	test_ctx("%s", "");
	ok &= ASSERT_GT(n_idle, 100, "canary flows") && ASSERT_GT(n_diff, 300, "seeds matter");
	ok &= ASSERT_ERR(bgs_init(fx.pin_dir, &other, &h2), -EEXIST, "another seed refused");
	bgs_close(h2);
	return fx_svc_del(&s) && ok;
}

static const struct test_case tests[] = {
	{ "private_seeds", test_private_seeds },
};

int main(int argc, char **argv)
{
	struct bgs_sizes sz = { .max_services = 4, .max_backends = 32, .maglev_size = 1021,
				.ct_entries = 4096, .maglev_seed = MSEED, .canary_seed = CSEED };

	return fx_main(argc, argv, &sz, tests, ARRAY_SIZE(tests), 60);
}
