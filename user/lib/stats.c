// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* libbgswitch: counters (summed over CPUs) and conntrack walks in batches. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bgs_priv.h"
#include "bgs_test.h"
#include "bgs_reap.h"
#include "bgs_ct_reap.skel.h"

#define CT_CHUNK 8192
#define CT_REAP_RUN 131072 /* removals per run of the kernel reaper: ~40 ms */

static size_t round8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

int bgs_percpu_zero(struct bgs *h, int map_fd, __u32 key, size_t value_size)
{
	void *zero = calloc(h->ncpus, round8(value_size));
	int err = 0;

	if (!zero)
		return -ENOMEM;
	if (bpf_map_update_elem(map_fd, &key, zero, BPF_ANY))
		err = -errno;
	free(zero);
	return err;
}

static int counter_sum(struct bgs *h, int fd, __u32 key, struct bgs_counter *c, const char *what)
{
	size_t stride = round8(sizeof(*c));
	struct bgs_counter *v;
	__u8 *vals;
	int i;

	vals = calloc(h->ncpus, stride);
	if (!vals)
		return bgs_err(-ENOMEM, "out of memory");
	if (bpf_map_lookup_elem(fd, &key, vals)) {
		int err = -errno;

		free(vals);
		return bgs_err(err, "cannot read counters of %s: %s", what, strerror(-err));
	}
	memset(c, 0, sizeof(*c));
	for (i = 0; i < h->ncpus; i++) {
		v = (struct bgs_counter *)(vals + i * stride);
		c->packets += v->packets;
		c->bytes += v->bytes;
		c->new_flows += v->new_flows;
		c->resets += v->resets;
	}
	free(vals);
	return 0;
}

int bgs_svc_counters(struct bgs *h, __u32 svc_id, __u32 color, struct bgs_counter *c)
{
	struct bgs_service svc;
	char what[64];
	int err;

	bgs_err_clear();
	if (color != BGS_BLUE && color != BGS_GREEN)
		return bgs_err(-EINVAL, "color %u is neither blue (0) nor green (1)", color);
	err = bgs_svc_read(h, svc_id, &svc);
	if (err)
		return err;
	snprintf(what, sizeof(what), "service %u", svc_id);
	return counter_sum(h, h->map_fd[BGS_M_SVC_STATS], svc_id * 2 + color, c, what);
}

int bgs_backend_counters(struct bgs *h, __u32 backend_id, struct bgs_counter *c)
{
	char what[64];

	bgs_err_clear();
	if (!backend_id || backend_id >= h->meta.max_backends)
		return bgs_err(-ENOENT, "backend id %u is out of range (1..%u)", backend_id,
			       h->meta.max_backends - 1);
	snprintf(what, sizeof(what), "backend %u", backend_id);
	return counter_sum(h, h->map_fd[BGS_M_BE_STATS], backend_id, c, what);
}

int bgs_reason_counters(struct bgs *h, struct bgs_reason_counter c[BGS_R_MAX])
{
	size_t stride = round8(sizeof(struct bgs_reason_counter));
	struct bgs_reason_counter *v;
	__u32 r, key;
	__u8 *vals;
	int i, fd, more_fd;

	bgs_err_clear();
	vals = calloc(h->ncpus, stride);
	if (!vals)
		return bgs_err(-ENOMEM, "out of memory");
	/* the later reasons' map exists once a switch that has them was loaded */
	more_fd = bgs_pin_get(h, "bgs_reasons_more");
	for (r = 0; r < BGS_R_MAX; r++) {
		memset(&c[r], 0, sizeof(c[r]));
		if (r >= BGS_R_BASE_ENTRIES) {
			fd = more_fd;
			key = r - BGS_R_BASE_ENTRIES;
		} else {
			fd = h->map_fd[BGS_M_REASONS];
			key = r;
		}
		if (fd < 0)
			continue;
		if (bpf_map_lookup_elem(fd, &key, vals)) {
			int err = -errno;

			free(vals);
			if (more_fd >= 0)
				close(more_fd);
			return bgs_err(err, "cannot read reason counter %u: %s", r, strerror(-err));
		}
		for (i = 0; i < h->ncpus; i++) {
			v = (struct bgs_reason_counter *)(vals + i * stride);
			c[r].packets += v->packets;
			c[r].bytes += v->bytes;
		}
	}
	free(vals);
	if (more_fd >= 0)
		close(more_fd);
	return 0;
}

const char *bgs_reason_name(enum bgs_reason r)
{
	static const char *const names[BGS_R_MAX] = {
		[BGS_R_FWD_TX] = "fwd_tx",
		[BGS_R_FWD_REDIRECT] = "fwd_redirect",
		[BGS_R_REPLY_TX] = "reply_tx",
		[BGS_R_REPLY_REDIRECT] = "reply_redirect",
		[BGS_R_PASS_NOT_IP] = "pass_not_ip",
		[BGS_R_PASS_VLAN] = "pass_vlan",
		[BGS_R_PASS_NOT_VIP] = "pass_not_vip",
		[BGS_R_PASS_PROTO] = "pass_proto",
		[BGS_R_PASS_TTL] = "pass_ttl",
		[BGS_R_PASS_NO_NEXTHOP] = "pass_no_nexthop",
		[BGS_R_PASS_REPLY_NO_FLOW] = "pass_reply_no_flow",
		[BGS_R_DROP_MALFORMED] = "drop_malformed",
		[BGS_R_DROP_L4_TRUNC] = "drop_l4_trunc",
		[BGS_R_DROP_FRAGMENT] = "drop_fragment",
		[BGS_R_PASS_FRAGMENT] = "pass_fragment",
		[BGS_R_DROP_IP_OPTIONS] = "drop_ip_options",
		[BGS_R_DROP_EXT_HDR] = "drop_ext_hdr",
		[BGS_R_DROP_NO_BACKEND] = "drop_no_backend",
		[BGS_R_DROP_NO_NEXTHOP] = "drop_no_nexthop",
		[BGS_R_DROP_INACTIVE] = "drop_inactive",
		[BGS_R_ICMP_FWD] = "icmp_fwd",
		[BGS_R_PASS_ICMP] = "pass_icmp",
		[BGS_R_CT_SKIPPED] = "ct_skipped",
		[BGS_R_CT_FULL] = "ct_full",
		[BGS_R_PASS_NO_SWITCH] = "pass_no_switch",
		[BGS_R_REPLY_UNTRACKED] = "reply_untracked",
		[BGS_R_PASS_REPLY_UNTRACKED] = "pass_reply_untracked",
		[BGS_R_DROP_REPLY_NO_FLOW] = "drop_reply_no_flow",
		[BGS_R_DROP_REPLY_IFACE] = "drop_reply_iface",
		[BGS_R_DROP_UNTRACKABLE] = "drop_untrackable",
		[BGS_R_ICMP_TO_CLIENT] = "icmp_to_client",
		[BGS_R_CT_MIDFLOW] = "ct_midflow",
		[BGS_R_MIDFLOW_DRAINED] = "midflow_drained",
		[BGS_R_MIDFLOW_FRESH] = "midflow_fresh",
		[BGS_R_CT_STALE_BACKEND_GONE] = "ct_stale_backend_gone",
		[BGS_R_CT_STALE_ADMIN_DOWN] = "ct_stale_admin_down",
		[BGS_R_CT_STALE_HEALTH_DOWN] = "ct_stale_health_down",
		[BGS_R_CT_STALE_IDLE] = "ct_stale_idle",
		[BGS_R_CT_STALE_CLOSED] = "ct_stale_closed",
		[BGS_R_CT_STALE_DRAINED] = "ct_stale_drained",
		[BGS_R_CT_STALE_SERVICE_GONE] = "ct_stale_service_gone",
	};

	if ((unsigned int)r >= BGS_R_MAX || !names[r])
		return "unknown";
	return names[r];
}

/* ---- Conntrack ---- */

/* Calls cb on every flow, CT_CHUNK at a time; falls back to get_next_key. */
int bgs_ct_walk(struct bgs *h, bgs_flow_cb cb, void *arg)
{
	int fd = h->map_fd[BGS_M_CT], ret = 0, err;
	struct bgs_flow_key *keys = NULL, k, next;
	struct bgs_flow *vals = NULL, v;
	__u32 count, i;
	__u64 batch = 0;
	void *in = NULL;
	bool done = false;

	keys = calloc(CT_CHUNK, sizeof(*keys));
	vals = calloc(CT_CHUNK, sizeof(*vals));
	if (!keys || !vals) {
		ret = bgs_err(-ENOMEM, "out of memory");
		goto out;
	}
	while (!done) {
		count = CT_CHUNK;
		err = bpf_map_lookup_batch(fd, in, &batch, keys, vals, &count, NULL);
		if (err) {
			err = -errno;
			if (err == -ENOENT) {
				done = true;
			} else if (err == -EINVAL && !in) {
				goto slow; /* no batch ops for this map type here */
			} else {
				ret = bgs_err(err, "cannot walk conntrack: %s", strerror(-err));
				goto out;
			}
		}
		in = &batch;
		for (i = 0; i < count; i++) {
			ret = cb(&keys[i], &vals[i], arg);
			if (ret)
				goto out;
		}
	}
	goto out;
slow:
	in = NULL;
	while (bpf_map_get_next_key(fd, in, &next) == 0) {
		k = next;
		in = &k;
		if (bpf_map_lookup_elem(fd, &k, &v))
			continue; /* gone meanwhile */
		ret = cb(&k, &v, arg);
		if (ret)
			goto out;
	}
	if (errno != ENOENT)
		ret = bgs_err(-errno, "cannot walk conntrack: %s", strerror(errno));
out:
	free(keys);
	free(vals);
	return ret;
}

int bgs_flow_walk(struct bgs *h, bgs_flow_cb cb, void *arg)
{
	bgs_err_clear();
	if (!cb)
		return bgs_err(-EINVAL, "flow walk without a callback");
	return bgs_ct_walk(h, cb, arg);
}

struct kill_arg {
	__u32 svc_id;
	__u32 moved_gen, moved; /* as struct bgs_reap's (the user walk only counts) */
	int color;
	bool only_idle;
	__u32 live;
	bool gen_bound; /* keep an entry of epoch created after generation max_gen */
	__u32 epoch, max_gen;
	const struct bgs_backend *orphans_of; /* every record: only flows whose backend is gone */
	__u32 max_backends;
	struct bgs_flow_key *keys;
	__u8 *colors;
	__u32 n, cap;
};

/* A flow whose (backend id, incarnation) names no backend of its service any more. */
static bool flow_orphan(const struct kill_arg *a, const struct bgs_flow *flow)
{
	const struct bgs_backend *be;

	if (flow->backend_id >= a->max_backends)
		return true;
	be = &a->orphans_of[flow->backend_id];
	return !(be->flags & BGS_BE_IN_USE) || be->incarnation != flow->incarnation ||
	       be->svc_id != flow->svc_id;
}

static int kill_collect(const struct bgs_flow_key *key, const struct bgs_flow *flow, void *arg)
{
	struct kill_arg *a = arg;
	struct bgs_flow_key *nk;
	__u8 *nc;

	if (flow->svc_id != a->svc_id)
		return 0;
	if (a->moved_gen && (flow->flags & BGS_FLOW_MOVED) && flow->gen == a->moved_gen &&
	    flow->epoch == a->epoch) {
		a->moved++;
		return 0;
	}
	if (a->color != BGS_ANY_COLOR && flow->color != (__u32)a->color)
		return 0;
	if (a->only_idle && flow->color == a->live)
		return 0;
	if (a->gen_bound && flow->epoch == a->epoch && flow->gen > a->max_gen)
		return 0;
	if (a->orphans_of && !flow_orphan(a, flow))
		return 0;
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 4096;
		nk = realloc(a->keys, (size_t)a->cap * sizeof(*nk));
		if (nk)
			a->keys = nk;
		nc = realloc(a->colors, a->cap);
		if (nc)
			a->colors = nc;
		if (!nk || !nc)
			return -ENOMEM;
	}
	a->colors[a->n] = flow->color;
	a->keys[a->n++] = *key;
	return 0;
}

/* Deletes a->keys[0..n) in batches; returns how many went. */
static int kill_keys(struct bgs *h, const struct kill_arg *a)
{
	int fd = h->map_fd[BGS_M_CT], err, deleted = 0;
	__u32 done = 0, count;

	while (done < a->n) {
		count = a->n - done < CT_CHUNK ? a->n - done : CT_CHUNK;
		err = bpf_map_delete_batch(fd, &a->keys[done], &count, NULL);
		if (err) {
			err = -errno;
			/* Stops at a key that went away meanwhile (LRU, expiry): skip it. */
			if (err != -ENOENT && err != -EINVAL)
				return bgs_err(err, "cannot delete flows of service %u: %s",
					       a->svc_id, strerror(-err));
			if (err == -EINVAL && count == 0) {
				/* No batch delete: one by one. */
				if (bpf_map_delete_elem(fd, &a->keys[done]) == 0)
					deleted++;
				done++;
				continue;
			}
			deleted += count;
			done += count + 1;
			continue;
		}
		deleted += count;
		done += count;
	}
	return deleted;
}

/*
 * The kernel's way (bgs_ct_reap.bpf.c): one pass over the table in the kernel deletes what
 * matches, 5-10x less CPU than copying a million entries out and their keys back in.
 * Returns how many went, or -EOPNOTSUPP when the program cannot be loaded here (the
 * caller then walks from user space), or another error.
 */
static int ct_reap_kernel(struct bgs *h, struct bgs_reap *a)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = a, .ctx_size_in = sizeof(*a));
	struct bgs_ct_reap *skel;
	__u32 runs = 0, max_runs;
	long long total = 0, moved = 0;
	int err;

	bgs_quiet_begin();
	skel = bgs_ct_reap__open();
	/* the open state's map, and no pin path: nothing looked up or pinned by name */
	err = skel ? bpf_map__set_pin_path(skel->maps.bgs_ct, NULL) : -ENOMEM;
	if (!err)
		err = bpf_map__reuse_fd(skel->maps.bgs_ct, h->map_fd[BGS_M_CT]);
	if (!err)
		err = bgs_ct_reap__load(skel);
	bgs_quiet_end();
	if (err) {
		bgs_ct_reap__destroy(skel);
		return -EOPNOTSUPP;
	}
	/* Runs of CT_REAP_RUN removals: one run holds its CPU (no rescheduling inside), and
	 * each run walks again from the start, past the buckets the last one emptied. Bounded:
	 * concurrent inserts of matching flows cannot keep it going. */
	a->max_delete = CT_REAP_RUN;
	if (getenv("BGS_REAP_RUN")) /* tests: smaller runs */
		a->max_delete = (__u32)strtoul(getenv("BGS_REAP_RUN"), NULL, 10) ?: 1;
	max_runs = h->meta.ct_entries / a->max_delete + 16;
	do {
		if (bpf_prog_test_run_opts(bpf_program__fd(skel->progs.bgs_reap), &opts)) {
			err = bgs_err(-errno, "cannot run the conntrack reaper: %s",
				      strerror(errno));
			break;
		}
		total += a->deleted;
		moved += a->moved;
	} while (a->more && ++runs < max_runs);
	bgs_ct_reap__destroy(skel);
	if (!err && a->more)
		err = bgs_err(-EAGAIN, "conntrack reaper: flows of the service keep coming on "
			      "that color; %lld removed", total);
	total += moved;
	return err ? err : (int)(total > INT_MAX ? INT_MAX : total);
}

/*
 * Deletes the conntrack entries of a service: those of color (or BGS_ANY_COLOR) not on the
 * live color, of the flows that existed when it was called. Runs without the lock (a walk
 * from user space takes 0.5 s per million flows): a flip meanwhile is caught by reading the
 * live color again before deleting (user space), or by the generation bound (kernel: a flow
 * the flip sent to the color that became live has a later generation), and such a flow is
 * kept. moved_gen: 0, or the generation a drain end of the caller's published: the entries
 * that predate it go, and the flows it moved before their entries went (BGS_FLOW_MOVED,
 * that generation) count as ended too. Returns how many flows went.
 */
static int ct_kill_idle(struct bgs *h, __u32 svc_id, int color, __u32 moved_gen)
{
	struct kill_arg a = { .svc_id = svc_id, .color = color, .only_idle = true,
			      .moved_gen = moved_gen };
	struct bgs_reap r = { .svc_id = svc_id, .moved_gen = moved_gen };
	__u32 i, j, live;
	__u64 w;
	int err;

	w = bgs_word_load(h, svc_id);
	a.live = bgs_fw_live(w);
	r.color = color == BGS_ANY_COLOR ? BGS_REAP_ANY_COLOR : (__u32)color;
	r.keep_color = a.live;
	r.epoch = __atomic_load_n(&h->flip[svc_id].epoch, __ATOMIC_RELAXED);
	/* a flow that a canary or preview sent to the drained color after the drain end is new */
	r.max_gen = moved_gen ? moved_gen - 1 : bgs_fw_gen(w);
	a.gen_bound = true; /* the same entries either way */
	a.epoch = r.epoch;
	a.max_gen = r.max_gen;
	if (!getenv("BGS_REAP_USER")) { /* BGS_REAP_USER: the user-space walk (tests) */
		err = ct_reap_kernel(h, &r);
		if (err != -EOPNOTSUPP)
			return err;
	}
	err = bgs_ct_walk(h, kill_collect, &a);
	if (err == -ENOMEM)
		bgs_err(err, "out of memory");
	if (err)
		goto out;
	live = bgs_fw_live(bgs_word_load(h, svc_id));
	if (live != a.live) {
		for (i = j = 0; i < a.n; i++) {
			if (a.colors[i] == live)
				continue;
			a.keys[j] = a.keys[i];
			a.colors[j++] = a.colors[i];
		}
		a.n = j;
	}
	err = kill_keys(h, &a);
	if (err >= 0)
		err = (int)((__u64)err + a.moved > INT_MAX ? INT_MAX : err + (int)a.moved);
out:
	free(a.keys);
	free(a.colors);
	return err;
}

int bgs_ct_delete_orphans(struct bgs *h, __u32 svc_id)
{
	struct kill_arg a = { .svc_id = svc_id, .color = BGS_ANY_COLOR,
			      .max_backends = h->meta.max_backends };
	struct bgs_backend *all = NULL;
	int err;

	err = bgs_be_read_all(h, &all);
	if (err)
		return err;
	a.orphans_of = all;
	err = bgs_ct_walk(h, kill_collect, &a);
	if (err == -ENOMEM)
		bgs_err(err, "out of memory");
	if (!err)
		err = kill_keys(h, &a);
	free(all);
	free(a.keys);
	free(a.colors);
	return err;
}

#ifdef BGS_FAULT_INJECT
void (*bgs_test_drain_kill_window)(void *arg);
void *bgs_test_drain_kill_arg;
#endif

int bgs_drain_kill(struct bgs *h, __u32 svc_id, int color, struct bgs_flip *after)
{
	struct bgs_flip now;
	__u32 moved_gen = 0;
	char why[512];
	__u64 w, nw;
	int err;

	bgs_err_clear();
	if (color != BGS_ANY_COLOR && color != BGS_BLUE && color != BGS_GREEN)
		return bgs_err(-EINVAL, "color %d is neither blue (0) nor green (1)", color);
	/* The drain ends first (one publish): the old color's flows are routed as new from
	 * their next packet on. Removing their entries after it only frees the table, so a
	 * failure there leaves nothing half-routed, and a second call finishes it. A flow
	 * whose packet comes between the two moves at once (its new entry says so): it
	 * counts as ended by this call when this call's publish ended the drain. */
	w = bgs_word_load(h, svc_id);
	err = bgs_drain_end(h, svc_id, after ? after : &now);
	if (err)
		return err;
	nw = (after ? after : &now)->word;
	if ((w & BGS_FW_DRAINING) && !(nw & BGS_FW_DRAINING) &&
	    bgs_fw_gen(nw) == bgs_fw_gen(w) + 1)
		moved_gen = bgs_fw_gen(nw);
#ifdef BGS_FAULT_INJECT
	if (bgs_test_drain_kill_window)
		bgs_test_drain_kill_window(bgs_test_drain_kill_arg);
#endif
	err = bgs_fault("drain_kill_flows");
	if (!err)
		err = ct_kill_idle(h, svc_id, color, moved_gen);
	if (err < 0) {
		snprintf(why, sizeof(why), "%s", bgs_errmsg());
		return bgs_err(err, "%s; the drain has ended (those flows go to the live color "
			       "from their next packet), but their entries are still there: run it "
			       "again to remove them", why);
	}
	return err;
}

int bgs_flow_kill(struct bgs *h, __u32 svc_id, int color)
{
	struct bgs_service svc;
	int err;

	bgs_err_clear();
	if (color != BGS_ANY_COLOR && color != BGS_BLUE && color != BGS_GREEN)
		return bgs_err(-EINVAL, "color %d is neither blue (0) nor green (1)", color);
	/* No lock: deleting entries publishes nothing, and the walk is long. */
	err = bgs_svc_read(h, svc_id, &svc);
	if (!err)
		err = ct_kill_idle(h, svc_id, color, 0);
	return err;
}
