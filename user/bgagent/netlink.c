// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Next hops follow the network: a rtnetlink socket on the loop hears neighbour and route
 * changes (in the agent's namespace, where the backends' next hops are resolved) and asks
 * the worker thread to re-resolve the backends. Changes come in bursts (and the agent's own
 * health checks refresh neighbours), so they are coalesced: one re-resolution at most every
 * RESOLVE_DELAY_MS, after the first change of a burst. The library republishes only the
 * backends whose next hop actually changed.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include "agent_priv.h"

#define RESOLVE_DELAY_MS 200

static int on_resolve_timer(sd_event_source *src, uint64_t usec, void *arg)
{
	(void)src;
	(void)usec;
	walker_resolve(arg);
	return 0;
}

/* Neighbour states that say nothing new about where a backend is. */
static bool neigh_relevant(const struct nlmsghdr *nh)
{
	const struct ndmsg *nd = NLMSG_DATA(nh);

	if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(*nd)))
		return false;
	/* probes, delays and staleness of an entry whose MAC stays: not a change */
	return nh->nlmsg_type == RTM_DELNEIGH ||
	       (nd->ndm_state & (NUD_REACHABLE | NUD_PERMANENT | NUD_NOARP | NUD_FAILED));
}

static int on_netlink(sd_event_source *src, int fd, uint32_t revents, void *arg)
{
	struct agent *ag = arg;
	char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));
	bool changed = false;
	ssize_t n;
	int enabled = SD_EVENT_OFF;

	(void)src;
	(void)revents;
	while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n);
		     nh = NLMSG_NEXT(nh, n)) {
			switch (nh->nlmsg_type) {
			case RTM_NEWNEIGH:
			case RTM_DELNEIGH:
				changed |= neigh_relevant(nh);
				break;
			case RTM_NEWROUTE:
			case RTM_DELROUTE:
				changed = true;
				break;
			default:
				break;
			}
		}
	}
	/* ENOBUFS: events were lost; re-resolve to be sure */
	if (n < 0 && errno == ENOBUFS)
		changed = true;
	sd_event_source_get_enabled(ag->nl_timer, &enabled);
	if (changed && enabled == SD_EVENT_OFF) {
		sd_event_source_set_time_relative(ag->nl_timer, RESOLVE_DELAY_MS * 1000ULL);
		sd_event_source_set_enabled(ag->nl_timer, SD_EVENT_ONESHOT);
	}
	return 0;
}

int netlink_start(struct agent *ag)
{
	struct sockaddr_nl sa = {
		.nl_family = AF_NETLINK,
		.nl_groups = RTMGRP_NEIGH | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE,
	};
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);

	ag->nl_fd = -1;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		agent_log(LOG_E, "cannot listen to neighbour and route changes: %s",
			  strerror(errno));
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	ag->nl_fd = fd;
	if (sd_event_add_io(ag->ev, &ag->nl_io, fd, EPOLLIN, on_netlink, ag) < 0 ||
	    sd_event_add_time(ag->ev, &ag->nl_timer, CLOCK_MONOTONIC, 0, 1000, on_resolve_timer,
			      ag) < 0 ||
	    sd_event_source_set_enabled(ag->nl_timer, SD_EVENT_OFF) < 0) {
		netlink_stop(ag);
		return -ENOMEM;
	}
	return 0;
}

void netlink_stop(struct agent *ag)
{
	ag->nl_io = sd_event_source_disable_unref(ag->nl_io);
	ag->nl_timer = sd_event_source_disable_unref(ag->nl_timer);
	if (ag->nl_fd >= 0)
		close(ag->nl_fd);
	ag->nl_fd = -1;
}
