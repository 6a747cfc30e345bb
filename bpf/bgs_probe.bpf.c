// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A scratch copy of how libxdp attaches the entry, for libbgswitch's load-time probe of the
 * expected attach type an extension program gets (see progs_attach_type in user/lib/load.c):
 * bgs_probe_owner owns a fresh program array, bgs_probe_ext replaces bgs_probe_slot of
 * bgs_probe_target (as the entry replaces a slot of libxdp's dispatcher) and tail-calls
 * through the same array. Never attached, never pinned.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bgs_probe_progs SEC(".maps");

/* a dispatcher slot: global and not inlined, so an extension can replace it */
__attribute__((noinline)) int bgs_probe_slot(struct xdp_md *ctx)
{
	return ctx->rx_queue_index ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int bgs_probe_target(struct xdp_md *ctx)
{
	return bgs_probe_slot(ctx);
}

SEC("xdp")
int bgs_probe_owner(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &bgs_probe_progs, 0);
	return XDP_PASS;
}

SEC("freplace/bgs_probe_slot")
int bgs_probe_ext(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &bgs_probe_progs, 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
