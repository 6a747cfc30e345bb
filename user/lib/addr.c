// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* libbgswitch: addresses and prefixes as the maps hold them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "bgs_priv.h"

int bgs_ip_parse(const char *s, struct bgs_ip *ip)
{
	struct in6_addr a6;
	struct in_addr a4;

	memset(ip, 0, sizeof(*ip));
	if (!s || !*s)
		return bgs_err(-EINVAL, "empty address");
	if (inet_pton(AF_INET, s, &a4) == 1) {
		ip->family = BGS_AF_INET;
		ip->addr[0] = a4.s_addr;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &a6) == 1) {
		ip->family = BGS_AF_INET6;
		memcpy(ip->addr, &a6, sizeof(a6));
		return 0;
	}
	return bgs_err(-EINVAL, "'%s' is not an IPv4 or IPv6 address", s);
}

const char *bgs_ip_str(const struct bgs_ip *ip, char *buf, size_t len)
{
	if (!buf || !len)
		return "";
	if (ip->family == BGS_AF_INET) {
		if (!inet_ntop(AF_INET, ip->addr, buf, len))
			snprintf(buf, len, "?");
	} else if (ip->family == BGS_AF_INET6) {
		if (!inet_ntop(AF_INET6, ip->addr, buf, len))
			snprintf(buf, len, "?");
	} else {
		snprintf(buf, len, "(family %u)", ip->family);
	}
	return buf;
}

const char *bgs_addr_port_str(__u8 family, const __u32 *addr, __u16 port, char *buf, size_t len)
{
	struct bgs_ip ip = { .family = family };
	char a[INET6_ADDRSTRLEN];

	memcpy(ip.addr, addr, sizeof(ip.addr));
	bgs_ip_str(&ip, a, sizeof(a));
	snprintf(buf, len, family == BGS_AF_INET6 ? "[%s]:%u" : "%s:%u", a, port);
	return buf;
}

/* Bit i (from the most significant of addr's bytes in network order). */
static __u8 *addr_bytes(struct bgs_ip *ip)
{
	return (__u8 *)ip->addr;
}

int bgs_prefix_parse(const char *s, struct bgs_prefix *p)
{
	char buf[INET6_ADDRSTRLEN + 8], net[INET6_ADDRSTRLEN];
	struct bgs_ip masked;
	char *slash, *end;
	unsigned long len;
	unsigned int bits, i;
	__u8 *b;
	int err;

	memset(p, 0, sizeof(*p));
	if (!s || snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		return bgs_err(-EINVAL, "'%s' is not a prefix (ADDRESS/LENGTH)", s ? s : "");
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	err = bgs_ip_parse(buf, &p->ip);
	if (err)
		return bgs_err(err, "'%s' is not a prefix: '%s' is not an IPv4 or IPv6 address", s,
			       buf);
	bits = p->ip.family == BGS_AF_INET ? 32 : 128;
	if (!slash) {
		len = bits;
	} else {
		errno = 0;
		len = strtoul(slash + 1, &end, 10);
		if (slash[1] < '0' || slash[1] > '9' || *end || errno || len > bits)
			return bgs_err(-EINVAL, "'%s': prefix length must be 0..%u", s, bits);
	}
	p->len = (__u8)len;
	masked = p->ip;
	b = addr_bytes(&masked);
	for (i = p->len; i < bits; i++)
		b[i / 8] &= (__u8)~(0x80u >> (i % 8));
	if (memcmp(masked.addr, p->ip.addr, sizeof(masked.addr))) {
		bgs_ip_str(&masked, net, sizeof(net));
		memset(p, 0, sizeof(*p));
		return bgs_err(-EINVAL, "'%s' has host bits set: the network would be %s/%lu", s,
			       net, len);
	}
	return 0;
}
