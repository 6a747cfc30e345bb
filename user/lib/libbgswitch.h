/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * libbgswitch: the only user-space code that knows the map layouts. It creates or adopts
 * the pinned state, validates every input, serializes changes (flock on the pin
 * directory) and publishes every routing change with one atomic store of the flip word.
 *
 * Every function returns 0 (or a documented non-negative value) or a negative errno, and
 * on failure leaves a one-line message naming the bad value in bgs_errmsg().
 */
#ifndef LIBBGSWITCH_H
#define LIBBGSWITCH_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "bgswitch.h"

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

void bgs_close(struct bgs *h);

/* Remove every pin under the directory (the state is gone once no program holds it). */
int bgs_destroy(const char *pin_dir);

const char *bgs_pin_dir(const struct bgs *h);
/* Where bgs_init mounted a bpffs (mode 0700) to make its pin directory, or NULL if it mounted
 * none: BGS_BPFFS_ROOT when the directory is under it and no bpffs was there, else the pin
 * directory itself when it was on no bpffs. */
const char *bgs_mounted(const struct bgs *h);
void bgs_get_meta(const struct bgs *h, struct bgs_meta *meta);

/* Fd of a pinned map by its name without the "bgs_" prefix ("ct", "vips", ...); -ENOENT. */
int bgs_map_fd(const struct bgs *h, const char *name);

/* Fd of the entry program (the one libxdp attaches) as loaded by bgs_init; for test runs.
 * -ENOENT after bgs_open (nothing loaded). */
int bgs_entry_fd(const struct bgs *h);
/* Fd of the switch program currently in the program array. */
int bgs_switch_fd(const struct bgs *h);

/* Load a fresh switch program (from the object built into the library, or from obj_path),
 * reusing every pinned map, and swap it into the program array in one update. */
int bgs_upgrade(struct bgs *h, const char *obj_path);

/* The program's clock: jiffies now and jiffies per second. */
int bgs_clock(struct bgs *h, __u64 *jiffies, __u32 *hz);

/* ---- Interfaces ---- */

enum bgs_xdp_mode {
	BGS_XDP_NATIVE = 0,
	BGS_XDP_GENERIC = 1,
};

/* Attach the entry program to an interface through libxdp; also adds it to the devmap. */
int bgs_attach(struct bgs *h, const char *ifname, enum bgs_xdp_mode mode);
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
/* Operator state; rebuilds and publishes the pool's table. */
int bgs_backend_set_admin(struct bgs *h, __u32 backend_id, enum bgs_admin admin);
/* Health state (the agent's); rebuilds and publishes the pool's table. */
int bgs_backend_set_health(struct bgs *h, __u32 backend_id, enum bgs_health health);
/* Re-resolve the next hop of every backend (after neighbour or route changes). */
int bgs_backend_resolve_all(struct bgs *h);
int bgs_backend_get(struct bgs *h, __u32 backend_id, struct bgs_backend *be);
/* Backend id in a service by address and port (port 0 = VIP port); -ENOENT. */
int bgs_backend_find(struct bgs *h, __u32 svc_id, const struct bgs_ip *addr, __u16 port,
		     __u32 *backend_id);
/* Ids of a pool's backends, ascending; returns how many (may exceed max). */
int bgs_pool_list(struct bgs *h, __u32 svc_id, __u32 color, __u32 *ids, __u32 max);
/* The nat service whose replies backend address:port/proto sends; -ENOENT. */
int bgs_revnat_lookup(struct bgs *h, const struct bgs_revnat_key *k, __u32 *svc_id);
/* True if the pool has a backend that may take new flows (admin up, health up). */
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
};

/* Flip live to the other color (reset canary, start draining the old one).
 * Returns 1 if it changed something, 0 if to_color was already live.
 * -ESTALE: generation mismatch; -EHOSTUNREACH: target pool unusable and no force. */
int bgs_flip(struct bgs *h, __u32 svc_id, const struct bgs_flip_opts *opts, struct bgs_flip *after);
/* Canary weight in basis points (0..10000) and stickiness. */
int bgs_canary_set(struct bgs *h, __u32 svc_id, __u32 bps, bool sticky, long long expect_gen,
		   struct bgs_flip *after);
/* End the drain now: the old color's remaining flows are routed as new. */
int bgs_drain_end(struct bgs *h, __u32 svc_id, struct bgs_flip *after);

/* ---- Preview prefixes ---- */

struct bgs_prefix {
	struct bgs_ip ip;
	__u8 len; /* 0..32 or 0..128; host bits must be zero */
};
int bgs_prefix_parse(const char *s, struct bgs_prefix *p);
int bgs_preview_add(struct bgs *h, __u32 svc_id, const struct bgs_prefix *p);
int bgs_preview_del(struct bgs *h, __u32 svc_id, const struct bgs_prefix *p);
/* Prefixes of a service; returns how many (may exceed max). */
int bgs_preview_list(struct bgs *h, __u32 svc_id, struct bgs_prefix *out, __u32 max);

/* ---- Counters and flows ---- */

/* Counters summed over CPUs. */
int bgs_svc_counters(struct bgs *h, __u32 svc_id, __u32 color, struct bgs_counter *c);
int bgs_backend_counters(struct bgs *h, __u32 backend_id, struct bgs_counter *c);
int bgs_reason_counters(struct bgs *h, struct bgs_reason_counter c[BGS_R_MAX]);
const char *bgs_reason_name(enum bgs_reason r);

/* Walk conntrack in batches; cb returns non-zero to stop (that value is returned). */
typedef int (*bgs_flow_cb)(const struct bgs_flow_key *key, const struct bgs_flow *flow, void *arg);
int bgs_flow_walk(struct bgs *h, bgs_flow_cb cb, void *arg);
/* Delete the flows of a service (and color unless BGS_ANY_COLOR) that are on a color
 * that is not live; returns how many. */
int bgs_flow_kill(struct bgs *h, __u32 svc_id, int color);

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
