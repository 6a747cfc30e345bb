// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The port filter (bgs_ports, struct bgs_port): the program consults conntrack, the VIPs
 * and the nat backends only for ports flagged here, and VIPs only for destination addresses
 * whose bloom bit is set. An entry is rewritten before the key it announces is inserted
 * and recomputed after a key is deleted, so the program never misses a key that exists; a
 * flag or bit left set costs only a lookup that misses. vip_svc names the one service
 * using the port with a protocol (the program then compares that service's record instead
 * of looking the VIP up).
 */
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>

#include "bgs_priv.h"
#include "bgswitch_hash.h"

struct nat_scan {
	__be16 port;
	__u32 except_svc;
	__u32 flags;
};

static int nat_scan_one(const struct bgs_revnat_slot *e, void *arg)
{
	struct nat_scan *ns = arg;

	if (e->key.port == ns->port && e->svc_id != ns->except_svc)
		ns->flags |= bgs_port_nat_flag(e->key.proto);
	return 0;
}

int bgs_ports_sync(struct bgs *h, __be16 port, __u32 extra, __u32 except_svc)
{
	struct bgs_service svc;
	struct nat_scan ns = { .port = port, .except_svc = except_svc };
	struct bgs_port v = { .flags = extra };
	__u32 id, key = ntohs(port), users[2] = { 0, 0 };
	int u;

	if (!port)
		return 0;
	for (id = 0; id < h->meta.max_services; id++) {
		if (id == except_svc || bpf_map_lookup_elem(h->map_fd[BGS_M_SVCS], &id, &svc))
			continue;
		if (!(svc.flags & BGS_SVC_IN_USE))
			continue;
		if (svc.port != port && svc.preview_port != port)
			continue;
		v.flags |= bgs_port_vip_flag(svc.proto);
		v.vip_bloom |= bgs_addr_bloom_bit(svc.vip);
		u = svc.proto == IPPROTO_UDP;
		/* keys of this port and protocol: its port, its preview port (never both) */
		users[u]++;
		v.vip_svc[u] = id + 1;
	}
	for (u = 0; u < 2; u++)
		if (users[u] != 1)
			v.vip_svc[u] = 0;
	/* a VIP flag announced for a key not in a record yet (none today): no address known */
	if (v.flags & (BGS_PORT_VIP_TCP | BGS_PORT_VIP_UDP) & extra)
		v.vip_bloom = ~0ULL;
	bgs_revnat_walk(h, nat_scan_one, &ns);
	v.flags |= ns.flags;
	if (bpf_map_update_elem(h->map_fd[BGS_M_PORTS], &key, &v, BPF_ANY))
		return bgs_err(-errno, "cannot update bgs_ports[%u]: %s", key, strerror(errno));
	return 0;
}
