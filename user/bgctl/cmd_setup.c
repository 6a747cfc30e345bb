// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* bgctl init, attach, detach, upgrade, destroy. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <string.h>
#include <net/if.h>
#include <unistd.h>

#include "bgctl.h"

enum { O_SVC = 1, O_BE, O_MAGLEV, O_CT, O_RATE, O_TIMEOUT };

static const struct verb_opt init_opts[] = {
	{ "max-services", O_SVC, 0, "N", "services (default 64)" },
	{ "max-backends", O_BE, 0, "N", "backends, all services together (default 4096)" },
	{ "maglev-size", O_MAGLEV, 0, "PRIME", "Maglev table size per pool (default 16381)" },
	{ "ct-entries", O_CT, 0, "N", "conntrack entries (default 1048576)" },
	{ "new-flow-rate", O_RATE, 0, "N", "new flows/s per CPU (default 500000)" },
	{ "timeout", O_TIMEOUT, 0, "NAME=DUR", "a flow timeout (repeatable, names above)" },
	{ NULL },
};

static const struct verb_spec init_spec = { "init", "", init_opts };

const struct verb_help help_init = {
	(const struct verb_spec *const[]){ &init_spec, NULL },
	"Create the pinned state under the pin directory if absent, or check and adopt it if\n"
	"present. With no bpffs there, mounts one (mode 0700, as systemd does) at /sys/fs/bpf for\n"
	"a pin directory under it, else on the pin directory itself, and says so. Idempotent.\n"
	"Sizes are fixed at creation; given again on existing state they must match.\n"
	"So are the data plane's flow timeouts, --timeout NAME=DURATION once per NAME, in whole\n"
	"seconds (at most 7d): tcp_syn (default 60s: a TCP flow that saw a SYN, not yet\n"
	"established), tcp_est (900s), tcp_close (30s: after FIN or RST), udp (300s), time_wait\n"
	"(10s: how long a closed flow stays before a SYN re-picks its backend), health_grace\n"
	"(10s: how long flows stay on a backend its health checks marked down). Only time_wait\n"
	"and health_grace may be 0.\n",
};

static const struct verb_opt attach_opts[] = {
	{ "xdp-mode", 'm', 0, "native|generic", "native (default) or the slower generic" },
	{ NULL },
};

static const struct verb_spec attach_spec = { "attach", "IFACE", attach_opts };

const struct verb_help help_attach = {
	(const struct verb_spec *const[]){ &attach_spec, NULL },
	"Put the switch on an interface (through libxdp; shares it with other XDP programs).\n"
	"Native mode is the default; generic is an explicit, slower fallback.\n",
};

static const struct verb_spec detach_spec = { "detach", "IFACE", NULL };

const struct verb_help help_detach = {
	(const struct verb_spec *const[]){ &detach_spec, NULL },
	"Take the switch off an interface. Pinned state and flows stay.\n",
};

static const struct verb_opt upgrade_opts[] = {
	{ "object", 'o', 0, "FILE", "a bgswitch BPF object instead of the built-in one" },
	{ NULL },
};

static const struct verb_spec upgrade_spec = { "upgrade", "", upgrade_opts };

const struct verb_help help_upgrade = {
	(const struct verb_spec *const[]){ &upgrade_spec, NULL },
	"Swap the running switch for the one built into this bgctl (or FILE, a bgswitch BPF\n"
	"object) in one atomic update of the program array: every map, flow and counter stays.\n"
	"The new program is verified before the lock is taken; pins of another layout version\n"
	"are refused (exit 4) with what to do.\n",
};

static const struct verb_opt destroy_opts[] = {
	{ "force", 'f', 0, NULL, "even while flows are live" },
	{ NULL },
};

static const struct verb_spec destroy_spec = { "destroy", "", destroy_opts };

const struct verb_help help_destroy = {
	(const struct verb_spec *const[]){ &destroy_spec, NULL },
	"Detach the switch from every interface it was attached to and remove its pins: the\n"
	"state is gone. Refused (exit 4) while flows are live, unless --force.\n",
};

/*
 * After init or attach: a switch of another build may run (an older release's, left by an
 * install that did not upgrade). Say so once, with what to do, as "warning" in the JSON.
 */
static void warn_other_build(void)
{
	struct bgs_switch_info si;
	char msg[256];

	if (!g.h || bgs_switch_info(g.h, &si))
		return;
	if (si.build_known && si.build_id == bgs_build_id())
		return;
	if (si.build_known)
		snprintf(msg, sizeof(msg),
			 "the running switch is build %016llx, not this bgctl's %016llx: run "
			 "'bgctl upgrade' to swap in this build",
			 (unsigned long long)si.build_id, (unsigned long long)bgs_build_id());
	else
		snprintf(msg, sizeof(msg),
			 "the running switch's build is unknown (installed by an older bgctl or "
			 "another tool), not this bgctl's %016llx: run 'bgctl upgrade' to swap in "
			 "this build",
			 (unsigned long long)bgs_build_id());
	jset(g.out, "warning", jstr(msg));
	if (!g.json)
		fprintf(stderr, "bgctl: warning: %s\n", msg);
}

static int check_iface(const char *name)
{
	if (!*name || strlen(name) >= IF_NAMESIZE)
		return usage_fail("bad interface name '%s': 1 to %d characters", name,
				  IF_NAMESIZE - 1);
	if (!if_nametoindex(name))
		return fail(-ENODEV, EXIT_NOTFOUND,
			    "no interface named '%s' in this network namespace", name);
	return 0;
}

struct init_arg {
	struct bgs_sizes sizes;
};

static int apply_init(void *p, json_object *done)
{
	struct init_arg *a = p;
	int err;

	(void)done;
	err = bgs_init(g.pin_dir, &a->sizes, &g.h);
	if (!err)
		return 0;
	lib_fail(err, "init");
	if (err == -EINVAL) /* sizes were checked before: the kernel refused the load */
		g.exit_code = EXIT_KERNEL;
	return err;
}

/* The library's own size check, before anything is created, worded for the options:
 * its message starts with the field name ("maglev_size ..."), the option is --maglev-size. */
static int check_sizes(const struct bgs_sizes *s)
{
	char msg[512], *c;

	if (!bgs_sizes_check(s, NULL))
		return 0;
	snprintf(msg, sizeof(msg), "%s", bgs_errmsg());
	for (c = msg; *c; c++)
		if (*c == '_')
			*c = '-';
	return usage_fail("bad --%s", msg);
}

/* --timeout NAME=DURATION: one flow timeout into t; each NAME once (given: a bit per NAME). */
static int parse_timeout_opt(const char *arg, struct bgs_flow_timeouts *t, unsigned int *given)
{
	int i = bgs_parse_timeout_arg(arg, "--timeout", t);

	if (i < 0)
		return usage_fail("%s", bgs_errmsg());
	if (*given & (1u << i))
		return usage_fail("bad --timeout '%s': %s is given twice", arg, bgs_timeout_name(i));
	*given |= 1u << i;
	return 0;
}

int do_init(int argc, char **argv)
{
	struct init_arg a = {};
	unsigned int timeouts_given = 0;
	struct bgs_meta meta;
	const char *mounted;
	json_object *det, *tj;
	bool existed;
	int c, err;

	while ((c = opt_next(argc, argv, &init_spec, &help_init)) != -1) {
		switch (c) {
		case O_SVC:
			err = parse_u32(optarg, "--max-services", BGS_LIMIT_MAX_SERVICES,
					&a.sizes.max_services);
			if (!err && !a.sizes.max_services)
				err = usage_fail("bad --max-services '0': expected 1 to %u",
						 BGS_LIMIT_MAX_SERVICES);
			break;
		case O_BE:
			err = parse_u32(optarg, "--max-backends", BGS_LIMIT_MAX_BACKENDS,
					&a.sizes.max_backends);
			break;
		case O_MAGLEV:
			err = parse_u32(optarg, "--maglev-size", BGS_LIMIT_MAGLEV_SIZE,
					&a.sizes.maglev_size);
			break;
		case O_CT:
			err = parse_u32(optarg, "--ct-entries", BGS_LIMIT_CT_ENTRIES,
					&a.sizes.ct_entries);
			break;
		case O_RATE:
			err = parse_u32(optarg, "--new-flow-rate", BGS_LIMIT_NEW_FLOW_RATE,
					&a.sizes.new_flow_rate);
			break;
		case O_TIMEOUT:
			err = parse_timeout_opt(optarg, &a.sizes.timeouts, &timeouts_given);
			break;
		default:
			return -EINVAL;
		}
		if (err)
			return err;
	}
	if (opt_done() != argc)
		return usage_fail("bgctl init takes no arguments, got '%s'", argv[opt_done()]);
	err = check_sizes(&a.sizes);
	if (err)
		return err;

	existed = bgs_open(g.pin_dir, &g.h) == 0;
	if (existed) {
		bgs_close(g.h);
		g.h = NULL;
	}
	det = json_object_new_object();
	jset(det, "existed", jbool(existed));
	/* Adopting existing state changes nothing: only a creation is recorded. */
	if (existed)
		err = apply_init(&a, NULL);
	else
		err = run_change("init", NULL, det, apply_init, &a);
	json_object_put(det);
	if (err == -EPERM || err == -EACCES)
		g.exit_code = EXIT_KERNEL;
	if (err)
		return err;
	bgs_get_meta(g.h, &meta);
	g.out = json_object_new_object();
	jset(g.out, "pin_dir", jstr(g.pin_dir));
	jset(g.out, "created", jbool(!existed));
	jset(g.out, "layout_version", jint(meta.layout_version));
	jset(g.out, "max_services", jint(meta.max_services));
	jset(g.out, "max_backends", jint(meta.max_backends));
	jset(g.out, "maglev_size", jint(meta.maglev_size));
	jset(g.out, "ct_entries", jint(meta.ct_entries));
	jset(g.out, "new_flow_rate", jint(meta.new_flow_rate));
	tj = timeouts_json(&meta.timeouts);
	jset(g.out, "timeouts", tj);
	mounted = bgs_mounted(g.h);
	jset(g.out, "mounted_bpffs", mounted ? jstr(mounted) : NULL);
	{
		char line[PATH_MAX + 64] = "", msg[PATH_MAX + 832], tl[256];

		if (mounted)
			snprintf(line, sizeof(line), "mounted a bpffs at %s (mode 0700)\n", mounted);
		snprintf(msg, sizeof(msg),
			 "%s%s %s (layout %u: %u services, %u backends, Maglev %u, %u flows)\n"
			 "flow timeouts: %s", line,
			 existed ? "adopted existing state in" : "initialized", g.pin_dir,
			 meta.layout_version, meta.max_services, meta.max_backends,
			 meta.maglev_size, meta.ct_entries, timeouts_str(tj, tl, sizeof(tl)));
		jset(g.out, "message", jstr(msg));
	}
	warn_other_build();
	return 0;
}

struct attach_arg {
	const char *ifname;
	enum bgs_xdp_mode mode;
	bool detach;
};

static int apply_attach(void *p, json_object *done)
{
	struct attach_arg *a = p;
	int err;

	(void)done;
	if (a->detach) {
		err = bgs_detach(g.h, a->ifname);
		return err ? lib_fail(err, "detach") : 0;
	}
	err = bgs_init(g.pin_dir, NULL, &g.h);
	if (err)
		return lib_fail(err, "load the switch");
	err = bgs_attach(g.h, a->ifname, a->mode);
	return err ? lib_fail(err, "attach") : 0;
}

static int attach_common(int argc, char **argv, bool detach)
{
	struct attach_arg a = { .detach = detach };
	json_object *det;
	char msg[256];
	int c, err;

	while ((c = opt_next(argc, argv, detach ? &detach_spec : &attach_spec,
				 detach ? &help_detach : &help_attach)) != -1) {
		switch (c) {
		case 'm':
			if (strcmp(optarg, "native") == 0)
				a.mode = BGS_XDP_NATIVE;
			else if (strcmp(optarg, "generic") == 0 || strcmp(optarg, "skb") == 0)
				a.mode = BGS_XDP_GENERIC;
			else
				return usage_fail("bad --xdp-mode '%s': expected native or generic",
						  optarg);
			break;
		default:
			return -EINVAL;
		}
	}
	if (argc - opt_done() != 1)
		return usage_fail("bgctl %s needs exactly one interface name (see bgctl %s --help)",
				  argv[0], argv[0]);
	a.ifname = argv[opt_done()];
	err = check_iface(a.ifname);
	if (err)
		return err;
	if (detach) {
		err = open_state();
		if (err)
			return err;
	}
	det = json_object_new_object();
	jset(det, "interface", jstr(a.ifname));
	if (!detach)
		jset(det, "xdp_mode", jstr(a.mode == BGS_XDP_NATIVE ? "native" : "generic"));
	err = run_change(detach ? "detach" : "attach", NULL, det, apply_attach, &a);
	json_object_put(det);
	if (err)
		return err;
	g.out = json_object_new_object();
	jset(g.out, "interface", jstr(a.ifname));
	jset(g.out, "attached", jbool(!detach));
	if (!detach)
		jset(g.out, "xdp_mode", jstr(a.mode == BGS_XDP_NATIVE ? "native" : "generic"));
	snprintf(msg, sizeof(msg), detach ? "detached from %s" : "attached to %s (%s)", a.ifname,
		 a.mode == BGS_XDP_NATIVE ? "native" : "generic");
	jset(g.out, "message", jstr(msg));
	if (!detach)
		warn_other_build();
	return 0;
}

int do_attach(int argc, char **argv)
{
	return attach_common(argc, argv, false);
}

int do_detach(int argc, char **argv)
{
	return attach_common(argc, argv, true);
}

struct upgrade_arg {
	const char *object;
	struct bgs_switch_info before, after;
};

static int apply_upgrade(void *p, json_object *done)
{
	struct upgrade_arg *a = p;
	int err;

	bgs_switch_info(g.h, &a->before);
	err = bgs_upgrade(g.h, a->object);
	if (err)
		return lib_fail(err, "upgrade");
	bgs_switch_info(g.h, &a->after);
	jset(done, "prog_id", jint(a->after.prog_id));
	return 0;
}

int do_upgrade(int argc, char **argv)
{
	struct upgrade_arg a = {};
	json_object *det;
	char msg[256];
	int c, err;

	while ((c = opt_next(argc, argv, &upgrade_spec, &help_upgrade)) != -1) {
		if (c != 'o')
			return -EINVAL;
		if (access(optarg, R_OK))
			return fail(-ENOENT, EXIT_NOTFOUND, "cannot read --object %s: %s", optarg,
				    strerror(errno));
		a.object = optarg;
	}
	if (argc - opt_done() != 0)
		return usage_fail("bgctl upgrade takes no arguments, got '%s'", argv[opt_done()]);
	err = open_state();
	if (err)
		return err;
	det = json_object_new_object();
	jset(det, "object", a.object ? jstr(a.object) : jstr("(built in)"));
	err = run_change("upgrade", NULL, det, apply_upgrade, &a);
	json_object_put(det);
	if (err)
		return err;
	g.out = json_object_new_object();
	jset(g.out, "prog_id_before", jint(a.before.prog_id));
	jset(g.out, "prog_id", jint(a.after.prog_id));
	jset(g.out, "tag", jstr(a.after.tag));
	snprintf(msg, sizeof(msg), "switch upgraded: program %u (tag %s) replaced %u (tag %s); "
		 "maps, flows and counters kept", a.after.prog_id, a.after.tag, a.before.prog_id,
		 a.before.tag);
	jset(g.out, "message", jstr(msg));
	return 0;
}

struct destroy_arg {
	bool force;
	__u64 flows;
};

static int apply_destroy(void *p, json_object *done)
{
	struct destroy_arg *a = p;
	int err = bgs_teardown(g.h, a->force, &a->flows);

	if (err)
		return lib_fail(err, "destroy");
	jset(done, "flows_cut", jint((long long)a->flows));
	return 0;
}

int do_destroy(int argc, char **argv)
{
	struct destroy_arg a = {};
	json_object *det;
	char msg[PATH_MAX + 96];
	int c, err;

	while ((c = opt_next(argc, argv, &destroy_spec, &help_destroy)) != -1) {
		if (c != 'f')
			return -EINVAL;
		a.force = true;
	}
	if (argc - opt_done() != 0)
		return usage_fail("bgctl destroy takes no arguments, got '%s'", argv[opt_done()]);
	err = open_state();
	if (err)
		return err;
	det = json_object_new_object();
	jset(det, "force", jbool(a.force));
	err = run_change("destroy", NULL, det, apply_destroy, &a);
	json_object_put(det);
	if (err)
		return err;
	g.out = json_object_new_object();
	jset(g.out, "pin_dir", jstr(g.pin_dir));
	jset(g.out, "flows_cut", jint((long long)a.flows));
	snprintf(msg, sizeof(msg), "destroyed the switch at %s (%llu live flow%s cut)", g.pin_dir,
		 (unsigned long long)a.flows, a.flows == 1 ? "" : "s");
	jset(g.out, "message", jstr(msg));
	return 0;
}
