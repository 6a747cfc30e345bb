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
#include <bpf/bpf.h>

#include "bgctl.h"

/*
 * One read of every backend record per status round. bgs_pool_list reads the whole backend
 * map per call, which costs 100 services x 2 pools full reads in a status of a big config;
 * one batch read through the public map fd costs one. (Pool usability needs no records:
 * bgs_pool_usable reads one entry of the pool's live table.)
 */
static struct {
	__u32 n;
	bool loaded;
	struct bgs_backend *be;
} snap;

int backend_snapshot(void)
{
	struct bgs_meta meta;
	__u32 n, count, *keys, out_batch = 0, done = 0;
	void *in = NULL;
	int fd, err = 0;

	bgs_get_meta(g.h, &meta);
	n = meta.max_backends ? meta.max_backends : BGS_DEF_MAX_BACKENDS;
	if (!snap.be) {
		snap.be = calloc(n, sizeof(*snap.be));
		if (!snap.be)
			return fail(-ENOMEM, EXIT_OTHER, "out of memory");
	}
	snap.n = n;
	snap.loaded = false;
	fd = bgs_map_fd(g.h, "backends");
	keys = calloc(n, sizeof(*keys));
	if (fd < 0 || !keys) {
		free(keys);
		return 0; /* the per-pool library calls still work */
	}
	memset(snap.be, 0, (size_t)n * sizeof(*snap.be));
	while (done < n) {
		struct bgs_backend *vals = calloc(n - done, sizeof(*vals));

		if (!vals) {
			err = -ENOMEM;
			break;
		}
		count = n - done;
		err = bpf_map_lookup_batch(fd, in, &out_batch, keys, vals, &count, NULL);
		if (err && errno != ENOENT) {
			free(vals);
			err = -errno;
			break;
		}
		for (__u32 i = 0; i < count; i++)
			if (keys[i] < n)
				snap.be[keys[i]] = vals[i];
		free(vals);
		done += count;
		if (err || !count) {
			err = 0;
			break;
		}
		in = &out_batch;
	}
	free(keys);
	snap.loaded = !err;
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

		if (!(b->flags & BGS_BE_IN_USE) || b->svc_id != svc_id || b->color != color)
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
	__u64 w = f->word, now = 0;
	json_object *o = json_object_new_object(), *d;
	__u32 live = bgs_fw_live(w), hz = 0, bps = bgs_fw_canary(w);
	char buf[32];

	jset(o, "live", jstr(color_name((int)live)));
	jset(o, "idle", jstr(color_name((int)!live)));
	jset(o, "generation", jint(bgs_fw_gen(w)));
	jset(o, "canary_bps", jint(bps));
	jset(o, "canary", jstr(pct_str(bps, buf, sizeof(buf))));
	jset(o, "sticky", jbool(w & BGS_FW_STICKY));
	jset(o, "active", jbool(w & BGS_FW_ACTIVE));
	jset(o, "draining", jbool(w & BGS_FW_DRAINING));
	if (w & BGS_FW_DRAINING) {
		d = json_object_new_object();
		jset(d, "color", jstr(color_name((int)!live)));
		jset(d, "generation", jint(bgs_flip_drain(f)->gen));
		if (bgs_flip_drain(f)->deadline == BGS_NO_DEADLINE) {
			jset(d, "deadline", NULL);
			jset(d, "time_left_s", NULL);
			jset(d, "ended", jbool(false));
		} else if (dp_clock(&now, &hz) == 0) {
			double left = bgs_flip_drain(f)->deadline > now
					      ? (double)(bgs_flip_drain(f)->deadline - now) / hz
					      : 0;

			jset(d, "deadline", jint((long long)bgs_flip_drain(f)->deadline));
			jset(d, "time_left_s", json_object_new_double(left));
			jset(d, "ended", jbool(bgs_flip_drain(f)->deadline <= now));
		}
		jset(o, "drain", d);
	}
	return o;
}

static void add_counter(json_object *o, const struct bgs_counter *c)
{
	jset(o, "packets", jint((long long)c->packets));
	jset(o, "bytes", jint((long long)c->bytes));
	jset(o, "new_flows", jint((long long)c->new_flows));
}

json_object *backend_json(__u32 id, const struct bgs_backend *be, bool counters,
			  const struct flow_tally *t)
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
	jset(o, "nexthop", jbool(be->flags & BGS_BE_NEXTHOP));
	jset(o, "incarnation", jint(be->incarnation));
	if (counters && bgs_backend_counters(g.h, id, &c) == 0)
		add_counter(o, &c);
	if (t && t->per_backend && id < t->max_backends)
		jset(o, "flows", jint((long long)t->per_backend[id]));
	return o;
}

json_object *service_json(__u32 svc_id, bool counters, const struct flow_tally *t)
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

		jset(p, "live", jbool(color == bgs_fw_live(flip.word)));
		jset(p, "usable", jbool(bgs_pool_usable(g.h, svc_id, color)));
		if (counters && bgs_svc_counters(g.h, svc_id, color, &c) == 0)
			add_counter(p, &c);
		if (t && t->per_svc_color && svc_id < t->max_services)
			jset(p, "flows", jint((long long)t->per_svc_color[svc_id * 2 + color]));
		n = pool_ids(svc_id, color, ids, BGS_MAX_POOL_BACKENDS);
		for (int i = 0; i < n && i < BGS_MAX_POOL_BACKENDS; i++) {
			struct bgs_backend be;

			if (snap.loaded)
				json_object_array_add(
					bes, backend_json(ids[i], &snap.be[ids[i]], counters, t));
			else if (bgs_backend_get(g.h, ids[i], &be) == 0)
				json_object_array_add(bes, backend_json(ids[i], &be, counters, t));
		}
		jset(p, "backends", bes);
		jset(pools, color_name((int)color), p);
	}
	jset(o, "pools", pools);
	return o;
}

/* ---- flows ---- */

struct be_cache {
	__u32 n;
	__u8 *state; /* 0 unknown, 1 in use, 2 absent */
	struct bgs_backend *be;
};

static struct be_cache bec;

const struct bgs_backend *cached_backend(__u32 id)
{
	struct bgs_meta meta;

	if (!bec.state) {
		bgs_get_meta(g.h, &meta);
		bec.n = meta.max_backends ? meta.max_backends : BGS_DEF_MAX_BACKENDS;
		bec.state = calloc(bec.n, 1);
		bec.be = calloc(bec.n, sizeof(*bec.be));
		if (!bec.state || !bec.be) {
			/* both or neither: the next call must not find half a cache */
			free(bec.state);
			free(bec.be);
			bec.state = NULL;
			bec.be = NULL;
			return NULL;
		}
	}
	if (id >= bec.n)
		return NULL;
	if (!bec.state[id])
		bec.state[id] = bgs_backend_get(g.h, id, &bec.be[id]) == 0 &&
						(bec.be[id].flags & BGS_BE_IN_USE)
					? 1
					: 2;
	return bec.state[id] == 1 ? &bec.be[id] : NULL;
}

/* Flip state per service, for drain deadlines during a walk. */
static struct {
	__u32 n;
	__u8 *state; /* 0 unknown, 1 in use, 2 absent */
	struct bgs_flip *flip;
} flc;

static const struct bgs_flip *cached_flip(__u32 svc_id)
{
	struct bgs_service svc;
	struct bgs_meta meta;

	if (!flc.state) {
		bgs_get_meta(g.h, &meta);
		flc.n = meta.max_services ? meta.max_services : BGS_DEF_MAX_SERVICES;
		flc.state = calloc(flc.n, 1);
		flc.flip = calloc(flc.n, sizeof(*flc.flip));
		if (!flc.state || !flc.flip) {
			free(flc.state);
			free(flc.flip);
			flc.state = NULL;
			flc.flip = NULL;
			return NULL;
		}
	}
	if (svc_id >= flc.n)
		return NULL;
	if (!flc.state[svc_id])
		flc.state[svc_id] = bgs_service_get(g.h, svc_id, &svc, &flc.flip[svc_id]) == 0 ? 1
											       : 2;
	return flc.state[svc_id] == 1 ? &flc.flip[svc_id] : NULL;
}

void backend_cache_reset(void)
{
	if (bec.state)
		memset(bec.state, 0, bec.n);
	if (flc.state)
		memset(flc.state, 0, flc.n);
}

bool flow_alive(const struct bgs_flow_key *k, const struct bgs_flow *f, __u64 now, __u32 hz)
{
	const struct bgs_backend *be;
	const struct bgs_flip *fl;
	__u64 timeout;

	if (k->proto == IPPROTO_TCP) {
		if (f->tcp_state & (BGS_TCP_FIN | BGS_TCP_RST))
			return false;
		timeout = f->tcp_state & BGS_TCP_EST ? BGS_DEF_TIMEOUT_TCP_EST
						     : BGS_DEF_TIMEOUT_TCP_SYN;
	} else {
		timeout = BGS_DEF_TIMEOUT_UDP;
	}
	if (now > f->last_seen && now - f->last_seen > timeout * hz)
		return false;
	be = cached_backend(f->backend_id);
	if (!be || be->incarnation != f->incarnation)
		return false;
	/* A drain whose deadline passed: the program routes those flows as new. */
	fl = cached_flip(f->svc_id);
	if (!fl)
		return false;
	if ((fl->word & BGS_FW_DRAINING) && f->color != bgs_fw_live(fl->word) &&
	    bgs_flip_drain(fl)->deadline != BGS_NO_DEADLINE && bgs_flip_drain(fl)->deadline <= now &&
	    f->gen < bgs_flip_drain(fl)->gen)
		return false;
	return true;
}

struct tally_arg {
	struct flow_tally *t;
	__u64 now;
	__u32 hz;
};

static int tally_cb(const struct bgs_flow_key *k, const struct bgs_flow *f, void *arg)
{
	struct tally_arg *a = arg;
	struct flow_tally *t = a->t;

	if (!flow_alive(k, f, a->now, a->hz))
		return 0;
	if (f->backend_id < t->max_backends)
		t->per_backend[f->backend_id]++;
	if (f->svc_id < t->max_services && f->color < 2)
		t->per_svc_color[f->svc_id * 2 + f->color]++;
	t->total++;
	return 0;
}

int flow_tally(struct flow_tally *t)
{
	struct tally_arg a = { .t = t };
	struct bgs_meta meta;
	int err;

	memset(t, 0, sizeof(*t));
	bgs_get_meta(g.h, &meta);
	t->max_backends = meta.max_backends ? meta.max_backends : BGS_DEF_MAX_BACKENDS;
	t->max_services = meta.max_services ? meta.max_services : BGS_DEF_MAX_SERVICES;
	t->per_backend = calloc(t->max_backends, sizeof(__u64));
	t->per_svc_color = calloc((size_t)t->max_services * 2, sizeof(__u64));
	if (!t->per_backend || !t->per_svc_color)
		return fail(-ENOMEM, EXIT_OTHER, "out of memory");
	err = bgs_clock(g.h, &a.now, &a.hz);
	if (err)
		return lib_fail(err, "read the data plane clock");
	if (!a.hz)
		a.hz = 1000;
	err = bgs_flow_walk(g.h, tally_cb, &a);
	if (err < 0)
		return lib_fail(err, "walk conntrack");
	return 0;
}

void flow_tally_free(struct flow_tally *t)
{
	free(t->per_backend);
	free(t->per_svc_color);
	t->per_backend = NULL;
	t->per_svc_color = NULL;
}
