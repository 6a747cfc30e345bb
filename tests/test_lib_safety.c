// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libbgswitch under concurrency and failure, on the real pinned maps: a routing change is a
 * compare-and-swap on the generation its caller read (the "already live" answer too), and a
 * refused one says what it found; a next-hop change keeps the backend's id, incarnation,
 * counters and flows, and no packet sent meanwhile leaves with a mix of old and new MAC;
 * the lock is waited for with a deadline (a stopped holder costs a clear refusal naming it)
 * and is not held while next hops resolve; the audit history records each change in lock
 * order (intent, then outcome), resolves an intent its writer never confirmed, refuses a
 * change it cannot record unless it is an emergency, and refuses unsafe files (history and
 * pin directory).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <time.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
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

/* A caller that compares the routing it read (opts.expect) is not refused by a publish that
 * moved only the pools (a backend added: the generation moves), and is refused when the
 * routing itself changed (a flip, a canary). */
static bool test_cas_decision(void)
{
	struct bgs_flip_opts o = { .to_color = BGS_ANY_COLOR, .expect_gen = BGS_ANY_GEN,
				   .drain_ms = 0 };
	struct bgs_flip before, after, now;
	struct fx_svc s;
	bool ok = true;
	__u32 id;

	if (!two_pools(&s, "casd", 1) || !fx_flip_get(&s, &before))
		return false;
	/* a pool publish between the read and the flip */
	ok &= fx_be_add(&s, BGS_BLUE, FX_NET_BACKEND, 200, 8080, 0, &id);
	ok &= fx_flip_get(&s, &now);
	ok &= ASSERT_TRUE(bgs_fw_gen(now.word) != bgs_fw_gen(before.word), "the pool moved the generation");
	o.expect = &before;
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, &after), 1, "flip on an unchanged routing");
	ok &= ASSERT_EQ(bgs_fw_live(after.word), BGS_GREEN, "green live");
	/* the same read again: its routing (blue live) is gone */
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, &after), -ESTALE, "a second flip from that read");
	ok &= ASSERT_TRUE(strstr(bgs_errmsg(), "routing changed") != NULL, bgs_errmsg());
	ok &= fx_flip_get(&s, &now);
	ok &= ASSERT_EQ(bgs_fw_live(now.word), BGS_GREEN, "still green: nothing published");
	/* canary: a pool publish does not refuse it, a canary change does */
	ok &= fx_flip_get(&s, &before);
	ok &= fx_be_add(&s, BGS_GREEN, FX_NET_BACKEND, 201, 8080, 0, &id);
	ok &= ASSERT_EQ(bgs_canary_set_expect(fx.h, s.id, 500, false, &before, &after), 0,
			"canary on an unchanged routing");
	ok &= ASSERT_EQ(bgs_fw_canary(after.word), 500, "canary 5%");
	ok &= ASSERT_EQ(bgs_canary_set_expect(fx.h, s.id, 900, false, &before, &after), -ESTALE,
			"canary from a read before the last canary");
	ok &= ASSERT_EQ(bgs_fw_canary(after.word), 500, "after: the canary found");
	ok &= fx_svc_del(&s);
	return ok;
}

/* Sends one flow's packets while the next hop changes; every frame must go to the old
 * or the new MAC whole (or to the kernel, while the record says "unresolved"). */
struct sender {
	const struct fx_svc *s;
	struct pkt p;
	__u8 old_mac[6], new_mac[6];
	atomic_bool stop;
	unsigned long sent, to_old, passed, torn;
	volatile unsigned long to_new;
};

static void *sender_run(void *arg)
{
	struct sender *t = arg;
	struct fx_out o;

	while (!atomic_load(&t->stop)) {
		if (fx_run_pkt(&t->p, fx.if_lb0, &o))
			continue;
		t->sent++;
		if (o.retval == XDP_PASS)
			t->passed++;
		else if (!memcmp(o.data, t->old_mac, 6))
			t->to_old++;
		else if (!memcmp(o.data, t->new_mac, 6))
			t->to_new++;
		else
			t->torn++;
	}
	return NULL;
}

static bool test_nexthop_in_place(void)
{
	struct bgs_resolve_result r;
	struct bgs_backend before, after;
	struct bgs_counter c0, c1;
	struct sender t = {};
	struct fx_svc s;
	pthread_t th;
	char a[64];
	__u32 id, found;
	int n = next_n++, i;
	bool ok = true;

	if (!fx_svc_add(&s, "nh", BGS_AF_INET, 2, 80, IPPROTO_TCP, BGS_MODE_NAT, 0) ||
	    !fx_be_add(&s, BGS_BLUE, FX_NET_BACKEND, n, 8080, 0, &id))
		return false;
	ok &= fx_flow_new(&s, 7, 40000, BGS_BLUE, &id);
	for (i = 0; i < 10; i++)
		ok &= fx_flow_next(&s, 7, 40000, id);
	ok &= ASSERT_OK(bgs_backend_get(fx.h, id, &before), "record before");
	ok &= ASSERT_OK(bgs_backend_counters(fx.h, id, &c0), "counters before");
	ok &= ASSERT_GE(c0.packets, 11, "the backend counted the flow's packets");

	/* The backend's MAC changes (a replaced machine, a failover of its address). */
	memcpy(t.old_mac, fx.be[id].mac, 6);
	memcpy(t.new_mac, fx.be[id].mac, 6);
	t.new_mac[4] = 0xff;
	fx_be_ip(BGS_AF_INET, FX_NET_BACKEND, n, &fx.be[id].ip);
	bgs_ip_str(&fx.be[id].ip, a, sizeof(a));
	ok &= ASSERT_OK(fx_sh("ip neigh replace %s lladdr 02:be:%02x:%02x:ff:%02x dev lb1 nud "
			      "permanent", a, t.new_mac[2], t.new_mac[3], t.new_mac[5]),
			"neighbour MAC change");
	t.s = &s;
	fx_client_pkt(&t.p, &s, 7, 40000, PKT_ACK);
	ok &= ASSERT_OK(pthread_create(&th, NULL, sender_run, &t), "sender");
	usleep(20000);
	ok &= ASSERT_OK(bgs_backend_resolve(fx.h, s.id, &r), "resolve");
	/* Until the sender has seen the new MAC a while (it shares 2 busy CPUs). */
	for (i = 0; i < 2000 && t.to_new < 100; i++)
		usleep(1000);
	atomic_store(&t.stop, true);
	pthread_join(th, NULL);
	test_logf("under traffic: %lu packets, %lu to the old MAC, %lu passed while unresolved, "
		  "%lu to the new MAC", t.sent, t.to_old, t.passed, t.to_new);
	ok &= ASSERT_EQ(r.changed, 1, "one next hop changed");
	ok &= ASSERT_EQ(r.unresolved, 0, "none left unresolved");
	ok &= ASSERT_EQ(t.torn, 0, "no frame with a MAC that is neither old nor new");
	ok &= ASSERT_GT(t.to_new, 0, "traffic reached the new MAC");

	ok &= ASSERT_OK(bgs_backend_find(fx.h, s.id, &fx.be[id].ip, 8080, &found), "find");
	ok &= ASSERT_EQ(found, id, "the backend keeps its id");
	ok &= ASSERT_OK(bgs_backend_get(fx.h, id, &after), "record after");
	ok &= ASSERT_EQ(after.incarnation, before.incarnation, "and its incarnation");
	ok &= ASSERT_MEMEQ(after.dmac, t.new_mac, 6, "the record has the new MAC");
	ok &= ASSERT_TRUE(after.flags & BGS_BE_NEXTHOP, "resolved again");
	ok &= ASSERT_OK(bgs_backend_counters(fx.h, id, &c1), "counters after");
	ok &= ASSERT_GE(c1.packets, c0.packets + t.to_old + t.to_new, "counters kept, not reset");
	/* The established flow stays on its backend, now at the new MAC. */
	memcpy(fx.be[id].mac, t.new_mac, 6);
	ok &= fx_flow_next(&s, 7, 40000, id);
	ok &= fx_flow_check_ct(&s, &t.p, id, BGS_BLUE, FX_ANY_GEN);
	/* Nothing changed: nothing written. */
	ok &= ASSERT_OK(bgs_backend_resolve(fx.h, BGS_ALL_SERVICES, &r), "resolve again");
	ok &= ASSERT_EQ(r.changed, 0, "a second resolve changes nothing");
	ok &= fx_svc_del(&s);
	return ok;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A process that takes the pin directory's flock and stops (an operator's Ctrl-Z). */
static pid_t stopped_holder(void)
{
	pid_t pid = fork();
	int fd;

	if (pid == 0) {
		fd = open(fx.pin_dir, O_RDONLY | O_DIRECTORY);
		if (fd < 0 || flock(fd, LOCK_EX))
			_exit(1);
		raise(SIGSTOP);
		_exit(0);
	}
	return pid;
}

static bool test_lock_deadline(void)
{
	struct bgs_flip_opts o = { .to_color = BGS_ANY_COLOR, .expect_gen = BGS_ANY_GEN };
	char want[64];
	struct fx_svc s;
	double t0, waited;
	bool ok = true;
	pid_t pid;
	int st, err;

	if (!two_pools(&s, "lk", 3))
		return false;
	pid = stopped_holder();
	if (!ASSERT_GT(pid, 0, "fork"))
		return false;
	ok &= ASSERT_EQ(waitpid(pid, &st, WUNTRACED), pid, "holder stopped");
	ok &= ASSERT_TRUE(WIFSTOPPED(st), "holder stopped with the lock");
	bgs_set_lock_timeout(fx.h, 300);
	t0 = now_ms();
	err = bgs_flip(fx.h, s.id, &o, NULL);
	waited = now_ms() - t0;
	test_logf("refused after %.0f ms: %s", waited, bgs_errmsg());
	ok &= ASSERT_EQ(err, -EBUSY, "flip while a stopped process holds the lock");
	ok &= ASSERT_GE(waited, 300, "waited the timeout");
	ok &= ASSERT_LT(waited, 600, "and not much longer");
	snprintf(want, sizeof(want), "held by pid %d", (int)pid);
	ok &= ASSERT_TRUE(strstr(bgs_errmsg(), want) != NULL, "the message names the holder");
	bgs_set_lock_timeout(fx.h, 0);
	ok &= ASSERT_EQ(bgs_canary_set(fx.h, s.id, 100, false, BGS_ANY_GEN, NULL), -EBUSY,
			"timeout 0: one try");
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, NULL), 1, "the holder gone: the flip applies");
	bgs_set_lock_timeout(fx.h, BGS_LOCK_TIMEOUT_MS);
	ok &= fx_svc_del(&s);
	return ok;
}

struct resolver {
	__u32 svc_id;
	atomic_bool done;
	int err;
	double ms;
};

static void *resolver_run(void *arg)
{
	struct resolver *r = arg;
	struct bgs *h;
	double t0 = now_ms();

	/* Its own handle, as a second process or the agent's worker thread would have. */
	r->err = bgs_open(fx.pin_dir, &h);
	if (!r->err) {
		r->err = bgs_backend_resolve(h, r->svc_id, NULL);
		bgs_close(h);
	}
	r->ms = now_ms() - t0;
	atomic_store(&r->done, true);
	return NULL;
}

/* Four backends without a neighbour take ~50 ms each to give up on: a flip meanwhile
 * must not wait for that. */
static bool test_resolve_unlocked(void)
{
	struct bgs_flip_opts o = { .to_color = BGS_ANY_COLOR, .expect_gen = BGS_ANY_GEN };
	struct resolver r = {};
	struct fx_svc s;
	double t0, worst = 0, d;
	int flips = 0, i;
	pthread_t th;
	bool ok = true;
	__u32 id;

	if (!two_pools(&s, "slow", 4))
		return false;
	for (i = 0; i < 4; i++)
		ok &= fx_be_add(&s, BGS_GREEN, FX_NET_BACKEND, FX_UNRESOLVED_N + i, 8080, 0, &id);
	r.svc_id = s.id;
	ok &= ASSERT_OK(pthread_create(&th, NULL, resolver_run, &r), "resolver");
	while (!atomic_load(&r.done)) {
		t0 = now_ms();
		ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, NULL), 1, "flip during resolve");
		d = now_ms() - t0;
		worst = d > worst ? d : worst;
		flips++;
		usleep(2000);
	}
	pthread_join(th, NULL);
	test_logf("resolve took %.0f ms; %d flips meanwhile, the slowest %.1f ms", r.ms, flips,
		  worst);
	ok &= ASSERT_OK(r.err, "resolve");
	ok &= ASSERT_GE(r.ms, 150, "resolution waited for the missing neighbours");
	ok &= ASSERT_GE(flips, 10, "flips went on meanwhile");
	ok &= ASSERT_LT(worst, 100, "no flip waited for the resolution (~200 ms)");
	ok &= fx_svc_del(&s);
	return ok;
}

/* Ids the pool's live table gives out over many flows, as a bit set. */
static __u64 pool_picks(const struct fx_svc *s, __u32 color)
{
	struct bgs_flow_key k;
	struct pkt p;
	__u64 set = 0;
	__u32 i, id;

	for (i = 0; i < 400; i++) {
		fx_client_pkt(&p, s, i, (__u16)(20000 + i), PKT_SYN);
		pkt_flow_key(&p, &k);
		id = fx_table_pick(s, color, &k);
		if (id < 64)
			set |= 1ULL << id;
	}
	return set;
}

struct state_snap {
	struct bgs_backend be[8];
	__u64 picks[2];
};

static void snap(const struct fx_svc *s, const __u32 *ids, struct state_snap *st)
{
	int i;

	for (i = 0; i < 8; i++)
		bgs_backend_get(fx.h, ids[i], &st->be[i]);
	st->picks[0] = pool_picks(s, BGS_BLUE);
	st->picks[1] = pool_picks(s, BGS_GREEN);
}

static bool snap_same(const struct state_snap *a, const struct state_snap *b, const char *what)
{
	bool ok = true;

	test_ctx("%s", what);
	ok &= ASSERT_MEMEQ(a->be, b->be, sizeof(a->be), "every record as it was");
	ok &= ASSERT_EQ(a->picks[0], b->picks[0], "blue's table gives out the same backends");
	ok &= ASSERT_EQ(a->picks[1], b->picks[1], "green's table gives out the same backends");
	test_ctx("%s", "");
	return ok;
}

/* A set of health changes is one publish per pool, and applies whole or not at all: a
 * bad change anywhere in the batch, a reused id, or a failed publish of its second pool
 * leaves records and tables as they were. */
static bool test_batch_state(void)
{
	struct bgs_backend_change c[5];
	struct state_snap before, after;
	struct bgs_flip f0, f1;
	struct fx_svc s;
	__u32 ids[8], id2;
	bool ok = true;
	int i;

	if (!fx_svc_add(&s, "batch", BGS_AF_INET, 4, 80, IPPROTO_TCP, BGS_MODE_NAT, 0))
		return false;
	for (i = 0; i < 8; i++)
		ok &= fx_be_add(&s, i < 4 ? BGS_BLUE : BGS_GREEN, FX_NET_BACKEND, next_n++, 8080,
				0, &ids[i]);
	if (!ok)
		return false;
	/* three blue and two green go down at once */
	for (i = 0; i < 5; i++)
		c[i] = (struct bgs_backend_change){ .id = ids[i < 3 ? i : i + 1],
						    .admin = BGS_KEEP, .health = BGS_HEALTH_DOWN };
	snap(&s, ids, &before);

	/* the last change is bad: nothing applies */
	c[4].health = 7;
	ok &= ASSERT_EQ(bgs_backend_set_state(fx.h, c, 5), -EINVAL, "a bad state in the batch");
	c[4].health = BGS_HEALTH_DOWN;
	c[4].incarnation = before.be[5].incarnation + 1; /* c[4] is ids[5] */
	ok &= ASSERT_EQ(bgs_backend_set_state(fx.h, c, 5), -ESTALE, "a stale incarnation");
	c[4].incarnation = 0;
	snap(&s, ids, &after);
	ok &= snap_same(&before, &after, "refused batches");

	/* the second pool's publish fails: the first pool's is undone */
	setenv("BGS_FAULT", "set_state_publish@2", 1);
	ok &= ASSERT_EQ(bgs_backend_set_state(fx.h, c, 5), -EIO, "second publish fails");
	unsetenv("BGS_FAULT");
	ok &= ASSERT_TRUE(strstr(bgs_errmsg(), "nothing was changed") != NULL, bgs_errmsg());
	snap(&s, ids, &after);
	ok &= snap_same(&before, &after, "failed second publish");

	ok &= fx_flip_get(&s, &f0);
	ok &= ASSERT_OK(bgs_backend_set_state(fx.h, c, 5), "batch");
	ok &= fx_flip_get(&s, &f1);
	ok &= ASSERT_EQ(bgs_fw_gen(f1.word), bgs_fw_gen(f0.word) + 2, "one publish per pool");
	snap(&s, ids, &after);
	ok &= ASSERT_EQ(after.picks[0], 1ULL << ids[3], "blue: only the one left up");
	ok &= ASSERT_EQ(after.picks[1], (1ULL << ids[6]) | (1ULL << ids[7]),
			"green: the two left up");
	for (i = 0; i < 5; i++)
		ok &= ASSERT_EQ(after.be[i < 3 ? i : i + 1].health, BGS_HEALTH_DOWN, "record");

	/* admin and health of one backend in one change: one publish */
	c[0] = (struct bgs_backend_change){ .id = ids[0], .admin = BGS_ADMIN_DRAIN,
					    .health = BGS_HEALTH_UP };
	ok &= ASSERT_OK(bgs_backend_set_state(fx.h, c, 1), "admin and health at once");
	ok &= fx_flip_get(&s, &f0);
	ok &= ASSERT_EQ(bgs_fw_gen(f0.word), bgs_fw_gen(f1.word), "still unusable: no publish");

	/* an id freed and given to another backend is not the one found */
	id2 = ids[1];
	ok &= ASSERT_OK(bgs_backend_get(fx.h, id2, &before.be[0]), "get");
	ok &= fx_be_del(id2);
	ok &= fx_be_add(&s, BGS_BLUE, FX_NET_BACKEND, next_n++, 8080, 0, &ids[1]);
	ok &= ASSERT_EQ(ids[1], id2, "the lowest free id is given out again");
	c[0] = (struct bgs_backend_change){ .id = id2, .incarnation = before.be[0].incarnation,
					    .admin = BGS_ADMIN_DOWN, .health = BGS_KEEP };
	ok &= ASSERT_EQ(bgs_backend_set_state(fx.h, c, 1), -ESTALE, "the old backend's change");
	ok &= ASSERT_EQ(bgs_backend_remove(fx.h, id2, before.be[0].incarnation), -ESTALE,
			"the old backend's delete");
	ok &= ASSERT_OK(bgs_backend_get(fx.h, id2, &after.be[0]), "the new backend");
	ok &= ASSERT_EQ(after.be[0].admin, BGS_ADMIN_UP, "untouched");
	ok &= fx_svc_del(&s);
	return ok;
}

#define HIST_DIR "/run/bgs-hist"
#define HIST_PATH HIST_DIR "/history.jsonl"

/* Every record of the history file, parsed (NULL-terminated, caller frees). */
static json_object **hist_read(int *n)
{
	json_object **r = NULL;
	char *line = NULL;
	size_t cap = 0;
	FILE *f = fopen(HIST_PATH, "r");

	*n = 0;
	while (f && getline(&line, &cap, f) > 0) {
		r = realloc(r, (size_t)(*n + 2) * sizeof(*r));
		r[(*n)++] = json_tokener_parse(line);
		r[*n] = NULL;
	}
	if (f)
		fclose(f);
	free(line);
	return r;
}

static void hist_free(json_object **r, int n)
{
	for (int i = 0; i < n; i++)
		json_object_put(r[i]);
	free(r);
}

#define ASSERT_STREQ(a, b, what)                                                  \
	({                                                                        \
		const char *___a = (a), *___b = (b);                              \
		bool ___ok = !strcmp(___a, ___b);                                 \
		if (!___ok)                                                       \
			FAILF("%s: expected \"%s\", got \"%s\"", (what), ___b, ___a); \
		___ok;                                                            \
	})

static const char *jstr_of(json_object *o, const char *k)
{
	json_object *v;

	return o && json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

static long long jint_of(json_object *o, const char *k)
{
	json_object *v;

	return o && json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : -1;
}

static bool test_history(void)
{
	struct bgs_flip_opts o = { .to_color = BGS_ANY_COLOR, .expect_gen = BGS_ANY_GEN };
	struct bgs_change_info ci = { .verb = "failover", .service = "hist",
				      .reason = "failover: blue has no healthy backend" };
	struct bgs_history *hs = NULL;
	struct bgs_flip f;
	struct fx_svc s;
	json_object **r;
	char det[64];
	bool ok = true;
	int n, n0;
	FILE *fp;

	mkdir(HIST_DIR, 0755);
	if (!two_pools(&s, "hist", 5) || !ASSERT_OK(bgs_history_open(HIST_PATH, "bgagent", &hs),
						       "open history"))
		return false;
	bgs_set_history(fx.h, hs);
	ci.svc_id = s.id;

	/* A change: intent then outcome, one id, who and why. */
	fx_flip_get(&s, &f);
	snprintf(det, sizeof(det), "{\"generation_before\": %u}", bgs_fw_gen(f.word));
	ci.details_json = det;
	ok &= ASSERT_OK(bgs_change_note(fx.h, &ci), "note");
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, NULL), 1, "flip");
	ok &= ASSERT_EQ(bgs_change_finish(fx.h, 1, NULL), 0, "finish");
	r = hist_read(&n);
	ok &= ASSERT_EQ(n, 2, "two records");
	if (n == 2) {
		ok &= ASSERT_STREQ(jstr_of(r[0], "phase"), "intent", "first the intent");
		ok &= ASSERT_STREQ(jstr_of(r[1], "phase"), "done", "then the outcome");
		ok &= ASSERT_STREQ(jstr_of(r[0], "id"), jstr_of(r[1], "id"), "one id");
		ok &= ASSERT_STREQ(jstr_of(r[0], "actor"), "bgagent", "actor");
		ok &= ASSERT_STREQ(jstr_of(r[0], "reason"), ci.reason, "reason");
		ok &= ASSERT_STREQ(jstr_of(r[0], "verb"), "failover", "verb");
		ok &= ASSERT_EQ(jint_of(r[0], "uid"), 0, "uid");
		ok &= ASSERT_EQ(jint_of(r[0], "pid"), getpid(), "pid");
		ok &= ASSERT_EQ(jint_of(r[1], "generation"), bgs_fw_gen(f.word) + 1,
				"the outcome has the generation after");
	}
	hist_free(r, n);

	/* A writer died between intent and outcome, its change not applied: the next change
	 * resolves it as not applied, before its own intent. */
	fx_flip_get(&s, &f);
	fp = fopen(HIST_PATH, "a");
	fprintf(fp, "{\"id\":\"orphan-1\",\"phase\":\"intent\",\"verb\":\"flip\","
		"\"service\":\"hist\",\"pin_dir\":\"%s\",\"generation_before\":%u}\n",
		fx.pin_dir, bgs_fw_gen(f.word));
	fclose(fp);
	ci.verb = "canary";
	ci.details_json = NULL;
	ok &= ASSERT_OK(bgs_change_note(fx.h, &ci), "note");
	ok &= ASSERT_OK(bgs_canary_set(fx.h, s.id, 100, false, BGS_ANY_GEN, NULL), "canary");
	bgs_change_finish(fx.h, 0, NULL);
	r = hist_read(&n);
	ok &= ASSERT_EQ(n, 6, "orphan, its resolution, the canary's two records");
	if (n == 6) {
		ok &= ASSERT_STREQ(jstr_of(r[3], "id"), "orphan-1", "the orphan resolved first");
		ok &= ASSERT_STREQ(jstr_of(r[3], "phase"), "failed", "as not applied");
		ok &= ASSERT_STREQ(jstr_of(r[4], "verb"), "canary", "then the canary's intent");
	}
	hist_free(r, n);

	/* The history cannot be written: refused, nothing changed ... */
	n0 = n;
	fx_flip_get(&s, &f);
	ci.verb = "flip";
	setenv("BGS_FAULT", "history_append", 1);
	ok &= ASSERT_OK(bgs_change_note(fx.h, &ci), "note");
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, NULL), -EIO, "unrecordable flip refused");
	ok &= ASSERT_TRUE(strstr(bgs_errmsg(), "nothing was changed") != NULL, bgs_errmsg());
	bgs_change_finish(fx.h, -EIO, NULL);
	{
		struct bgs_flip g;

		fx_flip_get(&s, &g);
		ok &= ASSERT_EQ(g.word, f.word, "nothing published");
	}
	/* ... except an emergency: applied, and the caller is told. */
	ci.flags = BGS_CHANGE_EMERGENCY;
	ok &= ASSERT_OK(bgs_change_note(fx.h, &ci), "note");
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, NULL), 1, "emergency flip applies");
	ok &= ASSERT_EQ(bgs_change_finish(fx.h, 1, NULL), -EIO, "and says it is unrecorded");
	unsetenv("BGS_FAULT");
	r = hist_read(&n);
	ok &= ASSERT_EQ(n, n0, "nothing could be written");
	hist_free(r, n);

	/* A value refused before the lock is recorded as a failed try. */
	ci.flags = 0;
	o.to_color = 7;
	ok &= ASSERT_OK(bgs_change_note(fx.h, &ci), "note");
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, NULL), -EINVAL, "bad color");
	bgs_change_finish(fx.h, -EINVAL, NULL);
	r = hist_read(&n);
	ok &= ASSERT_EQ(n, n0 + 2, "intent and failure of the refused try");
	if (n == n0 + 2)
		ok &= ASSERT_TRUE(strstr(jstr_of(r[n - 1], "error"), "color 7") != NULL,
				  "the failure says why");
	hist_free(r, n);

	/* A config diff applied to both pools is one change: one intent, one outcome. */
	{
		struct bgs_backend_spec sp[2] = {};
		struct bgs_pool_want w[2] = { { sp, 1 }, { sp + 1, 1 } };
		struct bgs_apply_result ar;

		fx_be_ip(BGS_AF_INET, FX_NET_BACKEND, next_n++, &sp[0].addr);
		fx_be_ip(BGS_AF_INET, FX_NET_BACKEND, next_n++, &sp[1].addr);
		sp[0].port = sp[1].port = 8080;
		ci = (struct bgs_change_info){ .verb = "service apply", .service = "hist",
					       .svc_id = s.id };
		n0 = n;
		ok &= ASSERT_OK(bgs_change_note(fx.h, &ci), "note");
		ok &= ASSERT_OK(bgs_service_apply(fx.h, s.id, w, BGS_HEALTH_DOWN, &ar), "apply");
		ok &= ASSERT_EQ(bgs_change_finish(fx.h, 0, NULL), 0, "finish");
		ok &= ASSERT_EQ(ar.published, 2, "both pools");
		r = hist_read(&n);
		ok &= ASSERT_EQ(n, n0 + 2, "one change recorded");
		if (n == n0 + 2) {
			ok &= ASSERT_STREQ(jstr_of(r[n0], "verb"), "service apply", "verb");
			ok &= ASSERT_STREQ(jstr_of(r[n0 + 1], "phase"), "done", "outcome");
		}
		hist_free(r, n);
	}

	/* A retry of a recorded refusal is not recorded again while it is refused before the
	 * lock; once it applies it is recorded as any change. */
	ci = (struct bgs_change_info){ .verb = "flip", .service = "hist", .svc_id = s.id,
				       .reason = "failover: blue 0/1 healthy < 50%",
				       .flags = BGS_CHANGE_EMERGENCY | BGS_CHANGE_RETRY };
	r = hist_read(&n);
	hist_free(r, n);
	n0 = n;
	o.to_color = 7;
	ok &= ASSERT_OK(bgs_change_note(fx.h, &ci), "note");
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, NULL), -EINVAL, "bad color");
	bgs_change_finish(fx.h, -EINVAL, NULL);
	r = hist_read(&n);
	ok &= ASSERT_EQ(n, n0, "the retried refusal is not recorded");
	hist_free(r, n);
	o.to_color = BGS_ANY_COLOR;
	o.force = true; /* the applied pools' new backends are down */
	ok &= ASSERT_OK(bgs_change_note(fx.h, &ci), "note");
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, NULL), 1, "the retry applies");
	ok &= ASSERT_EQ(bgs_change_finish(fx.h, 1, NULL), 0, "finish");
	r = hist_read(&n);
	ok &= ASSERT_EQ(n, n0 + 2, "and is recorded");
	hist_free(r, n);

	/* The last automatic flip of a service, as a restarted daemon looks it up. */
	{
		struct bgs_history_query q = { .pin_dir = fx.pin_dir, .service = "hist",
					       .actor = "bgagent", .verb = "flip",
					       .reason_prefix = "failover:" };
		struct timespec ts;
		long long t = 0, wall;

		clock_gettime(CLOCK_REALTIME, &ts);
		wall = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		ok &= ASSERT_EQ(bgs_history_last(hs, &q, &t), 1, "found");
		ok &= ASSERT_TRUE(t > wall - 10000 && t <= wall + 1000, "at the flip's time");
		/* later records that do not count: failed, another pin directory, another
		 * reason, another actor */
		fp = fopen(HIST_PATH, "a");
		fprintf(fp, "{\"id\":\"f-1\",\"phase\":\"intent\",\"verb\":\"flip\","
			"\"service\":\"hist\",\"actor\":\"bgagent\",\"reason\":\"failover: x\","
			"\"pin_dir\":\"%s\",\"time\":\"2099-01-01T00:00:00.000Z\"}\n"
			"{\"id\":\"f-1\",\"phase\":\"failed\",\"verb\":\"flip\","
			"\"service\":\"hist\",\"actor\":\"bgagent\",\"reason\":\"failover: x\","
			"\"pin_dir\":\"%s\",\"time\":\"2099-01-01T00:00:01.000Z\"}\n"
			"{\"id\":\"o-1\",\"phase\":\"done\",\"verb\":\"flip\","
			"\"service\":\"hist\",\"actor\":\"bgagent\",\"reason\":\"failover: x\","
			"\"pin_dir\":\"/elsewhere\",\"time\":\"2099-01-01T00:00:02.000Z\"}\n"
			"{\"id\":\"m-1\",\"phase\":\"done\",\"verb\":\"flip\","
			"\"service\":\"hist\",\"actor\":\"bgagent\",\"reason\":\"by hand\","
			"\"pin_dir\":\"%s\",\"time\":\"2099-01-01T00:00:03.000Z\"}\n"
			"{\"id\":\"c-1\",\"phase\":\"done\",\"verb\":\"flip\","
			"\"service\":\"hist\",\"actor\":\"bgctl\",\"reason\":\"failover: x\","
			"\"pin_dir\":\"%s\",\"time\":\"2099-01-01T00:00:04.000Z\"}\n"
			"not json\n",
			fx.pin_dir, fx.pin_dir, fx.pin_dir, fx.pin_dir);
		fclose(fp);
		ok &= ASSERT_EQ(bgs_history_last(hs, &q, &t), 1, "found past them");
		ok &= ASSERT_TRUE(t > wall - 10000 && t <= wall + 1000, "still the real flip");
		/* an intent whose writer died may have applied: it counts */
		fp = fopen(HIST_PATH, "a");
		fprintf(fp, "{\"id\":\"d-1\",\"phase\":\"intent\",\"verb\":\"flip\","
			"\"service\":\"hist\",\"actor\":\"bgagent\",\"reason\":\"failover: y\","
			"\"pin_dir\":\"%s\",\"time\":\"2030-01-01T00:00:00.250Z\"}\n",
			fx.pin_dir);
		fclose(fp);
		ok &= ASSERT_EQ(bgs_history_last(hs, &q, &t), 1, "found");
		ok &= ASSERT_EQ(t, 1893456000250LL, "the unconfirmed intent's time");
		q.service = "other";
		ok &= ASSERT_EQ(bgs_history_last(hs, &q, &t), 0, "none for another service");
		q.service = NULL;
		ok &= ASSERT_EQ(bgs_history_last(hs, &q, &t), -EINVAL, "a query without service");
	}
	bgs_set_history(fx.h, NULL);
	bgs_history_close(hs);

	/* Unsafe files are refused. */
	chmod(HIST_PATH, 0662);
	ok &= ASSERT_EQ(bgs_history_open(HIST_PATH, "t", &hs), -EPERM, "other-writable");
	chmod(HIST_PATH, 0640);
	symlink(HIST_PATH, HIST_DIR "/link.jsonl");
	ok &= ASSERT_EQ(bgs_history_open(HIST_DIR "/link.jsonl", "t", &hs), -ELOOP, "symlink");
	ok &= ASSERT_EQ(bgs_history_open("relative.jsonl", "t", &hs), -EINVAL, "relative");
	ok &= fx_svc_del(&s);
	return ok;
}

/* Flows of a service on a color, from conntrack. */
struct color_count {
	__u32 svc_id, color;
	long n;
};

static int count_cb(const struct bgs_flow_key *k, const struct bgs_flow *f, void *arg)
{
	struct color_count *c = arg;

	(void)k;
	c->n += f->svc_id == c->svc_id && f->color == c->color;
	return 0;
}

static long flows_on(const struct fx_svc *s, __u32 color)
{
	struct color_count c = { .svc_id = s->id, .color = color };

	bgs_flow_walk(fx.h, count_cb, &c);
	return c.n;
}

struct window {
	const struct fx_svc *s;
	__u32 to; /* the green backend */
	bool ok;
};

/* bgs_drain_kill's window: flows 50..52 send their next packet after the drain end. */
static void window_packets(void *arg)
{
	struct window *w = arg;
	__u32 i;

	for (i = 0; i < 3; i++)
		w->ok &= fx_flow_next(w->s, 50 + i, 42000, w->to);
}

/*
 * drain --kill counts every flow it ended: those whose entries it removed and those whose
 * packet came between its drain end and that removal (they moved to green at once, the
 * drain being over, and their new entries stay), in the kernel reaper and in the user walk;
 * a second kill (no drain left to end) counts no moved flow again.
 */
static bool test_drain_kill_counts_moved(void)
{
	static const char *const how[] = { "kernel reaper", "user walk" };
	struct bgs_flip_opts o = { .to_color = BGS_ANY_COLOR, .expect_gen = BGS_ANY_GEN,
				   .drain_ms = 60000 };
	struct window w = { .ok = true };
	struct bgs_flip f;
	struct fx_svc s;
	__u32 id, b;
	bool ok = true;
	int i, k;

	if (!fx_svc_add(&s, "window", BGS_AF_INET, 7, 80, IPPROTO_TCP, BGS_MODE_NAT, 0))
		return false;
	ok &= fx_be_add(&s, BGS_BLUE, FX_NET_BACKEND, next_n++, 8080, 0, &b);
	ok &= fx_be_add(&s, BGS_GREEN, FX_NET_BACKEND, next_n++, 8080, 0, &id);
	for (k = 0; k < 2 && ok; k++) {
		test_ctx("%s", how[k]);
		if (k)
			setenv("BGS_REAP_USER", "1", 1);
		/* 6 established flows on blue (live); then blue drains, green is live */
		for (i = 0; i < 6; i++) {
			ok &= fx_flow_new(&s, 50 + (__u32)i, 42000, BGS_BLUE, NULL);
			ok &= fx_flow_next(&s, 50 + (__u32)i, 42000, b);
		}
		ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, NULL), 1, "flip, blue drains");
		w.s = &s;
		w.to = id;
		bgs_test_drain_kill_arg = &w;
		bgs_test_drain_kill_window = window_packets;
		ok &= ASSERT_EQ(bgs_drain_kill(fx.h, s.id, BGS_ANY_COLOR, &f), 6,
				"3 removed + 3 moved in the window");
		bgs_test_drain_kill_window = NULL;
		ok &= ASSERT_TRUE(w.ok, "the window's packets went to green");
		ok &= ASSERT_FALSE(f.word & BGS_FW_DRAINING, "the drain has ended");
		ok &= ASSERT_EQ(flows_on(&s, BGS_BLUE), 0, "no blue entry left");
		ok &= ASSERT_EQ(flows_on(&s, BGS_GREEN), 3, "the moved flows' green entries kept");
		ok &= ASSERT_EQ(bgs_drain_kill(fx.h, s.id, BGS_ANY_COLOR, &f), 0,
				"a second kill: nothing ended, nothing counted again");
		/* the ended flows' next packets go to green */
		for (i = 0; i < 6; i++)
			ok &= fx_flow_next(&s, 50 + (__u32)i, 42000, id);
		/* green's entries go with a flip back to blue, for the next round */
		ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &(struct bgs_flip_opts){
			.to_color = BGS_BLUE, .expect_gen = BGS_ANY_GEN }, NULL), 1, "back to blue");
		ok &= ASSERT_EQ(bgs_flow_kill(fx.h, s.id, BGS_GREEN), 6, "green's entries removed");
	}
	unsetenv("BGS_REAP_USER");
	test_ctx("%s", "");
	return fx_svc_del(&s) && ok;
}

/* The second step of each two-step change fails: the first leaves nothing half-routed,
 * the message says to run it again, and running it again completes it. */
static bool test_second_step_fails(void)
{
	struct bgs_flip_opts o = { .to_color = BGS_ANY_COLOR, .expect_gen = BGS_ANY_GEN,
				   .drain_ms = 60000 };
	struct bgs_flip f;
	struct fx_svc s;
	__u32 id, ids[2], found, gen;
	bool ok = true;
	int i;

	if (!fx_svc_add(&s, "steps", BGS_AF_INET, 6, 80, IPPROTO_TCP, BGS_MODE_NAT, 0))
		return false;
	ok &= fx_be_add(&s, BGS_BLUE, FX_NET_BACKEND, next_n++, 8080, 0, &ids[0]);
	ok &= fx_be_add(&s, BGS_BLUE, FX_NET_BACKEND, next_n++, 8080, 0, &ids[1]);
	ok &= fx_be_add(&s, BGS_GREEN, FX_NET_BACKEND, next_n++, 8080, 0, &id);
	for (i = 0; i < 6; i++)
		ok &= fx_flow_new(&s, 30 + (__u32)i, 41000, BGS_BLUE, NULL);
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, NULL), 1, "flip, blue drains");

	/* drain --kill: the drain ends, removing the entries fails */
	setenv("BGS_FAULT", "drain_kill_flows", 1);
	ok &= ASSERT_EQ(bgs_drain_kill(fx.h, s.id, BGS_ANY_COLOR, &f), -EIO, "drain kill");
	unsetenv("BGS_FAULT");
	ok &= ASSERT_TRUE(strstr(bgs_errmsg(), "run it again") != NULL, bgs_errmsg());
	ok &= ASSERT_FALSE(f.word & BGS_FW_DRAINING, "the drain has ended");
	ok &= ASSERT_EQ(flows_on(&s, BGS_BLUE), 6, "the entries are still there");
	/* ... and already dead: the next packet of such a flow goes to green, and its entry
	 * is replaced by the green one */
	ok &= fx_flow_next(&s, 30, 41000, id);
	ok &= ASSERT_EQ(flows_on(&s, BGS_BLUE), 5, "the entry of the flow that went on is green");
	ok &= ASSERT_EQ(flows_on(&s, BGS_GREEN), 1, "... and green");
	ok &= ASSERT_EQ(bgs_drain_kill(fx.h, s.id, BGS_ANY_COLOR, &f), 5, "again: removes 5");
	ok &= ASSERT_EQ(flows_on(&s, BGS_BLUE), 0, "none left");
	ok &= ASSERT_EQ(flows_on(&s, BGS_GREEN), 1, "the green flow kept");
	/* every killed flow's next packet goes to green */
	for (i = 1; i < 6; i++)
		ok &= fx_flow_next(&s, 30 + (__u32)i, 41000, id);

	/* backend del: out of the table, then the record; the second step fails */
	setenv("BGS_FAULT", "backend_del_step", 1);
	ok &= ASSERT_EQ(bgs_backend_del(fx.h, ids[0]), -EIO, "backend del");
	unsetenv("BGS_FAULT");
	ok &= ASSERT_TRUE(strstr(bgs_errmsg(), "run the delete again") != NULL, bgs_errmsg());
	ok &= ASSERT_EQ(pool_picks(&s, BGS_BLUE), 1ULL << ids[1], "out of blue's table");
	ok &= ASSERT_OK(bgs_backend_del(fx.h, ids[0]), "again: deleted");
	fx.be[ids[0]].in_use = false;
	ok &= ASSERT_EQ(bgs_backend_get(fx.h, ids[0], &(struct bgs_backend){}), -ENOENT,
			"record gone");

	/* service del: the VIP goes first, then the rest; a middle step fails */
	ok &= fx_flip_get(&s, &f);
	gen = bgs_fw_gen(f.word);
	setenv("BGS_FAULT", "service_del_step", 1);
	ok &= ASSERT_EQ(bgs_service_del(fx.h, s.id), -EIO, "service del");
	unsetenv("BGS_FAULT");
	ok &= ASSERT_TRUE(strstr(bgs_errmsg(), "run the delete again") != NULL, bgs_errmsg());
	ok &= ASSERT_OK(bgs_service_find(fx.h, "steps", &found), "the record is still there");
	ok &= ASSERT_OK(bgs_service_del(fx.h, s.id), "again: deleted");
	ok &= ASSERT_EQ(bgs_service_find(fx.h, "steps", &found), -ENOENT, "gone");
	for (i = 0; i < (int)fx.meta.max_backends; i++)
		if (fx.be[i].svc_id == s.id)
			fx.be[i].in_use = false;

	/* Re-created under the same name: its generations go on past the old ones, so the
	 * old service's --expect-generation never matches it. */
	ok &= fx_svc_add(&s, "steps", BGS_AF_INET, 6, 80, IPPROTO_TCP, BGS_MODE_NAT, 0);
	ok &= fx_flip_get(&s, &f);
	ok &= ASSERT_GT(bgs_fw_gen(f.word), gen, "a generation the old service never had");
	o.expect_gen = gen;
	o.force = true;
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, NULL), -ESTALE, "the old generation refused");
	ok &= fx_svc_del(&s);
	return ok;
}

/* bgs_drain_status counts what the program would do with each entry (its own rule, the
 * loaded timeouts): a flow that saw FIN is still there until its close timeout, a flow on
 * an admin-down backend is not, and a drain that ends leaves none. */
static bool test_drain_status(void)
{
	struct bgs_flip_opts o = { .to_color = BGS_ANY_COLOR, .expect_gen = BGS_ANY_GEN,
				   .drain_ms = 60000 };
	static struct bgs_drain_status st;
	struct bgs_flow_counts c;
	struct fx_out out;
	struct fx_svc s;
	struct pkt p;
	__u32 be[6], ids[2], i, j;
	__u64 sum;
	bool ok = true;

	if (!fx_svc_add(&s, "dstat", BGS_AF_INET, 7, 80, IPPROTO_TCP, BGS_MODE_NAT, 0))
		return false;
	ok &= fx_be_add(&s, BGS_BLUE, FX_NET_BACKEND, next_n++, 8080, 0, &ids[0]);
	ok &= fx_be_add(&s, BGS_BLUE, FX_NET_BACKEND, next_n++, 8080, 0, &ids[1]);
	ok &= fx_be_add(&s, BGS_GREEN, FX_NET_BACKEND, next_n++, 8080, 0, &i);
	for (i = 0; i < 6; i++) {
		ok &= fx_flow_new(&s, 60 + i, 42000, BGS_BLUE, &be[i]);
		ok &= fx_flow_next(&s, 60 + i, 42000, be[i]);
	}
	/* one flow closes: FIN, still tracked until the close timeout */
	fx_client_pkt(&p, &s, 60, 42000, PKT_FIN | PKT_ACK);
	ok &= ASSERT_OK(fx_run_pkt(&p, fx.if_lb0, &out), "FIN");
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, NULL), 1, "flip, blue drains 60 s");

	ok &= ASSERT_OK(bgs_drain_status(fx.h, s.id, &st), "drain status");
	ok &= ASSERT_EQ(st.color, BGS_BLUE, "blue is the draining color");
	ok &= ASSERT_TRUE(st.draining, "draining");
	ok &= ASSERT_GT(st.deadline, st.now, "deadline ahead");
	ok &= ASSERT_EQ(st.flows, 6, "six flows left, the closed one too (close timeout)");
	ok &= ASSERT_EQ(st.nbackends, 2, "both blue backends listed");
	for (j = sum = 0; j < st.nbackends; j++) {
		__u64 want = 0;

		for (i = 0; i < 6; i++)
			want += be[i] == st.backends[j].id;
		ok &= ASSERT_EQ(st.backends[j].flows, want, "flows per backend");
		sum += st.backends[j].flows;
	}
	ok &= ASSERT_EQ(sum, 6, "per backend adds up");
	ok &= ASSERT_OK(bgs_flow_count(fx.h, &c), "count");
	ok &= ASSERT_EQ(c.per_svc_color[s.id * 2 + BGS_BLUE], 6, "flow counts agree");
	bgs_flow_counts_free(&c);

	/* admin down: the program moves that backend's flows at once */
	ok &= ASSERT_OK(bgs_backend_set_admin(fx.h, ids[0], BGS_ADMIN_DOWN), "admin down");
	ok &= ASSERT_OK(bgs_drain_status(fx.h, s.id, &st), "drain status");
	for (i = sum = 0; i < 6; i++)
		sum += be[i] != ids[0];
	ok &= ASSERT_EQ(st.flows, sum, "the admin-down backend's flows are not left");

	/* the drain ends: none left */
	ok &= ASSERT_OK(bgs_drain_end(fx.h, s.id, NULL), "drain end");
	ok &= ASSERT_OK(bgs_drain_status(fx.h, s.id, &st), "drain status");
	ok &= ASSERT_FALSE(st.draining, "not draining");
	ok &= ASSERT_EQ(st.flows, 0, "drained flows are routed as new");
	ok &= fx_svc_del(&s);
	return ok;
}

/* A pin directory others may write (they could swap a map or the switch) is refused. */
static bool test_pin_dir_safety(void)
{
	struct stat st;
	struct bgs *h = NULL;
	bool ok = true;

	if (!ASSERT_OK(stat(fx.pin_dir, &st), "stat"))
		return false;
	chmod(fx.pin_dir, 0777);
	ok &= ASSERT_EQ(bgs_open(fx.pin_dir, &h), -EPERM, "world-writable pin directory");
	ok &= ASSERT_TRUE(strstr(bgs_errmsg(), "writable by group or others") != NULL,
			  bgs_errmsg());
	chmod(fx.pin_dir, 0720);
	ok &= ASSERT_EQ(bgs_open(fx.pin_dir, &h), -EPERM, "group-writable pin directory");
	chmod(fx.pin_dir, st.st_mode & 07777);
	ok &= ASSERT_OK(bgs_open(fx.pin_dir, &h), "root's own");
	bgs_close(h);
	return ok;
}

/* The change stamp moves with every change, by any handle, and with nothing else. */
static bool test_change_stamp(void)
{
	struct bgs_flip_opts o = { .to_color = BGS_ANY_COLOR, .expect_gen = BGS_ANY_GEN };
	struct bgs_service svc;
	struct bgs *h2 = NULL;
	struct bgs_flip f;
	__u32 a, b, c;
	struct fx_svc s;
	bool ok = true;

	if (!two_pools(&s, "stamp", 7) || !ASSERT_OK(bgs_open(fx.pin_dir, &h2), "second handle"))
		return false;
	ok &= ASSERT_OK(bgs_change_stamp(fx.h, &a), "stamp");
	ok &= ASSERT_OK(bgs_service_get(fx.h, s.id, &svc, &f), "a read");
	ok &= ASSERT_OK(bgs_change_stamp(fx.h, &b), "stamp");
	ok &= ASSERT_EQ(a, b, "a read changes nothing");
	ok &= ASSERT_OK(bgs_canary_set(h2, s.id, 100, false, BGS_ANY_GEN, NULL), "canary");
	ok &= ASSERT_OK(bgs_change_stamp(fx.h, &c), "stamp");
	ok &= ASSERT_NEQ(b, c, "another handle's change moves it");
	ok &= ASSERT_OK(bgs_preview_add(fx.h, s.id, &(struct bgs_prefix){
					.ip = { .family = BGS_AF_INET, .addr = { htonl(0xc6336400) } },
					.len = 24 }), "preview prefix (no publish)");
	ok &= ASSERT_OK(bgs_change_stamp(h2, &a), "stamp");
	ok &= ASSERT_NEQ(a, c, "a change without a publish moves it too");
	o.to_color = 9;
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, NULL), -EINVAL, "refused before the lock");
	ok &= ASSERT_OK(bgs_change_stamp(h2, &b), "stamp");
	ok &= ASSERT_EQ(a, b, "a refusal before the lock does not");
	bgs_close(h2);
	ok &= fx_svc_del(&s);
	return ok;
}

static const struct test_case tests[] = {
	{ "change_stamp", test_change_stamp },
	{ "pin_dir_safety", test_pin_dir_safety },
	{ "drain_status", test_drain_status },
	{ "second_step_fails", test_second_step_fails },
	{ "drain_kill_counts_moved", test_drain_kill_counts_moved },
	{ "history", test_history },
	{ "batch_state", test_batch_state },
	{ "lock_deadline", test_lock_deadline },
	{ "resolve_unlocked", test_resolve_unlocked },
	{ "nexthop_in_place", test_nexthop_in_place },
	{ "cas_flip", test_cas_flip },
	{ "cas_decision", test_cas_decision },
};

int main(int argc, char **argv)
{
	struct bgs_sizes sz = { .max_services = 8, .max_backends = 32, .maglev_size = 251,
				.ct_entries = 4096 };

	return fx_main(argc, argv, &sz, tests, ARRAY_SIZE(tests), 120);
}
