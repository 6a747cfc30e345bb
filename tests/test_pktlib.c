// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The packet library checks itself: frames built from a description must equal reference
 * frames computed by an independent implementation (hex below), every checksum must be
 * caught when one bit of the frame changes, and the parser must read back what was built.
 * Needs no privileges.
 */
#include <netinet/in.h>
#include <stdlib.h>

#include "pkt.h"
#include "test.h"

static int unhex(const char *h, __u8 *out)
{
	int n = 0;

	for (; h[0] && h[1]; h += 2)
		out[n++] = (__u8)strtoul((char[3]){ h[0], h[1], 0 }, NULL, 16);
	return n;
}

static const __u8 MAC_A[6] = { 2, 0, 0, 0, 0, 1 }, MAC_B[6] = { 2, 0, 0, 0, 0, 2 };

static void base(struct pkt *p, __u8 family, __u8 proto)
{
	memset(p, 0, sizeof(*p));
	memcpy(p->dmac, MAC_A, 6);
	memcpy(p->smac, MAC_B, 6);
	p->family = family;
	p->proto = proto;
	p->ttl = 64;
	p->payload_len = 24;
	if (family == BGS_AF_INET) {
		pkt_addr(family, "10.99.16.1", p->src);
		pkt_addr(family, "10.99.250.1", p->dst);
	} else {
		pkt_addr(family, "fd00:99::c:0:1", p->src);
		pkt_addr(family, "fd00:99:250::1", p->dst);
	}
}

static bool check_ref(const struct pkt *p, const char *hex, const char *what)
{
	__u8 ref[PKT_MAX], got[PKT_MAX];
	int rlen = unhex(hex, ref), glen = pkt_build(p, got, sizeof(got));

	return pkt_expect_frame(what, got, (size_t)glen, ref, (size_t)rlen, true);
}

static bool test_reference_frames(void)
{
	static const __u8 ip_hdr[20] = {
		0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
		0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
	};
	struct pkt p;
	bool ok = true;

	/* the textbook IPv4 header whose checksum is 0xb861 */
	ok &= ASSERT_EQ(pkt_csum_fold(pkt_csum_partial(ip_hdr, sizeof(ip_hdr), 0)), 0xb861,
			"IPv4 header checksum");

	base(&p, BGS_AF_INET, IPPROTO_TCP);
	p.sport = 1234;
	p.dport = 80;
	p.ip_id = 1234;
	p.seq = 2234;
	p.tcp_flags = PKT_SYN;
	p.window = 64240;
	p.pay_seed = 0xd2;
	ok &= check_ref(&p,
			"02000000000102000000000208004500004004d200004006571e0a6310010a63fa0104d2"
			"0050000008ba000000005002faf00f680000d2d9e0e7eef5fc030a11181f262d343b4249"
			"50575e656c73",
			"IPv4 TCP SYN");

	base(&p, BGS_AF_INET6, IPPROTO_UDP);
	p.sport = 5353;
	p.dport = 53;
	p.pay_seed = 0xe9;
	ok &= check_ref(&p,
			"02000000000102000000000286dd6000000000201140fd000099000000000000000c0000"
			"0001fd00009902500000000000000000000114e900350020601ee9f0f7fe050c131a2128"
			"2f363d444b525960676e757c838a",
			"IPv6 UDP");

	base(&p, BGS_AF_INET, IPPROTO_ICMP);
	p.icmp_type = 8;
	p.icmp_rest = 0x00010002;
	p.payload_len = 8;
	ok &= check_ref(&p,
			"0200000000010200000000020800450000240000000040015c110a6310010a63fa010800"
			"a38c0001000200070e151c232a31",
			"IPv4 ICMP echo");
	return ok;
}

/* Every single-bit change inside the IP packet must break a checksum or a length check. */
static bool test_bit_flips_detected(void)
{
	static const __u8 fams[] = { BGS_AF_INET, BGS_AF_INET6 };
	static const __u8 protos[] = { IPPROTO_TCP, IPPROTO_UDP };
	__u8 buf[PKT_MAX];
	char why[128];
	struct pkt p, q;
	bool ok = true;
	int f, pr, len, i, bit;

	for (f = 0; f < 2; f++) {
		for (pr = 0; pr < 2; pr++) {
			base(&p, fams[f], protos[pr]);
			p.sport = 40000;
			p.dport = 443;
			len = pkt_build(&p, buf, sizeof(buf));
			test_ctx("IPv%u proto %u", fams[f], protos[pr]);
			ok &= ASSERT_EQ(pkt_parse(buf, (size_t)len, &q, why, sizeof(why)), 0,
					"pristine frame parses");
			for (i = 14; i < len; i++) {
				/* version, class, label, next header and hop limit of IPv6
				 * are covered by no checksum */
				if (fams[f] == BGS_AF_INET6 && i < 14 + 8 && i != 18 && i != 19)
					continue;
				for (bit = 0; bit < 8; bit++) {
					buf[i] ^= (__u8)(1 << bit);
					if (!pkt_parse(buf, (size_t)len, &q, why, sizeof(why))) {
						FAILF("bit %d of byte %d: not detected", bit,
						      i);
						ok = false;
					}
					buf[i] ^= (__u8)(1 << bit);
				}
			}
		}
	}
	return ok;
}

static bool roundtrip(const struct pkt *p, const char *what)
{
	__u8 buf[PKT_MAX], buf2[PKT_MAX];
	char why[128];
	struct pkt q;
	int len, len2;

	len = pkt_build(p, buf, sizeof(buf));
	if (!ASSERT_GT(len, 0, what))
		return false;
	if (pkt_parse(buf, (size_t)len, &q, why, sizeof(why))) {
		FAILF("%s: does not parse: %s", what, why);
		return false;
	}
	len2 = pkt_build(&q, buf2, sizeof(buf2));
	return pkt_expect_frame(what, buf2, (size_t)len2, buf, (size_t)len, true);
}

static bool test_roundtrip(void)
{
	struct pkt p;
	bool ok = true;

	base(&p, BGS_AF_INET, IPPROTO_TCP);
	p.sport = 1;
	p.dport = 65535;
	p.tcp_flags = PKT_ACK | PKT_PSH;
	p.seq = 0xdeadbeef;
	p.ack_seq = 0x01020304;
	p.tos = 0x10;
	p.frag = PKT_DF;
	p.pad_len = 7;
	p.pad_byte = 0xaa;
	ok &= roundtrip(&p, "IPv4 TCP padded DF");

	base(&p, BGS_AF_INET6, IPPROTO_TCP);
	p.flowlabel = 0xabcde;
	p.tos = 0x28;
	p.payload_len = 1;
	ok &= roundtrip(&p, "IPv6 TCP odd payload");

	base(&p, BGS_AF_INET, IPPROTO_UDP);
	p.udp_csum_zero = true;
	ok &= roundtrip(&p, "IPv4 UDP without checksum");

	base(&p, BGS_AF_INET6, IPPROTO_ICMPV6);
	p.icmp_type = 128;
	ok &= roundtrip(&p, "ICMPv6 echo");

	base(&p, BGS_AF_INET6, IPPROTO_UDP);
	p.n_ext = 2;
	p.ext[0] = IPPROTO_HOPOPTS;
	p.ext[1] = IPPROTO_DSTOPTS;
	ok &= roundtrip(&p, "IPv6 UDP behind two extension headers");

	base(&p, BGS_AF_INET, IPPROTO_UDP);
	p.opt_len = 8;
	ok &= roundtrip(&p, "IPv4 UDP with options");
	return ok;
}

/* Malformed descriptions must come out malformed, and be reported so by the parser. */
static bool test_malformed_detected(void)
{
	__u8 buf[PKT_MAX];
	struct pkt p, q;
	bool ok = true;
	int len;

	base(&p, BGS_AF_INET, IPPROTO_TCP);
	p.ihl = 4;
	len = pkt_build(&p, buf, sizeof(buf));
	ok &= ASSERT_EQ(buf[14], 0x44, "IHL 4 written");
	ok &= ASSERT_NEQ(pkt_parse(buf, (size_t)len, &q, NULL, 0), 0, "IHL 4 rejected");

	base(&p, BGS_AF_INET, IPPROTO_TCP);
	p.ihl = 0;
	p.version = 0;
	p.raw_vi = true;
	len = pkt_build(&p, buf, sizeof(buf));
	ok &= ASSERT_EQ(buf[14], 0x00, "version 0, IHL 0 written");
	ok &= ASSERT_NEQ(pkt_parse(buf, (size_t)len, &q, NULL, 0), 0, "version 0 rejected");

	base(&p, BGS_AF_INET6, IPPROTO_TCP);
	p.version = 0;
	p.raw_vi = true;
	len = pkt_build(&p, buf, sizeof(buf));
	ok &= ASSERT_EQ(buf[14], 0x00, "IPv6 version 0 written");

	base(&p, BGS_AF_INET, IPPROTO_TCP);
	p.frag = PKT_MF;
	len = pkt_build(&p, buf, sizeof(buf));
	ok &= ASSERT_NEQ(pkt_parse(buf, (size_t)len, &q, NULL, 0), 0, "fragment reported");

	base(&p, BGS_AF_INET6, IPPROTO_TCP);
	p.tot_len_adj = 1;
	len = pkt_build(&p, buf, sizeof(buf));
	ok &= ASSERT_NEQ(pkt_parse(buf, (size_t)len, &q, NULL, 0), 0, "length past the frame");

	base(&p, BGS_AF_INET, IPPROTO_TCP);
	p.vlan_proto = 0x8100;
	p.vlan_tci = 42;
	len = pkt_build(&p, buf, sizeof(buf));
	ok &= ASSERT_EQ(len, 14 + 4 + 20 + 20 + 24, "VLAN frame length");
	ok &= ASSERT_EQ(buf[12] << 8 | buf[13], 0x8100, "VLAN TPID");
	ok &= ASSERT_EQ(buf[16] << 8 | buf[17], 0x0800, "inner ethertype");
	return ok;
}

static const struct test_case tests[] = {
	{ "reference_frames", test_reference_frames },
	{ "bit_flips_detected", test_bit_flips_detected },
	{ "roundtrip", test_roundtrip },
	{ "malformed_detected", test_malformed_detected },
};

int main(int argc, char **argv)
{
	return test_run_all(argv[0], tests, ARRAY_SIZE(tests), argc, argv);
}
