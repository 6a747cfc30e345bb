/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* bgagent's running state, shared by its parts: the loop (agent.c), applying the config
 * (apply.c), the checks (checks.c) and the metrics server (metrics.c). One thread. */
#ifndef BGAGENT_PRIV_H
#define BGAGENT_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <curl/curl.h>
#include <systemd/sd-event.h>
#include <json-c/json.h>

#include "agent_lib.h"
#include "config.h"
#include "policy.h"

struct agent;
struct svc_rt;
struct walker;
struct rollout_rt;
struct postflip_rt;

/* A conntrack walk's result (walker.c). */
struct flow_snapshot {
	bool ok;
	char err[160];
	__u32 max_backends, max_services;
	__u64 *per_backend; /* flows by backend id (current incarnation) */
	__u64 *drain_left;  /* [svc_id * 2 + color]: flows a running drain still waits on */
	__u64 jiffies;	    /* the data plane's clock when the walk began */
	uint64_t asked_ms;  /* monotonic ms when the loop asked for it */
	uint64_t taken_ms;  /* when the loop took it */
};

enum check_result {
	CR_OK = 0,
	CR_FAIL = 1,
	CR_TIMEOUT = 2,
	CR_NR = 3,
};

/* One backend of a service, and its checks. */
struct be_rt {
	struct agent *ag;
	struct svc_rt *svc;
	__u32 id;
	__u32 incarnation; /* of the record id when the agent took it: changes check it */
	int color;
	struct bgs_ip ip;
	__u16 port;	  /* the backend's port (the VIP's in dsr) */
	__u16 check_port; /* what the checks connect to */
	char label[64];	  /* "10.1.1.2:8080" */
	struct hsm hsm;
	uint64_t checks[CR_NR];
	/* the check in flight, if any */
	sd_event_source *timer; /* next check, or the timeout of the one in flight */
	bool in_flight;
	uint64_t started_us;
	int fd; /* tcp */
	sd_event_source *io;
	CURL *easy; /* http(s) */
	char *url;
	pid_t pid; /* exec: the child (its own process group) */
	sd_event_source *child;
	char last_error[128];
};

struct svc_rt {
	struct agent *ag;
	struct cfg_service *cfg;
	__u32 id;
	char name[BGS_NAME_MAX];
	struct be_rt *be;
	unsigned int nbe;
	bool drift;
	char drift_why[256];
	/* the flip word last seen, to notice flips made by bgctl */
	bool seen;
	__u32 gen;
	int live;
	/* automatic flips: in memory, the last one's hold_down resumed from the history at
	 * start (failover_resume) */
	bool auto_flipped;
	uint64_t auto_flip_ms;
	uint64_t flips_failover, flips_other;
	char blocked_why[200]; /* last FO_BLOCKED reason logged, to log it once */
	uint64_t retry_ms;	/* judge the failover again at this time (0: on a change only) */
	unsigned int flip_fails; /* automatic flips failed in a row (their back-off) */
	/* the drain being tracked: of the flip at generation drain_gen, from the flip word */
	bool draining;
	__u32 drain_gen;
	int drain_color;
	__u64 drain_deadline;
	uint64_t drain_seen_ms;	 /* when the agent began tracking it */
	uint64_t drain_left;	 /* last count from a walk asked after drain_seen_ms */
	bool drain_counted;
	__u32 drain_done_gen; /* the last drain recorded as over (kept in the state file) */
	uint64_t drains_done[4]; /* by enum drain_end */
};

/* How a tracked drain ended. */
enum drain_end {
	DRAIN_DRAINED = 0,    /* no flow left */
	DRAIN_DEADLINE = 1,   /* deadline passed: the data plane routes what is left as new */
	DRAIN_ENDED = 2,      /* ended by hand (bgctl drain --kill) */
	DRAIN_SUPERSEDED = 3, /* another flip started a new drain */
};

struct agent {
	sd_event *ev;
	struct bgs *h;
	struct bgs_history *hist; /* the audit history, attached to h */
	struct cfg *cfg;
	const char *cfg_path;
	const char *version;
	char *pin_dir;
	char *history;
	char *state_file;
	struct svc_rt *svc;
	unsigned int nsvc;
	CURLM *curlm;
	sd_event_source *curl_timer;
	struct curl_sock *csock; /* by fd: libcurl's sockets and their io sources (checks.c) */
	unsigned int ncsock;
	void *mhd; /* struct MHD_Daemon */
	sd_event_source *mhd_io, *mhd_timer;
	sd_event_source *tick;
	uint64_t reloads_ok, reloads_failed;
	uint64_t start_us;
	json_object *state; /* {"services": {NAME: fingerprint}, "drains": {NAME: gen}} */
	struct walker *walker; /* conntrack walks */
	struct walker *writer; /* health writes, next-hop re-resolution */
	int nl_fd;
	sd_event_source *nl_io, *nl_timer;
	struct flow_snapshot *flows; /* the latest conntrack walk */
	unsigned int ticks;
	__u32 stamp;	 /* the pins' change stamp at the last sweep */
	bool stamp_seen; /* stamp is valid */
	struct rollout_rt *ro;	 /* rollouts (rollout.c) */
	struct postflip_rt *pf; /* post-flip checks (postflip.c) */
};

/* Logging: one line per event, with a journald priority prefix under systemd. */
enum { LOG_E = 3, LOG_W = 4, LOG_N = 5, LOG_I = 6, LOG_D = 7 };
void agent_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

uint64_t now_ms(void);
const char *color_str(int color);

/* agent.c: describe the next change made through ag->h for the audit history (details may
 * be NULL, not consumed); the library writes the intent under its lock. Then, after the
 * change function returned result (or at once, result 0, for a record with no change),
 * agent_noted: it writes what was refused before the lock and warns of a lost record. */
int agent_note(struct agent *ag, const struct bgs_change_info *ci, json_object *details);
void agent_noted(struct agent *ag, int result);
/* How long a change made on the loop waits for the pin directory's lock: a held lock must
 * not stall the checks; what was refused is tried again on the next tick. */
#define AGENT_LOOP_LOCK_MS 250

/* apply.c: make the pins match the config where the agent owns them, report drift, and
 * build the runtime (services and backends) from the pins. */
int apply_config(struct agent *ag, struct cfg *cfg, bool at_start);
/* Compare a service's pins with what the agent last applied; log changes of drift. */
void drift_check(struct svc_rt *s);
/* The same from every backend record (bgs_backend_read_all): one read serves a sweep. */
void drift_check_with(struct svc_rt *s, const struct bgs_backend *all, __u32 nall);
void runtime_free(struct agent *ag);

/* checks.c */
int checks_init(struct agent *ag);
void checks_fini(struct agent *ag);
/* Start the checks of every backend of the runtime, spread over their interval. */
void checks_start(struct agent *ag);
void checks_stop_backend(struct be_rt *be);
/* Run `/bin/sh -c cmd` in its own process group with env[n] = {NAME, VALUE} added. */
pid_t spawn_sh(const char *cmd, const char *const env[][2], unsigned int n);

/* agent.c: a check finished. */
void agent_check_done(struct be_rt *be, enum check_result r, const char *why);
/* agent.c: decide (and do) a failover of one service. */
void agent_failover(struct svc_rt *s);
/* agent.c: at start, resume the hold_down of an automatic flip made before a restart. */
void failover_resume(struct svc_rt *s);

/* walker.c: conntrack walks on a thread of their own */
int walker_start(struct agent *ag);
void walker_stop(struct agent *ag);
bool walker_request(struct agent *ag);
/* Re-resolve every backend's next hop on the writer thread. */
void walker_resolve(struct agent *ag);
/* A backend's new health, written by the writer thread. */
struct health_write {
	__u32 id;
	__u32 incarnation; /* as the agent read it: a reused id is refused, not changed */
	bool up;
	char label[128]; /* for its log line */
};
int writer_health(struct agent *ag, const struct health_write *w);

/* netlink.c: neighbour and route changes -> walker_resolve (coalesced) */
int netlink_start(struct agent *ag);
void netlink_stop(struct agent *ag);
void snapshot_free(struct flow_snapshot *s);
/* agent.c: a new snapshot is in ag->flows */
void agent_flows_updated(struct agent *ag);

/* apply.c: the state file's record of finished drains */
__u32 state_drain_done(struct agent *ag, const char *name);
void state_set_drain_done(struct agent *ag, const char *name, __u32 gen);

/* agent.c: the pools of a service as the checks see them (index by color). */
void pool_views(struct svc_rt *s, struct pool_view pv[2]);

/* rollout.c: rollouts stored with the pinned state, run each tick; the heartbeat bgctl
 * reads. postflip.c: the post-flip check after every flip. */
int rollout_init(struct agent *ag);
void rollout_fini(struct agent *ag);
void rollout_beat(struct agent *ag);
void rollout_tick(struct svc_rt *s, const struct bgs_flip *fl);
void rollout_ticks_done(struct agent *ag);
void rollout_metrics(struct agent *ag, FILE *f);
/* A flip by the agent (a rollout's, a rollback), recorded with ci and the details d
 * (consumed; from, to and generation_before are added): bgs_flip's result; on success s
 * follows it, so the next tick does not count it as someone else's. */
int agent_flip(struct svc_rt *s, const struct bgs_flip_opts *o, const struct bgs_change_info *ci,
	       json_object *d, struct bgs_flip *after);
int postflip_init(struct agent *ag);
void postflip_fini(struct agent *ag);
void postflip_tick(struct svc_rt *s, const struct bgs_flip *fl);
/* The agent's own flips of a service by a rollout (rollback false) or by the check. */
void postflip_count(struct agent *ag, const char *service, bool rollback);
void postflip_flips(struct agent *ag, const char *service, uint64_t *rollout, uint64_t *rollback);

/* metrics.c */
int metrics_start(struct agent *ag);
void metrics_stop(struct agent *ag);

#endif
