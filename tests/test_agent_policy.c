// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bgagent's decisions with an injected clock: the rise/fall state machine of a backend's
 * checks (a new backend starts down and unknown; an adopted one keeps its state, no flap),
 * and the failover policy (threshold by weight, idle pool must be healthy, hold_down, no
 * decision while the live pool is still being checked).
 */
#include <errno.h>

#include "test.h"
#include "policy.h"

static bool test_hsm(void)
{
	struct hsm s;
	bool ok = true;

	hsm_init(&s, false, false);
	ok &= ASSERT_FALSE(hsm_result(&s, true, 2, 3), "new: first pass is not enough");
	ok &= ASSERT_FALSE(s.up || s.known, "still down, unknown");
	ok &= ASSERT_TRUE(hsm_result(&s, true, 2, 3), "second pass: up");
	ok &= ASSERT_TRUE(s.up && s.known, "up and known");
	ok &= ASSERT_FALSE(hsm_result(&s, false, 2, 3), "one failure");
	ok &= ASSERT_FALSE(hsm_result(&s, false, 2, 3), "two failures");
	ok &= ASSERT_FALSE(hsm_result(&s, true, 2, 3), "a pass resets the failures");
	ok &= ASSERT_FALSE(hsm_result(&s, false, 2, 3), "1");
	ok &= ASSERT_FALSE(hsm_result(&s, false, 2, 3), "2");
	ok &= ASSERT_TRUE(hsm_result(&s, false, 2, 3), "third failure in a row: down");
	ok &= ASSERT_FALSE(s.up, "down");
	ok &= ASSERT_FALSE(hsm_result(&s, false, 2, 3), "more failures change nothing");
	ok &= ASSERT_FALSE(hsm_result(&s, true, 2, 3), "1 pass");
	ok &= ASSERT_FALSE(hsm_result(&s, false, 2, 3), "a failure resets the passes");
	ok &= ASSERT_FALSE(hsm_result(&s, true, 2, 3), "1 pass");
	ok &= ASSERT_TRUE(hsm_result(&s, true, 2, 3), "up again");

	/* a new backend that never answers becomes known down after `fall` failures */
	hsm_init(&s, false, false);
	hsm_result(&s, false, 2, 3);
	hsm_result(&s, false, 2, 3);
	ok &= ASSERT_FALSE(s.known, "unknown after 2 failures");
	ok &= ASSERT_FALSE(hsm_result(&s, false, 2, 3), "no state change");
	ok &= ASSERT_TRUE(s.known && !s.up, "known down after 3");

	/* adopted up from the pins: a restart does not flap it */
	hsm_init(&s, true, true);
	ok &= ASSERT_FALSE(hsm_result(&s, true, 2, 3), "adopted up stays up");
	ok &= ASSERT_TRUE(s.up, "up");
	/* rise 1 / fall 1 */
	hsm_init(&s, true, true);
	ok &= ASSERT_TRUE(hsm_result(&s, false, 1, 1), "fall 1");
	ok &= ASSERT_TRUE(hsm_result(&s, true, 1, 1), "rise 1");
	return ok;
}

static struct pool_view pv(uint32_t n, uint32_t usable, uint32_t w_each)
{
	struct pool_view p = { .n = n, .n_usable = usable, .weight = (uint64_t)n * w_each,
			       .usable_weight = (uint64_t)usable * w_each };
	return p;
}

static bool test_failover(void)
{
	struct failover_in in = { .enabled = true, .live = 0, .min_healthy_pct = 50,
				  .hold_down_ms = 60000, .now_ms = 1000000 };
	char why[160];
	bool ok = true;

	in.pool[0] = pv(2, 2, 100);
	in.pool[1] = pv(2, 2, 100);
	ok &= ASSERT_EQ(failover_decide(&in, why, sizeof(why)), FO_STAY, "all healthy");
	in.pool[0] = pv(2, 1, 100);
	ok &= ASSERT_EQ(failover_decide(&in, why, sizeof(why)), FO_STAY, "50% is not below 50%");
	in.pool[0] = pv(2, 0, 100);
	ok &= ASSERT_EQ(failover_decide(&in, why, sizeof(why)), FO_FLIP, "0/2 < 50%");
	ok &= ASSERT_TRUE(!strcmp(why, "failover: blue 0/2 healthy < 50%"), why);
	/* by weight, not count: the one healthy backend carries 1/4 of the weight */
	in.pool[0] = (struct pool_view){ .n = 2, .n_usable = 1, .weight = 400, .usable_weight = 100 };
	ok &= ASSERT_EQ(failover_decide(&in, why, sizeof(why)), FO_FLIP, "25% of weight");
	ok &= ASSERT_TRUE(!strcmp(why, "failover: blue 1/2 healthy < 50%"), why);
	/* never onto an unhealthy pool */
	in.pool[0] = pv(2, 0, 100);
	in.pool[1] = pv(3, 1, 100);
	ok &= ASSERT_EQ(failover_decide(&in, why, sizeof(why)), FO_BLOCKED, "green 1/3 < 50%");
	ok &= ASSERT_STRSTR(why, "green is not healthy enough", "reason");
	in.pool[1] = pv(0, 0, 100);
	ok &= ASSERT_EQ(failover_decide(&in, why, sizeof(why)), FO_BLOCKED, "empty idle pool");
	in.pool[1] = pv(2, 2, 100);
	in.pool[1].pending = true;
	ok &= ASSERT_EQ(failover_decide(&in, why, sizeof(why)), FO_BLOCKED, "idle pending");
	in.pool[1].pending = false;
	/* no judgement while the live pool is still being checked (agent just started) */
	in.pool[0].pending = true;
	ok &= ASSERT_EQ(failover_decide(&in, why, sizeof(why)), FO_STAY, "live pending");
	in.pool[0].pending = false;
	/* hold_down after an automatic flip, counted with the injected clock */
	in.live = 1;
	in.pool[1] = pv(2, 0, 100);
	in.pool[0] = pv(2, 2, 100);
	in.flipped_before = true;
	in.last_flip_ms = in.now_ms - 59999;
	ok &= ASSERT_EQ(failover_decide(&in, why, sizeof(why)), FO_BLOCKED, "in hold_down");
	ok &= ASSERT_STRSTR(why, "hold_down for 1ms more", "reason");
	in.last_flip_ms = in.now_ms - 60000;
	ok &= ASSERT_EQ(failover_decide(&in, why, sizeof(why)), FO_FLIP, "hold_down over");
	ok &= ASSERT_TRUE(!strcmp(why, "failover: green 0/2 healthy < 50%"), why);
	/* min_healthy 0%: only a pool with nothing usable fails */
	in.min_healthy_pct = 0;
	in.pool[1] = pv(4, 1, 100);
	ok &= ASSERT_EQ(failover_decide(&in, why, sizeof(why)), FO_STAY, "0%: one is enough");
	in.pool[1] = pv(4, 0, 100);
	ok &= ASSERT_EQ(failover_decide(&in, why, sizeof(why)), FO_FLIP, "0%: none usable");
	/* off */
	in.enabled = false;
	ok &= ASSERT_EQ(failover_decide(&in, why, sizeof(why)), FO_STAY, "disabled");
	/* min_healthy 100%: one backend down fails the pool */
	in.enabled = true;
	in.min_healthy_pct = 100;
	in.pool[1] = pv(4, 3, 100);
	in.pool[0] = pv(2, 2, 100);
	ok &= ASSERT_EQ(failover_decide(&in, why, sizeof(why)), FO_FLIP, "100%");
	return ok;
}

/* A restarted agent keeps the hold_down of the automatic flip it made before: the flip's
 * wall-clock time from the history, turned into the loop's clock. */
static bool test_hold_down_resume(void)
{
	struct failover_in in = { .enabled = true, .live = 1, .min_healthy_pct = 50,
				  .hold_down_ms = 60000 };
	const long long wall = 1800000000000LL; /* the wall clock at the restart */
	uint64_t last = 0;
	char why[200];
	bool ok = true;

	in.pool[1] = pv(2, 0, 100); /* live green dead */
	in.pool[0] = pv(2, 2, 100); /* blue fine */
	/* flipped 20 s before the restart; the agent's monotonic clock reads 5000 ms */
	ok &= ASSERT_TRUE(hold_down_resume(wall - 20000, wall, 5000, 60000, &last), "resumed");
	in.flipped_before = true;
	in.last_flip_ms = last;
	in.now_ms = 5000;
	ok &= ASSERT_EQ(failover_decide(&in, why, sizeof(why)), FO_BLOCKED, "restart: held");
	ok &= ASSERT_STRSTR(why, "hold_down for 40000ms more", "what is left of it");
	in.now_ms = 5000 + 39999;
	ok &= ASSERT_EQ(failover_decide(&in, why, sizeof(why)), FO_BLOCKED, "1 ms before");
	in.now_ms = 5000 + 40000;
	ok &= ASSERT_EQ(failover_decide(&in, why, sizeof(why)), FO_FLIP, "over on time");
	/* longer ago than the hold_down: nothing held */
	ok &= ASSERT_FALSE(hold_down_resume(wall - 60000, wall, 5000, 60000, &last), "over");
	ok &= ASSERT_FALSE(hold_down_resume(wall - 600000, wall, 5000, 60000, &last), "long ago");
	/* a flip recorded in the future (the wall clock stepped back): a whole hold_down */
	ok &= ASSERT_TRUE(hold_down_resume(wall + 5000, wall, 7000, 60000, &last), "future");
	in.last_flip_ms = last;
	in.now_ms = 7000 + 59999;
	ok &= ASSERT_EQ(failover_decide(&in, why, sizeof(why)), FO_BLOCKED, "held");
	/* the loop's clock smaller than the time since the flip (a fresh boot) */
	ok &= ASSERT_TRUE(hold_down_resume(wall - 30000, wall, 1000, 60000, &last), "early");
	in.last_flip_ms = last;
	in.now_ms = 1000 + 29999;
	ok &= ASSERT_EQ(failover_decide(&in, why, sizeof(why)), FO_BLOCKED, "held (wraps)");
	ok &= ASSERT_STRSTR(why, "hold_down for 1ms more", "to the ms");
	in.now_ms = 1000 + 30000;
	ok &= ASSERT_EQ(failover_decide(&in, why, sizeof(why)), FO_FLIP, "then over");
	return ok;
}

/* A failing automatic flip backs off (a held lock excepted), so it is not retried and
 * recorded every second. */
static bool test_flip_retry(void)
{
	bool ok = true;

	ok &= ASSERT_EQ(flip_retry_ms(0, -EIO), 0, "no failure yet");
	ok &= ASSERT_EQ(flip_retry_ms(1, -EIO), 1000, "1 s");
	ok &= ASSERT_EQ(flip_retry_ms(2, -EIO), 2000, "2 s");
	ok &= ASSERT_EQ(flip_retry_ms(6, -EIO), 32000, "32 s");
	ok &= ASSERT_EQ(flip_retry_ms(7, -EIO), 60000, "capped");
	ok &= ASSERT_EQ(flip_retry_ms(1000, -ENOSPC), 60000, "capped, no overflow");
	ok &= ASSERT_EQ(flip_retry_ms(5, -EBUSY), 0, "a held lock: every tick");
	return ok;
}

int main(int argc, char **argv)
{
	static const struct test_case tests[] = {
		{ "hsm", test_hsm },
		{ "failover", test_failover },
		{ "hold_down_resume", test_hold_down_resume },
		{ "flip_retry", test_flip_retry },
	};

	return test_run_all("test_agent_policy", tests, ARRAY_SIZE(tests), argc, argv);
}
