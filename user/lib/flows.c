// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Which conntrack entries still hold their flow, decided by the program's own rule
 * (bgswitch_flow.h, compiled here too) with the timeouts the program enforces (bgs_meta),
 * every backend record and every service's flip state read once per walk: flow counts,
 * drain status and conntrack listings all say what the data plane does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>

#include "bgs_priv.h"
#include "bgswitch_flow.h"

struct judge {
	__u64 now;
	__u32 hz;
	struct bgs_flow_timeouts t;
	struct bgs_backend *be;	   /* every record, by id */
	struct bgs_flip_view *view; /* every service's flip state, by id */
	__u32 max_backends, max_services;
	bgs_flow_verdict_cb cb;
	void *arg;
};

static void judge_free(struct judge *j)
{
	free(j->be);
	free(j->view);
}

static int judge_init(struct bgs *h, struct judge *j)
{
	struct bgs_meta meta;
	__u32 key = 0, i;
	int err;

	memset(j, 0, sizeof(*j));
	j->max_backends = h->meta.max_backends;
	j->max_services = h->meta.max_services;
	/* The timeouts as stored now: what the program reads on every packet. */
	if (bpf_map_lookup_elem(h->map_fd[BGS_M_META], &key, &meta))
		return bgs_err(-errno, "cannot read bgs_meta: %s", strerror(errno));
	j->t = meta.timeouts;
	err = bgs_clock(h, &j->now, &j->hz);
	if (err)
		return bgs_err(err, "cannot read the program's clock: %s", strerror(-err));
	err = bgs_be_read_all(h, &j->be);
	if (err)
		return err;
	j->view = calloc(j->max_services, sizeof(*j->view));
	if (!j->view) {
		judge_free(j);
		return bgs_err(-ENOMEM, "out of memory");
	}
	for (i = 0; i < j->max_services; i++)
		bgs_flip_view_init(&j->view[i], bgs_word_load(h, i), &h->flip[i], j->now);
	return 0;
}

static int judge_one(struct judge *j, const struct bgs_flow_key *k, const struct bgs_flow *f)
{
	const struct bgs_backend *be = f->backend_id < j->max_backends ? &j->be[f->backend_id]
								       : NULL;
	enum bgs_flow_verdict v = BGS_FLOW_BACKEND_GONE;

	if (f->svc_id < j->max_services)
		v = bgs_flow_verdict(f, k->proto, 0, j->now, j->hz, &j->t, be,
				     &j->view[f->svc_id]);
	return (int)v;
}

static int judge_cb(const struct bgs_flow_key *k, const struct bgs_flow *f, void *arg)
{
	struct judge *j = arg;
	int v = judge_one(j, k, f);

	return j->cb(k, f, v, v == BGS_FLOW_BACKEND_GONE ? NULL : &j->be[f->backend_id],
		     j->arg);
}

int bgs_flow_walk_verdict(struct bgs *h, bgs_flow_verdict_cb cb, void *arg, __u64 *now,
			  __u32 *hz)
{
	struct judge j;
	int err;

	bgs_err_clear();
	if (!cb)
		return bgs_err(-EINVAL, "flow walk without a callback");
	err = judge_init(h, &j);
	if (err)
		return err;
	if (now)
		*now = j.now;
	if (hz)
		*hz = j.hz;
	j.cb = cb;
	j.arg = arg;
	err = bgs_ct_walk(h, judge_cb, &j);
	judge_free(&j);
	return err;
}

const char *bgs_flow_verdict_name(int verdict)
{
	static const char *const names[BGS_FLOW_NR] = {
		[BGS_FLOW_LIVE] = "live",	  [BGS_FLOW_BACKEND_GONE] = "backend_gone",
		[BGS_FLOW_ADMIN_DOWN] = "admin_down", [BGS_FLOW_HEALTH_DOWN] = "health_down",
		[BGS_FLOW_IDLE] = "idle",	  [BGS_FLOW_CLOSED] = "closed",
		[BGS_FLOW_DRAINED] = "drained",
	};

	return verdict >= 0 && verdict < BGS_FLOW_NR && names[verdict] ? names[verdict]
									: "unknown";
}

static int count_cb(const struct bgs_flow_key *k, const struct bgs_flow *f, int verdict,
		    const struct bgs_backend *be, void *arg)
{
	struct bgs_flow_counts *c = arg;

	(void)k;
	(void)be;
	if (verdict != BGS_FLOW_LIVE)
		return 0;
	if (f->backend_id < c->max_backends)
		c->per_backend[f->backend_id]++;
	if (f->svc_id < c->max_services && f->color < BGS_NR_COLORS)
		c->per_svc_color[f->svc_id * 2 + f->color]++;
	c->total++;
	return 0;
}

int bgs_flow_count(struct bgs *h, struct bgs_flow_counts *c)
{
	int err;

	memset(c, 0, sizeof(*c));
	c->max_backends = h->meta.max_backends;
	c->max_services = h->meta.max_services;
	c->per_backend = calloc(c->max_backends, sizeof(*c->per_backend));
	c->per_svc_color = calloc((size_t)c->max_services * 2, sizeof(*c->per_svc_color));
	if (!c->per_backend || !c->per_svc_color) {
		bgs_flow_counts_free(c);
		return bgs_err(-ENOMEM, "out of memory");
	}
	err = bgs_flow_walk_verdict(h, count_cb, c, NULL, NULL);
	if (err)
		bgs_flow_counts_free(c);
	return err;
}

void bgs_flow_counts_free(struct bgs_flow_counts *c)
{
	free(c->per_backend);
	free(c->per_svc_color);
	c->per_backend = c->per_svc_color = NULL;
}

struct drain_arg {
	__u32 svc_id;
	struct bgs_drain_status *st;
};

static int drain_cb(const struct bgs_flow_key *k, const struct bgs_flow *f, int verdict,
		    const struct bgs_backend *be, void *arg)
{
	struct drain_arg *a = arg;
	struct bgs_drain_status *st = a->st;
	__u32 i;

	(void)k;
	(void)be;
	if (verdict != BGS_FLOW_LIVE || f->svc_id != a->svc_id || f->color != st->color)
		return 0;
	st->flows++;
	for (i = 0; i < st->nbackends && st->backends[i].id != f->backend_id; i++)
		;
	if (i < st->nbackends)
		st->backends[i].flows++;
	return 0;
}

int bgs_drain_status(struct bgs *h, __u32 svc_id, struct bgs_drain_status *st)
{
	struct drain_arg a = { .svc_id = svc_id, .st = st };
	struct bgs_flip_view v;
	struct bgs_service svc;
	__u32 ids[BGS_MAX_POOL_BACKENDS];
	int err, n, i;

	bgs_err_clear();
	memset(st, 0, sizeof(*st));
	err = bgs_svc_read(h, svc_id, &svc);
	if (!err)
		err = bgs_clock(h, &st->now, &st->hz);
	if (err)
		return err;
	bgs_flip_view_init(&v, bgs_word_load(h, svc_id), &h->flip[svc_id], st->now);
	st->color = !v.live;
	st->generation = bgs_fw_gen(v.word);
	st->draining = v.draining;
	st->deadline = v.drain_gen && (v.word & BGS_FW_DRAINING) ? v.deadline : 0;
	n = bgs_pool_list(h, svc_id, st->color, ids, BGS_MAX_POOL_BACKENDS);
	if (n < 0)
		return n;
	for (i = 0; i < n && i < BGS_MAX_POOL_BACKENDS; i++)
		st->backends[st->nbackends++].id = ids[i];
	return bgs_flow_walk_verdict(h, drain_cb, &a, NULL, NULL);
}
