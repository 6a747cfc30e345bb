/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The pinned maps of bgswitch. Every map is pinned by name under the pin directory
 * (libbpf pin_root_path), so a reloaded or upgraded program reuses it. Sizes marked
 * "load time" are set by libbgswitch before load (bpf_map__set_max_entries).
 */
#ifndef BGS_MAPS_H
#define BGS_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "bgswitch.h"

/* Defines a map that both bgswitch objects may carry; identical wherever it appears. */
#define BGS_REASONS_MAP                                              \
	struct {                                                     \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);             \
		__uint(max_entries, BGS_R_BASE_ENTRIES);             \
		__type(key, __u32);                                  \
		__type(value, struct bgs_reason_counter);            \
		__uint(pinning, LIBBPF_PIN_BY_NAME);                 \
	} bgs_reasons SEC(".maps")

/* The program array the attached entry tail-calls (BGS_PROG_SWITCH). */
#define BGS_PROGS_MAP                                                \
	struct {                                                     \
		__uint(type, BPF_MAP_TYPE_PROG_ARRAY);               \
		__uint(max_entries, 4);                              \
		__type(key, __u32);                                  \
		__type(value, __u32);                                \
		__uint(pinning, LIBBPF_PIN_BY_NAME);                 \
	} bgs_progs SEC(".maps")

/* Conntrack (its sizing and LRU: switch_maps.h); the conntrack reaper (bgs_ct_reap.bpf.c)
 * carries it too, reusing the switch's. */
#define BGS_CT_MAP                                                   \
	struct {                                                     \
		__uint(type, BPF_MAP_TYPE_LRU_HASH);                 \
		__uint(map_flags, BPF_F_NO_COMMON_LRU);              \
		__uint(max_entries, 1);                              \
		__type(key, struct bgs_flow_key);                    \
		__type(value, struct bgs_flow);                      \
		__uint(pinning, LIBBPF_PIN_BY_NAME);                 \
	} bgs_ct SEC(".maps")

#endif /* BGS_MAPS_H */
