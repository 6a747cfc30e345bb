// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The rise/fall state machine and the failover policy (see policy.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "policy.h"

static const char *const color_names[2] = { "blue", "green" };

void hsm_init(struct hsm *s, bool up, bool known)
{
	memset(s, 0, sizeof(*s));
	s->up = up;
	s->known = known;
}

bool hsm_result(struct hsm *s, bool ok, uint32_t rise, uint32_t fall)
{
	if (ok) {
		s->fail_run = 0;
		if (s->up)
			return false;
		if (++s->ok_run < rise)
			return false;
		s->ok_run = 0;
		s->up = true;
		s->known = true;
		return true;
	}
	s->ok_run = 0;
	if (++s->fail_run < fall)
		return false;
	/* A new backend that fails `fall` times is known to be down: failover may judge. */
	s->known = true;
	if (!s->up)
		return false;
	s->fail_run = 0;
	s->up = false;
	return true;
}

uint32_t pool_share_pct(const struct pool_view *p)
{
	return p->weight ? (uint32_t)(p->usable_weight * 100 / p->weight) : 0;
}

/* Some backend usable and the usable weight share >= pct, exactly (usable * 100 >= pct *
 * total, no rounding): with min_healthy 0% a pool fails only when nothing in it is usable. */
static bool pool_ok(const struct pool_view *p, uint32_t pct)
{
	return p->n_usable && p->usable_weight * 100 >= (uint64_t)pct * p->weight;
}

enum failover_verdict failover_decide(const struct failover_in *in, char *reason, size_t len)
{
	const struct pool_view *live = &in->pool[in->live & 1], *idle = &in->pool[!(in->live & 1)];
	const char *lname = color_names[in->live & 1], *iname = color_names[!(in->live & 1)];
	char dummy[8];

	if (!reason) {
		reason = dummy;
		len = sizeof(dummy);
	}
	reason[0] = '\0';
	if (!in->enabled || live->pending || pool_ok(live, in->min_healthy_pct))
		return FO_STAY;
	if (in->flipped_before && in->now_ms - in->last_flip_ms < in->hold_down_ms) {
		snprintf(reason, len, "%s %u/%u healthy < %u%%, but in hold_down for %llums more",
			 lname, live->n_usable, live->n, in->min_healthy_pct,
			 (unsigned long long)(in->hold_down_ms - (in->now_ms - in->last_flip_ms)));
		return FO_BLOCKED;
	}
	if (idle->pending || !pool_ok(idle, in->min_healthy_pct)) {
		snprintf(reason, len, "%s %u/%u healthy < %u%%, but %s is %s (%u/%u healthy)",
			 lname, live->n_usable, live->n, in->min_healthy_pct, iname,
			 idle->pending ? "still being checked" : "not healthy enough",
			 idle->n_usable, idle->n);
		return FO_BLOCKED;
	}
	snprintf(reason, len, "failover: %s %u/%u healthy < %u%%", lname, live->n_usable, live->n,
		 in->min_healthy_pct);
	return FO_FLIP;
}

bool hold_down_resume(long long flip_wall_ms, long long wall_now_ms, uint64_t mono_now_ms,
		      uint64_t hold_down_ms, uint64_t *last_flip_ms)
{
	uint64_t ago = wall_now_ms > flip_wall_ms ? (uint64_t)(wall_now_ms - flip_wall_ms) : 0;

	if (ago >= hold_down_ms)
		return false;
	*last_flip_ms = mono_now_ms - ago;
	return true;
}

uint64_t flip_retry_ms(unsigned int fails, int err)
{
	if (!fails || err == -EBUSY)
		return 0;
	uint64_t ms = fails > 7 ? 60000 : 1000ULL << (fails - 1);

	return ms > 60000 ? 60000 : ms;
}
