// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* bgswitch: the switch. Placeholder body; maps are final. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "maps.h"
#include "switch_maps.h"

SEC("xdp")
int bgs_switch(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
