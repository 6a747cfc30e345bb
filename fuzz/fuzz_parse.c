// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Fuzz target: every parser of what users type (libbgswitch's bgs_parse_* and the prefix and
 * address parsers). Each input is one string given to all of them. What must hold:
 * - a refusal is -EINVAL with one printable line that is not empty;
 * - an accepted address, VIP or prefix prints back to a string that parses to the same value;
 * - accepted numbers respect their documented bounds.
 * A violated property aborts (libFuzzer and the corpus replay both report it as a crash).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "libbgswitch.h"

#define MUST(cond)                                                                      \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "fuzz_parse: %s:%d: %s does not hold\n", __FILE__, \
				__LINE__, #cond);                                       \
			abort();                                                        \
		}                                                                       \
	} while (0)

/* A refusal: -EINVAL and one printable, non-empty line. */
static void refused_well(int err)
{
	const char *m = bgs_errmsg();

	MUST(err == -EINVAL);
	MUST(*m);
	for (; *m; m++)
		MUST((unsigned char)*m >= 0x20 && *m != 0x7f);
}

static void check(int err)
{
	if (err)
		refused_well(err);
}

static void ip_round_trip(const struct bgs_ip *ip)
{
	struct bgs_ip again;
	char s[64];

	bgs_ip_str(ip, s, sizeof(s));
	MUST(!bgs_parse_ip(s, &again));
	MUST(!memcmp(&again, ip, sizeof(again)));
}

static void one(const char *s)
{
	struct bgs_prefix pfx, pfx2;
	struct bgs_ip ip, ip2;
	__u16 port, port2;
	__u8 proto, proto2;
	char buf[128], a[64];
	__u64 v, ms;
	__u32 bps;
	int color, err;

	check(bgs_parse_color(s, &color));
	check(bgs_parse_name(s));
	check(bgs_parse_reason(s));
	err = bgs_parse_u64(s, "n", 1000000, &v);
	check(err);
	MUST(err || v <= 1000000);
	err = bgs_parse_port(s, "port", &port);
	check(err);
	MUST(err || port >= 1);
	err = bgs_parse_duration(s, "t", true, &ms);
	check(err);
	MUST(err || ms == BGS_NO_DEADLINE || ms <= 7ULL * 24 * 3600 * 1000);
	err = bgs_parse_percent(s, &bps);
	check(err);
	MUST(err || bps <= BGS_CANARY_SCALE);
	{
		/* a flow timeout: whole seconds up to 7 days, 0 s only where allowed */
		struct bgs_flow_timeouts t = {};
		__u32 to;
		int i;

		i = bgs_parse_timeout_arg(s, "--timeout", &t);
		check(i < 0 ? i : 0);
		MUST(i < BGS_TIMEOUT_COUNT);
		to = i < 0 ? 0 : bgs_timeout_get(&t, (unsigned int)i);
		MUST(i < 0 || (to >= 1 && to <= 7 * 24 * 3600) ||
		     (to == BGS_TIMEOUT_ZERO && bgs_timeout_zero_ok((unsigned int)i)));
		for (unsigned int j = 0; j < BGS_TIMEOUT_COUNT; j++) {
			memset(&t, 0, sizeof(t));
			err = bgs_parse_timeout(s, "t", j, &t);
			check(err);
			to = bgs_timeout_get(&t, j);
			MUST(err ? !to : (to >= 1 && to <= 7 * 24 * 3600) ||
					 (to == BGS_TIMEOUT_ZERO && bgs_timeout_zero_ok(j)));
		}
	}

	err = bgs_parse_ip(s, &ip);
	check(err);
	if (!err)
		ip_round_trip(&ip);

	err = bgs_parse_addr_port(s, &ip, &port);
	check(err);
	if (!err) {
		ip_round_trip(&ip);
		if (port) {
			bgs_addr_port_str(ip.family, ip.addr, port, buf, sizeof(buf));
			MUST(!bgs_parse_addr_port(buf, &ip2, &port2));
			MUST(!memcmp(&ip2, &ip, sizeof(ip)) && port2 == port);
		}
	}

	err = bgs_parse_vip(s, &ip, &port, &proto);
	check(err);
	if (!err) {
		MUST(port >= 1 && (proto == IPPROTO_TCP || proto == IPPROTO_UDP));
		bgs_addr_port_str(ip.family, ip.addr, port, a, sizeof(a));
		snprintf(buf, sizeof(buf), "%s/%s", a, proto == IPPROTO_TCP ? "tcp" : "udp");
		MUST(!bgs_parse_vip(buf, &ip2, &port2, &proto2));
		MUST(!memcmp(&ip2, &ip, sizeof(ip)) && port2 == port && proto2 == proto);
	}

	err = bgs_parse_prefix(s, &pfx);
	check(err);
	if (!err) {
		MUST(pfx.len <= (pfx.ip.family == BGS_AF_INET ? 32 : 128));
		snprintf(buf, sizeof(buf), "%s/%u", bgs_ip_str(&pfx.ip, a, sizeof(a)), pfx.len);
		MUST(!bgs_parse_prefix(buf, &pfx2));
		MUST(!memcmp(&pfx2, &pfx, sizeof(pfx)));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size > 4096)
		return 0;
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0'; /* a NUL inside ends the string early, as argv and YAML scalars do */
	one(s);
	free(s);
	return 0;
}
