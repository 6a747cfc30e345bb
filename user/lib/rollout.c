// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Rollouts kept with the pinned state. bgctl writes a service's request (start, promote,
 * abort), an agent writes the progress of its steps; both go through the pin directory's
 * lock, so a request and a step never cross. The records live in a small pinned hash map
 * (bgs_rollout, by service id), the agent's heartbeat in a one-entry array (bgs_agent) and
 * its post-flip watches in another hash (bgs_watch).
 * No program reads them, so they are not part of the pin layout: both are made on first
 * use, which gives them to pin directories made before they existed; bgs_destroy removes
 * them with the other bgs_ pins and bgs_upgrade leaves them alone.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "bgs_priv.h"

#define BGS_PIN_ROLLOUT "bgs_rollout"
#define BGS_PIN_AGENT "bgs_agent"
#define BGS_PIN_WATCH "bgs_watch"

static const char *const state_names[BGS_ROLLOUT_NR] = {
	[BGS_ROLLOUT_NONE] = "none",	   [BGS_ROLLOUT_REQUESTED] = "requested",
	[BGS_ROLLOUT_RUNNING] = "running", [BGS_ROLLOUT_GATE] = "gate",
	[BGS_ROLLOUT_PAUSED] = "paused",   [BGS_ROLLOUT_DONE] = "done",
	[BGS_ROLLOUT_ABORTED] = "aborted", [BGS_ROLLOUT_FAILED] = "failed",
	[BGS_ROLLOUT_ROLLED_BACK] = "rolled_back",
};

const char *bgs_rollout_state_name(__u32 state)
{
	return state < BGS_ROLLOUT_NR ? state_names[state] : "unknown";
}

bool bgs_rollout_active(__u32 state)
{
	return state >= BGS_ROLLOUT_REQUESTED && state <= BGS_ROLLOUT_PAUSED;
}

__u64 bgs_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000 + (__u64)ts.tv_nsec / 1000000;
}

/* Fd of a pinned map of ours, made (and pinned) if create and absent; a pinned map with
 * another record size (another build's layout) is refused with -EPROTO. */
static int side_map(const struct bgs *h, const char *name, enum bpf_map_type type,
		    __u32 value_size, __u32 max_entries, bool create)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts);
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX], meta[PATH_MAX + 16];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", h->pin_dir, name) >= (int)sizeof(path))
		return bgs_err(-ENAMETOOLONG, "%s/%s: path too long", h->pin_dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0 && (!create || errno != ENOENT))
		return errno == ENOENT ? -ENOENT :
					 bgs_err(-errno, "cannot open %s: %s", path, strerror(errno));
	if (fd < 0) {
		/* only next to the switch's own pins: not in a directory destroyed meanwhile */
		if (snprintf(meta, sizeof(meta), "%s/bgs_%s", h->pin_dir,
			     bgs_map_names[BGS_M_META]) >= (int)sizeof(meta) || access(meta, F_OK))
			return bgs_err(-ENOENT, "%s: no pinned state", h->pin_dir);
		if (type == BPF_MAP_TYPE_HASH)
			opts.map_flags = BPF_F_NO_PREALLOC;
		fd = bpf_map_create(type, name, sizeof(__u32), value_size, max_entries, &opts);
		if (fd < 0)
			return bgs_err(-errno, "cannot create %s: %s", name, strerror(errno));
		if (bpf_obj_pin(fd, path)) {
			int err = -errno;

			close(fd);
			/* another process pinned it first: use theirs */
			if (err == -EEXIST)
				return side_map(h, name, type, value_size, max_entries, false);
			return bgs_err(err, "cannot pin %s: %s", path, strerror(-err));
		}
		return fd;
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.value_size != value_size) {
		close(fd);
		return bgs_err(-EPROTO, "%s holds records of %u bytes, this build's are %u: it was "
			       "made by another version of bgswitch",
			       path, info.value_size, value_size);
	}
	return fd;
}

static int rollout_map(const struct bgs *h, bool create)
{
	return side_map(h, BGS_PIN_ROLLOUT, BPF_MAP_TYPE_HASH, sizeof(struct bgs_rollout),
			h->meta.max_services ? h->meta.max_services : BGS_DEF_MAX_SERVICES,
			create);
}

/* The service's record, under or without the lock; -ENOENT: none (or an old service's
 * record left on a reused id). */
static int record_read(int fd, __u32 svc_id, const struct bgs_service *svc,
		       struct bgs_rollout *ro)
{
	if (bpf_map_lookup_elem(fd, &svc_id, ro))
		return -ENOENT;
	ro->service[sizeof(ro->service) - 1] = '\0';
	ro->next[sizeof(ro->next) - 1] = '\0';
	ro->reason[sizeof(ro->reason) - 1] = '\0';
	ro->strategy[sizeof(ro->strategy) - 1] = '\0';
	if (strncmp(ro->service, svc->name, sizeof(ro->service)))
		return -ENOENT;
	return 0;
}

/* A service's record in one of these per-service maps (each record begins with the
 * service's name): -ENOENT if none, or if it is one that a deleted service of the same id
 * left. */
typedef int (*side_map_fn)(const struct bgs *h, bool create);

/* The service (which must exist) and the fd of one of its per-service maps. */
static int svc_map(struct bgs *h, __u32 svc_id, side_map_fn open_map, bool create,
		   struct bgs_service *svc)
{
	int err;

	bgs_err_clear();
	err = bgs_svc_read(h, svc_id, svc);
	return err ? err : open_map(h, create);
}

static int svc_record_get(struct bgs *h, __u32 svc_id, side_map_fn open_map, void *rec)
{
	struct bgs_service svc;
	int fd = svc_map(h, svc_id, open_map, false, &svc), err;

	if (fd < 0)
		return fd;
	err = bpf_map_lookup_elem(fd, &svc_id, rec) ? -ENOENT : 0;
	close(fd);
	if (!err && strncmp(rec, svc.name, BGS_NAME_MAX))
		err = -ENOENT;
	return err;
}

int bgs_rollout_get(struct bgs *h, __u32 svc_id, struct bgs_rollout *ro)
{
	int err = svc_record_get(h, svc_id, rollout_map, ro);

	ro->next[sizeof(ro->next) - 1] = '\0';
	ro->reason[sizeof(ro->reason) - 1] = '\0';
	ro->strategy[sizeof(ro->strategy) - 1] = '\0';
	return err;
}

static int record_write(int fd, __u32 svc_id, struct bgs_rollout *ro)
{
	ro->updated_ms = bgs_mono_ms();
	if (bpf_map_update_elem(fd, &svc_id, ro, BPF_ANY))
		return bgs_err(-errno, "service '%s': cannot write its rollout: %s", ro->service,
			       strerror(errno));
	return 0;
}

/* One change of a service's record: under the lock, edit gets the record (have: there is
 * one) and changes it (and the flip word, through canary_publish); the record is written if
 * it returns 0. out and after (may be NULL) get the record and the flip state. */
typedef int (*rollout_edit_fn)(struct bgs *h, __u32 svc_id, const struct bgs_service *svc,
			       bool have, struct bgs_rollout *ro, const void *arg);

static int rollout_edit(struct bgs *h, __u32 svc_id, rollout_edit_fn edit, const void *arg,
			struct bgs_rollout *out, struct bgs_flip *after)
{
	struct bgs_service svc;
	struct bgs_rollout ro;
	int fd, lock, err;

	bgs_err_clear();
	fd = rollout_map(h, true);
	if (fd < 0)
		return fd;
	lock = bgs_lock_svc(h, svc_id, &svc);
	if (lock < 0) {
		close(fd);
		return lock;
	}
	err = record_read(fd, svc_id, &svc, &ro);
	if (err)
		memset(&ro, 0, sizeof(ro));
	err = edit(h, svc_id, &svc, err == 0, &ro, arg);
	if (!err) {
		snprintf(ro.service, sizeof(ro.service), "%s", svc.name);
		err = record_write(fd, svc_id, &ro);
	}
	if (!err && out)
		*out = ro;
	if (after)
		bgs_service_get(h, svc_id, NULL, after);
	bgs_unlock(h, lock, err);
	close(fd);
	return err;
}

static int edit_start(struct bgs *h, __u32 svc_id, const struct bgs_service *svc, bool have,
		      struct bgs_rollout *ro, const void *arg)
{
	__u64 w = bgs_word_load(h, svc_id);
	__u32 id = have ? ro->id + 1 : 1;

	(void)arg;
	if (have && bgs_rollout_active(ro->state))
		return bgs_err(-EBUSY, "service '%s': rollout %u is %s (step %u/%u): promote or "
			       "abort it first", svc->name, ro->id,
			       bgs_rollout_state_name(ro->state),
			       ro->step + 1 > ro->nsteps ? ro->nsteps : ro->step + 1, ro->nsteps);
	memset(ro, 0, sizeof(*ro));
	ro->state = BGS_ROLLOUT_REQUESTED;
	ro->id = id;
	ro->from_color = bgs_fw_live(w);
	ro->start_gen = bgs_fw_gen(w);
	ro->started_s = (__u64)time(NULL);
	snprintf(ro->next, sizeof(ro->next), "the agent takes it and runs the first step");
	return 0;
}

int bgs_rollout_start(struct bgs *h, __u32 svc_id, struct bgs_rollout *out)
{
	return rollout_edit(h, svc_id, edit_start, NULL, out, NULL);
}

static int no_active(const struct bgs_service *svc, bool have, const struct bgs_rollout *ro)
{
	if (!have)
		return bgs_err(-ENOENT, "service '%s' has no rollout", svc->name);
	return bgs_err(-ENOENT, "service '%s' has no active rollout (rollout %u is %s)",
		       svc->name, ro->id, bgs_rollout_state_name(ro->state));
}

static int edit_promote(struct bgs *h, __u32 svc_id, const struct bgs_service *svc, bool have,
			struct bgs_rollout *ro, const void *arg)
{
	(void)h;
	(void)svc_id;
	(void)arg;
	if (!have || !bgs_rollout_active(ro->state))
		return no_active(svc, have, ro);
	ro->promotes++;
	return 0;
}

int bgs_rollout_promote(struct bgs *h, __u32 svc_id, struct bgs_rollout *out)
{
	return rollout_edit(h, svc_id, edit_promote, NULL, out, NULL);
}

/* Under the lock: set the canary share of svc_id (keeping stickiness), a publish only if it
 * changes. */
static int canary_publish(struct bgs *h, __u32 svc_id, const struct bgs_service *svc,
			  __u32 bps, long long expect_gen)
{
	__u64 w = bgs_word_load(h, svc_id), nw;

	if (expect_gen != BGS_ANY_GEN && (expect_gen < 0 || (__u64)expect_gen != bgs_fw_gen(w)))
		return bgs_err(-ESTALE, "service '%s': generation is %u, not %lld", svc->name,
			       bgs_fw_gen(w), expect_gen);
	if (bps > BGS_CANARY_SCALE)
		return bgs_err(-EINVAL, "canary weight %u is out of range 0..%u basis points", bps,
			       BGS_CANARY_SCALE);
	if (bgs_fw_canary(w) == bps)
		return 0;
	nw = w & ~(BGS_FW_CANARY_MASK << BGS_FW_CANARY_SHIFT);
	nw |= (__u64)bps << BGS_FW_CANARY_SHIFT;
	bgs_word_publish(h, svc_id, bgs_word_next_gen(nw));
	return 0;
}

static int edit_abort(struct bgs *h, __u32 svc_id, const struct bgs_service *svc, bool have,
		      struct bgs_rollout *ro, const void *arg)
{
	const char *why = arg;
	int err = 0;

	if (!have || !bgs_rollout_active(ro->state))
		return no_active(svc, have, ro);
	/* The canary goes back at once, whatever the agent does; after a flip it is not the
	 * rollout's any more (a flip resets it) */
	if (bgs_fw_live(bgs_word_load(h, svc_id)) == ro->from_color)
		err = canary_publish(h, svc_id, svc, 0, BGS_ANY_GEN);
	if (err)
		return err;
	ro->state = BGS_ROLLOUT_ABORTED;
	ro->canary_bps = 0;
	snprintf(ro->reason, sizeof(ro->reason), "%s", why && *why ? why : "aborted");
	snprintf(ro->next, sizeof(ro->next), "nothing (aborted)");
	return 0;
}

int bgs_rollout_abort(struct bgs *h, __u32 svc_id, const char *why, struct bgs_rollout *out,
		      struct bgs_flip *after)
{
	return rollout_edit(h, svc_id, edit_abort, why, out, after);
}

struct update_arg {
	const struct bgs_rollout *seen, *next;
	int canary_bps;
	long long expect_gen;
};

static int edit_update(struct bgs *h, __u32 svc_id, const struct bgs_service *svc, bool have,
		       struct bgs_rollout *ro, const void *arg)
{
	const struct update_arg *u = arg;
	const struct bgs_rollout *seen = u->seen;
	int err = 0;

	/* updated_ms is the writer's own stamp: what bgctl changes must be as the caller read */
	if (!have || ro->id != seen->id || ro->state != seen->state || ro->step != seen->step ||
	    ro->promotes != seen->promotes || ro->promotes_seen != seen->promotes_seen ||
	    ro->from_color != seen->from_color)
		return bgs_err(-ESTALE, "service '%s': its rollout changed meanwhile (now %u %s)",
			       svc->name, have ? ro->id : 0,
			       have ? bgs_rollout_state_name(ro->state) : "gone");
	if (u->canary_bps >= 0)
		err = canary_publish(h, svc_id, svc, (__u32)u->canary_bps, u->expect_gen);
	if (!err)
		*ro = *u->next;
	return err;
}

int bgs_rollout_update(struct bgs *h, __u32 svc_id, const struct bgs_rollout *seen,
		       const struct bgs_rollout *next, int canary_bps, long long expect_gen,
		       struct bgs_flip *after)
{
	struct update_arg u = { seen, next, canary_bps, expect_gen };

	return rollout_edit(h, svc_id, edit_update, &u, NULL, after);
}

static int watch_map(const struct bgs *h, bool create)
{
	return side_map(h, BGS_PIN_WATCH, BPF_MAP_TYPE_HASH, sizeof(struct bgs_flip_watch),
			h->meta.max_services ? h->meta.max_services : BGS_DEF_MAX_SERVICES,
			create);
}

int bgs_flip_watch_set(struct bgs *h, __u32 svc_id, const struct bgs_flip_watch *w)
{
	struct bgs_flip_watch v = *w;
	struct bgs_service svc;
	int fd = svc_map(h, svc_id, watch_map, true, &svc), err;

	if (fd < 0)
		return fd;
	snprintf(v.service, sizeof(v.service), "%s", svc.name);
	err = 0;
	if (bpf_map_update_elem(fd, &svc_id, &v, BPF_ANY))
		err = bgs_err(-errno, "service '%s': cannot write its post-flip watch: %s", svc.name,
			      strerror(errno));
	close(fd);
	return err;
}

int bgs_flip_watch_get(struct bgs *h, __u32 svc_id, struct bgs_flip_watch *w)
{
	return svc_record_get(h, svc_id, watch_map, w);
}

/* A deleted service's rollout record and post-flip watch go with it (under its lock), so
 * that a service made again under the same name and id starts with neither. */
void bgs_svc_side_records_del(struct bgs *h, __u32 svc_id)
{
	side_map_fn maps[] = { rollout_map, watch_map };

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		int fd = maps[i](h, false);

		if (fd < 0)
			continue; /* never made: nothing to remove */
		bpf_map_delete_elem(fd, &svc_id);
		close(fd);
	}
	bgs_err_clear();
}

static int beat_map(const struct bgs *h, bool create)
{
	return side_map(h, BGS_PIN_AGENT, BPF_MAP_TYPE_ARRAY, sizeof(struct bgs_agent_beat), 1,
			create);
}

int bgs_agent_beat_write(struct bgs *h, const struct bgs_agent_beat *b)
{
	__u32 key = 0;
	int fd, err = 0;

	bgs_err_clear();
	fd = beat_map(h, true);
	if (fd < 0)
		return fd;
	/* one element written by one agent: no lock (a tick must not wait for it) */
	if (bpf_map_update_elem(fd, &key, b, BPF_ANY))
		err = bgs_err(-errno, "cannot write the agent's heartbeat: %s", strerror(errno));
	close(fd);
	return err;
}

int bgs_agent_beat_read(struct bgs *h, struct bgs_agent_beat *b)
{
	__u32 key = 0;
	int fd, err = 0;

	bgs_err_clear();
	fd = beat_map(h, false);
	if (fd < 0)
		return fd == -ENOENT ? bgs_err(-ENOENT, "no agent ever ran on %s", h->pin_dir) : fd;
	if (bpf_map_lookup_elem(fd, &key, b) || !b->seen_ms)
		err = bgs_err(-ENOENT, "no agent ever ran on %s", h->pin_dir);
	close(fd);
	return err;
}
