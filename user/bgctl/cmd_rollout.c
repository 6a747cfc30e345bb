// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bgctl rollout start|status|promote|abort: the request is stored with the pinned state
 * (the library's bgs_rollout_*), never sent to the agent: bgagent reads it each second and
 * runs the steps of the service's `rollout` config. start wants an agent that showed itself
 * alive (its heartbeat) unless --force; abort puts the canary back to 0 itself, at once.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bgctl.h"

enum { O_REASON = 1, O_FORCE };

#define OPT_REASON { "reason", O_REASON, 0, "TEXT", "recorded in the history" }

static const struct verb_opt start_opts[] = {
	OPT_REASON,
	{ "force", O_FORCE, 0, NULL, "store it even if no agent is running to carry it out" },
	{ NULL },
};
static const struct verb_opt change_opts[] = {
	OPT_REASON,
	{ NULL },
};

static const struct verb_spec start_spec = { "rollout start", "NAME", start_opts };
static const struct verb_spec status_spec = { "rollout status", "[NAME]", NULL };
static const struct verb_spec promote_spec = { "rollout promote", "NAME", change_opts };
static const struct verb_spec abort_spec = { "rollout abort", "NAME", change_opts };

const struct verb_help help_rollout = {
	(const struct verb_spec *const[]){ &start_spec, &status_spec, &promote_spec, &abort_spec,
					   NULL },
	"A rollout moves a service to its idle color in the steps of its `rollout` config\n"
	"(bgswitch.yaml(5)): canary shares and pauses, the pre-flip gate, then the flip. The\n"
	"request is stored with the pinned state; bgagent carries it out and resumes it after a\n"
	"restart. start refuses (exit 4) when no agent has shown itself alive in the last 5 s,\n"
	"unless --force. promote skips the remaining pauses (and runs a failed gate again);\n"
	"abort puts the canary back to 0 at once and ends the rollout.\n",
};

/* The agent's heartbeat as json: alive, pid, seconds since it was last seen. */
static json_object *agent_json(void)
{
	struct bgs_agent_beat b;
	json_object *o = json_object_new_object();
	__u64 now = bgs_mono_ms();

	if (bgs_agent_beat_read(g.h, &b)) {
		jset(o, "alive", jbool(false));
		return o;
	}
	jset(o, "alive", jbool(now < b.seen_ms + BGS_AGENT_ALIVE_MS));
	jset(o, "pid", jint(b.pid));
	jset(o, "seen_s_ago", json_object_new_double(now > b.seen_ms ? (now - b.seen_ms) / 1e3 : 0));
	return o;
}

json_object *rollout_json(__u32 svc_id)
{
	struct bgs_rollout r;
	json_object *o, *ag;
	char buf[32], shown[BGS_REASON_MAX + 64];
	__u64 now = bgs_mono_ms();
	bool active, alive;

	if (bgs_rollout_get(g.h, svc_id, &r))
		return NULL;
	o = json_object_new_object();
	ag = agent_json();
	active = bgs_rollout_active(r.state);
	alive = jgetb(ag, "alive");
	jset(o, "id", jint(r.id));
	jset(o, "state", jstr(bgs_rollout_state_name(r.state)));
	/* what an operator needs to read first: a rollout nobody runs is not running */
	if (active && !alive)
		snprintf(shown, sizeof(shown), "paused: agent down");
	else if (r.state == BGS_ROLLOUT_PAUSED || r.state == BGS_ROLLOUT_FAILED ||
		 r.state == BGS_ROLLOUT_ABORTED || r.state == BGS_ROLLOUT_ROLLED_BACK)
		snprintf(shown, sizeof(shown), "%s: %s", bgs_rollout_state_name(r.state), r.reason);
	else
		snprintf(shown, sizeof(shown), "%s", bgs_rollout_state_name(r.state));
	jset(o, "shown", jstr(shown));
	jset(o, "strategy", r.strategy[0] ? jstr(r.strategy) : NULL);
	jset(o, "step", jint(r.state == BGS_ROLLOUT_REQUESTED ? 0 : r.step + 1));
	jset(o, "steps", jint(r.nsteps));
	jset(o, "from", jstr(color_name((int)r.from_color)));
	jset(o, "to", jstr(color_name(!(int)r.from_color)));
	jset(o, "canary_bps", jint(r.canary_bps));
	jset(o, "canary", jstr(pct_str(r.canary_bps, buf, sizeof(buf))));
	/* a pause does not run without an agent: it stopped when the agent was last seen */
	if (!alive && jget(ag, "pid"))
		now = bgs_mono_ms() - (__u64)(jgetd(ag, "seen_s_ago") * 1000);
	if (r.state == BGS_ROLLOUT_RUNNING && r.pause_ms)
		jset(o, "pause_left_s",
		     json_object_new_double(now < r.step_ms + r.pause_ms ?
						    (r.step_ms + r.pause_ms - now) / 1e3 : 0));
	jset(o, "next", jstr(r.next));
	if (r.reason[0])
		jset(o, "reason", jstr(r.reason));
	if (r.promotes != r.promotes_seen)
		jset(o, "promote_pending", jbool(true));
	if (r.flip_gen)
		jset(o, "flip_generation", jint(r.flip_gen));
	jset(o, "started", jint((long long)r.started_s));
	jset(o, "agent", ag);
	return o;
}

static __u32 rollout_state_of(const char *name)
{
	for (__u32 st = 0; st < BGS_ROLLOUT_NR; st++)
		if (!strcmp(name, bgs_rollout_state_name(st)))
			return st;
	return BGS_ROLLOUT_NONE;
}

void render_rollout_line(json_object *r)
{
	char buf[32];

	if (!r)
		return;
	printf("  rollout %lld %s", jgeti(r, "id"), jgets(r, "shown"));
	if (jgeti(r, "steps"))
		printf("   step %lld/%lld", jgeti(r, "step"), jgeti(r, "steps"));
	if (jget(r, "strategy"))
		printf(" (%s)", jgets(r, "strategy"));
	printf("   canary %s", jgets(r, "canary"));
	if (jget(r, "pause_left_s"))
		printf("   pause %s left", dur_str(jgetd(r, "pause_left_s"), buf, sizeof(buf)));
	printf("\n");
	/* what is over has no next step */
	if (*jgets(r, "next") && bgs_rollout_active(rollout_state_of(jgets(r, "state"))))
		printf("  next: %s%s\n", jgets(r, "next"),
		       jgetb(r, "promote_pending") ? " (promote requested)" : "");
}

static void render_rollout(json_object *out)
{
	json_object *arr = jget(out, "services");
	size_t n = arr ? json_object_array_length(arr) : 0;

	if (jget(out, "message"))
		printf("%s\n", jgets(out, "message"));
	for (size_t i = 0; i < n; i++) {
		json_object *s = json_object_array_get_idx(arr, i);

		printf("%s  %s -> %s\n", jgets(s, "service"), jgets(jget(s, "rollout"), "from"),
		       jgets(jget(s, "rollout"), "to"));
		render_rollout_line(jget(s, "rollout"));
	}
	if (!n && !jget(out, "message"))
		printf("no rollouts\n");
	if (jget(out, "agent") && !jgetb(jget(out, "agent"), "alive"))
		printf("no agent is running: rollouts do not advance (start bgagent)\n");
}

/* Options and the NAME of a change verb. */
static int parse_change(int argc, char **argv, const struct verb_spec *spec, const char **name,
			const char **reason, bool *force)
{
	int c, err = 0, pos;

	while ((c = opt_next(argc, argv, spec, &help_rollout)) != -1) {
		switch (c) {
		case O_REASON:
			*reason = optarg;
			err = parse_reason(optarg);
			break;
		case O_FORCE:
			*force = true;
			break;
		default:
			return -EINVAL;
		}
		if (err)
			return err;
	}
	pos = opt_done();
	if (argc - pos != 1)
		return usage_fail("bgctl %s needs NAME (see bgctl rollout --help)", spec->verb);
	*name = argv[pos];
	return parse_name(*name);
}

struct ro_arg {
	__u32 svc_id;
	const char *reason;
	struct bgs_rollout r;
	struct bgs_flip after;
	int (*fn)(struct ro_arg *a);
	const char *what;
};

static int ro_start(struct ro_arg *a)
{
	return bgs_rollout_start(g.h, a->svc_id, &a->r);
}

static int ro_promote(struct ro_arg *a)
{
	return bgs_rollout_promote(g.h, a->svc_id, &a->r);
}

static int ro_abort(struct ro_arg *a)
{
	return bgs_rollout_abort(g.h, a->svc_id, a->reason ? a->reason : "aborted with bgctl",
				 &a->r, &a->after);
}

static int apply_ro(void *p, json_object *done)
{
	struct ro_arg *a = p;
	int err = a->fn(a);

	if (err)
		return lib_fail(err, a->what);
	jset(done, "rollout", jint(a->r.id));
	return 0;
}

static int ro_change(int argc, char **argv, const struct verb_spec *spec,
		     int (*fn)(struct ro_arg *a))
{
	struct ro_arg a = { .fn = fn, .what = spec->verb };
	const char *name = NULL, *reason = NULL;
	struct bgs_rollout cur;
	struct bgs_service svc;
	struct bgs_flip before;
	json_object *det, *ag, *ro, *arr;
	char msg[400];
	bool force = false;
	int err;

	err = parse_change(argc, argv, spec, &name, &reason, &force);
	if (!err)
		err = open_state();
	if (!err)
		err = resolve_service(name, &a.svc_id);
	if (err)
		return err;
	a.reason = reason;
	err = bgs_service_get(g.h, a.svc_id, &svc, &before);
	if (err)
		return lib_fail(err, "read service");
	ag = agent_json();
	if (fn == ro_start && !jgetb(ag, "alive") && !force) {
		if (jget(ag, "pid"))
			snprintf(msg, sizeof(msg), "the last one (pid %lld) was seen %.0f s ago",
				 jgeti(ag, "pid"), jgetd(ag, "seen_s_ago"));
		else
			snprintf(msg, sizeof(msg), "none ever ran on %s", bgs_pin_dir(g.h));
		json_object_put(ag);
		return fail(-EBUSY, EXIT_CONFLICT,
			    "%s: no bgagent is running to carry out a rollout (%s); nothing was "
			    "stored (start bgagent, or --force to store it anyway)",
			    name, msg);
	}
	det = json_object_new_object();
	jset(det, "generation_before", jint(bgs_flip_gen(&before)));
	jset(det, "live", jstr(color_name((int)bgs_flip_live(&before))));
	if (bgs_rollout_get(g.h, a.svc_id, &cur) == 0) {
		jset(det, "rollout_before", jint(cur.id));
		jset(det, "state_before", jstr(bgs_rollout_state_name(cur.state)));
		jset(det, "step_before", jint(cur.step + 1));
	}
	if (force)
		jset(det, "force", jbool(true));
	if (reason)
		jset(det, "reason", jstr(reason));
	err = run_change(spec->verb, name, det, apply_ro, &a);
	json_object_put(det);
	if (err) {
		json_object_put(ag);
		return err;
	}
	g.out = json_object_new_object();
	jset(g.out, "service", jstr(name));
	jset(g.out, "changed", jbool(true));
	if (fn == ro_start)
		snprintf(msg, sizeof(msg), "%s: rollout %u requested (%s -> %s)%s", name, a.r.id,
			 color_name((int)a.r.from_color), color_name(!(int)a.r.from_color),
			 jgetb(ag, "alive") ? "; bgagent takes it within a second" :
					      "; no agent is running: it waits for one");
	else if (fn == ro_promote)
		snprintf(msg, sizeof(msg), "%s: rollout %u promoted: the agent skips the remaining "
			 "pauses and goes to the flip", name, a.r.id);
	else
		snprintf(msg, sizeof(msg), "%s: rollout %u aborted: canary %s, %s stays live (generation "
			 "%u)", name, a.r.id, bgs_flip_canary(&a.after) ? "unchanged (flipped)" : "0",
			 color_name((int)bgs_flip_live(&a.after)), bgs_flip_gen(&a.after));
	json_object_put(ag);
	jset(g.out, "message", jstr(msg));
	ro = rollout_json(a.svc_id);
	arr = json_object_new_array();
	if (ro) {
		json_object *s = json_object_new_object();

		jset(s, "service", jstr(name));
		jset(s, "rollout", ro);
		json_object_array_add(arr, s);
	}
	jset(g.out, "services", arr);
	return 0;
}

static int rollout_start(int argc, char **argv)
{
	return ro_change(argc, argv, &start_spec, ro_start);
}

static int rollout_promote(int argc, char **argv)
{
	return ro_change(argc, argv, &promote_spec, ro_promote);
}

static int rollout_abort(int argc, char **argv)
{
	return ro_change(argc, argv, &abort_spec, ro_abort);
}

static int rollout_status(int argc, char **argv)
{
	const char *name = NULL;
	__u32 one, *ids = &one, *all = NULL, max = 1;
	json_object *arr;
	int n = 1, err;

	err = opt_optional_name(argc, argv, "rollout status", &name);
	if (!err)
		err = open_state();
	if (!err && name)
		err = resolve_service(name, &one);
	if (err)
		return err;
	if (!name) {
		n = service_ids(&all, &max);
		if (n < 0)
			return n;
		ids = all;
	}
	g.out = json_object_new_object();
	arr = json_object_new_array();
	for (int i = 0; i < n && (__u32)i < max; i++) {
		struct bgs_service svc;
		json_object *ro = rollout_json(ids[i]), *s;

		if (!ro || bgs_service_get(g.h, ids[i], &svc, NULL)) {
			json_object_put(ro);
			continue;
		}
		s = json_object_new_object();
		jset(s, "service", jstr(svc.name));
		jset(s, "rollout", ro);
		json_object_array_add(arr, s);
	}
	free(all);
	if (name && !json_object_array_length(arr)) {
		char msg[128];

		snprintf(msg, sizeof(msg), "%s: no rollout", name);
		jset(g.out, "message", jstr(msg));
	}
	jset(g.out, "services", arr);
	jset(g.out, "agent", agent_json());
	return 0;
}

static const struct cmd rollout_cmds[] = {
	{ "start", rollout_start, render_rollout, &help_rollout },
	{ "status", rollout_status, render_rollout, &help_rollout },
	{ "promote", rollout_promote, render_rollout, &help_rollout },
	{ "abort", rollout_abort, render_rollout, &help_rollout },
	{ NULL },
};

int do_rollout(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		print_help(&help_rollout, stdout);
		exit(EXIT_OK);
	}
	return dispatch(rollout_cmds, "rollout", argc - 1, argv + 1);
}
