// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Rollouts and the post-flip check with an injected clock: the presets' steps (CodeDeploy's
 * names), the schedule of a rollout record (canary steps and pauses, the gate, the flip,
 * promote skipping pauses, the wait for promote without a promote step, a flip made outside
 * the rollout, a gate cut short by a restart) and the rollback decision (the measured figure
 * in the reason, never onto an unhealthy pool, hold_down, bake_time).
 */
#include <errno.h>

#include "test.h"
#include "libbgswitch.h"
#include "rollout.h"

static bool test_presets(void)
{
	struct cfg_rollout r = {};
	struct ro_plan p;
	bool ok = true;

	r.strategy = "AllAtOnce";
	ok &= ASSERT_EQ(ro_plan_make(&r, &p), 0, "AllAtOnce");
	ok &= ASSERT_TRUE(p.n == 1 && p.step[0].promote, "one step: the flip");
	ok &= ASSERT_EQ(ro_flip_index(&p), 0, "flip index");

	r.strategy = "Canary10Percent15Minutes";
	ok &= ASSERT_EQ(ro_plan_make(&r, &p), 0, "Canary10Percent15Minutes");
	ok &= ASSERT_EQ(p.n, 2, "canary, flip");
	ok &= ASSERT_TRUE(p.step[0].canary_bps == 1000 && p.step[0].pause_ms == 900000,
			  "10% for 15 minutes");
	ok &= ASSERT_TRUE(p.step[1].promote, "then the flip");

	r.strategy = "Linear10PercentEvery3Minutes";
	ok &= ASSERT_EQ(ro_plan_make(&r, &p), 0, "Linear10PercentEvery3Minutes");
	ok &= ASSERT_EQ(p.n, 10, "9 shares and the flip");
	for (uint32_t i = 0; i < 9; i++)
		ok &= ASSERT_TRUE(p.step[i].canary_bps == (i + 1) * 1000 &&
				  p.step[i].pause_ms == 180000 && !p.step[i].promote, "linear step");
	ok &= ASSERT_TRUE(p.step[9].promote, "the flip takes the last 10%");
	ok &= ASSERT_TRUE(!strcmp(p.strategy, "Linear10PercentEvery3Minutes"), p.strategy);

	r.strategy = "Sometimes";
	ok &= ASSERT_EQ(ro_plan_make(&r, &p), -EINVAL, "unknown preset");
	return ok;
}

/* steps [canary 10 pause 2s, canary 50 pause 3s, promote] (+ a gate when gate) */
static void custom(struct ro_plan *p, bool promote, bool gate)
{
	static uint32_t c10 = 10, c50 = 50;
	static bool yes = true;
	static struct cfg_step steps[3];
	static struct cfg_gate g = { .command = "true", .timeout_ms = 1000 };
	struct cfg_rollout r = { .steps = steps, .steps_count = promote ? 3 : 2,
				 .pre_flip_gate = gate ? &g : NULL };

	memset(steps, 0, sizeof(steps));
	steps[0].canary = &c10;
	steps[0].pause_ms = 2000;
	steps[1].canary = &c50;
	steps[1].pause_ms = 3000;
	steps[2].promote = &yes;
	ro_plan_make(&r, p);
}

static bool test_schedule(void)
{
	struct bgs_rollout r = { .state = BGS_ROLLOUT_REQUESTED, .id = 1, .from_color = BGS_BLUE };
	struct ro_decision d;
	struct ro_plan p;
	char txt[BGS_ROLLOUT_TEXT];
	bool ok = true;

	custom(&p, true, false);
	ok &= ASSERT_TRUE(p.n == 3 && ro_flip_index(&p) == 2, "custom plan");
	ro_decide(&p, &r, BGS_BLUE, 1000, false, &d);
	ok &= ASSERT_TRUE(d.action == RA_STEP && d.step == 0, "requested: the first step");
	/* the agent wrote step 0 at t=1000 */
	r.state = BGS_ROLLOUT_RUNNING;
	r.step = 0;
	r.step_ms = 1000;
	r.pause_ms = 2000;
	ro_decide(&p, &r, BGS_BLUE, 2999, false, &d);
	ok &= ASSERT_EQ(d.action, RA_NONE, "pause runs (1 ms left)");
	ro_decide(&p, &r, BGS_BLUE, 3000, false, &d);
	ok &= ASSERT_TRUE(d.action == RA_STEP && d.step == 1, "pause over: step 2");
	r.step = 1;
	r.step_ms = 3000;
	r.pause_ms = 3000;
	ro_decide(&p, &r, BGS_BLUE, 5999, false, &d);
	ok &= ASSERT_EQ(d.action, RA_NONE, "second pause runs");
	ro_decide(&p, &r, BGS_BLUE, 6000, false, &d);
	ok &= ASSERT_TRUE(d.action == RA_FLIP_STEP && d.step == 2, "then the flip step");
	/* the flip step was written, the agent died before the flip: redo it */
	r.step = 2;
	ro_decide(&p, &r, BGS_BLUE, 9000, false, &d);
	ok &= ASSERT_EQ(d.action, RA_FLIP, "flip step written, flip not seen: flip");
	ro_decide(&p, &r, BGS_GREEN, 9000, false, &d);
	ok &= ASSERT_EQ(d.action, RA_DONE, "flip seen: done");

	/* promote skips the pauses */
	r.step = 0;
	r.step_ms = 1000;
	r.pause_ms = 2000;
	r.promotes = 1;
	ro_decide(&p, &r, BGS_BLUE, 1500, false, &d);
	ok &= ASSERT_TRUE(d.action == RA_FLIP_STEP && d.step == 2 && d.promoted,
			  "promote: to the flip step at once");
	r.promotes_seen = 1;

	/* someone else flipped during a canary step */
	ro_decide(&p, &r, BGS_GREEN, 1500, false, &d);
	ok &= ASSERT_EQ(d.action, RA_FAIL, "flipped outside the rollout");
	ok &= ASSERT_STRSTR(d.why, "green was made live outside the rollout", d.why);
	r.state = BGS_ROLLOUT_REQUESTED;
	ro_decide(&p, &r, BGS_GREEN, 1500, false, &d);
	ok &= ASSERT_EQ(d.action, RA_FAIL, "flipped between start and take");

	/* no promote step: wait for promote after the last pause, promote flips */
	custom(&p, false, false);
	ok &= ASSERT_EQ(ro_flip_index(&p), 2, "flip index past the steps");
	r.state = BGS_ROLLOUT_RUNNING;
	r.step = 1;
	r.step_ms = 0;
	r.pause_ms = 3000;
	ro_decide(&p, &r, BGS_BLUE, 3000, false, &d);
	ok &= ASSERT_EQ(d.action, RA_WAIT, "steps done: wait for promote");
	r.state = BGS_ROLLOUT_PAUSED;
	r.step = 2;
	ro_decide(&p, &r, BGS_BLUE, 999999, false, &d);
	ok &= ASSERT_EQ(d.action, RA_NONE, "paused: no time makes it go on");
	r.promotes = 2;
	ro_decide(&p, &r, BGS_BLUE, 999999, false, &d);
	ok &= ASSERT_TRUE(d.action == RA_FLIP_STEP && d.step == 2, "promote: the flip");
	r.promotes_seen = 2;
	ro_step_text(&p, 2, BGS_GREEN, txt, sizeof(txt));
	ok &= ASSERT_STRSTR(txt, "wait for `bgctl rollout promote`", txt);

	/* with a gate: the gate runs; an agent restart runs it again; promote while it runs
	 * does not start a second one */
	custom(&p, true, true);
	r.state = BGS_ROLLOUT_GATE;
	r.step = 2;
	ro_decide(&p, &r, BGS_BLUE, 10, true, &d);
	ok &= ASSERT_EQ(d.action, RA_NONE, "the gate runs");
	ro_decide(&p, &r, BGS_BLUE, 10, false, &d);
	ok &= ASSERT_EQ(d.action, RA_GATE, "no gate running here (restart): run it again");
	r.promotes = 3;
	ro_decide(&p, &r, BGS_BLUE, 10, true, &d);
	ok &= ASSERT_EQ(d.action, RA_NONE, "promote while it runs: it goes on");
	/* a failed gate paused it: promote retries */
	r.state = BGS_ROLLOUT_PAUSED;
	ro_decide(&p, &r, BGS_BLUE, 10, false, &d);
	ok &= ASSERT_TRUE(d.action == RA_FLIP_STEP && d.promoted, "promote after a failed gate");
	ro_step_text(&p, 2, BGS_GREEN, txt, sizeof(txt));
	ok &= ASSERT_TRUE(!strcmp(txt, "pre-flip gate, then flip to green"), txt);
	ro_step_text(&p, 1, BGS_GREEN, txt, sizeof(txt));
	ok &= ASSERT_TRUE(!strcmp(txt, "canary 50% for 3s"), txt);

	/* finished or aborted records: nothing to do */
	r.state = BGS_ROLLOUT_ABORTED;
	ro_decide(&p, &r, BGS_BLUE, 10, false, &d);
	ok &= ASSERT_EQ(d.action, RA_NONE, "aborted");
	r.state = BGS_ROLLOUT_DONE;
	ro_decide(&p, &r, BGS_GREEN, 10, false, &d);
	ok &= ASSERT_EQ(d.action, RA_NONE, "done");
	return ok;
}

static struct pool_view pool(uint32_t n, uint32_t usable)
{
	struct pool_view p = { .n = n, .n_usable = usable, .weight = n * 100ULL,
			       .usable_weight = usable * 100ULL };
	return p;
}

static bool test_postflip(void)
{
	struct postflip_in in = { .live = BGS_GREEN, .now_ms = 10000, .since_ms = 5000,
				  .bake_ms = 20000, .max_unhealthy = 0, .rate_known = true,
				  .reset_rate = 2, .rate_limited = true, .max_reset_rate = 5,
				  .old = pool(2, 2), .min_healthy_pct = 50 };
	char why[200];
	bool ok = true;

	ok &= ASSERT_EQ(postflip_decide(&in, why, sizeof(why)), PF_WATCH, "2/s <= 5/s");
	in.reset_rate = 5;
	ok &= ASSERT_EQ(postflip_decide(&in, why, sizeof(why)), PF_WATCH, "5/s is not > 5/s");
	in.reset_rate = 35.2;
	ok &= ASSERT_EQ(postflip_decide(&in, why, sizeof(why)), PF_ROLLBACK, "35/s > 5/s");
	ok &= ASSERT_TRUE(!strcmp(why, "post-flip check: green resets 35/s > 5/s"), why);
	/* no rate measured yet, or no limit set: resets do not judge */
	in.rate_known = false;
	ok &= ASSERT_EQ(postflip_decide(&in, why, sizeof(why)), PF_WATCH, "no rate yet");
	in.rate_known = true;
	in.rate_limited = false;
	ok &= ASSERT_EQ(postflip_decide(&in, why, sizeof(why)), PF_WATCH, "no max_reset_rate");
	in.rate_limited = true;
	/* unhealthy backends */
	in.reset_rate = 0;
	in.unhealthy = 1;
	ok &= ASSERT_EQ(postflip_decide(&in, why, sizeof(why)), PF_ROLLBACK, "1 unhealthy > 0");
	ok &= ASSERT_TRUE(!strcmp(why, "post-flip check: green 1 unhealthy > 0"), why);
	in.max_unhealthy = 1;
	ok &= ASSERT_EQ(postflip_decide(&in, why, sizeof(why)), PF_WATCH, "1 <= 1");
	/* never onto an unhealthy pool */
	in.reset_rate = 50;
	in.old = pool(2, 0);
	ok &= ASSERT_EQ(postflip_decide(&in, why, sizeof(why)), PF_BLOCKED, "blue 0/2");
	ok &= ASSERT_STRSTR(why, "but blue is not healthy enough (0/2 healthy): no rollback", why);
	in.old = pool(2, 2);
	in.old.pending = true;
	ok &= ASSERT_EQ(postflip_decide(&in, why, sizeof(why)), PF_BLOCKED, "blue being checked");
	in.old = pool(4, 1);
	ok &= ASSERT_EQ(postflip_decide(&in, why, sizeof(why)), PF_BLOCKED, "blue 1/4 < 50%");
	in.old = pool(4, 2);
	ok &= ASSERT_EQ(postflip_decide(&in, why, sizeof(why)), PF_ROLLBACK, "blue 2/4 = 50%");
	/* failover's hold_down */
	in.hold = true;
	in.hold_left_ms = 1234;
	ok &= ASSERT_EQ(postflip_decide(&in, why, sizeof(why)), PF_BLOCKED, "hold_down");
	ok &= ASSERT_STRSTR(why, "in hold_down for 1234ms more", why);
	in.hold = false;
	/* bake_time, on the injected clock */
	in.now_ms = in.since_ms + in.bake_ms - 1;
	ok &= ASSERT_EQ(postflip_decide(&in, why, sizeof(why)), PF_ROLLBACK, "last ms of bake");
	in.now_ms = in.since_ms + in.bake_ms;
	ok &= ASSERT_EQ(postflip_decide(&in, why, sizeof(why)), PF_BAKED, "baked: the flip stays");
	return ok;
}

int main(int argc, char **argv)
{
	static const struct test_case tests[] = {
		{ "presets", test_presets },
		{ "schedule", test_schedule },
		{ "postflip", test_postflip },
	};

	return test_run_all("test_agent_rollout", tests, ARRAY_SIZE(tests), argc, argv);
}
