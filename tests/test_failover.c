// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Failover and down backends (issue item 7), IPv4 and IPv6, TCP and UDP: a live color with
 * no healthy backend sends new flows to the other color; a backend that goes down (admin
 * at once, health after a grace period: a blip moves nothing) has its flows re-chosen, the
 * others keep theirs; a draining backend keeps its
 * flows and takes no new one; health never overrides an admin drain; with no usable
 * backend anywhere, packets are dropped and counted; a flip to an unusable pool is refused
 * unless forced.
 */
#include <errno.h>
#include <netinet/in.h>

#include <bpf/bpf.h>

#include "fixture.h"

struct variant {
	const char *name;
	__u8 family, proto, mode;
};

static const struct variant variants[] = {
	{ "v4_tcp_nat", BGS_AF_INET, IPPROTO_TCP, BGS_MODE_NAT },
	{ "v4_udp_dsr", BGS_AF_INET, IPPROTO_UDP, BGS_MODE_DSR },
	{ "v6_tcp_dsr", BGS_AF_INET6, IPPROTO_TCP, BGS_MODE_DSR },
	{ "v6_udp_nat", BGS_AF_INET6, IPPROTO_UDP, BGS_MODE_NAT },
};

#define NB 3
#define NFLOWS 300

static int next_n = 10, next_vip = 1;

struct svc_fx {
	struct fx_svc s;
	__u32 blue[NB], green[NB];
};

static bool setup(const struct variant *v, struct svc_fx *f)
{
	__u16 port = v->mode == BGS_MODE_NAT ? 8080 : 0;
	char name[32];
	bool ok = true;
	int i;

	snprintf(name, sizeof(name), "fo%d_%s", next_vip, v->name);
	if (!fx_svc_add(&f->s, name, v->family, next_vip++, 80, v->proto, v->mode, 0))
		return false;
	for (i = 0; i < NB; i++) {
		ok &= fx_be_add(&f->s, BGS_BLUE, FX_NET_BACKEND, next_n++, port, 0, &f->blue[i]);
		ok &= fx_be_add(&f->s, BGS_GREEN, FX_NET_BACKEND, next_n++, port, 0, &f->green[i]);
	}
	return ok;
}

static bool health_all(__u32 *ids, enum bgs_health h)
{
	bool ok = true;
	int i;

	for (i = 0; i < NB; i++)
		ok &= ASSERT_OK(bgs_backend_set_health(fx.h, ids[i], h), "set health");
	return ok;
}

/* Moves a health-down backend's stamp back by the grace period and a second, as if it had
 * stayed down that long (waiting is not an option; the one thing a test fakes). */
static bool past_grace(__u32 id)
{
	struct bgs_backend be;

	if (!ASSERT_OK(bpf_map_lookup_elem(fx.backends_fd, &id, &be) ? -errno : 0, "read"))
		return false;
	if (!ASSERT_EQ(be.health, BGS_HEALTH_DOWN, "health down") ||
	    !ASSERT_GT(be.health_down_at, 0, "stamped"))
		return false;
	be.health_down_at -= ((__u64)fx.meta.timeouts.health_grace + 1) * fx.meta.hz;
	return ASSERT_OK(bpf_map_update_elem(fx.backends_fd, &id, &be, BPF_EXIST) ? -errno : 0,
			 "write");
}

/* Live pool down: new flows to the other color at once; old flows stay for the health
 * grace period, then are re-chosen there; back up: new flows to the live color again,
 * while the failed-over flows stay where they are. */
static bool scenario_pool_down(const struct variant *v)
{
	__u32 first[NFLOWS], moved[NFLOWS], id;
	struct bgs_flow_key k;
	struct svc_fx f;
	struct pkt p;
	bool ok = true;
	int i;

	if (!setup(v, &f))
		return false;
	test_ctx("%s: flows on blue", v->name);
	for (i = 0; i < NFLOWS; i++)
		ok &= fx_flow_new(&f.s, (__u32)i, (__u16)(20000 + i), BGS_BLUE, &first[i]);
	if (!ok || !health_all(f.blue, BGS_HEALTH_DOWN))
		goto fail;
	ok &= ASSERT_FALSE(bgs_pool_usable(fx.h, f.s.id, BGS_BLUE), "blue unusable");
	ok &= ASSERT_TRUE(bgs_pool_usable(fx.h, f.s.id, BGS_GREEN), "green usable");

	test_ctx("%s: blue down, new flows fail over to green", v->name);
	for (i = 0; i < NFLOWS; i++)
		ok &= fx_flow_new(&f.s, (__u32)i, (__u16)(21000 + i), BGS_GREEN, &id);
	test_ctx("%s: blue down, old flows stay during the grace period", v->name);
	for (i = 0; i < NFLOWS; i++)
		ok &= fx_flow_next(&f.s, (__u32)i, (__u16)(20000 + i), first[i]);
	for (i = 0; i < NB; i++)
		ok &= past_grace(f.blue[i]);
	test_ctx("%s: blue down past the grace period, old flows re-chosen on green", v->name);
	for (i = 0; i < NFLOWS; i++) {
		fx_client_pkt(&p, &f.s, (__u32)i, (__u16)(20000 + i), PKT_ACK);
		pkt_flow_key(&p, &k);
		moved[i] = fx_table_pick(&f.s, BGS_GREEN, &k);
		ok &= fx_expect_fwd(&f.s, &p, moved[i]);
		ok &= fx_flow_check_ct(&f.s, &p, moved[i], BGS_GREEN, FX_ANY_GEN);
	}
	if (!ok || !health_all(f.blue, BGS_HEALTH_UP))
		goto fail;
	test_ctx("%s: blue back up", v->name);
	for (i = 0; i < NFLOWS; i++) {
		ok &= fx_flow_new(&f.s, (__u32)i, (__u16)(22000 + i), BGS_BLUE, &id);
		/* a flow is not moved back: its green backend is fine */
		ok &= fx_flow_next(&f.s, (__u32)i, (__u16)(20000 + i), moved[i]);
	}
out:
	test_ctx("%s", "");
	return fx_svc_del(&f.s) && ok;
fail:
	ok = false;
	goto out;
}

static bool test_live_pool_down(void)
{
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(variants); i++)
		ok &= scenario_pool_down(&variants[i]);
	return ok;
}

/* One backend down (health, then admin): only its flows move, to what the table now says;
 * drain keeps flows and takes no new ones; health does not override an admin drain. */
static bool scenario_one_down(const struct variant *v, bool by_admin)
{
	__u32 first[NFLOWS], id, victim, want;
	struct bgs_backend rec;
	struct bgs_flow_key k;
	struct svc_fx f;
	struct pkt p;
	bool ok = true;
	int i, on_victim = 0;

	if (!setup(v, &f))
		return false;
	for (i = 0; i < NFLOWS; i++)
		ok &= fx_flow_new(&f.s, (__u32)i, (__u16)(23000 + i), BGS_BLUE, &first[i]);
	victim = f.blue[1];
	if (!ok)
		goto fail;
	if (by_admin) {
		ok &= ASSERT_OK(bgs_backend_set_admin(fx.h, victim, BGS_ADMIN_DOWN), "admin down");
	} else {
		/* a health blip (item 7): down and up again within the grace period moves no
		 * established flow; down for longer than it does */
		ok &= ASSERT_OK(bgs_backend_set_health(fx.h, victim, BGS_HEALTH_DOWN),
				"health down");
		test_ctx("%s: backend %u health down, in the grace period", v->name, victim);
		for (i = 0; i < NFLOWS; i++)
			ok &= fx_flow_next(&f.s, (__u32)i, (__u16)(23000 + i), first[i]);
		for (i = 0; i < 20; i++) {
			fx_client_pkt(&p, &f.s, (__u32)i, (__u16)(23500 + i), PKT_SYN);
			id = fx_send(&f.s, &p);
			ok &= ASSERT_NEQ(id, victim, "no new flow on a health-down backend");
		}
		ok &= ASSERT_OK(bgs_backend_set_health(fx.h, victim, BGS_HEALTH_UP), "health up");
		test_ctx("%s: backend %u health back up", v->name, victim);
		for (i = 0; i < NFLOWS; i++)
			ok &= fx_flow_next(&f.s, (__u32)i, (__u16)(23000 + i), first[i]);
		ok &= ASSERT_OK(bgs_backend_set_health(fx.h, victim, BGS_HEALTH_DOWN),
				"health down again");
		ok &= past_grace(victim);
	}
	test_ctx("%s: backend %u %s down", v->name, victim, by_admin ? "admin" : "health");
	for (i = 0; i < NFLOWS; i++) {
		fx_client_pkt(&p, &f.s, (__u32)i, (__u16)(23000 + i), PKT_ACK);
		pkt_flow_key(&p, &k);
		want = first[i];
		if (first[i] == victim) {
			on_victim++;
			want = fx_table_pick(&f.s, BGS_BLUE, &k);
			ok &= ASSERT_NEQ(want, victim, "the new table leaves the down backend out");
		}
		ok &= fx_expect_fwd(&f.s, &p, want);
	}
	ok &= ASSERT_GT(on_victim, 0, "some flows were on the victim");
	for (i = 0; i < NFLOWS; i++) {
		fx_client_pkt(&p, &f.s, (__u32)i, (__u16)(24000 + i), PKT_SYN);
		id = fx_send(&f.s, &p);
		ok &= ASSERT_NEQ(id, victim, "no new flow on a down backend");
		ok &= ASSERT_NEQ(id, 0, "forwarded");
	}
out:
	test_ctx("%s", "");
	ok &= ASSERT_OK(bgs_backend_get(fx.h, victim, &rec), "backend get");
	return fx_svc_del(&f.s) && ok;
fail:
	ok = false;
	goto out;
}

static bool scenario_drain(const struct variant *v)
{
	__u32 first[NFLOWS], id, victim;
	struct bgs_backend rec;
	struct svc_fx f;
	struct pkt p;
	bool ok = true;
	int i;

	if (!setup(v, &f))
		return false;
	for (i = 0; i < NFLOWS; i++)
		ok &= fx_flow_new(&f.s, (__u32)i, (__u16)(25000 + i), BGS_BLUE, &first[i]);
	victim = f.blue[0];
	if (!ok || !ASSERT_OK(bgs_backend_set_admin(fx.h, victim, BGS_ADMIN_DRAIN), "admin drain"))
		goto fail;
	/* health flapping must not undo the operator's drain */
	ok &= ASSERT_OK(bgs_backend_set_health(fx.h, victim, BGS_HEALTH_DOWN), "health down");
	ok &= ASSERT_OK(bgs_backend_set_health(fx.h, victim, BGS_HEALTH_UP), "health up");
	if (ASSERT_OK(bgs_backend_get(fx.h, victim, &rec), "get")) {
		ok &= ASSERT_EQ(rec.admin, BGS_ADMIN_DRAIN, "admin stays drain");
		ok &= ASSERT_EQ(rec.health, BGS_HEALTH_UP, "health up");
	}
	test_ctx("%s: backend %u draining", v->name, victim);
	for (i = 0; i < NFLOWS; i++)
		ok &= fx_flow_next(&f.s, (__u32)i, (__u16)(25000 + i), first[i]);
	for (i = 0; i < NFLOWS; i++) {
		fx_client_pkt(&p, &f.s, (__u32)i, (__u16)(26000 + i), PKT_SYN);
		id = fx_send(&f.s, &p);
		ok &= ASSERT_NEQ(id, victim, "no new flow on a draining backend");
		ok &= ASSERT_EQ(fx.be[id].color, BGS_BLUE, "still blue");
	}
	/* admin up again: it takes new flows again */
	ok &= ASSERT_OK(bgs_backend_set_admin(fx.h, victim, BGS_ADMIN_UP), "admin up");
	{
		int got = 0;

		for (i = 0; i < NFLOWS; i++) {
			fx_client_pkt(&p, &f.s, (__u32)i, (__u16)(27000 + i), PKT_SYN);
			got += fx_send(&f.s, &p) == victim;
		}
		ok &= ASSERT_GT(got, 0, "new flows reach the backend once it is up");
	}
out:
	test_ctx("%s", "");
	return fx_svc_del(&f.s) && ok;
fail:
	ok = false;
	goto out;
}

static bool test_one_backend_down(void)
{
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(variants); i++) {
		ok &= scenario_one_down(&variants[i], false);
		ok &= scenario_one_down(&variants[i], true);
	}
	return ok;
}

static bool test_drain_backend(void)
{
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(variants); i++)
		ok &= scenario_drain(&variants[i]);
	return ok;
}

/* Nothing usable anywhere: dropped, counted, untouched, no flow created. Flip to an
 * unusable pool refused unless forced. */
static bool test_no_backend(void)
{
	struct bgs_flip_opts fo = { .to_color = BGS_ANY_COLOR, .expect_gen = BGS_ANY_GEN,
				    .drain_ms = BGS_NO_DEADLINE };
	struct bgs_reason_counter before[BGS_R_MAX];
	struct bgs_flip fb, fa;
	__u8 tmp[PKT_MAX];
	struct svc_fx f;
	struct pkt p;
	bool ok = true;
	int i, len;

	if (!setup(&variants[0], &f))
		return false;
	ok &= health_all(f.green, BGS_HEALTH_DOWN);
	fx_flip_get(&f.s, &fb);
	ok &= ASSERT_ERR(bgs_flip(fx.h, f.s.id, &fo, NULL), -EHOSTUNREACH,
			 "flip to a pool with no usable backend");
	fx_flip_get(&f.s, &fa);
	ok &= ASSERT_EQ(fa.word, fb.word, "refused flip publishes nothing");
	fo.force = true;
	ok &= ASSERT_EQ(bgs_flip(fx.h, f.s.id, &fo, NULL), 1, "forced flip");
	/* green live but down: blue takes the flows */
	for (i = 0; i < 50; i++)
		ok &= fx_flow_new(&f.s, (__u32)i, (__u16)(28000 + i), BGS_BLUE, NULL);
	ok &= health_all(f.blue, BGS_HEALTH_DOWN);
	for (i = 0; i < 50; i++) {
		test_ctx("no usable backend, flow %d", i);
		fx_client_pkt(&p, &f.s, (__u32)i, (__u16)(29000 + i), PKT_SYN);
		len = pkt_build(&p, tmp, sizeof(tmp));
		fx_reasons(before);
		ok &= fx_expect_untouched(&p, fx.if_lb0, XDP_DROP, "no backend");
		ok &= fx_expect_reason(before, BGS_R_DROP_NO_BACKEND, 1, (__u64)len);
		ok &= ASSERT_FALSE(fx_ct_get(&p, &(struct bgs_flow){}), "no flow created");
	}
	/* the flows whose backends are all down (past the grace period) are not forwarded
	 * either */
	for (i = 0; i < NB; i++)
		ok &= past_grace(f.blue[i]);
	for (i = 0; i < 50; i++) {
		test_ctx("no usable backend, flow %d", i);
		fx_client_pkt(&p, &f.s, (__u32)i, (__u16)(28000 + i), PKT_ACK);
		ok &= fx_expect_untouched(&p, fx.if_lb0, XDP_DROP, "known flow, no backend");
	}
	test_ctx("%s", "");
	return fx_svc_del(&f.s) && ok;
}

static const struct test_case tests[] = {
	{ "live_pool_down", test_live_pool_down },
	{ "one_backend_down", test_one_backend_down },
	{ "drain_backend", test_drain_backend },
	{ "no_backend", test_no_backend },
};

int main(int argc, char **argv)
{
	struct bgs_sizes sz = { .max_services = 16, .max_backends = 256, .maglev_size = 1021,
				.ct_entries = 65536 };

	return fx_main(argc, argv, &sz, tests, ARRAY_SIZE(tests), 120);
}
