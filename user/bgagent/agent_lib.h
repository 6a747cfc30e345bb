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

#endif
