// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Fresh-flow marks (bgs_fresh): while a drain runs, a TCP mid-flow packet without an entry
 * goes to the drained color, unless its flow's SYN started it during this drain (on the live
 * color): then it goes live, as the flow started. Conntrack eviction is simulated by deleting
 * the entry; "never inserted" by tripping the SYN-flood guard. An old flow (before the flip)
 * whose entry is gone still goes to the drained color; another drain's marks do not match;
 * without a drain nothing is marked and nothing changes. A line keeps its last
 * BGS_FRESH_WAYS marks (the bound docs/datapath.md gives for a lost mark). The counters
 * ct_midflow, midflow_drained and midflow_fresh count what happened.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "fixture.h"
#include "bgswitch_flow.h"
#include "bgswitch_hash.h"

/* SYN-flood guard of this binary: new entries per CPU per second. */
#define RATE 1000

struct variant {
	const char *name;
	__u8 family, mode;
};

static const struct variant variants[] = {
	{ "v4_nat", BGS_AF_INET, BGS_MODE_NAT },
	{ "v6_dsr", BGS_AF_INET6, BGS_MODE_DSR },
};

#define NV ARRAY_SIZE(variants)
#define NFLOWS 24

static int next_n = 10;
static int next_vip = 1;

static bool svc_setup(const struct variant *v, struct fx_svc *s)
{
	__u16 port = v->mode == BGS_MODE_NAT ? 8080 : 0;
	char name[32];
	bool ok = true;
	__u32 i, id;

	snprintf(name, sizeof(name), "fr%d_%s", next_vip, v->name);
	if (!fx_svc_add(s, name, v->family, next_vip++, 80, IPPROTO_TCP, v->mode, 0))
		return false;
	for (i = 0; i < 3; i++) {
		ok &= fx_be_add(s, BGS_BLUE, FX_NET_BACKEND, next_n++, port, 0, &id);
		ok &= fx_be_add(s, BGS_GREEN, FX_NET_BACKEND, next_n++, port, 0, &id);
	}
	return ok;
}

static bool flip(const struct fx_svc *s, int to, __u64 drain_ms, struct bgs_flip *after)
{
	struct bgs_flip_opts fo = { .to_color = to, .expect_gen = BGS_ANY_GEN,
				    .drain_ms = drain_ms };

	return ASSERT_EQ(bgs_flip(fx.h, s->id, &fo, after), 1, "flip");
}

/* The conntrack entry of (client, sport) removed, as an LRU eviction would. */
static bool evict(const struct fx_svc *s, __u32 c, __u16 sport)
{
	struct pkt p;

	fx_client_pkt(&p, s, c, sport, PKT_ACK);
	return ASSERT_OK(fx_ct_delete(&p), "delete the entry");
}

/* A mid-flow ACK of (client, sport) with no entry goes to `color`'s table choice, and the
 * entry it makes says so, with generation gen. */
static bool ack_goes(const struct fx_svc *s, __u32 c, __u16 sport, __u32 color, __u32 gen)
{
	struct pkt p;
	__u32 id;

	if (!fx_midflow(s, c, sport, color, &id))
		return false;
	fx_client_pkt(&p, s, c, sport, PKT_ACK);
	return fx_flow_check_ct(s, &p, id, color, gen);
}

/* The line of bgs_fresh of (client, sport) (as the program picks it) into *line; *idx its
 * index. */
static bool fresh_line_of(const struct fx_svc *s, __u32 c, __u16 sport, struct bgs_fresh_line *line,
			  __u32 *idx)
{
	struct bgs_flow_key k;
	char path[160];
	struct pkt p;
	int fd;
	bool ok;

	fx_client_pkt(&p, s, c, sport, PKT_SYN);
	pkt_flow_key(&p, &k);
	*idx = bgs_hash_flow(&k, fx.meta.maglev_seed) & (bgs_fresh_lines(fx.meta.ct_entries) - 1);
	snprintf(path, sizeof(path), "%s/bgs_fresh", fx.pin_dir);
	fd = bpf_obj_get(path);
	if (!ASSERT_GE(fd, 0, "bgs_fresh pinned"))
		return false;
	ok = ASSERT_OK(bpf_map_lookup_elem(fd, idx, line) ? -errno : 0, "read bgs_fresh");
	close(fd);
	return ok;
}

/* Whether (client, sport)'s line of bgs_fresh holds its stamp of drain drain_gen. */
static bool marked(const struct fx_svc *s, __u32 c, __u16 sport, __u32 drain_gen, bool *found)
{
	struct bgs_fresh_line line;
	struct bgs_flow_key k;
	struct pkt p;
	__u32 idx, stamp, i;

	fx_client_pkt(&p, s, c, sport, PKT_SYN);
	pkt_flow_key(&p, &k);
	stamp = bgs_fresh_stamp(&k, s->id, drain_gen);
	*found = false;
	if (!fresh_line_of(s, c, sport, &line, &idx))
		return false;
	for (i = 0; i < BGS_FRESH_WAYS; i++)
		*found |= line.mark[i].stamp == stamp;
	return true;
}

/*
 * Flows on blue, a flip to green with a drain, new flows on green: their entries deleted,
 * their ACKs still go to green; the old flows' go to blue (the drained color) as before, and
 * so does an ACK nobody's SYN started. A second flip (back to blue: green drained, another
 * drain) does not honour the first drain's marks: the flows begun on green go to green as
 * old flows of this drain.
 */
static bool test_evicted_fresh_flow_stays_live(void)
{
	struct bgs_reason_counter r0[BGS_R_MAX], r1[BGS_R_MAX];
	__u32 be, gen, drain_gen;
	struct bgs_flip after;
	bool found;
	struct fx_svc s;
	bool ok = true;
	size_t v;
	int i;

	for (v = 0; v < NV; v++) {
		test_ctx("%s", variants[v].name);
		if (!svc_setup(&variants[v], &s))
			return false;
		for (i = 0; i < NFLOWS; i++) {
			ok &= fx_flow_new(&s, (__u32)i, (__u16)(20000 + i), BGS_BLUE, &be);
			ok &= fx_flow_next(&s, (__u32)i, (__u16)(20000 + i), be);
		}
		ok &= flip(&s, BGS_GREEN, BGS_NO_DEADLINE, &after);
		gen = bgs_fw_gen(after.word);
		drain_gen = bgs_flip_drain(&after)->gen;
		ok &= ASSERT_EQ(drain_gen, gen, "the drain is the flip's");
		for (i = 0; i < NFLOWS; i++) {
			ok &= fx_flow_new(&s, (__u32)i, (__u16)(30000 + i), BGS_GREEN, &be);
			ok &= marked(&s, (__u32)i, (__u16)(30000 + i), drain_gen, &found);
			ok &= ASSERT_TRUE(found, "the SYN marked its tuple with this drain's stamp");
		}
		if (!ok)
			return false;
		fx_reasons(r0);
		test_ctx("%s: evicted, begun after the flip", variants[v].name);
		for (i = 0; i < NFLOWS; i++) {
			ok &= evict(&s, (__u32)i, (__u16)(30000 + i));
			ok &= ack_goes(&s, (__u32)i, (__u16)(30000 + i), BGS_GREEN, gen);
			/* and twice (the second time through the entry the ACK made) */
			ok &= evict(&s, (__u32)i, (__u16)(30000 + i));
			ok &= ack_goes(&s, (__u32)i, (__u16)(30000 + i), BGS_GREEN, gen);
		}
		test_ctx("%s: evicted, begun before the flip", variants[v].name);
		for (i = 0; i < NFLOWS; i++) {
			ok &= evict(&s, (__u32)i, (__u16)(20000 + i));
			ok &= ack_goes(&s, (__u32)i, (__u16)(20000 + i), BGS_BLUE, drain_gen - 1);
		}
		test_ctx("%s: no SYN seen", variants[v].name);
		for (i = 0; i < NFLOWS; i++)
			ok &= ack_goes(&s, (__u32)i, (__u16)(31000 + i), BGS_BLUE, drain_gen - 1);

		fx_reasons(r1);
		ok &= ASSERT_EQ(r1[BGS_R_CT_MIDFLOW].packets - r0[BGS_R_CT_MIDFLOW].packets,
				4 * NFLOWS, "ct_midflow counts every ACK without an entry");
		ok &= ASSERT_EQ(r1[BGS_R_MIDFLOW_FRESH].packets - r0[BGS_R_MIDFLOW_FRESH].packets,
				2 * NFLOWS, "midflow_fresh counts those kept live by their mark");
		ok &= ASSERT_EQ(r1[BGS_R_MIDFLOW_DRAINED].packets -
					r0[BGS_R_MIDFLOW_DRAINED].packets,
				2 * NFLOWS, "midflow_drained counts those sent to the drained color");
		test_ctx("%s: a second drain", variants[v].name);
		ok &= flip(&s, BGS_BLUE, BGS_NO_DEADLINE, &after);
		ok &= ASSERT_GT(bgs_flip_drain(&after)->gen, drain_gen, "a new drain");
		drain_gen = bgs_flip_drain(&after)->gen;
		for (i = 0; i < NFLOWS; i++) {
			ok &= evict(&s, (__u32)i, (__u16)(30000 + i));
			/* a match would send it live (blue) */
			ok &= ack_goes(&s, (__u32)i, (__u16)(30000 + i), BGS_GREEN, drain_gen - 1);
		}
		test_ctx("%s", "");
		ok &= fx_svc_del(&s);
	}
	return ok;
}

/*
 * The SYN-flood guard refuses the inserts of most of a burst of SYNs during a drain: those
 * flows have no entry from the start, yet their ACKs go to the live color, like the tracked
 * ones'.
 */
static bool test_untracked_fresh_flow_stays_live(void)
{
	struct bgs_reason_counter before[BGS_R_MAX], after[BGS_R_MAX];
	enum { BURST = 3 * RATE };
	static __u32 be[BURST];
	__u32 old_be[NFLOWS];
	struct bgs_flip fl;
	struct fx_svc s;
	struct pkt p;
	struct bgs_flow f;
	unsigned long untracked = 0;
	bool ok = true;
	int i;

	if (!fx_pin_cpu0() || !svc_setup(&variants[0], &s))
		return false;
	for (i = 0; i < NFLOWS; i++)
		ok &= fx_flow_new(&s, (__u32)i, 5000, BGS_BLUE, &old_be[i]);
	ok &= flip(&s, BGS_GREEN, BGS_NO_DEADLINE, &fl);
	sleep(1); /* a fresh one-second window of the guard */
	fx_reasons(before);
	for (i = 0; i < BURST; i++) {
		struct bgs_flow_key k;

		fx_client_pkt(&p, &s, (__u32)i, 6000, PKT_SYN);
		pkt_flow_key(&p, &k);
		be[i] = fx_table_pick(&s, BGS_GREEN, &k);
		ok &= fx_expect_fwd(&s, &p, be[i]);
	}
	fx_reasons(after);
	for (i = 0; i < BURST; i++) {
		fx_client_pkt(&p, &s, (__u32)i, 6000, PKT_SYN);
		untracked += !fx_ct_get(&p, &f);
	}
	test_logf("%d SYNs during a drain at a guard of %d per second: %lu untracked, %llu "
		  "counted ct_skipped", BURST, RATE, untracked,
		  (unsigned long long)(after[BGS_R_CT_SKIPPED].packets -
				       before[BGS_R_CT_SKIPPED].packets));
	ok &= ASSERT_GE(untracked, (unsigned long)RATE, "the guard left flows untracked");
	/* every ACK live: the untracked ones make no entry (the guard tripped within the
	 * last second), the tracked ones use theirs */
	for (i = 0; i < BURST; i++) {
		fx_client_pkt(&p, &s, (__u32)i, 6000, PKT_ACK);
		ok &= ASSERT_EQ(fx.be[be[i]].color, BGS_GREEN, "live backend") &&
		      fx_expect_fwd(&s, &p, be[i]);
	}
	fx_reasons(before);
	ok &= ASSERT_EQ(before[BGS_R_MIDFLOW_FRESH].packets - after[BGS_R_MIDFLOW_FRESH].packets,
			untracked, "midflow_fresh: each untracked flow's ACK");
	/* the old flows (before the flip), evicted: still blue */
	for (i = 0; i < NFLOWS; i++) {
		struct bgs_flow_key k;

		ok &= evict(&s, (__u32)i, 5000);
		fx_client_pkt(&p, &s, (__u32)i, 5000, PKT_ACK);
		pkt_flow_key(&p, &k);
		ok &= ASSERT_EQ(fx_table_pick(&s, BGS_BLUE, &k), old_be[i], "old flow's backend") &&
		      fx_expect_fwd(&s, &p, old_be[i]);
	}
	return fx_svc_del(&s) && ok;
}

/*
 * No drain: a SYN marks nothing, and an evicted flow's ACK goes live, as before. A drain
 * ended (bgs_drain_end): the marks of that drain no longer matter, everything goes live.
 */
static bool test_no_drain_unchanged(void)
{
	struct bgs_flip after;
	struct fx_svc s;
	__u32 be, gen;
	bool ok = true, found;
	int i;

	if (!svc_setup(&variants[1], &s))
		return false;
	ok &= flip(&s, BGS_GREEN, 0, &after); /* a flip whose drain ends at once */
	ok &= ASSERT_TRUE(fx_flip_get(&s, &after), "flip state");
	gen = bgs_fw_gen(after.word);
	for (i = 0; i < NFLOWS; i++) {
		ok &= fx_flow_new(&s, (__u32)i, (__u16)(40000 + i), BGS_GREEN, &be);
		ok &= marked(&s, (__u32)i, (__u16)(40000 + i), bgs_flip_drain(&after)->gen,
			     &found);
		ok &= ASSERT_FALSE(found, "no mark without a drain");
		ok &= evict(&s, (__u32)i, (__u16)(40000 + i));
		ok &= ack_goes(&s, (__u32)i, (__u16)(40000 + i), BGS_GREEN, gen);
		ok &= ack_goes(&s, (__u32)i, (__u16)(41000 + i), BGS_GREEN, gen);
	}
	/* a drain, marks, then the drain ended */
	ok &= flip(&s, BGS_BLUE, BGS_NO_DEADLINE, &after);
	for (i = 0; i < NFLOWS; i++)
		ok &= fx_flow_new(&s, (__u32)i, (__u16)(42000 + i), BGS_BLUE, &be);
	ok &= ASSERT_OK(bgs_drain_end(fx.h, s.id, &after), "drain end");
	gen = bgs_fw_gen(after.word);
	for (i = 0; i < NFLOWS; i++) {
		ok &= evict(&s, (__u32)i, (__u16)(42000 + i));
		ok &= ack_goes(&s, (__u32)i, (__u16)(42000 + i), BGS_BLUE, gen);
		ok &= evict(&s, (__u32)i, (__u16)(40000 + i));
		ok &= ack_goes(&s, (__u32)i, (__u16)(40000 + i), BGS_BLUE, gen);
	}
	return fx_svc_del(&s) && ok;
}

/*
 * A line keeps the last BGS_FRESH_WAYS marks: that many new flows whose Maglev hashes pick
 * one line all stay live when evicted; one more SYN in that line replaces the oldest mark,
 * and that flow, evicted, goes to the drained color (the documented false negative).
 */
static bool test_line_keeps_last_marks(void)
{
	enum { N = BGS_FRESH_WAYS + 1, NCLIENTS = 224 * 250 /* distinct v4 clients */ };
	__u32 c[N], be, idx, want, i, n = 0, drain_gen, mask;
	struct bgs_fresh_line line;
	__u16 sp[N], port;
	struct bgs_flip after;
	struct bgs_flow_key k;
	struct fx_svc s;
	struct pkt p;
	bool ok = true;

	if (!svc_setup(&variants[0], &s))
		return false;
	/* a line no mark uses yet, and N tuples whose Maglev hashes pick it */
	mask = bgs_fresh_lines(fx.meta.ct_entries) - 1;
	for (i = 0;; i++) {
		if (!ASSERT_LT(i, 1000, "an unused line") || !fresh_line_of(&s, i, 50000, &line, &want))
			return false;
		for (n = 0; n < BGS_FRESH_WAYS && !line.mark[n].stamp; n++)
			;
		if (n == BGS_FRESH_WAYS)
			break;
	}
	n = 0;
	for (port = 50000; port < 60000 && n < N; port++) {
		for (i = 0; i < NCLIENTS && n < N; i++) {
			fx_client_pkt(&p, &s, i, port, PKT_SYN);
			pkt_flow_key(&p, &k);
			idx = bgs_hash_flow(&k, fx.meta.maglev_seed) & mask;
			if (idx == want) {
				c[n] = i;
				sp[n++] = port;
			}
		}
	}
	if (!ASSERT_EQ(n, N, "tuples sharing a line found"))
		return false;
	ok &= flip(&s, BGS_GREEN, BGS_NO_DEADLINE, &after);
	drain_gen = bgs_flip_drain(&after)->gen;
	for (i = 0; i < BGS_FRESH_WAYS; i++)
		ok &= fx_flow_new(&s, c[i], sp[i], BGS_GREEN, &be);
	for (i = 0; i < BGS_FRESH_WAYS; i++) {
		ok &= evict(&s, c[i], sp[i]);
		ok &= ack_goes(&s, c[i], sp[i], BGS_GREEN, bgs_fw_gen(after.word));
	}
	/* one more: the first mark goes */
	ok &= fx_flow_new(&s, c[BGS_FRESH_WAYS], sp[BGS_FRESH_WAYS], BGS_GREEN, &be);
	for (i = 0; i < N; i++) {
		bool found;

		test_ctx("flow %u of %u in one line", i, N);
		ok &= marked(&s, c[i], sp[i], drain_gen, &found);
		ok &= i == 0 ? ASSERT_FALSE(found, "the oldest mark replaced") :
			       ASSERT_TRUE(found, "a later mark kept");
		ok &= evict(&s, c[i], sp[i]);
		ok &= ack_goes(&s, c[i], sp[i], i == 0 ? BGS_BLUE : BGS_GREEN,
			       i == 0 ? drain_gen - 1 : bgs_fw_gen(after.word));
	}
	test_ctx("%s", "");
	return fx_svc_del(&s) && ok;
}

/* A nat reply without an entry must come from the backend the flow's own next packet goes
 * to; expect it translated (to the kernel: the clients have no neighbour) or dropped. */
static bool reply_goes(const struct fx_svc *s, __u32 c, __u16 sport, __u32 be_id, bool ok_be)
{
	struct pkt o, r, e;

	fx_client_pkt(&o, s, c, sport, PKT_ACK);
	fx_reply_pkt(&r, &o, be_id, PKT_ACK);
	if (!ok_be)
		return fx_expect_reply(&r, fx.be[be_id].ifindex, XDP_DROP,
				       BGS_R_DROP_REPLY_NO_FLOW, NULL, "reply, not its backend");
	fx_expected_reply_kernel(s, &o, &r, s->port, &e);
	return fx_expect_reply(&r, fx.be[be_id].ifindex, XDP_PASS, BGS_R_PASS_REPLY_UNTRACKED,
			       &e, "reply of an evicted flow, from its backend");
}

/*
 * nat, during a drain, outside a flood: the reply of an evicted flow (its request went
 * through, its entry was evicted before the answer) is translated when it comes from the
 * backend the flow's next client packet goes to — the drained color's for a flow begun
 * before the flip, the live color's for one begun after it (its mark) — and dropped from
 * a backend of the other color.
 */
static bool test_reply_of_evicted_flow(void)
{
	__u32 old_be[NFLOWS], new_be[NFLOWS], other;
	struct bgs_flow_key k;
	struct bgs_flip after;
	struct fx_svc s;
	struct pkt p;
	bool ok = true;
	int i;

	if (!svc_setup(&variants[0], &s))
		return false;
	for (i = 0; i < NFLOWS; i++) {
		ok &= fx_flow_new(&s, (__u32)i, (__u16)(45000 + i), BGS_BLUE, &old_be[i]);
		ok &= fx_flow_next(&s, (__u32)i, (__u16)(45000 + i), old_be[i]);
	}
	ok &= flip(&s, BGS_GREEN, BGS_NO_DEADLINE, &after);
	for (i = 0; i < NFLOWS; i++)
		ok &= fx_flow_new(&s, (__u32)i, (__u16)(46000 + i), BGS_GREEN, &new_be[i]);
	for (i = 0; i < NFLOWS && ok; i++) {
		test_ctx("flow %d", i);
		ok &= evict(&s, (__u32)i, (__u16)(45000 + i));
		ok &= evict(&s, (__u32)i, (__u16)(46000 + i));
		ok &= reply_goes(&s, (__u32)i, (__u16)(45000 + i), old_be[i], true);
		ok &= reply_goes(&s, (__u32)i, (__u16)(46000 + i), new_be[i], true);
		/* the other color's pick for the same tuples */
		fx_client_pkt(&p, &s, (__u32)i, (__u16)(45000 + i), PKT_ACK);
		pkt_flow_key(&p, &k);
		other = fx_table_pick(&s, BGS_GREEN, &k);
		ok &= reply_goes(&s, (__u32)i, (__u16)(45000 + i), other, false);
		fx_client_pkt(&p, &s, (__u32)i, (__u16)(46000 + i), PKT_ACK);
		pkt_flow_key(&p, &k);
		other = fx_table_pick(&s, BGS_BLUE, &k);
		ok &= reply_goes(&s, (__u32)i, (__u16)(46000 + i), other, false);
	}
	test_ctx("%s", "");
	return fx_svc_del(&s) && ok;
}

static const struct test_case tests[] = {
	{ "evicted_fresh_flow_stays_live", test_evicted_fresh_flow_stays_live },
	{ "no_drain_unchanged", test_no_drain_unchanged },
	{ "line_keeps_last_marks", test_line_keeps_last_marks },
	{ "reply_of_evicted_flow", test_reply_of_evicted_flow },
	{ "untracked_fresh_flow_stays_live", test_untracked_fresh_flow_stays_live },
};

int main(int argc, char **argv)
{
	struct bgs_sizes sz = { .max_services = 8, .max_backends = 64, .maglev_size = 1021,
				.ct_entries = 16384, .new_flow_rate = RATE };

	return fx_main(argc, argv, &sz, tests, ARRAY_SIZE(tests), 120);
}
