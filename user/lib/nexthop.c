// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libbgswitch: a backend's next hop, resolved in the caller's network namespace the way the
 * kernel would forward to it: the route (output interface, gateway), the neighbour entry of
 * the gateway or the address itself, and the output interface's MAC.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <libmnl/libmnl.h>
#include <bpf/bpf.h>

#include "bgs_priv.h"

/* Bounded wait for a neighbour the kernel starts resolving: NEIGH_TRIES x NEIGH_WAIT_US. */
#define NEIGH_TRIES 5
#define NEIGH_WAIT_US 10000

struct route_res {
	__u32 oif;
	__u8 gw[16];
	bool has_gw;
	bool ok;
};

struct neigh_res {
	__u32 ifindex;
	int family;
	const __u8 *dst;
	__u32 alen;
	__u8 mac[6];
	bool ok;
};

static int nl_talk(struct mnl_socket *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	unsigned int portid = mnl_socket_get_portid(nl), seq = nlh->nlmsg_seq;
	int ret;

	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		ret = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (ret < 0)
			return -errno;
		ret = mnl_cb_run(buf, ret, seq, portid, cb, data);
		if (ret < 0)
			return -errno;
		if (ret == MNL_CB_STOP)
			return 0;
		if (!(nlh->nlmsg_flags & NLM_F_DUMP) && !(nlh->nlmsg_flags & NLM_F_ACK))
			return 0;
	}
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	struct route_res *r = data;
	struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	struct nlattr *a;
	__u32 alen = rtm->rtm_family == AF_INET ? 4 : 16;

	if (nlh->nlmsg_type != RTM_NEWROUTE || rtm->rtm_type != RTN_UNICAST)
		return MNL_CB_OK;
	mnl_attr_for_each(a, nlh, sizeof(*rtm)) {
		switch (mnl_attr_get_type(a)) {
		case RTA_OIF:
			if (mnl_attr_get_payload_len(a) >= 4)
				r->oif = mnl_attr_get_u32(a);
			break;
		case RTA_GATEWAY:
			if (mnl_attr_get_payload_len(a) == alen) {
				memcpy(r->gw, mnl_attr_get_payload(a), alen);
				r->has_gw = true;
			}
			break;
		case RTA_MULTIPATH: {
			struct rtnexthop *nh = mnl_attr_get_payload(a);

			/* A lookup answer names one path; take the first if several. */
			if (mnl_attr_get_payload_len(a) >= sizeof(*nh) && !r->oif)
				r->oif = nh->rtnh_ifindex;
			break;
		}
		}
	}
	r->ok = r->oif != 0;
	return MNL_CB_OK;
}

static int neigh_cb(const struct nlmsghdr *nlh, void *data)
{
	struct neigh_res *n = data;
	struct ndmsg *ndm = mnl_nlmsg_get_payload(nlh);
	const __u16 good = NUD_REACHABLE | NUD_PERMANENT | NUD_STALE | NUD_DELAY | NUD_PROBE |
			   NUD_NOARP;
	const void *dst = NULL, *ll = NULL;
	struct nlattr *a;

	if (nlh->nlmsg_type != RTM_NEWNEIGH || ndm->ndm_family != n->family ||
	    (__u32)ndm->ndm_ifindex != n->ifindex || !(ndm->ndm_state & good))
		return MNL_CB_OK;
	mnl_attr_for_each(a, nlh, sizeof(*ndm)) {
		if (mnl_attr_get_type(a) == NDA_DST && mnl_attr_get_payload_len(a) == n->alen)
			dst = mnl_attr_get_payload(a);
		else if (mnl_attr_get_type(a) == NDA_LLADDR && mnl_attr_get_payload_len(a) == 6)
			ll = mnl_attr_get_payload(a);
	}
	if (dst && ll && !memcmp(dst, n->dst, n->alen)) {
		memcpy(n->mac, ll, 6);
		n->ok = true;
	}
	return MNL_CB_OK;
}

static int if_mac(__u32 ifindex, __u8 *mac)
{
	struct ifreq ifr = {};
	int fd, err = 0;

	if (!if_indextoname(ifindex, ifr.ifr_name))
		return -errno;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		err = -errno;
	else if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER)
		err = -EOPNOTSUPP;
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	close(fd);
	return err;
}

/*
 * Asks the kernel to resolve the next hop and keep it resolved (a "managed" neighbour
 * entry, as `ip neigh add ADDR dev DEV managed`), so that a later bgs_backend_resolve_all
 * finds it. Best effort: an existing entry is left alone.
 */
static void neigh_manage(struct mnl_socket *nl, int family, __u32 ifindex, const __u8 *dst,
			 __u32 alen)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct ndmsg *ndm;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWNEIGH;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
	nlh->nlmsg_seq = (unsigned int)time(NULL) + 2;
	ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
	ndm->ndm_family = family;
	ndm->ndm_ifindex = (int)ifindex;
	ndm->ndm_state = NUD_NONE;
	mnl_attr_put(nlh, NDA_DST, alen, dst);
	mnl_attr_put_u32(nlh, NDA_FLAGS_EXT, NTF_EXT_MANAGED);
	nl_talk(nl, nlh, NULL, NULL);
}

int bgs_nexthop_resolve(struct bgs_backend *be)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct route_res r = {};
	struct neigh_res n = {};
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;
	struct ndmsg *ndm;
	int family = be->family == BGS_AF_INET ? AF_INET : AF_INET6;
	__u32 alen = family == AF_INET ? 4 : 16;
	__u8 smac[6];
	int err, tries;

	be->ifindex = 0;
	memset(be->dmac, 0, 6);
	memset(be->smac, 0, 6);
	be->flags &= ~BGS_BE_NEXTHOP;

	nl = mnl_socket_open(NETLINK_ROUTE);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto out;
	}
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = (unsigned int)time(NULL);
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = family;
	rtm->rtm_dst_len = alen * 8;
	mnl_attr_put(nlh, RTA_DST, alen, be->addr);
	err = nl_talk(nl, nlh, route_cb, &r);
	if (err || !r.ok) {
		err = err ? err : -ENETUNREACH;
		goto out;
	}
	err = if_mac(r.oif, smac);
	if (err)
		goto out;

	n.ifindex = r.oif;
	n.family = family;
	n.alen = alen;
	n.dst = r.has_gw ? r.gw : (const __u8 *)be->addr;
	for (tries = 0;; tries++) {
		nlh = mnl_nlmsg_put_header(buf);
		nlh->nlmsg_type = RTM_GETNEIGH;
		nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
		nlh->nlmsg_seq = (unsigned int)time(NULL) + 1;
		ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
		ndm->ndm_family = family;
		err = nl_talk(nl, nlh, neigh_cb, &n);
		if (err || n.ok)
			break;
		if (tries == NEIGH_TRIES) {
			err = -EHOSTUNREACH;
			break;
		}
		/* Unknown yet: have the kernel resolve it; a neighbour on the link answers
		 * within a few ms (bounded wait), a later resolve_all catches slower ones. */
		if (!tries)
			neigh_manage(nl, family, r.oif, n.dst, alen);
		usleep(NEIGH_WAIT_US);
	}
	if (err)
		goto out;
	be->ifindex = r.oif;
	memcpy(be->dmac, n.mac, 6);
	memcpy(be->smac, smac, 6);
	be->flags |= BGS_BE_NEXTHOP;
out:
	mnl_socket_close(nl);
	return err;
}

int bgs_tx_port_add(struct bgs *h, __u32 ifindex)
{
	struct bpf_devmap_val v = { .ifindex = ifindex };
	char name[IF_NAMESIZE];

	bgs_err_clear();
	if (!ifindex || !if_indextoname(ifindex, name))
		return bgs_err(-ENODEV, "no interface with index %u in this namespace", ifindex);
	/* Never over an entry that is there: replacing a key of a DEVMAP_HASH unlinks it
	 * before it links the new one, and a redirect in between drops the packet. */
	if (bpf_map_update_elem(h->map_fd[BGS_M_TX_PORTS], &ifindex, &v, BPF_NOEXIST) &&
	    errno != EEXIST)
		return bgs_err(-errno, "cannot add interface %s (index %u) to bgs_tx_ports: %s",
			       name, ifindex, strerror(errno));
	return 0;
}
