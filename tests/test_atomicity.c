// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Flip atomicity (issue item 9). One thread publishes new generations in a tight loop
 * through the library: it prepares a fresh set of backends in the idle pool (adds new
 * ones, deletes the old ones: each a table rebuilt in a free slot and published), then
 * flips to it, and flips back and forth. After every call it records, for the generation
 * the call published, which backends (id, incarnation, address) the live pool held.
 * Meanwhile reader threads run the program on random new flows. For every run, the
 * backend in the output frame and in the flow's conntrack entry must be one of exactly the
 * generation that entry records: zero inconsistent packets and zero lost packets over at
 * least 1,000,000 runs.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <bpf/bpf.h>

#include "fixture.h"

#define READERS 2
#define RUNS_PER_READER 500000
#define MAX_GENS (1 << 16)
#define POOL 2		/* backends per prepared set */
#define TIME_LIMIT_S 100

struct gen_rec {
	bool valid;
	__u8 live;
	__u8 n;
	__u32 id[POOL * 2];
	__u32 inc[POOL * 2];
	__u32 addr[POOL * 2]; /* IPv4, network order */
};

/* One run as a reader saw it. */
struct run_rec {
	__u32 gen;
	__u32 backend_id;
	__u32 inc;
	__u32 addr; /* destination of the output frame */
	__u8 color;
	__u8 status; /* RUN_* */
};

enum { RUN_OK, RUN_NOT_FWD, RUN_BAD_FRAME, RUN_NO_CT };

static struct gen_rec *gens;
static struct fx_svc svc;
static atomic_int readers_left;
static atomic_bool stop;
static double t_start;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Records the live pool for every generation from after `from` through the current one. */
static bool record(__u32 from, __u32 *now_gen)
{
	struct bgs_backend be;
	struct bgs_flip f;
	struct gen_rec r = { .valid = true };
	__u32 ids[POOL * 4], g, gen;
	int n, i;

	if (!fx_flip_get(&svc, &f))
		return false;
	gen = bgs_fw_gen(f.word);
	r.live = (__u8)bgs_fw_live(f.word);
	n = bgs_pool_list(fx.h, svc.id, r.live, ids, POOL * 4);
	if (!ASSERT_GT(n, 0, "live pool listed") || !ASSERT_LE(n, POOL * 2, "live pool size"))
		return false;
	for (i = 0; i < n; i++) {
		if (!ASSERT_OK(bgs_backend_get(fx.h, ids[i], &be), "backend get"))
			return false;
		r.id[i] = ids[i];
		r.inc[i] = be.incarnation;
		r.addr[i] = be.addr[0];
	}
	r.n = (__u8)n;
	if (!ASSERT_LT(gen, MAX_GENS, "generation fits the record"))
		return false;
	for (g = from + 1; g <= gen; g++)
		gens[g] = r;
	*now_gen = gen;
	return true;
}

static bool flip_to(__u32 color, __u32 *gen)
{
	struct bgs_flip_opts o = { .to_color = (int)color, .expect_gen = BGS_ANY_GEN,
				   .drain_ms = BGS_NO_DEADLINE };
	__u32 before = *gen;
	bool ok;

	ok = ASSERT_EQ(bgs_flip(fx.h, svc.id, &o, NULL), 1, "flip");
	ok = ok && record(*gen, gen);
	/* a flip is one publish */
	return ok && ASSERT_EQ(*gen, before + 1, "a flip publishes one generation");
}

struct pub_stats {
	unsigned long gens, flips, sets;
	bool ok;
};

static void *publisher(void *arg)
{
	struct pub_stats *st = arg;
	__u32 gen = 0, live = BGS_BLUE, idle, old[POOL * 2], id;
	int next = 20, n, i, k;

	test_ctx("publisher");
	st->ok = record(0, &gen);
	while (st->ok && atomic_load(&readers_left) > 0 && !atomic_load(&stop)) {
		idle = live ^ 1;
		/* prepare a fresh set in the idle pool: new backends in, old ones out */
		n = bgs_pool_list(fx.h, svc.id, idle, old, POOL * 2);
		for (k = 0; k < POOL && st->ok; k++) {
			st->ok = fx_be_add(&svc, idle, FX_NET_BACKEND, next, 8080, 0, &id) &&
				 record(gen, &gen);
			next = next >= 190 ? 20 : next + 1;
		}
		for (i = 0; i < n && st->ok; i++)
			st->ok = fx_be_del(old[i]) && record(gen, &gen);
		/* publish it, then flip back and forth over the two prepared sets */
		st->ok = st->ok && flip_to(idle, &gen) && flip_to(live, &gen) &&
			 flip_to(idle, &gen);
		live = idle;
		st->flips += 3;
		st->sets++;
		if (now_s() - t_start > TIME_LIMIT_S)
			atomic_store(&stop, true);
	}
	st->gens = gen;
	if (!st->ok)
		atomic_store(&stop, true);
	return NULL;
}

struct reader {
	int idx;
	struct run_rec *runs;
	unsigned long done;
};

static void *reader(void *arg)
{
	struct reader *rd = arg;
	struct bgs_flow_key k;
	struct bgs_flow f;
	__u8 in[PKT_MAX];
	struct fx_out o;
	struct pkt p, out;
	unsigned long i;
	int len;

	for (i = 0; i < RUNS_PER_READER && !atomic_load(&stop); i++) {
		struct run_rec *r = &rd->runs[i];

		fx_client_pkt(&p, &svc, (__u32)(i % 50000),
			      (__u16)(1024 + rd->idx * 100 + i / 50000), PKT_SYN);
		p.payload_len = 0;
		len = pkt_build(&p, in, sizeof(in));
		if (fx_run(in, (__u32)len, fx.if_lb0, &o)) {
			r->status = RUN_NOT_FWD;
			continue;
		}
		if (o.retval != XDP_REDIRECT) {
			r->status = RUN_NOT_FWD;
			r->addr = o.retval;
			continue;
		}
		if (pkt_parse(o.data, o.len, &out, NULL, 0) || out.dport != 8080 ||
		    memcmp(out.src, p.src, 16) || out.ttl != 63 ||
		    memcmp(out.smac, fx.mac_lb1, 6) || out.dmac[5] != ((__u8 *)out.dst)[3]) {
			r->status = RUN_BAD_FRAME;
			continue;
		}
		r->addr = out.dst[0];
		pkt_flow_key(&p, &k);
		if (bpf_map_lookup_elem(fx.ct_fd, &k, &f)) {
			r->status = RUN_NO_CT;
			continue;
		}
		r->gen = f.gen;
		r->backend_id = f.backend_id;
		r->inc = f.incarnation;
		r->color = f.color;
		r->status = RUN_OK;
	}
	rd->done = i;
	atomic_fetch_sub(&readers_left, 1);
	return NULL;
}

static bool check(const struct reader *rd, unsigned long *distinct_gens)
{
	static const char *const what[] = { "ok", "not forwarded", "bad output frame",
					    "no conntrack entry" };
	unsigned long i, bad = 0;
	static unsigned char seen[MAX_GENS];
	char a[48];
	int j;

	for (i = 0; i < rd->done; i++) {
		const struct run_rec *r = &rd->runs[i];
		const struct gen_rec *g;

		if (r->status != RUN_OK) {
			if (bad++ < 10)
				FAILF("reader %d run %lu: %s (%u)", rd->idx, i, what[r->status],
				      r->addr);
			continue;
		}
		g = r->gen < MAX_GENS ? &gens[r->gen] : NULL;
		if (!g || !g->valid) {
			if (bad++ < 10)
				FAILF("reader %d run %lu: generation %u was never published",
				      rd->idx, i, r->gen);
			continue;
		}
		if (!seen[r->gen]) {
			seen[r->gen] = 1;
			(*distinct_gens)++;
		}
		for (j = 0; j < g->n; j++)
			if (g->id[j] == r->backend_id && g->inc[j] == r->inc &&
			    g->addr[j] == r->addr)
				break;
		if (j == g->n || r->color != g->live) {
			__u32 addr4[4] = { r->addr, 0, 0, 0 };

			if (bad++ < 10)
				FAILF("reader %d run %lu: generation %u (live %u) sent the flow to "
				      "backend %u incarnation %u at %s, color %u: not of that "
				      "generation", rd->idx, i, r->gen, g->live, r->backend_id,
				      r->inc, pkt_addr_str(BGS_AF_INET, addr4, a, sizeof(a)),
				      r->color);
		}
	}
	return ASSERT_EQ(bad, 0, "inconsistent or lost packets");
}

static bool test_flip_atomicity(void)
{
	struct bgs_reason_counter rs0[BGS_R_MAX], rs1[BGS_R_MAX];
	struct reader rd[READERS];
	struct pub_stats ps = {};
	pthread_t pt, rt[READERS];
	unsigned long total = 0, distinct = 0;
	__u32 id;
	bool ok = true;
	int i;

	gens = calloc(MAX_GENS, sizeof(*gens));
	if (!gens || !fx_svc_add(&svc, "atomic", BGS_AF_INET, 1, 80, IPPROTO_TCP, BGS_MODE_NAT, 0))
		return false;
	for (i = 0; i < POOL; i++) {
		ok &= fx_be_add(&svc, BGS_BLUE, FX_NET_BACKEND, 2 + i, 8080, 0, &id);
		ok &= fx_be_add(&svc, BGS_GREEN, FX_NET_BACKEND, 10 + i, 8080, 0, &id);
	}
	if (!ok)
		return false;
	atomic_store(&readers_left, READERS);
	atomic_store(&stop, false);
	t_start = now_s();
	for (i = 0; i < READERS; i++) {
		rd[i] = (struct reader){ .idx = i,
					 .runs = calloc(RUNS_PER_READER, sizeof(struct run_rec)) };
		if (!rd[i].runs)
			return false;
	}
	fx_reasons(rs0);
	pthread_create(&pt, NULL, publisher, &ps);
	for (i = 0; i < READERS; i++)
		pthread_create(&rt[i], NULL, reader, &rd[i]);
	for (i = 0; i < READERS; i++)
		pthread_join(rt[i], NULL);
	pthread_join(pt, NULL);

	fx_reasons(rs1);
	for (i = 0; i < BGS_R_MAX; i++)
		if (i != BGS_R_FWD_REDIRECT && rs1[i].packets != rs0[i].packets)
			test_logf("verdict %s: %llu packets", bgs_reason_name((enum bgs_reason)i),
				  (unsigned long long)(rs1[i].packets - rs0[i].packets));
	for (i = 0; i < READERS; i++) {
		ok &= check(&rd[i], &distinct);
		total += rd[i].done;
		free(rd[i].runs);
	}
	test_logf("%lu runs in %.1f s; publisher: %lu generations, %lu backend sets, %lu flips; "
		  "runs saw %lu distinct generations", total, now_s() - t_start, ps.gens, ps.sets,
		  ps.flips, distinct);
	ok &= ASSERT_TRUE(ps.ok, "publisher ran without errors");
	ok &= ASSERT_GE(total, 1000000, "runs");
	ok &= ASSERT_GE(ps.sets, 10, "backend sets published during the runs");
	ok &= ASSERT_GE(distinct, 30, "generations seen by the runs");
	free(gens);
	return fx_svc_del(&svc) && ok;
}

static const struct test_case tests[] = {
	{ "flip_atomicity", test_flip_atomicity },
};

int main(int argc, char **argv)
{
	struct bgs_sizes sz = { .max_services = 4, .max_backends = 64, .maglev_size = 1021,
				.ct_entries = 262144, .new_flow_rate = 50000000 };

	return fx_main(argc, argv, &sz, tests, ARRAY_SIZE(tests), 180);
}
