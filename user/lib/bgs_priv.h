/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* libbgswitch internals shared by its source files; not installed, not for callers. */
#ifndef BGS_PRIV_H
#define BGS_PRIV_H

#include <limits.h>
#include <stdint.h>
#include <netinet/in.h>

#include "libbgswitch.h"

/* Indexes of the pinned maps in struct bgs (names are "bgs_" + bgs_map_names[i]). */
enum bgs_map_idx {
	BGS_M_META,
	BGS_M_VIPS,
	BGS_M_SVCS,
	BGS_M_FLIP,
	BGS_M_MAGLEV,
	BGS_M_BACKENDS,
	BGS_M_REVNAT,
	BGS_M_PREVIEW,
	BGS_M_CT,
	BGS_M_SVC_STATS,
	BGS_M_BE_STATS,
	BGS_M_FLOOD,
	BGS_M_TX_PORTS,
	BGS_M_REASONS,
	BGS_M_PROGS,
	BGS_M_PORTS,
	BGS_M_NR,
};

extern const char *const bgs_map_names[BGS_M_NR];

/* Pins of the programs, next to the maps. */
#define BGS_PIN_SWITCH "bgs_switch_prog"
#define BGS_PIN_CLOCK "bgs_clock_prog"
/* Program names inside the objects. */
#define BGS_PROG_NAME_SWITCH "bgs_switch"
#define BGS_PROG_NAME_CLOCK "bgs_read_clock"
#define BGS_PROG_NAME_ENTRY "bgs_entry"

struct bgs_entry;

struct bgs {
	char pin_dir[PATH_MAX];
	char mounted[PATH_MAX]; /* the bpffs bgs_init mounted (mode 0700), "" if none */
	struct bgs_meta meta;
	int map_fd[BGS_M_NR];
	int switch_fd;	 /* pinned switch program, -1 if absent */
	int clock_fd;	 /* pinned clock program, -1 if absent */
	int entry_fd;	 /* entry loaded by bgs_init (owned by entry_skel), -1 after bgs_open */
	int sync_fd;	 /* one-entry ARRAY_OF_MAPS: its update waits for running programs */
	int sync_inner_fd;
	struct bgs_entry *entry_skel;
	struct bgs_flip *flip; /* mmap of bgs_flip */
	size_t flip_len;
	__u8 *maglev;	       /* mmap of bgs_maglev, made on first use (bgs_maglev_map) */
	size_t maglev_len;
	struct bgs_revnat_slot *revnat; /* mmap of bgs_revnat */
	size_t revnat_len;
	int ncpus;
	int lock_timeout_ms; /* bgs_lock's deadline; < 0: wait as long as it takes */
	struct bgs_history *history; /* where changes are recorded (not owned), or NULL */
	struct bgs_note *note;	     /* the next change's record (bgs_change_note) */
	int history_lost;	     /* -errno: an emergency change applied unrecorded */
};

/* Error reporting: sets the thread's message and returns err (negative errno). */
int bgs_err(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bgs_err_clear(void);

/* Drop libbpf's harmless warning about the libxdp run-config section while opening. */
void bgs_quiet_begin(void);
void bgs_quiet_end(void);
/* The expected attach type of every program that uses bgs_progs on this kernel (load.c). */
enum bpf_attach_type bgs_progs_attach_type(void);

/* flock(LOCK_EX) on the pin directory, waiting at most h's lock timeout; returns the fd to
 * pass to bgs_unlock, or -errno (-EBUSY: still held at the deadline, the message says by
 * which pid where /proc/locks tells). */
int bgs_lock(struct bgs *h);
int bgs_lock_dir(const char *dir, int timeout_ms);
/* Releases the lock; with h, first records the outcome of h's noted change (result < 0:
 * failed, with bgs_errmsg()). */
void bgs_unlock(struct bgs *h, int fd, int result);

/* History (history.c), called by bgs_lock and bgs_unlock: the noted change's intent (and
 * the resolution of intents that were never confirmed), then its outcome. */
struct bgs_note;
int bgs_history_intent(struct bgs *h);
void bgs_history_outcome(struct bgs *h, int result, const char *error);
/* Forget a noted change that never ran (bgs_close). */
void bgs_note_drop(struct bgs *h);
/* Lock timeout for handles yet to be made and for calls without a handle (lock.c). */
extern int bgs_lock_timeout_default;

/*
 * Test-only failure injection: bgs_fault("site") returns -EIO when the environment variable
 * BGS_FAULT names that site ("site@N": only its N-th pass in this thread). Compiled in only with -DBGS_FAULT_INJECT (the sanitizer test
 * build); in a release build it is the constant 0 and no environment can make it fire.
 */
#ifdef BGS_FAULT_INJECT
int bgs_fault(const char *site);
#else
static inline int bgs_fault(const char *site)
{
	(void)site;
	return 0;
}
#endif

/* The handle and its pins (core.c); bgs_init (load.c) builds a handle with these. */
struct bgs *bgs_handle_new(const char *dir);
/* Opens every pinned map and program and maps the flip words and tables. h->meta is set. */
int bgs_adopt_pins(struct bgs *h);
/* Fd of the pin dir/name, or -1 with errno set. */
int bgs_pin_get(const struct bgs *h, const char *name);
/* The meta record: *present false when there are no pins; -EPROTO on another layout. */
int bgs_meta_read(const char *dir, struct bgs_meta *meta, bool *present);
int bgs_meta_write(struct bgs *h);
/* +1 on the pinned change stamp (bgs_unlock, under the lock). */
void bgs_changes_bump(struct bgs *h);
/* bpffs.c: is path on a bpffs; make sure dir is on one (mounting one if needed). */
bool bgs_on_bpffs(const char *path);
int bgs_ensure_bpffs(struct bgs *h, const char *dir);
/* sizes.c: -EEXIST (with the message) if req names a size other than m's. */
int bgs_sizes_match(const char *dir, const struct bgs_sizes *req, const struct bgs_meta *m);
/* sizes.c: set timeout i of t (see bgs_timeout_get). */
void bgs_timeout_set(struct bgs_flow_timeouts *t, unsigned int i, __u32 v);

/* The switch object built into the library (its skeleton's ELF bytes). */
const void *bgs_switch_elf(size_t *size);
/* Build ids (build.c): a hash of an object's bytes; of the built-in one; of a file. */
__u64 bgs_build_id_of(const void *buf, size_t len);
int bgs_build_id_file(const char *path, __u64 *id);
/* Under the lock, after installing switch_fd: record its build (best effort). */
void bgs_build_record(struct bgs *h, int switch_fd, __u64 build_id);
/* The recorded build of the running program prog_id; false if unknown. */
bool bgs_build_running(const struct bgs *h, __u32 prog_id, __u64 *build_id);

/* Waits until no running BPF program can still see what was published before the call. */
int bgs_sync(struct bgs *h);

/* Reads/writes of the mapped state. */
static inline __u64 bgs_word_load(struct bgs *h, __u32 svc_id)
{
	return __atomic_load_n(&h->flip[svc_id].word, __ATOMIC_ACQUIRE);
}
static inline void bgs_word_publish(struct bgs *h, __u32 svc_id, __u64 w)
{
	__atomic_store_n(&h->flip[svc_id].word, w, __ATOMIC_RELEASE);
}
/* The generation's bits of a flip word: all a free service slot keeps. */
#define BGS_FW_GEN_BITS (~((1ULL << BGS_FW_GEN_SHIFT) - 1))
static inline __u64 bgs_word_next_gen(__u64 w)
{
	__u64 gen = (__u32)(bgs_fw_gen(w) + 1);

	return (w & ((1ULL << BGS_FW_GEN_SHIFT) - 1)) | (gen << BGS_FW_GEN_SHIFT);
}
/* Maps bgs_maglev (once per handle); call before bgs_table_entry. */
int bgs_maglev_map(struct bgs *h);

/* The u32 table entry of (svc, color, slot) at h. */
static inline __u32 *bgs_table_entry(struct bgs *h, __u32 svc_id, __u32 color, __u32 slot, __u32 i)
{
	__u64 idx = bgs_maglev_index(svc_id, color, slot, h->meta.maglev_size, i);

	return (__u32 *)(h->maglev + idx * BGS_MAGLEV_STRIDE);
}

/* Port filter (ports.c): recomputes the BGS_PORT_* flags of one port (network order) from
 * the services and nat backends, leaving out service except_svc (~0u: none) and adding
 * extra (flags of a key about to be inserted). */
int bgs_ports_sync(struct bgs *h, __be16 port, __u32 extra, __u32 except_svc);
static inline __u32 bgs_port_vip_flag(__u8 proto)
{
	return proto == IPPROTO_UDP ? BGS_PORT_VIP_UDP : BGS_PORT_VIP_TCP;
}
static inline __u32 bgs_port_nat_flag(__u8 proto)
{
	return proto == IPPROTO_UDP ? BGS_PORT_NAT_UDP : BGS_PORT_NAT_TCP;
}

/* nat reply table (revnat.c); called under the lock. insert: -EEXIST if the key is there
 * (bgs_revnat_lookup says whose), -ENOSPC if its probe window is full. The slot holds what
 * a reply needs: the service's VIP and ports, the backend's id, incarnation and next-hop
 * interface; set_backend rewrites the last three in place (a next-hop change, a new id). */
int bgs_revnat_insert(struct bgs *h, const struct bgs_revnat_key *k, __u32 svc_id,
		      const struct bgs_service *svc, __u32 backend_id, const struct bgs_backend *be);
/* Every reply slot of a service learns its new preview port (replies of preview-port flows
 * are found through it); 0: none. */
void bgs_revnat_set_preview(struct bgs *h, __u32 svc_id, __be16 preview_port);
int bgs_revnat_set_backend(struct bgs *h, const struct bgs_revnat_key *k, __u32 backend_id,
			   const struct bgs_backend *be);
int bgs_revnat_delete(struct bgs *h, const struct bgs_revnat_key *k);
/* Calls cb for every key in use; stops at a non-zero return and returns it. */
int bgs_revnat_walk(struct bgs *h, int (*cb)(const struct bgs_revnat_slot *e, void *arg),
		    void *arg);

/* Services (service.c). */
int bgs_svc_read(struct bgs *h, __u32 svc_id, struct bgs_service *svc); /* -ENOENT if free */
/* bgs_lock, then the service's record (read under it): the lock fd, or -errno unlocked. */
int bgs_lock_svc(struct bgs *h, __u32 svc_id, struct bgs_service *svc);
const char *bgs_color_name(__u32 color);

/* Backends and tables (backend.c). */
int bgs_be_read(struct bgs *h, __u32 id, struct bgs_backend *be);
/* Every backend record, in a malloc'ed array indexed by id. */
int bgs_be_read_all(struct bgs *h, struct bgs_backend **out);
/* Rebuilds (svc, color)'s table in the idle slot and publishes it, leaving out the ids in
 * skip[0..nskip). Caller holds the lock. */
int bgs_pool_publish(struct bgs *h, __u32 svc_id, __u32 color, const __u32 *skip, __u32 nskip);
/* Deletes the reverse-nat keys of a service's backends (before the sync of a delete). */
int bgs_svc_revnat_del(struct bgs *h, __u32 svc_id);
void bgs_svc_side_records_del(struct bgs *h, __u32 svc_id);
/* Frees every backend record of a service and its counters; caller has synced. */
int bgs_svc_backends_free(struct bgs *h, __u32 svc_id);
const char *bgs_be_label(const struct bgs_backend *be, char *buf, size_t len);

/* Next hop (nexthop.c): fills ifindex/dmac/smac and BGS_BE_NEXTHOP, or clears them. */
int bgs_nexthop_resolve(struct bgs_backend *be);

/* Per-CPU counters (stats.c). */
int bgs_percpu_zero(struct bgs *h, int map_fd, __u32 key, size_t value_size);
/* Calls cb on every conntrack entry, in batches (stats.c). */
int bgs_ct_walk(struct bgs *h, bgs_flow_cb cb, void *arg);
/* Deletes the conntrack entries of a service whose backend (id, incarnation) is gone: safe
 * without the lock, even once the service id is reused. Returns how many. */
int bgs_ct_delete_orphans(struct bgs *h, __u32 svc_id);

#endif /* BGS_PRIV_H */
