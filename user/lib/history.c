// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The audit history: an append-only JSON-lines file that records every change made through
 * a handle it is attached to, whoever the front end is (bgctl, bgagent). The intent record
 * is appended and fsync'ed under the pin directory's lock before the change touches
 * anything, the outcome ("done" or "failed") before the lock is released, both carrying one
 * id: the records are in lock order, and an intent found without an outcome while holding
 * the lock is one whose writer died midway. It is resolved then by comparing the
 * generation it started from with the live one.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <json-c/json.h>

#include "bgs_priv.h"

/* How much of the file's end is searched for intents without an outcome: a crashed change
 * is among the last records written. */
#define HIST_TAIL (256 * 1024)

struct bgs_history {
	int fd;
	char path[PATH_MAX];
	char actor[32];
};

/* The pending change of a handle (bgs_change_note), written at its lock. */
struct bgs_note {
	json_object *rec; /* the intent record; the outcome is the same record, updated */
	__u32 svc_id;
	unsigned int flags;
	bool written;
};

static void now_iso(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)(ts.tv_nsec / 1000000) % 1000);
}

/* mkdir -p of the file's directory (mode 0750), fsync'ing each directory made. */
static void make_parents(const char *path)
{
	char dir[PATH_MAX];
	char *p;
	int dfd;

	snprintf(dir, sizeof(dir), "%s", path);
	p = strrchr(dir, '/');
	if (!p || p == dir)
		return;
	*p = '\0';
	for (p = dir + 1;; p++) {
		if (*p && *p != '/')
			continue;
		char c = *p;

		*p = '\0';
		if (!mkdir(dir, 0750)) {
			dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (dfd >= 0) {
				fsync(dfd);
				close(dfd);
			}
		}
		*p = c;
		if (!c)
			break;
	}
}

int bgs_history_open(const char *path, const char *actor, struct bgs_history **out)
{
	struct bgs_history *hs;
	struct stat st;
	bool created;
	int fd, err;

	bgs_err_clear();
	*out = NULL;
	if (!path || path[0] != '/' || strlen(path) >= PATH_MAX)
		return bgs_err(-EINVAL, "history file '%s' must be an absolute path",
			       path ? path : "(null)");
	make_parents(path);
	created = lstat(path, &st) != 0;
	/* O_NOFOLLOW: a symlink planted where the history goes must not redirect root's
	 * appends to another file. */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0) {
		err = -errno;
		return bgs_err(err, "cannot open history file %s: %s%s", path, strerror(-err),
			       err == -ELOOP ? " (it is a symbolic link)" : "");
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return bgs_err(-EPERM, "history file %s is not a regular file", path);
	}
	if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		close(fd);
		return bgs_err(-EPERM, "history file %s is %s: refusing it (anyone who can write "
			       "it can forge the audit trail); chown root and chmod go-w it",
			       path, st.st_uid ? "not owned by root" : "writable by group or others");
	}
	if (created) {
		char dir[PATH_MAX], *slash;
		int dfd;

		snprintf(dir, sizeof(dir), "%s", path);
		slash = strrchr(dir, '/');
		if (slash == dir)
			slash[1] = '\0';
		else if (slash)
			*slash = '\0';
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	hs = calloc(1, sizeof(*hs));
	if (!hs) {
		close(fd);
		return bgs_err(-ENOMEM, "out of memory");
	}
	hs->fd = fd;
	snprintf(hs->path, sizeof(hs->path), "%s", path);
	snprintf(hs->actor, sizeof(hs->actor), "%s", actor && *actor ? actor : "libbgswitch");
	*out = hs;
	return 0;
}

void bgs_history_close(struct bgs_history *hs)
{
	if (!hs)
		return;
	if (hs->fd >= 0)
		close(hs->fd);
	free(hs);
}

const char *bgs_history_path(const struct bgs_history *hs)
{
	return hs ? hs->path : NULL;
}

void bgs_set_history(struct bgs *h, struct bgs_history *hs)
{
	h->history = hs;
}

/* One write() of the whole line, then fdatasync: lines never interleave (O_APPEND, and
 * every writer holds the pin directory's lock), and a record reported is on disk. */
static int append(struct bgs_history *hs, json_object *rec)
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
	err = bgs_fault("history_append");
	if (!err) {
		n = write(hs->fd, line, len);
		if (n < 0)
			err = -errno;
		else if ((size_t)n != len)
			err = -ENOSPC;
	}
	if (!err && fdatasync(hs->fd))
		err = -errno;
	free(line);
	return err;
}

static void put_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}

static void put_int(json_object *o, const char *k, long long v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

/* Who: the front end, the real and login uids, and the sudo user behind root. */
static void put_who(json_object *rec, const char *actor)
{
	const char *sudo = getenv("SUDO_USER");
	struct passwd *pw = getpwuid(getuid());
	char buf[32] = "";
	FILE *f;

	put_str(rec, "actor", actor);
	if (sudo && *sudo)
		put_str(rec, "user", sudo);
	else if (pw)
		put_str(rec, "user", pw->pw_name);
	else
		put_int(rec, "user", getuid());
	if (sudo && *sudo)
		put_str(rec, "sudo_user", sudo);
	put_int(rec, "uid", getuid());
	f = fopen("/proc/self/loginuid", "re");
	if (f) {
		if (fgets(buf, sizeof(buf), f) && strtoul(buf, NULL, 10) != 4294967295UL)
			put_int(rec, "loginuid", (long long)strtoul(buf, NULL, 10));
		fclose(f);
	}
	put_int(rec, "pid", getpid());
}

static void note_free(struct bgs *h)
{
	if (!h->note)
		return;
	json_object_put(h->note->rec);
	free(h->note);
	h->note = NULL;
}

void bgs_note_drop(struct bgs *h)
{
	note_free(h);
}

int bgs_change_note(struct bgs *h, const struct bgs_change_info *ci)
{
	struct bgs_note *n;
	json_object *det = NULL;
	char ts[64], id[48];
	struct timespec now;

	bgs_err_clear();
	note_free(h);
	if (!ci || !ci->verb)
		return bgs_err(-EINVAL, "a change note needs a verb");
	if (ci->details_json) {
		det = json_tokener_parse(ci->details_json);
		if (!det || !json_object_is_type(det, json_type_object)) {
			json_object_put(det);
			return bgs_err(-EINVAL, "change details are not a JSON object: %.80s",
				       ci->details_json);
		}
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		json_object_put(det);
		return bgs_err(-ENOMEM, "out of memory");
	}
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(id, sizeof(id), "%lld%03d-%d", (long long)now.tv_sec,
		 (int)(now.tv_nsec / 1000000) % 1000, (int)getpid());
	now_iso(ts, sizeof(ts));
	n->rec = json_object_new_object();
	put_str(n->rec, "id", id);
	put_str(n->rec, "phase", "intent");
	put_str(n->rec, "time", ts);
	put_who(n->rec, h->history ? h->history->actor : "libbgswitch");
	put_str(n->rec, "verb", ci->verb);
	if (ci->service)
		put_str(n->rec, "service", ci->service);
	if (ci->reason)
		put_str(n->rec, "reason", ci->reason);
	put_str(n->rec, "pin_dir", h->pin_dir);
	if (det) {
		json_object_object_foreach (det, k, v)
			json_object_object_add(n->rec, k, json_object_get(v));
		json_object_put(det);
	}
	n->svc_id = ci->svc_id;
	n->flags = ci->flags;
	h->note = n;
	return 0;
}

static long long live_gen(struct bgs *h, __u32 svc_id)
{
	struct bgs_service svc;

	if (svc_id == BGS_ALL_SERVICES || bgs_svc_read(h, svc_id, &svc))
		return -1;
	return bgs_fw_gen(bgs_word_load(h, svc_id));
}

/* Writes the outcome of intent rec, whose writer is gone. */
static void resolve_one(struct bgs *h, json_object *rec)
{
	struct bgs_history *hs = h->history;
	json_object *v, *out;
	long long before = -1, now = -1;
	char ts[64];
	__u32 svc_id;

	if (json_object_object_get_ex(rec, "generation_before", &v))
		before = json_object_get_int64(v);
	if (json_object_object_get_ex(rec, "service", &v) &&
	    !bgs_service_find(h, json_object_get_string(v), &svc_id))
		now = live_gen(h, svc_id);
	bgs_err_clear();
	out = json_object_new_object();
	json_object_object_get_ex(rec, "id", &v);
	json_object_object_add(out, "id", json_object_get(v));
	put_str(out, "pin_dir", h->pin_dir);
	now_iso(ts, sizeof(ts));
	put_str(out, "time", ts);
	put_str(out, "resolved_by", hs->actor);
	if (before >= 0 && now == before) {
		put_str(out, "phase", "failed");
		put_str(out, "error", "its writer stopped before the outcome; the generation is "
			"unchanged: not applied");
	} else {
		put_str(out, "phase", "done");
		put_str(out, "note", before < 0 || now < 0 ?
			"its writer stopped before the outcome; whether it applied is unknown" :
			"its writer stopped before the outcome; the generation moved: applied, or "
			"a later change came first");
	}
	if (now >= 0)
		put_int(out, "generation", now);
	append(hs, out);
	json_object_put(out);
}

/* The record's id, phase and whether it is of this pin directory, without parsing it all. */
static json_object *rec_of(const char *line, const char *pin_key)
{
	if (!strstr(line, pin_key))
		return NULL; /* another switch's record (one file may serve several) */
	return json_tokener_parse(line);
}

/*
 * Intents without an outcome at the end of the file, from writers that are gone (we hold
 * the lock, so no live writer of this pin directory is between its intent and its outcome).
 * Every change resolves them before its own intent, so only the records since this pin
 * directory's last completed change can hold one: the file is read backwards from its end
 * up to there (usually one line). Each gets an outcome: generation unchanged since the
 * intent, not applied; moved, applied or overtaken, and the record says which is known.
 */
static void resolve_orphans(struct bgs *h)
{
	struct bgs_history *hs = h->history;
	json_object *done_ids = json_object_new_object(), *orphans = json_object_new_array();
	off_t size = lseek(hs->fd, 0, SEEK_END), from;
	char *buf = NULL, *line, pin_key[PATH_MAX + 16];
	ssize_t got;
	size_t i;
	int rfd;

	snprintf(pin_key, sizeof(pin_key), "\"pin_dir\":\"%s\"", h->pin_dir);
	from = size > HIST_TAIL ? size - HIST_TAIL : 0;
	rfd = open(hs->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	buf = malloc((size_t)(size - from) + 1);
	if (rfd < 0 || !buf)
		goto out;
	got = pread(rfd, buf, (size_t)(size - from), from);
	if (got <= 0)
		goto out;
	buf[got] = '\0';
	for (;;) {
		json_object *r, *id, *ph;
		char *nl = strrchr(buf, '\n');

		while (nl && nl[1] == '\0') { /* trailing newlines */
			*nl = '\0';
			nl = strrchr(buf, '\n');
		}
		line = nl ? nl + 1 : buf;
		r = rec_of(line, pin_key);
		if (r && json_object_object_get_ex(r, "id", &id) &&
		    json_object_object_get_ex(r, "phase", &ph)) {
			const char *sid = json_object_get_string(id);

			if (strcmp(json_object_get_string(ph), "intent")) {
				json_object_object_add(done_ids, sid, NULL);
			} else if (json_object_object_get_ex(done_ids, sid, NULL)) {
				json_object_put(r);
				break; /* a completed change: all before it was settled */
			} else {
				json_object_array_add(orphans, r);
				r = NULL;
			}
		}
		json_object_put(r);
		if (!nl)
			break;
		*nl = '\0';
	}
	for (i = 0; i < json_object_array_length(orphans); i++)
		resolve_one(h, json_object_array_get_idx(orphans, i));
out:
	if (rfd >= 0)
		close(rfd);
	free(buf);
	json_object_put(done_ids);
	json_object_put(orphans);
}

int bgs_history_intent(struct bgs *h)
{
	struct bgs_note *n = h->note;
	int err;

	if (!n || n->written || !h->history)
		return 0;
	resolve_orphans(h);
	err = append(h->history, n->rec);
	if (!err) {
		n->written = true;
		return 0;
	}
	if (n->flags & BGS_CHANGE_EMERGENCY) {
		/* An emergency rollback must not depend on /var having space: it applies, and
		 * the caller is told loudly (bgs_history_lost). */
		h->history_lost = err;
		note_free(h);
		return 0;
	}
	note_free(h);
	return bgs_err(err, "cannot write the history file %s: %s; nothing was changed",
		       h->history->path, strerror(-err));
}

/* The noted service's id: given, or found by its name now (a service just added). */
static __u32 note_svc(struct bgs *h, const struct bgs_note *n)
{
	json_object *v;
	__u32 id;

	if (n->svc_id != BGS_ALL_SERVICES)
		return n->svc_id;
	if (!json_object_object_get_ex(n->rec, "service", &v) ||
	    bgs_service_find(h, json_object_get_string(v), &id))
		return BGS_ALL_SERVICES;
	return id;
}

void bgs_history_outcome(struct bgs *h, int result, const char *error)
{
	struct bgs_note *n = h->note;
	char ts[64];
	long long gen;
	int err;

	char msg[512];

	if (!n || !n->written)
		return;
	snprintf(msg, sizeof(msg), "%s", bgs_errmsg()); /* the lookups below may change it */
	now_iso(ts, sizeof(ts));
	put_str(n->rec, "phase", result < 0 ? "failed" : "done");
	put_str(n->rec, "time", ts);
	if (result < 0)
		put_str(n->rec, "error", error ? error : *msg ? msg : strerror(-result));
	gen = live_gen(h, note_svc(h, n));
	if (gen >= 0)
		put_int(n->rec, "generation", gen);
	err = append(h->history, n->rec);
	if (err && result >= 0)
		h->history_lost = err;
	note_free(h);
	if (result < 0)
		bgs_err(result, "%s", msg); /* the caller reads the change's error, not ours */
	else
		bgs_err_clear();
}

int bgs_change_finish(struct bgs *h, int result, const char *error)
{
	struct bgs_note *n = h->note;
	int lost = h->history_lost, err;

	h->history_lost = 0;
	if (n && h->history && !n->written) {
		/* Refused before it reached the lock (validation): recorded as tried, after the
		 * fact; nothing changed. */
		if ((!(n->flags & BGS_CHANGE_EMERGENCY) || result < 0) &&
		    !(n->flags & BGS_CHANGE_RETRY)) {
			err = append(h->history, n->rec);
			if (!err) {
				n->written = true;
				bgs_history_outcome(h, result, error);
				return lost;
			}
		}
	}
	note_free(h);
	return lost;
}

/* How much of the file's end bgs_history_last searches. */
#define HIST_SCAN (4 * 1024 * 1024)

static const char *rec_str(json_object *r, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(r, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* "2026-12-02T03:31:47.083Z" (now_iso) -> ms since the epoch, or -1. */
static long long iso_ms(const char *t)
{
	struct tm tm = {};
	int ms = 0, n;

	if (!t || sscanf(t, "%d-%d-%dT%d:%d:%d.%3dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			 &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &n) != 7)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (long long)timegm(&tm) * 1000 + ms;
}

static bool rec_matches(json_object *r, const struct bgs_history_query *q)
{
	const char *svc = rec_str(r, "service"), *actor = rec_str(r, "actor"),
		   *verb = rec_str(r, "verb"), *reason = rec_str(r, "reason");

	return svc && actor && verb && !strcmp(svc, q->service) && !strcmp(actor, q->actor) &&
	       !strcmp(verb, q->verb) &&
	       (!q->reason_prefix ||
		(reason && !strncmp(reason, q->reason_prefix, strlen(q->reason_prefix))));
}

int bgs_history_last(struct bgs_history *hs, const struct bgs_history_query *q,
		     long long *time_ms)
{
	json_object *failed = json_object_new_object();
	char *buf = NULL, pin_key[PATH_MAX + 16];
	off_t size, from;
	ssize_t got;
	int rfd, ret = 0;

	bgs_err_clear();
	if (!hs || !q || !q->pin_dir || !q->service || !q->actor || !q->verb || !time_ms) {
		json_object_put(failed);
		return bgs_err(-EINVAL, "history query: pin_dir, service, actor and verb needed");
	}
	snprintf(pin_key, sizeof(pin_key), "\"pin_dir\":\"%s\"", q->pin_dir);
	rfd = open(hs->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (rfd < 0) {
		ret = bgs_err(-errno, "cannot read history %s: %s", hs->path, strerror(errno));
		goto out;
	}
	size = lseek(rfd, 0, SEEK_END);
	from = size > HIST_SCAN ? size - HIST_SCAN : 0;
	buf = malloc((size_t)(size - from) + 1);
	if (size < 0 || !buf) {
		ret = bgs_err(-ENOMEM, "cannot read history %s", hs->path);
		goto out;
	}
	got = size > from ? pread(rfd, buf, (size_t)(size - from), from) : 0;
	if (got < 0) {
		ret = bgs_err(-errno, "cannot read history %s: %s", hs->path, strerror(errno));
		goto out;
	}
	buf[got] = '\0';
	/* newest first; a failed outcome comes after its intent, so it is seen first */
	for (;;) {
		char *nl = strrchr(buf, '\n'), *line;
		json_object *r;

		line = nl ? nl + 1 : buf;
		r = *line && strstr(line, pin_key) ? json_tokener_parse(line) : NULL;
		if (r && json_object_is_type(r, json_type_object)) {
			const char *id = rec_str(r, "id"), *phase = rec_str(r, "phase");

			if (id && phase && !strcmp(phase, "failed")) {
				json_object_object_add(failed, id, NULL);
			} else if (id && phase && !json_object_object_get_ex(failed, id, NULL) &&
				   rec_matches(r, q) && iso_ms(rec_str(r, "time")) >= 0) {
				*time_ms = iso_ms(rec_str(r, "time"));
				json_object_put(r);
				ret = 1;
				break;
			}
		}
		json_object_put(r);
		if (!nl)
			break;
		*nl = '\0';
	}
out:
	if (rfd >= 0)
		close(rfd);
	free(buf);
	json_object_put(failed);
	return ret;
}
