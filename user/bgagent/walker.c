// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Work that may take long, off the loop, on two threads with library handles of their own:
 *  - the walker: conntrack walks (a million flows take about half a second), when the loop
 *    asks; it hands back a snapshot: flows per backend (current incarnation) and, per
 *    service and color, the flows a drain still waits on. The loop keeps the latest one for
 *    the metrics and the drain tracker.
 *  - the writer: backend health changes (each one a table rebuild and publish, which waits
 *    for running BPF programs: milliseconds each, seconds for a thousand) and next-hop
 *    re-resolution. So the loop's timers stay on time, however many backends change at once.
 * Each thread tells the loop through an eventfd that something is done.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "agent_priv.h"

struct walker {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool want, stop, busy;
	bool want_resolve; /* re-resolve every backend's next hop */
	struct health_write *writes; /* queued health changes */
	unsigned int nwrites, capwrites;
	struct flow_snapshot *done; /* handed over, not yet taken by the loop */
	uint64_t asked_ms;	    /* when the walk running now was asked for */
	int efd;
	struct bgs *h;
	sd_event_source *src;
	struct agent *ag;
};

struct walk_ctx {
	struct flow_snapshot *snap;
	struct bgs_flip *flips;
	bool *svc_in_use;
};

void snapshot_free(struct flow_snapshot *s)
{
	if (!s)
		return;
	free(s->per_backend);
	free(s->drain_left);
	free(s);
}

/* verdict is the data plane's own (bgswitch_flow.h, with the timeouts it enforces) */
static int tally(const struct bgs_flow_key *key, const struct bgs_flow *f, int verdict,
		 const struct bgs_backend *be, void *arg)
{
	struct walk_ctx *w = arg;
	struct flow_snapshot *s = w->snap;
	const struct bgs_flip *fl;

	(void)key;
	(void)be;
	if (verdict != BGS_FLOW_LIVE || f->backend_id >= s->max_backends ||
	    f->svc_id >= s->max_services)
		return 0;
	s->per_backend[f->backend_id]++;
	if (!w->svc_in_use[f->svc_id])
		return 0;
	fl = &w->flips[f->svc_id];
	/* what a drain still waits on: the old color's flows from before its flip (a flow
	 * live there after the drain ended is not one: the rule says DRAINED then) */
	if ((bgs_flip_draining(fl)) && f->color != bgs_flip_live(fl) &&
	    f->gen < bgs_flip_drain_gen(fl))
		s->drain_left[f->svc_id * 2 + (f->color & 1)]++;
	return 0;
}

static struct flow_snapshot *walk(struct bgs *h)
{
	struct flow_snapshot *s = calloc(1, sizeof(*s));
	struct walk_ctx w = { .snap = s };
	struct bgs_meta meta;
	__u32 *ids = NULL;
	int n;

	if (!s)
		return NULL;
	bgs_get_meta(h, &meta);
	s->max_backends = meta.max_backends;
	s->max_services = meta.max_services;
	s->per_backend = calloc(meta.max_backends, sizeof(*s->per_backend));
	s->drain_left = calloc((size_t)meta.max_services * 2, sizeof(*s->drain_left));
	w.flips = calloc(meta.max_services, sizeof(*w.flips));
	w.svc_in_use = calloc(meta.max_services, sizeof(*w.svc_in_use));
	ids = calloc(meta.max_services, sizeof(*ids));
	if (!s->per_backend || !s->drain_left || !w.flips || !w.svc_in_use || !ids)
		goto fail;
	/* the flip words first, then the walk (which reads them again with the clock): a
	 * drain that ends meanwhile is not counted */
	n = bgs_service_list(h, ids, meta.max_services);
	for (int i = 0; i < n && i < (int)meta.max_services; i++) {
		struct bgs_service svc;

		if (bgs_service_get(h, ids[i], &svc, &w.flips[ids[i]]) == 0)
			w.svc_in_use[ids[i]] = true;
	}
	if (bgs_flow_walk_verdict(h, tally, &w, &s->jiffies, NULL) < 0)
		goto fail;
	s->ok = true;
	goto out;
fail:
	s->ok = false;
	snprintf(s->err, sizeof(s->err), "%s", bgs_errmsg()[0] ? bgs_errmsg() : "out of memory");
out:
	free(w.flips);
	free(w.svc_in_use);
	free(ids);
	return s;
}

/* Health changes queued since the last batch, as one library call: one publish per pool
 * however many backends change. A later change of the same backend wins (the loop queues
 * only changes, so that is rare). Returns -EBUSY if the lock could not be had: the caller
 * queues the batch again. */
static int apply_writes(struct bgs *h, const struct health_write *w, unsigned int n)
{
	struct bgs_backend_change *c = calloc(n ? n : 1, sizeof(*c));
	const struct health_write **of = calloc(n ? n : 1, sizeof(*of)); /* c[k] is of[k] */
	unsigned int m = 0;
	int err = -ENOMEM;

	if (!c || !of) {
		agent_log(LOG_E, "cannot record %u health changes: out of memory", n);
		goto out;
	}
	for (unsigned int i = 0; i < n; i++) {
		bool later = false;

		for (unsigned int j = i + 1; j < n && !later; j++)
			later = w[j].id == w[i].id;
		if (later)
			continue;
		of[m] = &w[i];
		c[m++] = (struct bgs_backend_change){
			.id = w[i].id,
			.incarnation = w[i].incarnation,
			.admin = BGS_KEEP,
			.health = w[i].up ? BGS_HEALTH_UP : BGS_HEALTH_DOWN,
		};
	}
	err = bgs_backend_set_state(h, c, m);
	if (err == -EBUSY) {
		agent_log(LOG_W, "%u health change%s waiting: %s", m, m == 1 ? "" : "s",
			  bgs_errmsg());
		goto out;
	}
	/* all or none: one backend gone (removed by hand: -ENOENT, -ESTALE) must not hold
	 * back the others, so a refused batch goes again one change at a time */
	for (unsigned int k = 0; err && k < m; k++) {
		if (m > 1 && !bgs_backend_set_state(h, &c[k], 1))
			continue;
		agent_log(LOG_E, "%s: cannot record health %s: %s", of[k]->label,
			  of[k]->up ? "up" : "down", bgs_errmsg());
	}
	err = 0;
out:
	free(of);
	free(c);
	return err;
}

static int queue_locked(struct walker *wk, const struct health_write *w, unsigned int n)
{
	if (wk->nwrites + n > wk->capwrites) {
		unsigned int cap = wk->capwrites ? wk->capwrites : 64;
		struct health_write *nw;

		while (cap < wk->nwrites + n)
			cap *= 2;
		nw = realloc(wk->writes, cap * sizeof(*nw));
		if (!nw)
			return -ENOMEM;
		wk->writes = nw;
		wk->capwrites = cap;
	}
	memcpy(wk->writes + wk->nwrites, w, n * sizeof(*w));
	wk->nwrites += n;
	return 0;
}

/* A batch refused for the lock goes back before what was queued since (a later change of
 * a backend wins). */
static void requeue(struct walker *wk, const struct health_write *w, unsigned int n)
{
	struct health_write *newer;
	unsigned int nn;

	pthread_mutex_lock(&wk->lock);
	newer = wk->writes;
	nn = wk->nwrites;
	wk->writes = NULL;
	wk->nwrites = wk->capwrites = 0;
	if (queue_locked(wk, w, n) || (nn && queue_locked(wk, newer, nn)))
		agent_log(LOG_E, "health changes lost: out of memory");
	free(newer);
	pthread_mutex_unlock(&wk->lock);
}

static void *worker(void *arg)
{
	struct walker *wk = arg;

	pthread_mutex_lock(&wk->lock);
	for (;;) {
		struct flow_snapshot *s;
		uint64_t one = 1;

		while (!wk->want && !wk->want_resolve && !wk->nwrites && !wk->stop)
			pthread_cond_wait(&wk->cond, &wk->lock);
		/* queued health writes go out even when stopping: a restart adopts them */
		if (wk->nwrites) {
			struct health_write *w = wk->writes;
			unsigned int n = wk->nwrites;

			wk->writes = NULL;
			wk->nwrites = wk->capwrites = 0;
			pthread_mutex_unlock(&wk->lock);
			if (apply_writes(wk->h, w, n) == -EBUSY && !wk->stop)
				requeue(wk, w, n); /* the lock is held (bgctl, flock): again */
			free(w);
			pthread_mutex_lock(&wk->lock);
			continue;
		}
		if (wk->stop)
			break;
		if (wk->want_resolve) {
			int err;

			wk->want_resolve = false;
			pthread_mutex_unlock(&wk->lock);
			/* route and neighbour lookups, then table publishes where a next hop
			 * changed: off the loop */
			err = bgs_backend_resolve_all(wk->h);
			if (err)
				agent_log(LOG_W, "re-resolving the backends' next hops: %s",
					  bgs_errmsg());
			pthread_mutex_lock(&wk->lock);
			continue;
		}
		wk->want = false;
		pthread_mutex_unlock(&wk->lock);
		s = walk(wk->h);
		pthread_mutex_lock(&wk->lock);
		if (s)
			s->asked_ms = wk->asked_ms;
		snapshot_free(wk->done);
		wk->done = s;
		if (write(wk->efd, &one, sizeof(one)) < 0) {
			/* the counter cannot overflow here; nothing to do */
		}
	}
	pthread_mutex_unlock(&wk->lock);
	return NULL;
}

static int on_walk_done(sd_event_source *src, int fd, uint32_t revents, void *arg)
{
	struct walker *wk = arg;
	struct flow_snapshot *s;
	uint64_t v;

	(void)src;
	(void)revents;
	if (read(fd, &v, sizeof(v)) < 0)
		return 0;
	pthread_mutex_lock(&wk->lock);
	s = wk->done;
	wk->done = NULL;
	wk->busy = false;
	pthread_mutex_unlock(&wk->lock);
	if (!s)
		return 0;
	if (!s->ok) {
		agent_log(LOG_W, "conntrack walk failed: %s", s->err);
		snapshot_free(s);
		return 0;
	}
	s->taken_ms = now_ms();
	snapshot_free(wk->ag->flows);
	wk->ag->flows = s;
	agent_flows_updated(wk->ag);
	return 0;
}

static struct walker *worker_start(struct agent *ag, const char *what)
{
	struct walker *wk = calloc(1, sizeof(*wk));
	int err;

	if (!wk)
		return NULL;
	wk->ag = ag;
	pthread_mutex_init(&wk->lock, NULL);
	pthread_cond_init(&wk->cond, NULL);
	wk->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	err = wk->efd < 0 ? -errno : bgs_open(ag->pin_dir, &wk->h);
	if (!err && sd_event_add_io(ag->ev, &wk->src, wk->efd, EPOLLIN, on_walk_done, wk) < 0)
		err = -ENOMEM;
	if (!err)
		err = -pthread_create(&wk->thread, NULL, worker, wk);
	if (err) {
		agent_log(LOG_E, "cannot start the %s thread: %s", what, strerror(-err));
		wk->src = sd_event_source_disable_unref(wk->src);
		if (wk->h)
			bgs_close(wk->h);
		if (wk->efd >= 0)
			close(wk->efd);
		free(wk);
		return NULL;
	}
	return wk;
}

int walker_start(struct agent *ag)
{
	ag->walker = worker_start(ag, "conntrack walker");
	ag->writer = ag->walker ? worker_start(ag, "health writer") : NULL;
	return ag->writer ? 0 : -ENOMEM;
}

/* Ask for a walk unless one is running; returns true if one was asked. */
bool walker_request(struct agent *ag)
{
	struct walker *wk = ag->walker;
	bool asked = false;

	if (!wk)
		return false;
	pthread_mutex_lock(&wk->lock);
	if (!wk->busy) {
		wk->busy = true;
		wk->want = true;
		wk->asked_ms = now_ms();
		asked = true;
		pthread_cond_signal(&wk->cond);
	}
	pthread_mutex_unlock(&wk->lock);
	return asked;
}

void walker_resolve(struct agent *ag)
{
	struct walker *wk = ag->writer;

	if (!wk)
		return;
	pthread_mutex_lock(&wk->lock);
	wk->want_resolve = true;
	pthread_cond_signal(&wk->cond);
	pthread_mutex_unlock(&wk->lock);
}

int writer_health(struct agent *ag, const struct health_write *w)
{
	struct walker *wk = ag->writer;
	int err = 0;

	if (!wk)
		return -ENOENT;
	pthread_mutex_lock(&wk->lock);
	err = queue_locked(wk, w, 1);
	if (!err)
		pthread_cond_signal(&wk->cond);
	pthread_mutex_unlock(&wk->lock);
	return err;
}

static void worker_stop(struct walker *wk)
{
	if (!wk)
		return;
	pthread_mutex_lock(&wk->lock);
	wk->stop = true;
	pthread_cond_signal(&wk->cond);
	pthread_mutex_unlock(&wk->lock);
	pthread_join(wk->thread, NULL);
	wk->src = sd_event_source_disable_unref(wk->src);
	snapshot_free(wk->done);
	free(wk->writes);
	bgs_close(wk->h);
	close(wk->efd);
	pthread_mutex_destroy(&wk->lock);
	pthread_cond_destroy(&wk->cond);
	free(wk);
}

void walker_stop(struct agent *ag)
{
	worker_stop(ag->writer);
	worker_stop(ag->walker);
	ag->writer = ag->walker = NULL;
}
