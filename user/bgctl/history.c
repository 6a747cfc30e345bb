// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The audit history: an append-only JSON-lines file. Every change writes an "intent" record
 * (fsync'ed) before it touches the maps and a "done" or "failed" record (fsync'ed) before
 * it is reported, both carrying one id; a crash between the two leaves an intent without an
 * outcome, which `bgctl history` shows as unconfirmed, so no change is ever unrecorded.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bgctl.h"

static void now_iso(char *buf, size_t len, double *epoch)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	*epoch = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *who(void)
{
	static char name[64];
	const char *s = getenv("SUDO_USER");
	struct passwd *pw;

	if (s && *s)
		return s;
	pw = getpwuid(getuid());
	if (pw)
		return pw->pw_name;
	snprintf(name, sizeof(name), "uid %u", getuid());
	return name;
}

/* mkdir -p of the file's directory; fsync the directory when the file is new. */
static int open_log(const char *path, int *fd)
{
	char dir[4096];
	char *slash;
	bool created = false;
	struct stat st;
	int dfd;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		for (char *p = dir + 1; *p; p++) {
			if (*p != '/')
				continue;
			*p = '\0';
			mkdir(dir, 0750);
			*p = '/';
		}
		mkdir(dir, 0750);
	} else if (slash) {
		strcpy(dir, "/");
	} else {
		strcpy(dir, ".");
	}
	if (stat(path, &st) != 0)
		created = true;
	*fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (*fd < 0)
		return -errno;
	if (created) {
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	return 0;
}

static int append(int fd, json_object *rec)
{
	const char *s = json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN |
								    JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t len = strlen(s);
	char *line = malloc(len + 2);
	ssize_t n;
	int err = 0;

	if (!line)
		return -ENOMEM;
	memcpy(line, s, len);
	line[len++] = '\n';
	/* One write() of the whole line under an exclusive lock: lines never interleave. */
	if (flock(fd, LOCK_EX) != 0) {
		err = -errno;
		goto out;
	}
	n = write(fd, line, len);
	if (n < 0)
		err = -errno;
	else if ((size_t)n != len)
		err = -EIO;
	if (!err && fdatasync(fd) != 0)
		err = -errno;
	flock(fd, LOCK_UN);
out:
	free(line);
	return err;
}

int hist_intent(struct hist *hs, const char *verb, const char *service, json_object *details)
{
	char ts[96];
	double epoch;
	int err;

	memset(hs, 0, sizeof(*hs));
	hs->fd = -1;
	err = open_log(g.history_file, &hs->fd);
	if (err)
		return fail(err,
			    err == -EACCES || err == -EPERM || err == -EROFS ? EXIT_KERNEL
									     : EXIT_OTHER,
			    "cannot open history file %s: %s; nothing was changed (set "
			    "--history-file or BGSWITCH_HISTORY to a writable file)",
			    g.history_file, strerror(-err));
	now_iso(ts, sizeof(ts), &epoch);
	snprintf(hs->id, sizeof(hs->id), "%.0f-%d", epoch * 1000, (int)getpid());
	hs->rec = json_object_new_object();
	jset(hs->rec, "id", jstr(hs->id));
	jset(hs->rec, "phase", jstr("intent"));
	jset(hs->rec, "time", jstr(ts));
	jset(hs->rec, "user", jstr(who()));
	jset(hs->rec, "verb", jstr(verb));
	if (service)
		jset(hs->rec, "service", jstr(service));
	jset(hs->rec, "pin_dir", jstr(g.pin_dir));
	if (details) {
		json_object_object_foreach (details, k, v)
			jset(hs->rec, k, json_object_get(v));
	}
	err = append(hs->fd, hs->rec);
	if (err) {
		hist_close(hs); /* the caller closes nothing after a refused intent */
		return fail(err, EXIT_OTHER,
			    "cannot write history file %s: %s; nothing was changed", g.history_file,
			    strerror(-err));
	}
	return 0;
}

int hist_finish(struct hist *hs, bool ok, json_object *details)
{
	double epoch;
	char ts[96];
	int err;

	if (hs->fd < 0 || !hs->rec)
		return 0;
	now_iso(ts, sizeof(ts), &epoch);
	jset(hs->rec, "phase", jstr(ok ? "done" : "failed"));
	jset(hs->rec, "time", jstr(ts));
	if (details) {
		json_object_object_foreach (details, k, v)
			jset(hs->rec, k, json_object_get(v));
	}
	err = append(hs->fd, hs->rec);
	if (err && ok)
		return fail(err, EXIT_OTHER,
			    "the change was applied, but its history record could not be written "
			    "to %s (%s); its intent record is there",
			    g.history_file, strerror(-err));
	return 0;
}

void hist_close(struct hist *hs)
{
	if (hs->fd >= 0)
		close(hs->fd);
	hs->fd = -1;
	json_object_put(hs->rec);
	hs->rec = NULL;
}

int run_change(const char *verb, const char *service, json_object *intent,
	       int (*apply)(void *arg, json_object *done), void *arg)
{
	json_object *done = json_object_new_object();
	struct hist hs;
	int err, ret;

	err = hist_intent(&hs, verb, service, intent);
	if (err)
		goto out;
	g.err[0] = '\0';
	ret = apply(arg, done);
	if (ret < 0) {
		jset(done, "error", jstr(g.err[0] ? g.err : strerror(-ret)));
		hist_finish(&hs, false, done);
		err = ret;
		goto out_close;
	}
	err = hist_finish(&hs, true, done);
out_close:
	hist_close(&hs);
out:
	json_object_put(done);
	return err;
}
