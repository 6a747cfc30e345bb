// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* bgctl status, conntrack and history: the read-only verbs. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

#include "bgctl.h"

enum { O_WATCH = 1, O_FLOWS, O_INTERVAL, O_COUNT, O_COLOR, O_BACKEND, O_LIMIT, O_ALL };

static const struct verb_opt status_opts[] = {
	{ "flows", O_FLOWS, 0, NULL, "add live flow counts (walks conntrack)" },
	{ "watch", O_WATCH, 'w', NULL, "redraw every interval with packets/s and bytes/s" },
	{ "interval", O_INTERVAL, 0, "DUR", "--watch's interval (default 1s, at least 100ms)" },
	{ "count", O_COUNT, 0, "N", "--watch: stop after N rounds" },
	{ NULL },
};

static const struct verb_spec status_spec = { "status", "[NAME]", status_opts };

const struct verb_help help_status = {
	(const struct verb_spec *const[]){ &status_spec, NULL },
	"Live color, generation, canary, preview prefixes and drain (deadline, time left) of\n"
	"each service, and per color and backend the admin state, health, packets, bytes,\n"
	"new flows and (nat) the backends' TCP resets from the counters. --watch redraws until\n"
	"interrupted (or N rounds); with -j it prints one JSON object per round.\n",
};

static const struct verb_opt conntrack_opts[] = {
	{ "color", O_COLOR, 0, "blue|green", "only flows of this color" },
	{ "backend", O_BACKEND, 0, "ADDR[:PORT]", "only flows of this backend" },
	{ "limit", O_LIMIT, 0, "N", "list at most N (default 1000, 0 = no limit)" },
	{ "all", O_ALL, 0, NULL, "dead flows too" },
	{ NULL },
};

static const struct verb_spec conntrack_spec = { "conntrack", "[NAME]", conntrack_opts };

const struct verb_help help_conntrack = {
	(const struct verb_spec *const[]){ &conntrack_spec, NULL },
	"The tracked flows: client, VIP, color, backend, TCP state, idle time. Live flows\n"
	"only unless --all. The totals count every match, listed or not.\n",
};

static const struct verb_opt history_opts[] = {
	{ "limit", O_LIMIT, 0, "N", "the last N changes" },
	{ "all", O_ALL, 0, NULL, "refused changes too" },
	{ NULL },
};

static const struct verb_spec history_spec = { "history", "[NAME]", history_opts };

const struct verb_help help_history = {
	(const struct verb_spec *const[]){ &history_spec, NULL },
	"The audit log of changes (time, user, verb, change, generation, reason), oldest\n"
	"first. A change whose outcome was never written (a crash mid-change) shows as\n"
	"'unconfirmed'.\n",
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* ---- status ---- */

static void render_pool_line(const char *label, const char *addr, json_object *o, bool nat,
			     bool flows, bool rates, const char *weight, const char *admin,
			     const char *health)
{
	char resets[24] = "-"; /* dsr: replies bypass the switch, nobody counts resets */

	if (nat)
		snprintf(resets, sizeof(resets), "%lld", jgeti(o, "resets"));
	printf("  %-6s %-30s %6s %-5s %-6s %10lld %12lld %9lld %6s", label, addr, weight, admin,
	       health, jgeti(o, "packets"), jgeti(o, "bytes"), jgeti(o, "new_flows"), resets);
	if (flows)
		printf(" %7lld", jgeti(o, "flows"));
	if (rates)
		printf(" %9.0f %11.0f", jgetd(o, "packets_per_s"), jgetd(o, "bytes_per_s"));
	printf("\n");
}

static void render_service(json_object *s, bool flows, bool rates)
{
	json_object *pools = jget(s, "pools"), *prev = jget(s, "preview"), *d = jget(s, "drain");
	bool nat = !strcmp(jgets(s, "mode"), "nat");
	char buf[64];

	printf("%s (id %lld)  %s/%s  %s%s%s\n", jgets(s, "name"), jgeti(s, "id"), jgets(s, "vip"),
	       jgets(s, "proto"), jgets(s, "mode"),
	       jget(s, "preview_port") ? "  preview port " : "",
	       jget(s, "preview_port") ? jgets(s, "preview_port") : "");
	printf("  live %s   generation %lld   canary %s", jgets(s, "live"), jgeti(s, "generation"),
	       jgets(s, "canary"));
	if (jgeti(s, "canary_bps"))
		printf(" -> %s%s", jgets(s, "idle"), jgetb(s, "sticky") ? " (sticky)" : "");
	if (prev && json_object_array_length(prev)) {
		printf("   preview");
		for (size_t i = 0; i < json_object_array_length(prev); i++)
			printf(" %s", json_object_get_string(json_object_array_get_idx(prev, i)));
		printf(" -> %s", jgets(s, "idle"));
	}
	printf("\n  drain ");
	if (!d)
		printf("none\n");
	else if (!jget(d, "time_left_s"))
		printf("%s, no deadline\n", jgets(d, "color"));
	else if (jgetb(d, "ended"))
		printf("%s, deadline passed\n", jgets(d, "color"));
	else
		printf("%s, %s left\n", jgets(d, "color"),
		       dur_str(jgetd(d, "time_left_s"), buf, sizeof(buf)));
	render_rollout_line(jget(s, "rollout"));
	printf("  %-6s %-30s %6s %-5s %-6s %10s %12s %9s %6s", "POOL", "BACKEND", "WEIGHT", "ADMIN",
	       "HEALTH", "PACKETS", "BYTES", "NEWFLOWS", "RESETS");
	if (flows)
		printf(" %7s", "FLOWS");
	if (rates)
		printf(" %9s %11s", "PKTS/S", "BYTES/S");
	printf("\n");
	for (int c = 0; c < 2; c++) {
		json_object *p = jget(pools, color_name(c)), *bes = jget(p, "backends");
		size_t n = bes ? json_object_array_length(bes) : 0;
		char label[16];

		snprintf(label, sizeof(label), "%s%s", color_name(c), jgetb(p, "live") ? "*" : "");
		for (size_t i = 0; i < n; i++) {
			json_object *b = json_object_array_get_idx(bes, i);
			char w[16];

			char addr[96];

			snprintf(w, sizeof(w), "%lld", jgeti(b, "weight"));
			/* Without a next hop it takes no traffic whatever its states say. */
			snprintf(addr, sizeof(addr), "%s%s", jgets(b, "address"),
				 jgetb(b, "nexthop") ? "" : " (no next hop)");
			render_pool_line(i == 0 ? label : "", addr, b, nat, flows, rates, w,
					 jgets(b, "admin"), jgets(b, "health"));
		}
		render_pool_line(n ? "" : label, n ? "(pool total)" : "(no backends)", p, nat,
				 flows, rates, "", "", jgetb(p, "usable") ? "" : "UNUSABLE");
	}
}

void render_status(json_object *out)
{
	json_object *arr = jget(out, "services");
	size_t n = arr ? json_object_array_length(arr) : 0;
	bool flows = jgetb(out, "flows"), rates = jget(out, "interval_s") != NULL;
	bool sw_line = jget(out, "switch") && jget(jget(out, "switch"), "prog_id");

	if (!n)
		printf("no services (add one with: bgctl service add NAME --vip ADDR:PORT)\n");
	for (size_t i = 0; i < n; i++) {
		if (i)
			printf("\n");
		render_service(json_object_array_get_idx(arr, i), flows, rates);
	}
	if (sw_line) {
		json_object *sw = jget(out, "switch");
		const char *b = jget(sw, "build_id") ? jgets(sw, "build_id") : "unknown";

		printf("\nswitch: program %lld (tag %s, build %s); bgctl %s (build %s)\n",
		       jgeti(sw, "prog_id"), jgets(sw, "tag"), b, jgets(sw, "bgctl_version"),
		       jgets(sw, "bgctl_build_id"));
		if (!jgetb(sw, "same_build"))
			printf("the running switch is not this bgctl's build: 'bgctl upgrade' swaps "
			       "it in\n");
	}
	if (jget(out, "timeouts")) {
		char tl[256];

		printf("%sflow timeouts: %s\n", sw_line ? "" : "\n",
		       timeouts_str(jget(out, "timeouts"), tl, sizeof(tl)));
	}
	if (jget(out, "verdicts")) {
		int shown = 0;

		json_object_object_foreach (jget(out, "verdicts"), k, v) {
			if (!json_object_get_int64(v))
				continue;
			printf("%s%s %lld", shown++ ? ", " : "\nverdicts (packets): ", k,
			       (long long)json_object_get_int64(v));
		}
		if (shown)
			printf("\n");
	}
}

/* Packets/s and bytes/s of o against the same object in the previous round. */
static void add_rates(json_object *o, json_object *prev, double dt)
{
	double dp = 0, db = 0;

	if (prev && dt > 0) {
		dp = (double)(jgeti(o, "packets") - jgeti(prev, "packets")) / dt;
		db = (double)(jgeti(o, "bytes") - jgeti(prev, "bytes")) / dt;
	}
	jset(o, "packets_per_s", json_object_new_double(dp < 0 ? 0 : dp));
	jset(o, "bytes_per_s", json_object_new_double(db < 0 ? 0 : db));
}

static json_object *find_by_id(json_object *arr, long long id)
{
	for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
		json_object *o = json_object_array_get_idx(arr, i);

		if (jgeti(o, "id") == id)
			return o;
	}
	return NULL;
}

static void rates_all(json_object *cur, json_object *prev, double dt)
{
	json_object *arr = jget(cur, "services"), *parr = jget(prev, "services");

	for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
		json_object *s = json_object_array_get_idx(arr, i);
		json_object *ps = find_by_id(parr, jgeti(s, "id"));

		for (int c = 0; c < 2; c++) {
			json_object *p = jget(jget(s, "pools"), color_name(c));
			json_object *pp = jget(jget(ps, "pools"), color_name(c));
			json_object *bes = jget(p, "backends");

			add_rates(p, pp, dt);
			for (size_t j = 0; bes && j < json_object_array_length(bes); j++) {
				json_object *b = json_object_array_get_idx(bes, j);

				add_rates(b, find_by_id(jget(pp, "backends"), jgeti(b, "id")), dt);
			}
		}
	}
}

static int status_once(const char *name, bool flows, json_object **out)
{
	__u32 one, *all = NULL, *ids = &one, max = 1;
	struct bgs_flow_counts t = {};
	json_object *arr;
	int n, err = 0;

	if (name) {
		err = resolve_service(name, &one);
		if (err)
			return err;
		n = 1;
	} else {
		n = service_ids(&all, &max);
		if (n < 0)
			return n;
		ids = all;
	}
	err = backend_snapshot();
	if (err)
		goto out;
	if (flows) {
		err = flow_tally(&t);
		if (err)
			goto out;
	}
	arr = json_object_new_array();
	for (int i = 0; i < n && (__u32)i < max; i++) {
		json_object *s = service_json(ids[i], true, flows ? &t : NULL);
		json_object *ro = s ? rollout_json(ids[i]) : NULL;

		if (ro)
			jset(s, "rollout", ro);
		if (s)
			json_object_array_add(arr, s);
	}
	*out = json_object_new_object();
	jset(*out, "services", arr);
	jset(*out, "flows", jbool(flows));
	if (!name) {
		struct bgs_reason_counter rc[BGS_R_MAX];
		json_object *v = json_object_new_object();

		if (bgs_reason_counters(g.h, rc) == 0)
			for (int r = 0; r < BGS_R_MAX; r++)
				jset(v, bgs_reason_name((enum bgs_reason)r),
				     jint((long long)rc[r].packets));
		jset(*out, "verdicts", v);
	}
	{
		/* Which switch runs (an upgrade changes it; bgctl upgrade swaps in its own). */
		struct bgs_switch_info si;
		json_object *sw = json_object_new_object();

		char id[20];

		if (bgs_switch_info(g.h, &si) == 0) {
			jset(sw, "prog_id", jint(si.prog_id));
			jset(sw, "tag", jstr(si.tag));
			jset(sw, "loaded_s_after_boot", jint((long long)si.loaded_s));
			snprintf(id, sizeof(id), "%016llx", (unsigned long long)si.build_id);
			jset(sw, "build_id", si.build_known ? jstr(id) : NULL);
			jset(sw, "same_build", jbool(si.build_known && si.build_id == bgs_build_id()));
		}
		jset(sw, "bgctl_version", jstr(BGCTL_VERSION));
		snprintf(id, sizeof(id), "%016llx", (unsigned long long)bgs_build_id());
		jset(sw, "bgctl_build_id", jstr(id));
		jset(*out, "switch", sw);
	}
	{
		/* what the program enforces, fixed when the pinned state was created */
		struct bgs_meta meta;

		bgs_get_meta(g.h, &meta);
		jset(*out, "timeouts", timeouts_json(&meta.timeouts));
	}
out:
	flow_tally_free(&t);
	free(all);
	return err;
}

int do_status(int argc, char **argv)
{
	unsigned long long interval_ms = 1000;
	struct sigaction sa = { .sa_handler = on_signal };
	bool watch = false, flows = false;
	const char *name = NULL;
	json_object *prev = NULL, *cur = NULL;
	__u32 count = 0;
	int c, err;

	while ((c = opt_next(argc, argv, &status_spec, &help_status)) != -1) {
		switch (c) {
		case 'w':
		case O_WATCH:
			watch = true;
			err = 0;
			break;
		case O_FLOWS:
			flows = true;
			err = 0;
			break;
		case O_INTERVAL:
			err = parse_duration(optarg, "--interval", &interval_ms, false);
			if (!err && interval_ms < 100)
				err = usage_fail("bad --interval '%s': at least 100ms", optarg);
			break;
		case O_COUNT:
			err = parse_u32(optarg, "--count", 1000000, &count);
			break;
		default:
			return -EINVAL;
		}
		if (err)
			return err;
	}
	err = opt_optional_name(argc, argv, "status", &name);
	if (err)
		return err;
	err = open_state();
	if (err)
		return err;
	if (!watch)
		return status_once(name, flows, &g.out);

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (__u32 round = 0; !stop && (!count || round < count); round++) {
		struct timespec ts;
		char tbuf[32];
		time_t now;

		err = status_once(name, flows, &cur);
		if (err)
			break;
		rates_all(cur, prev, (double)interval_ms / 1000);
		jset(cur, "interval_s", json_object_new_double((double)interval_ms / 1000));
		now = time(NULL);
		strftime(tbuf, sizeof(tbuf), "%H:%M:%S", localtime(&now));
		jset(cur, "time", jstr(tbuf));
		if (g.json) {
			jprint(cur, stdout);
		} else {
			printf("\033[H\033[2J");
			printf("bgctl status%s%s   every %.1fs   %s   (Ctrl-C to stop)\n\n",
			       name ? " " : "", name ? name : "", (double)interval_ms / 1000, tbuf);
			render_status(cur);
			fflush(stdout);
		}
		json_object_put(prev);
		prev = cur;
		cur = NULL;
		if (count && round + 1 >= count)
			break;
		ts.tv_sec = (time_t)(interval_ms / 1000);
		ts.tv_nsec = (long)(interval_ms % 1000) * 1000000;
		nanosleep(&ts, NULL);
	}
	json_object_put(prev);
	return err;
}

/* ---- conntrack ---- */

struct ct_arg {
	__s64 svc_id; /* -1: all */
	int color;
	bool have_be;
	struct bgs_ip be_ip;
	__u16 be_port;
	bool all;
	__u64 limit, matched, listed;
	__u64 now;
	__u32 hz;
	json_object *arr;
};

static const char *tcp_state_name(const struct bgs_flow_key *k, const struct bgs_flow *f)
{
	if (k->proto != IPPROTO_TCP)
		return "-";
	if (f->tcp_state & BGS_TCP_RST)
		return "rst";
	if (f->tcp_state & BGS_TCP_FIN)
		return "fin";
	if (f->tcp_state & BGS_TCP_EST)
		return "est";
	return "syn";
}

static int ct_cb(const struct bgs_flow_key *k, const struct bgs_flow *f, int verdict,
		 const struct bgs_backend *be, void *p)
{
	struct ct_arg *a = p;
	struct bgs_ip ip;
	json_object *o;
	char buf[80];
	bool alive;

	if (a->svc_id >= 0 && f->svc_id != (__u32)a->svc_id)
		return 0;
	if (a->color != BGS_ANY_COLOR && f->color != a->color)
		return 0;
	if (be && !bgs_backend_in_use(be))
		be = NULL;
	if (a->have_be && (!be || be->family != a->be_ip.family ||
			   memcmp(be->addr, a->be_ip.addr, sizeof(be->addr)) ||
			   (a->be_port && ntohs(be->port) != a->be_port)))
		return 0;
	/* The program's own rule (the library compiles bgswitch_flow.h). */
	alive = verdict == BGS_FLOW_LIVE;
	if (!alive && !a->all)
		return 0;
	a->matched++;
	if (a->limit && a->listed >= a->limit)
		return 0;
	a->listed++;
	o = json_object_new_object();
	ip_from_words(&ip, k->family, k->src);
	jset(o, "client", jstr(addr_port_str(&ip, ntohs(k->sport), buf, sizeof(buf))));
	ip_from_words(&ip, k->family, k->dst);
	jset(o, "vip", jstr(addr_port_str(&ip, ntohs(k->dport), buf, sizeof(buf))));
	jset(o, "proto", jstr(proto_name(k->proto)));
	jset(o, "svc_id", jint(f->svc_id));
	jset(o, "color", jstr(color_name(f->color)));
	jset(o, "backend_id", jint(f->backend_id));
	if (be) {
		ip_from_words(&ip, be->family, be->addr);
		jset(o, "backend", jstr(addr_port_str(&ip, ntohs(be->port), buf, sizeof(buf))));
	} else {
		jset(o, "backend", NULL);
	}
	jset(o, "generation", jint(f->gen));
	jset(o, "state", jstr(tcp_state_name(k, f)));
	jset(o, "idle_s",
	     json_object_new_double(a->now > f->last_seen ? (double)(a->now - f->last_seen) / a->hz
							  : 0));
	jset(o, "alive", jbool(alive));
	jset(o, "verdict", jstr(bgs_flow_verdict_name(verdict)));
	json_object_array_add(a->arr, o);
	return 0;
}

void render_conntrack(json_object *out)
{
	json_object *arr = jget(out, "flows");
	size_t n = arr ? json_object_array_length(arr) : 0;

	printf("%-44s %-28s %-4s %-6s %-28s %-4s %6s %7s\n", "CLIENT", "VIP", "PROTO", "COLOR",
	       "BACKEND", "STATE", "GEN", "IDLE");
	for (size_t i = 0; i < n; i++) {
		json_object *f = json_object_array_get_idx(arr, i);

		printf("%-44s %-28s %-5s %-6s %-28s %-4s %6lld %6.1fs%s\n", jgets(f, "client"),
		       jgets(f, "vip"), jgets(f, "proto"), jgets(f, "color"),
		       jget(f, "backend") ? jgets(f, "backend") : "(gone)", jgets(f, "state"),
		       jgeti(f, "generation"), jgetd(f, "idle_s"),
		       jgetb(f, "alive") ? "" : " dead");
	}
	printf("%lld flow%s matched", jgeti(out, "matched"), jgeti(out, "matched") == 1 ? "" : "s");
	if (jgeti(out, "matched") > (long long)n)
		printf(", %zu listed (raise --limit)", n);
	printf("\n");
}

int do_conntrack(int argc, char **argv)
{
	struct ct_arg a = { .svc_id = -1, .color = BGS_ANY_COLOR, .limit = 1000 };
	const char *name = NULL;
	__u32 svc_id;
	int c, err;

	while ((c = opt_next(argc, argv, &conntrack_spec, &help_conntrack)) != -1) {
		switch (c) {
		case O_COLOR:
			err = parse_color(optarg, &a.color);
			break;
		case O_BACKEND:
			a.have_be = true;
			err = parse_addr_port(optarg, &a.be_ip, &a.be_port);
			break;
		case O_LIMIT:
			err = parse_u64(optarg, "--limit", 100000000ULL, &a.limit);
			break;
		case O_ALL:
			a.all = true;
			err = 0;
			break;
		default:
			return -EINVAL;
		}
		if (err)
			return err;
	}
	err = opt_optional_name(argc, argv, "conntrack", &name);
	if (err)
		return err;
	err = open_state();
	if (!err && name) {
		err = resolve_service(name, &svc_id);
		a.svc_id = svc_id;
	}
	if (err)
		return err;
	a.arr = json_object_new_array();
	err = bgs_flow_walk_verdict(g.h, ct_cb, &a, &a.now, &a.hz);
	if (err < 0) {
		json_object_put(a.arr);
		return lib_fail(err, "walk conntrack");
	}
	g.out = json_object_new_object();
	jset(g.out, "flows", a.arr);
	jset(g.out, "matched", jint((long long)a.matched));
	jset(g.out, "listed", jint((long long)a.listed));
	return 0;
}

/* ---- history ---- */

static void summarize(json_object *r)
{
	const char *verb = jgets(r, "verb");
	char buf[256] = "";

	if (!strcmp(verb, "flip") || !strcmp(verb, "rollback")) {
		snprintf(buf, sizeof(buf), "%s -> %s%s", jgets(r, "from"), jgets(r, "to"),
			 jget(r, "changed") && !jgetb(r, "changed") ? " (no change)" : "");
	} else if (!strcmp(verb, "canary")) {
		snprintf(buf, sizeof(buf), "%s -> %s%s", jgets(r, "from"), jgets(r, "to"),
			 jgetb(r, "sticky") ? " sticky" : "");
	} else if (!strcmp(verb, "backend add")) {
		snprintf(buf, sizeof(buf), "+%s %s w%lld", jgets(r, "color"), jgets(r, "backend"),
			 jgeti(r, "weight"));
	} else if (!strcmp(verb, "backend del")) {
		snprintf(buf, sizeof(buf), "-%s %s", jgets(r, "color"), jgets(r, "backend"));
	} else if (!strcmp(verb, "backend set")) {
		snprintf(buf, sizeof(buf), "%s %s%s%s%s", jgets(r, "backend"), jgets(r, "from"),
			 jget(r, "to") ? " -> " : "", jgets(r, "to"),
			 jget(r, "health_to") ? " (health set)" : "");
	} else if (!strncmp(verb, "preview", 7)) {
		snprintf(buf, sizeof(buf), "%s%s", strcmp(verb, "preview add") ? "-" : "+",
			 jgets(r, "prefix"));
	} else if (!strcmp(verb, "service add")) {
		snprintf(buf, sizeof(buf), "%s/%s %s", jgets(r, "vip"), jgets(r, "proto"),
			 jgets(r, "mode"));
	} else if (!strcmp(verb, "drain kill")) {
		snprintf(buf, sizeof(buf), "%s: %lld flows ended", jgets(r, "color"),
			 jgeti(r, "flows_killed"));
	} else if (!strcmp(verb, "attach") || !strcmp(verb, "detach")) {
		snprintf(buf, sizeof(buf), "%s", jgets(r, "interface"));
	}
	jset(r, "summary", jstr(buf));
}

void render_history(json_object *out)
{
	json_object *arr = jget(out, "records");
	size_t n = arr ? json_object_array_length(arr) : 0;

	if (!n) {
		printf("no history in %s\n", jgets(out, "file"));
		return;
	}
	printf("%-23s %-10s %-12s %-12s %-34s %5s %-11s %s\n", "TIME (UTC)", "USER", "VERB",
	       "SERVICE", "CHANGE", "GEN", "STATUS", "REASON");
	for (size_t i = 0; i < n; i++) {
		json_object *r = json_object_array_get_idx(arr, i);

		printf("%-23s %-10s %-12s %-12s %-34s %5s %-11s %s\n", jgets(r, "time"),
		       jgets(r, "user"), jgets(r, "verb"), jgets(r, "service"), jgets(r, "summary"),
		       jget(r, "generation") ? jgets(r, "generation") : "-", jgets(r, "status"),
		       jgets(r, "reason"));
	}
}

int do_history(int argc, char **argv)
{
	unsigned long long limit = 0;
	const char *name = NULL;
	json_object *recs, *byid, *outarr;
	char *line = NULL;
	size_t cap = 0;
	bool all = false;
	size_t n, start;
	long long bad = 0;
	FILE *f;
	int c, err;

	while ((c = opt_next(argc, argv, &history_spec, &help_history)) != -1) {
		switch (c) {
		case O_LIMIT:
			err = parse_u64(optarg, "--limit", 100000000ULL, &limit);
			break;
		case O_ALL:
			all = true;
			err = 0;
			break;
		default:
			return -EINVAL;
		}
		if (err)
			return err;
	}
	err = opt_optional_name(argc, argv, "history", &name);
	if (err)
		return err;
	g.out = json_object_new_object();
	jset(g.out, "file", jstr(g.history_file));
	f = fopen(g.history_file, "re");
	if (!f) {
		if (errno != ENOENT)
			return fail(-errno, 0, "cannot read history file %s: %s", g.history_file,
				    strerror(errno));
		jset(g.out, "records", json_object_new_array());
		return 0;
	}
	/* One entry per change id, in order of its intent; the outcome overrides the intent. */
	recs = json_object_new_array();
	byid = json_object_new_object();
	while (getline(&line, &cap, f) > 0) {
		json_object *r = json_tokener_parse(line), *old;
		const char *id, *phase;

		if (!r || !json_object_is_type(r, json_type_object)) {
			json_object_put(r);
			bad++;
			continue;
		}
		id = jgets(r, "id");
		phase = jgets(r, "phase");
		if (name && strcmp(jgets(r, "service"), name)) {
			json_object_put(r);
			continue;
		}
		old = jget(byid, id);
		if (old && strcmp(phase, "intent")) {
			json_object_object_foreach (r, k, v)
				jset(old, k, json_object_get(v));
			jset(old, "status", jstr(!strcmp(phase, "done") ? "done" : "failed"));
			json_object_put(r);
		} else {
			jset(r, "status",
			     jstr(!strcmp(phase, "intent") ? "unconfirmed"
				  : !strcmp(phase, "done") ? "done"
							   : "failed"));
			json_object_array_add(recs, r);
			jset(byid, id, json_object_get(r));
		}
	}
	free(line);
	fclose(f);
	outarr = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(recs); i++) {
		json_object *r = json_object_array_get_idx(recs, i);

		if (!all && !strcmp(jgets(r, "status"), "failed"))
			continue;
		json_object_object_del(r, "phase");
		summarize(r);
		json_object_array_add(outarr, json_object_get(r));
	}
	n = json_object_array_length(outarr);
	start = limit && n > limit ? n - limit : 0;
	if (start) {
		json_object *tail = json_object_new_array();

		for (size_t i = start; i < n; i++)
			json_object_array_add(
				tail, json_object_get(json_object_array_get_idx(outarr, i)));
		json_object_put(outarr);
		outarr = tail;
	}
	json_object_put(recs);
	json_object_put(byid);
	jset(g.out, "records", outarr);
	if (bad)
		jset(g.out, "unreadable_lines", jint(bad));
	return 0;
}
