// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libbgswitch: parsers for the values users type (on a command line, in a config file). Each
 * accepts exactly its documented form; on anything else it returns -EINVAL and leaves one line
 * (bgs_errmsg) naming the bad value and what is allowed. One definition for every front end.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "bgs_priv.h"

/* Longest drain, pause or timeout a duration may name. */
#define DURATION_MAX_MS (7ULL * 24 * 3600 * 1000)

/* Printable copy of user input for messages: bounded, control bytes shown as '?'. */
static const char *shown(const char *s)
{
	static __thread char buf[4][80];
	static __thread int n;
	char *b = buf[n++ & 3];
	size_t i;

	for (i = 0; s[i] && i < sizeof(buf[0]) - 4; i++)
		b[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
	if (s[i]) {
		memcpy(b + i, "...", 3);
		i += 3;
	}
	b[i] = '\0';
	return b;
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

int bgs_parse_color(const char *s, int *color)
{
	if (!strcmp(s, "blue"))
		*color = BGS_BLUE;
	else if (!strcmp(s, "green"))
		*color = BGS_GREEN;
	else
		return bgs_err(-EINVAL, "bad color '%s': expected blue or green", shown(s));
	return 0;
}

int bgs_parse_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > BGS_NAME_MAX - 1)
		return bgs_err(-EINVAL,
			       "bad service name '%s': 1 to %d characters of A-Z a-z 0-9 _ . -",
			       shown(s), BGS_NAME_MAX - 1);
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
			return bgs_err(-EINVAL,
				       "bad service name '%s': only A-Z a-z 0-9 _ . - are allowed",
				       shown(s));
	if (s[0] == '-')
		return bgs_err(-EINVAL, "bad service name '%s': must not start with '-'", shown(s));
	return 0;
}

int bgs_parse_u64(const char *s, const char *what, __u64 max, __u64 *v)
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
	return bgs_err(-EINVAL, "bad %s '%s': expected a whole number from 0 to %llu", what,
		       shown(s), (unsigned long long)max);
}

int bgs_parse_port(const char *s, const char *what, __u16 *port)
{
	unsigned long long x;

	if (!all_digits(s) || strlen(s) > 5)
		goto bad;
	x = strtoull(s, NULL, 10);
	if (x < 1 || x > 65535)
		goto bad;
	*port = (__u16)x;
	return 0;
bad:
	return bgs_err(-EINVAL, "bad %s '%s': expected a port number from 1 to 65535", what,
		       shown(s));
}

/* One unit suffix at p: its length in ms and how many characters it takes; 0 if none. */
static __u64 duration_unit(const char *p, size_t *len)
{
	static const struct {
		const char *name;
		__u64 ms;
	} units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60 * 1000 }, { "h", 3600 * 1000 },
		{ "d", 24 * 3600 * 1000 },
	};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		*len = strlen(units[i].name);
		if (!strncmp(p, units[i].name, *len))
			return units[i].ms;
	}
	return 0;
}

int bgs_parse_duration(const char *s, const char *what, bool allow_none, __u64 *ms)
{
	__u64 total = 0, x, mult;
	const char *p = s;
	size_t ulen;

	if (allow_none && (!strcmp(s, "none") || !strcmp(s, "never"))) {
		*ms = BGS_NO_DEADLINE;
		return 0;
	}
	if (!strcmp(s, "0")) {
		*ms = 0;
		return 0;
	}
	if (!*p)
		goto bad;
	while (*p) {
		const char *start = p;

		if (!isdigit((unsigned char)*p))
			goto bad;
		x = 0;
		while (isdigit((unsigned char)*p)) {
			x = x * 10 + (__u64)(*p - '0');
			if (x > DURATION_MAX_MS || p - start > 12)
				goto bad;
			p++;
		}
		mult = duration_unit(p, &ulen);
		if (!mult)
			goto bad;
		p += ulen;
		total += x * mult;
		if (total > DURATION_MAX_MS)
			goto bad;
	}
	*ms = total;
	return 0;
bad:
	return bgs_err(-EINVAL,
		       "bad %s '%s': expected a duration like 500ms, 30s, 5m, 1h or 1m30s "
		       "(at most 7d)%s",
		       what, shown(s), allow_none ? ", 0 or none" : " or 0");
}

int bgs_parse_timeout(const char *s, const char *what, unsigned int i,
		      struct bgs_flow_timeouts *t)
{
	bool zero_ok = bgs_timeout_zero_ok(i);
	__u64 ms;

	if (i >= BGS_TIMEOUT_COUNT)
		return bgs_err(-EINVAL, "bad %s: no such timeout", what);
	if (bgs_parse_duration(s, what, false, &ms) || ms % 1000)
		return bgs_err(-EINVAL, "bad %s '%s': expected whole seconds like 30s, 5m, 1h or "
			       "1m30s (at most 7d)%s", what, shown(s),
			       zero_ok ? ", or 0 for none" : "");
	if (!ms && !zero_ok)
		return bgs_err(-EINVAL, "bad %s '%s': at least 1s (0 only for time_wait and "
			       "health_grace)", what, shown(s));
	bgs_timeout_set(t, i, ms ? (__u32)(ms / 1000) : BGS_TIMEOUT_ZERO);
	return 0;
}

int bgs_parse_timeout_arg(const char *s, const char *what, struct bgs_flow_timeouts *t)
{
	static const char names[] = "tcp_syn, tcp_est, tcp_close, udp, time_wait or health_grace";
	const char *eq = strchr(s, '=');
	char sub[64];
	size_t n;
	int err;

	if (!eq || eq == s)
		return bgs_err(-EINVAL, "bad %s '%s': expected NAME=DURATION with NAME %s", what,
			       shown(s), names);
	n = (size_t)(eq - s);
	for (unsigned int i = 0; i < BGS_TIMEOUT_COUNT; i++) {
		if (strlen(bgs_timeout_name(i)) != n || strncmp(s, bgs_timeout_name(i), n))
			continue;
		snprintf(sub, sizeof(sub), "%s %s", what, bgs_timeout_name(i));
		err = bgs_parse_timeout(eq + 1, sub, i, t);
		return err ? err : (int)i;
	}
	snprintf(sub, sizeof(sub), "%.*s", (int)(n < 40 ? n : 40), s);
	return bgs_err(-EINVAL, "bad %s '%s': '%s' is not a timeout (NAME is %s)", what, shown(s),
		       shown(sub), names);
}

/*
 * A decimal with at most nw whole digits and nf decimals ("10", "2.5"), scaled by 10^nf into
 * *v; *pp is left after it. -1 if there is none.
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

int bgs_parse_percent(const char *s, __u32 *bps)
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
	return bgs_err(-EINVAL,
		       "bad percentage '%s': expected 0 to 100 with at most two decimals "
		       "(e.g. 10, 2.5, 0.25)",
		       shown(s));
}

int bgs_parse_seconds(const char *s, const char *what, unsigned int max_s, int *ms)
{
	const char *p = s;
	unsigned long v;

	if (decimal(&p, 7, 3, &v) || *p || v > (unsigned long)max_s * 1000)
		return bgs_err(-EINVAL,
			       "bad %s '%s': expected seconds from 0 to %u with at most three "
			       "decimals (e.g. 5, 0.5)",
			       what, shown(s), max_s);
	*ms = (int)v;
	return 0;
}

int bgs_parse_ip(const char *s, struct bgs_ip *ip)
{
	if (!bgs_ip_parse(s, ip))
		return 0;
	return bgs_err(-EINVAL,
		       "bad address '%s': expected an IPv4 address (10.0.0.1) or an IPv6 address "
		       "(2001:db8::1)",
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

int bgs_parse_addr_port(const char *s, struct bgs_ip *ip, __u16 *port)
{
	char addr[64];
	const char *ps;
	int err;

	if (split_addr_port(s, addr, sizeof(addr), &ps))
		return bgs_err(-EINVAL, "bad backend '%s': expected ADDR, ADDR:PORT or [IPV6]:PORT",
			       shown(s));
	err = bgs_parse_ip(addr, ip);
	if (err)
		return err;
	*port = 0;
	return ps ? bgs_parse_port(ps, "port", port) : 0;
}

int bgs_parse_vip(const char *s, struct bgs_ip *ip, __u16 *port, __u8 *proto)
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
		if (!strcmp(slash, "tcp"))
			*proto = IPPROTO_TCP;
		else if (!strcmp(slash, "udp"))
			*proto = IPPROTO_UDP;
		else
			return bgs_err(-EINVAL, "bad protocol '%s' in VIP '%s': expected tcp or udp",
				       shown(slash), shown(s));
	}
	if (split_addr_port(buf, addr, sizeof(addr), &ps) || !ps)
		goto bad;
	err = bgs_parse_ip(addr, ip);
	if (err)
		return err;
	return bgs_parse_port(ps, "VIP port", port);
bad:
	return bgs_err(-EINVAL,
		       "bad VIP '%s': expected ADDR:PORT[/tcp|/udp], e.g. 10.0.0.1:80/tcp or "
		       "[2001:db8::1]:443",
		       shown(s));
}

int bgs_parse_prefix(const char *s, struct bgs_prefix *p)
{
	const char *slash = strchr(s, '/');
	unsigned long long len;
	char addr[64];
	int err, maxlen;

	memset(p, 0, sizeof(*p));
	if (!slash || (size_t)(slash - s) >= sizeof(addr))
		return bgs_err(-EINVAL,
			       "bad prefix '%s': expected ADDR/LEN, e.g. 10.0.2.0/24 or "
			       "2001:db8::/64",
			       shown(s));
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	err = bgs_parse_ip(addr, &p->ip);
	if (err)
		return err;
	maxlen = p->ip.family == BGS_AF_INET ? 32 : 128;
	if (!all_digits(slash + 1) || strlen(slash + 1) > 3 ||
	    (len = strtoull(slash + 1, NULL, 10)) > (unsigned long long)maxlen) {
		memset(p, 0, sizeof(*p));
		return bgs_err(-EINVAL, "bad prefix length in '%s': expected 0 to %d", shown(s),
			       maxlen);
	}
	/* the host-bit rule; the form and length are known good by now */
	if (bgs_prefix_parse(s, p))
		return bgs_err(-EINVAL,
			       "bad prefix '%s': bits set past /%llu (did you mean the network "
			       "address?)",
			       shown(s), len);
	return 0;
}

int bgs_parse_reason(const char *s)
{
	if (strlen(s) > BGS_REASON_MAX)
		return bgs_err(-EINVAL, "reason too long (%zu characters): at most %d", strlen(s),
			       BGS_REASON_MAX);
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return bgs_err(-EINVAL, "bad reason: control characters are not allowed");
	return 0;
}
