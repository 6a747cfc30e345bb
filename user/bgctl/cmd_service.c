// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* bgctl service, backend and preview: the configuration verbs. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "bgctl.h"

enum { O_VIP = 1, O_MODE, O_PPORT };

static const struct verb_opt svc_add_opts[] = {
	{ "vip", O_VIP, 0, "ADDR:PORT[/tcp|/udp]", "the virtual service (required)" },
	{ "mode", O_MODE, 0, "nat|dsr", "how backends are reached (default nat)" },
	{ "preview-port", O_PPORT, 0, "PORT", "nat only: a VIP port that reaches the idle color" },
	{ NULL },
};

static const struct verb_opt svc_set_opts[] = {
	{ "preview-port", 'P', 0, "PORT|none", "nat only: a VIP port that reaches the idle color" },
	{ "mode", 'M', 0, "nat|dsr", "only where safe: both pools empty; to dsr: no preview port" },
	{ NULL },
};

static const struct verb_spec svc_add_spec = { "service add", "NAME", svc_add_opts };
static const struct verb_spec svc_del_spec = { "service del", "NAME", NULL };
static const struct verb_spec svc_set_spec = { "service set", "NAME", svc_set_opts };
static const struct verb_spec svc_list_spec = { "service list", "", NULL };

const struct verb_help help_service = {
	(const struct verb_spec *const[]){ &svc_add_spec, &svc_del_spec, &svc_set_spec,
					   &svc_list_spec, NULL },
	"NAME: 1-31 characters of A-Z a-z 0-9 _ . -. The protocol defaults to tcp, the mode to\n"
	"nat. A new service has empty pools, blue live, generation 1. The preview port (nat\n"
	"only) is a second port on the VIP whose new flows always reach the idle color.\n"
	"Deleting a service removes its backends, previews and tables; its flows end. set\n"
	"changes the preview port in place: the service, its pools and its flows stay. set\n"
	"--mode changes the mode in place where that is safe: both pools empty (a backend's\n"
	"addressing and its flows are made for one mode) and, to dsr, no preview port; else\n"
	"it is refused (exit 4). One of --preview-port and --mode per run.\n",
};

static const struct verb_opt be_add_opts[] = {
	{ "weight", 'w', 'w', "W", "1-65535 (default 100)" },
	{ NULL },
};

static const struct verb_opt be_set_opts[] = {
	{ "state", 's', 's', "up|down|drain", "the operator's admin state" },
	{ "health", 'H', 0, "up|down", "the health the agent normally owns" },
	{ NULL },
};

static const struct verb_spec be_add_spec = { "backend add", "NAME blue|green ADDR[:PORT]",
					      be_add_opts };
static const struct verb_spec be_del_spec = { "backend del", "NAME [blue|green] ADDR[:PORT]",
					      NULL };
static const struct verb_spec be_set_spec = { "backend set", "NAME [blue|green] ADDR[:PORT]",
					      be_set_opts };
static const struct verb_spec be_list_spec = { "backend list", "NAME [blue|green]", NULL };
static const struct verb_spec be_resolve_spec = { "backend resolve", "[NAME]", NULL };

const struct verb_help help_backend = {
	(const struct verb_spec *const[]){ &be_add_spec, &be_del_spec, &be_set_spec,
					   &be_list_spec, &be_resolve_spec, NULL },
	"PORT defaults to the VIP's port (required equal to it in dsr). --state drain keeps the\n"
	"backend's flows but sends it no new ones; down re-chooses its flows too. --health is\n"
	"for use without the agent. Every pool change rebuilds the pool's Maglev table in its\n"
	"unused slot and publishes it atomically. resolve looks up the next hop (route and\n"
	"neighbour) of every backend (of NAME) again and updates the ones that changed in\n"
	"place; a backend without one is not usable.\n",
};

static const struct verb_spec preview_change_spec = { "preview", "NAME add|del PREFIX", NULL };
static const struct verb_spec preview_list_spec = { "preview", "NAME list", NULL };

const struct verb_help help_preview = {
	(const struct verb_spec *const[]){ &preview_change_spec, &preview_list_spec, NULL },
	"New flows from a source inside a preview prefix (IPv4 or IPv6, e.g. 10.0.2.0/24,\n"
	"2001:db8::/64) go to the idle color, whatever the canary.\n",
};

/* ---- service ---- */

static void render_service_list(json_object *out)
{
	json_object *arr = jget(out, "services");
	size_t n = arr ? json_object_array_length(arr) : 0;

	if (!n) {
		printf("no services (add one with: bgctl service add NAME --vip ADDR:PORT)\n");
		return;
	}
	printf("%-16s %4s %-28s %-4s %-4s %-6s %6s %8s %5s %5s\n", "NAME", "ID", "VIP", "PROTO",
	       "MODE", "LIVE", "GEN", "CANARY", "BLUE", "GREEN");
	for (size_t i = 0; i < n; i++) {
		json_object *s = json_object_array_get_idx(arr, i), *pools = jget(s, "pools");

		printf("%-16s %4lld %-28s %-5s %-4s %-6s %6lld %8s %5zu %5zu\n", jgets(s, "name"),
		       jgeti(s, "id"), jgets(s, "vip"), jgets(s, "proto"), jgets(s, "mode"),
		       jgets(s, "live"), jgeti(s, "generation"), jgets(s, "canary"),
		       json_object_array_length(jget(jget(pools, "blue"), "backends")),
		       json_object_array_length(jget(jget(pools, "green"), "backends")));
	}
}

struct svc_add_arg {
	struct bgs_service_spec spec;
	__u32 svc_id;
};

static int apply_service_add(void *p, json_object *done)
{
	struct svc_add_arg *a = p;
	int err = bgs_service_add(g.h, &a->spec, &a->svc_id);

	if (err)
		return lib_fail(err, "add service");
	jset(done, "svc_id", jint(a->svc_id));
	jset(done, "generation", jint(1));
	return 0;
}

static int service_add(int argc, char **argv)
{
	struct svc_add_arg a = {};
	const char *vip = NULL;
	json_object *det;
	char msg[256], vbuf[80];
	__u32 existing;
	int c, err;

	a.spec.mode = BGS_MODE_NAT;
	while ((c = opt_next(argc, argv, &svc_add_spec, &help_service)) != -1) {
		switch (c) {
		case O_VIP:
			vip = optarg;
			err = parse_vip(optarg, &a.spec.vip, &a.spec.port, &a.spec.proto);
			break;
		case O_MODE:
			err = 0;
			if (strcmp(optarg, "nat") == 0)
				a.spec.mode = BGS_MODE_NAT;
			else if (strcmp(optarg, "dsr") == 0)
				a.spec.mode = BGS_MODE_DSR;
			else
				err = usage_fail("bad --mode '%s': expected nat or dsr", optarg);
			break;
		case O_PPORT:
			err = parse_port(optarg, "--preview-port", &a.spec.preview_port);
			break;
		default:
			return -EINVAL;
		}
		if (err)
			return err;
	}
	if (argc - opt_done() != 1)
		return usage_fail("bgctl service add needs exactly one NAME (see bgctl service "
				  "--help)");
	a.spec.name = argv[opt_done()];
	err = parse_name(a.spec.name);
	if (err)
		return err;
	if (!vip)
		return usage_fail("bgctl service add %s needs --vip ADDR:PORT[/tcp|/udp]",
				  a.spec.name);
	if (a.spec.preview_port && a.spec.mode == BGS_MODE_DSR)
		return usage_fail("--preview-port is for nat services only: in dsr the backend "
				  "port must equal the VIP port");
	if (a.spec.preview_port == a.spec.port)
		return usage_fail("--preview-port %u is the VIP port itself: pick another port",
				  a.spec.preview_port);
	err = open_state();
	if (err)
		return err;
	if (bgs_service_find(g.h, a.spec.name, &existing) == 0)
		return fail(-EEXIST, EXIT_CONFLICT, "a service named '%s' already exists",
			    a.spec.name);

	addr_port_str(&a.spec.vip, a.spec.port, vbuf, sizeof(vbuf));
	det = json_object_new_object();
	jset(det, "vip", jstr(vbuf));
	jset(det, "proto", jstr(proto_name(a.spec.proto)));
	jset(det, "mode", jstr(mode_name(a.spec.mode)));
	if (a.spec.preview_port)
		jset(det, "preview_port", jint(a.spec.preview_port));
	err = run_change("service add", a.spec.name, det, apply_service_add, &a);
	json_object_put(det);
	if (err)
		return err;
	g.out = service_json(a.svc_id, false, NULL);
	if (!g.out)
		g.out = json_object_new_object();
	snprintf(msg, sizeof(msg), "added service %s: %s/%s, %s, blue live (id %u)", a.spec.name,
		 vbuf, proto_name(a.spec.proto), mode_name(a.spec.mode), a.svc_id);
	jset(g.out, "message", jstr(msg));
	return 0;
}

struct svc_del_arg {
	__u32 svc_id;
};

static int apply_service_del(void *p, json_object *done)
{
	struct svc_del_arg *a = p;
	int err = bgs_service_del(g.h, a->svc_id);

	(void)done;
	return err ? lib_fail(err, "delete service") : 0;
}

static int service_del(int argc, char **argv)
{
	struct svc_del_arg a;
	const char *name;
	char msg[128];
	int c, err;

	while ((c = opt_next(argc, argv, &svc_del_spec, &help_service)) != -1)
		return -EINVAL;
	if (argc - opt_done() != 1)
		return usage_fail("bgctl service del needs exactly one NAME");
	name = argv[opt_done()];
	err = parse_name(name);
	if (err)
		return err;
	err = open_state();
	if (err)
		return err;
	err = resolve_service(name, &a.svc_id);
	if (err)
		return err;
	err = run_change("service del", name, NULL, apply_service_del, &a);
	if (err)
		return err;
	g.out = json_object_new_object();
	jset(g.out, "name", jstr(name));
	jset(g.out, "deleted", jbool(true));
	snprintf(msg, sizeof(msg), "deleted service %s", name);
	jset(g.out, "message", jstr(msg));
	return 0;
}

static int service_list(int argc, char **argv)
{
	struct bgs_meta meta;
	json_object *arr;
	__u32 *ids;
	int c, n, err;

	while ((c = opt_next(argc, argv, &svc_list_spec, &help_service)) != -1)
		return -EINVAL;
	if (argc != opt_done())
		return usage_fail("bgctl service list takes no arguments, got '%s'",
				  argv[opt_done()]);
	err = open_state();
	if (err)
		return err;
	/* Room for every service the state can hold (up to 65536). */
	bgs_get_meta(g.h, &meta);
	ids = calloc(meta.max_services, sizeof(*ids));
	if (!ids)
		return fail(-ENOMEM, EXIT_OTHER, "out of memory");
	n = bgs_service_list(g.h, ids, meta.max_services);
	if (n < 0) {
		free(ids);
		return lib_fail(n, "list services");
	}
	err = backend_snapshot();
	if (err) {
		free(ids);
		return err;
	}
	arr = json_object_new_array();
	for (int i = 0; i < n && (__u32)i < meta.max_services; i++) {
		json_object *s = service_json(ids[i], false, NULL);

		if (s)
			json_object_array_add(arr, s);
	}
	free(ids);
	g.out = json_object_new_object();
	jset(g.out, "services", arr);
	return 0;
}

struct svc_set_arg {
	__u32 svc_id;
	bool set_mode; /* else the preview port */
	__u8 mode;
	__u16 preview_port;
};

static int apply_service_set(void *p, json_object *done)
{
	struct svc_set_arg *a = p;
	int err;

	(void)done;
	if (a->set_mode) {
		err = bgs_service_set_mode(g.h, a->svc_id, a->mode);
		return err ? lib_fail(err, "set the mode") : 0;
	}
	err = bgs_service_set_preview_port(g.h, a->svc_id, a->preview_port);
	return err ? lib_fail(err, "set the preview port") : 0;
}

/* Options of service set into a; exactly one change. */
static int service_set_parse(int argc, char **argv, struct svc_set_arg *a)
{
	bool port = false;
	int c, err;

	while ((c = opt_next(argc, argv, &svc_set_spec, &help_service)) != -1) {
		if (c == 'M') {
			a->set_mode = true;
			if (!strcmp(optarg, "nat") || !strcmp(optarg, "dsr"))
				a->mode = strcmp(optarg, "nat") ? BGS_MODE_DSR : BGS_MODE_NAT;
			else
				return usage_fail("bad --mode '%s': expected nat or dsr", optarg);
			continue;
		}
		if (c != 'P')
			return -EINVAL;
		port = true;
		a->preview_port = 0;
		err = strcmp(optarg, "none") ? parse_port(optarg, "--preview-port",
							   &a->preview_port) : 0;
		if (err)
			return err;
	}
	if (argc - opt_done() != 1)
		return usage_fail("bgctl service set needs exactly one service NAME");
	if (port == a->set_mode)
		return usage_fail("bgctl service set needs one of --preview-port PORT|none and "
				  "--mode nat|dsr (one change per run)");
	return parse_name(argv[opt_done()]);
}

static int service_set(int argc, char **argv)
{
	struct svc_set_arg a = {};
	const char *name;
	json_object *det;
	char msg[160];
	int err;

	err = service_set_parse(argc, argv, &a);
	if (err)
		return err;
	name = argv[opt_done()];
	err = open_state();
	if (!err)
		err = resolve_service(name, &a.svc_id);
	if (err)
		return err;
	det = json_object_new_object();
	if (a.set_mode)
		jset(det, "mode", jstr(mode_name(a.mode)));
	else
		jset(det, "preview_port", a.preview_port ? jint(a.preview_port) : NULL);
	err = run_change("service set", name, det, apply_service_set, &a);
	json_object_put(det);
	if (err)
		return err;
	g.out = json_object_new_object();
	jset(g.out, "service", jstr(name));
	if (a.set_mode) {
		jset(g.out, "mode", jstr(mode_name(a.mode)));
		snprintf(msg, sizeof(msg), "%s: mode %s", name, mode_name(a.mode));
	} else {
		jset(g.out, "preview_port", a.preview_port ? jint(a.preview_port) : NULL);
		if (a.preview_port)
			snprintf(msg, sizeof(msg), "%s: preview port %u", name, a.preview_port);
		else
			snprintf(msg, sizeof(msg), "%s: no preview port", name);
	}
	jset(g.out, "message", jstr(msg));
	return 0;
}

static const struct cmd service_cmds[] = {
	{ "add", service_add, render_message, &help_service },
	{ "del", service_del, render_message, &help_service },
	{ "delete", service_del, render_message, &help_service },
	{ "set", service_set, render_message, &help_service },
	{ "list", service_list, render_service_list, &help_service },
	{ "show", service_list, render_service_list, &help_service },
	{ NULL },
};

int do_service(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		print_help(&help_service, stdout);
		exit(EXIT_OK);
	}
	return dispatch(service_cmds, "service", argc - 1, argv + 1);
}

/* ---- backend ---- */

/* Positional "NAME [COLOR] ADDR[:PORT]" of backend del/set. */
struct be_ref {
	const char *name;
	int color; /* BGS_ANY_COLOR when not given */
	struct bgs_ip ip;
	__u16 port;
	const char *addr_arg;
	__u32 svc_id;
	__u32 backend_id;
	struct bgs_backend be;
};

static int parse_be_ref(int argc, char **argv, const char *verb, struct be_ref *r)
{
	int pos = opt_done(), n = argc - pos, err;

	r->color = BGS_ANY_COLOR;
	if (n != 2 && n != 3)
		return usage_fail("bgctl backend %s needs NAME [blue|green] ADDR[:PORT] (see bgctl "
				  "backend --help)",
				  verb);
	r->name = argv[pos];
	err = parse_name(r->name);
	if (err)
		return err;
	if (n == 3) {
		err = parse_color(argv[pos + 1], &r->color);
		if (err)
			return err;
	}
	r->addr_arg = argv[pos + n - 1];
	return parse_addr_port(r->addr_arg, &r->ip, &r->port);
}

static int find_be_ref(struct be_ref *r)
{
	int err;

	err = open_state();
	if (err)
		return err;
	err = resolve_service(r->name, &r->svc_id);
	if (err)
		return err;
	err = bgs_backend_find(g.h, r->svc_id, &r->ip, r->port, &r->backend_id);
	if (err == -ENOENT)
		return fail(err, EXIT_NOTFOUND, "service %s has no backend %s", r->name,
			    r->addr_arg);
	if (err)
		return lib_fail(err, "find backend");
	err = bgs_backend_get(g.h, r->backend_id, &r->be);
	if (err)
		return lib_fail(err, "read backend");
	if (r->color != BGS_ANY_COLOR && r->be.color != r->color)
		return fail(-ENOENT, EXIT_NOTFOUND,
			    "backend %s of service %s is in the %s pool, "
			    "not %s",
			    r->addr_arg, r->name, color_name(r->be.color), color_name(r->color));
	return 0;
}

static __u32 current_gen(__u32 svc_id)
{
	struct bgs_service svc;
	struct bgs_flip flip;

	if (bgs_service_get(g.h, svc_id, &svc, &flip))
		return 0;
	return bgs_flip_gen(&flip);
}

struct be_add_arg {
	__u32 svc_id;
	int color;
	struct bgs_backend_spec spec;
	__u32 backend_id;
};

static int apply_backend_add(void *p, json_object *done)
{
	struct be_add_arg *a = p;
	int err = bgs_backend_add(g.h, a->svc_id, (__u32)a->color, &a->spec, &a->backend_id);

	if (err)
		return lib_fail(err, "add backend");
	jset(done, "backend_id", jint(a->backend_id));
	jset(done, "generation", jint(current_gen(a->svc_id)));
	return 0;
}

static int backend_add(int argc, char **argv)
{
	struct be_add_arg a = {};
	struct bgs_service svc;
	struct bgs_flip flip;
	struct bgs_backend be;
	const char *name;
	json_object *det;
	char msg[256], abuf[80];
	int c, err, pos;

	while ((c = opt_next(argc, argv, &be_add_spec, &help_backend)) != -1) {
		switch (c) {
		case 'w':
			err = parse_u32(optarg, "--weight", BGS_MAX_WEIGHT, &a.spec.weight);
			if (!err && a.spec.weight == 0)
				err = usage_fail("bad --weight '0': expected 1 to %d",
						 BGS_MAX_WEIGHT);
			if (err)
				return err;
			break;
		default:
			return -EINVAL;
		}
	}
	pos = opt_done();
	if (argc - pos != 3)
		return usage_fail("bgctl backend add needs NAME blue|green ADDR[:PORT] (see bgctl "
				  "backend --help)");
	name = argv[pos];
	err = parse_name(name);
	if (!err)
		err = parse_color(argv[pos + 1], &a.color);
	if (!err)
		err = parse_addr_port(argv[pos + 2], &a.spec.addr, &a.spec.port);
	if (err)
		return err;
	if (!a.spec.weight)
		a.spec.weight = 100;
	err = open_state();
	if (err)
		return err;
	err = resolve_service(name, &a.svc_id);
	if (err)
		return err;
	err = bgs_service_get(g.h, a.svc_id, &svc, &flip);
	if (err)
		return lib_fail(err, "read service");
	if (a.spec.addr.family != svc.family)
		return usage_fail("backend %s is IPv%d but service %s's VIP is IPv%d",
				  argv[pos + 2], a.spec.addr.family, name, svc.family);
	if (svc.mode == BGS_MODE_DSR && a.spec.port && a.spec.port != ntohs(svc.port))
		return usage_fail("service %s is dsr: the backend port must equal the VIP port %u, "
				  "got %u",
				  name, ntohs(svc.port), a.spec.port);
	if (!a.spec.port)
		a.spec.port = ntohs(svc.port);
	if (bgs_backend_find(g.h, a.svc_id, &a.spec.addr, a.spec.port, &a.backend_id) == 0 &&
	    bgs_backend_get(g.h, a.backend_id, &be) == 0)
		return fail(-EEXIST, EXIT_CONFLICT,
			    "service %s already has backend %s (in the %s "
			    "pool)",
			    name, argv[pos + 2], color_name(be.color));

	addr_port_str(&a.spec.addr, a.spec.port, abuf, sizeof(abuf));
	det = json_object_new_object();
	jset(det, "color", jstr(color_name(a.color)));
	jset(det, "backend", jstr(abuf));
	jset(det, "weight", jint(a.spec.weight));
	err = run_change("backend add", name, det, apply_backend_add, &a);
	json_object_put(det);
	if (err)
		return err;
	g.out = json_object_new_object();
	if (bgs_backend_get(g.h, a.backend_id, &be) == 0) {
		json_object *b = backend_json(a.backend_id, &be, false, NULL);

		json_object_object_foreach (b, k, v)
			jset(g.out, k, json_object_get(v));
		json_object_put(b);
		if (!bgs_backend_resolved(&be))
			jset(g.out, "warning", jstr("next hop not resolved yet"));
	}
	jset(g.out, "service", jstr(name));
	jset(g.out, "generation", jint(current_gen(a.svc_id)));
	snprintf(msg, sizeof(msg), "%s: added %s to %s (id %u, weight %u), generation %u%s", name,
		 abuf, color_name(a.color), a.backend_id, a.spec.weight, current_gen(a.svc_id),
		 jget(g.out, "warning") ? "; next hop not resolved yet" : "");
	jset(g.out, "message", jstr(msg));
	return 0;
}

static int apply_backend_del(void *p, json_object *done)
{
	struct be_ref *r = p;
	int err = bgs_backend_remove(g.h, r->backend_id, r->be.incarnation);

	if (err)
		return lib_fail(err, "delete backend");
	jset(done, "generation", jint(current_gen(r->svc_id)));
	return 0;
}

static int backend_del(int argc, char **argv)
{
	struct be_ref r = {};
	json_object *det;
	char msg[256];
	int c, err;

	while ((c = opt_next(argc, argv, &be_del_spec, &help_backend)) != -1)
		return -EINVAL;
	err = parse_be_ref(argc, argv, "del", &r);
	if (!err)
		err = find_be_ref(&r);
	if (err)
		return err;
	det = json_object_new_object();
	jset(det, "color", jstr(color_name(r.be.color)));
	jset(det, "backend", jstr(r.addr_arg));
	jset(det, "backend_id", jint(r.backend_id));
	err = run_change("backend del", r.name, det, apply_backend_del, &r);
	json_object_put(det);
	if (err)
		return err;
	g.out = json_object_new_object();
	jset(g.out, "service", jstr(r.name));
	jset(g.out, "backend", jstr(r.addr_arg));
	jset(g.out, "color", jstr(color_name(r.be.color)));
	jset(g.out, "deleted", jbool(true));
	jset(g.out, "generation", jint(current_gen(r.svc_id)));
	snprintf(msg, sizeof(msg), "%s: deleted %s from %s, generation %u", r.name, r.addr_arg,
		 color_name(r.be.color), current_gen(r.svc_id));
	jset(g.out, "message", jstr(msg));
	return 0;
}

struct be_set_arg {
	struct be_ref r;
	int admin;  /* -1: unchanged */
	int health; /* -1: unchanged */
};

static int apply_backend_set(void *p, json_object *done)
{
	struct be_set_arg *a = p;
	/* Both fields in one change: they apply together or not at all, on the backend that
	 * was found (its incarnation), not on one that took its id meanwhile. */
	struct bgs_backend_change c = {
		.id = a->r.backend_id,
		.incarnation = a->r.be.incarnation,
		.admin = a->admin >= 0 ? a->admin : BGS_KEEP,
		.health = a->health >= 0 ? a->health : BGS_KEEP,
	};
	int err = bgs_backend_set_state(g.h, &c, 1);

	if (err)
		return lib_fail(err, "set backend state");
	jset(done, "generation", jint(current_gen(a->r.svc_id)));
	return 0;
}

static int backend_set(int argc, char **argv)
{
	struct be_set_arg a = { .admin = -1, .health = -1 };
	json_object *det;
	char msg[256];
	int c, err;

	while ((c = opt_next(argc, argv, &be_set_spec, &help_backend)) != -1) {
		switch (c) {
		case 's':
			if (!strcmp(optarg, "up"))
				a.admin = BGS_ADMIN_UP;
			else if (!strcmp(optarg, "drain") || !strcmp(optarg, "draining"))
				a.admin = BGS_ADMIN_DRAIN;
			else if (!strcmp(optarg, "down"))
				a.admin = BGS_ADMIN_DOWN;
			else
				return usage_fail("bad --state '%s': expected up, down or drain",
						  optarg);
			break;
		case 'H':
			if (!strcmp(optarg, "up"))
				a.health = BGS_HEALTH_UP;
			else if (!strcmp(optarg, "down"))
				a.health = BGS_HEALTH_DOWN;
			else
				return usage_fail("bad --health '%s': expected up or down", optarg);
			break;
		default:
			return -EINVAL;
		}
	}
	err = parse_be_ref(argc, argv, "set", &a.r);
	if (err)
		return err;
	if (a.admin < 0 && a.health < 0)
		return usage_fail("bgctl backend set needs --state up|down|drain or --health "
				  "up|down");
	err = find_be_ref(&a.r);
	if (err)
		return err;
	det = json_object_new_object();
	jset(det, "backend", jstr(a.r.addr_arg));
	jset(det, "color", jstr(color_name(a.r.be.color)));
	if (a.admin >= 0) {
		jset(det, "from", jstr(admin_name(a.r.be.admin)));
		jset(det, "to", jstr(admin_name(a.admin)));
	}
	if (a.health >= 0) {
		jset(det, "health_from", jstr(health_name(a.r.be.health)));
		jset(det, "health_to", jstr(health_name(a.health)));
	}
	err = run_change("backend set", a.r.name, det, apply_backend_set, &a);
	json_object_put(det);
	if (err)
		return err;
	g.out = json_object_new_object();
	if (bgs_backend_get(g.h, a.r.backend_id, &a.r.be) == 0) {
		json_object *b = backend_json(a.r.backend_id, &a.r.be, false, NULL);

		json_object_object_foreach (b, k, v)
			jset(g.out, k, json_object_get(v));
		json_object_put(b);
	}
	jset(g.out, "service", jstr(a.r.name));
	jset(g.out, "generation", jint(current_gen(a.r.svc_id)));
	snprintf(msg, sizeof(msg), "%s: backend %s (%s) is now admin %s, health %s; generation %u",
		 a.r.name, a.r.addr_arg, color_name(a.r.be.color), admin_name(a.r.be.admin),
		 health_name(a.r.be.health), current_gen(a.r.svc_id));
	jset(g.out, "message", jstr(msg));
	return 0;
}

static void render_backend_list(json_object *out)
{
	json_object *arr = jget(out, "backends");
	size_t n = arr ? json_object_array_length(arr) : 0;

	if (!n) {
		printf("%s: no backends\n", jgets(out, "service"));
		return;
	}
	printf("%-6s %5s %-42s %6s %-6s %-6s %-7s\n", "COLOR", "ID", "ADDRESS", "WEIGHT", "ADMIN",
	       "HEALTH", "NEXTHOP");
	for (size_t i = 0; i < n; i++) {
		json_object *b = json_object_array_get_idx(arr, i);

		printf("%-6s %5lld %-42s %6lld %-6s %-6s %-7s\n", jgets(b, "color"), jgeti(b, "id"),
		       jgets(b, "address"), jgeti(b, "weight"), jgets(b, "admin"),
		       jgets(b, "health"), jgetb(b, "nexthop") ? "yes" : "no");
	}
}

static int backend_list(int argc, char **argv)
{
	__u32 svc_id, ids[BGS_MAX_POOL_BACKENDS];
	int color = BGS_ANY_COLOR, c, err, pos;
	json_object *arr;

	while ((c = opt_next(argc, argv, &be_list_spec, &help_backend)) != -1)
		return -EINVAL;
	pos = opt_done();
	if (argc - pos < 1 || argc - pos > 2)
		return usage_fail("bgctl backend list needs NAME [blue|green]");
	err = parse_name(argv[pos]);
	if (!err && argc - pos == 2)
		err = parse_color(argv[pos + 1], &color);
	if (err)
		return err;
	err = open_state();
	if (!err)
		err = resolve_service(argv[pos], &svc_id);
	if (err)
		return err;
	arr = json_object_new_array();
	for (int col = 0; col < BGS_NR_COLORS; col++) {
		int n;

		if (color != BGS_ANY_COLOR && col != color)
			continue;
		n = bgs_pool_list(g.h, svc_id, (__u32)col, ids, BGS_MAX_POOL_BACKENDS);
		for (int i = 0; i < n && i < BGS_MAX_POOL_BACKENDS; i++) {
			struct bgs_backend be;

			if (bgs_backend_get(g.h, ids[i], &be) == 0)
				json_object_array_add(arr, backend_json(ids[i], &be, true, NULL));
		}
	}
	g.out = json_object_new_object();
	jset(g.out, "service", jstr(argv[pos]));
	jset(g.out, "backends", arr);
	return 0;
}

struct resolve_arg {
	__u32 svc_id;
	struct bgs_resolve_result res;
};

static int apply_backend_resolve(void *p, json_object *done)
{
	struct resolve_arg *a = p;
	int err = bgs_backend_resolve(g.h, a->svc_id, &a->res);

	if (err)
		return lib_fail(err, "resolve next hops");
	jset(done, "changed", jint(a->res.changed));
	jset(done, "unresolved", jint(a->res.unresolved));
	return 0;
}

static int backend_resolve(int argc, char **argv)
{
	struct resolve_arg a = { .svc_id = BGS_ALL_SERVICES };
	const char *name;
	char msg[256];
	int c, err;

	while ((c = opt_next(argc, argv, &be_resolve_spec, &help_backend)) != -1)
		return -EINVAL;
	err = opt_optional_name(argc, argv, "backend resolve", &name);
	if (!err)
		err = open_state();
	if (!err && name)
		err = resolve_service(name, &a.svc_id);
	if (err)
		return err;
	err = run_change("backend resolve", name, NULL, apply_backend_resolve, &a);
	if (err)
		return err;
	g.out = json_object_new_object();
	if (name)
		jset(g.out, "service", jstr(name));
	jset(g.out, "checked", jint(a.res.checked));
	jset(g.out, "changed", jint(a.res.changed));
	jset(g.out, "unresolved", jint(a.res.unresolved));
	snprintf(msg, sizeof(msg), "%s%s%u backend%s checked, %u next hop%s changed (in place), "
		 "%u without a next hop%s",
		 name ? name : "", name ? ": " : "", a.res.checked, a.res.checked == 1 ? "" : "s",
		 a.res.changed, a.res.changed == 1 ? "" : "s", a.res.unresolved,
		 a.res.unresolved ? " (not usable: check their route and neighbour)" : "");
	jset(g.out, "message", jstr(msg));
	return 0;
}

static const struct cmd backend_cmds[] = {
	{ "add", backend_add, render_message, &help_backend },
	{ "del", backend_del, render_message, &help_backend },
	{ "delete", backend_del, render_message, &help_backend },
	{ "set", backend_set, render_message, &help_backend },
	{ "list", backend_list, render_backend_list, &help_backend },
	{ "show", backend_list, render_backend_list, &help_backend },
	{ "resolve", backend_resolve, render_message, &help_backend },
	{ NULL },
};

int do_backend(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		print_help(&help_backend, stdout);
		exit(EXIT_OK);
	}
	return dispatch(backend_cmds, "backend", argc - 1, argv + 1);
}

/* ---- preview ---- */

struct preview_arg {
	__u32 svc_id;
	struct bgs_prefix p;
	bool del;
};

static int apply_preview(void *p, json_object *done)
{
	struct preview_arg *a = p;
	int err = a->del ? bgs_preview_del(g.h, a->svc_id, &a->p)
			 : bgs_preview_add(g.h, a->svc_id, &a->p);

	(void)done;
	return err ? lib_fail(err, a->del ? "delete preview prefix" : "add preview prefix") : 0;
}

void render_preview(json_object *out)
{
	json_object *arr = jget(out, "preview");

	if (*jgets(out, "message")) {
		render_message(out);
		return;
	}
	if (!arr || !json_object_array_length(arr)) {
		printf("%s: no preview prefixes\n", jgets(out, "service"));
		return;
	}
	for (size_t i = 0; i < json_object_array_length(arr); i++)
		printf("%s\n", json_object_get_string(json_object_array_get_idx(arr, i)));
}

/* Every preview prefix of a service (the map holds up to 4096) in *list, malloc'ed; returns
 * how many (0 or less: none, *list NULL). */
static int preview_all(__u32 svc_id, struct bgs_prefix **list)
{
	int cap = bgs_preview_list(g.h, svc_id, NULL, 0), n;

	*list = cap > 0 ? calloc((size_t)cap, sizeof(**list)) : NULL;
	if (!*list)
		return 0;
	n = bgs_preview_list(g.h, svc_id, *list, (__u32)cap);
	return n < cap ? n : cap;
}

static const char *const preview_words[] = { "add", "del", "list", NULL };

static int preview_word(const char *s)
{
	for (int i = 0; preview_words[i]; i++)
		if (!strcmp(s, preview_words[i]) || (!strcmp(s, "delete") && i == 1))
			return i;
	return -1;
}

int do_preview(int argc, char **argv)
{
	struct preview_arg a = {};
	const char *name, *prefix = NULL;
	int c, err, pos, word, n;
	struct bgs_prefix *list;
	char buf[80], msg[256];
	json_object *arr, *det;

	while ((c = opt_next(argc, argv, &preview_change_spec, &help_preview)) != -1)
		return -EINVAL;
	pos = opt_done();
	n = argc - pos;
	if (n < 2 || n > 3)
		return usage_fail("bgctl preview needs NAME add|del PREFIX or NAME list (see "
				  "bgctl preview --help)");
	/* "NAME add PREFIX" (documented) or "add NAME PREFIX". */
	if (preview_word(argv[pos + 1]) >= 0) {
		name = argv[pos];
		word = preview_word(argv[pos + 1]);
	} else if (preview_word(argv[pos]) >= 0) {
		name = argv[pos + 1];
		word = preview_word(argv[pos]);
	} else {
		return usage_fail("bad preview action '%s': expected add, del or list",
				  argv[pos + 1]);
	}
	err = parse_name(name);
	if (err)
		return err;
	if (word == 2 && n != 2)
		return usage_fail("bgctl preview NAME list takes no prefix");
	if (word != 2) {
		if (n != 3)
			return usage_fail("bgctl preview NAME %s needs a PREFIX (e.g. 10.0.2.0/24)",
					  preview_words[word]);
		prefix = argv[pos + 2];
		err = parse_prefix(prefix, &a.p);
		if (err)
			return err;
	}
	err = open_state();
	if (!err)
		err = resolve_service(name, &a.svc_id);
	if (err)
		return err;
	g.out = json_object_new_object();
	jset(g.out, "service", jstr(name));
	if (word != 2) {
		struct bgs_service svc;
		struct bgs_flip flip;
		bool found = false;

		err = bgs_service_get(g.h, a.svc_id, &svc, &flip);
		if (err)
			return lib_fail(err, "read service");
		if (a.p.ip.family != svc.family)
			return usage_fail("prefix %s is IPv%d but service %s's VIP is IPv%d",
					  prefix, a.p.ip.family, name, svc.family);
		n = preview_all(a.svc_id, &list);
		for (int i = 0; i < n; i++)
			if (list[i].len == a.p.len && list[i].ip.family == a.p.ip.family &&
			    !memcmp(list[i].ip.addr, a.p.ip.addr, sizeof(a.p.ip.addr)))
				found = true;
		free(list);
		a.del = word == 1;
		if (a.del && !found)
			return fail(-ENOENT, EXIT_NOTFOUND, "service %s has no preview prefix %s",
				    name, prefix);
		if (!a.del && found)
			return fail(-EEXIST, EXIT_CONFLICT,
				    "service %s already has preview prefix %s", name, prefix);
		det = json_object_new_object();
		jset(det, "prefix", jstr(prefix_str(&a.p, buf, sizeof(buf))));
		err = run_change(a.del ? "preview del" : "preview add", name, det, apply_preview,
				 &a);
		json_object_put(det);
		if (err)
			return err;
		jset(g.out, "prefix", jstr(buf));
		jset(g.out, a.del ? "deleted" : "added", jbool(true));
		snprintf(msg, sizeof(msg),
			 a.del ? "%s: removed preview prefix %s"
			       : "%s: new flows from %s now reach the idle color (%s)",
			 name, buf, color_name(!bgs_flip_live(&flip)));
		jset(g.out, "message", jstr(msg));
	}
	arr = json_object_new_array();
	n = preview_all(a.svc_id, &list);
	for (int i = 0; i < n; i++)
		json_object_array_add(arr, jstr(prefix_str(&list[i], buf, sizeof(buf))));
	free(list);
	jset(g.out, "preview", arr);
	return 0;
}
