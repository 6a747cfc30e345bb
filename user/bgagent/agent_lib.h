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

/* A backend added to an existing service (a SIGHUP diff) whose health starts down, so it
 * takes no flows before it passes its checks. bgs_backend_add creates it up and publishes it;
 * the health-down change follows at once (one more publish): for that window, one table
 * publish long, the pool's table may give the new backend new flows (a new service's pools go
 * through bgs_service_apply instead, down from the start). *incarnation (may be
 * NULL) gets the record's incarnation for later changes. */
int al_backend_add_down(struct bgs *h, __u32 svc_id, __u32 color,
			const struct bgs_backend_spec *spec, __u32 *id, __u32 *incarnation);

#endif
