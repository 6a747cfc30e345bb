// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The stable entry that libxdp attaches. It only tail-calls the switch through the pinned
 * program array, so upgrading the switch is one update of that array and never touches
 * the attachment. Kept minimal on purpose: it must never need an upgrade itself.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <xdp/xdp_helpers.h>
#include "maps.h"

BGS_PROGS_MAP;
BGS_REASONS_MAP;

/* libxdp: run as the first program of the dispatcher; later programs see what we pass. */
struct {
	__uint(priority, 10);
	__uint(XDP_PASS, 1);
} XDP_RUN_CONFIG(bgs_entry);

SEC("xdp")
int bgs_entry(struct xdp_md *ctx)
{
	struct bgs_reason_counter *rc;
	__u32 key = BGS_R_PASS_NO_SWITCH;

	bpf_tail_call(ctx, &bgs_progs, BGS_PROG_SWITCH);

	/* No switch loaded: the kernel handles the packet, and that is counted. */
	rc = bpf_map_lookup_elem(&bgs_reasons, &key);
	if (rc) {
		rc->packets++;
		rc->bytes += ctx->data_end - ctx->data;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
