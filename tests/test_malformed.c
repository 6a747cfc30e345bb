// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The malformed corpus (issue item 8), IPv4 and IPv6, TCP and UDP: every frame truncated at
 * every byte offset from 14 through the end of the L4 header (with the IP length as sent,
 * and with the IP length fixed up to the cut so that only the L4 header is short), padded
 * frames, bad versions, bad IHL, bad lengths, IPv4 options, fragments, IPv6 extension
 * headers, VLAN tags, non-IP frames, TTL/hop limit 1 and 0, other protocols, traffic for
 * others. Each gets its documented verdict and exactly its reason counter; every frame the
 * program does not forward leaves it byte for byte as it came, and creates no flow; every
 * frame it forwards is exactly the expected rewrite.
 */
#include <netinet/in.h>

#include "fixture.h"

struct variant {
	const char *name;
	__u8 family, proto;
	struct fx_svc s;
	__u32 be[2];
};

static struct variant variants[] = {
	{ .name = "v4_tcp", .family = BGS_AF_INET, .proto = IPPROTO_TCP },
	{ .name = "v4_udp", .family = BGS_AF_INET, .proto = IPPROTO_UDP },
	{ .name = "v6_tcp", .family = BGS_AF_INET6, .proto = IPPROTO_TCP },
	{ .name = "v6_udp", .family = BGS_AF_INET6, .proto = IPPROTO_UDP },
};

static bool services_up(void)
{
	static bool done;
	char name[32];
	size_t i;
	bool ok = true;

	if (done)
		return true;
	for (i = 0; i < ARRAY_SIZE(variants); i++) {
		struct variant *v = &variants[i];

		snprintf(name, sizeof(name), "mal_%s", v->name);
		ok &= fx_svc_add(&v->s, name, v->family, (int)i + 1, 80, v->proto, BGS_MODE_NAT, 0);
		ok &= fx_be_add(&v->s, BGS_BLUE, FX_NET_BACKEND, 10 + (int)i * 2, 8080, 0,
				&v->be[0]);
		ok &= fx_be_add(&v->s, BGS_BLUE, FX_NET_CLIENT, 11 + (int)i * 2, 8080, 0,
				&v->be[1]);
	}
	done = ok;
	return ok;
}

static __u32 client_seq;

/* A fresh client packet (new tuple each time) to the variant's service. */
static void base_pkt(struct pkt *p, const struct variant *v, __u8 flags)
{
	__u32 c = client_seq++;

	fx_client_pkt(p, &v->s, c, (__u16)(10000 + c % 50000), flags);
}

/* Run raw bytes; the frame must come back untouched with verdict and exactly one count of
 * reason, and no flow may exist for key (when given) afterwards. */
static bool expect_raw(const __u8 *in, __u32 len, __u32 verdict, enum bgs_reason reason,
		       const struct pkt *key_of, const char *what)
{
	struct bgs_reason_counter before[BGS_R_MAX];
	struct bgs_flow f;
	struct fx_out o;
	bool ok;

	fx_reasons(before);
	if (!ASSERT_OK(fx_run(in, len, fx.if_lb0, &o), what))
		return false;
	if (o.retval != verdict) {
		FAILF("%s: verdict %s, expected %s (%s)", what, fx_xdp_str(o.retval),
		      fx_xdp_str(verdict), bgs_reason_name(reason));
		fx_expect_reason(before, reason, 1, len);
		return false;
	}
	ok = pkt_expect_frame(what, o.data, o.len, in, len, false);
	ok &= fx_expect_reason(before, reason, 1, len);
	if (key_of && fx_ct_get(key_of, &f)) {
		FAILF("%s: a flow was created for a packet that was not forwarded", what);
		ok = false;
	}
	return ok;
}

static bool expect_pkt(const struct pkt *p, __u32 verdict, enum bgs_reason reason,
		       const char *what)
{
	__u8 in[PKT_MAX];
	int len = pkt_build(p, in, sizeof(in));

	if (!ASSERT_GT(len, 0, "build"))
		return false;
	return expect_raw(in, (__u32)len, verdict, reason, p, what);
}

/* A forwarded packet: exactly the expected rewrite, counted as a forward. */
static bool expect_fwd(const struct variant *v, const struct pkt *p, const char *what)
{
	struct bgs_reason_counter before[BGS_R_MAX];
	struct bgs_flow_key k;
	__u8 in[PKT_MAX];
	__u32 id;
	int len = pkt_build(p, in, sizeof(in));
	bool ok;

	test_ctx("%s %s", v->name, what);
	pkt_flow_key(p, &k);
	id = fx_table_pick(&v->s, BGS_BLUE, &k);
	fx_reasons(before);
	ok = fx_expect_fwd(&v->s, p, id);
	ok &= fx_expect_reason(before, fx.be[id].ifindex == fx.if_lb0 ? BGS_R_FWD_TX :
			       BGS_R_FWD_REDIRECT, 1, (__u64)len);
	return ok;
}

static int l3_hlen(const struct variant *v)
{
	return v->family == BGS_AF_INET ? 20 : 40;
}

static int l4_hlen(const struct variant *v)
{
	return v->proto == IPPROTO_TCP ? 20 : 8;
}

/* Truncations with the IP length as sent: the IP packet is longer than the frame. */
static bool test_truncated_frames(void)
{
	__u8 full[PKT_MAX];
	struct pkt p;
	bool ok = true;
	size_t i;
	int len, cut;

	if (!services_up())
		return false;
	for (i = 0; i < ARRAY_SIZE(variants); i++) {
		const struct variant *v = &variants[i];

		base_pkt(&p, v, PKT_SYN);
		p.payload_len = 0;
		len = pkt_build(&p, full, sizeof(full));
		if (!ASSERT_EQ(len, 14 + l3_hlen(v) + l4_hlen(v), "frame is headers only"))
			return false;
		for (cut = 14; cut < len; cut++) {
			test_ctx("%s cut at %d of %d", v->name, cut, len);
			ok &= expect_raw(full, (__u32)cut, XDP_DROP, BGS_R_DROP_MALFORMED, &p,
					 "truncated frame");
		}
		/* the whole frame is fine */
		ok &= expect_fwd(v, &p, "uncut frame");
	}
	return ok;
}

/* Truncations inside the L4 header with the IP length fixed up to match: a well-formed IP
 * packet whose TCP/UDP header is short. */
static bool test_truncated_l4_header(void)
{
	__u8 full[PKT_MAX], frame[PKT_MAX];
	struct pkt p;
	bool ok = true;
	size_t i;
	int len, cut, l4;

	if (!services_up())
		return false;
	for (i = 0; i < ARRAY_SIZE(variants); i++) {
		const struct variant *v = &variants[i];

		base_pkt(&p, v, PKT_SYN);
		p.payload_len = 0;
		len = pkt_build(&p, full, sizeof(full));
		l4 = 14 + l3_hlen(v);
		for (cut = l4; cut < len; cut++) {
			memcpy(frame, full, (size_t)cut);
			if (v->family == BGS_AF_INET) {
				__u16 tot = (__u16)(cut - 14), cs;

				frame[16] = (__u8)(tot >> 8);
				frame[17] = (__u8)tot;
				frame[24] = frame[25] = 0;
				cs = pkt_csum_fold(pkt_csum_partial(frame + 14, 20, 0));
				frame[24] = (__u8)(cs >> 8);
				frame[25] = (__u8)cs;
			} else {
				__u16 pl = (__u16)(cut - l4);

				frame[18] = (__u8)(pl >> 8);
				frame[19] = (__u8)pl;
			}
			test_ctx("%s L4 header cut to %d of %d bytes", v->name, cut - l4, len - l4);
			ok &= expect_raw(frame, (__u32)cut, XDP_DROP, BGS_R_DROP_L4_TRUNC, &p,
					 "short L4 header");
		}
	}
	return ok;
}

/* A TCP header whose data offset is below 5 words or reaches past the IP packet: the
 * header is not whole, so to a VIP:port it is dropped as truncated and creates no flow. */
static bool test_tcp_data_offset(void)
{
	__u8 frame[PKT_MAX];
	struct pkt p;
	bool ok = true;
	size_t i;
	int len, doff, at;

	if (!services_up())
		return false;
	for (i = 0; i < ARRAY_SIZE(variants); i++) {
		const struct variant *v = &variants[i];

		if (v->proto != IPPROTO_TCP)
			continue;
		/* 28 bytes of TCP: offsets 5 to 7 fit (a header with options), 8 and up do not */
		for (doff = 0; doff < 16; doff++) {
			if (doff >= 5 && doff <= 7)
				continue;
			base_pkt(&p, v, PKT_SYN);
			p.payload_len = 8;
			len = pkt_build(&p, frame, sizeof(frame));
			if (!ASSERT_GT(len, 0, "build"))
				return false;
			at = 14 + l3_hlen(v) + 12;
			frame[at] = (__u8)((doff << 4) | (frame[at] & 0x0f));
			test_ctx("%s data offset %d, 28 bytes of TCP", v->name, doff);
			ok &= expect_raw(frame, (__u32)len, XDP_DROP, BGS_R_DROP_L4_TRUNC, &p,
					 "bad TCP data offset");
		}
	}
	test_ctx("%s", "");
	return ok;
}

/* Ethernet padding past the IP length (as on minimum-size frames) is not payload: the
 * packet is forwarded normally and the padding comes out as it went in. */
static bool test_padded_frames(void)
{
	static const struct {
		__u16 pad;
		__u8 byte;
		__u16 payload;
	} pads[] = { { 1, 0x00, 24 }, { 6, 0x00, 0 }, { 26, 0xa5, 0 }, { 100, 0xff, 3 } };
	struct pkt p;
	bool ok = true;
	size_t i, j;
	char what[64];

	if (!services_up())
		return false;
	for (i = 0; i < ARRAY_SIZE(variants); i++) {
		for (j = 0; j < ARRAY_SIZE(pads); j++) {
			base_pkt(&p, &variants[i], PKT_SYN);
			p.pad_len = pads[j].pad;
			p.pad_byte = pads[j].byte;
			p.payload_len = pads[j].payload;
			snprintf(what, sizeof(what), "padded by %u bytes of 0x%02x", pads[j].pad,
				 pads[j].byte);
			ok &= expect_fwd(&variants[i], &p, what);
			/* and the flow's next packet, padded too */
			p.tcp_flags = PKT_ACK;
			ok &= expect_fwd(&variants[i], &p, what);
		}
	}
	return ok;
}

/* Broken IP headers: version, IHL, lengths. */
static bool test_bad_ip_headers(void)
{
	struct pkt p;
	bool ok = true;
	size_t i;
	int k;

	if (!services_up())
		return false;
	for (i = 0; i < ARRAY_SIZE(variants); i++) {
		const struct variant *v = &variants[i];
		static const __u8 bad_v4[] = { 0, 5, 6, 15 }, bad_v6[] = { 0, 4, 7, 15 };

		for (k = 0; k < 4; k++) {
			base_pkt(&p, v, PKT_SYN);
			p.version = v->family == BGS_AF_INET ? bad_v4[k] : bad_v6[k];
			p.ihl = 5;
			p.raw_vi = true;
			test_ctx("%s IP version %u", v->name, p.version);
			ok &= expect_pkt(&p, XDP_DROP, BGS_R_DROP_MALFORMED, "bad version");
		}
		/* length beyond the frame, and (IPv4) shorter than the header */
		base_pkt(&p, v, PKT_SYN);
		p.tot_len_adj = 1;
		test_ctx("%s IP length one past the frame", v->name);
		ok &= expect_pkt(&p, XDP_DROP, BGS_R_DROP_MALFORMED, "length past the frame");
		base_pkt(&p, v, PKT_SYN);
		p.tot_len_adj = 2000;
		test_ctx("%s IP length far past the frame", v->name);
		ok &= expect_pkt(&p, XDP_DROP, BGS_R_DROP_MALFORMED, "length past the frame");
		if (v->family != BGS_AF_INET)
			continue;
		for (k = 0; k < 5; k++) {
			base_pkt(&p, v, PKT_SYN);
			p.ihl = (__u8)k;
			p.version = 4;
			p.raw_vi = true;
			test_ctx("%s IHL %d", v->name, k);
			ok &= expect_pkt(&p, XDP_DROP, BGS_R_DROP_MALFORMED, "IHL below 5");
		}
		base_pkt(&p, v, PKT_SYN);
		p.payload_len = 0;
		p.ihl = 15; /* 60 bytes of header in a 40/28-byte packet */
		test_ctx("%s IHL 15 past the total length", v->name);
		ok &= expect_pkt(&p, XDP_DROP, BGS_R_DROP_MALFORMED, "IHL past the length");
		for (k = 0; k < 3; k++) {
			static const int tot[] = { 0, 10, 19 };

			base_pkt(&p, v, PKT_SYN);
			p.tot_len_adj = tot[k] - (20 + l4_hlen(v) + p.payload_len);
			test_ctx("%s total length %d", v->name, tot[k]);
			ok &= expect_pkt(&p, XDP_DROP, BGS_R_DROP_MALFORMED,
					 "total length below the header");
		}
	}
	return ok;
}

/* IPv4 options and IPv6 extension headers: dropped when to a VIP (the switch does not
 * route them), passed untouched when for someone else. */
static bool test_options_and_extension_headers(void)
{
	static const __u8 exts[][3] = {
		{ 1, IPPROTO_HOPOPTS }, { 1, IPPROTO_DSTOPTS }, { 1, IPPROTO_ROUTING },
		{ 2, IPPROTO_HOPOPTS, IPPROTO_DSTOPTS },
	};
	struct pkt p;
	bool ok = true;
	size_t i, k;

	if (!services_up())
		return false;
	for (i = 0; i < ARRAY_SIZE(variants); i++) {
		const struct variant *v = &variants[i];

		if (v->family == BGS_AF_INET) {
			static const __u8 opts[] = { 4, 8, 40 };

			for (k = 0; k < ARRAY_SIZE(opts); k++) {
				base_pkt(&p, v, PKT_SYN);
				p.opt_len = opts[k];
				test_ctx("%s %u bytes of options", v->name, opts[k]);
				ok &= expect_pkt(&p, XDP_DROP, BGS_R_DROP_IP_OPTIONS, "to a VIP");
				pkt_addr(BGS_AF_INET, "10.99.251.1", p.dst);
				ok &= expect_pkt(&p, XDP_PASS, BGS_R_PASS_NOT_VIP, "not to a VIP");
			}
			continue;
		}
		for (k = 0; k < ARRAY_SIZE(exts); k++) {
			base_pkt(&p, v, PKT_SYN);
			p.n_ext = exts[k][0];
			p.ext[0] = exts[k][1];
			p.ext[1] = exts[k][2];
			test_ctx("%s extension headers %u,%u", v->name, p.ext[0], p.ext[1]);
			ok &= expect_pkt(&p, XDP_DROP, BGS_R_DROP_EXT_HDR, "to a VIP");
			pkt_addr(BGS_AF_INET6, "fd00:99:251::1", p.dst);
			ok &= expect_pkt(&p, XDP_PASS, BGS_R_PASS_NOT_VIP, "not to a VIP");
		}
	}
	return ok;
}

/* Fragments: a first fragment to a VIP is dropped (its followers could not be routed
 * with it), a later one (no ports) to a VIP address too; for others they pass. DF alone
 * is no fragment. */
static bool test_fragments(void)
{
	struct pkt p;
	bool ok = true;
	size_t i;

	if (!services_up())
		return false;
	for (i = 0; i < ARRAY_SIZE(variants); i++) {
		const struct variant *v = &variants[i];
		bool v4 = v->family == BGS_AF_INET;
		const char *other = v4 ? "10.99.251.1" : "fd00:99:251::1";

		test_ctx("%s first fragment", v->name);
		base_pkt(&p, v, PKT_SYN);
		if (v4) {
			p.frag = PKT_MF;
		} else {
			p.n_ext = 1;
			p.ext[0] = IPPROTO_FRAGMENT;
			p.v6_frag = 1; /* offset 0, more fragments */
		}
		ok &= expect_pkt(&p, XDP_DROP, BGS_R_DROP_FRAGMENT, "to a VIP");
		pkt_addr(v->family, other, p.dst);
		ok &= expect_pkt(&p, XDP_PASS, BGS_R_PASS_NOT_VIP, "not to a VIP");

		test_ctx("%s later fragment", v->name);
		base_pkt(&p, v, PKT_SYN);
		if (v4) {
			p.frag = 100; /* offset 800, last fragment */
		} else {
			p.n_ext = 1;
			p.ext[0] = IPPROTO_FRAGMENT;
			p.v6_frag = 100 << 3;
		}
		ok &= expect_pkt(&p, XDP_DROP, BGS_R_DROP_FRAGMENT, "to a VIP");
		p.frag |= v4 ? PKT_MF : 0;
		p.v6_frag |= v4 ? 0 : 1;
		ok &= expect_pkt(&p, XDP_DROP, BGS_R_DROP_FRAGMENT, "to a VIP, more follow");
		pkt_addr(v->family, other, p.dst);
		ok &= expect_pkt(&p, XDP_PASS, BGS_R_PASS_FRAGMENT, "not to a VIP");

		if (v4) {
			base_pkt(&p, v, PKT_SYN);
			p.frag = PKT_DF;
			ok &= expect_fwd(v, &p, "DF set, not a fragment");
		}
	}
	return ok;
}

/*
 * IPv6: an atomic fragment (fragment header, offset 0, M 0; RFC 6946) is a whole packet,
 * not a fragment: to a VIP it is an extension header (DROP_EXT_HDR, not DROP_FRAGMENT).
 * More extension headers than the parser walks (MAX_EXT_HDRS, 4): the ports cannot be
 * found; to a VIP address DROP_EXT_HDR, to anyone else PASS_NOT_VIP (documented).
 */
static bool test_v6_atomic_fragment_and_ext_chain(void)
{
	static const __u8 chain[5] = { IPPROTO_HOPOPTS, IPPROTO_DSTOPTS, IPPROTO_ROUTING,
				       IPPROTO_DSTOPTS, IPPROTO_DSTOPTS };
	struct pkt p;
	bool ok = true;
	size_t i, n;

	if (!services_up())
		return false;
	for (i = 0; i < ARRAY_SIZE(variants); i++) {
		const struct variant *v = &variants[i];

		if (v->family != BGS_AF_INET6)
			continue;
		test_ctx("%s atomic fragment", v->name);
		base_pkt(&p, v, PKT_SYN);
		p.n_ext = 1;
		p.ext[0] = IPPROTO_FRAGMENT;
		p.v6_frag = 0; /* offset 0, no more fragments */
		ok &= expect_pkt(&p, XDP_DROP, BGS_R_DROP_EXT_HDR, "to a VIP");
		pkt_addr(BGS_AF_INET6, "fd00:99:251::1", p.dst);
		ok &= expect_pkt(&p, XDP_PASS, BGS_R_PASS_NOT_VIP, "not to a VIP");
		for (n = 4; n <= 5; n++) {
			test_ctx("%s %zu extension headers", v->name, n);
			base_pkt(&p, v, PKT_SYN);
			p.n_ext = (__u8)n;
			memcpy(p.ext, chain, n);
			ok &= expect_pkt(&p, XDP_DROP, BGS_R_DROP_EXT_HDR, "to a VIP");
			pkt_addr(BGS_AF_INET6, "fd00:99:251::1", p.dst);
			ok &= expect_pkt(&p, XDP_PASS, BGS_R_PASS_NOT_VIP, "not to a VIP");
		}
	}
	test_ctx("%s", "");
	return ok;
}

/* VLAN-tagged and non-IP frames go to the kernel untouched. */
static bool test_vlan_and_not_ip(void)
{
	static const __u16 tpids[] = { 0x8100, 0x88a8 };
	static const __u16 types[] = { 0x0806 /* ARP */, 0x88cc /* LLDP */, 0x8847 /* MPLS */ };
	struct pkt p;
	bool ok = true;
	size_t i, k;

	if (!services_up())
		return false;
	for (i = 0; i < ARRAY_SIZE(variants); i++) {
		for (k = 0; k < ARRAY_SIZE(tpids); k++) {
			base_pkt(&p, &variants[i], PKT_SYN);
			p.vlan_proto = tpids[k];
			p.vlan_tci = 100;
			test_ctx("%s VLAN 0x%04x", variants[i].name, tpids[k]);
			ok &= expect_pkt(&p, XDP_PASS, BGS_R_PASS_VLAN, "tagged to a VIP");
		}
	}
	for (k = 0; k < ARRAY_SIZE(types); k++) {
		memset(&p, 0, sizeof(p));
		memcpy(p.dmac, fx.mac_lb0, 6);
		memcpy(p.smac, fx.mac_cl0, 6);
		p.ethertype = types[k];
		p.payload_len = 28;
		test_ctx("ethertype 0x%04x", types[k]);
		ok &= expect_pkt(&p, XDP_PASS, BGS_R_PASS_NOT_IP, "not IP");
		p.payload_len = 0; /* a bare 14-byte header */
		ok &= expect_pkt(&p, XDP_PASS, BGS_R_PASS_NOT_IP, "not IP, header only");
	}
	return ok;
}

/* nat: a packet whose TTL would expire goes to the kernel (which answers with ICMP); TTL 2
 * still goes through, leaving with 1. */
static bool test_ttl(void)
{
	static const __u8 ttls[] = { 0, 1 };
	struct pkt p;
	bool ok = true;
	size_t i, k;

	if (!services_up())
		return false;
	for (i = 0; i < ARRAY_SIZE(variants); i++) {
		for (k = 0; k < ARRAY_SIZE(ttls); k++) {
			base_pkt(&p, &variants[i], PKT_SYN);
			p.ttl = ttls[k];
			test_ctx("%s TTL %u", variants[i].name, ttls[k]);
			ok &= expect_pkt(&p, XDP_PASS, BGS_R_PASS_TTL, "expiring");
		}
		base_pkt(&p, &variants[i], PKT_SYN);
		p.ttl = 2;
		ok &= expect_fwd(&variants[i], &p, "TTL 2");
	}
	return ok;
}

/* To a VIP but not TCP/UDP of the service: other protocols and ICMP echo go to the kernel
 * (PASS_PROTO); the VIP on another port or protocol is nobody's (PASS_NOT_VIP); so is
 * any other address. */
static bool test_other_traffic(void)
{
	struct pkt p;
	bool ok = true;
	size_t i;

	if (!services_up())
		return false;
	for (i = 0; i < ARRAY_SIZE(variants); i++) {
		const struct variant *v = &variants[i];
		bool v4 = v->family == BGS_AF_INET;

		test_ctx("%s ICMP echo", v->name);
		base_pkt(&p, v, 0);
		p.proto = v4 ? IPPROTO_ICMP : IPPROTO_ICMPV6;
		p.icmp_type = v4 ? 8 : 128;
		p.icmp_rest = 0x00070001;
		ok &= expect_pkt(&p, XDP_PASS, BGS_R_PASS_PROTO, "echo to the VIP");
		pkt_addr(v->family, v4 ? "10.99.251.1" : "fd00:99:251::1", p.dst);
		ok &= expect_pkt(&p, XDP_PASS, BGS_R_PASS_NOT_VIP, "echo to someone else");

		test_ctx("%s GRE and SCTP", v->name);
		base_pkt(&p, v, 0);
		p.proto = IPPROTO_GRE;
		ok &= expect_pkt(&p, XDP_PASS, BGS_R_PASS_PROTO, "GRE to the VIP");
		p.proto = IPPROTO_SCTP;
		ok &= expect_pkt(&p, XDP_PASS, BGS_R_PASS_PROTO, "SCTP to the VIP");

		test_ctx("%s other port / protocol / address", v->name);
		base_pkt(&p, v, PKT_SYN);
		p.dport = 81;
		ok &= expect_pkt(&p, XDP_PASS, BGS_R_PASS_NOT_VIP, "VIP, other port");
		base_pkt(&p, v, PKT_SYN);
		p.proto = v->proto == IPPROTO_TCP ? IPPROTO_UDP : IPPROTO_TCP;
		/* the variant with the other protocol has another VIP, so this is nobody's */
		ok &= expect_pkt(&p, XDP_PASS, BGS_R_PASS_NOT_VIP, "VIP, other protocol");
		base_pkt(&p, v, PKT_SYN);
		pkt_addr(v->family, v4 ? "10.99.251.1" : "fd00:99:251::1", p.dst);
		ok &= expect_pkt(&p, XDP_PASS, BGS_R_PASS_NOT_VIP, "another address");
	}
	return ok;
}

/*
 * ICMP errors to a VIP about a tracked flow, cut short: with the IP length as sent they are
 * malformed; with the IP length fixed up to the cut, the quote is incomplete and the error
 * is the kernel's (PASS_PROTO), untouched; the same short IP packet with the rest of the
 * quote present only as Ethernet padding is no different (padding is not payload).
 */
static bool icmp_error_frame(const struct variant *v, __u32 client, __u16 sport, __u8 *frame,
			     int *len)
{
	__u8 quote[PKT_MAX];
	struct pkt q, err, c;
	int hl = v->family == BGS_AF_INET ? 20 : 40;

	fx_client_pkt(&c, &v->s, client, sport, PKT_SYN);
	memset(&q, 0, sizeof(q));
	q.family = v->family;
	memcpy(q.src, v->s.vip.addr, 16);
	memcpy(q.dst, c.src, 16);
	q.proto = v->proto;
	q.ttl = 50;
	q.sport = v->s.port;
	q.dport = sport;
	q.payload_len = 100;
	if (pkt_build_l3(&q, quote, sizeof(quote)) < 0)
		return false;
	memset(&err, 0, sizeof(err));
	memcpy(err.dmac, fx.mac_lb0, 6);
	memcpy(err.smac, fx.mac_cl0, 6);
	err.family = v->family;
	fx_client_ip(v->family, 59000, err.src);
	memcpy(err.dst, v->s.vip.addr, 16);
	err.ttl = 60;
	err.proto = v->family == BGS_AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
	err.icmp_type = v->family == BGS_AF_INET ? 3 : 1; /* destination unreachable */
	err.icmp_code = v->family == BGS_AF_INET ? 1 : 3; /* host / address unreachable */
	err.payload = quote;
	err.payload_len = (__u16)(hl + 8);
	*len = pkt_build(&err, frame, PKT_MAX);
	return *len > 0;
}

static void fix_ip_length(const struct variant *v, __u8 *frame, int cut)
{
	if (v->family == BGS_AF_INET) {
		__u16 tot = (__u16)(cut - 14), cs;

		frame[16] = (__u8)(tot >> 8);
		frame[17] = (__u8)tot;
		frame[24] = frame[25] = 0;
		cs = pkt_csum_fold(pkt_csum_partial(frame + 14, 20, 0));
		frame[24] = (__u8)(cs >> 8);
		frame[25] = (__u8)cs;
	} else {
		__u16 pl = (__u16)(cut - 54);

		frame[18] = (__u8)(pl >> 8);
		frame[19] = (__u8)pl;
	}
}

static bool test_truncated_icmp_errors(void)
{
	__u8 full[PKT_MAX], frame[PKT_MAX];
	struct bgs_reason_counter before[BGS_R_MAX];
	struct fx_out o;
	__u32 be;
	bool ok = true;
	size_t i;
	int len, cut, l3;

	if (!services_up())
		return false;
	for (i = 0; i < ARRAY_SIZE(variants); i++) {
		const struct variant *v = &variants[i];
		__u32 c = client_seq++;
		__u16 sport = (__u16)(10000 + c % 50000);

		l3 = 14 + (v->family == BGS_AF_INET ? 20 : 40);
		test_ctx("%s ICMP error", v->name);
		if (!fx_flow_new(&v->s, c, sport, BGS_BLUE, &be) ||
		    !icmp_error_frame(v, c, sport, full, &len))
			return false;
		/* whole: it follows the flow */
		fx_reasons(before);
		ok &= ASSERT_OK(fx_run(full, (__u32)len, fx.if_lb0, &o), "run");
		ok &= ASSERT_EQ(o.retval, fx.be[be].ifindex == fx.if_lb0 ? XDP_TX : XDP_REDIRECT,
				"whole ICMP error forwarded");
		ok &= fx_expect_reason(before, BGS_R_ICMP_FWD, 1, (__u64)len);
		for (cut = 14; cut < len; cut++) {
			test_ctx("%s ICMP error cut at %d of %d", v->name, cut, len);
			ok &= expect_raw(full, (__u32)cut, XDP_DROP, BGS_R_DROP_MALFORMED, NULL,
					 "truncated ICMP error");
			if (cut < l3)
				continue;
			memcpy(frame, full, (size_t)len);
			fix_ip_length(v, frame, cut);
			ok &= expect_raw(frame, (__u32)cut, XDP_PASS, BGS_R_PASS_PROTO, NULL,
					 "ICMP error with a short quote");
			/* the rest of the quote still in the frame, as padding */
			ok &= expect_raw(frame, (__u32)len, XDP_PASS, BGS_R_PASS_PROTO, NULL,
					 "short quote, the rest as padding");
		}
	}
	test_ctx("%s", "");
	return ok;
}

static const struct test_case tests[] = {
	{ "truncated_frames", test_truncated_frames },
	{ "truncated_l4_header", test_truncated_l4_header },
	{ "tcp_data_offset", test_tcp_data_offset },
	{ "padded_frames", test_padded_frames },
	{ "bad_ip_headers", test_bad_ip_headers },
	{ "options_and_extension_headers", test_options_and_extension_headers },
	{ "fragments", test_fragments },
	{ "vlan_and_not_ip", test_vlan_and_not_ip },
	{ "ttl", test_ttl },
	{ "other_traffic", test_other_traffic },
	{ "truncated_icmp_errors", test_truncated_icmp_errors },
	{ "v6_atomic_fragment_and_ext_chain", test_v6_atomic_fragment_and_ext_chain },
};

int main(int argc, char **argv)
{
	struct bgs_sizes sz = { .max_services = 8, .max_backends = 64, .maglev_size = 1021,
				.ct_entries = 16384 };

	return fx_main(argc, argv, &sz, tests, ARRAY_SIZE(tests), 120);
}
