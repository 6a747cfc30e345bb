/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Context of the bgs_reap syscall program (bpf/bgs_ct_reap.bpf.c): which conntrack entries
 * of one service it removes, and what it did. In: svc_id, color, keep_color, epoch,
 * max_gen, max_delete, moved_gen. Out: walked, deleted, missed, more, moved.
 */
#ifndef BGS_REAP_H
#define BGS_REAP_H

#include <linux/types.h>

#define BGS_REAP_ANY_COLOR 0xffffffffu

struct bgs_reap {
	__u32 svc_id;
	__u32 color;	  /* the entries' color, or BGS_REAP_ANY_COLOR */
	__u32 keep_color; /* never an entry of this color (the live one) */
	__u32 epoch;	  /* the service's epoch ... */
	__u32 max_gen;	  /* ... and its generation when the caller decided: an entry of this
			   * epoch created by a later generation is kept */
	__u32 max_delete; /* stop after removing this many (0: no limit) ... */
	__u32 walked;	  /* entries visited */
	__u32 deleted;	  /* entries removed */
	__u32 missed;	  /* matched, but gone before the delete */
	__u32 more;	  /* ... and say so: 1 when it stopped there (run it again) */
	__u32 moved_gen;  /* 0, or the generation of the drain end whose moved flows to count */
	__u32 moved;	  /* entries of this epoch and generation moved_gen with BGS_FLOW_MOVED:
			   * counted, their flag cleared (a later run does not count them again),
			   * kept */
};

#endif /* BGS_REAP_H */
