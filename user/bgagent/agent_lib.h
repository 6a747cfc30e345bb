/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What bgagent needs from libbgswitch that the library does not offer (yet). Everything else
 * the agent calls from libbgswitch.h directly. Functions marked EMULATED do here what the
 * library lacks; each says what a library call would replace it with.
 */
#ifndef BGAGENT_AGENT_LIB_H
#define BGAGENT_AGENT_LIB_H

#include <stdbool.h>

#include "libbgswitch.h"

/* The agent's name in the audit history (its records' "actor"). */
#define AL_ACTOR "bgagent"

/* EMULATED (no bgs_attached): is bgswitch's entry program attached to ifname? */
bool al_attached(const char *ifname);
/* Attach unless attached already; *done says whether it attached now. */
int al_attach(struct bgs *h, const char *ifname, int xdp_mode, bool *done);

/* EMULATED (bgs_backend_spec has no health): add a backend whose health starts down, so it
 * takes no flows before it passes its checks. The library creates it up and publishes it;
 * the health-down change follows at once (one more publish): for that window, one table
 * publish long, the pool's table may give the new backend new flows. *incarnation (may be
 * NULL) gets the record's incarnation for later changes. */
int al_backend_add_down(struct bgs *h, __u32 svc_id, __u32 color,
			const struct bgs_backend_spec *spec, __u32 *id, __u32 *incarnation);
/* The first half of al_backend_add_down: the backend is added up (one publish) and *down
 * gets the change that takes it down. (A new service's pools go through bgs_service_apply,
 * which creates its backends down with one publish per pool.) */
int al_backend_add_pending(struct bgs *h, __u32 svc_id, __u32 color,
			   const struct bgs_backend_spec *spec, __u32 *id,
			   struct bgs_backend_change *down);

#endif
