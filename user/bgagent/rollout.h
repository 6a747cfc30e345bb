/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Rollouts and the post-flip check: the decisions, kept free of I/O and clocks so that tests
 * drive them with an injected time (rollout.c and postflip.c also hold the agent's side).
 */
#ifndef BGAGENT_ROLLOUT_H
#define BGAGENT_ROLLOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "policy.h"

/* ---- Rollout plan: the steps of a service's `rollout` config ---- */

#define RO_MAX_STEPS 101
struct ro_step {
	uint32_t canary_bps; /* a canary step's share */
	uint64_t pause_ms;   /* how long it stays there */
	bool promote;	     /* the flip */
};
struct ro_plan {
	struct ro_step step[RO_MAX_STEPS];
	uint32_t n;
	char strategy[48];
	bool gate; /* a pre_flip_gate runs before the flip */
};
/* Steps of a preset (CodeDeploy's names) or of custom steps; -EINVAL for an unknown
 * preset. */
int ro_plan_make(const struct cfg_rollout *r, struct ro_plan *p);
/* Index of the flip: the promote step, or n when the steps end without one (the rollout
 * then waits for `bgctl rollout promote`). */
uint32_t ro_flip_index(const struct ro_plan *p);

/* What the agent does next with a service's rollout record. */
enum ro_action {
	RA_NONE = 0,	 /* nothing now (a pause runs, or it waits for promote) */
	RA_STEP = 1,	 /* begin canary step `step` */
	RA_FLIP_STEP = 2, /* begin the flip step: the gate if there is one, else the flip */
	RA_GATE = 3,	 /* (re)run the gate of the flip step */
	RA_FLIP = 4,	 /* flip now (the flip step began, the flip is not seen yet) */
	RA_WAIT = 5,	 /* past the last step, no promote step: wait for promote */
	RA_DONE = 6,	 /* the flip is seen: the rollout is done */
	RA_FAIL = 7,	 /* cannot go on: why says why */
};
struct ro_decision {
	enum ro_action action;
	uint32_t step;	     /* the step it concerns */
	bool promoted;	     /* a promote request is consumed by it */
	char why[160];
};
struct bgs_rollout;
/* Decide for one record, with the live color now, the time now (CLOCK_MONOTONIC ms, the
 * record's clock) and whether this agent runs the gate now. */
void ro_decide(const struct ro_plan *p, const struct bgs_rollout *r, uint32_t live,
	       uint64_t now_ms, bool gate_running, struct ro_decision *d);
/* "canary 20% for 1m", "flip to green", "pre-flip gate, then flip to green" */
void ro_step_text(const struct ro_plan *p, uint32_t step, int to_color, char *buf, size_t len);

/* ---- Post-flip check: after a flip, is the new live pool fit to stay? ---- */

struct postflip_in {
	int live;		 /* the new live color */
	uint64_t now_ms, since_ms; /* watching since the flip was seen */
	uint64_t bake_ms;
	uint32_t unhealthy;	 /* backends of the live pool whose checks say down */
	uint32_t max_unhealthy;
	bool rate_known;	 /* a reset rate was measured (nat, two samples) */
	double reset_rate;	 /* resets per second from the live pool's backends */
	bool rate_limited;	 /* max_reset_rate is set */
	uint32_t max_reset_rate;
	struct pool_view old;	 /* the pool a rollback would go to */
	uint32_t min_healthy_pct;
	bool hold;		 /* failover's hold_down runs... */
	uint64_t hold_left_ms;	 /* ...for this long */
};
enum postflip_verdict {
	PF_WATCH = 0,	 /* within bake_time, fine so far */
	PF_BAKED = 1,	 /* bake_time passed: the flip stays */
	PF_ROLLBACK = 2, /* roll back now: reason says why, with the measured figure */
	PF_BLOCKED = 3,	 /* it should roll back, but cannot (reason says why): watch on */
};
enum postflip_verdict postflip_decide(const struct postflip_in *in, char *reason, size_t len);

#endif
