// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The lock that serializes changes: an flock on the pin directory (so an operator can hold
 * off every change with `flock PIN_DIR CMD`), waited for with a deadline. A writer that is
 * stopped (Ctrl-Z) or hung while holding it then costs the others a clear refusal naming
 * it, not a hang.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "bgs_priv.h"

int bgs_lock_timeout_default = BGS_LOCK_TIMEOUT_MS;

void bgs_set_lock_timeout(struct bgs *h, int timeout_ms)
{
	if (h)
		h->lock_timeout_ms = timeout_ms;
	else
		bgs_lock_timeout_default = timeout_ms;
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The pid holding an flock on the file behind fd, from /proc/locks (in our pid namespace;
 * a holder outside it shows as 0 or not at all). 0 if unknown.
 */
static int lock_holder(int fd, char *comm, size_t len)
{
	unsigned int maj, min;
	unsigned long ino;
	char line[256], kind[16], path[64];
	struct stat st;
	FILE *f;
	int pid = 0, p;

	comm[0] = '\0';
	if (fstat(fd, &st) || !(f = fopen("/proc/locks", "re")))
		return 0;
	while (!pid && fgets(line, sizeof(line), f)) {
		/* "1: FLOCK  ADVISORY  WRITE 1234 00:1f:5678 0 EOF"; waiters have "->". */
		if (sscanf(line, "%*d: %15s %*s %*s %d %x:%x:%lu", kind, &p, &maj, &min, &ino) != 5)
			continue;
		if (!strcmp(kind, "FLOCK") && ino == st.st_ino && maj == major(st.st_dev) &&
		    min == minor(st.st_dev) && p > 0)
			pid = p;
	}
	fclose(f);
	if (pid) {
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		f = fopen(path, "re");
		if (f) {
			if (fgets(comm, (int)len, f))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
	}
	return pid;
}

static int lock_busy(int fd, const char *dir, int timeout_ms)
{
	char comm[32], who[96] = "";
	int pid = lock_holder(fd, comm, sizeof(comm));

	if (pid)
		snprintf(who, sizeof(who), " by pid %d%s%s%s", pid, comm[0] ? " (" : "", comm,
			 comm[0] ? ")" : "");
	return bgs_err(-EBUSY, "the lock on %s is held%s: waited %d.%03d s for it; another change "
		       "is running, or a stopped or hung process holds it (a bgctl left with "
		       "Ctrl-Z, or an operator's 'flock %s ...'); nothing was changed: try "
		       "again, or wait longer (--lock-timeout)",
		       dir, who, timeout_ms / 1000, timeout_ms % 1000, dir);
}

int bgs_lock_dir(const char *dir, int timeout_ms)
{
	long long deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	useconds_t pause_us = 1000;
	int fd, err;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return bgs_err(-errno, "cannot open pin directory %s: %s", dir, strerror(errno));
	/* Polling, not a blocking flock under a timer signal: a library must not own the
	 * process's signals, and a daemon's threads each wait on their own. The pause grows
	 * to 20 ms, so a free lock is taken at once and a held one costs little CPU. */
	for (;;) {
		if (!flock(fd, timeout_ms < 0 ? LOCK_EX : LOCK_EX | LOCK_NB))
			return fd;
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			err = -errno;
			close(fd);
			return bgs_err(err, "cannot lock pin directory %s: %s", dir,
				       strerror(-err));
		}
		if (mono_ms() >= deadline) {
			err = lock_busy(fd, dir, timeout_ms);
			close(fd);
			return err;
		}
		usleep(pause_us);
		if (pause_us < 20000)
			pause_us *= 2;
	}
}

int bgs_lock(struct bgs *h)
{
	int fd = bgs_lock_dir(h->pin_dir, h->lock_timeout_ms), err;

	if (fd < 0)
		return fd;
	/* The change's intent goes on disk under the lock, before anything changes. */
	err = bgs_history_intent(h);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

void bgs_unlock(struct bgs *h, int fd, int result)
{
	if (fd < 0)
		return;
	if (h) {
		bgs_history_outcome(h, result, NULL);
		/* failed changes too: a failure may have changed part of it, and a needless
		 * re-read costs a watcher little */
		bgs_changes_bump(h);
	}
	close(fd); /* releases the flock */
}
