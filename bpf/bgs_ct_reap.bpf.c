// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Removes the conntrack entries of one service and color in the kernel, in one pass over
 * the table (bgs_drain_kill, bgs_flow_kill): no key or value is copied to user space and
 * no system call is made per entry. libbgswitch loads it on demand with bgs_ct reused
 * from the open state (the definition here only has to match the pinned map's type, key
 * and value), runs it with BPF_PROG_TEST_RUN until it has nothing more to remove (each run
 * stops after max_delete removals: the kernel does not reschedule inside one run, so a
 * run is kept to some tens of milliseconds) and closes it. Never attached, never pinned.
 */
#include "maps.h"
#include "bgs_reap.h"

BGS_CT_MAP; /* reused (bpf_map__reuse_fd), never pinned from here */

static long reap_one(void *map, struct bgs_flow_key *key, struct bgs_flow *f,
		     struct bgs_reap *a)
{
	if (f->svc_id != a->svc_id)
		return 0;
	/* a flow the drain end moved before its entry went: ended by the caller's drain end */
	if (a->moved_gen && (f->flags & BGS_FLOW_MOVED) && f->gen == a->moved_gen &&
	    f->epoch == a->epoch) {
		f->flags &= ~BGS_FLOW_MOVED;
		a->moved++;
		return 0;
	}
	if (a->color != BGS_REAP_ANY_COLOR && f->color != a->color)
		return 0;
	/* another epoch's entry is no flow of this service; of this one, only what existed
	 * when the caller read generation max_gen (a flow created after it is kept) */
	if (f->epoch == a->epoch && f->gen > a->max_gen)
		return 0;
	if (f->color == a->keep_color)
		return 0;
	if (bpf_map_delete_elem(map, key) == 0)
		a->deleted++;
	else
		a->missed++; /* gone meanwhile (LRU, the program's own insert) */
	if (a->max_delete && a->deleted >= a->max_delete) {
		a->more = 1; /* the caller runs it again: the walk restarts past what went */
		return 1;
	}
	return 0;
}

SEC("syscall")
int bgs_reap(struct bgs_reap *a)
{
	struct bgs_reap r = *a; /* the callback's context lives on the stack */

	r.deleted = r.missed = r.more = r.moved = 0;
	r.walked = bpf_for_each_map_elem(&bgs_ct, reap_one, &r, 0);
	a->walked = r.walked;
	a->deleted = r.deleted;
	a->missed = r.missed;
	a->more = r.more;
	a->moved = r.moved;
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
