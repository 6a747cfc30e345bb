/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The flow-liveness rule: whether a conntrack entry still holds its flow. This is its one
 * definition; the XDP program and libbgswitch both compile it (header only, fixed-width
 * types, no BPF helper and no libc call inside), so `bgctl flip --wait`, drain and conntrack
 * counts are the program's own decisions.
 *
 * Inputs, all passed in, none read behind the caller's back:
 *   - the entry (struct bgs_flow) and its protocol (the key's proto);
 *   - what asks: BGS_FLOW_PKT_SYN for a TCP SYN without ACK (the program), 0 for "does the
 *     entry hold its flow" (user space, and every other packet);
 *   - now, in the program's jiffies (user space: bgs_clock()), and HZ;
 *   - the loaded timeouts (struct bgs_flow_timeouts, seconds: bgs_meta.timeouts);
 *   - the backend record of f->backend_id as read now (NULL when there is none);
 *   - the service's flip state as one read of its word gives it (bgs_flip_view_init).
 *
 * User space: take a snapshot of the service's bgs_flip entry (bgs_service_get: word with
 * acquire semantics, both drain copies, epoch), bgs_flip_view_init over it, and for each
 * entry of that service (f->svc_id) its backend record; an entry is a flow left exactly
 * when bgs_flow_verdict(..., pkt 0, ...) is BGS_FLOW_LIVE.
 *
 * Interface stability: the signatures of bgs_flip_view_init and bgs_flow_verdict and the
 * meaning of each verdict are fixed; new verdicts may be added before BGS_FLOW_NR.
 */
#ifndef BGSWITCH_FLOW_H
#define BGSWITCH_FLOW_H

#include "bgswitch.h"

/* Always inlined: a BPF function call takes at most five arguments. */
#define BGS_FLOW_INLINE static inline __attribute__((always_inline))

/* Protocol numbers as the key stores them (no <netinet/in.h> on the BPF side). */
#define BGS_PROTO_TCP 6
#define BGS_PROTO_UDP 17

/* What asks about the entry. */
#define BGS_FLOW_PKT_SYN (1u << 0) /* a TCP SYN without ACK on the entry's tuple */

/* Why an entry no longer holds its flow, or LIVE; checked in this order, SERVICE_GONE
 * first (it was added last: the values stay). */
enum bgs_flow_verdict {
	BGS_FLOW_LIVE = 0,     /* the flow keeps its color and backend */
	BGS_FLOW_BACKEND_GONE, /* no record, not in use, or the id given out again (incarnation) */
	BGS_FLOW_ADMIN_DOWN,   /* the operator took the backend down: its flows move at once */
	BGS_FLOW_HEALTH_DOWN,  /* health down for longer than timeouts.health_grace */
	BGS_FLOW_IDLE,	       /* idle longer than its timeout (the program routes its non-SYN
				* packets as mid-flow packets without an entry) */
	BGS_FLOW_CLOSED,       /* asked by a SYN: the flow saw FIN or RST and either the backend
				* sent it (BGS_TCP_BE_CLOSED, nat) or the flow has been quiet for
				* timeouts.time_wait (the tuple is reused by a new connection) */
	BGS_FLOW_DRAINED,      /* on the drained color, older than the drain's flip, drain over */
	BGS_FLOW_SERVICE_GONE, /* (checked first) the service is inactive, or the entry is of
				* another epoch of its id (deleted, re-created, redefined) */
	BGS_FLOW_NR,
};

/* A service's flip state as one read of its word gives it. */
struct bgs_flip_view {
	__u64 word;	 /* the word as read */
	__u64 deadline;	 /* drain deadline in jiffies (~0: none), with drain_gen */
	__u32 live;	 /* live color */
	__u32 drain_gen; /* generation of the flip that started the current drain; 0 when the
			  * drain fields cannot be trusted with this word */
	__u32 draining;	 /* 1: the drain runs, so the drained color's flows still hold */
	__u32 epoch;	 /* the service's epoch */
};

/*
 * Fills v from word (read once, with acquire semantics in user space) and the drain copy
 * it selects in the same bgs_flip entry, at time now: deadline first, then gen (the
 * writer's order reversed, see struct bgs_flip). The copy is trusted only when its gen is
 * not newer than the word.
 */
BGS_FLOW_INLINE void bgs_flip_view_init(struct bgs_flip_view *v, __u64 word,
					const struct bgs_flip *fl, __u64 now)
{
	const struct bgs_drain *d = &fl->drain[bgs_fw_drain_copy(word)];
	__u32 drain_gen;

	v->deadline = *(const volatile __u64 *)&d->deadline;
	drain_gen = *(const volatile __u32 *)&d->gen;
	v->word = word;
	v->live = bgs_fw_live(word);
	if (drain_gen > bgs_fw_gen(word))
		drain_gen = 0;
	v->drain_gen = drain_gen;
	v->draining = drain_gen && (word & BGS_FW_DRAINING) && now < v->deadline;
	v->epoch = fl->epoch;
}

/* The idle timeout of entry f of protocol proto, in jiffies. */
BGS_FLOW_INLINE __u64 bgs_flow_timeout(const struct bgs_flow *f, __u8 proto,
				       const struct bgs_flow_timeouts *t, __u32 hz)
{
	__u32 s;

	if (proto != BGS_PROTO_TCP)
		s = t->udp;
	else if (f->tcp_state & (BGS_TCP_FIN | BGS_TCP_RST))
		s = t->tcp_close;
	else if (f->tcp_state & BGS_TCP_EST)
		s = t->tcp_est;
	else
		s = t->tcp_syn;
	return (__u64)s * hz;
}

/* How long entry f has been idle at now, in jiffies (0 if it was seen after now). */
BGS_FLOW_INLINE __u64 bgs_flow_idle(const struct bgs_flow *f, __u64 now)
{
	return now > f->last_seen ? now - f->last_seen : 0;
}

/*
 * The rule. be is the record of f->backend_id (NULL: none). Returns BGS_FLOW_LIVE when
 * the entry holds its flow, else why not. The program routes a flow whose entry is not
 * live as a new flow (or, for BGS_FLOW_IDLE and a packet other than a SYN, as a mid-flow
 * packet without an entry); user space counts an entry with pkt 0 as a flow left.
 */
BGS_FLOW_INLINE enum bgs_flow_verdict
bgs_flow_verdict(const struct bgs_flow *f, __u8 proto, __u32 pkt, __u64 now, __u32 hz,
		 const struct bgs_flow_timeouts *t, const struct bgs_backend *be,
		 const struct bgs_flip_view *v)
{
	__u64 idle;

	if (!(v->word & BGS_FW_ACTIVE) || f->epoch != v->epoch)
		return BGS_FLOW_SERVICE_GONE;
	if (!be || !(be->flags & BGS_BE_IN_USE) || be->incarnation != f->incarnation)
		return BGS_FLOW_BACKEND_GONE;
	if (be->admin == BGS_ADMIN_DOWN)
		return BGS_FLOW_ADMIN_DOWN;
	if (be->health == BGS_HEALTH_DOWN &&
	    (now < be->health_down_at ? 0 : now - be->health_down_at) >=
		    (__u64)t->health_grace * hz)
		return BGS_FLOW_HEALTH_DOWN;
	idle = bgs_flow_idle(f, now);
	if (idle > bgs_flow_timeout(f, proto, t, hz))
		return BGS_FLOW_IDLE;
	if ((pkt & BGS_FLOW_PKT_SYN) && (f->tcp_state & (BGS_TCP_FIN | BGS_TCP_RST)) &&
	    ((f->tcp_state & BGS_TCP_BE_CLOSED) || idle >= (__u64)t->time_wait * hz))
		return BGS_FLOW_CLOSED;
	if (f->color != v->live && f->gen < v->drain_gen && !v->draining)
		return BGS_FLOW_DRAINED;
	return BGS_FLOW_LIVE;
}

/* The defaults of the loaded timeouts (bgs_init fills bgs_meta.timeouts with these). */
BGS_FLOW_INLINE void bgs_flow_timeouts_default(struct bgs_flow_timeouts *t)
{
	t->tcp_syn = BGS_DEF_TIMEOUT_TCP_SYN;
	t->tcp_est = BGS_DEF_TIMEOUT_TCP_EST;
	t->tcp_close = BGS_DEF_TIMEOUT_TCP_CLOSE;
	t->udp = BGS_DEF_TIMEOUT_UDP;
	t->time_wait = BGS_DEF_TIME_WAIT;
	t->health_grace = BGS_DEF_HEALTH_GRACE;
}

#endif /* BGSWITCH_FLOW_H */
