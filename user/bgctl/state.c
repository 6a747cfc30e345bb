// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Reading the state: a service with its flip word, pools, backends and counters as one json
 * object (status, flip, canary and service list all print it), and flow tallies from a
 * conntrack walk.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "bgctl.h"

/*
 * One read of every backend record per status round. bgs_pool_list reads the whole backend
 * map per call, which costs 100 services x 2 pools full reads in a status of a big config;
 * one bgs_backend_read_all costs one. (Pool usability needs no records:
 * bgs_pool_usable reads one entry of the pool's live table.)
 */
static struct {
	__u32 n;
	bool loaded;
	struct bgs_backend *be;
} snap;

int backend_snapshot(void)
{
	free(snap.be);
	snap.be = NULL;
	/* Without it the per-pool library calls still work, one read each. */
	snap.loaded = bgs_backend_read_all(g.h, &snap.be, &snap.n) == 0;
	return 0;
}

/* Ids of a pool's backends from the snapshot, or from the library without one. */
static int pool_ids(__u32 svc_id, __u32 color, __u32 *ids, __u32 max)
{
	int n = 0;

	if (!snap.loaded)
		return bgs_pool_list(g.h, svc_id, color, ids, max);
	for (__u32 id = 1; id < snap.n; id++) {
		const struct bgs_backend *b = &snap.be[id];

		if (!bgs_backend_in_use(b) || b->svc_id != svc_id || b->color != color)
			continue;
		if ((__u32)n < max)
			ids[n] = id;
		n++;
	}
	return n;
}

int dp_clock(__u64 *now, __u32 *hz)
{
	int err = bgs_clock(g.h, now, hz);

	if (err)
		return lib_fail(err, "read the data plane clock");
	if (!*hz)
		*hz = 1000;
	return 0;
}

json_object *flip_json(const struct bgs_flip *f)
{
	json_object *o = json_object_new_object(), *d;
	__u32 live = bgs_flip_live(f), hz = 0, bps = bgs_flip_canary(f);
	__u64 now = 0;
	char buf[32];

	jset(o, "live", jstr(color_name((int)live)));
	jset(o, "idle", jstr(color_name((int)!live)));
	jset(o, "generation", jint(bgs_flip_gen(f)));
	jset(o, "canary_bps", jint(bps));
	jset(o, "canary", jstr(pct_str(bps, buf, sizeof(buf))));
	jset(o, "sticky", jbool(bgs_flip_sticky(f)));
	jset(o, "active", jbool(bgs_flip_active(f)));
	jset(o, "draining", jbool(bgs_flip_draining(f)));
	if (bgs_flip_draining(f)) {
		d = json_object_new_object();
		jset(d, "color", jstr(color_name((int)!live)));
		jset(d, "generation", jint(bgs_flip_drain_gen(f)));
		if (bgs_flip_drain_deadline(f) == BGS_NO_DEADLINE) {
			jset(d, "deadline", NULL);
			jset(d, "time_left_s", NULL);
			jset(d, "ended", jbool(false));
		} else if (dp_clock(&now, &hz) == 0) {
			double left = bgs_flip_drain_deadline(f) > now
					      ? (double)(bgs_flip_drain_deadline(f) - now) / hz
					      : 0;

			jset(d, "deadline", jint((long long)bgs_flip_drain_deadline(f)));
			jset(d, "time_left_s", json_object_new_double(left));
			jset(d, "ended", jbool(bgs_flip_drain_deadline(f) <= now));
		}
		jset(o, "drain", d);
	}
	return o;
}

json_object *timeouts_json(const struct bgs_flow_timeouts *t)
{
	json_object *o = json_object_new_object();

	for (unsigned int i = 0; i < BGS_TIMEOUT_COUNT; i++)
		jset(o, bgs_timeout_name(i), jint(bgs_timeout_get(t, i)));
	return o;
}

char *timeouts_str(json_object *o, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned int i = 0; i < BGS_TIMEOUT_COUNT && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s %llds", i ? ", " : "",
				      bgs_timeout_name(i), jgeti(o, bgs_timeout_name(i)));
	return buf;
}

static void add_counter(json_object *o, const struct bgs_counter *c)
{
	jset(o, "packets", jint((long long)c->packets));
	jset(o, "bytes", jint((long long)c->bytes));
	jset(o, "new_flows", jint((long long)c->new_flows));
	jset(o, "resets", jint((long long)c->resets));
}

json_object *backend_json(__u32 id, const struct bgs_backend *be, bool counters,
			  const struct bgs_flow_counts *t)
{
	json_object *o = json_object_new_object();
	struct bgs_counter c;
	struct bgs_ip ip;
	char buf[80];

	ip_from_words(&ip, be->family, be->addr);
	jset(o, "id", jint(id));
	jset(o, "address", jstr(addr_port_str(&ip, ntohs(be->port), buf, sizeof(buf))));
	jset(o, "color", jstr(color_name(be->color)));
	jset(o, "weight", jint(be->weight));
	jset(o, "admin", jstr(admin_name(be->admin)));
	jset(o, "health", jstr(health_name(be->health)));
	jset(o, "nexthop", jbool(bgs_backend_resolved(be)));
	jset(o, "incarnation", jint(be->incarnation));
	if (counters && bgs_backend_counters(g.h, id, &c) == 0)
		add_counter(o, &c);
	if (t && t->per_backend && id < t->max_backends)
		jset(o, "flows", jint((long long)t->per_backend[id]));
	return o;
}

json_object *service_json(__u32 svc_id, bool counters, const struct bgs_flow_counts *t)
{
	struct bgs_prefix *prefixes;
	json_object *o, *fl, *pools, *arr;
	struct bgs_service svc;
	struct bgs_flip flip;
	struct bgs_ip ip;
	__u32 ids[BGS_MAX_POOL_BACKENDS];
	char buf[80];
	int n, cap;

	if (bgs_service_get(g.h, svc_id, &svc, &flip))
		return NULL;
	o = json_object_new_object();
	ip_from_words(&ip, svc.family, svc.vip);
	jset(o, "name", jstr(svc.name));
	jset(o, "id", jint(svc_id));
	jset(o, "vip", jstr(addr_port_str(&ip, ntohs(svc.port), buf, sizeof(buf))));
	jset(o, "proto", jstr(proto_name(svc.proto)));
	jset(o, "mode", jstr(mode_name(svc.mode)));
	jset(o, "preview_port", svc.preview_port ? jint(ntohs(svc.preview_port)) : NULL);
	fl = flip_json(&flip);
	json_object_object_foreach (fl, k, v)
		jset(o, k, json_object_get(v));
	json_object_put(fl);

	arr = json_object_new_array();
	/* Every prefix (the map holds up to 4096): count, then read. */
	cap = bgs_preview_list(g.h, svc_id, NULL, 0);
	prefixes = cap > 0 ? calloc((size_t)cap, sizeof(*prefixes)) : NULL;
	n = prefixes ? bgs_preview_list(g.h, svc_id, prefixes, (__u32)cap) : 0;
	for (int i = 0; i < n && i < cap; i++)
		json_object_array_add(arr, jstr(prefix_str(&prefixes[i], buf, sizeof(buf))));
	free(prefixes);
	jset(o, "preview", arr);

	pools = json_object_new_object();
	for (__u32 color = 0; color < BGS_NR_COLORS; color++) {
		json_object *p = json_object_new_object(), *bes = json_object_new_array();
		struct bgs_counter c;

		struct bgs_pool_state ps = {};
		int unresolved = 0;

		jset(p, "live", jbool(color == bgs_flip_live(&flip)));
		bgs_pool_state(g.h, svc_id, color, &ps);
		jset(p, "usable", jbool(ps.ready > 0));
		jset(p, "usable_backends", jint(ps.ready));
		if (counters && bgs_svc_counters(g.h, svc_id, color, &c) == 0)
			add_counter(p, &c);
		if (t && t->per_svc_color && svc_id < t->max_services)
			jset(p, "flows", jint((long long)t->per_svc_color[svc_id * 2 + color]));
		n = pool_ids(svc_id, color, ids, BGS_MAX_POOL_BACKENDS);
		for (int i = 0; i < n && i < BGS_MAX_POOL_BACKENDS; i++) {
			struct bgs_backend be;

			if (snap.loaded)
				be = snap.be[ids[i]];
			else if (bgs_backend_get(g.h, ids[i], &be))
				continue;
			json_object_array_add(bes, backend_json(ids[i], &be, counters, t));
			unresolved += !bgs_backend_resolved(&be);
		}
		jset(p, "backends", bes);
		jset(p, "unresolved", jint(unresolved));
		jset(pools, color_name((int)color), p);
	}
	jset(o, "pools", pools);
	return o;
}

/* ---- flows ---- */

/* Live flows per backend and per service color, as the program decides them. */
int flow_tally(struct bgs_flow_counts *t)
{
	int err = bgs_flow_count(g.h, t);

	return err ? lib_fail(err, "walk conntrack") : 0;
}

void flow_tally_free(struct bgs_flow_counts *t)
{
	bgs_flow_counts_free(t);
}

int service_ids(__u32 **ids, __u32 *max)
{
	struct bgs_meta meta;
	int n;

	/* Room for every service the state can hold (up to 65536). */
	bgs_get_meta(g.h, &meta);
	*max = meta.max_services;
	*ids = calloc(*max, sizeof(**ids));
	if (!*ids)
		return fail(-ENOMEM, EXIT_OTHER, "out of memory");
	n = bgs_service_list(g.h, *ids, *max);
	if (n < 0) {
		free(*ids);
		*ids = NULL;
		return lib_fail(n, "list services");
	}
	return n;
}
