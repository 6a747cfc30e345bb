// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* bgs_destroy: the pins go, under the pin directory's lock. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bgs_priv.h"

int bgs_destroy(const char *pin_dir)
{
	struct dirent *de;
	char path[PATH_MAX];
	int lock, err = 0;
	DIR *d;

	bgs_err_clear();
	if (!pin_dir)
		pin_dir = BGS_DEFAULT_PIN_DIR;
	if (!bgs_on_bpffs(pin_dir))
		return bgs_err(-ENOENT, "%s is not a bpffs directory: nothing to destroy", pin_dir);
	lock = bgs_lock_dir(pin_dir, bgs_lock_timeout_default);
	if (lock < 0)
		return lock;
	d = opendir(pin_dir);
	if (!d) {
		err = bgs_err(-errno, "cannot read %s: %s", pin_dir, strerror(errno));
		goto out;
	}
	while ((de = readdir(d))) {
		/* Our pins, and temporaries (bgs_*_tmp_PID) of an interrupted pin_replace. */
		if (strncmp(de->d_name, "bgs_", 4))
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_dir, de->d_name);
		if (unlink(path) < 0 && errno != ENOENT && !err)
			err = bgs_err(-errno, "cannot remove %s: %s", path, strerror(errno));
	}
	closedir(d);
out:
	bgs_unlock(NULL, lock, err);
	return err;
}
