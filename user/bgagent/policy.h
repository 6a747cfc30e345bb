/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's decisions, kept free of I/O and clocks so that tests drive them with an
 * injected time: the rise/fall state machine of one backend's checks, and the failover
 * policy of one service.
 */
#ifndef BGAGENT_POLICY_H
#define BGAGENT_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Health of one backend as its checks see it. */
struct hsm {
	bool up;	  /* the state written to the backend's record */
	bool known;	  /* decided by rise or fall checks, or adopted from the pins */
	uint32_t ok_run;  /* consecutive passes while down */
	uint32_t fail_run; /* consecutive failures (while up, or before the first decision) */
};

/* Start from the pinned record's state (adopted: known) or as a new backend (down, not
 * known until it passes `rise` or fails `fall` checks in a row). */
void hsm_init(struct hsm *s, bool up, bool known);
/* Feed one check result. Returns true when `up` changed (the record must be written). */
bool hsm_result(struct hsm *s, bool ok, uint32_t rise, uint32_t fall);

/* One pool of a service as the failover policy sees it. */
struct pool_view {
	uint32_t n;	       /* backends */
	uint32_t n_usable;     /* admin up and healthy */
	uint64_t weight;       /* weight of all backends */
	uint64_t usable_weight; /* weight of the usable ones */
	bool pending;	       /* some backend's health is not known yet */
};

struct failover_in {
	bool enabled;
	int live;		/* 0 blue, 1 green */
	struct pool_view pool[2];
	uint32_t min_healthy_pct; /* flip when live's usable weight share is below this */
	uint64_t hold_down_ms;
	uint64_t now_ms;
	bool flipped_before;	/* an automatic flip happened at last_flip_ms */
	uint64_t last_flip_ms;
};

enum failover_verdict {
	FO_STAY = 0, /* live pool healthy enough (or failover off) */
	FO_FLIP = 1, /* flip to the other color; reason says why */
	FO_BLOCKED = 2, /* live pool unhealthy but no flip: reason says why */
};

/* Decide for one service; reason (may be NULL) gets e.g. "failover: blue 0/2 healthy < 50%". */
enum failover_verdict failover_decide(const struct failover_in *in, char *reason, size_t len);

/* A hold-down promised before a restart: the last automatic flip was recorded (history, wall
 * clock) at flip_wall_ms, it is wall_now_ms now and mono_now_ms on the loop's clock. True if
 * its hold_down is not over: *last_flip_ms is then that flip on the loop's clock (modulo
 * 2^64: failover_decide only subtracts it), so the promise ends when it would have. A flip
 * recorded in the future (the wall clock stepped back) holds for a whole hold_down. */
bool hold_down_resume(long long flip_wall_ms, long long wall_now_ms, uint64_t mono_now_ms,
		      uint64_t hold_down_ms, uint64_t *last_flip_ms);

/* After a failed flip (fails in a row, the last one's errno, -EBUSY when the lock was
 * held): how long to wait before trying again, in ms. A held lock is tried every tick (the
 * flip is urgent; its refusals after the first are not recorded); anything else backs off
 * from 1 s, doubling, to 60 s, so a flip that keeps failing is not recorded every second. */
uint64_t flip_retry_ms(unsigned int fails, int err);

/* Usable share of a pool in whole percent (0 for an empty pool). */
uint32_t pool_share_pct(const struct pool_view *p);

#endif
