// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The post-flip check. For bake_time after any flip (a rollout's, a failover's or one made
 * with bgctl: the flip word's drain generation moves with each), the agent watches the new
 * live pool: more than max_unhealthy of its backends down by their checks, or (nat) more
 * than max_reset_rate TCP resets per second sent by its backends (the switch counts them on
 * the reply path), rolls the service back with a compare-and-swap on the generation the
 * judgement was made from. Never onto a pool that is not healthy enough for a failover,
 * never within failover's hold_down; the canary and preview shares are not watched (only a
 * flip starts a watch). The watch is kept with the pinned state, so a restarted agent goes
 * on with it; other flips made before the agent started are taken as baked.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_priv.h"
#include "rollout.h"

static bool old_pool_ok(const struct pool_view *p, uint32_t pct)
{
	return !p->pending && p->n_usable && p->usable_weight * 100 >= (uint64_t)pct * p->weight;
}

enum postflip_verdict postflip_decide(const struct postflip_in *in, char *reason, size_t len)
{
	const char *live = color_str(in->live), *old = color_str(!in->live);
	char what[120], dummy[8];

	if (!reason) {
		reason = dummy;
		len = sizeof(dummy);
	}
	reason[0] = '\0';
	if (in->now_ms - in->since_ms >= in->bake_ms)
		return PF_BAKED;
	if (in->unhealthy > in->max_unhealthy)
		snprintf(what, sizeof(what), "%s %u unhealthy > %u", live, in->unhealthy,
			 in->max_unhealthy);
	else if (in->rate_limited && in->rate_known && in->reset_rate > in->max_reset_rate)
		snprintf(what, sizeof(what), "%s resets %.0f/s > %u/s", live, in->reset_rate,
			 in->max_reset_rate);
	else
		return PF_WATCH;
	if (!old_pool_ok(&in->old, in->min_healthy_pct)) {
		snprintf(reason, len, "post-flip check: %s, but %s is %s (%u/%u healthy): no "
			 "rollback", what, old, in->old.pending ? "still being checked" :
			 "not healthy enough", in->old.n_usable, in->old.n);
		return PF_BLOCKED;
	}
	if (in->hold) {
		snprintf(reason, len, "post-flip check: %s, but in hold_down for %llums more: no "
			 "rollback yet", what, (unsigned long long)in->hold_left_ms);
		return PF_BLOCKED;
	}
	snprintf(reason, len, "post-flip check: %s", what);
	return PF_ROLLBACK;
}

/* ---- The agent's side ---- */

/* One service's watch, by name: a SIGHUP rebuilds the runtime, the watch goes on. */
struct pf_svc {
	char name[BGS_NAME_MAX];
	__u32 flip_gen; /* the last flip seen */
	bool watching;
	int live;
	uint64_t since_ms;
	uint64_t resets;    /* the live pool's resets at the last sample */
	uint64_t sample_ms; /* when it was taken */
	bool sampled;
	double rate, max_rate;
	uint32_t max_unhealthy_seen;
	uint64_t flips_rollout, flips_rollback; /* the agent's own flips, for /metrics */
	char blocked[200];
	struct pf_svc *next;
};

struct postflip_rt {
	struct pf_svc *list;
};

int postflip_init(struct agent *ag)
{
	ag->pf = calloc(1, sizeof(*ag->pf));
	return ag->pf ? 0 : -ENOMEM;
}

void postflip_fini(struct agent *ag)
{
	if (!ag->pf)
		return;
	while (ag->pf->list) {
		struct pf_svc *p = ag->pf->list;

		ag->pf->list = p->next;
		free(p);
	}
	free(ag->pf);
	ag->pf = NULL;
}

static struct pf_svc *pf_get(struct agent *ag, const char *name, bool *fresh)
{
	struct pf_svc *p;

	*fresh = false;
	for (p = ag->pf->list; p; p = p->next)
		if (!strcmp(p->name, name))
			return p;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->next = ag->pf->list;
	ag->pf->list = p;
	*fresh = true;
	return p;
}

void postflip_count(struct agent *ag, const char *service, bool rollback)
{
	bool fresh;
	struct pf_svc *p = ag->pf ? pf_get(ag, service, &fresh) : NULL;

	if (!p)
		return;
	if (rollback)
		p->flips_rollback++;
	else
		p->flips_rollout++;
}

void postflip_flips(struct agent *ag, const char *service, uint64_t *rollout, uint64_t *rollback)
{
	*rollout = *rollback = 0;
	for (struct pf_svc *p = ag->pf ? ag->pf->list : NULL; p; p = p->next)
		if (!strcmp(p->name, service)) {
			*rollout = p->flips_rollout;
			*rollback = p->flips_rollback;
		}
}

/* Resets sent by the backends of a pool (from their counters), and how many of them the
 * checks hold down. */
static uint64_t pool_resets(struct svc_rt *s, int color, uint32_t *unhealthy)
{
	uint64_t sum = 0;

	*unhealthy = 0;
	for (unsigned int i = 0; i < s->nbe; i++) {
		struct be_rt *b = &s->be[i];
		struct bgs_counter c;

		if (b->color != color)
			continue;
		if (b->hsm.known && !b->hsm.up)
			(*unhealthy)++;
		if (bgs_backend_counters(s->ag->h, b->id, &c) == 0)
			sum += c.resets;
	}
	return sum;
}

static void watch_begin(struct svc_rt *s, struct pf_svc *p, int live, uint64_t since)
{
	uint32_t unhealthy;

	p->watching = true;
	p->live = live;
	p->since_ms = since;
	p->sampled = false;
	p->rate = p->max_rate = 0;
	p->max_unhealthy_seen = 0;
	p->blocked[0] = '\0';
	p->resets = pool_resets(s, p->live, &unhealthy);
	p->sample_ms = now_ms();
}

/* The watch in the pinned state: a restarted agent goes on with it. */
static void watch_save(struct svc_rt *s, const struct pf_svc *p)
{
	struct bgs_flip_watch w = { .flip_gen = p->flip_gen, .live = (__u32)p->live,
				    .since_ms = p->since_ms, .over = !p->watching };

	if (bgs_flip_watch_set(s->ag->h, s->id, &w))
		agent_log(LOG_W, "%s: post-flip check: %s", s->name, bgs_errmsg());
}

/* A rollout whose flip this was is marked rolled back. */
static void rollout_rolled_back(struct svc_rt *s, __u32 flip_gen, const char *why)
{
	struct bgs_rollout r, n;

	if (bgs_rollout_get(s->ag->h, s->id, &r) || r.state != BGS_ROLLOUT_DONE ||
	    r.flip_gen != flip_gen)
		return;
	n = r;
	n.state = BGS_ROLLOUT_ROLLED_BACK;
	snprintf(n.reason, sizeof(n.reason), "%s", why);
	snprintf(n.next, sizeof(n.next), "nothing (rolled back)");
	bgs_rollout_update(s->ag->h, s->id, &r, &n, -1, BGS_ANY_GEN, NULL);
}

static void rollback(struct svc_rt *s, struct pf_svc *p, __u32 gen, const char *why)
{
	struct bgs_flip_opts opts = { .to_color = !p->live, .expect_gen = gen,
				      .drain_ms = s->cfg->drain_ms };
	struct bgs_change_info ci = { .verb = "rollback", .service = s->name, .svc_id = s->id,
				      .reason = why, .flags = BGS_CHANGE_EMERGENCY };
	json_object *d = json_object_new_object();
	struct bgs_flip after;
	int err;

	json_object_object_add(d, "flip_generation", json_object_new_int64(p->flip_gen));
	json_object_object_add(d, "watched_ms",
			       json_object_new_int64((int64_t)(now_ms() - p->since_ms)));
	if (p->sampled)
		json_object_object_add(d, "reset_rate", json_object_new_double(p->rate));
	err = agent_flip(s, &opts, &ci, d, &after);
	if (err < 0) {
		/* -ESTALE: the service moved, judged again next tick; -EBUSY: the lock */
		if (err != -ESTALE)
			agent_log(err == -EBUSY ? LOG_W : LOG_E, "%s: %s: rollback failed: %s",
				  s->name, why, bgs_errmsg());
		return;
	}
	/* an automatic flip: failover's hold_down starts; the rollback itself is not watched */
	s->auto_flipped = true;
	s->auto_flip_ms = now_ms();
	rollout_rolled_back(s, p->flip_gen, why);
	p->flips_rollback++;
	p->watching = false;
	watch_save(s, p);
	p->flip_gen = bgs_flip_drain_gen(&after);
	agent_log(LOG_W, "%s: rolled back %s -> %s (generation %u): %s", s->name,
		  color_str(!s->live), color_str(s->live), s->gen, why);
}

static void baked(struct svc_rt *s, struct pf_svc *p)
{
	struct bgs_change_info ci = { .verb = "post-flip check", .service = s->name,
				      .svc_id = s->id };
	char why[200];

	snprintf(why, sizeof(why), "post-flip check: %s passed after %llus (resets up to %.0f/s, "
		 "up to %u unhealthy)", color_str(p->live),
		 (unsigned long long)(now_ms() - p->since_ms) / 1000, p->max_rate,
		 p->max_unhealthy_seen);
	ci.reason = why;
	/* a record with no change */
	if (agent_note(s->ag, &ci, NULL) == 0)
		agent_noted(s->ag, 0);
	agent_log(LOG_N, "%s: %s", s->name, why);
	p->watching = false;
	watch_save(s, p);
}

void postflip_tick(struct svc_rt *s, const struct bgs_flip *fl)
{
	const struct cfg_post_flip *pc = s->cfg->post_flip_check;
	struct agent *ag = s->ag;
	struct postflip_in in = {};
	struct pool_view pv[2];
	enum postflip_verdict v;
	struct bgs_service svc;
	struct pf_svc *p;
	uint64_t now = now_ms(), resets;
	char why[200];
	bool fresh;

	if (!ag->pf || !(p = pf_get(ag, s->name, &fresh)))
		return;
	if (fresh) {
		/* a watch a previous agent left running goes on; other flips made before this
		 * agent came are taken as baked */
		struct bgs_flip_watch w;

		p->flip_gen = bgs_flip_drain_gen(fl);
		if (!pc || bgs_flip_watch_get(ag->h, s->id, &w) || w.over ||
		    w.flip_gen != p->flip_gen || w.live != bgs_flip_live(fl) ||
		    now >= w.since_ms + pc->bake_ms)
			return;
		watch_begin(s, p, (int)w.live, w.since_ms);
		agent_log(LOG_N, "%s: post-flip check: resumes watching %s (flip generation %u, "
			  "%llus left)", s->name, color_str(p->live), p->flip_gen,
			  (unsigned long long)(w.since_ms + pc->bake_ms - now) / 1000);
		return;
	}
	if (bgs_flip_drain_gen(fl) != p->flip_gen) {
		p->flip_gen = bgs_flip_drain_gen(fl);
		p->watching = false;
		if (!pc || !pc->bake_ms)
			return;
		watch_begin(s, p, (int)bgs_flip_live(fl), now);
		watch_save(s, p);
		agent_log(LOG_N, "%s: post-flip check: watching %s for %llus (flip generation %u)",
			  s->name, color_str(p->live), (unsigned long long)pc->bake_ms / 1000,
			  p->flip_gen);
		return;
	}
	if (!p->watching || !pc)
		return;
	resets = pool_resets(s, p->live, &in.unhealthy);
	if (now - p->sample_ms >= 500) {
		p->rate = (double)(resets - p->resets) * 1000.0 / (double)(now - p->sample_ms);
		p->resets = resets;
		p->sample_ms = now;
		p->sampled = true;
		if (p->rate > p->max_rate)
			p->max_rate = p->rate;
	}
	if (in.unhealthy > p->max_unhealthy_seen)
		p->max_unhealthy_seen = in.unhealthy;
	in.live = p->live;
	in.now_ms = now;
	in.since_ms = p->since_ms;
	in.bake_ms = pc->bake_ms;
	in.max_unhealthy = pc->max_unhealthy ? *pc->max_unhealthy : 0;
	in.rate_known = p->sampled && bgs_service_get(ag->h, s->id, &svc, NULL) == 0 &&
			svc.mode == BGS_MODE_NAT;
	in.reset_rate = p->rate;
	in.rate_limited = pc->max_reset_rate != NULL;
	in.max_reset_rate = pc->max_reset_rate ? *pc->max_reset_rate : 0;
	pool_views(s, pv);
	in.old = pv[!p->live];
	in.min_healthy_pct = s->cfg->fo.min_healthy_pct;
	in.hold = s->cfg->fo.on && s->auto_flipped && now - s->auto_flip_ms < s->cfg->fo.hold_down_ms;
	in.hold_left_ms = in.hold ? s->cfg->fo.hold_down_ms - (now - s->auto_flip_ms) : 0;
	v = postflip_decide(&in, why, sizeof(why));
	switch (v) {
	case PF_WATCH:
		p->blocked[0] = '\0';
		break;
	case PF_BAKED:
		baked(s, p);
		break;
	case PF_BLOCKED:
		/* hold_down counts down in the message: compare the start only */
		if (strncmp(p->blocked, why, 40))
			agent_log(LOG_W, "%s: %s", s->name, why);
		snprintf(p->blocked, sizeof(p->blocked), "%s", why);
		break;
	case PF_ROLLBACK:
		rollback(s, p, bgs_flip_gen(fl), why);
		break;
	}
}
