// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Conntrack under pressure (bench/ct_churn.c): the same conntrack key and value in three
 * map layouts, driven by one XDP program run with BPF_PROG_TEST_RUN on a chosen CPU:
 *   ct_common    one LRU hash, one LRU list for all CPUs (bgswitch until issue 7);
 *   ct_nocommon  one LRU hash, BPF_F_NO_COMMON_LRU: an LRU list per CPU;
 *   ct_percpu    an array of LRU hashes, one per CPU, found by the running CPU (Katran).
 * Each run does `count` operations (bpf_loop) on flows base .. base + count - 1 (salted
 * with the CPU): insert them, or look them up (a program lookup marks an entry
 * referenced, as traffic would).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "bgswitch.h"

struct inner {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1);
	__type(key, struct bgs_flow_key);
	__type(value, struct bgs_flow);
} ct_inner SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1);
	__type(key, struct bgs_flow_key);
	__type(value, struct bgs_flow);
} ct_common SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct bgs_flow_key);
	__type(value, struct bgs_flow);
} ct_nocommon SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct inner);
} ct_percpu SEC(".maps");

/* Set by user space before each run. */
__u32 variant; /* 0 common, 1 nocommon, 2 percpu */
__u32 op;      /* 0 insert, 1 lookup */
__u32 base;
__u32 count;
/* Results of the last run. */
__u64 done, hits, fails;

static __always_inline void *target(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	if (variant == 0)
		return &ct_common;
	if (variant == 1)
		return &ct_nocommon;
	return bpf_map_lookup_elem(&ct_percpu, &cpu);
}

static long one(__u64 i, void *ctx)
{
	struct bgs_flow_key k = {};
	struct bgs_flow v = {};
	void *m = target();

	if (!m) {
		fails++;
		return 1;
	}
	/* flows of different CPUs never collide (both may insert at once) */
	k.src[0] = base + (__u32)i + (bpf_get_smp_processor_id() << 22);
	k.dst[0] = 0x0a630001;
	k.sport = 1024;
	k.dport = 80;
	k.proto = 6;
	k.family = BGS_AF_INET;
	if (op == 0) {
		v.backend_id = 1;
		v.tcp_state = BGS_TCP_EST;
		if (bpf_map_update_elem(m, &k, &v, BPF_ANY))
			fails++;
	} else if (bpf_map_lookup_elem(m, &k)) {
		hits++;
	}
	done++;
	return 0;
}

SEC("xdp")
int churn(struct xdp_md *ctx)
{
	done = hits = fails = 0;
	bpf_loop(count, one, NULL, 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
