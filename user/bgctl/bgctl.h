/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * bgctl internals: the command context, output helpers, parsers and the history log.
 * Every verb builds one json-c object; -j prints it, otherwise the verb's renderer turns the
 * same object into text, so the two outputs never drift apart.
 */
#ifndef BGCTL_H
#define BGCTL_H

#include <stdbool.h>
#include <stdio.h>
#include <json-c/json.h>

#include "libbgswitch.h"

#define BGCTL_VERSION "0.1.0"
#define BGCTL_DEFAULT_HISTORY BGS_DEFAULT_HISTORY

/* Documented exit codes (bgctl(8)). */
enum {
	EXIT_OK = 0,
	EXIT_OTHER = 1,
	EXIT_USAGE = 2,	   /* bad command line or bad value */
	EXIT_NOTFOUND = 3, /* service, backend, prefix or interface not found */
	EXIT_CONFLICT = 4, /* conflict or precondition failed (generation, exists, unusable) */
	EXIT_KERNEL = 5,   /* kernel or permission error */
};

/* One bgctl run. */
struct ctx {
	const char *pin_dir;
	const char *history_file;
	bool json;
	bool pretty;
	struct bgs *h;
	struct bgs_history *hist; /* opened by the first change */
	bool emergency;		  /* this run's change applies even unrecorded */
	json_object *out; /* the verb's result */
	int exit_code;	  /* set by fail(); 0: derived from the error */
	char err[512];
};

extern struct ctx g;

/* One option of a verb. The verb's table is the only list: getopt_long's array, the usage
 * text and `bgctl __options` (which the completion and man page tests check) come from it. */
struct verb_opt {
	const char *name; /* long name, without "--"; NULL ends the table */
	int val;	  /* what opt_next returns for it */
	char short_name;  /* -C works too (opt_next returns C); 0: none */
	const char *arg;  /* the value's name in the usage; NULL: a flag */
	const char *help; /* one line */
};

/* One synopsis of a verb: "bgctl <verb> <args> [options]". */
struct verb_spec {
	const char *verb;	     /* "flip", "service add" */
	const char *args;	     /* positional words, "" if none */
	const struct verb_opt *opts; /* NULL or a table */
};

/* A verb's --help: its synopses (NULL-terminated), then text, then every option's line. */
struct verb_help {
	const struct verb_spec *const *specs;
	const char *text;
};

/* A verb or sub-verb: do_* parses argv (argv[0] is the verb) and fills g.out. */
struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	void (*render)(json_object *out);
	const struct verb_help *help;
};

/* Print a verb's help (synopses, text, options) to f. */
void print_help(const struct verb_help *help, FILE *f);
/* `bgctl __options`: a line per synopsis, "VERB\t--flag --opt= ...", the global options first. */
int do_options(int argc, char **argv);

/* Record an error message; returns err (a negative errno). code 0: from the errno. */
int fail(int err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A library failure: bgs_errmsg() if set, else "what: strerror". */
int lib_fail(int err, const char *what);
int usage_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Run the table entry matching argv[0] (exact or unique prefix). */
int dispatch(const struct cmd *cmds, const char *what, int argc, char **argv);

/* Option parsing shared by every verb: getopt_long over verb options plus the globals.
 * Returns the option's val, -1 at the end, or -2 on error (message already set). */
int opt_next(int argc, char **argv, const struct verb_spec *spec, const struct verb_help *help);
int opt_done(void);
/* After the options: at most one service NAME (validated), in *name (NULL if none). */
int opt_optional_name(int argc, char **argv, const char *verb, const char **name);

/* Open the pinned state (g.h) with clear messages for "not root", "no bpffs", "not
 * initialized". */
int open_state(void);
int resolve_service(const char *name, __u32 *svc_id);
/* The ids of every service (calloc'ed: free them), how many or -errno (message set). */
int service_ids(__u32 **ids, __u32 *max);

/* ---- parsers: 0 or -EINVAL with the message set ---- */
int parse_color(const char *s, int *color);
int parse_name(const char *s);
int parse_u32(const char *s, const char *what, unsigned long long max, __u32 *v);
int parse_u64(const char *s, const char *what, unsigned long long max, unsigned long long *v);
int parse_port(const char *s, const char *what, __u16 *port);
/* "30s", "5m", "1h", "500ms", "1m30s", "0" (end now), "none" (no deadline) -> milliseconds */
int parse_duration(const char *s, const char *what, unsigned long long *ms, bool allow_none);
/* "5", "0.5", "2.125" (at most max_s) -> milliseconds */
int parse_seconds(const char *s, const char *what, unsigned int max_s, int *ms);
/* "10", "10.5", "0.25", "100%" -> basis points */
int parse_percent(const char *s, __u32 *bps);
/* "ADDR:PORT[/tcp|/udp]", "[v6]:PORT[/proto]" */
int parse_vip(const char *s, struct bgs_ip *ip, __u16 *port, __u8 *proto);
/* "ADDR", "ADDR:PORT", "v6", "[v6]:PORT" (port 0 when absent) */
int parse_addr_port(const char *s, struct bgs_ip *ip, __u16 *port);
int parse_ip(const char *s, struct bgs_ip *ip);
int parse_prefix(const char *s, struct bgs_prefix *p);
int parse_reason(const char *s);

const char *color_name(int color);
const char *mode_name(int mode);
const char *proto_name(int proto);
const char *admin_name(int admin);
const char *health_name(int health);
/* "10.0.0.1:80", "[2001:db8::1]:80" */
char *addr_port_str(const struct bgs_ip *ip, __u16 port, char *buf, size_t len);
void ip_from_words(struct bgs_ip *ip, __u8 family, const __u32 addr[4]);
char *prefix_str(const struct bgs_prefix *p, char *buf, size_t len);
char *pct_str(__u32 bps, char *buf, size_t len);
char *dur_str(double sec, char *buf, size_t len);

/* ---- json helpers ---- */
static inline json_object *jstr(const char *s)
{
	return json_object_new_string(s ? s : "");
}
static inline json_object *jint(long long v)
{
	return json_object_new_int64(v);
}
static inline json_object *jbool(bool v)
{
	return json_object_new_boolean(v);
}
static inline void jset(json_object *o, const char *k, json_object *v)
{
	json_object_object_add(o, k, v);
}
json_object *jget(json_object *o, const char *k);
const char *jgets(json_object *o, const char *k);
long long jgeti(json_object *o, const char *k);
double jgetd(json_object *o, const char *k);
bool jgetb(json_object *o, const char *k);
void jprint(json_object *o, FILE *f);

/* ---- service state as json (shared by status, flip, canary, ...) ---- */
json_object *service_json(__u32 svc_id, bool counters, const struct bgs_flow_counts *t);
json_object *flip_json(const struct bgs_flip *f);
/* The loaded flow timeouts, {"tcp_syn": 60, ...} in seconds (init and status print it), and
 * that object as one line of text ("tcp_syn 60s, tcp_est 900s, ..."). */
json_object *timeouts_json(const struct bgs_flow_timeouts *t);
char *timeouts_str(json_object *o, char *buf, size_t len);
/* Read every backend record once; service_json() then uses that copy. */
int backend_snapshot(void);
/* Clock of the data plane: now in jiffies and hz. */
int dp_clock(__u64 *now, __u32 *hz);

/* ---- flows ---- */
/* Live flows (the library's bgs_flow_count, with bgctl's error reporting). */
int flow_tally(struct bgs_flow_counts *t);
void flow_tally_free(struct bgs_flow_counts *t);
json_object *backend_json(__u32 id, const struct bgs_backend *be, bool counters,
			  const struct bgs_flow_counts *t);

/* ---- history ---- */
/* One change, recorded by the library in the history (g.history_file): the intent under
 * its lock before apply() changes anything, the outcome after. apply returns 0 or a
 * negative errno with the message already set (fail/lib_fail); what it puts in done is
 * shown, not recorded. g.emergency: applies even if the history cannot be written, with a
 * loud warning. */
int run_change(const char *verb, const char *service, json_object *intent,
	       int (*apply)(void *arg, json_object *done), void *arg);

/* ---- verbs ---- */
int do_init(int argc, char **argv);
int do_attach(int argc, char **argv);
int do_detach(int argc, char **argv);
int do_upgrade(int argc, char **argv);
int do_destroy(int argc, char **argv);
int do_service(int argc, char **argv);
int do_backend(int argc, char **argv);
int do_flip(int argc, char **argv);
int do_rollback(int argc, char **argv);
int do_canary(int argc, char **argv);
int do_preview(int argc, char **argv);
int do_drain(int argc, char **argv);
int do_status(int argc, char **argv);
int do_conntrack(int argc, char **argv);
int do_history(int argc, char **argv);
int do_rollout(int argc, char **argv);

void render_message(json_object *out);
void render_status(json_object *out);
void render_preview(json_object *out);
void render_drain(json_object *out);
void render_conntrack(json_object *out);
void render_history(json_object *out);
/* A service's rollout as json (NULL: it never had one), and its lines in status. */
json_object *rollout_json(__u32 svc_id);
void render_rollout_line(json_object *rollout);

extern const struct verb_help help_init, help_attach, help_detach, help_upgrade, help_destroy,
	help_service, help_backend, help_flip, help_rollback, help_canary, help_preview, help_drain,
	help_status, help_conntrack, help_history, help_rollout;

#endif /* BGCTL_H */
