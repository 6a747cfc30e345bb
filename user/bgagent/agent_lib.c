// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* bgagent's adapter over libbgswitch (see agent_lib.h; EMULATED parts are marked). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <xdp/libxdp.h>

#include "agent_lib.h"

/* The name libbgswitch gives its entry program (user/lib/bgs_priv.h, not public). */
#define ENTRY_PROG_NAME "bgs_entry"

int al_open(const char *pin_dir, struct bgs **h)
{
	return bgs_init(pin_dir, NULL, h);
}

bool al_attached(const char *ifname)
{
	unsigned int ifindex = if_nametoindex(ifname);
	struct xdp_multiprog *mp;
	struct xdp_program *p = NULL;
	bool found = false;

	if (!ifindex)
		return false;
	mp = xdp_multiprog__get_from_ifindex((int)ifindex);
	if (libxdp_get_error(mp))
		return false;
	if (xdp_multiprog__is_legacy(mp)) {
		p = xdp_multiprog__main_prog(mp);
		found = p && !strcmp(xdp_program__name(p), ENTRY_PROG_NAME);
	} else {
		while ((p = xdp_multiprog__next_prog(p, mp)))
			if (!strcmp(xdp_program__name(p), ENTRY_PROG_NAME))
				found = true;
	}
	xdp_multiprog__close(mp);
	return found;
}

int al_attach(struct bgs *h, const char *ifname, int xdp_mode, bool *done)
{
	*done = false;
	if (al_attached(ifname))
		return 0;
	*done = true;
	return bgs_attach(h, ifname, (enum bgs_xdp_mode)xdp_mode);
}

int al_backend_add_down(struct bgs *h, __u32 svc_id, __u32 color,
			const struct bgs_backend_spec *spec, __u32 *id)
{
	int err = bgs_backend_add(h, svc_id, color, spec, id);

	if (err)
		return err;
	return bgs_backend_set_health(h, *id, BGS_HEALTH_DOWN);
}

int al_health_set(struct bgs *h, const __u32 *ids, const bool *up, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		int err = bgs_backend_set_health(h, ids[i], up[i] ? BGS_HEALTH_UP :
								    BGS_HEALTH_DOWN);
		if (err)
			return err;
	}
	return 0;
}

int al_clock(struct bgs *h, __u64 *jiffies, __u32 *hz)
{
	return bgs_clock(h, jiffies, hz);
}

static bool rec_is(const struct bgs_backend *r, __u32 svc_id, int color,
		   const struct bgs_ip *ip, __u16 port)
{
	return (r->flags & BGS_BE_IN_USE) && r->svc_id == svc_id && r->color == color &&
	       r->family == ip->family && !memcmp(r->addr, ip->addr, sizeof(r->addr)) &&
	       ntohs(r->port) == port;
}

int al_backend_current(struct bgs *h, __u32 svc_id, int color, const struct bgs_ip *ip,
		       __u16 port, __u32 *id, struct bgs_backend *rec)
{
	__u32 nid;
	int err;

	if (bgs_backend_get(h, *id, rec) == 0 && rec_is(rec, svc_id, color, ip, port))
		return 0;
	err = bgs_backend_find(h, svc_id, ip, port, &nid);
	if (err)
		return err;
	err = bgs_backend_get(h, nid, rec);
	if (err)
		return err;
	if (!rec_is(rec, svc_id, color, ip, port))
		return -ENOENT; /* moved to the other color by hand: not this backend any more */
	*id = nid;
	return 0;
}

bool al_flow_alive(const struct bgs_flow_key *k, const struct bgs_flow *f,
		   const struct bgs_backend *be, __u64 now, __u32 hz)
{
	__u64 timeout;

	if (k->proto == IPPROTO_TCP) {
		if (f->tcp_state & (BGS_TCP_FIN | BGS_TCP_RST))
			return false;
		timeout = f->tcp_state & BGS_TCP_EST ? BGS_DEF_TIMEOUT_TCP_EST :
						       BGS_DEF_TIMEOUT_TCP_SYN;
	} else {
		timeout = BGS_DEF_TIMEOUT_UDP;
	}
	if (now > f->last_seen && now - f->last_seen > timeout * (hz ? hz : 1000))
		return false;
	return be && (be->flags & BGS_BE_IN_USE) && be->incarnation == f->incarnation;
}

/* ---- EMULATED: the audit history (bgctl's user/bgctl/history.c format) ---- */

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

/* One write() of the whole line under an exclusive lock, then fdatasync: lines of bgctl
 * and the agent never interleave and a record is on disk before the change it announces. */
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

static void merge(json_object *dst, json_object *src)
{
	if (!src)
		return;
	json_object_object_foreach (src, k, v)
		json_object_object_add(dst, k, json_object_get(v));
}

int al_hist_begin(struct al_hist *hs, const char *file, const char *pin_dir, const char *verb,
		  const char *service, json_object *details)
{
	char ts[64], id[64];
	double epoch;
	int err;

	hs->rec = NULL;
	hs->fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (hs->fd < 0)
		return -errno;
	now_iso(ts, sizeof(ts), &epoch);
	snprintf(id, sizeof(id), "%.0f-%d", epoch * 1000, (int)getpid());
	hs->rec = json_object_new_object();
	json_object_object_add(hs->rec, "id", json_object_new_string(id));
	json_object_object_add(hs->rec, "phase", json_object_new_string("intent"));
	json_object_object_add(hs->rec, "time", json_object_new_string(ts));
	json_object_object_add(hs->rec, "user", json_object_new_string(AL_ACTOR));
	json_object_object_add(hs->rec, "verb", json_object_new_string(verb));
	if (service)
		json_object_object_add(hs->rec, "service", json_object_new_string(service));
	json_object_object_add(hs->rec, "pin_dir", json_object_new_string(pin_dir));
	merge(hs->rec, details);
	err = append(hs->fd, hs->rec);
	if (err) {
		close(hs->fd);
		hs->fd = -1;
		json_object_put(hs->rec);
		hs->rec = NULL;
	}
	return err;
}

int al_hist_end(struct al_hist *hs, bool ok, json_object *details)
{
	char ts[64];
	double epoch;
	int err;

	if (hs->fd < 0 || !hs->rec)
		return -EBADF;
	now_iso(ts, sizeof(ts), &epoch);
	json_object_object_add(hs->rec, "phase", json_object_new_string(ok ? "done" : "failed"));
	json_object_object_add(hs->rec, "time", json_object_new_string(ts));
	merge(hs->rec, details);
	err = append(hs->fd, hs->rec);
	close(hs->fd);
	hs->fd = -1;
	json_object_put(hs->rec);
	hs->rec = NULL;
	return err;
}
