// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Which build of the switch runs. A build's id is a hash of its BPF object, so two bgctl
 * binaries carrying the same switch agree and any change to the switch changes it. bgs_init
 * and bgs_upgrade record the id of what they installed, with that program's id, in a pinned
 * one-entry array (bgs_build). No program reads it, so it is not part of the pin layout:
 * pins made before it existed read as an unknown build, and a record whose program id is
 * not the running program's (another tool replaced the switch) reads as unknown too.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "bgs_priv.h"

#define BGS_PIN_BUILD "bgs_build"

/* Value of bgs_build. */
struct bgs_build_rec {
	__u64 build_id; /* bgs_build_id_of() of the installed object */
	__u32 prog_id;	/* the switch program it was installed as */
	__u32 reserved;
};

/* FNV-1a, 64 bits: not for security, only to tell builds apart. */
__u64 bgs_build_id_of(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	__u64 h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

__u64 bgs_build_id(void)
{
	static __u64 id;
	size_t sz;
	const void *elf;

	if (!id) {
		elf = bgs_switch_elf(&sz);
		id = bgs_build_id_of(elf, sz);
	}
	return id;
}

int bgs_build_id_file(const char *path, __u64 *id)
{
	struct stat st;
	void *buf = NULL;
	ssize_t n = 0, r;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		err = bgs_err(-errno, "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		err = bgs_err(-ENOMEM, "out of memory reading %s", path);
		goto out;
	}
	while (n < st.st_size) {
		r = read(fd, (char *)buf + n, (size_t)(st.st_size - n));
		if (r <= 0) {
			err = bgs_err(r < 0 ? -errno : -EIO, "cannot read %s", path);
			goto out;
		}
		n += r;
	}
	*id = bgs_build_id_of(buf, (size_t)n);
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return err;
}

static int build_pin_fd(const struct bgs *h, bool create)
{
	char path[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", h->pin_dir, BGS_PIN_BUILD) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	if (fd >= 0 || !create || errno != ENOENT)
		return fd < 0 ? -errno : fd;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, BGS_PIN_BUILD, sizeof(__u32),
			    sizeof(struct bgs_build_rec), 1, NULL);
	if (fd < 0)
		return -errno;
	if (bpf_obj_pin(fd, path)) {
		close(fd);
		return -errno;
	}
	return fd;
}

void bgs_build_record(struct bgs *h, int switch_fd, __u64 build_id)
{
	struct bgs_build_rec rec = { .build_id = build_id };
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), key = 0;
	int fd;

	/* Best effort, under the caller's lock: a record that is missing or names another
	 * program reads as "unknown", never as a wrong build. */
	if (bpf_obj_get_info_by_fd(switch_fd, &info, &len))
		return;
	rec.prog_id = info.id;
	fd = build_pin_fd(h, true);
	if (fd < 0)
		return;
	bpf_map_update_elem(fd, &key, &rec, BPF_ANY);
	close(fd);
}

bool bgs_build_running(const struct bgs *h, __u32 prog_id, __u64 *build_id)
{
	struct bgs_build_rec rec;
	__u32 key = 0;
	int fd = build_pin_fd(h, false);
	bool known;

	if (fd < 0)
		return false;
	known = bpf_map_lookup_elem(fd, &key, &rec) == 0 && rec.prog_id == prog_id &&
		rec.build_id;
	close(fd);
	if (known)
		*build_id = rec.build_id;
	return known;
}
