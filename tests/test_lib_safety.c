// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libbgswitch under concurrency and failure, on the real pinned maps: a routing change is a
 * compare-and-swap on the generation its caller read (the "already live" answer too), and a
 * refused one says what it found; a next-hop change keeps the backend's id, incarnation,
 * counters and flows, and no packet sent meanwhile leaves with a mix of old and new MAC;
 * the lock is waited for with a deadline (a stopped holder costs a clear refusal naming it)
 * and is not held while next hops resolve.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
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

/* Sends one flow's packets while the next hop changes; every frame must go to the old
 * or the new MAC whole (or to the kernel, while the record says "unresolved"). */
struct sender {
	const struct fx_svc *s;
	struct pkt p;
	__u8 old_mac[6], new_mac[6];
	atomic_bool stop;
	unsigned long sent, to_old, to_new, passed, torn;
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
	usleep(20000);
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
	ok &= ASSERT_LT(worst, 40, "no flip waited for the resolution");
	ok &= fx_svc_del(&s);
	return ok;
}

static const struct test_case tests[] = {
	{ "lock_deadline", test_lock_deadline },
	{ "resolve_unlocked", test_resolve_unlocked },
	{ "nexthop_in_place", test_nexthop_in_place },
	{ "cas_flip", test_cas_flip },
};

int main(int argc, char **argv)
{
	struct bgs_sizes sz = { .max_services = 8, .max_backends = 32, .maglev_size = 251,
				.ct_entries = 4096 };

	return fx_main(argc, argv, &sz, tests, ARRAY_SIZE(tests), 120);
}
