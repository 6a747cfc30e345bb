// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libbgswitch core: the handle on the pinned state (open, adopt, close), its meta record,
 * the wait for running programs and the accessors. Errors, the libbpf print hook, sizes,
 * the bpffs, loading and upgrade, and destroy have files of their own.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "bgs_priv.h"
#include "bgs_test.h"
#include "bgswitch_flow.h"
#include "bgs_entry.skel.h"

const char *const bgs_map_names[BGS_M_NR] = {
	[BGS_M_META] = "meta",		 [BGS_M_VIPS] = "vips",
	[BGS_M_SVCS] = "svcs",		 [BGS_M_FLIP] = "flip",
	[BGS_M_MAGLEV] = "maglev",	 [BGS_M_BACKENDS] = "backends",
	[BGS_M_REVNAT] = "revnat",	 [BGS_M_PREVIEW] = "preview",
	[BGS_M_CT] = "ct",		 [BGS_M_SVC_STATS] = "svc_stats",
	[BGS_M_BE_STATS] = "be_stats",	 [BGS_M_FLOOD] = "flood",
	[BGS_M_TX_PORTS] = "tx_ports",	 [BGS_M_REASONS] = "reasons",
	[BGS_M_PROGS] = "progs",	 [BGS_M_PORTS] = "ports",
};

/* ---- Sync ---- */

static size_t page_round(size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	return (n + pg - 1) / pg * pg;
}

/* Maps the Maglev tables on first use: tens of MiB that only pool changes touch, so that
 * a flip does not pay for mapping them. */
int bgs_maglev_map(struct bgs *h)
{
	if (h->maglev != MAP_FAILED)
		return 0;
	h->maglev_len = page_round((size_t)h->meta.max_services * 4 * h->meta.maglev_size *
				   BGS_MAGLEV_STRIDE);
	h->maglev = mmap(NULL, h->maglev_len, PROT_READ | PROT_WRITE, MAP_SHARED,
			 h->map_fd[BGS_M_MAGLEV], 0);
	if (h->maglev == MAP_FAILED)
		return bgs_err(-errno, "cannot map bgs_maglev of %s: %s", h->pin_dir,
			       strerror(errno));
	return 0;
}

int bgs_sync(struct bgs *h)
{
	__u32 key = 0;
	int err;

	/* Updating a map-in-map slot makes the kernel wait (synchronize_rcu) for every
	 * running BPF program: whatever they read before the call is no longer in use. */
	err = bpf_map_update_elem(h->sync_fd, &key, &h->sync_inner_fd, BPF_ANY);
	if (err)
		return bgs_err(-errno, "cannot wait for running programs: %s", strerror(errno));
	return 0;
}

/* ---- Meta ---- */

int bgs_meta_read(const char *dir, struct bgs_meta *meta, bool *present)
{
	char path[PATH_MAX];
	__u32 key = 0;
	int fd, err = 0;

	*present = false;
	memset(meta, 0, sizeof(*meta));
	snprintf(path, sizeof(path), "%s/bgs_meta", dir);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return bgs_err(-errno, "cannot open %s: %s", path, strerror(errno));
	}
	if (bpf_map_lookup_elem(fd, &key, meta)) {
		err = bgs_err(-errno, "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	/* a copy keeps the configuration; the stamp is read fresh (bgs_change_stamp) */
	meta->changes = 0;
	if (meta->layout_version == 0)
		goto out; /* pinned but never completed: treat as absent */
	if (meta->layout_version != BGS_LAYOUT_VERSION) {
		err = bgs_err(-EPROTO,
			      "pins at %s have layout %u, this bgswitch uses %u: remove them with "
			      "'bgctl destroy' (flows are lost) or use a bgswitch of layout %u",
			      dir, meta->layout_version, BGS_LAYOUT_VERSION, meta->layout_version);
		goto out;
	}
	*present = true;
out:
	close(fd);
	return err;
}

int bgs_meta_write(struct bgs *h)
{
	struct bgs_meta cur;
	__u32 key = 0;

	/* the change stamp is the map's, never an older copy's (a watcher compares it) */
	if (!bpf_map_lookup_elem(h->map_fd[BGS_M_META], &key, &cur))
		h->meta.changes = cur.changes;
	if (bpf_map_update_elem(h->map_fd[BGS_M_META], &key, &h->meta, BPF_ANY))
		return bgs_err(-errno, "cannot write bgs_meta: %s", strerror(errno));
	return 0;
}

/* Called under the lock after every change: moves the stamp watchers compare. The other
 * fields are rewritten with the values they hold (the program reads them per packet: a copy
 * of the same bytes), so only the stamp changes. */
void bgs_changes_bump(struct bgs *h)
{
	struct bgs_meta cur;
	__u32 key = 0;

	if (h->map_fd[BGS_M_META] < 0 ||
	    bpf_map_lookup_elem(h->map_fd[BGS_M_META], &key, &cur) || !cur.layout_version)
		return;
	cur.changes++;
	bpf_map_update_elem(h->map_fd[BGS_M_META], &key, &cur, BPF_EXIST);
}

int bgs_change_stamp(struct bgs *h, __u32 *stamp)
{
	struct bgs_meta cur;
	__u32 key = 0;

	if (bpf_map_lookup_elem(h->map_fd[BGS_M_META], &key, &cur))
		return bgs_err(-errno, "cannot read bgs_meta: %s", strerror(errno));
	*stamp = cur.changes;
	return 0;
}

/* ---- Handle ---- */

struct bgs *bgs_handle_new(const char *dir)
{
	struct bgs *h = calloc(1, sizeof(*h));
	int i;

	if (!h)
		return NULL;
	snprintf(h->pin_dir, sizeof(h->pin_dir), "%s", dir);
	for (i = 0; i < BGS_M_NR; i++)
		h->map_fd[i] = -1;
	h->switch_fd = h->clock_fd = h->entry_fd = -1;
	h->sync_fd = h->sync_inner_fd = -1;
	h->flip = MAP_FAILED;
	h->maglev = MAP_FAILED;
	h->revnat = MAP_FAILED;
	h->lock_timeout_ms = bgs_lock_timeout_default;
	h->history = NULL;
	return h;
}

void bgs_close(struct bgs *h)
{
	int i;

	if (!h)
		return;
	if (h->flip != MAP_FAILED)
		munmap(h->flip, h->flip_len);
	if (h->maglev != MAP_FAILED)
		munmap(h->maglev, h->maglev_len);
	if (h->revnat != MAP_FAILED)
		munmap(h->revnat, h->revnat_len);
	for (i = 0; i < BGS_M_NR; i++)
		if (h->map_fd[i] >= 0)
			close(h->map_fd[i]);
	if (h->switch_fd >= 0)
		close(h->switch_fd);
	if (h->clock_fd >= 0)
		close(h->clock_fd);
	if (h->sync_fd >= 0)
		close(h->sync_fd);
	if (h->sync_inner_fd >= 0)
		close(h->sync_inner_fd);
	bgs_entry__destroy(h->entry_skel);
	bgs_note_drop(h);
	free(h);
}

int bgs_pin_get(const struct bgs *h, const char *name)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/%s", h->pin_dir, name) >= (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return bpf_obj_get(path);
}

/* Whoever can write the pin directory can replace a pin (a map, the switch) under root's
 * feet: only a directory of root's that nobody else may write is used. */
static int pin_dir_safe(const char *dir)
{
	struct stat st;

	if (lstat(dir, &st))
		return bgs_err(-errno, "cannot stat pin directory %s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return bgs_err(-ENOTDIR, "pin directory %s is not a directory%s", dir,
			       S_ISLNK(st.st_mode) ? " (a symbolic link)" : "");
	if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
		return bgs_err(-EPERM, "pin directory %s is %s: refusing it (anyone who can write "
			       "it can replace the switch's maps); chown root and chmod go-w it",
			       dir, st.st_uid ? "not owned by root" : "writable by group or others");
	return 0;
}

int bgs_adopt_pins(struct bgs *h)
{
	LIBBPF_OPTS(bpf_map_create_opts, mopts);
	char name[64];
	int i, err;

	err = pin_dir_safe(h->pin_dir);
	if (err)
		return err;

	for (i = 0; i < BGS_M_NR; i++) {
		if (h->map_fd[i] >= 0)
			continue;
		snprintf(name, sizeof(name), "bgs_%s", bgs_map_names[i]);
		h->map_fd[i] = bgs_pin_get(h, name);
		if (h->map_fd[i] < 0)
			return bgs_err(-errno, "pinned map %s/%s is missing (%s): the state is "
				       "incomplete; run init again",
				       h->pin_dir, name, strerror(errno));
	}
	if (h->switch_fd < 0)
		h->switch_fd = bgs_pin_get(h, BGS_PIN_SWITCH);
	if (h->clock_fd < 0)
		h->clock_fd = bgs_pin_get(h, BGS_PIN_CLOCK);

	h->flip_len = page_round((size_t)h->meta.max_services * sizeof(struct bgs_flip));
	h->flip = mmap(NULL, h->flip_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		       h->map_fd[BGS_M_FLIP], 0);
	if (h->flip == MAP_FAILED)
		return bgs_err(-errno, "cannot map bgs_flip of %s: %s", h->pin_dir,
			       strerror(errno));
	h->revnat_len = page_round((size_t)bgs_revnat_size(h->meta.max_backends) *
				   sizeof(struct bgs_revnat_slot));
	h->revnat = mmap(NULL, h->revnat_len, PROT_READ | PROT_WRITE, MAP_SHARED,
			 h->map_fd[BGS_M_REVNAT], 0);
	if (h->revnat == MAP_FAILED)
		return bgs_err(-errno, "cannot map bgs_revnat of %s: %s", h->pin_dir,
			       strerror(errno));

	h->sync_inner_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bgs_sync_in", 4, 4, 1, NULL);
	if (h->sync_inner_fd < 0)
		return bgs_err(-errno, "cannot create sync map: %s", strerror(errno));
	mopts.inner_map_fd = h->sync_inner_fd;
	h->sync_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "bgs_sync", 4, 4, 1, &mopts);
	if (h->sync_fd < 0)
		return bgs_err(-errno, "cannot create sync map: %s", strerror(errno));
	h->ncpus = libbpf_num_possible_cpus();
	if (h->ncpus <= 0) {
		err = h->ncpus ? h->ncpus : -EINVAL;
		return bgs_err(err, "cannot count possible CPUs");
	}
	return 0;
}

int bgs_open(const char *pin_dir, struct bgs **out)
{
	struct bgs *h = NULL;
	bool present;
	int err;

	bgs_err_clear();
	*out = NULL;
	if (!pin_dir)
		pin_dir = BGS_DEFAULT_PIN_DIR;
	h = bgs_handle_new(pin_dir);
	if (!h)
		return bgs_err(-ENOMEM, "out of memory");
	err = bgs_meta_read(pin_dir, &h->meta, &present);
	if (err)
		goto out;
	if (!present) {
		err = bgs_err(-ENOENT, "no bgswitch state at %s: initialize it first", pin_dir);
		goto out;
	}
	err = bgs_adopt_pins(h);
	if (err)
		goto out;
	*out = h;
	h = NULL;
out:
	bgs_close(h);
	return err;
}

/* ---- Accessors ---- */

const char *bgs_mounted(const struct bgs *h)
{
	return h->mounted[0] ? h->mounted : NULL;
}

const char *bgs_pin_dir(const struct bgs *h)
{
	return h->pin_dir;
}

void bgs_get_meta(const struct bgs *h, struct bgs_meta *meta)
{
	*meta = h->meta;
}

int bgs_map_fd(const struct bgs *h, const char *name)
{
	int i;

	if (name && !strncmp(name, "bgs_", 4))
		name += 4;
	for (i = 0; name && i < BGS_M_NR; i++)
		if (!strcmp(name, bgs_map_names[i]))
			return h->map_fd[i];
	return bgs_err(-ENOENT, "no map named '%s'", name ? name : "(null)");
}

int bgs_entry_fd(const struct bgs *h)
{
	if (h->entry_fd < 0)
		return bgs_err(-ENOENT, "no entry program loaded by this handle (use bgs_init)");
	return h->entry_fd;
}

int bgs_switch_fd(const struct bgs *h)
{
	__u32 key = BGS_PROG_SWITCH, id;
	int fd;

	/* Prefer what the program array holds now: another process may have upgraded. */
	if (bpf_map_lookup_elem(h->map_fd[BGS_M_PROGS], &key, &id) == 0) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);

		if (h->switch_fd >= 0 && !bpf_obj_get_info_by_fd(h->switch_fd, &info, &len) &&
		    info.id == id)
			return h->switch_fd;
		fd = bpf_prog_get_fd_by_id(id);
		if (fd >= 0) {
			/* The old fd stays open: a caller may still hold it. */
			((struct bgs *)h)->switch_fd = fd;
			return fd;
		}
	}
	if (h->switch_fd < 0)
		return bgs_err(-ENOENT, "no switch program in %s", h->pin_dir);
	return h->switch_fd;
}

int bgs_switch_info(struct bgs *h, struct bgs_switch_info *si)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd, i;

	memset(si, 0, sizeof(*si));
	fd = bgs_switch_fd(h);
	if (fd < 0)
		return fd;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return bgs_err(-errno, "cannot read the switch program's info: %s",
			       strerror(errno));
	si->prog_id = info.id;
	for (i = 0; i < 8; i++)
		snprintf(si->tag + 2 * i, 3, "%02x", info.tag[i]);
	si->loaded_s = info.load_time / 1000000000ULL;
	si->build_known = bgs_build_running(h, info.id, &si->build_id);
	return 0;
}
