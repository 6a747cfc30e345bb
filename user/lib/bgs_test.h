/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Test and benchmark access to libbgswitch's maps. Not part of its API: a front end
 * (bgctl, bgagent) goes through the functions of libbgswitch.h, which know the layouts and
 * the rules; tests and benchmarks read and seed the maps directly to check those.
 */
#ifndef LIBBGSWITCH_TEST_H
#define LIBBGSWITCH_TEST_H

#include "libbgswitch.h"

/* Fd of a pinned map by its name without the "bgs_" prefix ("ct", "vips", ...); -ENOENT. */
int bgs_map_fd(const struct bgs *h, const char *name);

#ifdef BGS_FAULT_INJECT
/* Called (when set) by bgs_drain_kill between its drain end and the removal of the entries,
 * with bgs_test_drain_kill_arg: a test sends packets in that window. Only in the build with
 * failure injection (the sanitizer test build). */
extern void (*bgs_test_drain_kill_window)(void *arg);
extern void *bgs_test_drain_kill_arg;
#endif

#endif /* LIBBGSWITCH_TEST_H */
