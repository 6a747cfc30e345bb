/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * bgagent's only door to libbgswitch. Everything the agent does to the pinned state goes
 * through these functions, so a port to a new library API changes this file pair only.
 * Functions marked EMULATED do here what the library does not offer yet (issue 8 plans it:
 * audit history in the library, batch health changes, a backend created with its health).
 */
#ifndef BGAGENT_AGENT_LIB_H
#define BGAGENT_AGENT_LIB_H

#include <stdbool.h>
#include <json-c/json.h>

#include "libbgswitch.h"

/* The agent's name in the audit history. */
#define AL_ACTOR "bgagent"

/* Create or adopt the pinned state (bgs_init). */
int al_open(const char *pin_dir, struct bgs **h);

/* EMULATED (no bgs_attached): is bgswitch's entry program attached to ifname? */
bool al_attached(const char *ifname);
/* Attach unless attached already; *done says whether it attached now. */
int al_attach(struct bgs *h, const char *ifname, int xdp_mode, bool *done);

/* EMULATED (no health argument to bgs_backend_add): add a backend whose health starts
 * down, so it takes no flows before it passes its checks. The library creates it up and
 * the adapter sets it down right after: a window of one table publish. */
int al_backend_add_down(struct bgs *h, __u32 svc_id, __u32 color,
			const struct bgs_backend_spec *spec, __u32 *id);

/* EMULATED (no batch call): set the health of several backends; stops at the first error. */
int al_health_set(struct bgs *h, const __u32 *ids, const bool *up, unsigned int n);

/*
 * EMULATED (bgs_history_*): the audit history bgctl writes, same file and format
 * (JSON lines; an "intent" record fsync'ed before the change, a "done" or "failed" record
 * with the same id after it), with AL_ACTOR as the user.
 */
struct al_hist {
	int fd;
	json_object *rec;
};
/* Write the intent; details (may be NULL; not consumed) are copied into the record. */
int al_hist_begin(struct al_hist *hs, const char *file, const char *pin_dir, const char *verb,
		  const char *service, json_object *details);
/* Write the outcome (details merged) and close. */
int al_hist_end(struct al_hist *hs, bool ok, json_object *details);

/* EMULATED (stable backend ids, issue 8): the record of a backend the agent knows by id,
 * following it when the library moved it to a new id (a next hop re-resolved is a new record
 * under a fresh id). *id is updated; -ENOENT when the backend is gone. */
int al_backend_current(struct bgs *h, __u32 svc_id, int color, const struct bgs_ip *ip,
		       __u16 port, __u32 *id, struct bgs_backend *rec);

/* EMULATED (bgctl's flow_alive; issue 8's decoded views): is a conntrack entry a flow the
 * data plane would still route to its backend? Not after FIN or RST, not idle past its
 * timeout (the default timeouts: the configured ones are not readable through the library),
 * not when its backend record is gone or reused (be: its backend's record, NULL if none). */
bool al_flow_alive(const struct bgs_flow_key *k, const struct bgs_flow *f,
		   const struct bgs_backend *be, __u64 now, __u32 hz);

/* Jiffies now and per second (the data plane's clock, for drain deadlines). */
int al_clock(struct bgs *h, __u64 *jiffies, __u32 *hz);

#endif
