// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Input parsers (the library's, reported as usage errors) and formatters.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "bgctl.h"

const char *color_name(int color)
{
	return color == BGS_BLUE ? "blue" : color == BGS_GREEN ? "green" : "?";
}

const char *mode_name(int mode)
{
	return mode == BGS_MODE_NAT ? "nat" : mode == BGS_MODE_DSR ? "dsr" : "?";
}

const char *proto_name(int proto)
{
	return proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp" : "?";
}

const char *admin_name(int admin)
{
	switch (admin) {
	case BGS_ADMIN_UP:
		return "up";
	case BGS_ADMIN_DRAIN:
		return "drain";
	case BGS_ADMIN_DOWN:
		return "down";
	}
	return "?";
}

const char *health_name(int health)
{
	return health == BGS_HEALTH_UP ? "up" : health == BGS_HEALTH_DOWN ? "down" : "?";
}

/* The library's parsers leave a one-line message; bgctl reports it as a usage error (exit 2). */
static int lib_usage(int err)
{
	return err ? usage_fail("%s", bgs_errmsg()) : 0;
}

int parse_color(const char *s, int *color)
{
	return lib_usage(bgs_parse_color(s, color));
}

int parse_name(const char *s)
{
	return lib_usage(bgs_parse_name(s));
}

int parse_u64(const char *s, const char *what, unsigned long long max, unsigned long long *v)
{
	return lib_usage(bgs_parse_u64(s, what, max, v));
}

int parse_u32(const char *s, const char *what, unsigned long long max, __u32 *v)
{
	unsigned long long x;
	int err = parse_u64(s, what, max, &x);

	if (!err)
		*v = (__u32)x;
	return err;
}

int parse_port(const char *s, const char *what, __u16 *port)
{
	return lib_usage(bgs_parse_port(s, what, port));
}

int parse_duration(const char *s, const char *what, unsigned long long *ms, bool allow_none)
{
	return lib_usage(bgs_parse_duration(s, what, allow_none, ms));
}

int parse_percent(const char *s, __u32 *bps)
{
	return lib_usage(bgs_parse_percent(s, bps));
}

int parse_seconds(const char *s, const char *what, unsigned int max_s, int *ms)
{
	return lib_usage(bgs_parse_seconds(s, what, max_s, ms));
}

int parse_ip(const char *s, struct bgs_ip *ip)
{
	return lib_usage(bgs_parse_ip(s, ip));
}

int parse_addr_port(const char *s, struct bgs_ip *ip, __u16 *port)
{
	return lib_usage(bgs_parse_addr_port(s, ip, port));
}

int parse_vip(const char *s, struct bgs_ip *ip, __u16 *port, __u8 *proto)
{
	return lib_usage(bgs_parse_vip(s, ip, port, proto));
}

int parse_prefix(const char *s, struct bgs_prefix *p)
{
	return lib_usage(bgs_parse_prefix(s, p));
}

int parse_reason(const char *s)
{
	return lib_usage(bgs_parse_reason(s));
}

void ip_from_words(struct bgs_ip *ip, __u8 family, const __u32 addr[4])
{
	memset(ip, 0, sizeof(*ip));
	ip->family = family;
	memcpy(ip->addr, addr, sizeof(ip->addr));
}

char *addr_port_str(const struct bgs_ip *ip, __u16 port, char *buf, size_t len)
{
	char a[64];

	bgs_ip_str(ip, a, sizeof(a));
	if (ip->family == BGS_AF_INET6)
		snprintf(buf, len, "[%s]:%u", a, port);
	else
		snprintf(buf, len, "%s:%u", a, port);
	return buf;
}

char *prefix_str(const struct bgs_prefix *p, char *buf, size_t len)
{
	char a[64];

	snprintf(buf, len, "%s/%u", bgs_ip_str(&p->ip, a, sizeof(a)), p->len);
	return buf;
}

char *pct_str(__u32 bps, char *buf, size_t len)
{
	snprintf(buf, len, "%u.%02u%%", bps / 100, bps % 100);
	return buf;
}

char *dur_str(double sec, char *buf, size_t len)
{
	if (sec < 0)
		sec = 0;
	if (sec < 60)
		snprintf(buf, len, "%.1fs", sec);
	else if (sec < 3600)
		snprintf(buf, len, "%dm%02ds", (int)sec / 60, (int)sec % 60);
	else
		snprintf(buf, len, "%dh%02dm", (int)sec / 3600, ((int)sec % 3600) / 60);
	return buf;
}
