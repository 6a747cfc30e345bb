// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* bgctl flip, rollback, canary and drain: the routing changes, each one atomic publish. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bgctl.h"

#define DEFAULT_DRAIN_MS (5ULL * 60 * 1000)

enum { O_TO = 1, O_GEN, O_DRAIN, O_REASON, O_FORCE, O_WAIT, O_STICKY, O_COLOR, O_KILL };

#define OPT_GEN { "expect-generation", O_GEN, 0, "N", "refuse (exit 4) unless at generation N" }
#define OPT_DRAIN { "drain-timeout", O_DRAIN, 0, "DUR", "the old color's drain (default 5m)" }
#define OPT_REASON { "reason", O_REASON, 0, "TEXT", "recorded in the history" }
#define OPT_FORCE { "force", O_FORCE, 0, NULL, "even if the target pool has no usable backend" }
#define OPT_WAIT { "wait", O_WAIT, 0, NULL, "return when the old color is drained" }

static const struct verb_opt flip_opts[] = {
	{ "to", O_TO, 0, "blue|green", "idempotent: if it is already live, change nothing" },
	OPT_GEN, OPT_DRAIN, OPT_REASON, OPT_FORCE, OPT_WAIT,
	{ NULL },
};

static const struct verb_opt rollback_opts[] = {
	OPT_GEN, OPT_DRAIN, OPT_REASON, OPT_FORCE, OPT_WAIT,
	{ NULL },
};

static const struct verb_spec flip_spec = { "flip", "NAME", flip_opts };
static const struct verb_spec rollback_spec = { "rollback", "NAME", rollback_opts };

const struct verb_help help_flip = {
	(const struct verb_spec *const[]){ &flip_spec, NULL },
	"Make the idle color live in one atomic publish. New flows go to the new live color;\n"
	"established flows keep their backend until they end or the drain deadline passes\n"
	"(DUR like 500ms, 30s, 5m, 1h, 1m30s; 0 ends the drain at once; none: no deadline;\n"
	"default 5m). The canary is reset to 0. --wait shows the old color's drain (flows left,\n"
	"time left) and returns when it is drained or its deadline passed.\n",
};

const struct verb_help help_rollback = {
	(const struct verb_spec *const[]){ &rollback_spec, NULL },
	"Go back to the previous live color at once (a flip to the color being drained).\n",
};

static const struct verb_opt canary_opts[] = {
	{ "sticky", O_STICKY, 0, NULL, "draw by client address: one client sees one version" },
	OPT_GEN, OPT_REASON,
	{ NULL },
};

static const struct verb_spec canary_spec = { "canary", "NAME PERCENT", canary_opts };

const struct verb_help help_canary = {
	(const struct verb_spec *const[]){ &canary_spec, NULL },
	"Send PERCENT (0-100, at most two decimals) of new flows to the idle color. 0 ends the\n"
	"canary. A flip resets it to 0.\n",
};

static const struct verb_opt drain_opts[] = {
	{ "color", O_COLOR, 0, "blue|green", "the color to show (default: the draining one)" },
	{ "kill", O_KILL, 0, NULL, "end the draining color's remaining flows now" },
	OPT_REASON,
	{ NULL },
};

static const struct verb_spec drain_spec = { "drain", "NAME", drain_opts };

const struct verb_help help_drain = {
	(const struct verb_spec *const[]){ &drain_spec, NULL },
	"Show live flows per color and backend and the drain's deadline. --kill ends the\n"
	"draining color's remaining flows now: the drain ends and their entries are removed, so\n"
	"their next packets are routed as new flows.\n",
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Live flows left on color, the one not live (the library's drain status; 0 when color is
 * live again: a later flip took over). */
static int count_flows(__u32 svc_id, int color, __u64 *n)
{
	static struct bgs_drain_status st; /* large: not on the stack */
	int err = bgs_drain_status(g.h, svc_id, &st);

	if (err)
		return lib_fail(err, "read the drain");
	*n = st.color == (__u32)color ? st.flows : 0;
	return 0;
}

/* --wait: follow the old color's drain until no flow is left or the deadline passed. */
static int wait_drain(const char *name, __u32 svc_id, int old_color, json_object *out)
{
	bool tty = isatty(STDERR_FILENO), show = true;
	double start = mono_now(), last_print = 0;
	struct sigaction sa = { .sa_handler = on_sigint };
	const char *why = "drained";
	__u64 flows = 0, now;
	__u32 hz, gen0 = 0;
	int err = 0;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (;;) {
		struct bgs_service svc;
		struct bgs_flip flip;
		double left = -1;
		char lbuf[32];

		err = bgs_service_get(g.h, svc_id, &svc, &flip);
		if (err) {
			err = lib_fail(err, "read service");
			break;
		}
		if (!gen0)
			gen0 = bgs_flip_drain_gen(&flip);
		err = dp_clock(&now, &hz);
		if (err)
			break;
		if (bgs_flip_drain_deadline(&flip) != BGS_NO_DEADLINE)
			left = bgs_flip_drain_deadline(&flip) > now ?
				       (double)(bgs_flip_drain_deadline(&flip) - now) / hz : 0;
		/* Past the deadline the program routes what is left as new: report it. */
		if (left == 0) {
			why = "deadline";
			break;
		}
		err = count_flows(svc_id, old_color, &flows);
		if (err)
			break;
		if (show && (tty || mono_now() - last_print >= 1.0)) {
			if (left >= 0)
				dur_str(left, lbuf, sizeof(lbuf));
			else
				snprintf(lbuf, sizeof(lbuf), "no deadline");
			fprintf(stderr, "%s%s: draining %s: %llu flow%s left, %s left%s",
				tty ? "\r" : "", name, color_name(old_color),
				(unsigned long long)flows, flows == 1 ? "" : "s", lbuf,
				tty ? "\033[K" : "\n");
			last_print = mono_now();
		}
		if (flows == 0)
			break;
		if (!bgs_flip_draining(&flip) || bgs_flip_drain_gen(&flip) != gen0) {
			why = "superseded";
			break;
		}
		if (interrupted) {
			why = "interrupted";
			break;
		}
		usleep(250 * 1000);
	}
	if (show && tty)
		fprintf(stderr, "\r\033[K");
	if (show && !err) {
		if (!strcmp(why, "deadline"))
			fprintf(stderr,
				"%s: %s drain deadline passed with %llu flow%s left: they are "
				"routed as new flows now\n",
				name, color_name(old_color), (unsigned long long)flows,
				flows == 1 ? "" : "s");
		else if (!strcmp(why, "drained"))
			fprintf(stderr, "%s: %s drained in %.1fs\n", name, color_name(old_color),
				mono_now() - start);
		else
			fprintf(stderr, "%s: stopped waiting (%s); the drain goes on\n", name, why);
	}
	jset(out, "wait", jstr(why));
	jset(out, "flows_left", jint((long long)flows));
	jset(out, "waited_s", json_object_new_double(mono_now() - start));
	return err;
}

/*
 * A change refused because the service moved on since bgctl read it (-ESTALE): name what
 * changed, from what bgctl showed (before) to what the library found under its lock (now).
 * user_gen: the generation came from --expect-generation, not from bgctl's own read.
 */
static int changed_since(const char *name, const struct bgs_flip *before,
			 const struct bgs_flip *now, bool user_gen)
{
	char what[256] = "", b[16], n[16];
	size_t len = 0;

	if (bgs_flip_live(before) != bgs_flip_live(now))
		len += snprintf(what + len, sizeof(what) - len, ", live %s -> %s",
				color_name((int)bgs_flip_live(before)),
				color_name((int)bgs_flip_live(now)));
	if (bgs_flip_draining(before) != bgs_flip_draining(now))
		len += snprintf(what + len, sizeof(what) - len, ", %s",
				bgs_flip_draining(now) ? "a drain started" : "the drain ended");
	if (bgs_flip_canary(before) != bgs_flip_canary(now) ||
	    bgs_flip_sticky(before) != bgs_flip_sticky(now))
		snprintf(what + len, sizeof(what) - len, ", canary %s%s -> %s%s",
			 pct_str(bgs_flip_canary(before), b, sizeof(b)),
			 bgs_flip_sticky(before) ? " sticky" : "",
			 pct_str(bgs_flip_canary(now), n, sizeof(n)),
			 bgs_flip_sticky(now) ? " sticky" : "");
	return fail(-ESTALE, EXIT_CONFLICT,
		    "%s changed since %s: generation %u -> %u%s; nothing was done (check "
		    "bgctl status %s, then retry)",
		    name, user_gen ? "you looked (--expect-generation)" : "bgctl read it",
		    bgs_flip_gen(before), bgs_flip_gen(now), what, name);
}

struct flip_arg {
	const char *name;
	int to;
	bool user_gen; /* expect_gen came from --expect-generation */
	__u32 svc_id;
	struct bgs_flip_opts opts;
	struct bgs_flip before, after;
	int changed;
};

static int apply_flip(void *p, json_object *done)
{
	struct flip_arg *a = p;
	int ret = bgs_flip(g.h, a->svc_id, &a->opts, &a->after);

	if (ret == -ESTALE)
		return changed_since(a->name, &a->before, &a->after, a->user_gen);
	if (ret == -EHOSTUNREACH)
		return fail(ret, EXIT_CONFLICT,
			    "%s: the %s pool has no usable backend (none up, healthy and with a "
			    "resolved next hop): add or enable one, check 'bgctl backend resolve', "
			    "or use --force",
			    a->name, color_name(a->to));
	if (ret < 0)
		return lib_fail(ret, "flip");
	a->changed = ret;
	jset(done, "changed", jbool(ret > 0));
	jset(done, "to", jstr(color_name((int)bgs_flip_live(&a->after))));
	jset(done, "generation", jint(bgs_flip_gen(&a->after)));
	return 0;
}

static int flip_common(int argc, char **argv, bool rollback)
{
	const char *verb = rollback ? "rollback" : "flip", *name, *reason = NULL;
	struct flip_arg a = {};
	unsigned long long drain_ms = DEFAULT_DRAIN_MS;
	struct bgs_service svc;
	struct bgs_flip before;
	bool wait = false;
	int c, err, from, to;
	json_object *det;
	char msg[512], dbuf[32];
	__u32 gen;

	a.opts.to_color = BGS_ANY_COLOR;
	a.opts.expect_gen = BGS_ANY_GEN;
	while ((c = opt_next(argc, argv, rollback ? &rollback_spec : &flip_spec,
			     rollback ? &help_rollback : &help_flip)) != -1) {
		switch (c) {
		case O_TO:
			err = parse_color(optarg, &a.opts.to_color);
			break;
		case O_GEN:
			err = parse_u32(optarg, "--expect-generation", 0xffffffffULL, &gen);
			a.opts.expect_gen = gen;
			a.user_gen = true;
			break;
		case O_DRAIN:
			err = parse_duration(optarg, "--drain-timeout", &drain_ms, true);
			break;
		case O_REASON:
			reason = optarg;
			err = parse_reason(optarg);
			break;
		case O_FORCE:
			a.opts.force = true;
			err = 0;
			break;
		case O_WAIT:
			wait = true;
			err = 0;
			break;
		default:
			return -EINVAL;
		}
		if (err)
			return err;
	}
	if (argc - opt_done() != 1)
		return usage_fail("bgctl %s needs exactly one service NAME (see bgctl %s --help)",
				  verb, verb);
	name = argv[opt_done()];
	err = parse_name(name);
	if (err)
		return err;
	a.opts.drain_ms = drain_ms;

	err = open_state();
	if (!err)
		err = resolve_service(name, &a.svc_id);
	if (err)
		return err;
	err = bgs_service_get(g.h, a.svc_id, &svc, &a.before);
	if (err)
		return lib_fail(err, "read service");
	before = a.before;
	gen = bgs_flip_gen(&before);
	from = (int)bgs_flip_live(&before);
	if (a.opts.expect_gen != BGS_ANY_GEN && (__u32)a.opts.expect_gen != gen)
		return fail(-ESTALE, EXIT_CONFLICT,
			    "%s is at generation %u, not %lld: it changed since you looked; "
			    "nothing was done (check bgctl status %s)",
			    name, gen, a.opts.expect_gen, name);
	/* What bgctl shows (from, to) is what it changes: the flip is a compare-and-swap on
	 * the routing read (live color, drain, canary), unless --to made it declarative
	 * ("COLOR live, whatever happened meanwhile"). Not on the generation: the agent's
	 * health publishes move it without changing what the flip shows. --expect-generation
	 * asks for the strict compare. */
	if ((a.opts.to_color == BGS_ANY_COLOR || rollback) && !a.user_gen)
		a.opts.expect = &a.before;
	if (rollback) {
		if (!bgs_flip_draining(&before) && bgs_flip_drain_gen(&before) == 0)
			return fail(-EALREADY, EXIT_CONFLICT,
				    "%s has never been flipped: there is no previous color to roll "
				    "back to",
				    name);
		a.opts.to_color = !from;
	}
	to = a.opts.to_color == BGS_ANY_COLOR ? !from : a.opts.to_color;
	a.name = name;
	a.to = to;

	g.out = json_object_new_object();
	jset(g.out, "service", jstr(name));
	jset(g.out, "from", jstr(color_name(from)));
	jset(g.out, "to", jstr(color_name(to)));
	if (to == from) {
		jset(g.out, "changed", jbool(false));
		jset(g.out, "generation", jint(gen));
		snprintf(msg, sizeof(msg),
			 "%s: %s is already live (generation %u); nothing changed", name,
			 color_name(to), gen);
		jset(g.out, "message", jstr(msg));
		return 0;
	}
	/* The library refuses an unusable target pool under its lock (-EHOSTUNREACH): no
	 * second read of every backend here, a flip stays a few syscalls. */
	det = json_object_new_object();
	jset(det, "from", jstr(color_name(from)));
	jset(det, "to", jstr(color_name(to)));
	jset(det, "generation_before", jint(gen));
	if (drain_ms == BGS_NO_DEADLINE)
		jset(det, "drain_timeout_ms", NULL);
	else
		jset(det, "drain_timeout_ms", jint((long long)drain_ms));
	if (reason)
		jset(det, "reason", jstr(reason));
	if (a.opts.force)
		jset(det, "force", jbool(true));
	/* An emergency rollback or a forced flip must not wait for /var to have space. */
	g.emergency = rollback || a.opts.force;
	err = run_change(verb, name, det, apply_flip, &a);
	json_object_put(det);
	if (err)
		return err;

	jset(g.out, "changed", jbool(a.changed > 0));
	jset(g.out, "to", jstr(color_name((int)bgs_flip_live(&a.after))));
	jset(g.out, "generation", jint(bgs_flip_gen(&a.after)));
	jset(g.out, "drain_timeout_ms",
	     drain_ms == BGS_NO_DEADLINE ? NULL : jint((long long)drain_ms));
	if (!a.changed) {
		snprintf(msg, sizeof(msg),
			 "%s: %s is already live (generation %u); nothing changed", name,
			 color_name((int)bgs_flip_live(&a.after)), bgs_flip_gen(&a.after));
	} else {
		if (drain_ms == BGS_NO_DEADLINE)
			snprintf(dbuf, sizeof(dbuf), "until its flows end");
		else if (drain_ms == 0)
			snprintf(dbuf, sizeof(dbuf), "no drain");
		else
			dur_str((double)drain_ms / 1000, dbuf, sizeof(dbuf));
		snprintf(msg, sizeof(msg), "%s: %s %s -> %s, generation %u; %s%s%s", name,
			 rollback ? "rolled back" : "flipped", color_name(from), color_name(to),
			 bgs_flip_gen(&a.after), drain_ms ? color_name(from) : "",
			 drain_ms ? " drains " : "", dbuf);
	}
	jset(g.out, "message", jstr(msg));
	if (wait && a.changed) {
		if (!g.json)
			printf("%s\n", msg);
		err = wait_drain(name, a.svc_id, from, g.out);
		if (!g.json)
			jset(g.out, "message", jstr(""));
	}
	return err;
}

int do_flip(int argc, char **argv)
{
	return flip_common(argc, argv, false);
}

int do_rollback(int argc, char **argv)
{
	return flip_common(argc, argv, true);
}

struct canary_arg {
	const char *name;
	__u32 svc_id;
	__u32 bps;
	bool sticky;
	bool user_gen; /* expect_gen came from --expect-generation */
	long long expect_gen;
	struct bgs_flip before, after;
};

static int apply_canary(void *p, json_object *done)
{
	struct canary_arg *a = p;
	int err = a->user_gen ? bgs_canary_set(g.h, a->svc_id, a->bps, a->sticky, a->expect_gen,
					       &a->after) :
				bgs_canary_set_expect(g.h, a->svc_id, a->bps, a->sticky, &a->before,
						      &a->after);

	if (err == -ESTALE)
		return changed_since(a->name, &a->before, &a->after, a->user_gen);
	if (err)
		return lib_fail(err, "set canary");
	jset(done, "generation", jint(bgs_flip_gen(&a->after)));
	return 0;
}

int do_canary(int argc, char **argv)
{
	struct canary_arg a = { .expect_gen = BGS_ANY_GEN };
	const char *name, *reason = NULL;
	struct bgs_service svc;
	struct bgs_flip before;
	char msg[256], pbuf[16], obuf[16];
	json_object *det;
	int c, err, pos;
	__u32 gen;

	while ((c = opt_next(argc, argv, &canary_spec, &help_canary)) != -1) {
		switch (c) {
		case O_STICKY:
			a.sticky = true;
			err = 0;
			break;
		case O_GEN:
			err = parse_u32(optarg, "--expect-generation", 0xffffffffULL, &gen);
			a.expect_gen = gen;
			a.user_gen = true;
			break;
		case O_REASON:
			reason = optarg;
			err = parse_reason(optarg);
			break;
		default:
			return -EINVAL;
		}
		if (err)
			return err;
	}
	pos = opt_done();
	if (argc - pos != 2)
		return usage_fail("bgctl canary needs NAME PERCENT (see bgctl canary --help)");
	name = argv[pos];
	err = parse_name(name);
	if (!err)
		err = parse_percent(argv[pos + 1], &a.bps);
	if (err)
		return err;
	err = open_state();
	if (!err)
		err = resolve_service(name, &a.svc_id);
	if (err)
		return err;
	err = bgs_service_get(g.h, a.svc_id, &svc, &a.before);
	if (err)
		return lib_fail(err, "read service");
	before = a.before;
	gen = bgs_flip_gen(&before);
	if (a.expect_gen != BGS_ANY_GEN && (__u32)a.expect_gen != gen)
		return fail(-ESTALE, EXIT_CONFLICT,
			    "%s is at generation %u, not %lld: it changed since you looked; "
			    "nothing was done",
			    name, gen, a.expect_gen);
	/* A compare-and-swap on the routing read (bgs_canary_set_expect): the idle color
	 * named below stays true; --expect-generation compares the generation itself. */
	a.name = name;
	pct_str(a.bps, pbuf, sizeof(pbuf));
	pct_str(bgs_flip_canary(&before), obuf, sizeof(obuf));
	g.out = json_object_new_object();
	jset(g.out, "service", jstr(name));
	jset(g.out, "canary_bps", jint(a.bps));
	jset(g.out, "canary", jstr(pbuf));
	jset(g.out, "sticky", jbool(a.sticky));
	jset(g.out, "idle", jstr(color_name(!bgs_flip_live(&before))));
	if (bgs_flip_canary(&before) == a.bps && bgs_flip_sticky(&before) == a.sticky) {
		jset(g.out, "changed", jbool(false));
		jset(g.out, "generation", jint(gen));
		snprintf(msg, sizeof(msg),
			 "%s: canary is already %s%s (generation %u); nothing "
			 "changed",
			 name, pbuf, a.sticky ? " sticky" : "", gen);
		jset(g.out, "message", jstr(msg));
		return 0;
	}
	det = json_object_new_object();
	jset(det, "from", jstr(obuf));
	jset(det, "to", jstr(pbuf));
	jset(det, "sticky", jbool(a.sticky));
	jset(det, "generation_before", jint(gen));
	if (reason)
		jset(det, "reason", jstr(reason));
	err = run_change("canary", name, det, apply_canary, &a);
	json_object_put(det);
	if (err)
		return err;
	jset(g.out, "changed", jbool(true));
	jset(g.out, "generation", jint(bgs_flip_gen(&a.after)));
	if (a.bps && !bgs_pool_usable(g.h, a.svc_id, !bgs_flip_live(&a.after)))
		jset(g.out, "warning",
		     jstr("the idle pool has no usable backend: canary flows "
			  "stay on the live color"));
	snprintf(msg, sizeof(msg), "%s: %s of new flows go to %s%s, generation %u%s", name, pbuf,
		 color_name(!bgs_flip_live(&a.after)),
		 a.sticky ? " (sticky per client)" : " (per flow)", bgs_flip_gen(&a.after),
		 jget(g.out, "warning") ? "; warning: the idle pool has no usable backend" : "");
	jset(g.out, "message", jstr(msg));
	return 0;
}

struct drain_arg {
	__u32 svc_id;
	int color;
	bool end_drain;
	int killed;
};

static int apply_drain_kill(void *p, json_object *done)
{
	struct drain_arg *a = p;
	struct bgs_flip after;
	int err;

	err = bgs_drain_kill(g.h, a->svc_id, a->color, &after);
	if (err < 0)
		return lib_fail(err, "end the drain and remove its flows");
	jset(done, "generation", jint(bgs_flip_gen(&after)));
	a->killed = err;
	jset(done, "flows_killed", jint(err));
	return 0;
}

void render_drain(json_object *out)
{
	json_object *pools = jget(out, "pools");
	json_object *d = jget(out, "drain");

	if (*jgets(out, "message"))
		printf("%s\n", jgets(out, "message"));
	if (!pools)
		return;
	printf("%s: live %s", jgets(out, "name"), jgets(out, "live"));
	if (d) {
		char buf[32];

		if (jget(d, "time_left_s"))
			printf(", draining %s (%s left)", jgets(d, "color"),
			       jgetb(d, "ended")
				       ? "deadline passed, 0s"
				       : dur_str(jgetd(d, "time_left_s"), buf, sizeof(buf)));
		else
			printf(", draining %s (no deadline)", jgets(d, "color"));
	}
	printf("\n%-6s %-42s %-6s %8s\n", "COLOR", "BACKEND", "ADMIN", "FLOWS");
	for (int c = 0; c < 2; c++) {
		json_object *p = jget(pools, color_name(c)), *bes = jget(p, "backends");

		if (!p)
			continue;
		for (size_t i = 0; bes && i < json_object_array_length(bes); i++) {
			json_object *b = json_object_array_get_idx(bes, i);

			printf("%-6s %-42s %-6s %8lld\n", color_name(c), jgets(b, "address"),
			       jgets(b, "admin"), jgeti(b, "flows"));
		}
		printf("%-6s %-42s %-6s %8lld\n", color_name(c), "(total)", "", jgeti(p, "flows"));
	}
}

int do_drain(int argc, char **argv)
{
	struct drain_arg a = { .color = BGS_ANY_COLOR };
	const char *name, *reason = NULL;
	struct bgs_service svc;
	struct bgs_flip flip;
	struct bgs_flow_counts t;
	bool kill = false;
	json_object *det, *s;
	char msg[256];
	int c, err, live;

	while ((c = opt_next(argc, argv, &drain_spec, &help_drain)) != -1) {
		switch (c) {
		case O_COLOR:
			err = parse_color(optarg, &a.color);
			break;
		case O_KILL:
			kill = true;
			err = 0;
			break;
		case O_REASON:
			reason = optarg;
			err = parse_reason(optarg);
			break;
		default:
			return -EINVAL;
		}
		if (err)
			return err;
	}
	if (argc - opt_done() != 1)
		return usage_fail("bgctl drain needs exactly one service NAME");
	name = argv[opt_done()];
	err = parse_name(name);
	if (err)
		return err;
	err = open_state();
	if (!err)
		err = resolve_service(name, &a.svc_id);
	if (err)
		return err;
	err = bgs_service_get(g.h, a.svc_id, &svc, &flip);
	if (err)
		return lib_fail(err, "read service");
	live = (int)bgs_flip_live(&flip);
	msg[0] = '\0';
	if (kill) {
		if (a.color == live)
			return fail(-EINVAL, EXIT_CONFLICT,
				    "%s is the live color of %s: --kill only ends the flows of a "
				    "color that is not live",
				    color_name(live), name);
		a.color = !live;
		a.end_drain = bgs_flip_draining(&flip);
		det = json_object_new_object();
		jset(det, "color", jstr(color_name(a.color)));
		jset(det, "generation_before", jint(bgs_flip_gen(&flip)));
		if (reason)
			jset(det, "reason", jstr(reason));
		err = run_change("drain kill", name, det, apply_drain_kill, &a);
		json_object_put(det);
		if (err)
			return err;
		snprintf(msg, sizeof(msg), "%s: ended %d %s flow%s%s", name, a.killed,
			 color_name(a.color), a.killed == 1 ? "" : "s",
			 a.end_drain ? " and the drain" : "");
	}
	err = flow_tally(&t);
	if (err) {
		flow_tally_free(&t);
		return err;
	}
	s = service_json(a.svc_id, false, &t);
	flow_tally_free(&t);
	g.out = s ? s : json_object_new_object();
	if (kill) {
		jset(g.out, "killed", jint(a.killed));
		jset(g.out, "message", jstr(msg));
	}
	if (a.color != BGS_ANY_COLOR && !kill) {
		json_object *pools = jget(g.out, "pools");

		json_object_object_del(pools, color_name(!a.color));
	}
	return 0;
}
