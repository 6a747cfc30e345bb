// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bgagent's loop. One thread, one sd-event loop: sd-event was chosen over libevent because it
 * brings, in one library Debian already ships with systemd, what the daemon needs besides
 * timers and fds: signalfd-backed signal sources, child sources (pidfd) for exec checks,
 * the watchdog (WatchdogSec= pings made by the loop itself) and sd_notify for Type=notify.
 * libcurl's multi interface and libmicrohttpd both run on it through their fds and timers.
 *
 * The agent keeps no routing truth of its own: health lives in the backend records, the flip
 * word in its map. kill -9 leaves traffic as it is; a restart adopts the pins.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <systemd/sd-daemon.h>

#include "agent.h"
#include "agent_priv.h"

#define TICK_MS 1000
/* Services' drift and pools are re-read when the pins' change stamp moved, and as a backstop
 * every SWEEP_TICKS ticks. */
#define SWEEP_TICKS 60

static bool log_journal;

void agent_log(int level, const char *fmt, ...)
{
	static const char *const names[8] = { "emerg", "alert", "crit", "error",
					      "warning", "notice", "info", "debug" };
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* journald reads the <N> priority prefix; a terminal gets a plain level word */
	if (log_journal)
		fprintf(stderr, "<%d>%s\n", level, msg);
	else
		fprintf(stderr, "bgagent: %s: %s\n", names[level & 7], msg);
}

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *color_str(int color)
{
	return color == BGS_GREEN ? "green" : "blue";
}

/* ---- Failover ---- */

/* The backend's record while it is still the one the agent knows: same id and incarnation
 * (ids are stable for a backend's life, a next-hop change updates it in place); -ENOENT once
 * it is gone (removed by hand: the next SIGHUP or restart rebuilds the list). */
static int be_record(struct be_rt *b, struct bgs_backend *rec)
{
	int err = bgs_backend_get(b->ag->h, b->id, rec);

	if (err)
		return err;
	if (!bgs_backend_in_use(rec) || rec->incarnation != b->incarnation)
		return -ENOENT;
	return 0;
}

/* ---- Audit history: every change the agent makes goes through the library's ---- */

int agent_note(struct agent *ag, const struct bgs_change_info *ci, json_object *details)
{
	struct bgs_change_info c = *ci;
	int err;

	c.details_json = details ? json_object_to_json_string(details) : NULL;
	err = bgs_change_note(ag->h, &c);
	if (err)
		agent_log(LOG_E, "%s%s%s: cannot note the change for the history: %s",
			  ci->verb, ci->service ? " " : "", ci->service ? ci->service : "",
			  bgs_errmsg());
	return err;
}

void agent_noted(struct agent *ag, int result)
{
	int lost = bgs_change_finish(ag->h, result, NULL);

	if (lost)
		agent_log(LOG_E, "WARNING: a change was applied, but its history record could not "
				 "be written to %s (%s): it is NOT RECORDED",
			  ag->history, strerror(-lost));
}

void pool_views(struct svc_rt *s, struct pool_view pv[2])
{
	memset(pv, 0, 2 * sizeof(*pv));
	for (unsigned int i = 0; i < s->nbe; i++) {
		struct be_rt *b = &s->be[i];
		struct pool_view *p = &pv[b->color & 1];
		struct bgs_backend rec;

		if (be_record(b, &rec))
			continue;
		p->n++;
		p->weight += rec.weight;
		if (!b->hsm.known)
			p->pending = true;
		/* health as the checks decided it (its write may still be queued); usable also
		 * needs a resolved next hop, as the library's bgs_pool_usable says */
		if (rec.admin == BGS_ADMIN_UP && b->hsm.up && bgs_backend_resolved(&rec)) {
			p->n_usable++;
			p->usable_weight += rec.weight;
		}
	}
}

/* One decision on what was just read; returns -ESTALE if the flip's compare-and-swap was
 * refused (the service changed between the read and the flip). */
static int failover_once(struct svc_rt *s)
{
	struct agent *ag = s->ag;
	struct failover_in in = {};
	struct bgs_flip_opts opts = {};
	struct bgs_change_info ci = {};
	struct bgs_service svc;
	struct bgs_flip before, after;
	enum failover_verdict v;
	json_object *d;
	char why[200];
	__u32 gen;
	int err, to;

	if (!s->cfg->fo.on || bgs_service_get(ag->h, s->id, &svc, &before))
		return 0;
	in.enabled = true;
	in.live = (int)bgs_flip_live(&before);
	gen = bgs_flip_gen(&before);
	pool_views(s, in.pool);
	in.min_healthy_pct = s->cfg->fo.min_healthy_pct;
	in.hold_down_ms = s->cfg->fo.hold_down_ms;
	in.now_ms = now_ms();
	in.flipped_before = s->auto_flipped;
	in.last_flip_ms = s->auto_flip_ms;
	v = failover_decide(&in, why, sizeof(why));
	if (v == FO_STAY) {
		if (s->flip_fails)
			agent_log(LOG_N, "%s: failover no longer needed", s->name);
		s->blocked_why[0] = '\0';
		s->retry_ms = 0;
		s->flip_fails = 0;
		return 0;
	}
	if (v == FO_BLOCKED) {
		/* hold_down counts down in the message: compare the start only */
		if (strncmp(s->blocked_why, why, 40))
			agent_log(LOG_W, "%s: no failover: %s", s->name, why);
		snprintf(s->blocked_why, sizeof(s->blocked_why), "%s", why);
		/* a hold_down is judged again when it ends; the rest changes only with a
		 * check's verdict or a change of the pins, which judge it */
		s->retry_ms = in.flipped_before && in.now_ms - in.last_flip_ms < in.hold_down_ms ?
				      in.last_flip_ms + in.hold_down_ms : 0;
		s->flip_fails = 0;
		return 0;
	}
	/* a flip that failed is tried again after its back-off, whatever asks */
	if (s->flip_fails && in.now_ms < s->retry_ms)
		return 0;
	to = !in.live;
	/* A compare-and-swap on the generation the decision was made from: a flip by bgctl
	 * (or anything else that moved the service) in between refuses it with -ESTALE. */
	opts.to_color = to;
	opts.expect_gen = gen;
	opts.drain_ms = s->cfg->drain_ms;
	d = json_object_new_object();
	json_object_object_add(d, "from", json_object_new_string(color_str(in.live)));
	json_object_object_add(d, "to", json_object_new_string(color_str(to)));
	json_object_object_add(d, "generation_before", json_object_new_int64(gen));
	json_object_object_add(d, "drain_timeout_ms",
			       s->cfg->drain_ms == BGS_NO_DEADLINE ?
				       NULL :
				       json_object_new_int64((int64_t)s->cfg->drain_ms));
	ci.verb = "flip";
	ci.service = s->name;
	ci.svc_id = s->id;
	ci.reason = why;
	/* the live pool is failing: like a rollback, it must not wait for /var to have space
	 * (agent_noted says loudly if it went unrecorded) */
	ci.flags = BGS_CHANGE_EMERGENCY;
	/* the same refusal again (before the lock): recorded once, with the first */
	if (s->flip_fails)
		ci.flags |= BGS_CHANGE_RETRY;
	err = agent_note(ag, &ci, d);
	json_object_put(d);
	if (err) {
		snprintf(s->blocked_why, sizeof(s->blocked_why), "flip not noted");
		s->flip_fails++;
		s->retry_ms = in.now_ms + flip_retry_ms(s->flip_fails, err);
		return 0;
	}
	err = bgs_flip(ag->h, s->id, &opts, &after);
	agent_noted(ag, err);
	if (err == -ESTALE) {
		agent_log(LOG_I, "%s: %s, but the service moved (generation %u -> %u) before the "
				 "flip: judging again",
			  s->name, why, gen, bgs_flip_gen(&after));
		return err;
	}
	if (err < 0) {
		/* -EBUSY (the lock is held, by bgctl or `flock PIN_DIR`) and the rest: tried
		 * again on the next tick until it succeeds or is no longer needed */
		char was[sizeof(s->blocked_why)];

		snprintf(was, sizeof(was), "%s", s->blocked_why);
		snprintf(s->blocked_why, sizeof(s->blocked_why), "flip failed: %s", bgs_errmsg());
		/* logged once while it fails the same way; a new error is a new first failure
		 * (recorded) */
		if (strcmp(was, s->blocked_why)) {
			agent_log(err == -EBUSY ? LOG_W : LOG_E, "%s: %s: flip failed: %s", s->name,
				  why, bgs_errmsg());
			s->flip_fails = 0;
		}
		s->flip_fails++;
		s->retry_ms = in.now_ms + flip_retry_ms(s->flip_fails, err);
		return 0;
	}
	if (s->flip_fails)
		agent_log(LOG_N, "%s: the flip went through after %u failed tries", s->name,
			  s->flip_fails);
	s->flip_fails = 0;
	s->retry_ms = 0;
	s->blocked_why[0] = '\0';
	s->seen = true;
	s->gen = bgs_flip_gen(&after);
	s->live = (int)bgs_flip_live(&after);
	if (err == 0)
		return 0; /* to was live already (not after a read at the same generation) */
	s->auto_flipped = true;
	s->auto_flip_ms = in.now_ms;
	s->flips_failover++;
	agent_log(LOG_N, "%s: flipped %s -> %s (generation %u): %s", s->name,
			  color_str(in.live), color_str(to), s->gen, why);
	return 0;
}

void agent_failover(struct svc_rt *s)
{
	/* A refused compare-and-swap is judged once more on a fresh read (the change may have
	 * been the agent's own health write, or a flip that made this one moot); if it is
	 * refused again, the next tick judges (blocked_why keeps it asking). */
	if (failover_once(s) == -ESTALE && failover_once(s) == -ESTALE) {
		snprintf(s->blocked_why, sizeof(s->blocked_why), "flip refused: service changed");
		s->retry_ms = now_ms();
	}
}

/*
 * At start: an automatic flip this agent made before it was restarted still holds off the
 * next one for its hold_down. The history (the agent's flips with reason "failover: ...",
 * done or maybe done) says when it was; the pins do not say who flipped.
 */
void failover_resume(struct svc_rt *s)
{
	struct bgs_history_query q = { .pin_dir = s->ag->pin_dir, .service = s->name,
				       .actor = AL_ACTOR, .verb = "flip",
				       .reason_prefix = "failover:" };
	struct timespec ts;
	long long flip_ms, wall_ms;
	uint64_t last;
	int found;

	if (!s->cfg->fo.on || !s->ag->hist || s->auto_flipped)
		return;
	found = bgs_history_last(s->ag->hist, &q, &flip_ms);
	if (found < 0)
		agent_log(LOG_W, "%s: cannot read the history for a hold_down to resume: %s",
			  s->name, bgs_errmsg());
	if (found <= 0)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	wall_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (!hold_down_resume(flip_ms, wall_ms, now_ms(), s->cfg->fo.hold_down_ms, &last))
		return;
	s->auto_flipped = true;
	s->auto_flip_ms = last;
	agent_log(LOG_N, "%s: automatic flip %.1f s ago (history): no other one before its "
			 "hold_down ends in %.1f s",
		  s->name, (double)(now_ms() - last) / 1000,
		  (double)(s->cfg->fo.hold_down_ms - (now_ms() - last)) / 1000);
}

/* ---- Check results ---- */

void agent_check_done(struct be_rt *be, enum check_result r, const char *why)
{
	struct svc_rt *s = be->svc;
	const struct cfg_check *ck = &s->cfg->check;
	bool was_known = be->hsm.known;
	struct health_write w;
	bool up;

	be->checks[r]++;
	if (r != CR_OK && why)
		snprintf(be->last_error, sizeof(be->last_error), "%s", why);
	if (!hsm_result(&be->hsm, r == CR_OK, ck->rise_n, ck->fall_n)) {
		/* a new backend that never passed is now known down: the pool can be judged */
		if (!was_known && be->hsm.known) {
			agent_log(LOG_W, "%s %s backend %s: down (failed %u checks: %s)", s->name,
				  color_str(be->color), be->label, ck->fall_n, be->last_error);
			agent_failover(s);
		}
		return;
	}
	up = be->hsm.up;
	w.id = be->id;
	w.incarnation = be->incarnation;
	w.up = up;
	snprintf(w.label, sizeof(w.label), "%s %s backend %s", s->name, color_str(be->color),
		 be->label);
	/* the write (a table publish) goes to the writer thread; the failover below judges
	 * from the checks' own view, so it does not wait for it */
	if (writer_health(s->ag, &w)) {
		agent_log(LOG_E, "%s: cannot queue health %s", w.label, up ? "up" : "down");
		return;
	}
	if (up)
		agent_log(LOG_N, "%s %s backend %s: up (passed %u checks)", s->name,
			  color_str(be->color), be->label, ck->rise_n);
	else
		agent_log(LOG_W, "%s %s backend %s: down (failed %u checks: %s)", s->name,
			  color_str(be->color), be->label, ck->fall_n, be->last_error);
	agent_failover(s);
}

/* ---- Drains ---- */

static const char *const drain_end_names[4] = { "drained", "deadline", "ended", "superseded" };

static int on_hook_exit(sd_event_source *src, const siginfo_t *si, void *arg)
{
	char *what = arg;

	if (si->si_code != CLD_EXITED || si->si_status != 0)
		agent_log(LOG_W, "%s: failed (%s %d)", what,
			  si->si_code == CLD_EXITED ? "exit status" : "signal", si->si_status);
	free(what);
	sd_event_source_unref(src);
	return 0;
}

/* on_drained: run, not waited for (the pipeline's hook may take long); its exit is logged */
static void run_on_drained(struct svc_rt *s, enum drain_end how, uint64_t left)
{
	char flows[32], *what = NULL;
	pid_t pid;

	if (!s->cfg->on_drained)
		return;
	snprintf(flows, sizeof(flows), "%llu", (unsigned long long)left);
	{
		const char *env[][2] = {
			{ "SERVICE", s->name },
			{ "COLOR", color_str(s->drain_color) },
			{ "DRAIN_RESULT", drain_end_names[how] },
			{ "FLOWS_LEFT", flows },
		};

		pid = spawn_sh(s->cfg->on_drained, env, 4);
	}
	if (pid < 0) {
		agent_log(LOG_E, "%s: cannot run on_drained: %s", s->name, strerror(-pid));
		return;
	}
	if (asprintf(&what, "%s: on_drained (%s)", s->name, s->cfg->on_drained) < 0)
		what = NULL;
	/* floating (the loop holds it); its callback drops it */
	if (!what || sd_event_add_child(s->ag->ev, NULL, pid, WEXITED, on_hook_exit, what) < 0)
		free(what);
}

static void drain_finish(struct svc_rt *s, enum drain_end how)
{
	uint64_t left = s->drain_counted ? s->drain_left : 0;
	json_object *d = json_object_new_object();
	struct bgs_change_info ci = { .verb = "drained", .service = s->name, .svc_id = s->id };
	char why[160];

	if (how == DRAIN_DRAINED)
		snprintf(why, sizeof(why), "no flow left");
	else
		snprintf(why, sizeof(why), "%s with %llu flow%s left%s", drain_end_names[how],
			 (unsigned long long)left, left == 1 ? "" : "s",
			 how == DRAIN_DEADLINE ? ": routed as new flows now" : "");
	agent_log(LOG_N, "%s: %s drain of generation %u over: %s", s->name,
		  color_str(s->drain_color), s->drain_gen, why);
	json_object_object_add(d, "color", json_object_new_string(color_str(s->drain_color)));
	json_object_object_add(d, "result", json_object_new_string(drain_end_names[how]));
	json_object_object_add(d, "flows_left", json_object_new_int64((int64_t)left));
	json_object_object_add(d, "drain_generation", json_object_new_int64(s->drain_gen));
	ci.reason = why;
	/* no library change goes with it: noted and finished at once, it is one record */
	if (agent_note(s->ag, &ci, d) == 0)
		agent_noted(s->ag, 0);
	json_object_put(d);
	s->drains_done[how]++;
	s->draining = false;
	s->drain_done_gen = s->drain_gen;
	state_set_drain_done(s->ag, s->name, s->drain_gen);
	if (how != DRAIN_SUPERSEDED)
		run_on_drained(s, how, left);
}

/* Follow the flip word: a drain starts with a flip (by anyone), ends when its flows are
 * gone, its deadline passes, or it is ended or superseded. Only the flip word and the
 * state file's last finished drain are needed, so a restart resumes a drain. */
static void drain_track(struct svc_rt *s, const struct bgs_flip *fl, __u64 jiffies)
{
	bool on = bgs_flip_draining(fl);

	if (s->draining && (!on || bgs_flip_drain_gen(fl) != s->drain_gen))
		drain_finish(s, !on ? DRAIN_ENDED : DRAIN_SUPERSEDED);
	if (!s->draining && on && bgs_flip_drain_gen(fl) != s->drain_done_gen) {
		s->draining = true;
		s->drain_gen = bgs_flip_drain_gen(fl);
		s->drain_color = !bgs_flip_live(fl);
		s->drain_deadline = bgs_flip_drain_deadline(fl);
		s->drain_seen_ms = now_ms();
		s->drain_counted = false;
		s->drain_left = 0;
		agent_log(LOG_N, "%s: tracking the drain of %s (flip generation %u)", s->name,
			  color_str(s->drain_color), s->drain_gen);
		walker_request(s->ag);
	}
	if (s->draining && s->drain_deadline != BGS_NO_DEADLINE && jiffies &&
	    jiffies >= s->drain_deadline)
		drain_finish(s, DRAIN_DEADLINE);
}

void agent_flows_updated(struct agent *ag)
{
	const struct flow_snapshot *f = ag->flows;

	for (unsigned int i = 0; i < ag->nsvc; i++) {
		struct svc_rt *s = &ag->svc[i];
		uint64_t left;

		/* only a walk asked for after the drain was seen counts its flows */
		if (!s->draining || f->asked_ms < s->drain_seen_ms || s->id >= f->max_services)
			continue;
		left = f->drain_left[s->id * 2 + (s->drain_color & 1)];
		if (!s->drain_counted || left < s->drain_left)
			agent_log(LOG_I, "%s: draining %s: %llu flow%s left", s->name,
				  color_str(s->drain_color), (unsigned long long)left,
				  left == 1 ? "" : "s");
		s->drain_left = left;
		s->drain_counted = true;
		if (!left)
			drain_finish(s, DRAIN_DRAINED);
	}
}

/* ---- Periodic: flips by others, drift, systemd status ---- */

static void notify_status(struct agent *ag)
{
	char status[1024];
	size_t off;

	off = (size_t)snprintf(status, sizeof(status), "STATUS=");
	for (unsigned int i = 0; i < ag->nsvc && off < sizeof(status) - 64; i++) {
		struct svc_rt *s = &ag->svc[i];
		struct bgs_service svc;
		struct bgs_flip fl;

		if (bgs_service_get(ag->h, s->id, &svc, &fl))
			continue;
		off += (size_t)snprintf(status + off, sizeof(status) - off, "%s%s %s%s%s",
					i ? "; " : "", s->name, color_str((int)bgs_flip_live(&fl)),
					bgs_flip_draining(&fl) ? " (draining)" : "",
					s->drift ? " DRIFT" : "");
	}
	if (!ag->nsvc)
		snprintf(status, sizeof(status), "STATUS=no services");
	sd_notify(0, status);
}

static int on_tick(sd_event_source *src, uint64_t usec, void *arg)
{
	struct agent *ag = arg;
	struct bgs_backend *all = NULL;
	bool any_drain = false, sweep;
	__u32 hz, stamp, nall = 0;
	__u64 jiffies = 0;

	if (bgs_clock(ag->h, &jiffies, &hz))
		jiffies = 0;
	/*
	 * Every change made through the library (bgctl's, the agent's own health writes)
	 * moves the pins' change stamp: only then are the services' pools and drift looked
	 * at again, from one read of the backend table, plus a slow sweep as a backstop.
	 * Reading the pools every second would cost more than all the checks. The stamp is
	 * read before the pools: a change made during the sweep is seen at the next tick.
	 */
	sweep = bgs_change_stamp(ag->h, &stamp) || !ag->stamp_seen || stamp != ag->stamp ||
		ag->ticks % SWEEP_TICKS == 0;
	if (sweep && bgs_backend_read_all(ag->h, &all, &nall)) {
		all = NULL;
		ag->stamp_seen = false; /* try again next tick */
	} else if (sweep) {
		ag->stamp = stamp;
		ag->stamp_seen = true;
	}
	rollout_beat(ag);

	for (unsigned int i = 0; i < ag->nsvc; i++) {
		struct svc_rt *s = &ag->svc[i];
		struct bgs_service svc;
		struct bgs_flip fl;
		int live;

		if (bgs_service_get(ag->h, s->id, &svc, &fl))
			continue;
		live = (int)bgs_flip_live(&fl);
		if (s->seen && live != s->live) {
			s->flips_other++;
			agent_log(LOG_N, "%s: flipped %s -> %s by someone else (generation %u)",
				  s->name, color_str(s->live), color_str(live), bgs_flip_gen(&fl));
		}
		if (all) {
			drift_check_with(s, all, nall);
			agent_failover(s);
		} else if (s->retry_ms && now_ms() >= s->retry_ms) {
			agent_failover(s); /* a hold_down over, a failed flip's retry */
		}
		s->seen = true;
		s->live = live;
		s->gen = bgs_flip_gen(&fl);
		drain_track(s, &fl, jiffies);
		any_drain |= s->draining;
		postflip_tick(s, &fl);
		rollout_tick(s, &fl);
	}
	rollout_ticks_done(ag);
	/* conntrack is walked every second while a drain runs, else every 10 s (the flow
	 * gauges of /metrics) */
	free(all);
	if (any_drain || ag->ticks % 10 == 0)
		walker_request(ag);
	ag->ticks++;
	notify_status(ag);
	sd_event_source_set_time(src, usec + TICK_MS * 1000ULL);
	return 0;
}

/* ---- Signals ---- */

/* A reloaded config's timeouts that are not those of the pinned state: they were fixed when
 * it was created, so the running ones stay; say which (not silently ignored). */
static void warn_timeouts(struct agent *ag, const struct cfg *cfg)
{
	struct bgs_meta meta;

	if (!cfg->timeouts || !ag->h)
		return;
	bgs_get_meta(ag->h, &meta);
	for (unsigned int i = 0; i < BGS_TIMEOUT_COUNT; i++) {
		__u32 want = bgs_timeout_get(&cfg->timeouts->t, i);
		__u32 have = bgs_timeout_get(&meta.timeouts, i);

		if (!want || (want == BGS_TIMEOUT_ZERO ? 0 : want) == have)
			continue;
		agent_log(LOG_W, "timeouts.%s %u s: the pinned state was created with %u s, which "
			  "stays (timeouts change only by recreating it: bgctl destroy, then a "
			  "restart)", bgs_timeout_name(i), want == BGS_TIMEOUT_ZERO ? 0 : want, have);
	}
}

static int reload(struct agent *ag)
{
	struct cfg_errors errs;
	struct cfg *cfg;
	int err;

	sd_notify(0, "RELOADING=1");
	agent_log(LOG_N, "SIGHUP: reloading %s", ag->cfg_path);
	err = cfg_load(ag->cfg_path, &cfg, &errs);
	if (err) {
		for (unsigned int i = 0; i < errs.n; i++)
			agent_log(LOG_E, "%s", errs.lines[i]);
		agent_log(LOG_E, "reload failed: the config has errors; still running on the one "
				 "loaded before");
		cfg_errors_free(&errs);
		ag->reloads_failed++;
		sd_notify(0, "READY=1");
		return 0;
	}
	if (strcmp(cfg->pin_dir ? cfg->pin_dir : BGS_DEFAULT_PIN_DIR, ag->pin_dir) ||
	    (cfg->state_file && strcmp(cfg->state_file, ag->state_file)) ||
	    (cfg->history_file && strcmp(cfg->history_file, ag->history)) ||
	    strcmp(cfg->listen_host, ag->cfg->listen_host) ||
	    cfg->listen_port != ag->cfg->listen_port)
		agent_log(LOG_W, "pin_dir, state_file, history_file and metrics.listen change only "
				 "with a restart; keeping %s and %s:%u",
			  ag->pin_dir, ag->cfg->listen_host, ag->cfg->listen_port);
	warn_timeouts(ag, cfg);
	/* the paths the agent holds stay those of the first config */
	err = apply_config(ag, cfg, false);
	if (err) {
		agent_log(LOG_E, "reload: applying failed (%s)", strerror(-err));
		cfg_free(cfg);
		ag->reloads_failed++;
	} else {
		/* the runtime points into the new config now */
		cfg_free(ag->cfg);
		ag->cfg = cfg;
		checks_start(ag);
		ag->reloads_ok++;
		agent_log(LOG_N, "reloaded: %u service%s", ag->nsvc, ag->nsvc == 1 ? "" : "s");
	}
	sd_notify(0, "READY=1");
	return 0;
}

static int on_signal(sd_event_source *src, const struct signalfd_siginfo *si, void *arg)
{
	struct agent *ag = arg;

	(void)src;
	if (si->ssi_signo == SIGHUP)
		return reload(ag);
	agent_log(LOG_N, "%s: stopping (nothing is detached; traffic goes on)",
		  strsignal((int)si->ssi_signo));
	sd_notify(0, "STOPPING=1");
	return sd_event_exit(ag->ev, 0);
}

/* mkdir -p of a file's directory (mode 0750): /var/lib/bgswitch on a fresh host. */
static void mkdir_parent(const char *file)
{
	char dir[4096];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", file);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return;
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(dir, 0750);
		*p = '/';
	}
	if (mkdir(dir, 0750) && errno != EEXIST)
		agent_log(LOG_W, "cannot create %s: %s", dir, strerror(errno));
}

int agent_main(const char *config_path, const char *version)
{
	struct agent ag = { .cfg_path = config_path, .version = version, .nl_fd = -1 };
	struct cfg_errors errs;
	sigset_t mask;
	int err, ret = 3;

	log_journal = getenv("JOURNAL_STREAM") != NULL;
	err = cfg_load(config_path, &ag.cfg, &errs);
	if (err) {
		for (unsigned int i = 0; i < errs.n; i++)
			agent_log(LOG_E, "%s", errs.lines[i]);
		agent_log(LOG_E, "not started: the config has errors; nothing was changed");
		cfg_errors_free(&errs);
		return 1;
	}
	/* fixed for the agent's life (a reload that changes them says so) */
	ag.pin_dir = strdup(ag.cfg->pin_dir ? ag.cfg->pin_dir : BGS_DEFAULT_PIN_DIR);
	ag.history = strdup(ag.cfg->history_file ? ag.cfg->history_file :
			    getenv("BGSWITCH_HISTORY") && *getenv("BGSWITCH_HISTORY") ?
						       getenv("BGSWITCH_HISTORY") :
						       CFG_DEFAULT_HISTORY);
	ag.state_file = strdup(ag.cfg->state_file ? ag.cfg->state_file : CFG_DEFAULT_STATE);
	if (!ag.pin_dir || !ag.history || !ag.state_file)
		goto out;
	mkdir_parent(ag.state_file); /* the history's: bgs_history_open makes them */

	/* before any thread or child: the loop takes these signals through signalfd/pidfd */
	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (sd_event_new(&ag.ev) < 0) {
		agent_log(LOG_E, "cannot create the event loop");
		goto out;
	}
	sd_event_set_watchdog(ag.ev, true);
	if (sd_event_add_signal(ag.ev, NULL, SIGHUP, on_signal, &ag) < 0 ||
	    sd_event_add_signal(ag.ev, NULL, SIGTERM, on_signal, &ag) < 0 ||
	    sd_event_add_signal(ag.ev, NULL, SIGINT, on_signal, &ag) < 0 || checks_init(&ag)) {
		agent_log(LOG_E, "cannot set up the event loop");
		goto out;
	}
	agent_log(LOG_I, "bgagent %s starting: config %s, pins %s, history %s", version,
		  config_path, ag.pin_dir, ag.history);
	/* metrics first: a taken port fails the start before anything is changed */
	if (metrics_start(&ag))
		goto out;
	err = apply_config(&ag, ag.cfg, true);
	if (err)
		goto out;
	checks_start(&ag);
	if (walker_start(&ag) || netlink_start(&ag) || rollout_init(&ag) || postflip_init(&ag))
		goto out;
	if (sd_event_add_time_relative(ag.ev, &ag.tick, CLOCK_MONOTONIC, TICK_MS * 1000ULL, 1000,
				       on_tick, &ag) < 0 ||
	    sd_event_source_set_enabled(ag.tick, SD_EVENT_ON) < 0) {
		agent_log(LOG_E, "cannot set up the event loop");
		goto out;
	}
	notify_status(&ag);
	sd_notify(0, "READY=1");
	agent_log(LOG_N, "ready: %u service%s", ag.nsvc, ag.nsvc == 1 ? "" : "s");
	err = sd_event_loop(ag.ev);
	ret = err < 0 ? 3 : 0;
out:
	rollout_fini(&ag);
	postflip_fini(&ag);
	netlink_stop(&ag);
	walker_stop(&ag);
	snapshot_free(ag.flows);
	runtime_free(&ag);
	ag.tick = sd_event_source_disable_unref(ag.tick);
	metrics_stop(&ag);
	checks_fini(&ag);
	if (ag.h)
		bgs_close(ag.h);
	bgs_history_close(ag.hist);
	json_object_put(ag.state);
	sd_event_unref(ag.ev);
	cfg_free(ag.cfg);
	free(ag.pin_dir);
	free(ag.history);
	free(ag.state_file);
	return ret;
}
