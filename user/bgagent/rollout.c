// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Rollouts run by the agent. bgctl stores a request with the pinned state (bgs_rollout_*);
 * each tick the agent reads it and runs the service's `rollout` steps: canary shares and
 * their pauses, then the pre-flip gate and the flip. Every step is a compare-and-swap on the
 * record (so a promote or an abort by bgctl in between wins) and is recorded in the history
 * with the agent as actor. The record is the whole truth: a restarted agent resumes where it
 * was; the time it was down does not count in a pause. The agent's heartbeat tells bgctl
 * whether anyone runs the rollouts.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "agent_priv.h"
#include "rollout.h"

/* ---- Plans ---- */

static void plan_canary(struct ro_plan *p, uint32_t pct, uint64_t pause_ms)
{
	p->step[p->n].canary_bps = pct * 100;
	p->step[p->n].pause_ms = pause_ms;
	p->step[p->n].promote = false;
	p->n++;
}

static void plan_promote(struct ro_plan *p)
{
	memset(&p->step[p->n], 0, sizeof(p->step[0]));
	p->step[p->n].promote = true;
	p->n++;
}

int ro_plan_make(const struct cfg_rollout *r, struct ro_plan *p)
{
	static const struct {
		const char *name;
		bool linear;
		uint32_t minutes;
	} presets[] = {
		{ "AllAtOnce", false, 0 },
		{ "Canary10Percent5Minutes", false, 5 },
		{ "Canary10Percent15Minutes", false, 15 },
		{ "Canary10Percent30Minutes", false, 30 },
		{ "Linear10PercentEvery1Minute", true, 1 },
		{ "Linear10PercentEvery3Minutes", true, 3 },
		{ "Linear10PercentEvery10Minutes", true, 10 },
	};

	memset(p, 0, sizeof(*p));
	p->gate = r->pre_flip_gate && r->pre_flip_gate->command;
	if (!r->strategy) {
		snprintf(p->strategy, sizeof(p->strategy), "custom");
		for (uint32_t i = 0; i < r->steps_count && p->n < RO_MAX_STEPS; i++) {
			if (r->steps[i].promote && *r->steps[i].promote)
				plan_promote(p);
			else
				plan_canary(p, r->steps[i].canary ? *r->steps[i].canary : 0,
					    r->steps[i].pause_ms);
		}
		return 0;
	}
	snprintf(p->strategy, sizeof(p->strategy), "%s", r->strategy);
	for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++) {
		uint64_t pause = presets[i].minutes * 60000ULL;

		if (strcmp(r->strategy, presets[i].name))
			continue;
		if (presets[i].minutes && !presets[i].linear)
			plan_canary(p, 10, pause);
		/* linear: 10% more every period, until the flip takes the last 10% */
		for (uint32_t pct = 10; presets[i].linear && pct < 100; pct += 10)
			plan_canary(p, pct, pause);
		plan_promote(p);
		return 0;
	}
	return -EINVAL;
}

/* "500ms", "2s", "5m", "1m30s", "1h" */
static const char *dur_text(uint64_t ms, char *buf, size_t len)
{
	uint64_t s = ms / 1000;

	if (ms % 1000)
		snprintf(buf, len, "%llums", (unsigned long long)ms);
	else if (s % 3600 == 0 && s)
		snprintf(buf, len, "%lluh", (unsigned long long)s / 3600);
	else if (s % 60 == 0 && s)
		snprintf(buf, len, "%llum", (unsigned long long)s / 60);
	else if (s > 60)
		snprintf(buf, len, "%llum%llus", (unsigned long long)s / 60,
			 (unsigned long long)s % 60);
	else
		snprintf(buf, len, "%llus", (unsigned long long)s);
	return buf;
}

uint32_t ro_flip_index(const struct ro_plan *p)
{
	return p->n && p->step[p->n - 1].promote ? p->n - 1 : p->n;
}

void ro_step_text(const struct ro_plan *p, uint32_t step, int to_color, char *buf, size_t len)
{
	char pause[40] = "", d[24];

	if (step >= ro_flip_index(p)) {
		if (step >= p->n)
			snprintf(buf, len, "wait for `bgctl rollout promote`, then %sflip to %s",
				 p->gate ? "the pre-flip gate and the " : "", color_str(to_color));
		else
			snprintf(buf, len, "%sflip to %s", p->gate ? "pre-flip gate, then " : "",
				 color_str(to_color));
		return;
	}
	if (p->step[step].pause_ms)
		snprintf(pause, sizeof(pause), " for %s",
			 dur_text(p->step[step].pause_ms, d, sizeof(d)));
	snprintf(buf, len, "canary %u%%%s", p->step[step].canary_bps / 100, pause);
}

void ro_decide(const struct ro_plan *p, const struct bgs_rollout *r, uint32_t live,
	       uint64_t now_ms, bool gate_running, struct ro_decision *d)
{
	uint32_t flip = ro_flip_index(p);

	memset(d, 0, sizeof(*d));
	if (!bgs_rollout_active(r->state))
		return;
	if (r->state == BGS_ROLLOUT_REQUESTED) {
		if (live != r->from_color) {
			d->action = RA_FAIL;
			snprintf(d->why, sizeof(d->why), "%s became live before the rollout began",
				 color_str((int)live));
			return;
		}
		d->step = 0;
		d->action = flip == 0 ? (p->n ? RA_FLIP_STEP : RA_WAIT) : RA_STEP;
		return;
	}
	if (live != r->from_color) {
		/* the flip is seen: the rollout's own (its flip step began) or someone else's */
		if (r->step >= flip && r->state != BGS_ROLLOUT_PAUSED) {
			d->action = RA_DONE;
			d->step = r->step;
			return;
		}
		d->action = RA_FAIL;
		snprintf(d->why, sizeof(d->why), "%s was made live outside the rollout",
			 color_str((int)live));
		return;
	}
	if (r->promotes != r->promotes_seen && !(r->state == BGS_ROLLOUT_GATE && gate_running)) {
		/* skip what is left of the pauses; a paused gate runs again */
		d->action = RA_FLIP_STEP;
		d->step = flip;
		d->promoted = true;
		return;
	}
	switch (r->state) {
	case BGS_ROLLOUT_RUNNING:
		if (r->step >= flip) {
			d->action = RA_FLIP;
			d->step = r->step;
			return;
		}
		if (now_ms < r->step_ms + r->pause_ms)
			return; /* the pause runs */
		d->step = r->step + 1;
		if (d->step >= p->n)
			d->action = RA_WAIT;
		else
			d->action = d->step == flip ? RA_FLIP_STEP : RA_STEP;
		return;
	case BGS_ROLLOUT_GATE:
		if (!gate_running) {
			/* an agent that died while it ran: run it again */
			d->action = RA_GATE;
			d->step = r->step;
		}
		return;
	default: /* paused: waits for promote or abort */
		return;
	}
}

/* ---- The agent's side ---- */

/* A pre-flip gate in flight. Keyed by service name and rollout id: a SIGHUP rebuilds the
 * runtime, so it points to no svc_rt. */
struct ro_gate {
	struct agent *ag;
	char service[BGS_NAME_MAX];
	__u32 rollout_id;
	pid_t pid;
	sd_event_source *child, *timer;
	uint64_t started_ms, timeout_ms;
	bool timed_out;
	struct ro_gate *next;
};

struct rollout_rt {
	struct ro_gate *gates;
	uint64_t down_ms;     /* how long no agent ran before this one (from the heartbeat) */
	bool down_applied;
	uint64_t started_ms;
};

static struct ro_gate *gate_find(struct agent *ag, const char *service, __u32 id)
{
	for (struct ro_gate *g = ag->ro ? ag->ro->gates : NULL; g; g = g->next)
		if (!strcmp(g->service, service) && g->rollout_id == id)
			return g;
	return NULL;
}

static void gate_free(struct ro_gate *g)
{
	struct ro_gate **pp = &g->ag->ro->gates;

	while (*pp && *pp != g)
		pp = &(*pp)->next;
	if (*pp)
		*pp = g->next;
	g->child = sd_event_source_disable_unref(g->child);
	g->timer = sd_event_source_disable_unref(g->timer);
	free(g);
}

static void gate_kill(struct ro_gate *g)
{
	if (g->pid > 0)
		kill(-g->pid, SIGKILL);
}

int rollout_init(struct agent *ag)
{
	ag->ro = calloc(1, sizeof(*ag->ro));
	if (!ag->ro)
		return -ENOMEM;
	ag->ro->started_ms = bgs_mono_ms();
	/* alive from the start: bgctl rollout start may come before the first tick */
	rollout_beat(ag);
	return 0;
}

void rollout_fini(struct agent *ag)
{
	if (!ag->ro)
		return;
	/* a gate cut short runs again in the next agent */
	while (ag->ro->gates) {
		struct ro_gate *g = ag->ro->gates;

		gate_kill(g);
		if (g->pid > 0)
			waitpid(g->pid, NULL, 0);
		gate_free(g);
	}
	free(ag->ro);
	ag->ro = NULL;
}

void rollout_beat(struct agent *ag)
{
	struct bgs_agent_beat b = { .pid = (__u32)getpid() };

	if (!ag->ro)
		return;
	/* the first tick learns how long no agent ran: a pause does not run without one */
	if (!ag->ro->down_applied && !ag->ro->down_ms) {
		struct bgs_agent_beat old;

		if (bgs_agent_beat_read(ag->h, &old) == 0 && old.pid != b.pid &&
		    bgs_mono_ms() > old.seen_ms + BGS_AGENT_ALIVE_MS)
			ag->ro->down_ms = bgs_mono_ms() - old.seen_ms;
	}
	b.seen_ms = bgs_mono_ms();
	b.started_ms = ag->ro->started_ms;
	if (bgs_agent_beat_write(ag->h, &b) && ag->ticks % 60 == 0)
		agent_log(LOG_W, "cannot write the heartbeat: %s", bgs_errmsg());
}

/* Write the next record (a step) through the library, recorded in the history with reason
 * (NULL: not recorded, a bookkeeping write); canary_bps >= 0 sets the canary with it. */
static int ro_write(struct svc_rt *s, const struct bgs_rollout *seen, struct bgs_rollout *next,
		    int canary_bps, __u32 gen, const char *verb, const char *reason)
{
	struct agent *ag = s->ag;
	struct bgs_change_info ci = { .verb = verb, .service = s->name, .svc_id = s->id,
				      .reason = reason };
	struct bgs_flip after;
	json_object *d = NULL;
	int err;

	bgs_set_lock_timeout(ag->h, AGENT_LOOP_LOCK_MS);
	if (reason) {
		d = json_object_new_object();
		json_object_object_add(d, "rollout", json_object_new_int64(next->id));
		json_object_object_add(d, "step", json_object_new_int64(next->step + 1));
		json_object_object_add(d, "steps", json_object_new_int64(next->nsteps));
		json_object_object_add(d, "state",
				       json_object_new_string(bgs_rollout_state_name(next->state)));
		if (canary_bps >= 0)
			json_object_object_add(d, "canary_bps", json_object_new_int64(canary_bps));
		json_object_object_add(d, "generation_before", json_object_new_int64(gen));
		err = agent_note(ag, &ci, d);
		json_object_put(d);
		if (err)
			return err;
	}
	err = bgs_rollout_update(ag->h, s->id, seen, next, canary_bps,
				 canary_bps >= 0 ? (long long)gen : BGS_ANY_GEN, &after);
	if (reason)
		agent_noted(ag, err);
	if (err) {
		if (err != -ESTALE && err != -EBUSY)
			agent_log(LOG_E, "%s: rollout %u: %s", s->name, seen->id, bgs_errmsg());
		return err;
	}
	if (canary_bps >= 0) {
		s->gen = bgs_flip_gen(&after);
	}
	return 0;
}

static void ro_fail(struct svc_rt *s, const struct bgs_rollout *r, const char *why, __u32 gen)
{
	struct bgs_rollout n = *r;
	char reason[BGS_REASON_MAX];
	bool canary = false;
	struct bgs_service svc;
	struct bgs_flip fl;

	n.state = BGS_ROLLOUT_FAILED;
	snprintf(n.reason, sizeof(n.reason), "%s", why);
	snprintf(n.next, sizeof(n.next), "nothing (failed)");
	snprintf(reason, sizeof(reason), "rollout %u failed: %.160s", r->id, why);
	/* the canary goes back to 0 with it, unless the other color is live now */
	if (bgs_service_get(s->ag->h, s->id, &svc, &fl) == 0 &&
	    bgs_flip_live(&fl) == r->from_color && bgs_flip_canary(&fl))
		canary = true;
	n.canary_bps = 0;
	if (!ro_write(s, r, &n, canary ? 0 : -1, gen, "rollout", reason))
		agent_log(LOG_W, "%s: %s", s->name, reason);
}

static void ro_step(struct svc_rt *s, const struct ro_plan *p, const struct bgs_rollout *r,
		    uint32_t step, bool promoted, __u32 gen)
{
	struct bgs_rollout n = *r;
	char reason[BGS_REASON_MAX], d[24];

	n.state = BGS_ROLLOUT_RUNNING;
	n.step = step;
	n.nsteps = p->n;
	n.canary_bps = p->step[step].canary_bps;
	n.step_ms = bgs_mono_ms();
	n.pause_ms = p->step[step].pause_ms;
	n.reason[0] = '\0';
	if (promoted)
		n.promotes_seen = n.promotes;
	snprintf(n.strategy, sizeof(n.strategy), "%s", p->strategy);
	ro_step_text(p, step + 1, !(int)r->from_color, n.next, sizeof(n.next));
	snprintf(reason, sizeof(reason), "rollout step %u/%u: canary %u%%, pause %s", step + 1,
		 p->n, n.canary_bps / 100, dur_text(n.pause_ms, d, sizeof(d)));
	if (!ro_write(s, r, &n, (int)n.canary_bps, gen, "rollout", reason))
		agent_log(LOG_N, "%s: %s", s->name, reason);
}

static void ro_wait(struct svc_rt *s, const struct ro_plan *p, const struct bgs_rollout *r,
		    __u32 gen)
{
	struct bgs_rollout n = *r;
	char reason[BGS_REASON_MAX];

	n.state = BGS_ROLLOUT_PAUSED;
	n.step = p->n;
	n.nsteps = p->n;
	n.pause_ms = 0;
	n.step_ms = bgs_mono_ms();
	snprintf(n.reason, sizeof(n.reason), "steps done: waiting for promote");
	ro_step_text(p, p->n, !(int)r->from_color, n.next, sizeof(n.next));
	snprintf(reason, sizeof(reason), "rollout %u paused: every step done, waiting for "
		 "promote", r->id);
	if (!ro_write(s, r, &n, -1, gen, "rollout", reason))
		agent_log(LOG_N, "%s: %s", s->name, reason);
}

static void ro_done(struct svc_rt *s, const struct bgs_rollout *r, __u32 flip_gen)
{
	struct bgs_rollout n = *r;

	n.state = BGS_ROLLOUT_DONE;
	n.canary_bps = 0;
	n.flip_gen = flip_gen;
	n.pause_ms = 0;
	n.reason[0] = '\0';
	snprintf(n.next, sizeof(n.next), "nothing (done)");
	if (!ro_write(s, r, &n, -1, 0, NULL, NULL))
		agent_log(LOG_N, "%s: rollout %u done: %s is live (generation %u)", s->name, r->id,
			  color_str(!(int)r->from_color), flip_gen);
}

int agent_flip(struct svc_rt *s, const struct bgs_flip_opts *o, const struct bgs_change_info *ci,
	       json_object *d, struct bgs_flip *after)
{
	struct agent *ag = s->ag;
	int err;

	json_object_object_add(d, "from", json_object_new_string(color_str(!o->to_color)));
	json_object_object_add(d, "to", json_object_new_string(color_str(o->to_color)));
	json_object_object_add(d, "generation_before", json_object_new_int64(o->expect_gen));
	bgs_set_lock_timeout(ag->h, AGENT_LOOP_LOCK_MS);
	err = agent_note(ag, ci, d);
	json_object_put(d);
	if (err)
		return err;
	err = bgs_flip(ag->h, s->id, o, after);
	agent_noted(ag, err);
	if (err < 0)
		return err;
	/* the agent's own flip: not "flipped by someone else" on the next tick */
	s->seen = true;
	s->gen = bgs_flip_gen(after);
	s->live = (int)bgs_flip_live(after);
	return err;
}

/* The flip of the rollout; its step was written before (a restart redoes it). */
static void ro_flip(struct svc_rt *s, const struct ro_plan *p, const struct bgs_rollout *r,
		    __u32 gen)
{
	struct bgs_flip_opts opts = { .to_color = !(int)r->from_color, .expect_gen = gen,
				      .drain_ms = s->cfg->drain_ms };
	struct bgs_change_info ci = { .verb = "flip", .service = s->name, .svc_id = s->id };
	struct bgs_flip after;
	char reason[BGS_REASON_MAX];
	json_object *d = json_object_new_object();
	int err;

	snprintf(reason, sizeof(reason), "rollout step %u/%u: flip to %s", r->step + 1,
		 p->n > r->step ? p->n : r->step + 1, color_str(opts.to_color));
	ci.reason = reason;
	json_object_object_add(d, "rollout", json_object_new_int64(r->id));
	err = agent_flip(s, &opts, &ci, d, &after);
	if (err == -EHOSTUNREACH) {
		struct bgs_rollout n = *r;

		n.state = BGS_ROLLOUT_PAUSED;
		snprintf(n.reason, sizeof(n.reason), "flip refused: %s has no usable backend",
			 color_str(opts.to_color));
		snprintf(n.next, sizeof(n.next), "flip to %s on `bgctl rollout promote`",
			 color_str(opts.to_color));
		snprintf(reason, sizeof(reason), "rollout %u paused: %.160s", r->id, n.reason);
		if (!ro_write(s, r, &n, -1, gen, "rollout", reason))
			agent_log(LOG_W, "%s: %s", s->name, reason);
		return;
	}
	if (err < 0) {
		/* -ESTALE (the service moved), -EBUSY (the lock): judged again next tick */
		if (err != -ESTALE && err != -EBUSY)
			agent_log(LOG_E, "%s: %s: %s", s->name, reason, bgs_errmsg());
		return;
	}
	agent_log(LOG_N, "%s: %s (generation %u)", s->name, reason, s->gen);
	postflip_count(s->ag, s->name, false);
	ro_done(s, r, bgs_flip_gen(&after));
}

static int on_gate_timeout(sd_event_source *src, uint64_t usec, void *arg)
{
	struct ro_gate *g = arg;

	(void)src;
	(void)usec;
	g->timed_out = true;
	gate_kill(g);
	return 0;
}

static struct svc_rt *svc_by_name(struct agent *ag, const char *name)
{
	for (unsigned int i = 0; i < ag->nsvc; i++)
		if (!strcmp(ag->svc[i].name, name))
			return &ag->svc[i];
	return NULL;
}

static int on_gate_exit(sd_event_source *src, const siginfo_t *si, void *arg)
{
	struct ro_gate *g = arg;
	struct agent *ag = g->ag;
	struct svc_rt *s = svc_by_name(ag, g->service);
	struct bgs_rollout r, n;
	struct bgs_service svc;
	struct bgs_flip fl;
	struct ro_plan p;
	char why[160], reason[BGS_REASON_MAX];
	bool ok = si->si_code == CLD_EXITED && si->si_status == 0 && !g->timed_out;

	(void)src;
	if (g->timed_out)
		snprintf(why, sizeof(why), "pre-flip gate timed out after %llus",
			 (unsigned long long)(g->timeout_ms + 999) / 1000);
	else if (si->si_code == CLD_EXITED)
		snprintf(why, sizeof(why), "pre-flip gate failed: exit status %d", si->si_status);
	else
		snprintf(why, sizeof(why), "pre-flip gate failed: signal %d", si->si_status);
	agent_log(ok ? LOG_N : LOG_W, "%s: rollout %u: %s (ran %llums)", g->service,
		  g->rollout_id, ok ? "pre-flip gate passed" : why,
		  (unsigned long long)(bgs_mono_ms() - g->started_ms));
	/* the rollout may have been aborted, or the service removed, meanwhile */
	if (!s || !s->cfg->rollout || bgs_rollout_get(ag->h, s->id, &r) || r.id != g->rollout_id ||
	    r.state != BGS_ROLLOUT_GATE || bgs_service_get(ag->h, s->id, &svc, &fl) ||
	    ro_plan_make(s->cfg->rollout, &p)) {
		gate_free(g);
		return 0;
	}
	gate_free(g);
	if (ok) {
		/* passed: the flip step goes on as a flip, so a refused flip is tried again on
		 * the next tick without running the gate again */
		n = r;
		n.state = BGS_ROLLOUT_RUNNING;
		if (!ro_write(s, &r, &n, -1, bgs_flip_gen(&fl), NULL, NULL))
			ro_flip(s, &p, &n, bgs_flip_gen(&fl));
		return 0;
	}
	n = r;
	n.state = BGS_ROLLOUT_PAUSED;
	snprintf(n.reason, sizeof(n.reason), "%s", why);
	snprintf(n.next, sizeof(n.next), "`bgctl rollout promote` runs the gate again; abort ends "
		 "it");
	snprintf(reason, sizeof(reason), "rollout %u paused: %.160s", r.id, why);
	if (!ro_write(s, &r, &n, -1, bgs_flip_gen(&fl), "rollout", reason))
		agent_log(LOG_W, "%s: %s", s->name, reason);
	return 0;
}

static void gate_start(struct svc_rt *s, const struct bgs_rollout *r)
{
	struct agent *ag = s->ag;
	const struct cfg_gate *cg = s->cfg->rollout->pre_flip_gate;
	const struct bgs_service_spec *sp = &s->cfg->spec;
	char vip[80], addr[64], port[8], pport[8], id[16];
	struct ro_gate *g;
	pid_t pid;

	if (gate_find(ag, s->name, r->id))
		return;
	g = calloc(1, sizeof(*g));
	if (!g)
		return;
	bgs_ip_str(&sp->vip, addr, sizeof(addr));
	bgs_addr_port_str(sp->vip.family, sp->vip.addr, sp->port, vip, sizeof(vip));
	snprintf(port, sizeof(port), "%u", sp->port);
	snprintf(pport, sizeof(pport), "%u", sp->preview_port);
	snprintf(id, sizeof(id), "%u", r->id);
	{
		const char *env[][2] = {
			{ "SERVICE", s->name },
			{ "VIP", vip },
			{ "VIP_ADDR", addr },
			{ "VIP_PORT", port },
			{ "IDLE_COLOR", color_str(!(int)r->from_color) },
			{ "LIVE_COLOR", color_str((int)r->from_color) },
			{ "PREVIEW_PORT", sp->preview_port ? pport : "" },
			{ "ROLLOUT_ID", id },
		};

		pid = spawn_sh(cg->command, env, sizeof(env) / sizeof(env[0]));
	}
	if (pid < 0) {
		agent_log(LOG_E, "%s: cannot run the pre-flip gate: %s", s->name, strerror(-pid));
		free(g);
		return;
	}
	g->ag = ag;
	snprintf(g->service, sizeof(g->service), "%s", s->name);
	g->rollout_id = r->id;
	g->pid = pid;
	g->started_ms = bgs_mono_ms();
	g->timeout_ms = cg->timeout_ms;
	g->next = ag->ro->gates;
	ag->ro->gates = g;
	if (sd_event_add_child(ag->ev, &g->child, pid, WEXITED, on_gate_exit, g) < 0 ||
	    sd_event_add_time_relative(ag->ev, &g->timer, CLOCK_MONOTONIC, cg->timeout_ms * 1000,
				       1000, on_gate_timeout, g) < 0) {
		agent_log(LOG_E, "%s: cannot watch the pre-flip gate", s->name);
		gate_kill(g);
		waitpid(pid, NULL, 0);
		gate_free(g);
		return;
	}
	agent_log(LOG_N, "%s: rollout %u: pre-flip gate running (%s, timeout %llus)", s->name,
		  r->id, cg->command, (unsigned long long)(cg->timeout_ms + 999) / 1000);
}

/* The flip step: the gate first if there is one (its exit flips), else the flip now. */
static void ro_flip_step(struct svc_rt *s, const struct ro_plan *p, const struct bgs_rollout *r,
			 uint32_t step, bool promoted, __u32 gen)
{
	struct bgs_rollout n = *r;
	char reason[BGS_REASON_MAX];
	struct ro_gate *g = gate_find(s->ag, s->name, r->id);

	if (g) {
		/* a promote while a gate runs: that one goes on */
		return;
	}
	n.state = p->gate ? BGS_ROLLOUT_GATE : BGS_ROLLOUT_RUNNING;
	n.step = step;
	n.nsteps = p->n;
	n.step_ms = bgs_mono_ms();
	n.pause_ms = 0;
	n.reason[0] = '\0';
	if (promoted)
		n.promotes_seen = n.promotes;
	snprintf(n.strategy, sizeof(n.strategy), "%s", p->strategy);
	ro_step_text(p, step < p->n ? step : p->n - 1, !(int)r->from_color, n.next,
		     sizeof(n.next));
	if (step >= p->n) /* no promote step: the promote request is the flip */
		snprintf(n.next, sizeof(n.next), "%sflip to %s", p->gate ? "pre-flip gate, then " : "",
			 color_str(!(int)r->from_color));
	snprintf(reason, sizeof(reason), "rollout step %u/%u: %s%s", step + 1,
		 step < p->n ? p->n : step + 1, p->gate ? "pre-flip gate" : "flip",
		 promoted ? " (promoted)" : "");
	/* without a gate, the flip's own record says it all */
	if (ro_write(s, r, &n, -1, gen, p->gate ? "rollout" : NULL, p->gate ? reason : NULL))
		return;
	agent_log(LOG_N, "%s: %s", s->name, reason);
	if (p->gate)
		gate_start(s, &n);
	else
		ro_flip(s, p, &n, gen);
}

void rollout_tick(struct svc_rt *s, const struct bgs_flip *fl)
{
	struct agent *ag = s->ag;
	struct bgs_rollout r;
	struct ro_decision d;
	struct ro_plan p;
	__u32 gen = bgs_flip_gen(fl);

	if (!ag->ro || bgs_rollout_get(ag->h, s->id, &r))
		return;
	if (!bgs_rollout_active(r.state)) {
		/* an abort by bgctl: a gate still running is of no use */
		struct ro_gate *g;

		while ((g = gate_find(ag, s->name, r.id))) {
			gate_kill(g);
			g->timed_out = false;
			g->child = sd_event_source_disable_unref(g->child);
			waitpid(g->pid, NULL, 0);
			gate_free(g);
		}
		return;
	}
	if (!s->cfg->rollout) {
		ro_fail(s, &r, "the service has no rollout in the agent's config", gen);
		return;
	}
	if (ro_plan_make(s->cfg->rollout, &p)) {
		ro_fail(s, &r, "the agent does not know its strategy", gen);
		return;
	}
	/* time without an agent does not count in a pause */
	if (ag->ticks == 0 && ag->ro->down_ms && r.state == BGS_ROLLOUT_RUNNING) {
		struct bgs_rollout n = r;

		n.step_ms += ag->ro->down_ms;
		if (!ro_write(s, &r, &n, -1, gen, NULL, NULL)) {
			agent_log(LOG_N, "%s: rollout %u resumes at step %u/%u (no agent ran for "
				  "%llus: the pause was stopped meanwhile)", s->name, r.id,
				  r.step + 1, r.nsteps, (unsigned long long)ag->ro->down_ms / 1000);
			r = n;
		}
	}
	ro_decide(&p, &r, bgs_flip_live(fl), bgs_mono_ms(), gate_find(ag, s->name, r.id) != NULL,
		  &d);
	switch (d.action) {
	case RA_NONE:
		break;
	case RA_STEP:
		ro_step(s, &p, &r, d.step, d.promoted, gen);
		break;
	case RA_FLIP_STEP:
		ro_flip_step(s, &p, &r, d.step, d.promoted, gen);
		break;
	case RA_GATE:
		gate_start(s, &r);
		break;
	case RA_FLIP:
		ro_flip(s, &p, &r, gen);
		break;
	case RA_WAIT:
		ro_wait(s, &p, &r, gen);
		break;
	case RA_DONE:
		ro_done(s, &r, bgs_flip_drain_gen(fl));
		break;
	case RA_FAIL:
		ro_fail(s, &r, d.why, gen);
		break;
	}
}

void rollout_ticks_done(struct agent *ag)
{
	if (ag->ro)
		ag->ro->down_applied = true;
}

/* ---- Metrics ---- */

void rollout_metrics(struct agent *ag, FILE *f)
{
	struct bgs_rollout *rs = calloc(ag->nsvc + 1, sizeof(*rs));
	bool *have = calloc(ag->nsvc + 1, sizeof(*have));

	if (!rs || !have)
		goto out;
	for (unsigned int i = 0; i < ag->nsvc; i++)
		have[i] = bgs_rollout_get(ag->h, ag->svc[i].id, &rs[i]) == 0;
	fputs("# HELP bgswitch_rollout_step Step of the service's rollout (1-based; 0: none).\n"
	      "# TYPE bgswitch_rollout_step gauge\n", f);
	for (unsigned int i = 0; i < ag->nsvc; i++)
		fprintf(f, "bgswitch_rollout_step{service=\"%s\"} %u\n", ag->svc[i].name,
			have[i] && rs[i].state != BGS_ROLLOUT_REQUESTED ? rs[i].step + 1 : 0);
	fputs("# HELP bgswitch_rollout_state 1 for the state the service's rollout is in.\n"
	      "# TYPE bgswitch_rollout_state gauge\n", f);
	for (unsigned int i = 0; i < ag->nsvc; i++)
		for (__u32 st = BGS_ROLLOUT_NONE; st < BGS_ROLLOUT_NR; st++)
			fprintf(f, "bgswitch_rollout_state{service=\"%s\",state=\"%s\"} %d\n",
				ag->svc[i].name, bgs_rollout_state_name(st),
				have[i] ? rs[i].state == st : st == BGS_ROLLOUT_NONE);
out:
	free(rs);
	free(have);
}
