// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The bpffs under the pin directory: found, or mounted (mode 0700) when absent. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>

#include "bgs_priv.h"

/* ---- bpffs ---- */

bool bgs_on_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	char *p;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Mount a bpffs on dir as systemd mounts /sys/fs/bpf: only root may enter it (a world-
 * writable bpffs lets any local user flock the pin directory or create entries in it). */
static int mount_bpffs(struct bgs *h, const char *dir)
{
	if (mount("bpffs", dir, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") < 0)
		return bgs_err(-errno, "%s is not on a bpffs and mounting one there failed: %s",
			       dir, strerror(errno));
	snprintf(h->mounted, sizeof(h->mounted), "%s", dir);
	return 0;
}

/*
 * Make dir a directory on a bpffs: nothing to do if it is one; created if its parent is on a
 * bpffs; under BGS_BPFFS_ROOT with no bpffs there, one is mounted there first; anywhere else,
 * the directory is created and a bpffs mounted on it. h->mounted names what was mounted.
 */
int bgs_ensure_bpffs(struct bgs *h, const char *dir)
{
	const size_t rlen = strlen(BGS_BPFFS_ROOT);
	char parent[PATH_MAX];
	char *slash;
	int err;

	h->mounted[0] = '\0';
	if (bgs_on_bpffs(dir))
		return 0;
	if (!strncmp(dir, BGS_BPFFS_ROOT "/", rlen + 1) && !bgs_on_bpffs(BGS_BPFFS_ROOT)) {
		struct stat st;

		if (stat(BGS_BPFFS_ROOT, &st) < 0 || !S_ISDIR(st.st_mode))
			return bgs_err(-ENOENT, "no %s directory to mount a bpffs on (is sysfs "
				       "mounted?); choose a pin directory elsewhere",
				       BGS_BPFFS_ROOT);
		err = mount_bpffs(h, BGS_BPFFS_ROOT);
		if (err)
			return err;
	}
	if (snprintf(parent, sizeof(parent), "%s", dir) >= (int)sizeof(parent))
		return bgs_err(-ENAMETOOLONG, "pin directory %s: name too long", dir);
	slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	else if (slash)
		parent[1] = '\0';
	if (access(dir, F_OK) < 0 && bgs_on_bpffs(parent)) {
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return bgs_err(-errno, "cannot create pin directory %s: %s", dir,
				       strerror(errno));
		return 0;
	}
	err = mkdir_p(dir);
	if (err)
		return bgs_err(err, "cannot create pin directory %s: %s", dir, strerror(-err));
	if (bgs_on_bpffs(dir)) /* made under the bpffs mounted above */
		return 0;
	return mount_bpffs(h, dir);
}
