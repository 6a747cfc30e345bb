/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * libbgswitch: the only user-space code that knows the map layouts. It creates or adopts
 * the pinned state, validates every input, serializes changes (flock on the pin
 * directory) and publishes every routing change with one atomic store of the flip word.
 *
 * Every function returns 0 (or a documented non-negative value) or a negative errno, and
 * on failure leaves a one-line message naming the bad value in bgs_errmsg().
 *
 * Concurrency: any number of processes and threads (each thread its own handle) may change
 * the same pinned state. Each change takes the lock only to re-check what it read and
 * publish (next-hop resolution, conntrack walks and the verifier run outside it), waits for
 * it at most bgs_set_lock_timeout (default 5 s, then -EBUSY naming the holder), and is a
 * compare-and-swap where the caller passes what it read: a generation (bgs_flip,
 * bgs_canary_set) or a backend's incarnation (bgs_backend_set_state, bgs_backend_remove),
 * refused with -ESTALE when it changed. A change applies whole or not at all; where a late
 * step cannot be undone, the state stays routable and the message says to run it again.
 * With a history attached (bgs_set_history), every change is recorded there.
 */
#ifndef LIBBGSWITCH_H
#define LIBBGSWITCH_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "bgswitch.h"
#include "bgswitch_flow.h"

struct bgs; /* an open handle on one pin directory */

/* Message of the last failure in this thread ("" if none). */
const char *bgs_errmsg(void);

/* Sizes fixed when the pinned state is created; 0 takes the default. */
struct bgs_sizes {
	__u32 max_services;  /* BGS_DEF_MAX_SERVICES */
	__u32 max_backends;  /* BGS_DEF_MAX_BACKENDS */
	__u32 maglev_size;   /* BGS_DEF_MAGLEV_SIZE; must be prime */
	__u32 ct_entries;    /* BGS_DEF_CT_ENTRIES */
	__u32 new_flow_rate; /* per CPU per second; 0: bgs_default_new_flow_rate(ct_entries,
			      * possible CPUs); UINT32_MAX: no limit in practice */
	/* The flow-liveness rule's timeouts in seconds (include/bgswitch_flow.h), stored in
	 * bgs_meta and enforced from there: each 0 takes its BGS_DEF_*, BGS_TIMEOUT_ZERO
	 * means 0 s (time_wait and health_grace only: a SYN re-picks a closed flow at once,
	 * flows leave a health-down backend at once). At most BGS_TIMEOUT_MAX. */
	struct bgs_flow_timeouts timeouts;
	/* Seeds of the flow hashes (stored in bgs_meta): 0 takes BGS_MAGLEV_SEED and
	 * BGS_CANARY_SEED. Hosts that must pick alike share them; a private pair keeps which
	 * flow goes where (and into the canary) unpredictable from outside. */
	__u32 maglev_seed;
	__u32 canary_seed;
};
#define BGS_TIMEOUT_ZERO (~0u)
#define BGS_TIMEOUT_MAX (366u * 86400)

/* The flow timeouts by index, in the order of struct bgs_flow_timeouts: the names front ends
 * take them by (bgctl init --timeout NAME=..., the agent's timeouts: keys, JSON output). */
#define BGS_TIMEOUT_COUNT 6
/* tcp_syn, tcp_est, tcp_close, udp, time_wait, health_grace; NULL past the last */
const char *bgs_timeout_name(unsigned int i);
/* Whether timeout i may be 0 s (time_wait and health_grace). */
bool bgs_timeout_zero_ok(unsigned int i);
/* Timeout i of t, in seconds. */
__u32 bgs_timeout_get(const struct bgs_flow_timeouts *t, unsigned int i);

/* The largest sizes the control plane handles: a change reads every backend record (64
 * bytes each: 64 MiB at 2^20), table rebuilds touch max_services x 4 x maglev_size
 * entries. bgctl's options take the same limits. */
#define BGS_LIMIT_MAX_SERVICES 65536
#define BGS_LIMIT_MAX_BACKENDS (1u << 20)
#define BGS_LIMIT_MAGLEV_SIZE 1000003
#define BGS_LIMIT_CT_ENTRIES (1u << 26)
#define BGS_LIMIT_NEW_FLOW_RATE 100000000 /* or UINT32_MAX: unlimited */

/* Check sizes against what the program and the kernel accept, before anything is created;
 * out (may be NULL) gets them with the defaults filled in. The message begins with the
 * field's name ("maglev_size 100: expected ..."). */
int bgs_sizes_check(const struct bgs_sizes *in, struct bgs_sizes *out);

/*
 * Create the pinned state under pin_dir (NULL: BGS_DEFAULT_PIN_DIR) if absent, or adopt it if
 * present (sizes then must be 0 or match). With no bpffs there, mounts one (mode 0700) at
 * BGS_BPFFS_ROOT when pin_dir is under it, else on pin_dir itself (see bgs_mounted).
 * Loads the switch and the entry program, pins every map, the switch and the clock program,
 * and puts the switch in the entry's program array. Idempotent.
 * -EPROTO: pins of another layout version (message says which and what to do).
 */
int bgs_init(const char *pin_dir, const struct bgs_sizes *sizes, struct bgs **out);

/* Adopt existing pinned state without loading anything. -ENOENT: not initialized. */
int bgs_open(const char *pin_dir, struct bgs **out);

/* Close a handle (its history, if any, stays open: the caller owns it). */
void bgs_close(struct bgs *h);

/* Default time a change waits for the pin directory's lock (an flock, so an operator can
 * hold off every change with `flock PIN_DIR CMD`). */
#define BGS_LOCK_TIMEOUT_MS 5000
/* How long changes through h wait for the lock before they fail with -EBUSY (the message
 * says the lock is held, and by which pid where the kernel tells); < 0 waits as long as it
 * takes, 0 tries once. h NULL sets the default of handles opened later and of bgs_init and
 * bgs_destroy (process-wide: call it before any other thread uses the library). */
void bgs_set_lock_timeout(struct bgs *h, int timeout_ms);

/* Remove every pin under the directory (the state is gone once no program holds it). */
int bgs_destroy(const char *pin_dir);
/* Take the switch down: detach it from every interface it was attached to in the caller's
 * namespace, then bgs_destroy. Refused (-EBUSY) while flows are live unless force; *live_flows
 * (may be NULL) gets their number. The caller then closes h. */
int bgs_teardown(struct bgs *h, bool force, __u64 *live_flows);

/* The pin directory the handle works on. */
const char *bgs_pin_dir(const struct bgs *h);
/* Where bgs_init mounted a bpffs (mode 0700) to make its pin directory, or NULL if it mounted
 * none: BGS_BPFFS_ROOT when the directory is under it and no bpffs was there, else the pin
 * directory itself when it was on no bpffs. */
const char *bgs_mounted(const struct bgs *h);
/* Sizes, layout version, HZ and loaded flow timeouts, as read when the handle opened. */
void bgs_get_meta(const struct bgs *h, struct bgs_meta *meta);

/* Fd of the entry program (the one libxdp attaches) as loaded by bgs_init; for test runs.
 * -ENOENT after bgs_open (nothing loaded). */
int bgs_entry_fd(const struct bgs *h);
/* Fd of the switch program currently in the program array. */
int bgs_switch_fd(const struct bgs *h);

/* The switch program that runs now (the program array's entry). */
struct bgs_switch_info {
	__u32 prog_id;
	char tag[17];	   /* the kernel's hex tag of its instructions */
	__u64 loaded_s;	   /* load time, seconds since boot */
	bool build_known;  /* build_id is recorded for this very program */
	__u64 build_id;	   /* bgs_build_id() of the build that installed it */
};
/* This library's switch build: a hash of the BPF object built into it. Two builds with the
 * same switch object have the same id; `bgctl upgrade` makes the running switch this one. */
__u64 bgs_build_id(void);
/* Fills si from the program the array holds now (another process may have upgraded). */
int bgs_switch_info(struct bgs *h, struct bgs_switch_info *si);

/* Load a fresh switch program (from the object built into the library, or from obj_path),
 * reusing every pinned map, and swap it into the program array in one update. */
int bgs_upgrade(struct bgs *h, const char *obj_path);

/* The program's clock: jiffies now and jiffies per second. */
int bgs_clock(struct bgs *h, __u64 *jiffies, __u32 *hz);

/* The pins' change stamp (one map read): it moves with every change made through the library
 * by any process (under the pin-directory lock), so a watcher that saw the same stamp before
 * knows nothing changed since, and re-reads services and pools only when it moved. */
int bgs_change_stamp(struct bgs *h, __u32 *stamp);

/* ---- Audit history ---- */

/*
 * Every change made through a handle with a history is recorded there the same way,
 * whatever the front end: a JSON line "intent" (who: actor, user, uid, loginuid, sudo_user,
 * pid; what: verb, service, reason, the caller's details) appended and fsync'ed under the
 * pin directory's lock before the change touches anything, then its outcome ("done" or
 * "failed" with the error, and the service's generation after) before the lock is released.
 * An intent found without an outcome at the next change (its writer died midway) gets one:
 * not applied if the generation it started from (detail "generation_before") is still live.
 */
#define BGS_DEFAULT_HISTORY "/var/lib/bgswitch/history.jsonl"
struct bgs_history;
/* Open (create, with its directories) an absolute path; actor names the front end in every
 * record ("bgctl", "bgagent"). Refused (-EPERM) unless a regular file owned by root and not
 * writable by group or others; opened with O_NOFOLLOW (-ELOOP on a symbolic link). */
int bgs_history_open(const char *path, const char *actor, struct bgs_history **out);
/* Close (after every handle using it stopped: bgs_set_history(h, NULL)). */
void bgs_history_close(struct bgs_history *hs);
/* The path it was opened with. */
const char *bgs_history_path(const struct bgs_history *hs);
/* Record the changes made through h in hs (NULL: none); hs must outlive that use. */
void bgs_set_history(struct bgs *h, struct bgs_history *hs);

/* The change applies even if its intent cannot be written (rollback, flip --force): an
 * emergency must not depend on /var having space; bgs_change_finish then says so. */
#define BGS_CHANGE_EMERGENCY (1u << 0)
/* A retry of a change whose refusal is already recorded: refused again before it reached
 * the lock (the lock still held, the same bad value), it is not recorded again. Once it
 * reaches the lock it is recorded as any change. */
#define BGS_CHANGE_RETRY (1u << 1)
struct bgs_change_info {
	const char *verb;	  /* "flip", "backend set", "failover", ... */
	const char *service;	  /* name, or NULL */
	__u32 svc_id;		  /* its id (outcome records its generation), or BGS_ALL_SERVICES */
	const char *reason;	  /* free text ("rollout step 2/3"), or NULL */
	const char *details_json; /* a JSON object merged into the records, or NULL */
	unsigned int flags;	  /* BGS_CHANGE_* */
};
/* Describe the next change made through h (one call of a change function): it is recorded
 * when that function takes the lock. Without a history attached, nothing is written. */
int bgs_change_note(struct bgs *h, const struct bgs_change_info *ci);
/* Call after the change function returned result: a change refused before it reached the
 * lock (a bad value) is recorded now, as failed with error (NULL: bgs_errmsg()), and the
 * note is dropped. Returns 0, or the -errno with which an emergency change's records
 * could not be written (it applied: warn loudly). */
int bgs_change_finish(struct bgs *h, int result, const char *error);

/* The last change recorded in hs for the pin directory pin_dir whose service, actor and
 * verb are those given and whose reason starts with reason_prefix, that applied or may have
 * (an intent whose writer died counts; a failed one does not), among the last few MB of the
 * file: its time (ms since the epoch, CLOCK_REALTIME) in *time_ms. 1 found, 0 not, or
 * -errno. A daemon restarted uses it to keep a promise made before (a hold-down). */
struct bgs_history_query {
	const char *pin_dir, *service, *actor, *verb, *reason_prefix;
};
int bgs_history_last(struct bgs_history *hs, const struct bgs_history_query *q,
		     long long *time_ms);

/* Every backend record in one read (indexed by id, *n of them; free() it): for a front end
 * that shows many pools at once. */
int bgs_backend_read_all(struct bgs *h, struct bgs_backend **all, __u32 *n);

/* ---- Interfaces ---- */

enum bgs_xdp_mode {
	BGS_XDP_NATIVE = 0,
	BGS_XDP_GENERIC = 1,
};

/* Attach the entry program to an interface through libxdp; also adds it to the devmap. */
int bgs_attach(struct bgs *h, const char *ifname, enum bgs_xdp_mode mode);
/* Take it off an interface (-ENOENT: not attached there). Pinned state and flows stay. */
int bgs_detach(struct bgs *h, const char *ifname);
/* Make ifindex (in the caller's namespace) a target of XDP_REDIRECT. */
int bgs_tx_port_add(struct bgs *h, __u32 ifindex);

/* ---- Addresses ---- */

/* An address as keys hold it: network-order words, IPv4 in addr[0]. */
struct bgs_ip {
	__u8 family; /* BGS_AF_INET or BGS_AF_INET6 */
	__u32 addr[4];
};

/* Parse "1.2.3.4" or "2001:db8::1" (no brackets). -EINVAL with a message otherwise. */
int bgs_ip_parse(const char *s, struct bgs_ip *ip);
/* Format into buf (at least 46 bytes). */
const char *bgs_ip_str(const struct bgs_ip *ip, char *buf, size_t len);
/* "10.0.0.1:80" or "[2001:db8::1]:80" into buf; port in host order. */
const char *bgs_addr_port_str(__u8 family, const __u32 *addr, __u16 port, char *buf, size_t len);

/* ---- Services ---- */

struct bgs_service_spec {
	const char *name;    /* [A-Za-z0-9_.-], 1..BGS_NAME_MAX-1 characters, unique */
	struct bgs_ip vip;
	__u16 port;	     /* host order, 1..65535 */
	__u8 proto;	     /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 mode;	     /* enum bgs_mode */
	__u16 preview_port;  /* host order; 0 = none; nat only */
};

/* Add a service (both pools empty, blue live, generation 1, active). -EEXIST on a taken
 * name or VIP:port/proto; -ENOSPC when full. */
int bgs_service_add(struct bgs *h, const struct bgs_service_spec *spec, __u32 *svc_id);
/* Delete a service, its backends, previews and tables; its flows end. */
int bgs_service_del(struct bgs *h, __u32 svc_id);
/* Change a nat service's preview port (host order; 0 removes it) in place: the service,
 * its backends, tables and flows stay. -EEXIST if the port is taken, -EINVAL in dsr. */
int bgs_service_set_preview_port(struct bgs *h, __u32 svc_id, __u16 preview_port);
/* Change a service's mode (enum bgs_mode) in place, where safe: both pools empty (a
 * backend's addressing and its flows are made for one mode) and, to dsr, no preview port;
 * -EBUSY otherwise, with what to do. Name, VIP, generation and previews stay. */
int bgs_service_set_mode(struct bgs *h, __u32 svc_id, __u8 mode);
/* Service id by name; -ENOENT. */
int bgs_service_find(struct bgs *h, const char *name, __u32 *svc_id);
/* Config and current flip state of a service; -ENOENT if the id is not in use. */
int bgs_service_get(struct bgs *h, __u32 svc_id, struct bgs_service *svc, struct bgs_flip *flip);
/* Ids of the services in use, ascending; returns how many (may exceed max). */
int bgs_service_list(struct bgs *h, __u32 *ids, __u32 max);

/* ---- Backends ---- */

struct bgs_backend_spec {
	struct bgs_ip addr;
	__u16 port;   /* host order; 0 = the VIP's port (required in dsr) */
	__u32 weight; /* 1..BGS_MAX_WEIGHT; 0 takes 100 */
};

/* Add a backend to a pool: resolves its next hop (route + neighbour in the caller's
 * namespace), rebuilds the pool's table in the idle slot and publishes it.
 * -EEXIST: same address:port already in this service; -ENOSPC: pool or id space full. */
int bgs_backend_add(struct bgs *h, __u32 svc_id, __u32 color, const struct bgs_backend_spec *spec,
		    __u32 *backend_id);
/* Remove a backend: its table entries go first (published), then its record; the id's
 * next user gets a new incarnation so old flows never follow. */
int bgs_backend_del(struct bgs *h, __u32 backend_id);
/* bgs_backend_del of the backend a caller found: incarnation (from bgs_backend_get; 0 =
 * any) must still be the id's, else -ESTALE (the id was freed and given out again since). */
int bgs_backend_remove(struct bgs *h, __u32 backend_id, __u32 incarnation);

/* "Leave this field as it is" in a bgs_backend_change. */
#define BGS_KEEP (-1)
/* One backend's state change. */
struct bgs_backend_change {
	__u32 id;
	__u32 incarnation; /* as read (bgs_backend_get); 0 = any; else -ESTALE on a reused id */
	int admin;	   /* enum bgs_admin (the operator's), or BGS_KEEP */
	int health;	   /* enum bgs_health (the agent's), or BGS_KEEP */
};
/* Apply n backend state changes as one: every one is checked under one lock before
 * anything is written (all apply or none), and each pool whose usable set changes is
 * published once, however many of its backends change (an agent marking many backends
 * down at once). Bad state: -EINVAL; unknown id: -ENOENT; reused id: -ESTALE; the message
 * names the backend. */
int bgs_backend_set_state(struct bgs *h, const struct bgs_backend_change *c, __u32 n);
/* Operator state of one backend (bgs_backend_set_state). */
int bgs_backend_set_admin(struct bgs *h, __u32 backend_id, enum bgs_admin admin);
/* Health state of one backend (the agent's; bgs_backend_set_state). */
int bgs_backend_set_health(struct bgs *h, __u32 backend_id, enum bgs_health health);
/* A pool's wanted backends (bgs_service_apply), identified by address and port. */
struct bgs_pool_want {
	const struct bgs_backend_spec *be;
	__u32 n; /* at most BGS_MAX_POOL_BACKENDS */
};
struct bgs_apply_result {
	__u32 added;	  /* new backends (new ids) */
	__u32 removed;	  /* backends not wanted, deleted */
	__u32 reweighted; /* kept with a new weight (id, incarnation, counters, flows stay) */
	__u32 published;  /* pools whose table was published (the generation moved as much) */
};
/* Bring both pools (want[BGS_BLUE], want[BGS_GREEN]) to exactly the wanted backends as one
 * change (a config diff): adds the missing ones with health new_health (BGS_HEALTH_DOWN:
 * no flow before they pass checks), changes weights in place, removes the rest, and
 * publishes each changed pool's table once; an unchanged service is not touched. Every
 * spec is checked first (bad value or one address wanted twice: -EINVAL; a backend wanted
 * in the other pool than it is in: -EBUSY, remove it first) and a failure before the
 * publishes changes nothing; one after them leaves the tables applied and removed
 * backends partly deleted (no new flows), and a second call of the same want finishes. */
int bgs_service_apply(struct bgs *h, __u32 svc_id, const struct bgs_pool_want want[2],
		      __u8 new_health, struct bgs_apply_result *res);
#define BGS_ALL_SERVICES (~0u)
struct bgs_resolve_result {
	__u32 checked;	  /* backends resolved */
	__u32 changed;	  /* whose next hop changed (updated in place) */
	__u32 unresolved; /* left without a next hop */
};
/* Re-resolve the next hop of the backends of a service (BGS_ALL_SERVICES: all), after
 * neighbour or route changes. Resolution runs without the lock; under it, each record is
 * re-checked (same incarnation and address) and updated in place: the backend keeps its
 * id, incarnation, counters and flows. While one record changes, the program sees that
 * backend as unresolved for a few ms (nat: passed to the kernel; dsr: dropped, counted).
 * res (may be NULL) gets the counts. */
int bgs_backend_resolve(struct bgs *h, __u32 svc_id, struct bgs_resolve_result *res);
/* bgs_backend_resolve of every service. */
int bgs_backend_resolve_all(struct bgs *h);
/* The record of a backend in use (its incarnation is what bgs_backend_change and
 * bgs_backend_remove check); -ENOENT. */
int bgs_backend_get(struct bgs *h, __u32 backend_id, struct bgs_backend *be);
/* Backend id in a service by address and port (port 0 = VIP port); -ENOENT. */
int bgs_backend_find(struct bgs *h, __u32 svc_id, const struct bgs_ip *addr, __u16 port,
		     __u32 *backend_id);
/* Ids of a pool's backends, ascending; returns how many (may exceed max). */
int bgs_pool_list(struct bgs *h, __u32 svc_id, __u32 color, __u32 *ids, __u32 max);
/* The nat service whose replies backend address:port/proto sends; -ENOENT. */
int bgs_revnat_lookup(struct bgs *h, const struct bgs_revnat_key *k, __u32 *svc_id);
/* What a pool can do with new flows, from its live table and those backends' records. */
struct bgs_pool_state {
	__u32 in_table; /* backends its table gives new flows to (admin up, health up) */
	__u32 ready;	/* of those, with a resolved next hop: the pool's usable backends */
};
/* Reads the live table of (svc_id, color) and its backends' records. */
int bgs_pool_state(struct bgs *h, __u32 svc_id, __u32 color, struct bgs_pool_state *st);
/* True if the pool has a usable backend: admin up, health up and its next hop resolved
 * (a backend without one gets its new flows passed to the kernel in nat, dropped in dsr). */
bool bgs_pool_usable(struct bgs *h, __u32 svc_id, __u32 color);

/* ---- Routing changes (each one atomic publish of the flip word) ---- */

/* Option values for "not given". */
#define BGS_ANY_COLOR (-1)
#define BGS_ANY_GEN (-1LL)
#define BGS_NO_DEADLINE (~0ULL)

struct bgs_flip_opts {
	int to_color;	      /* BGS_ANY_COLOR: the idle color; else flip to it (no-op if live) */
	long long expect_gen; /* BGS_ANY_GEN, or refuse with -ESTALE unless it matches */
	__u64 drain_ms;	      /* drain deadline from now; BGS_NO_DEADLINE: none; 0: drain ends now */
	bool force;	      /* allow a target color with no usable backend */
	/* NULL, or refuse with -ESTALE unless the routing decision (live color, drain
	 * running, canary weight and stickiness) is still the one this state shows: a
	 * publish that moved only the pools (health, backends) refuses nothing */
	const struct bgs_flip *expect;
};

/* Flip live to the other color (reset canary, start draining the old one).
 * Returns 1 if it changed something, 0 if to_color was already live.
 * A front end passes the generation it read as expect_gen: the flip is then a
 * compare-and-swap on what it showed (checked under the lock, before the "already live"
 * answer too). -ESTALE: generation mismatch, and after (if given) holds the state found, so
 * the caller can say what changed; -EHOSTUNREACH: target pool unusable and no force. */
int bgs_flip(struct bgs *h, __u32 svc_id, const struct bgs_flip_opts *opts, struct bgs_flip *after);
/* Canary weight in basis points (0..10000) and stickiness. expect_gen as in bgs_flip
 * (-ESTALE fills after with the state found). */
int bgs_canary_set(struct bgs *h, __u32 svc_id, __u32 bps, bool sticky, long long expect_gen,
		   struct bgs_flip *after);
/* The same, refused with -ESTALE unless the routing decision is still expect's (see
 * bgs_flip_opts.expect; NULL: no check). */
int bgs_canary_set_expect(struct bgs *h, __u32 svc_id, __u32 bps, bool sticky,
			  const struct bgs_flip *expect, struct bgs_flip *after);
/* End the drain now: the old color's remaining flows are routed as new. */
int bgs_drain_end(struct bgs *h, __u32 svc_id, struct bgs_flip *after);

/* End the drain (bgs_drain_end) and delete the flows of color (BGS_ANY_COLOR: any) that
 * is not live (bgs_flow_kill): returns how many flows it ended, those whose entries it
 * deleted and those whose next packet came first (moved to the live color by the drain
 * end; their new entries stay). The entries go after the publish; if that fails the
 * routing is already whole (they are routed as new) and a second call removes them (and
 * counts only those); the message says so. */
int bgs_drain_kill(struct bgs *h, __u32 svc_id, int color, struct bgs_flip *after);

/* ---- Preview prefixes ---- */

struct bgs_prefix {
	struct bgs_ip ip;
	__u8 len; /* 0..32 or 0..128; host bits must be zero */
};
/* Parse "10.0.2.0/24" or "2001:db8::/64"; -EINVAL with a message (host bits set, ...). */
int bgs_prefix_parse(const char *s, struct bgs_prefix *p);
/* New flows from inside the prefix go to the idle color; -EEXIST if there. */
int bgs_preview_add(struct bgs *h, __u32 svc_id, const struct bgs_prefix *p);
/* Remove exactly that prefix; -ENOENT if absent. */
int bgs_preview_del(struct bgs *h, __u32 svc_id, const struct bgs_prefix *p);
/* Prefixes of a service; returns how many (may exceed max). */
int bgs_preview_list(struct bgs *h, __u32 svc_id, struct bgs_prefix *out, __u32 max);

/* ---- Counters and flows ---- */

/* Counters summed over CPUs. */
int bgs_svc_counters(struct bgs *h, __u32 svc_id, __u32 color, struct bgs_counter *c);
/* A backend's counters (kept across next-hop changes; reset when its id is given out). */
int bgs_backend_counters(struct bgs *h, __u32 backend_id, struct bgs_counter *c);
/* Packets and bytes per verdict that is not a plain forward. */
int bgs_reason_counters(struct bgs *h, struct bgs_reason_counter c[BGS_R_MAX]);
/* "drop_no_nexthop", ... */
const char *bgs_reason_name(enum bgs_reason r);

/* Walk conntrack in batches; cb returns non-zero to stop (that value is returned). */
typedef int (*bgs_flow_cb)(const struct bgs_flow_key *key, const struct bgs_flow *flow, void *arg);
/* (Raw entries, judged by nobody: bgs_flow_walk_verdict says which still hold a flow.) */
int bgs_flow_walk(struct bgs *h, bgs_flow_cb cb, void *arg);
/* Delete the flows of a service (and color unless BGS_ANY_COLOR) that are on a color
 * that is not live and existed when the call began (a flow a concurrent flip creates
 * there is kept); returns how many. In the kernel (a syscall program, bgs_ct_reap.bpf.c,
 * run in passes of a bounded number of deletions), or, where that cannot be loaded, by a
 * walk from user space. */
int bgs_flow_kill(struct bgs *h, __u32 svc_id, int color);

/* ---- Parsing what users type (command lines, config files) ----
 * Each accepts exactly its documented form; on anything else -EINVAL, and bgs_errmsg() is one
 * line naming the value (control bytes shown as '?') and what is allowed. `what` names the
 * value in that line ("--drain-timeout", "drain_timeout"). */

/* Longest change reason, in bytes (no control characters). */
#define BGS_REASON_MAX 200

int bgs_parse_color(const char *s, int *color);		/* blue | green */
int bgs_parse_name(const char *s);			/* a service name */
int bgs_parse_u64(const char *s, const char *what, __u64 max, __u64 *v); /* decimal digits */
int bgs_parse_port(const char *s, const char *what, __u16 *port);	     /* 1..65535 */
/* 500ms, 30s, 5m, 1h, 2d, 1m30s, 0 (at most 7d); with allow_none, none|never = BGS_NO_DEADLINE */
int bgs_parse_duration(const char *s, const char *what, bool allow_none, __u64 *ms);
/* 0 to 100 with at most two decimals, optional '%', in basis points */
int bgs_parse_percent(const char *s, __u32 *bps);
/* Timeout i of a bgs_sizes.timeouts as a duration in whole seconds (30s, 15m, 1h, 1m30s; at
 * most 7d) into t: 0 only where bgs_timeout_zero_ok(i), stored as BGS_TIMEOUT_ZERO. */
int bgs_parse_timeout(const char *s, const char *what, unsigned int i,
		      struct bgs_flow_timeouts *t);
/* NAME=DURATION (health_grace=3s): that timeout, as bgs_parse_timeout; its index or -EINVAL. */
int bgs_parse_timeout_arg(const char *s, const char *what, struct bgs_flow_timeouts *t);
/* seconds with at most three decimals ("5", "0.5"), 0..max_s, into milliseconds */
int bgs_parse_seconds(const char *s, const char *what, unsigned int max_s, int *ms);
int bgs_parse_ip(const char *s, struct bgs_ip *ip);
/* ADDR, ADDR:PORT, [V6] or [V6]:PORT; port 0 when absent */
int bgs_parse_addr_port(const char *s, struct bgs_ip *ip, __u16 *port);
/* ADDR:PORT[/tcp|/udp] or [V6]:PORT[/tcp|/udp]; tcp when absent */
int bgs_parse_vip(const char *s, struct bgs_ip *ip, __u16 *port, __u8 *proto);
/* ADDR/LEN with no host bits set */
int bgs_parse_prefix(const char *s, struct bgs_prefix *p);
int bgs_parse_reason(const char *s);

/* ---- Decoded views: a front end reads no flip-word or record bits itself ---- */

__u32 bgs_flip_live(const struct bgs_flip *f);	   /* BGS_BLUE or BGS_GREEN */
__u32 bgs_flip_gen(const struct bgs_flip *f);	   /* what --expect-generation compares */
__u32 bgs_flip_canary(const struct bgs_flip *f);   /* basis points to the idle color */
bool bgs_flip_sticky(const struct bgs_flip *f);	   /* canary drawn per client address */
bool bgs_flip_draining(const struct bgs_flip *f);  /* the old color is draining */
/* The drain the word selects (of its two copies): the generation of the flip that began it
 * (0: never flipped) and its deadline in the program's jiffies (BGS_NO_DEADLINE: none). */
__u32 bgs_flip_drain_gen(const struct bgs_flip *f);
__u64 bgs_flip_drain_deadline(const struct bgs_flip *f);
bool bgs_flip_active(const struct bgs_flip *f);	   /* the service takes traffic */
bool bgs_backend_in_use(const struct bgs_backend *be);
bool bgs_backend_resolved(const struct bgs_backend *be); /* its next hop is known */

/* ---- Flows as the program sees them (its rule: bgswitch_flow.h) ---- */

/* A walk that judges each entry with the program's own flow-liveness rule, the timeouts
 * it enforces (bgs_meta) and the backends and flip states read once at the start. verdict
 * is enum bgs_flow_verdict (BGS_FLOW_LIVE: the entry holds its flow); be is the flow's
 * backend record or NULL. now and hz (may be NULL) get the clock the walk judged by. */
typedef int (*bgs_flow_verdict_cb)(const struct bgs_flow_key *key, const struct bgs_flow *flow,
				   int verdict, const struct bgs_backend *be, void *arg);
int bgs_flow_walk_verdict(struct bgs *h, bgs_flow_verdict_cb cb, void *arg, __u64 *now,
			  __u32 *hz);
/* "live", "idle", "drained", ... */
const char *bgs_flow_verdict_name(int verdict);

/* Live flows per backend and per service and color, from one walk. */
struct bgs_flow_counts {
	__u32 max_backends, max_services;
	__u64 *per_backend;   /* [max_backends] by backend id */
	__u64 *per_svc_color; /* [max_services * 2] by svc_id * 2 + color */
	__u64 total;
};
/* One judged walk (0.5 s per million entries here); free with bgs_flow_counts_free. */
int bgs_flow_count(struct bgs *h, struct bgs_flow_counts *c);
void bgs_flow_counts_free(struct bgs_flow_counts *c);

/* The drain of a service: its color that is not live, and the live flows left there per
 * backend of that pool (what `flip --wait` and `drain` show, and what an agent tracks). */
struct bgs_drain_backend {
	__u32 id;
	__u64 flows;
};
struct bgs_drain_status {
	__u32 color;	  /* the color that is not live */
	__u32 generation; /* of the flip word read */
	bool draining;	  /* its drain runs: those flows keep their backends until... */
	__u64 deadline;	  /* ...this jiffy (BGS_NO_DEADLINE: none; 0: no drain) */
	__u64 now;	  /* the program's clock at the read */
	__u32 hz;
	__u64 flows;	  /* live flows left on color */
	__u32 nbackends;
	struct bgs_drain_backend backends[BGS_MAX_POOL_BACKENDS];
};
/* One judged walk, no lock: an agent can poll it from a worker thread. */
int bgs_drain_status(struct bgs *h, __u32 svc_id, struct bgs_drain_status *st);

/* ---- Rollouts: a request and its progress, kept with the pinned state ----
 * bgctl writes a service's rollout request (start, promote, abort); an agent runs its steps
 * (canary shares, pauses, the flip) and writes its progress here, so a restarted agent
 * resumes where it was. Records live in a small pinned map (bgs_rollout) made on first use,
 * so pin directories made before it get it then; bgs_destroy removes it, bgs_upgrade keeps
 * it. Every change takes the pin directory's lock and is recorded like any other. */
enum bgs_rollout_state {
	BGS_ROLLOUT_NONE = 0,
	BGS_ROLLOUT_REQUESTED = 1, /* started, not yet taken by an agent */
	BGS_ROLLOUT_RUNNING = 2,   /* a canary step: its share is set, its pause runs */
	BGS_ROLLOUT_GATE = 3,	   /* the pre-flip gate runs */
	BGS_ROLLOUT_PAUSED = 4,	   /* waits for promote (a gate failed, or no promote step) */
	BGS_ROLLOUT_DONE = 5,	   /* flipped */
	BGS_ROLLOUT_ABORTED = 6,   /* canary back to 0, nothing flipped */
	BGS_ROLLOUT_FAILED = 7,	   /* could not go on (reason says why); canary back to 0 */
	BGS_ROLLOUT_ROLLED_BACK = 8, /* flipped, then rolled back by the post-flip check */
	BGS_ROLLOUT_NR,
};
/* "running", "paused", ... */
const char *bgs_rollout_state_name(__u32 state);
/* A state in which the rollout still has something to do (requested .. paused). */
bool bgs_rollout_active(__u32 state);

#define BGS_ROLLOUT_TEXT 96
struct bgs_rollout {
	char service[BGS_NAME_MAX]; /* the record is the service's while the name matches */
	__u32 state;		    /* enum bgs_rollout_state */
	__u32 id;		    /* counts the service's rollouts: each start takes the next */
	__u32 from_color;	    /* live at the start: the flip goes to the other one */
	__u32 start_gen;	    /* the service's generation at the start */
	__u32 step;		    /* current step, 0-based (== nsteps: past the last) */
	__u32 nsteps;		    /* steps of the agent's config (0 until it takes it) */
	__u32 canary_bps;	    /* share the current step set */
	__u32 promotes;		    /* promote requests (bgctl) */
	__u32 promotes_seen;	    /* of those, the ones the agent acted on */
	__u32 flip_gen;		    /* generation of the rollout's flip (DONE) */
	__u64 started_s;	    /* wall clock (unix seconds) of the start */
	__u64 step_ms;		    /* CLOCK_MONOTONIC ms at which the current step began */
	__u64 pause_ms;		    /* its pause */
	__u64 updated_ms;	    /* CLOCK_MONOTONIC ms of the last write */
	char strategy[48];	    /* preset name or "custom" (the agent's config) */
	char next[BGS_ROLLOUT_TEXT];  /* what happens next, as the agent planned it */
	char reason[BGS_REASON_MAX + 1]; /* why it paused, failed or was aborted */
};

/* The rollout record of a service: -ENOENT if it never had one. */
int bgs_rollout_get(struct bgs *h, __u32 svc_id, struct bgs_rollout *ro);
/* Store a new request (state requested, from the live color and generation now). -EBUSY
 * while another rollout of the service is active. out (may be NULL) gets the record. */
int bgs_rollout_start(struct bgs *h, __u32 svc_id, struct bgs_rollout *out);
/* Ask the agent to skip the remaining pauses (and retry a failed gate). -ENOENT: none
 * active. */
int bgs_rollout_promote(struct bgs *h, __u32 svc_id, struct bgs_rollout *out);
/* End an active rollout now: the canary goes back to 0 in the same change (unless the
 * rollout already flipped), the record says why. -ENOENT: none active. */
int bgs_rollout_abort(struct bgs *h, __u32 svc_id, const char *why, struct bgs_rollout *out,
		      struct bgs_flip *after);
/* The agent's write: a compare-and-swap of the whole record (-ESTALE if it is not *seen
 * any more, e.g. bgctl aborted or promoted meanwhile). With canary_bps >= 0 the service's
 * canary is set in the same change (refused with -ESTALE unless the service is at
 * expect_gen, when that is not BGS_ANY_GEN); after (may be NULL) gets the flip state. */
int bgs_rollout_update(struct bgs *h, __u32 svc_id, const struct bgs_rollout *seen,
		       const struct bgs_rollout *next, int canary_bps, long long expect_gen,
		       struct bgs_flip *after);

/* The post-flip check an agent keeps of a service's last flip, so that a restarted agent
 * goes on with it (bgs_watch, made on first use like bgs_rollout). Written by the agent
 * only, without the lock. */
struct bgs_flip_watch {
	char service[BGS_NAME_MAX]; /* the record is the service's while the name matches */
	__u32 flip_gen;		    /* the flip watched (bgs_flip_drain_gen) */
	__u32 live;		    /* the color it made live */
	__u64 since_ms;		    /* CLOCK_MONOTONIC ms when the watch began */
	__u32 over;		    /* the watch ended (baked or rolled back) */
	__u32 reserved;
};
int bgs_flip_watch_set(struct bgs *h, __u32 svc_id, const struct bgs_flip_watch *w);
/* -ENOENT: none for this service. */
int bgs_flip_watch_get(struct bgs *h, __u32 svc_id, struct bgs_flip_watch *w);

/* An agent shows it is alive: its pid and the time of its last tick (CLOCK_MONOTONIC ms). */
struct bgs_agent_beat {
	__u32 pid;
	__u32 reserved;
	__u64 seen_ms;
	__u64 started_ms; /* when that agent started */
};
int bgs_agent_beat_write(struct bgs *h, const struct bgs_agent_beat *b);
/* -ENOENT if no agent ever beat here. */
int bgs_agent_beat_read(struct bgs *h, struct bgs_agent_beat *b);
/* An agent ticks every second: older than this, it is taken as down. */
#define BGS_AGENT_ALIVE_MS 5000
/* CLOCK_MONOTONIC in ms, the clock of the records above. */
__u64 bgs_mono_ms(void);

/* ---- Maglev (exposed for tests and tools) ---- */

struct bgs_maglev_backend {
	__u32 id;
	__u32 weight;
	const void *ident; /* bytes the permutation is drawn from (address, port) */
	__u32 ident_len;
};
/* Fill table[0..m) with backend ids; m prime; no backends: all 0. */
int bgs_maglev_build(const struct bgs_maglev_backend *be, __u32 n, __u32 m, __u32 *table);

#endif /* LIBBGSWITCH_H */
