// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Drain deadline and backend id reuse (issue item 11). A flip with a 1.5 s drain: until the
 * deadline the old color's flows keep their backends and mid-flow packets without an entry
 * go to the old color; once the program's clock passes the deadline - with no user-space
 * action at all, the flip word untouched - the old color's flows created before the flip
 * are routed as new flows (to the live color), mid-flow packets go to the live color, and
 * flows created on the old color after the flip (preview) stay. A backend id deleted and
 * given to a new backend does not inherit the old backend's flows.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "fixture.h"
#include "bgswitch_flow.h"

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

#define NV ARRAY_SIZE(variants)
#define NFLOWS 100
#define DRAIN_MS 1500

/* Clients inside the preview prefix (see test_preview.c): 10.99.77.0/24, fd00:99::c:1:0/112. */
static __u32 preview_client(__u8 family, __u32 k)
{
	return family == BGS_AF_INET ? 15250 + k % 250 : 0x10000 + k;
}

static int next_n = 10;

static bool svc_setup(const struct variant *v, int vip, struct fx_svc *s, __u32 nb)
{
	__u16 port = v->mode == BGS_MODE_NAT ? 8080 : 0;
	char name[32];
	bool ok = true;
	__u32 i, id;

	snprintf(name, sizeof(name), "dr%d_%s", vip, v->name);
	if (!fx_svc_add(s, name, v->family, vip, 80, v->proto, v->mode, 0))
		return false;
	for (i = 0; i < nb; i++) {
		ok &= fx_be_add(s, BGS_BLUE, FX_NET_BACKEND, next_n++, port, 0, &id);
		ok &= fx_be_add(s, BGS_GREEN, FX_NET_BACKEND, next_n++, port, 0, &id);
	}
	return ok;
}

/* Mid-flow packet without an entry goes to `color`'s table choice. */
static bool midflow(const struct fx_svc *s, __u32 c, __u16 sport, __u32 color)
{
	return fx_midflow(s, c, sport, color, NULL);
}

static bool test_drain_deadline(void)
{
	struct bgs_flip_opts fo = { .to_color = BGS_GREEN, .expect_gen = BGS_ANY_GEN,
				    .drain_ms = DRAIN_MS };
	__u32 old_be[NV][NFLOWS], pv_be[NV][NFLOWS], gen0[NV], id, hz;
	struct bgs_reason_counter r0[BGS_R_MAX], r1[BGS_R_MAX];
	struct fx_svc s[NV];
	struct bgs_flip flip[NV], now;
	struct bgs_prefix pfx;
	struct bgs_flow_key k;
	__u64 jiffies, deadline = 0;
	struct timespec t0, t1;
	struct pkt p;
	bool ok = true;
	size_t v;
	int i;

	for (v = 0; v < NV; v++) {
		if (!svc_setup(&variants[v], (int)v + 1, &s[v], 2))
			return false;
		test_ctx("%s: flows on blue", variants[v].name);
		for (i = 0; i < NFLOWS; i++)
			ok &= fx_flow_new(&s[v], (__u32)i, (__u16)(20000 + i), BGS_BLUE,
					  &old_be[v][i]);
		/* TCP flows established (so their state is no longer SYN-only) */
		for (i = 0; i < NFLOWS; i++)
			ok &= fx_flow_next(&s[v], (__u32)i, (__u16)(20000 + i), old_be[v][i]);
	}
	if (!ok)
		return false;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (v = 0; v < NV; v++) {
		if (!ASSERT_EQ(bgs_flip(fx.h, s[v].id, &fo, &flip[v]), 1, "flip with a drain"))
			return false;
		gen0[v] = bgs_fw_gen(flip[v].word);
		ok &= ASSERT_TRUE(flip[v].word & BGS_FW_DRAINING, "draining");
		ok &= ASSERT_EQ(bgs_flip_drain(&flip[v])->gen, gen0[v], "drain generation is the flip's");
		if (bgs_flip_drain(&flip[v])->deadline > deadline)
			deadline = bgs_flip_drain(&flip[v])->deadline;
	}
	if (!ASSERT_OK(bgs_clock(fx.h, &jiffies, &hz), "bgs_clock") || !ASSERT_GT(hz, 0, "HZ"))
		return false;
	ok &= ASSERT_GT(deadline, jiffies, "deadline in the future");
	ok &= ASSERT_LE(deadline, jiffies + (__u64)hz * (DRAIN_MS + 500) / 1000,
			"deadline about drain_ms from now");

	/* during the drain */
	for (v = 0; v < NV; v++) {
		const struct variant *var = &variants[v];

		test_ctx("%s: draining", var->name);
		for (i = 0; i < NFLOWS; i++)
			ok &= fx_flow_next(&s[v], (__u32)i, (__u16)(20000 + i), old_be[v][i]);
		if (var->proto == IPPROTO_TCP)
			for (i = 0; i < 20; i++)
				ok &= midflow(&s[v], (__u32)i, (__u16)(21000 + i), BGS_BLUE);
		/* flows that start on blue after the flip: preview sources */
		ok &= ASSERT_OK(bgs_prefix_parse(var->family == BGS_AF_INET ? "10.99.77.0/24" :
						 "fd00:99::c:1:0/112", &pfx), "prefix");
		ok &= ASSERT_OK(bgs_preview_add(fx.h, s[v].id, &pfx), "preview add");
		for (i = 0; i < 20; i++)
			ok &= fx_flow_new(&s[v], preview_client(var->family, (__u32)i),
					  (__u16)(22000 + i), BGS_BLUE, &pv_be[v][i]);
		fx_flip_get(&s[v], &flip[v]);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ok &= ASSERT_LT((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000,
			DRAIN_MS - 200, "the checks above ran well inside the drain");
	if (!ok)
		return false;

	/* wait, doing nothing, until the program's clock passes the deadline */
	for (i = 0; i < 200; i++) {
		if (!ASSERT_OK(bgs_clock(fx.h, &jiffies, &hz), "bgs_clock"))
			return false;
		if (jiffies > deadline)
			break;
		usleep(50000);
	}
	if (!ASSERT_GT(jiffies, deadline, "the deadline passed within 10 s"))
		return false;

	for (v = 0; v < NV; v++) {
		const struct variant *var = &variants[v];
		__u32 gen;

		/* nobody touched the flip word */
		fx_flip_get(&s[v], &now);
		ok &= ASSERT_EQ(now.word, flip[v].word, "flip word untouched since the flip");
		ok &= ASSERT_TRUE(now.word & BGS_FW_DRAINING, "draining bit still set");
		gen = bgs_fw_gen(now.word);

		test_ctx("%s: drain over, old flows re-chosen on green", var->name);
		fx_reasons(r0);
		for (i = 0; i < NFLOWS; i++) {
			fx_client_pkt(&p, &s[v], (__u32)i, (__u16)(20000 + i), PKT_ACK);
			pkt_flow_key(&p, &k);
			id = fx_table_pick(&s[v], BGS_GREEN, &k);
			ok &= fx_expect_fwd(&s[v], &p, id);
			ok &= fx_flow_check_ct(&s[v], &p, id, BGS_GREEN, gen);
			/* and it stays there */
			ok &= fx_expect_fwd(&s[v], &p, id);
		}
		fx_reasons(r1);
		ok &= ASSERT_EQ(r1[BGS_R_CT_STALE_DRAINED].packets -
				r0[BGS_R_CT_STALE_DRAINED].packets, NFLOWS,
				"ct_stale_drained counts each drained entry's first packet");
		if (var->proto == IPPROTO_TCP) {
			test_ctx("%s: drain over, mid-flow to green", var->name);
			for (i = 0; i < 20; i++)
				ok &= midflow(&s[v], (__u32)i, (__u16)(23000 + i), BGS_GREEN);
			/* the mid-flow packets without an entry sent to blue during the drain
			 * (evicted flows, another LB's flows, an outsider's ACKs) made entries:
			 * the drain ends for them too */
			test_ctx("%s: drain over, mid-flow entries made during it", var->name);
			for (i = 0; i < 20; i++) {
				fx_client_pkt(&p, &s[v], (__u32)i, (__u16)(21000 + i), PKT_ACK);
				pkt_flow_key(&p, &k);
				id = fx_table_pick(&s[v], BGS_GREEN, &k);
				ok &= fx_expect_fwd(&s[v], &p, id);
				ok &= fx_flow_check_ct(&s[v], &p, id, BGS_GREEN, gen);
			}
		}
		test_ctx("%s: drain over, blue flows begun after the flip stay", var->name);
		for (i = 0; i < 20; i++)
			ok &= fx_flow_next(&s[v], preview_client(var->family, (__u32)i),
					   (__u16)(22000 + i), pv_be[v][i]);
		test_ctx("%s", "");
		ok &= fx_svc_del(&s[v]);
	}
	return ok;
}

/* bgs_drain_end ends a drain at once (the operator's "drain end"). */
static bool test_drain_end_now(void)
{
	struct bgs_flip_opts fo = { .to_color = BGS_GREEN, .expect_gen = BGS_ANY_GEN,
				    .drain_ms = BGS_NO_DEADLINE };
	__u32 old_be[NFLOWS], id;
	struct bgs_flow_key k;
	struct bgs_flip after;
	struct fx_svc s;
	struct pkt p;
	bool ok = true;
	int i;

	if (!svc_setup(&variants[0], 20, &s, 2))
		return false;
	for (i = 0; i < NFLOWS; i++)
		ok &= fx_flow_new(&s, (__u32)i, (__u16)(24000 + i), BGS_BLUE, &old_be[i]);
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &fo, &after), 1, "flip without a deadline");
	ok &= ASSERT_EQ(bgs_flip_drain(&after)->deadline, BGS_NO_DEADLINE, "no deadline");
	for (i = 0; i < NFLOWS; i++)
		ok &= fx_flow_next(&s, (__u32)i, (__u16)(24000 + i), old_be[i]);
	ok &= ASSERT_OK(bgs_drain_end(fx.h, s.id, &after), "drain end");
	for (i = 0; i < NFLOWS; i++) {
		fx_client_pkt(&p, &s, (__u32)i, (__u16)(24000 + i), PKT_ACK);
		pkt_flow_key(&p, &k);
		id = fx_table_pick(&s, BGS_GREEN, &k);
		ok &= fx_expect_fwd(&s, &p, id);
	}
	/* a flip with drain_ms 0 ends its drain at once too */
	fo.to_color = BGS_BLUE;
	fo.drain_ms = 0;
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &fo, &after), 1, "flip, drain 0");
	for (i = 0; i < NFLOWS; i++) {
		fx_client_pkt(&p, &s, (__u32)i, (__u16)(24000 + i), PKT_ACK);
		pkt_flow_key(&p, &k);
		id = fx_table_pick(&s, BGS_BLUE, &k);
		ok &= fx_expect_fwd(&s, &p, id);
	}
	return fx_svc_del(&s) && ok;
}

/* A deleted backend id given to a new backend: the old flows do not follow the id. */
static bool test_backend_id_reuse(void)
{
	__u32 first[NFLOWS * 3], victim, victim_inc, nextra = 0, id, want, gen;
	struct bgs_backend_spec spec = { .port = 8080 };
	struct bgs_backend rec;
	struct bgs_flow_key k;
	struct bgs_flip fl;
	struct bgs_flow f;
	struct fx_svc s, filler;
	struct pkt p;
	int i, err, on_victim = 0, elsewhere = 0;
	bool ok = true;

	if (!svc_setup(&variants[0], 30, &s, 3))
		return false;
	for (i = 0; i < NFLOWS * 3; i++)
		ok &= fx_flow_new(&s, (__u32)i, (__u16)(25000 + i), BGS_BLUE, &first[i]);
	victim = first[0];
	ok &= ASSERT_OK(bgs_backend_get(fx.h, victim, &rec), "victim");
	victim_inc = rec.incarnation;

	/* use up every other id, so the next add must reuse the victim's */
	if (!ok || !fx_svc_add(&filler, "dr_filler", BGS_AF_INET, 31, 81, IPPROTO_TCP,
			       BGS_MODE_NAT, 0))
		goto fail;
	for (;;) {
		fx_be_ip(BGS_AF_INET, FX_NET_BACKEND, 150 + (int)nextra, &spec.addr);
		err = bgs_backend_add(fx.h, filler.id, BGS_GREEN, &spec, &id);
		if (err == -ENOSPC)
			break;
		if (!ASSERT_OK(err, "filler backend") || !ASSERT_LT(nextra, 64, "id space"))
			goto fail;
		nextra++;
	}
	ok &= ASSERT_TRUE(bgs_errmsg()[0], "ENOSPC says why");

	if (!fx_be_del(victim))
		goto fail;
	if (!fx_be_add(&s, BGS_BLUE, FX_NET_BACKEND, 140, 8080, 0, &id))
		goto fail;
	ok &= ASSERT_EQ(id, victim, "the freed id is given out again");
	ok &= ASSERT_OK(bgs_backend_get(fx.h, id, &rec), "reused id");
	ok &= ASSERT_NEQ(rec.incarnation, victim_inc, "with a new incarnation");

	fx_flip_get(&s, &fl);
	gen = bgs_fw_gen(fl.word);
	test_ctx("flows of the deleted backend %u", victim);
	for (i = 0; i < NFLOWS * 3; i++) {
		fx_client_pkt(&p, &s, (__u32)i, (__u16)(25000 + i), PKT_ACK);
		pkt_flow_key(&p, &k);
		if (first[i] != victim) {
			ok &= fx_expect_fwd(&s, &p, first[i]);
			continue;
		}
		on_victim++;
		/* re-chosen as a new flow: where the table says, with a fresh entry */
		want = fx_table_pick_word(&s, fl.word, BGS_BLUE, &k);
		elsewhere += want != victim;
		ok &= fx_expect_fwd(&s, &p, want);
		if (ASSERT_TRUE(fx_ct_get(&p, &f), "entry")) {
			ok &= ASSERT_EQ(f.backend_id, want, "ct backend");
			ok &= ASSERT_EQ(f.gen, gen, "ct entry re-created at this generation");
			if (ASSERT_OK(bgs_backend_get(fx.h, want, &rec), "get"))
				ok &= ASSERT_EQ(f.incarnation, rec.incarnation, "ct incarnation");
		}
	}
	test_logf("%d flows were on the deleted backend; %d of them now belong elsewhere",
		  on_victim, elsewhere);
	ok &= ASSERT_GT(on_victim, 0, "flows on the victim");
	ok &= ASSERT_GT(elsewhere, 0, "flows the reused id would have stolen");
out:
	test_ctx("%s", "");
	ok &= fx_svc_del(&filler);
	return fx_svc_del(&s) && ok;
fail:
	ok = false;
	goto out;
}

/*
 * Points a flow's entry at another backend of the same color that the table does not give
 * it (in use, current incarnation), so that whether the entry was followed or the flow was
 * re-chosen shows in where the next packet goes. Returns that backend, 0 on failure.
 */
static __u32 retarget_flow(const struct fx_svc *s, const struct pkt *p, __u32 color)
{
	struct bgs_backend rec;
	struct bgs_flow_key k;
	struct bgs_flow f;
	__u32 id, pick;

	pkt_flow_key(p, &k);
	pick = fx_table_pick(s, color, &k);
	if (!ASSERT_OK(bpf_map_lookup_elem(fx.ct_fd, &k, &f) ? -errno : 0, "ct lookup"))
		return 0;
	for (id = 1; id < fx.meta.max_backends; id++)
		if (fx.be[id].in_use && fx.be[id].svc_id == s->id && fx.be[id].color == color &&
		    id != pick)
			break;
	if (!ASSERT_LT(id, fx.meta.max_backends, "another backend of the color") ||
	    !ASSERT_OK(bgs_backend_get(fx.h, id, &rec), "backend get"))
		return 0;
	f.backend_id = id;
	f.incarnation = rec.incarnation;
	if (!ASSERT_OK(bpf_map_update_elem(fx.ct_fd, &k, &f, BPF_EXIST) ? -errno : 0,
		       "ct update"))
		return 0;
	return id;
}

/*
 * The documented idle timeouts (TCP SYN seen 60 s, established 900 s, after FIN/RST 30 s,
 * UDP 300 s): a flow idle a little less than its timeout keeps its backend; a little more
 * and it is re-chosen: a UDP flow as new (green, the live color, after a flip whose drain
 * runs), a TCP flow's ACK as a mid-flow packet without an entry (blue, the drained color).
 * Each entry is first pointed at a blue backend its table pick is not, so that "kept" and
 * "re-chosen" differ.
 */
static bool test_idle_timeouts(void)
{
	static const struct {
		const char *name;
		__u8 proto;
		__u8 setup_flags; /* second packet's flags (0: SYN only) */
		__u32 timeout;
	} cases[] = {
		{ "tcp syn seen", IPPROTO_TCP, 0, BGS_DEF_TIMEOUT_TCP_SYN },
		{ "tcp established", IPPROTO_TCP, PKT_ACK, BGS_DEF_TIMEOUT_TCP_EST },
		{ "tcp fin seen", IPPROTO_TCP, PKT_FIN | PKT_ACK, BGS_DEF_TIMEOUT_TCP_CLOSE },
		{ "tcp rst seen", IPPROTO_TCP, PKT_RST, BGS_DEF_TIMEOUT_TCP_CLOSE },
		{ "udp", IPPROTO_UDP, 0, BGS_DEF_TIMEOUT_UDP },
	};
	struct bgs_flip_opts fo = { .to_color = BGS_GREEN, .expect_gen = BGS_ANY_GEN,
				    .drain_ms = BGS_NO_DEADLINE };
	/* dsr: the client's FIN and RST close (in nat only the backend's do, test_routing) */
	const struct variant v4tcp = { "v4_tcp", BGS_AF_INET, IPPROTO_TCP, BGS_MODE_DSR };
	const struct variant v6udp = { "v6_udp", BGS_AF_INET6, IPPROTO_UDP, BGS_MODE_NAT };
	__u64 hz = fx.meta.hz;
	struct fx_svc st, su;
	struct bgs_flow_key k;
	struct pkt p;
	bool ok = true;
	size_t c;
	__u32 be_young, be_old, id;
	int j;

	if (!ASSERT_GT(hz, 0, "HZ known") || !svc_setup(&v4tcp, 40, &st, 3) ||
	    !svc_setup(&v6udp, 41, &su, 3))
		return false;
	for (c = 0; c < ARRAY_SIZE(cases); c++) {
		const struct fx_svc *s = cases[c].proto == IPPROTO_TCP ? &st : &su;
		__u16 sp = (__u16)(26000 + c * 10);

		test_ctx("%s", cases[c].name);
		/* two flows per case, both on blue */
		ok &= fx_flow_new(s, (__u32)c, sp, BGS_BLUE, &be_young);
		ok &= fx_flow_new(s, (__u32)c, sp + 1, BGS_BLUE, &be_old);
		if (cases[c].setup_flags) {
			for (j = 0; j < 2; j++) {
				fx_client_pkt(&p, s, (__u32)c, (__u16)(sp + j),
					      cases[c].setup_flags);
				ok &= fx_expect_fwd(s, &p, j ? be_old : be_young);
			}
		}
	}
	ok &= ASSERT_EQ(bgs_flip(fx.h, st.id, &fo, NULL), 1, "flip tcp");
	ok &= ASSERT_EQ(bgs_flip(fx.h, su.id, &fo, NULL), 1, "flip udp");
	for (c = 0; c < ARRAY_SIZE(cases) && ok; c++) {
		const struct fx_svc *s = cases[c].proto == IPPROTO_TCP ? &st : &su;
		__u16 sp = (__u16)(26000 + c * 10);
		struct bgs_flow f;

		__u32 to = cases[c].proto == IPPROTO_TCP ? BGS_BLUE : BGS_GREEN;

		test_ctx("%s, timeout %u s", cases[c].name, cases[c].timeout);
		/* young: idle timeout - 5 s; old: timeout + 5 s */
		fx_client_pkt(&p, s, (__u32)c, sp, PKT_ACK);
		be_young = retarget_flow(s, &p, BGS_BLUE);
		ok &= ASSERT_GT(be_young, 0, "retarget") && fx_ct_get(&p, &f) &&
		      fx_age_flow(&p, (cases[c].timeout - 5) * hz);
		ok &= fx_expect_fwd(s, &p, be_young);
		fx_client_pkt(&p, s, (__u32)c, sp + 1, PKT_ACK);
		ok &= ASSERT_GT(retarget_flow(s, &p, BGS_BLUE), 0, "retarget") &&
		      fx_ct_get(&p, &f) && fx_age_flow(&p, (cases[c].timeout + 5) * hz);
		pkt_flow_key(&p, &k);
		id = fx_table_pick(s, to, &k);
		ok &= fx_expect_fwd(s, &p, id);
		ok &= fx_flow_check_ct(s, &p, id, to, FX_ANY_GEN);
	}
	test_ctx("%s", "");
	ok &= fx_svc_del(&su);
	return fx_svc_del(&st) && ok;
}

/*
 * The program enforces the timeouts stored in bgs_meta (what user space reads), not a copy:
 * bgs_init stored the defaults there; with the established timeout rewritten to 100 s an
 * established flow idle 95 s keeps its backend and one idle 105 s is re-chosen.
 */
static bool test_timeouts_from_meta(void)
{
	struct bgs_flip_opts fo = { .to_color = BGS_GREEN, .expect_gen = BGS_ANY_GEN,
				    .drain_ms = BGS_NO_DEADLINE };
	const struct variant v = { "v4_tcp", BGS_AF_INET, IPPROTO_TCP, BGS_MODE_DSR };
	struct bgs_flow_timeouts def;
	struct bgs_meta m, saved;
	struct bgs_flow_key k;
	__u64 hz = fx.meta.hz;
	__u32 zero = 0, be0, be1, id;
	int meta_fd = bgs_map_fd(fx.h, "meta");
	struct fx_svc s;
	struct pkt p;
	bool ok = true;

	bgs_flow_timeouts_default(&def);
	if (!ASSERT_GE(meta_fd, 0, "meta fd") ||
	    !ASSERT_OK(bpf_map_lookup_elem(meta_fd, &zero, &saved) ? -errno : 0, "read meta"))
		return false;
	ok &= ASSERT_EQ(memcmp(&saved.timeouts, &def, sizeof(def)), 0, "defaults stored");
	bgs_get_meta(fx.h, &m);
	ok &= ASSERT_EQ(memcmp(&m.timeouts, &def, sizeof(def)), 0, "handle's copy");
	ok &= ASSERT_EQ(saved.timeouts.tcp_est, BGS_DEF_TIMEOUT_TCP_EST, "established");
	if (!ok || !svc_setup(&v, 43, &s, 3))
		return false;
	ok &= fx_flow_new(&s, 1, 28000, BGS_BLUE, &be0);
	ok &= fx_flow_new(&s, 1, 28001, BGS_BLUE, &be1);
	ok &= fx_flow_next(&s, 1, 28000, be0) && fx_flow_next(&s, 1, 28001, be1);
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &fo, NULL), 1, "flip");
	m = saved;
	m.timeouts.tcp_est = 100;
	ok &= ASSERT_OK(bpf_map_update_elem(meta_fd, &zero, &m, BPF_ANY) ? -errno : 0, "write");
	fx_client_pkt(&p, &s, 1, 28000, PKT_ACK);
	be0 = retarget_flow(&s, &p, BGS_BLUE);
	ok &= ASSERT_GT(be0, 0, "retarget") && fx_age_flow(&p, 95 * hz) && fx_expect_fwd(&s, &p, be0);
	fx_client_pkt(&p, &s, 1, 28001, PKT_ACK);
	ok &= ASSERT_GT(retarget_flow(&s, &p, BGS_BLUE), 0, "retarget") && fx_age_flow(&p, 105 * hz);
	pkt_flow_key(&p, &k);
	id = fx_table_pick(&s, BGS_BLUE, &k);
	ok &= fx_expect_fwd(&s, &p, id) && fx_flow_check_ct(&s, &p, id, BGS_BLUE, FX_ANY_GEN);
	ok &= ASSERT_OK(bpf_map_update_elem(meta_fd, &zero, &saved, BPF_ANY) ? -errno : 0,
			"restore");
	return fx_svc_del(&s) && ok;
}

/*
 * A flow that only idled out is treated as mid-flow, not new (item 5): during a drain, an
 * established blue flow idle past its timeout sends an ACK: it goes where a mid-flow packet
 * without an entry goes (blue, the drained color), with an entry the drain ends for; a SYN
 * on such a flow is a new flow (green). After the drain, the ACK's flow moves to green.
 */
static bool test_idle_is_midflow(void)
{
	static const struct variant vs[] = {
		{ "v4_tcp_nat", BGS_AF_INET, IPPROTO_TCP, BGS_MODE_NAT },
		{ "v6_tcp_dsr", BGS_AF_INET6, IPPROTO_TCP, BGS_MODE_DSR },
	};
	struct bgs_flip_opts fo = { .to_color = BGS_GREEN, .expect_gen = BGS_ANY_GEN,
				    .drain_ms = BGS_NO_DEADLINE };
	struct bgs_reason_counter r0[BGS_R_MAX], r1[BGS_R_MAX];
	__u64 hz = fx.meta.hz;
	struct bgs_flow_key k;
	struct bgs_flip after;
	struct bgs_flow f;
	struct fx_svc s;
	struct pkt p;
	__u32 be[10], id, gen;
	bool ok = true;
	size_t v;
	int i;

	for (v = 0; v < ARRAY_SIZE(vs) && ok; v++) {
		test_ctx("%s", vs[v].name);
		if (!svc_setup(&vs[v], 44 + (int)v, &s, 3))
			return false;
		for (i = 0; i < 10; i++) {
			ok &= fx_flow_new(&s, (__u32)i, (__u16)(29000 + i), BGS_BLUE, &be[i]);
			ok &= fx_flow_next(&s, (__u32)i, (__u16)(29000 + i), be[i]);
		}
		ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &fo, &after), 1, "flip, drain runs");
		gen = bgs_fw_gen(after.word);
		fx_reasons(r0);
		for (i = 0; i < 10; i++) {
			fx_client_pkt(&p, &s, (__u32)i, (__u16)(29000 + i), i < 5 ? PKT_ACK : PKT_SYN);
			ok &= fx_ct_get(&p, &f) && fx_age_flow(&p, (BGS_DEF_TIMEOUT_TCP_EST + 5) * hz);
			pkt_flow_key(&p, &k);
			if (i < 5) {
				/* idle ACK: mid-flow, the drained color, drained with it */
				id = fx_table_pick(&s, BGS_BLUE, &k);
				ok &= fx_expect_fwd(&s, &p, id);
				ok &= fx_flow_check_ct(&s, &p, id, BGS_BLUE, gen - 1);
			} else {
				/* idle SYN: a new connection on the tuple */
				id = fx_table_pick(&s, BGS_GREEN, &k);
				ok &= fx_expect_fwd(&s, &p, id);
				ok &= fx_flow_check_ct(&s, &p, id, BGS_GREEN, gen);
			}
		}
		fx_reasons(r1);
		ok &= ASSERT_EQ(r1[BGS_R_CT_STALE_IDLE].packets - r0[BGS_R_CT_STALE_IDLE].packets,
				10, "ct_stale_idle counts each idle entry's first packet");
		ok &= ASSERT_EQ(r1[BGS_R_CT_STALE_DRAINED].packets -
				r0[BGS_R_CT_STALE_DRAINED].packets, 0, "... and nothing else");
		ok &= ASSERT_OK(bgs_drain_end(fx.h, s.id, &after), "drain end");
		for (i = 0; i < 5; i++) {
			fx_client_pkt(&p, &s, (__u32)i, (__u16)(29000 + i), PKT_ACK);
			pkt_flow_key(&p, &k);
			ok &= fx_expect_fwd(&s, &p, fx_table_pick(&s, BGS_GREEN, &k));
		}
		ok &= fx_svc_del(&s);
	}
	test_ctx("%s", "");
	return ok;
}

/* Flows (client, 30000 + i) of s, i < n, and mid-flow packets without an entry (client,
 * 30100 + round * 20 + i) all go to blue: the first to their backends, the others to blue's
 * table picks. */
static bool all_blue(const struct fx_svc *s, const __u32 *be, int n, int round)
{
	bool ok = true;
	int i;

	for (i = 0; i < n; i++)
		ok &= fx_flow_next(s, (__u32)i, (__u16)(30000 + i), be[i]);
	for (i = 0; i < 20; i++)
		ok &= midflow(s, (__u32)i, (__u16)(30100 + round * 20 + i), BGS_BLUE);
	return ok;
}

/*
 * Drain fields are read consistently (item 8). While green is live and blue drains for
 * ever (word W1), a writer prepares the next flip (to blue, drain 0: deadline 0 and a new
 * drain generation) but has not published its word yet. A packet that holds W1 must
 * decide by W1 whatever the writer has stored so far: blue's old flows keep their
 * backends and mid-flow packets go to blue. The writer stores into the copy W1 does not
 * select, gen first, then deadline; each partial state is checked. (With the fields
 * rewritten in place, the state "deadline 0 stored, gen not yet" pairs W1 with a drain
 * that is over: blue's flows would be re-chosen onto green just before the flip sends
 * new flows to blue.)
 */
static bool test_drain_fields_consistent(void)
{
	static const struct variant vs[] = {
		{ "v4_tcp_dsr", BGS_AF_INET, IPPROTO_TCP, BGS_MODE_DSR },
		{ "v6_tcp_nat", BGS_AF_INET6, IPPROTO_TCP, BGS_MODE_NAT },
	};
	struct bgs_flip_opts fo = { .to_color = BGS_GREEN, .expect_gen = BGS_ANY_GEN,
				    .drain_ms = BGS_NO_DEADLINE };
	struct bgs_flip w1, fl;
	struct fx_svc s;
	__u32 be[10], key, next, g1;
	bool ok = true;
	size_t v;
	int i;

	for (v = 0; v < ARRAY_SIZE(vs) && ok; v++) {
		test_ctx("%s", vs[v].name);
		if (!svc_setup(&vs[v], 46 + (int)v, &s, 3))
			return false;
		for (i = 0; i < 10; i++) {
			ok &= fx_flow_new(&s, (__u32)i, (__u16)(30000 + i), BGS_BLUE, &be[i]);
			ok &= fx_flow_next(&s, (__u32)i, (__u16)(30000 + i), be[i]);
		}
		ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &fo, &w1), 1, "flip, blue drains for ever");
		g1 = bgs_fw_gen(w1.word);
		ok &= all_blue(&s, be, 10, 0);
		key = s.id;
		next = bgs_fw_drain_copy(w1.word) ^ 1; /* the copy the next publish selects */
		ok &= ASSERT_OK(bpf_map_lookup_elem(fx.flip_fd, &key, &fl) ? -errno : 0, "read");
		fl.drain[next].gen = g1 + 1;
		ok &= ASSERT_OK(bpf_map_update_elem(fx.flip_fd, &key, &fl, BPF_ANY) ? -errno : 0,
				"gen staged");
		test_ctx("%s: gen staged", vs[v].name);
		ok &= all_blue(&s, be, 10, 1);
		fl.drain[next].deadline = 0;
		ok &= ASSERT_OK(bpf_map_update_elem(fx.flip_fd, &key, &fl, BPF_ANY) ? -errno : 0,
				"deadline staged");
		test_ctx("%s: gen and deadline staged", vs[v].name);
		ok &= all_blue(&s, be, 10, 2);
		/* the library's writer stages the same way */
		fl.drain[next].gen = 0;
		fl.drain[next].deadline = 12345;
		ok &= ASSERT_OK(bpf_map_update_elem(fx.flip_fd, &key, &fl, BPF_ANY) ? -errno : 0,
				"reset");
		ok &= ASSERT_EQ(bgs_flip_drain_stage(&fl, w1.word, 0, g1 + 1),
				w1.word ^ BGS_FW_DRAIN_COPY, "staged word selects the other copy");
		ok &= ASSERT_EQ(fl.drain[next].gen, g1 + 1, "gen in the other copy") &&
		      ASSERT_EQ(fl.drain[next].deadline, 0, "deadline in the other copy");
		ok &= ASSERT_MEMEQ(bgs_flip_drain(&fl), bgs_flip_drain(&w1),
				   sizeof(struct bgs_drain), "the current copy untouched");
		ok &= ASSERT_OK(bpf_map_update_elem(fx.flip_fd, &key, &fl, BPF_ANY) ? -errno : 0,
				"staged by bgs_flip_drain_stage");
		test_ctx("%s: staged by the library's writer", vs[v].name);
		ok &= all_blue(&s, be, 10, 3);
		ok &= fx_svc_del(&s);
	}
	test_ctx("%s", "");
	return ok;
}

/* last_seen moves at most about once a second: many packets within a second leave it, a
 * packet a second later moves it. */
static bool test_last_seen_coarse(void)
{
	const struct variant v = { "v4_udp", BGS_AF_INET, IPPROTO_UDP, BGS_MODE_NAT };
	struct bgs_flow f0, f1;
	struct fx_svc s;
	struct pkt p;
	__u32 be;
	bool ok = true;
	int i;

	if (!svc_setup(&v, 42, &s, 1))
		return false;
	ok &= fx_flow_new(&s, 1, 27000, BGS_BLUE, &be);
	fx_client_pkt(&p, &s, 1, 27000, 0);
	ok &= ASSERT_TRUE(fx_ct_get(&p, &f0), "entry");
	/* spread over 300 ms: many jiffies pass, less than a second */
	for (i = 0; i < 30; i++) {
		ok &= fx_flow_next(&s, 1, 27000, be);
		usleep(10000);
	}
	ok &= ASSERT_TRUE(fx_ct_get(&p, &f1), "entry");
	ok &= ASSERT_EQ(f1.last_seen, f0.last_seen, "last_seen unchanged within the second");
	usleep(1100000);
	ok &= fx_flow_next(&s, 1, 27000, be);
	ok &= ASSERT_TRUE(fx_ct_get(&p, &f1), "entry");
	ok &= ASSERT_GE(f1.last_seen, f0.last_seen + fx.meta.hz, "last_seen moved a second on");
	return fx_svc_del(&s) && ok;
}

static const struct test_case tests[] = {
	{ "drain_deadline", test_drain_deadline },
	{ "drain_end_now", test_drain_end_now },
	{ "backend_id_reuse", test_backend_id_reuse },
	{ "idle_timeouts", test_idle_timeouts },
	{ "timeouts_from_meta", test_timeouts_from_meta },
	{ "idle_is_midflow", test_idle_is_midflow },
	{ "drain_fields_consistent", test_drain_fields_consistent },
	{ "last_seen_coarse", test_last_seen_coarse },
};

int main(int argc, char **argv)
{
	/* few backend ids, so that id reuse can be forced */
	struct bgs_sizes sz = { .max_services = 8, .max_backends = 48, .maglev_size = 1021,
				.ct_entries = 16384 };

	return fx_main(argc, argv, &sz, tests, ARRAY_SIZE(tests), 120);
}
