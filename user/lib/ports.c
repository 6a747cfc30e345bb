// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The port filter (bgs_ports): the program consults conntrack, the VIPs and the nat
 * backends only for ports flagged here. A flag is set before the key it announces is
 * inserted and recomputed after a key is deleted, so the program never misses a key that
 * exists; a flag left set costs only a lookup that misses.
 */
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>

#include "bgs_priv.h"

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
	__u32 flags = extra, id, key = ntohs(port);

	if (!port)
		return 0;
	for (id = 0; id < h->meta.max_services; id++) {
		if (id == except_svc || bpf_map_lookup_elem(h->map_fd[BGS_M_SVCS], &id, &svc))
			continue;
		if (!(svc.flags & BGS_SVC_IN_USE))
			continue;
		if (svc.port == port || svc.preview_port == port)
			flags |= bgs_port_vip_flag(svc.proto);
	}
	bgs_revnat_walk(h, nat_scan_one, &ns);
	flags |= ns.flags;
	if (bpf_map_update_elem(h->map_fd[BGS_M_PORTS], &key, &flags, BPF_ANY))
		return bgs_err(-errno, "cannot update bgs_ports[%u]: %s", key, strerror(errno));
	return 0;
}
