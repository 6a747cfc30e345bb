// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bgctl: the operator's CLI for bgswitch. A command table of do_<verb> functions (bpftool
 * style): each parses its own options plus the global ones, validates every input before
 * any write, and leaves its result in one json object that -j prints as is and the verb's
 * renderer prints as text. Errors map to the documented exit codes only here, in main.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "bgctl.h"

#define STR_(x) #x
#define STR(x) STR_(x)

struct ctx g;

static const char usage_main[] =
	"Usage: bgctl [GLOBAL OPTIONS] VERB [ARGS] [OPTIONS]\n"
	"\n"
	"Verbs (any unique prefix works):\n"
	"  init                         create the pinned state (idempotent)\n"
	"  attach IFACE / detach IFACE  put the switch on an interface or take it off\n"
	"  upgrade                      swap in this build's switch (maps and flows stay)\n"
	"  destroy [--force]            detach everywhere and remove the pinned state\n"
	"  service add|del|set|list     virtual services (VIP:PORT/PROTO)\n"
	"  backend add|del|set|list     blue and green pools\n"
	"  flip NAME                    make the idle color live (one atomic publish)\n"
	"  rollback NAME                back to the previous live color\n"
	"  canary NAME PERCENT          share of new flows sent to the idle color\n"
	"  preview NAME add|del|list    source prefixes that reach the idle color\n"
	"  drain NAME                   flows per color and backend; --kill ends a drain\n"
	"  status [NAME]                live color, generation, drain, counters\n"
	"  conntrack [NAME]             the tracked flows\n"
	"  history [NAME]               the audit log of every change\n"
	"  rollout start|status|promote|abort NAME\n"
	"                               canary steps, gate and flip, run by bgagent\n"
	"\n"
	"Global options (on every verb):\n";

static const char usage_main_tail[] =
	"\n"
	"Exit codes: 0 ok, 1 other error, 2 usage or bad value, 3 not found,\n"
	"4 conflict or precondition failed, 5 kernel or permission error.\n"
	"See bgctl(8).\n";

enum {
	OPT_PIN_DIR = 0x1000,
	OPT_HISTORY,
	OPT_LOCK_TIMEOUT,
};

/* Accepted before the verb and by every verb. */
static const struct verb_opt global_opts[] = {
	{ "pin-dir", OPT_PIN_DIR, 0, "DIR",
	  "pinned state (env BGSWITCH_PIN_DIR; default " BGS_DEFAULT_PIN_DIR ")" },
	{ "history-file", OPT_HISTORY, 0, "FILE",
	  "audit log (env BGSWITCH_HISTORY; default " BGCTL_DEFAULT_HISTORY ")" },
	{ "lock-timeout", OPT_LOCK_TIMEOUT, 0, "SECONDS",
	  "wait at most this long for another change's lock (default 5)" },
	{ "json", 'j', 'j', NULL, "JSON output (errors too)" },
	{ "pretty", 'p', 'p', NULL, "indented JSON (implies -j)" },
	{ "help", 'h', 'h', NULL, "help (on a verb: that verb's help)" },
	{ NULL },
};

/* Before the verb only. */
static const struct verb_opt main_only_opts[] = {
	{ "version", 'V', 'V', NULL, "version" },
	{ NULL },
};

static const struct cmd cmds[] = {
	{ "init", do_init, render_message, &help_init },
	{ "attach", do_attach, render_message, &help_attach },
	{ "detach", do_detach, render_message, &help_detach },
	{ "upgrade", do_upgrade, render_message, &help_upgrade },
	{ "destroy", do_destroy, render_message, &help_destroy },
	{ "service", do_service, NULL, &help_service },
	{ "backend", do_backend, NULL, &help_backend },
	{ "flip", do_flip, render_message, &help_flip },
	{ "rollback", do_rollback, render_message, &help_rollback },
	{ "canary", do_canary, render_message, &help_canary },
	{ "preview", do_preview, render_preview, &help_preview },
	{ "drain", do_drain, render_drain, &help_drain },
	{ "status", do_status, render_status, &help_status },
	{ "conntrack", do_conntrack, render_conntrack, &help_conntrack },
	{ "history", do_history, render_history, &help_history },
	{ "rollout", do_rollout, NULL, &help_rollout },
	{ NULL },
};

/* The renderer of the command that ran (sub-verb tables set it through dispatch). */
static void (*cur_render)(json_object *out);

int fail(int err, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(g.err, sizeof(g.err), fmt, ap);
	va_end(ap);
	g.exit_code = code;
	return err < 0 ? err : -EINVAL;
}

int usage_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(g.err, sizeof(g.err), fmt, ap);
	va_end(ap);
	g.exit_code = EXIT_USAGE;
	return -EINVAL;
}

int lib_fail(int err, const char *what)
{
	const char *m = bgs_errmsg();

	if (m && *m)
		snprintf(g.err, sizeof(g.err), "%s", m);
	else
		snprintf(g.err, sizeof(g.err), "%s: %s", what, strerror(-err));
	if (err == -EPERM || err == -EACCES)
		snprintf(g.err + strlen(g.err), sizeof(g.err) - strlen(g.err),
			 " (bgctl needs root: CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN)");
	g.exit_code = 0;
	return err;
}

static int exit_code_of(int err)
{
	switch (-err) {
	case 0:
		return EXIT_OK;
	case EINVAL:
	case ERANGE:
	case E2BIG:
	case EDOM:
		return EXIT_USAGE;
	case ENOENT:
	case ENODEV:
	case ESRCH:
	case ENXIO:
		return EXIT_NOTFOUND;
	case EEXIST:
	case ESTALE:
	case EHOSTUNREACH:
	case ENOSPC:
	case EBUSY:
	case EPROTO:
	case EALREADY:
	case ENOTEMPTY:
		return EXIT_CONFLICT;
	case EPERM:
	case EACCES:
	case ENOMEM:
	case EFAULT:
	case EBADF:
	case EOPNOTSUPP:
	case ENOSYS:
	case EIO:
	case 524: /* ENOTSUPP, kernel internal */
		return EXIT_KERNEL;
	default:
		return EXIT_OTHER;
	}
}

json_object *jget(json_object *o, const char *k)
{
	json_object *v = NULL;

	if (!o || !json_object_object_get_ex(o, k, &v))
		return NULL;
	return v;
}

const char *jgets(json_object *o, const char *k)
{
	json_object *v = jget(o, k);

	return v ? json_object_get_string(v) : "";
}

long long jgeti(json_object *o, const char *k)
{
	return json_object_get_int64(jget(o, k));
}

double jgetd(json_object *o, const char *k)
{
	return json_object_get_double(jget(o, k));
}

bool jgetb(json_object *o, const char *k)
{
	return json_object_get_boolean(jget(o, k));
}

void jprint(json_object *o, FILE *f)
{
	int flags = JSON_C_TO_STRING_NOSLASHESCAPE |
		    (g.pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
			      : JSON_C_TO_STRING_PLAIN);

	fprintf(f, "%s\n", json_object_to_json_string_ext(o, flags));
	fflush(f);
}

/* Changes print their "message"; sub-verb renderers fall back to it too. */
void render_message(json_object *out)
{
	const char *m = jgets(out, "message");

	if (*m)
		printf("%s\n", m);
}

/* Longest --lock-timeout: an hour is already "wait for that operator". */
#define LOCK_TIMEOUT_MAX_S 3600

/* --lock-timeout: how long every change of this run waits for the pin directory's lock. */
static int set_lock_timeout(const char *arg)
{
	int ms, err = parse_seconds(arg, "--lock-timeout", LOCK_TIMEOUT_MAX_S, &ms);

	if (!err)
		bgs_set_lock_timeout(NULL, ms);
	return err;
}

/* Append a table's options to getopt_long's array and its short options string. */
static size_t to_getopt(const struct verb_opt *t, struct option *o, size_t n, size_t max,
			char *shorts, size_t slen)
{
	for (; t && t->name && n < max - 1; t++, n++) {
		o[n] = (struct option){ t->name, t->arg ? required_argument : no_argument, NULL,
					t->val };
		if (t->short_name)
			snprintf(shorts + strlen(shorts), slen - strlen(shorts), "%c%s",
				 t->short_name, t->arg ? ":" : "");
	}
	memset(&o[n], 0, sizeof(o[n]));
	return n;
}

/* "--name ARG" or "-s, --name ARG" */
static void opt_words(const struct verb_opt *o, bool with_short, char *buf, size_t len)
{
	char s[8] = "";

	if (with_short && o->short_name)
		snprintf(s, sizeof(s), "-%c, ", o->short_name);
	snprintf(buf, len, "%s--%s%s%s", s, o->name, o->arg ? " " : "", o->arg ? o->arg : "");
}

/* An option shared by two synopses of a verb is listed once, under the first. */
static bool listed_before(const struct verb_opt *t, const struct verb_help *help)
{
	for (const struct verb_spec *const *s = help ? help->specs : NULL; s && *s; s++)
		for (const struct verb_opt *o = (*s)->opts; o && o->name; o++) {
			if (o == t)
				return false;
			if (!strcmp(o->name, t->name))
				return true;
		}
	return false;
}

static void print_opt_lines(const struct verb_opt *t, const struct verb_help *help, FILE *f)
{
	char w[64];

	for (; t && t->name; t++) {
		if (listed_before(t, help))
			continue;
		opt_words(t, true, w, sizeof(w));
		fprintf(f, "  %-26s %s\n", w, t->help);
	}
}

/* Synopsis lines wrap before this column. */
#define HELP_COLS 90

void print_help(const struct verb_help *help, FILE *f)
{
	const struct verb_spec *const *s;
	char w[64];
	bool any = false;

	for (s = help->specs; *s; s++) {
		int col = fprintf(f, "%sbgctl %s%s%s", s == help->specs ? "Usage: " : "       ",
				  (*s)->verb, *(*s)->args ? " " : "", (*s)->args);
		int indent = col - (int)strlen((*s)->args);

		for (const struct verb_opt *o = (*s)->opts; o && o->name; o++) {
			opt_words(o, false, w, sizeof(w));
			if (col + (int)strlen(w) + 3 > HELP_COLS)
				col = fprintf(f, "\n%*s", indent, "") - 1;
			col += fprintf(f, " [%s]", w);
			any = true;
		}
		fputc('\n', f);
	}
	fputs(help->text, f);
	if (any)
		fputs("Options:\n", f);
	for (s = help->specs; *s; s++)
		print_opt_lines((*s)->opts, help, f);
}

static void print_main_help(FILE *f)
{
	fputs(usage_main, f);
	print_opt_lines(global_opts, NULL, f);
	print_opt_lines(main_only_opts, NULL, f);
	fputs(usage_main_tail, f);
}

/* "--name" for a flag, "--name=" for an option that takes a value */
static void print_opt_names(const char *verb, const struct verb_opt *t, const struct verb_opt *t2)
{
	printf("%s\t", verb);
	for (const char *sep = ""; t && t->name; t++, sep = " ")
		printf("%s--%s%s", sep, t->name, t->arg ? "=" : "");
	for (; t2 && t2->name; t2++)
		printf(" --%s%s", t2->name, t2->arg ? "=" : "");
	putchar('\n');
}

int do_options(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return usage_fail("bgctl __options takes no arguments");
	print_opt_names("global", global_opts, main_only_opts);
	for (const struct cmd *c = cmds; c->name; c++)
		for (const struct verb_spec *const *s = c->help->specs; *s; s++)
			print_opt_names((*s)->verb, (*s)->opts, NULL);
	return 0;
}

static struct option merged[64];
static char merged_short[64];
static char **opt_argv;

int opt_next(int argc, char **argv, const struct verb_spec *spec, const struct verb_help *help)
{
	size_t n;
	int c;

	if (opt_argv != argv) {
		opt_argv = argv;
		snprintf(merged_short, sizeof(merged_short), ":");
		n = to_getopt(spec ? spec->opts : NULL, merged, 0, 40, merged_short,
			      sizeof(merged_short));
		to_getopt(global_opts, merged, n, sizeof(merged) / sizeof(merged[0]),
			  merged_short, sizeof(merged_short));
		optind = 0;
		opterr = 0;
	}
	for (;;) {
		c = getopt_long(argc, argv, merged_short, merged, NULL);
		switch (c) {
		case OPT_PIN_DIR:
			g.pin_dir = optarg;
			continue;
		case OPT_HISTORY:
			g.history_file = optarg;
			continue;
		case OPT_LOCK_TIMEOUT:
			if (set_lock_timeout(optarg))
				return -2;
			continue;
		case 'j':
			g.json = true;
			continue;
		case 'p':
			g.json = g.pretty = true;
			continue;
		case 'h':
			print_help(help, stdout);
			exit(EXIT_OK);
		case ':':
			usage_fail("option '%s' of 'bgctl %s' needs a value (see bgctl %s --help)",
				   argv[optind - 1], argv[0], argv[0]);
			return -2;
		case '?':
			if (optind > 0 && optind <= argc && argv[optind - 1][0] == '-' &&
			    (isdigit((unsigned char)argv[optind - 1][1]) ||
			     argv[optind - 1][1] == '.'))
				usage_fail(
					"bad value '%s' for 'bgctl %s': negative numbers are not "
					"allowed (see bgctl %s --help)",
					argv[optind - 1], argv[0], argv[0]);
			else if (optopt)
				usage_fail(
					"unknown option '-%c' for 'bgctl %s' (see bgctl %s --help)",
					optopt, argv[0], argv[0]);
			else
				usage_fail(
					"unknown option '%s' for 'bgctl %s' (see bgctl %s --help)",
					argv[optind - 1], argv[0], argv[0]);
			return -2;
		default:
			return c;
		}
	}
}

int opt_done(void)
{
	return optind;
}

int opt_optional_name(int argc, char **argv, const char *verb, const char **name)
{
	*name = NULL;
	if (argc - optind > 1)
		return usage_fail("bgctl %s takes at most one service NAME", verb);
	if (argc - optind == 1) {
		*name = argv[optind];
		return parse_name(*name);
	}
	return 0;
}

int dispatch(const struct cmd *table, const char *what, int argc, char **argv)
{
	const struct cmd *match = NULL;
	char names[256] = "";
	size_t len;

	if (argc < 1 || !argv[0][0])
		goto bad;
	len = strlen(argv[0]);
	for (const struct cmd *c = table; c->name; c++) {
		if (strcmp(c->name, argv[0]) == 0) {
			match = c;
			break;
		}
		if (strncmp(c->name, argv[0], len) == 0) {
			if (match)
				return usage_fail(
					"'%s' is ambiguous for bgctl %s: it starts %s and %s",
					argv[0], what, match->name, c->name);
			match = c;
		}
	}
	if (!match)
		goto bad;
	if (match->render)
		cur_render = match->render;
	return match->fn(argc, argv);
bad:
	for (const struct cmd *c = table; c->name; c++) {
		strncat(names, c->name, sizeof(names) - strlen(names) - 1);
		if (c[1].name)
			strncat(names, "|", sizeof(names) - strlen(names) - 1);
	}
	if (argc < 1)
		return usage_fail("bgctl %s needs one of: %s", what, names);
	return usage_fail("unknown %s '%s': expected one of %s", strcmp(what, "") ? "word" : "verb",
			  argv[0], names);
}

static bool on_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

int open_state(void)
{
	char parent[4096];
	struct stat st;
	char *slash;
	int err;

	if (g.h)
		return 0;
	err = bgs_open(g.pin_dir, &g.h);
	if (!err)
		return 0;
	if (err == -EPERM || err == -EACCES || geteuid() != 0)
		return fail(-EPERM, EXIT_KERNEL,
			    "permission denied opening %s: run bgctl as root (it needs CAP_BPF, "
			    "CAP_NET_ADMIN and CAP_SYS_ADMIN)",
			    g.pin_dir);
	if (err == -EPROTO)
		return lib_fail(err, "open");
	if (err == -ENOENT) {
		snprintf(parent, sizeof(parent), "%s", g.pin_dir);
		slash = strrchr(parent, '/');
		if (slash && slash != parent)
			*slash = '\0';
		if (stat(g.pin_dir, &st) != 0 && !on_bpffs(parent))
			return fail(-ENOENT, EXIT_CONFLICT,
				    "no bpffs at %s: mount one (mount -t bpf bpf %s) or choose "
				    "--pin-dir on a bpffs, then run 'bgctl init'",
				    parent, parent);
		return fail(-ENOENT, EXIT_CONFLICT,
			    "bgswitch is not initialized in %s: run 'bgctl init' first "
			    "(or pass the right --pin-dir / BGSWITCH_PIN_DIR)",
			    g.pin_dir);
	}
	return lib_fail(err, "open pinned state");
}

int resolve_service(const char *name, __u32 *svc_id)
{
	int err;

	err = parse_name(name);
	if (err)
		return err;
	err = bgs_service_find(g.h, name, svc_id);
	if (err == -ENOENT)
		return fail(err, EXIT_NOTFOUND, "no service named '%s' (see bgctl service list)",
			    name);
	if (err)
		return lib_fail(err, "find service");
	return 0;
}

static void print_error(int err)
{
	json_object *o, *e;

	if (!g.err[0])
		snprintf(g.err, sizeof(g.err), "%s", strerror(-err));
	if (g.json) {
		o = json_object_new_object();
		e = json_object_new_object();
		jset(e, "message", jstr(g.err));
		jset(e, "errno", jint(-err));
		jset(e, "exit", jint(g.exit_code));
		jset(o, "error", e);
		jprint(o, stdout);
		json_object_put(o);
	} else {
		fprintf(stderr, "bgctl: %s\n", g.err);
	}
}

int main(int argc, char **argv)
{
	static struct option main_opts[16];
	char main_short[16] = "+:";
	bool version = false;
	int c, err;

	g.pin_dir = getenv("BGSWITCH_PIN_DIR");
	if (!g.pin_dir || !*g.pin_dir)
		g.pin_dir = BGS_DEFAULT_PIN_DIR;
	g.history_file = getenv("BGSWITCH_HISTORY");
	if (!g.history_file || !*g.history_file)
		g.history_file = BGCTL_DEFAULT_HISTORY;
	cur_render = render_message;

	to_getopt(main_only_opts, main_opts, to_getopt(global_opts, main_opts, 0, 15, main_short,
						       sizeof(main_short)),
		  16, main_short, sizeof(main_short));
	opterr = 0;
	while ((c = getopt_long(argc, argv, main_short, main_opts, NULL)) != -1) {
		switch (c) {
		case OPT_PIN_DIR:
			g.pin_dir = optarg;
			break;
		case OPT_HISTORY:
			g.history_file = optarg;
			break;
		case OPT_LOCK_TIMEOUT:
			err = set_lock_timeout(optarg);
			if (err)
				goto out;
			break;
		case 'j':
			g.json = true;
			break;
		case 'p':
			g.json = g.pretty = true;
			break;
		case 'h':
			print_main_help(stdout);
			return EXIT_OK;
		case 'V':
			version = true;
			break;
		case ':':
			err = usage_fail("option '%s' needs a value", argv[optind - 1]);
			goto out;
		default:
			err = usage_fail("unknown option '%s' (see bgctl --help)",
					 argv[optind - 1]);
			goto out;
		}
	}
	if (version) {
		g.out = json_object_new_object();
		jset(g.out, "version", jstr(BGCTL_VERSION));
		jset(g.out, "layout_version", jint(BGS_LAYOUT_VERSION));
		jset(g.out, "message",
		     jstr("bgctl " BGCTL_VERSION
			  " (pin layout version " STR(BGS_LAYOUT_VERSION) ")"));
		err = 0;
		goto out;
	}
	if (optind >= argc) {
		print_main_help(stderr);
		err = usage_fail("no verb given");
		goto out;
	}
	if (strcmp(argv[optind], "help") == 0) {
		print_main_help(stdout);
		return EXIT_OK;
	}
	/* hidden: the option tables, for the completion and man page tests */
	if (strcmp(argv[optind], "__options") == 0) {
		err = do_options(argc - optind, argv + optind);
		goto out;
	}
	err = dispatch(cmds, "", argc - optind, argv + optind);
out:
	if (g.h)
		bgs_close(g.h);
	bgs_history_close(g.hist);
	if (err < 0) {
		if (!g.exit_code)
			g.exit_code = exit_code_of(err);
		print_error(err);
		json_object_put(g.out);
		return g.exit_code;
	}
	if (g.out) {
		if (g.json)
			jprint(g.out, stdout);
		else if (cur_render)
			cur_render(g.out);
		json_object_put(g.out);
	}
	return g.exit_code;
}
