// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libbgswitch under concurrency and failure, on the real pinned maps: a routing change is a
 * compare-and-swap on the generation its caller read (the "already live" answer too), and a
 * refused one says what it found.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <unistd.h>

#include "fixture.h"

static int next_n = 2;

static bool two_pools(struct fx_svc *s, const char *name, int vip_n)
{
	__u32 id;

	return fx_svc_add(s, name, BGS_AF_INET, vip_n, 80, IPPROTO_TCP, BGS_MODE_NAT, 0) &&
	       fx_be_add(s, BGS_BLUE, FX_NET_BACKEND, next_n++, 8080, 0, &id) &&
	       fx_be_add(s, BGS_GREEN, FX_NET_BACKEND, next_n++, 8080, 0, &id);
}

/* A flip whose caller read an older generation is refused, even when its target color is
 * already live (that answer, too, was about the state it read), and after tells what is. */
static bool test_cas_flip(void)
{
	struct bgs_flip_opts o = { .to_color = BGS_ANY_COLOR, .expect_gen = BGS_ANY_GEN,
				   .drain_ms = 0 };
	struct bgs_flip before, after, now;
	struct fx_svc s;
	bool ok = true;
	__u32 g0;

	if (!two_pools(&s, "cas", 1) || !fx_flip_get(&s, &before))
		return false;
	g0 = bgs_fw_gen(before.word);
	/* Someone else flips first (blue -> green). */
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, NULL), 1, "the other flip");
	/* Our flip read g0 with blue live: refused, after = what is there now. */
	o.expect_gen = g0;
	memset(&after, 0, sizeof(after));
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, &after), -ESTALE, "stale flip");
	ok &= ASSERT_EQ(bgs_fw_gen(after.word), g0 + 1, "after: the generation found");
	ok &= ASSERT_EQ(bgs_fw_live(after.word), BGS_GREEN, "after: the live color found");
	ok &= ASSERT_TRUE(strstr(bgs_errmsg(), "generation") != NULL, bgs_errmsg());
	/* --to green with the stale generation: green is live, but not at g0. */
	o.to_color = BGS_GREEN;
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, &after), -ESTALE, "stale 'already live'");
	/* Current generation: "already live", 0. */
	o.expect_gen = g0 + 1;
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, &after), 0, "already live");
	/* Canary: the same compare-and-swap. */
	ok &= ASSERT_EQ(bgs_canary_set(fx.h, s.id, 500, false, g0, &after), -ESTALE,
			"stale canary");
	ok &= ASSERT_EQ(bgs_fw_gen(after.word), g0 + 1, "canary: after = the generation found");
	ok &= fx_flip_get(&s, &now);
	ok &= ASSERT_EQ(bgs_fw_gen(now.word), g0 + 1, "nothing published by the refusals");
	ok &= ASSERT_EQ(bgs_fw_canary(now.word), 0, "no canary");
	ok &= fx_svc_del(&s);
	return ok;
}

static const struct test_case tests[] = {
	{ "cas_flip", test_cas_flip },
};

int main(int argc, char **argv)
{
	struct bgs_sizes sz = { .max_services = 8, .max_backends = 32, .maglev_size = 251,
				.ct_entries = 4096 };

	return fx_main(argc, argv, &sz, tests, ARRAY_SIZE(tests), 120);
}
