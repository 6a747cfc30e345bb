// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Applying the config to the pinned state. The agent owns what it applied: the state file
 * keeps, per service, a fingerprint of what the pins held right after the agent's last
 * change (VIP, mode, preview, backends with color and weight). At start and on SIGHUP:
 *
 *  - pins == what the agent applied: apply the config's difference (only what changed);
 *  - pins != what the agent applied (bgctl changed it by hand): drift, reported (log,
 *    status line, metric), not overwritten;
 *  - a service the agent never applied: created when absent, adopted when the pins already
 *    match the config, drift otherwise.
 *
 * Health and admin state and the flip word are not part of the fingerprint: flips, drains
 * and health belong to operators and checks, not to the config.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <systemd/sd-daemon.h>

#include "agent_priv.h"

#define MAX_IDS 4096

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Print a sorted list of strings as "[a,b,c]" and free them. */
static void put_sorted(FILE *f, char **items, unsigned int n)
{
	qsort(items, n, sizeof(*items), cmp_str);
	fputc('[', f);
	for (unsigned int i = 0; i < n; i++) {
		fprintf(f, "%s%s", i ? "," : "", items[i]);
		free(items[i]);
	}
	fputc(']', f);
}

static char *be_item(const struct bgs_ip *ip, __u16 port, __u32 weight)
{
	char a[64], *s = NULL;

	bgs_ip_str(ip, a, sizeof(a));
	if (asprintf(&s, "%s:%u*%u", a, port, weight) < 0)
		return NULL;
	return s;
}

static char *pfx_item(const struct bgs_prefix *p)
{
	char a[64], *s = NULL;

	bgs_ip_str(&p->ip, a, sizeof(a));
	if (asprintf(&s, "%s/%u", a, p->len) < 0)
		return NULL;
	return s;
}

static void put_head(FILE *f, const struct bgs_ip *vip, __u16 port, __u8 proto, __u8 mode,
		     __u16 pport)
{
	char a[64];

	bgs_ip_str(vip, a, sizeof(a));
	fprintf(f, "vip=%s:%u/%u mode=%u pport=%u", a, port, proto, mode, pport);
}

/* The fingerprint of what the config asks for. */
static char *cfg_fingerprint(const struct cfg_service *s)
{
	const struct cfg_backend *pools[2] = { s->pools.blue, s->pools.green };
	unsigned int counts[2] = { s->pools.blue_count, s->pools.green_count };
	char *buf = NULL, **items;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	unsigned int n;

	if (!f)
		return NULL;
	put_head(f, &s->spec.vip, s->spec.port, s->spec.proto, s->spec.mode,
		 s->spec.preview_port);
	n = s->preview ? s->preview->prefixes_count : 0;
	items = calloc(n + 1, sizeof(*items));
	for (unsigned int i = 0; items && i < n; i++)
		items[i] = pfx_item(&s->preview->pfx[i]);
	fputs(" preview=", f);
	put_sorted(f, items, items ? n : 0);
	free(items);
	for (int c = 0; c < 2; c++) {
		items = calloc(counts[c] + 1, sizeof(*items));
		for (unsigned int i = 0; items && i < counts[c]; i++) {
			const struct bgs_backend_spec *b = &pools[c][i].spec;

			items[i] = be_item(&b->addr, b->port ? b->port : s->spec.port, b->weight);
		}
		fprintf(f, " %s=", color_str(c));
		put_sorted(f, items, items ? counts[c] : 0);
		free(items);
	}
	fclose(f);
	return buf;
}

static void be_ip(const struct bgs_backend *be, struct bgs_ip *ip)
{
	memset(ip, 0, sizeof(*ip));
	ip->family = be->family;
	memcpy(ip->addr, be->addr, sizeof(ip->addr));
}

/* The fingerprint of what the pins hold for a service, its backends taken from all (every
 * backend record, indexed by id: one read of the table serves every service); NULL on
 * error. */
static char *fingerprint_from(struct bgs *h, __u32 svc_id, const struct bgs_backend *all,
			      __u32 nall)
{
	struct bgs_prefix pfx[256];
	struct bgs_service svc;
	struct bgs_flip flip;
	struct bgs_ip vip = {};
	char *buf = NULL, **items;
	size_t len = 0;
	FILE *f;
	int n;

	if (bgs_service_get(h, svc_id, &svc, &flip))
		return NULL;
	f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	vip.family = svc.family;
	memcpy(vip.addr, svc.vip, sizeof(vip.addr));
	put_head(f, &vip, ntohs(svc.port), svc.proto, svc.mode, ntohs(svc.preview_port));
	n = bgs_preview_list(h, svc_id, pfx, 256);
	n = n < 0 ? 0 : n > 256 ? 256 : n;
	items = calloc((unsigned int)n + 1, sizeof(*items));
	for (int i = 0; items && i < n; i++)
		items[i] = pfx_item(&pfx[i]);
	fputs(" preview=", f);
	put_sorted(f, items, items ? (unsigned int)n : 0);
	free(items);
	for (__u32 c = 0; c < 2; c++) {
		unsigned int k = 0;

		items = calloc(BGS_MAX_POOL_BACKENDS + 1, sizeof(*items));
		for (__u32 id = 1; items && id < nall && k < BGS_MAX_POOL_BACKENDS; id++) {
			const struct bgs_backend *be = &all[id];
			struct bgs_ip ip;

			if (!bgs_backend_in_use(be) || be->svc_id != svc_id || be->color != c)
				continue;
			be_ip(be, &ip);
			items[k++] = be_item(&ip, ntohs(be->port), be->weight);
		}
		fprintf(f, " %s=", color_str((int)c));
		put_sorted(f, items, items ? k : 0);
		free(items);
	}
	fclose(f);
	return buf;
}

static char *pins_fingerprint(struct bgs *h, __u32 svc_id)
{
	struct bgs_backend *all;
	char *fp;
	__u32 n;

	if (bgs_backend_read_all(h, &all, &n))
		return NULL;
	fp = fingerprint_from(h, svc_id, all, n);
	free(all);
	return fp;
}

/* ---- The state file ---- */

static json_object *state_load(const char *file)
{
	json_object *st = json_object_from_file(file);

	if (!st || !json_object_is_type(st, json_type_object)) {
		if (access(file, F_OK) == 0)
			agent_log(LOG_W, "state file %s is unreadable; every service is treated as "
					 "not yet applied by the agent", file);
		json_object_put(st);
		st = json_object_new_object();
	}
	if (!json_object_object_get_ex(st, "services", NULL))
		json_object_object_add(st, "services", json_object_new_object());
	return st;
}

static int state_save(const char *file, json_object *st)
{
	char tmp[4096];
	int err = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", file);
	if (json_object_to_file_ext(tmp, st, JSON_C_TO_STRING_PRETTY) ||
	    rename(tmp, file)) {
		err = -errno;
		agent_log(LOG_E, "cannot write state file %s: %s", file, strerror(errno));
	}
	return err;
}

static const char *state_get(json_object *st, const char *name)
{
	json_object *svcs, *v;

	if (!json_object_object_get_ex(st, "services", &svcs) ||
	    !json_object_object_get_ex(svcs, name, &v))
		return NULL;
	return json_object_get_string(v);
}

static void state_set(json_object *st, const char *name, const char *fp)
{
	json_object *svcs;

	if (json_object_object_get_ex(st, "services", &svcs))
		json_object_object_add(svcs, name, json_object_new_string(fp));
}

__u32 state_drain_done(struct agent *ag, const char *name)
{
	json_object *d, *v;

	if (!json_object_object_get_ex(ag->state, "drains", &d) ||
	    !json_object_object_get_ex(d, name, &v))
		return 0;
	return (__u32)json_object_get_int64(v);
}

void state_set_drain_done(struct agent *ag, const char *name, __u32 gen)
{
	json_object *d;

	if (!json_object_object_get_ex(ag->state, "drains", &d)) {
		d = json_object_new_object();
		json_object_object_add(ag->state, "drains", d);
	}
	json_object_object_add(d, name, json_object_new_int64(gen));
	state_save(ag->state_file, ag->state);
}

/* ---- Changes ---- */

struct new_ids {
	__u32 ids[MAX_IDS];
	unsigned int n;
};

/* Note a change the config makes (reason "config") before its library call. */
static bool note_config(struct agent *ag, const char *verb, const char *svc, __u32 svc_id,
			json_object *details)
{
	struct bgs_change_info ci = { .verb = verb, .service = svc, .svc_id = svc_id,
				      .reason = "config" };
	int err = agent_note(ag, &ci, details);

	json_object_put(details);
	return err == 0;
}

/*
 * A new service's pools in one library change (bgs_service_apply): every backend is created
 * health down, so none takes a flow before it passes its checks, and each pool's table is
 * published once (1600 backends: 2 publishes per service instead of one per backend).
 */
static void create_pools(struct agent *ag, const struct cfg_service *s, __u32 svc_id,
			 struct new_ids *fresh)
{
	const struct cfg_backend *pools[2] = { s->pools.blue, s->pools.green };
	unsigned int counts[2] = { s->pools.blue_count, s->pools.green_count };
	struct bgs_backend_spec *specs[2] = {};
	struct bgs_pool_want want[2] = {};
	struct bgs_apply_result res = {};
	json_object *d;
	int err, c;

	for (c = 0; c < 2; c++) {
		specs[c] = calloc(counts[c] + 1, sizeof(*specs[c]));
		if (!specs[c]) {
			agent_log(LOG_E, "%s: out of memory adding its backends", s->name);
			goto out;
		}
		for (unsigned int i = 0; i < counts[c]; i++)
			specs[c][i] = pools[c][i].spec;
		want[c] = (struct bgs_pool_want){ .be = specs[c], .n = counts[c] };
	}
	if (!counts[0] && !counts[1])
		goto out;
	d = json_object_new_object();
	json_object_object_add(d, "blue", json_object_new_int64(counts[0]));
	json_object_object_add(d, "green", json_object_new_int64(counts[1]));
	if (!note_config(ag, "service apply", s->name, svc_id, d))
		goto out;
	err = bgs_service_apply(ag->h, svc_id, want, BGS_HEALTH_DOWN, &res);
	agent_noted(ag, err);
	if (err) {
		agent_log(LOG_E, "%s: cannot add its backends: %s", s->name, bgs_errmsg());
		goto out;
	}
	agent_log(LOG_N, "%s: added %u backends (%u blue, %u green), down until each passes %u "
			 "checks",
		  s->name, res.added, counts[0], counts[1], s->check.rise_n);
	for (c = 0; c < 2; c++) {
		__u32 ids[BGS_MAX_POOL_BACKENDS];
		int n = bgs_pool_list(ag->h, svc_id, (__u32)c, ids, BGS_MAX_POOL_BACKENDS);

		for (int i = 0; i < n && i < BGS_MAX_POOL_BACKENDS && fresh->n < MAX_IDS; i++)
			fresh->ids[fresh->n++] = ids[i];
	}
out:
	free(specs[0]);
	free(specs[1]);
}

static int create_service(struct agent *ag, const struct cfg_service *s, struct new_ids *fresh)
{
	json_object *d = json_object_new_object();
	__u32 svc_id;
	int err;

	json_object_object_add(d, "vip", json_object_new_string(s->vip));
	json_object_object_add(d, "mode", json_object_new_string(s->spec.mode ? "dsr" : "nat"));
	if (!note_config(ag, "service add", s->name, BGS_ALL_SERVICES, d))
		return -EIO;
	err = bgs_service_add(ag->h, &s->spec, &svc_id);
	agent_noted(ag, err);
	if (err) {
		agent_log(LOG_E, "%s: cannot create the service: %s", s->name, bgs_errmsg());
		return err;
	}
	agent_log(LOG_N, "%s: created service %s", s->name, s->vip);
	create_pools(ag, s, svc_id, fresh);
	/* after the backends are down: no preview client reaches one not yet checked */
	for (unsigned int i = 0; s->preview && i < s->preview->prefixes_count; i++)
		if (bgs_preview_add(ag->h, svc_id, &s->preview->pfx[i]))
			agent_log(LOG_E, "%s: cannot add preview prefix %s: %s", s->name,
				  s->preview->prefixes[i], bgs_errmsg());
	return 0;
}

/* The config's backend b of service s is the record be (address and port; any weight). */
static bool same_backend(const struct bgs_backend *be, const struct cfg_service *s,
			 const struct cfg_backend *b)
{
	__u16 port = b->spec.port ? b->spec.port : s->spec.port;

	return be->family == b->spec.addr.family &&
	       !memcmp(be->addr, b->spec.addr.addr, sizeof(be->addr)) && ntohs(be->port) == port;
}

static void be_label(const struct bgs_backend *be, char *buf, size_t len)
{
	struct bgs_ip ip;
	char a[64];

	be_ip(be, &ip);
	bgs_ip_str(&ip, a, sizeof(a));
	snprintf(buf, len, be->family == BGS_AF_INET6 ? "[%s]:%u" : "%s:%u", a, ntohs(be->port));
}

/* Which of the config's backends are in the pins (in its color, or in the other: a move),
 * from every record: have[c][j] = the record's id, or 0. */
static void match_pools(const struct cfg_service *s, __u32 svc_id, const struct bgs_backend *all,
			__u32 nall, __u32 *have[2], bool *moved)
{
	const struct cfg_backend *pools[2] = { s->pools.blue, s->pools.green };
	unsigned int counts[2] = { s->pools.blue_count, s->pools.green_count };

	*moved = false;
	for (int c = 0; c < 2; c++) {
		for (unsigned int j = 0; j < counts[c]; j++) {
			have[c][j] = 0;
			for (__u32 id = 1; id < nall; id++) {
				if (!bgs_backend_in_use(&all[id]) || all[id].svc_id != svc_id ||
				    !same_backend(&all[id], s, &pools[c][j]))
					continue;
				have[c][j] = id;
				*moved |= all[id].color != c;
			}
		}
	}
}

/*
 * The pools made what the config says with bgs_service_apply: adds (down until they pass
 * their checks), weights changed in place, removals, and one table publish per changed pool
 * (a backend added is one publish; the pool may be live, and a new backend takes no flow
 * before it is up). An address that moves to the other color is removed by a first apply
 * without it, then added by the second. Each apply is one change in the history.
 */
static int apply_once(struct agent *ag, const struct cfg_service *s, __u32 svc_id,
		      const struct bgs_pool_want want[2], const struct bgs_backend *before,
		      __u32 nbefore, struct new_ids *fresh)
{
	struct bgs_apply_result res = {};
	struct bgs_backend *after = NULL;
	struct bgs_service svc;
	struct bgs_flip fl;
	__u32 nafter = 0;
	json_object *d = json_object_new_object();
	char lbl[80];
	int err;

	json_object_object_add(d, "blue", json_object_new_int64(want[0].n));
	json_object_object_add(d, "green", json_object_new_int64(want[1].n));
	if (!bgs_service_get(ag->h, svc_id, &svc, &fl))
		json_object_object_add(d, "generation_before",
				       json_object_new_int64(bgs_flip_gen(&fl)));
	if (!note_config(ag, "service apply", s->name, svc_id, d))
		return -EIO;
	err = bgs_service_apply(ag->h, svc_id, want, BGS_HEALTH_DOWN, &res);
	agent_noted(ag, err);
	if (err) {
		agent_log(LOG_E, "%s: cannot apply its pools: %s", s->name, bgs_errmsg());
		return err;
	}
	if (bgs_backend_read_all(ag->h, &after, &nafter))
		return 0;
	/* what changed, one line each, from the records before and after */
	for (__u32 id = 1; id < nafter; id++) {
		const struct bgs_backend *a = &after[id];
		const struct bgs_backend *b = id < nbefore ? &before[id] : NULL;
		bool was = b && bgs_backend_in_use(b) && b->svc_id == svc_id;
		bool is = bgs_backend_in_use(a) && a->svc_id == svc_id;

		if (is && (!was || b->incarnation != a->incarnation)) {
			be_label(a, lbl, sizeof(lbl));
			agent_log(LOG_N, "%s: added %s backend %s (weight %u), down until it passes "
					 "%u checks",
				  s->name, color_str(a->color), lbl, a->weight, s->check.rise_n);
			if (fresh->n < MAX_IDS)
				fresh->ids[fresh->n++] = id;
		} else if (is && b->weight != a->weight) {
			be_label(a, lbl, sizeof(lbl));
			agent_log(LOG_N, "%s: %s backend %s: weight %u -> %u", s->name,
				  color_str(a->color), lbl, b->weight, a->weight);
		}
		if (was && (!is || b->incarnation != a->incarnation)) {
			be_label(b, lbl, sizeof(lbl));
			agent_log(LOG_N, "%s: removed %s backend %s", s->name, color_str(b->color),
				  lbl);
		}
	}
	agent_log(LOG_I, "%s: pools applied: %u added, %u removed, %u reweighted, %u table "
			 "publish%s",
		  s->name, res.added, res.removed, res.reweighted, res.published,
		  res.published == 1 ? "" : "es");
	free(after);
	return 0;
}

static void apply_pools(struct agent *ag, const struct cfg_service *s, __u32 svc_id,
			struct new_ids *fresh)
{
	const struct cfg_backend *pools[2] = { s->pools.blue, s->pools.green };
	unsigned int counts[2] = { s->pools.blue_count, s->pools.green_count };
	struct bgs_backend_spec *specs[2] = {};
	__u32 *have[2] = {};
	struct bgs_pool_want want[2] = {};
	struct bgs_backend *all = NULL;
	__u32 nall = 0;
	bool moved;

	if (bgs_backend_read_all(ag->h, &all, &nall)) {
		agent_log(LOG_E, "%s: cannot read its backends: %s", s->name, bgs_errmsg());
		return;
	}
	for (int c = 0; c < 2; c++) {
		specs[c] = calloc(counts[c] + 1, sizeof(*specs[c]));
		have[c] = calloc(counts[c] + 1, sizeof(*have[c]));
		if (!specs[c] || !have[c]) {
			agent_log(LOG_E, "%s: out of memory applying its pools", s->name);
			goto out;
		}
	}
	match_pools(s, svc_id, all, nall, have, &moved);
	if (moved) {
		/* first without the backends that change color: they are removed */
		for (int c = 0; c < 2; c++) {
			want[c] = (struct bgs_pool_want){ .be = specs[c] };
			for (unsigned int j = 0; j < counts[c]; j++)
				if (!have[c][j] || all[have[c][j]].color == c)
					specs[c][want[c].n++] = pools[c][j].spec;
		}
		if (apply_once(ag, s, svc_id, want, all, nall, fresh))
			goto out;
		free(all);
		all = NULL;
		if (bgs_backend_read_all(ag->h, &all, &nall))
			goto out;
	}
	for (int c = 0; c < 2; c++) {
		for (unsigned int j = 0; j < counts[c]; j++)
			specs[c][j] = pools[c][j].spec;
		want[c] = (struct bgs_pool_want){ .be = specs[c], .n = counts[c] };
	}
	apply_once(ag, s, svc_id, want, all, nall, fresh);
out:
	for (int c = 0; c < 2; c++) {
		free(specs[c]);
		free(have[c]);
	}
	free(all);
}

/* The pins are what the agent applied; make them what the config says now. */
static void apply_diff(struct agent *ag, const struct cfg_service *s, __u32 svc_id,
		       struct new_ids *fresh)
{
	struct bgs_prefix have[256];
	struct bgs_service svc;
	struct bgs_flip flip;
	int n;

	if (bgs_service_get(ag->h, svc_id, &svc, &flip))
		return;
	if (svc.mode != s->spec.mode || svc.proto != s->spec.proto ||
	    ntohs(svc.port) != s->spec.port || ntohs(svc.preview_port) != s->spec.preview_port ||
	    memcmp(svc.vip, s->spec.vip.addr, sizeof(svc.vip))) {
		agent_log(LOG_E, "%s: the VIP, mode or preview port changed in the config: that "
				 "cannot be changed in place (delete the service with bgctl, then "
				 "reload); the service is left as it is",
			  s->name);
		return;
	}
	apply_pools(ag, s, svc_id, fresh);
	n = bgs_preview_list(ag->h, svc_id, have, 256);
	for (int i = 0; i < n && i < 256; i++) {
		bool keep = false;

		for (unsigned int j = 0; s->preview && j < s->preview->prefixes_count; j++)
			keep |= !memcmp(&have[i], &s->preview->pfx[j], sizeof(have[i]));
		if (!keep && bgs_preview_del(ag->h, svc_id, &have[i]))
			agent_log(LOG_E, "%s: cannot remove a preview prefix: %s", s->name,
				  bgs_errmsg());
	}
	for (unsigned int j = 0; s->preview && j < s->preview->prefixes_count; j++) {
		bool have_it = false;

		for (int i = 0; i < n && i < 256; i++)
			have_it |= !memcmp(&have[i], &s->preview->pfx[j], sizeof(have[i]));
		if (!have_it && bgs_preview_add(ag->h, svc_id, &s->preview->pfx[j]))
			agent_log(LOG_E, "%s: cannot add preview prefix %s: %s", s->name,
				  s->preview->prefixes[j], bgs_errmsg());
	}
}

/* Apply one service; returns its drift state. */
static bool apply_service(struct agent *ag, const struct cfg_service *s, struct new_ids *fresh,
			  char *why, size_t whylen)
{
	char *want = cfg_fingerprint(s), *have = NULL;
	const char *applied = state_get(ag->state, s->name);
	bool drift = false;
	__u32 svc_id;

	why[0] = '\0';
	if (!want)
		return false;
	if (bgs_service_find(ag->h, s->name, &svc_id)) {
		if (applied) {
			snprintf(why, whylen, "deleted outside the agent (bgctl?): not recreated; "
					      "restore it or remove it from the config");
			drift = true;
		} else if (create_service(ag, s, fresh) == 0 &&
			   bgs_service_find(ag->h, s->name, &svc_id) == 0) {
			have = pins_fingerprint(ag->h, svc_id);
			if (have)
				state_set(ag->state, s->name, have);
		}
		goto out;
	}
	have = pins_fingerprint(ag->h, svc_id);
	if (!have)
		goto out;
	if (!applied) {
		if (!strcmp(have, want)) {
			agent_log(LOG_I, "%s: adopted (the pins match the config)", s->name);
			state_set(ag->state, s->name, have);
		} else {
			snprintf(why, whylen, "exists but differs from the config and was not made "
					      "by the agent: left as it is");
			drift = true;
		}
		goto out;
	}
	if (strcmp(have, applied)) {
		snprintf(why, whylen, "changed outside the agent (bgctl?) since the agent applied "
				      "it: left as it is");
		drift = true;
		goto out;
	}
	if (strcmp(have, want)) {
		apply_diff(ag, s, svc_id, fresh);
		free(have);
		have = pins_fingerprint(ag->h, svc_id);
		if (have)
			state_set(ag->state, s->name, have);
	}
out:
	free(want);
	free(have);
	return drift;
}

static bool is_fresh(const struct new_ids *fresh, __u32 id)
{
	for (unsigned int i = 0; i < fresh->n; i++)
		if (fresh->ids[i] == id)
			return true;
	return false;
}

void runtime_free(struct agent *ag)
{
	for (unsigned int i = 0; i < ag->nsvc; i++) {
		for (unsigned int j = 0; j < ag->svc[i].nbe; j++)
			checks_stop_backend(&ag->svc[i].be[j]);
		free(ag->svc[i].be);
	}
	free(ag->svc);
	ag->svc = NULL;
	ag->nsvc = 0;
}

/* The backends of one service, from the pins; health adopted from the records. */
static void build_backends(struct agent *ag, struct svc_rt *s, const struct new_ids *fresh)
{
	__u32 ids[2][BGS_MAX_POOL_BACKENDS];
	int n[2];

	s->nbe = 0;
	for (int c = 0; c < 2; c++) {
		n[c] = bgs_pool_list(ag->h, s->id, (__u32)c, ids[c], BGS_MAX_POOL_BACKENDS);
		n[c] = n[c] < 0 ? 0 : n[c] > BGS_MAX_POOL_BACKENDS ? BGS_MAX_POOL_BACKENDS : n[c];
	}
	s->be = calloc((size_t)(n[0] + n[1]) + 1, sizeof(*s->be));
	if (!s->be)
		return;
	for (int c = 0; c < 2; c++) {
		for (int i = 0; i < n[c]; i++) {
			struct be_rt *b = &s->be[s->nbe];
			struct bgs_backend rec;
			char a[64];

			if (bgs_backend_get(ag->h, ids[c][i], &rec))
				continue;
			b->ag = ag;
			b->svc = s;
			b->id = ids[c][i];
			b->incarnation = rec.incarnation;
			b->color = c;
			b->fd = -1;
			be_ip(&rec, &b->ip);
			b->port = ntohs(rec.port);
			b->check_port = s->cfg->check.port ? (__u16)*s->cfg->check.port : b->port;
			bgs_ip_str(&b->ip, a, sizeof(a));
			snprintf(b->label, sizeof(b->label), b->ip.family == BGS_AF_INET6 ?
				 "[%s]:%u" : "%s:%u", a, b->port);
			/* the record's health is the truth (a restart adopts it, no flap); only a
			 * backend created by this apply waits for its first decision */
			hsm_init(&b->hsm, rec.health == BGS_HEALTH_UP, !is_fresh(fresh, b->id));
			s->nbe++;
		}
	}
}

void drift_check(struct svc_rt *s)
{
	struct bgs_backend *all;
	__u32 n;

	if (bgs_backend_read_all(s->ag->h, &all, &n))
		return;
	drift_check_with(s, all, n);
	free(all);
}

void drift_check_with(struct svc_rt *s, const struct bgs_backend *all, __u32 nall)
{
	struct agent *ag = s->ag;
	const char *applied = state_get(ag->state, s->name);
	char *have = fingerprint_from(ag->h, s->id, all, nall);
	bool drift;

	if (!have)
		return;
	drift = !applied || strcmp(have, applied);
	if (drift && !s->drift) {
		snprintf(s->drift_why, sizeof(s->drift_why),
			 "changed outside the agent (bgctl?): not overwritten; SIGHUP re-checks it");
		agent_log(LOG_W, "%s: drift: %s", s->name, s->drift_why);
	} else if (!drift && s->drift) {
		agent_log(LOG_N, "%s: no drift any more (the pins match what the agent applied)",
			  s->name);
		s->drift_why[0] = '\0';
	}
	s->drift = drift;
	free(have);
}

/*
 * upgrade_on_start: the state file names the build whose switch program the agent last put
 * in the program array. Another build (or none recorded: the pins may come from bgctl or an
 * older agent) gets this build's switch, in one atomic update of the program array that
 * keeps every map (as bgctl upgrade does), recorded in the history.
 */
static void upgrade_switch(struct agent *ag, const struct cfg *cfg)
{
	struct bgs_change_info ci = { .verb = "upgrade", .svc_id = BGS_ALL_SERVICES,
				      .reason = "upgrade_on_start" };
	json_object *v, *d;
	const char *prev = NULL;
	int err;

	if (json_object_object_get_ex(ag->state, "switch_build", &v))
		prev = json_object_get_string(v);
	if (!cfg->upgrade || (prev && !strcmp(prev, ag->version)))
		return;
	d = json_object_new_object();
	json_object_object_add(d, "from", json_object_new_string(prev ? prev : "unknown"));
	json_object_object_add(d, "to", json_object_new_string(ag->version));
	err = agent_note(ag, &ci, d);
	json_object_put(d);
	if (err)
		return;
	/* a history that cannot be written refuses it (the library says so): switch left as
	 * it is */
	err = bgs_upgrade(ag->h, NULL);
	agent_noted(ag, err);
	if (err) {
		agent_log(LOG_E, "upgrade_on_start: the switch was not upgraded (the running one "
				 "stays): %s",
			  bgs_errmsg());
		return;
	}
	agent_log(LOG_N, "upgraded the switch program from build %s to %s (maps and flows kept)",
		  prev ? prev : "unknown", ag->version);
	json_object_object_add(ag->state, "switch_build", json_object_new_string(ag->version));
	state_save(ag->state_file, ag->state);
}

static int attach_all(struct agent *ag, const struct cfg *cfg)
{
	for (unsigned int i = 0; i < cfg->interfaces_count; i++) {
		const struct cfg_iface *ifc = &cfg->interfaces[i];
		json_object *d;
		bool done;
		int err;

		if (al_attached(ifc->name))
			continue;
		d = json_object_new_object();
		json_object_object_add(d, "interface", json_object_new_string(ifc->name));
		if (!note_config(ag, "attach", NULL, BGS_ALL_SERVICES, d))
			return -EIO;
		err = al_attach(ag->h, ifc->name, ifc->xdp_mode, &done);
		agent_noted(ag, err);
		if (err) {
			agent_log(LOG_E, "interfaces[%u]: cannot attach to %s: %s", i, ifc->name,
				  bgs_errmsg());
			return err;
		}
		if (done) {
			agent_log(LOG_N, "attached to %s (%s)", ifc->name,
				  ifc->xdp_mode == BGS_XDP_GENERIC ? "generic" : "native");
		}
	}
	return 0;
}

int apply_config(struct agent *ag, struct cfg *cfg, bool at_start)
{
	struct new_ids *fresh = calloc(1, sizeof(*fresh));
	struct bgs_sizes sizes = {}; /* 0: the default, or the existing pins' */
	struct svc_rt *svcs;
	unsigned int n = 0;
	int err;

	if (!fresh)
		return -ENOMEM;
	/* applying a config (start, SIGHUP) waits for the lock as bgctl does; the loop's own
	 * changes after it wait only briefly (AGENT_LOOP_LOCK_MS) */
	if (ag->h)
		bgs_set_lock_timeout(ag->h, BGS_LOCK_TIMEOUT_MS);
	if (at_start) {
		/* the history first: one that cannot be used stops the start before anything
		 * is created or changed */
		err = bgs_history_open(ag->history, AL_ACTOR, &ag->hist);
		if (err) {
			agent_log(LOG_E, "cannot use the history: %s", bgs_errmsg());
			free(fresh);
			return err;
		}
		/* the config's timeouts are used when this creates the pinned state; on
		 * existing pins the ones it gives must be theirs (or this refuses) */
		if (cfg->timeouts)
			sizes.timeouts = cfg->timeouts->t;
		err = bgs_init(ag->pin_dir, &sizes, &ag->h);
		if (err) {
			agent_log(LOG_E, "cannot set up the pinned state in %s: %s", ag->pin_dir,
				  bgs_errmsg());
			free(fresh);
			return err;
		}
		bgs_set_history(ag->h, ag->hist);
		ag->state = state_load(ag->state_file);
		upgrade_switch(ag, cfg);
	}
	err = attach_all(ag, cfg);
	if (err && at_start) {
		free(fresh);
		return err;
	}
	svcs = calloc(cfg->services_count + 1, sizeof(*svcs));
	if (!svcs) {
		free(fresh);
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < cfg->services_count; i++) {
		struct cfg_service *cs = &cfg->services[i];
		struct svc_rt *s = &svcs[n];

		/* creating many backends takes a while (a table publish each): keep systemd's
		 * start timeout from firing and say how far it got */
		sd_notifyf(0, "EXTEND_TIMEOUT_USEC=%llu\nSTATUS=applying the config: service %u of %u",
			   30000000ULL, i + 1, cfg->services_count);

		s->drift = apply_service(ag, cs, fresh, s->drift_why, sizeof(s->drift_why));
		if (s->drift)
			agent_log(LOG_W, "%s: drift: %s", cs->name, s->drift_why);
		if (bgs_service_find(ag->h, cs->name, &s->id))
			continue;
		s->ag = ag;
		s->cfg = cs;
		snprintf(s->name, sizeof(s->name), "%s", cs->name);
		s->drain_done_gen = state_drain_done(ag, cs->name);
		n++;
	}
	state_save(ag->state_file, ag->state);
	/* carry over what the loop learned about services that stay */
	for (unsigned int i = 0; i < n; i++) {
		for (unsigned int j = 0; j < ag->nsvc; j++) {
			if (strcmp(ag->svc[j].name, svcs[i].name))
				continue;
			svcs[i].seen = ag->svc[j].seen;
			svcs[i].gen = ag->svc[j].gen;
			svcs[i].live = ag->svc[j].live;
			svcs[i].auto_flipped = ag->svc[j].auto_flipped;
			svcs[i].auto_flip_ms = ag->svc[j].auto_flip_ms;
			svcs[i].flips_failover = ag->svc[j].flips_failover;
			svcs[i].flips_other = ag->svc[j].flips_other;
			svcs[i].retry_ms = ag->svc[j].retry_ms;
			svcs[i].flip_fails = ag->svc[j].flip_fails;
			memcpy(svcs[i].blocked_why, ag->svc[j].blocked_why,
			       sizeof(svcs[i].blocked_why));
			svcs[i].draining = ag->svc[j].draining;
			svcs[i].drain_gen = ag->svc[j].drain_gen;
			svcs[i].drain_color = ag->svc[j].drain_color;
			svcs[i].drain_deadline = ag->svc[j].drain_deadline;
			svcs[i].drain_seen_ms = ag->svc[j].drain_seen_ms;
			svcs[i].drain_left = ag->svc[j].drain_left;
			svcs[i].drain_counted = ag->svc[j].drain_counted;
			memcpy(svcs[i].drains_done, ag->svc[j].drains_done,
			       sizeof(svcs[i].drains_done));
		}
	}
	runtime_free(ag);
	ag->svc = svcs;
	ag->nsvc = n;
	for (unsigned int i = 0; i < n; i++) {
		struct bgs_service svc;
		struct bgs_flip fl;

		build_backends(ag, &svcs[i], fresh);
		if (at_start)
			failover_resume(&svcs[i]);
		/* the live color from now on: a flip by someone else is one seen after this */
		if (!svcs[i].seen && bgs_service_get(ag->h, svcs[i].id, &svc, &fl) == 0) {
			svcs[i].seen = true;
			svcs[i].live = (int)bgs_flip_live(&fl);
			svcs[i].gen = bgs_flip_gen(&fl);
		}
	}
	free(fresh);
	bgs_set_lock_timeout(ag->h, AGENT_LOOP_LOCK_MS);
	return 0;
}
