/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maps and load-time parameters of the switch program. max_entries of 1 below are
 * placeholders: libbgswitch sets every size before load from struct bgs_sizes.
 */
#ifndef BGS_SWITCH_MAPS_H
#define BGS_SWITCH_MAPS_H

#include "maps.h"

/* ---- Load-time parameters (rodata, set through the skeleton before load) ---- */

/* Maglev table size M (entries per service, color and slot). */
const volatile __u32 cfg_maglev_size = BGS_DEF_MAGLEV_SIZE;
/* Number of service ids; bounds svc_id before table arithmetic. */
const volatile __u32 cfg_max_services = BGS_DEF_MAX_SERVICES;
/* New conntrack entries allowed per CPU per second; 0 = unlimited. */
const volatile __u32 cfg_new_flow_rate = 0; /* set from bgs_meta at every load */
/* bgs_revnat's size - 1 (a power of two minus one). */
const volatile __u32 cfg_revnat_mask = 63;
/* bgs_fresh's lines - 1 (a power of two minus one). */
const volatile __u32 cfg_fresh_mask = 0;
/* Idle timeouts are not here: the program reads them from bgs_meta (bgswitch_flow.h). */

/* Layout version, the sizes the state was created with and the loaded flow timeouts (one
 * entry; the program reads the timeouts on every known-flow packet). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bgs_meta);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bgs_meta SEC(".maps");

/* VIP:port/proto, preview ports, VIP address markers -> service id. Load time: 3 x services. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct bgs_vip_key);
	__type(value, struct bgs_vip_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bgs_vips SEC(".maps");

/* Port filter: struct bgs_port by port (host order). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BGS_NR_PORTS);
	__type(key, __u32);
	__type(value, struct bgs_port);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bgs_ports SEC(".maps");

/* Service config by id. Load time: max services. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bgs_service);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bgs_svcs SEC(".maps");

/* Flip word and drain fields by service id; user space stores into its mmap. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct bgs_flip);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bgs_flip SEC(".maps");

/* Maglev tables: backend ids, indexed by bgs_maglev_index(). Load time: services x 4 x M. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bgs_maglev SEC(".maps");

/* Backend records by id (0 unused). Load time: max backends. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bgs_backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bgs_backends SEC(".maps");

/* nat replies: backend address:port/proto -> service, open addressing (struct
 * bgs_revnat_slot). Load time: bgs_revnat_size(max backends). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct bgs_revnat_slot);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bgs_revnat SEC(".maps");

/* Preview source prefixes per service (IPv4 and IPv6), consulted for new flows only. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__type(key, struct bgs_preview_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bgs_preview SEC(".maps");

/* Conntrack: client-side tuple -> flow. One hash shared by all CPUs (a flow is found from
 * any CPU: nat replies arrive on another queue than their client's) with an LRU list per
 * CPU (an insert locks its CPU's list only; a CPU evicts from its own share). Load time:
 * ct entries. docs/datapath.md: "Conntrack under pressure". */
BGS_CT_MAP;

/* Fresh-flow marks: tuples that started a new flow during their service's drain (struct
 * bgs_fresh_line, include/bgswitch.h). Load time: bgs_fresh_lines(ct entries). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bgs_fresh_line);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bgs_fresh SEC(".maps");

/* Per-CPU counters by svc_id * 2 + color. Load time: 2 x max services. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bgs_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bgs_svc_stats SEC(".maps");

/* Per-CPU counters by backend id. Load time: max backends. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bgs_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bgs_be_stats SEC(".maps");

/* Per-CPU new-flow rate window of the SYN-flood guard. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bgs_flood);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bgs_flood SEC(".maps");

/* When a SYN-flood guard last refused an insert (one entry, all CPUs): see bgs_guard. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bgs_guard);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bgs_guard SEC(".maps");

/* Egress interfaces for XDP_REDIRECT, keyed by ifindex (in the LB's namespace). */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bgs_tx_ports SEC(".maps");

BGS_REASONS_MAP;

/* Per-CPU counters of the reasons from BGS_R_BASE_ENTRIES on (include/bgswitch.h). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BGS_R_MORE_ENTRIES);
	__type(key, __u32);
	__type(value, struct bgs_reason_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bgs_reasons_more SEC(".maps");

_Static_assert(BGS_R_MAX - BGS_R_BASE_ENTRIES <= BGS_R_MORE_ENTRIES,
	       "bgs_reasons_more holds every later reason");

#endif /* BGS_SWITCH_MAPS_H */
