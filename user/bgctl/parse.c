// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Input parsers and formatters. Each parser accepts exactly its documented form and on
 * anything else leaves one line naming the bad value and what is allowed.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "bgctl.h"

static const char *const colors[] = { "blue", "green" };

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

/* Printable copy of user input for messages: bounded, control bytes shown as '?'. */
static const char *shown(const char *s)
{
	static char buf[4][80];
	static int n;
	char *b = buf[n++ & 3];
	size_t i;

	for (i = 0; s[i] && i < sizeof(buf[0]) - 4; i++)
		b[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
	if (s[i])
		memcpy(b + i++, "...", 3), i += 2;
	b[i] = '\0';
	return b;
}

int parse_color(const char *s, int *color)
{
	for (int i = 0; i < 2; i++) {
		if (strcmp(s, colors[i]) == 0) {
			*color = i;
			return 0;
		}
	}
	return usage_fail("bad color '%s': expected blue or green", shown(s));
}

int parse_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > BGS_NAME_MAX - 1)
		return usage_fail("bad service name '%s': 1 to %d characters of A-Z a-z 0-9 _ . -",
				  shown(s), BGS_NAME_MAX - 1);
	for (size_t i = 0; i < n; i++) {
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
			return usage_fail(
				"bad service name '%s': only A-Z a-z 0-9 _ . - are allowed",
				shown(s));
	}
	if (s[0] == '-')
		return usage_fail("bad service name '%s': must not start with '-'", shown(s));
	return 0;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

int parse_u64(const char *s, const char *what, unsigned long long max, unsigned long long *v)
{
	unsigned long long x;

	errno = 0;
	if (!all_digits(s) || strlen(s) > 20)
		goto bad;
	x = strtoull(s, NULL, 10);
	if (errno || x > max)
		goto bad;
	*v = x;
	return 0;
bad:
	return usage_fail("bad %s '%s': expected a whole number from 0 to %llu", what, shown(s),
			  max);
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
	unsigned long long x;

	errno = 0;
	if (!all_digits(s) || strlen(s) > 5)
		goto bad;
	x = strtoull(s, NULL, 10);
	if (x < 1 || x > 65535)
		goto bad;
	*port = (__u16)x;
	return 0;
bad:
	return usage_fail("bad %s '%s': expected a port number from 1 to 65535", what, shown(s));
}

int parse_duration(const char *s, const char *what, unsigned long long *ms, bool allow_none)
{
	static const unsigned long long max_ms = 7ULL * 24 * 3600 * 1000;
	unsigned long long total = 0, x;
	const char *p = s;

	if (allow_none && (strcmp(s, "none") == 0 || strcmp(s, "never") == 0)) {
		*ms = BGS_NO_DEADLINE;
		return 0;
	}
	if (strcmp(s, "0") == 0) {
		*ms = 0;
		return 0;
	}
	if (!*p)
		goto bad;
	while (*p) {
		unsigned long long mult;
		const char *start = p;

		if (!isdigit((unsigned char)*p))
			goto bad;
		x = 0;
		while (isdigit((unsigned char)*p)) {
			x = x * 10 + (unsigned long long)(*p - '0');
			if (x > max_ms || p - start > 12)
				goto bad;
			p++;
		}
		if (strncmp(p, "ms", 2) == 0) {
			mult = 1;
			p += 2;
		} else if (*p == 's') {
			mult = 1000;
			p++;
		} else if (*p == 'm') {
			mult = 60 * 1000;
			p++;
		} else if (*p == 'h') {
			mult = 3600 * 1000;
			p++;
		} else if (*p == 'd') {
			mult = 24 * 3600 * 1000;
			p++;
		} else {
			goto bad;
		}
		total += x * mult;
		if (total > max_ms)
			goto bad;
	}
	*ms = total;
	return 0;
bad:
	return usage_fail("bad %s '%s': expected a duration like 500ms, 30s, 5m, 1h or 1m30s "
			  "(at most 7d)%s",
			  what, shown(s), allow_none ? ", 0 or none" : " or 0");
}

/*
 * A decimal with at most nw whole digits and nf decimals ("10", "2.5"), scaled by 10^nf
 * into *v; *pp is left after it. -1 if there is none.
 */
static int decimal(const char **pp, int nw, int nf, unsigned long *v)
{
	const char *p = *pp;
	unsigned long whole = 0, frac = 0;
	int w = 0, f = 0;

	while (isdigit((unsigned char)*p) && w <= nw) {
		whole = whole * 10 + (unsigned long)(*p++ - '0');
		w++;
	}
	if (w == 0 || w > nw)
		return -1;
	if (*p == '.') {
		p++;
		while (isdigit((unsigned char)*p) && f <= nf) {
			frac = frac * 10 + (unsigned long)(*p++ - '0');
			f++;
		}
		if (f == 0 || f > nf)
			return -1;
	}
	for (; f < nf; f++)
		frac *= 10;
	for (f = 0; f < nf; f++)
		whole *= 10;
	*v = whole + frac;
	*pp = p;
	return 0;
}

int parse_percent(const char *s, __u32 *bps)
{
	const char *p = s;
	unsigned long v;

	if (decimal(&p, 3, 2, &v))
		goto bad;
	if (*p == '%')
		p++;
	if (*p || v > BGS_CANARY_SCALE)
		goto bad;
	*bps = (__u32)v;
	return 0;
bad:
	return usage_fail("bad percentage '%s': expected 0 to 100 with at most two decimals "
			  "(e.g. 10, 2.5, 0.25)",
			  shown(s));
}

int parse_seconds(const char *s, const char *what, unsigned int max_s, int *ms)
{
	const char *p = s;
	unsigned long v;

	if (decimal(&p, 7, 3, &v) || *p || v > (unsigned long)max_s * 1000)
		return usage_fail("bad %s '%s': expected seconds from 0 to %u with at most "
				  "three decimals (e.g. 5, 0.5)",
				  what, shown(s), max_s);
	*ms = (int)v;
	return 0;
}

int parse_ip(const char *s, struct bgs_ip *ip)
{
	if (bgs_ip_parse(s, ip) == 0)
		return 0;
	return usage_fail("bad address '%s': expected an IPv4 address (10.0.0.1) or an IPv6 "
			  "address (2001:db8::1)",
			  shown(s));
}

/* Split "ADDR", "ADDR:PORT", "V6", "[V6]", "[V6]:PORT" into address and port strings. */
static int split_addr_port(const char *s, char *addr, size_t alen, const char **port)
{
	const char *colon;

	*port = NULL;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (!end || (size_t)(end - s - 1) >= alen)
			return -EINVAL;
		memcpy(addr, s + 1, (size_t)(end - s - 1));
		addr[end - s - 1] = '\0';
		if (end[1] == ':')
			*port = end + 2;
		else if (end[1])
			return -EINVAL;
		return 0;
	}
	colon = strchr(s, ':');
	if (colon && !strchr(colon + 1, ':')) {
		if ((size_t)(colon - s) >= alen)
			return -EINVAL;
		memcpy(addr, s, (size_t)(colon - s));
		addr[colon - s] = '\0';
		*port = colon + 1;
		return 0;
	}
	if (strlen(s) >= alen)
		return -EINVAL;
	strcpy(addr, s);
	return 0;
}

int parse_addr_port(const char *s, struct bgs_ip *ip, __u16 *port)
{
	const char *ps;
	char addr[64];
	int err;

	if (split_addr_port(s, addr, sizeof(addr), &ps))
		return usage_fail("bad backend '%s': expected ADDR, ADDR:PORT or [IPV6]:PORT",
				  shown(s));
	err = parse_ip(addr, ip);
	if (err)
		return err;
	*port = 0;
	if (ps)
		return parse_port(ps, "port", port);
	return 0;
}

int parse_vip(const char *s, struct bgs_ip *ip, __u16 *port, __u8 *proto)
{
	char buf[96], addr[64];
	const char *ps;
	char *slash;
	int err;

	if (strlen(s) >= sizeof(buf))
		goto bad;
	strcpy(buf, s);
	*proto = IPPROTO_TCP;
	slash = strrchr(buf, '/');
	if (slash) {
		*slash++ = '\0';
		if (strcmp(slash, "tcp") == 0)
			*proto = IPPROTO_TCP;
		else if (strcmp(slash, "udp") == 0)
			*proto = IPPROTO_UDP;
		else
			return usage_fail("bad protocol '%s' in VIP '%s': expected tcp or udp",
					  shown(slash), shown(s));
	}
	if (split_addr_port(buf, addr, sizeof(addr), &ps) || !ps)
		goto bad;
	err = parse_ip(addr, ip);
	if (err)
		return err;
	return parse_port(ps, "VIP port", port);
bad:
	return usage_fail("bad VIP '%s': expected ADDR:PORT[/tcp|/udp], e.g. 10.0.0.1:80/tcp or "
			  "[2001:db8::1]:443",
			  shown(s));
}

int parse_prefix(const char *s, struct bgs_prefix *p)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	unsigned long long len;
	int err, maxlen;

	memset(p, 0, sizeof(*p));
	if (!slash || (size_t)(slash - s) >= sizeof(addr))
		return usage_fail("bad prefix '%s': expected ADDR/LEN, e.g. 10.0.2.0/24 or "
				  "2001:db8::/64",
				  shown(s));
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	err = parse_ip(addr, &p->ip);
	if (err)
		return err;
	maxlen = p->ip.family == BGS_AF_INET ? 32 : 128;
	if (!all_digits(slash + 1) || strlen(slash + 1) > 3 ||
	    (len = strtoull(slash + 1, NULL, 10)) > (unsigned long long)maxlen)
		return usage_fail("bad prefix length in '%s': expected 0 to %d", shown(s), maxlen);
	/* The library's host-bit rule; the form and length are known good by now. */
	if (bgs_prefix_parse(s, p))
		return usage_fail("bad prefix '%s': bits set past /%llu (did you mean the "
				  "network address?)",
				  shown(s), len);
	return 0;
}

int parse_reason(const char *s)
{
	if (strlen(s) > 200)
		return usage_fail("reason too long (%zu characters): at most 200", strlen(s));
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return usage_fail("bad reason: control characters are not allowed");
	return 0;
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
