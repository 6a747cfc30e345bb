// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Packet builder and parser. Written byte by byte from the RFCs rather than with the
 * kernel's header structs, so that it shares no code or assumption with the program it
 * checks; every checksum is summed from scratch over the whole header and payload.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkt.h"
#include "test.h"

#define ETH_HLEN 14
#define ETH_P_IPV4 0x0800
#define ETH_P_IPV6 0x86dd
#define ETH_P_VLAN 0x8100
#define ETH_P_QINQ 0x88a8

static void put16(__u8 *p, __u16 v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void put32(__u8 *p, __u32 v)
{
	p[0] = v >> 24;
	p[1] = (v >> 16) & 0xff;
	p[2] = (v >> 8) & 0xff;
	p[3] = v & 0xff;
}

static __u16 get16(const __u8 *p)
{
	return (__u16)(p[0] << 8 | p[1]);
}

static __u32 get32(const __u8 *p)
{
	return (__u32)p[0] << 24 | (__u32)p[1] << 16 | (__u32)p[2] << 8 | p[3];
}

/* Sum of big-endian 16-bit words; an odd last byte is padded with zero. */
__u32 pkt_csum_partial(const void *data, size_t len, __u32 sum)
{
	const __u8 *p = data;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (__u32)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (__u32)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

__u16 pkt_csum_fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __u32 pseudo_sum(__u8 family, const __u8 *src, const __u8 *dst, __u8 proto, __u32 len)
{
	__u8 ph[40];
	__u32 sum;

	if (family == BGS_AF_INET) {
		memcpy(ph, src, 4);
		memcpy(ph + 4, dst, 4);
		ph[8] = 0;
		ph[9] = proto;
		put16(ph + 10, (__u16)len);
		return pkt_csum_partial(ph, 12, 0);
	}
	memcpy(ph, src, 16);
	memcpy(ph + 16, dst, 16);
	sum = pkt_csum_partial(ph, 32, 0);
	put32(ph, len);
	ph[4] = ph[5] = ph[6] = 0;
	ph[7] = proto;
	return pkt_csum_partial(ph, 8, sum);
}

static size_t l4_hdr_len(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return 20;
	case IPPROTO_UDP:
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return 8;
	default:
		return 0;
	}
}

static void fill_payload(const struct pkt *p, __u8 *out)
{
	__u16 i;

	if (p->payload) {
		memcpy(out, p->payload, p->payload_len);
		return;
	}
	for (i = 0; i < p->payload_len; i++)
		out[i] = (__u8)(p->pay_seed + i * 7 + (i >> 8));
}

/* Writes the L4 header and payload at l4 (len bytes) and its checksum. */
static void build_l4(const struct pkt *p, __u8 *l4, size_t len, const __u8 *src, const __u8 *dst)
{
	size_t hl = l4_hdr_len(p->proto);
	__u32 sum;
	__u16 c;

	memset(l4, 0, hl);
	fill_payload(p, l4 + hl);
	switch (p->proto) {
	case IPPROTO_TCP:
		put16(l4, p->sport);
		put16(l4 + 2, p->dport);
		put32(l4 + 4, p->seq);
		put32(l4 + 8, p->ack_seq);
		l4[12] = 5 << 4;
		l4[13] = p->tcp_flags;
		put16(l4 + 14, p->window);
		sum = pseudo_sum(p->family, src, dst, IPPROTO_TCP, (__u32)len);
		put16(l4 + 16, pkt_csum_fold(pkt_csum_partial(l4, len, sum)));
		break;
	case IPPROTO_UDP:
		put16(l4, p->sport);
		put16(l4 + 2, p->dport);
		put16(l4 + 4, (__u16)len);
		if (p->udp_csum_zero && p->family == BGS_AF_INET)
			break;
		sum = pseudo_sum(p->family, src, dst, IPPROTO_UDP, (__u32)len);
		c = pkt_csum_fold(pkt_csum_partial(l4, len, sum));
		put16(l4 + 6, c ? c : 0xffff);
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		l4[0] = p->icmp_type;
		l4[1] = p->icmp_code;
		put32(l4 + 4, p->icmp_rest);
		sum = p->proto == IPPROTO_ICMPV6 ?
			      pseudo_sum(p->family, src, dst, IPPROTO_ICMPV6, (__u32)len) : 0;
		put16(l4 + 2, pkt_csum_fold(pkt_csum_partial(l4, len, sum)));
		break;
	default:
		break;
	}
}

int pkt_build_l3(const struct pkt *p, __u8 *buf, size_t cap)
{
	size_t l4len = l4_hdr_len(p->proto) + p->payload_len, hl, i;
	__u8 *l4, nh;
	int k;

	if (p->family == BGS_AF_INET) {
		hl = 20 + p->opt_len;
		if (hl + l4len > cap || p->opt_len > 40 || (p->opt_len & 3))
			return -1;
		memset(buf, 0, hl);
		if (p->raw_vi)
			buf[0] = (__u8)(p->version << 4 | (p->ihl & 15));
		else
			buf[0] = (__u8)((p->version ? p->version : 4) << 4 |
					(p->ihl ? p->ihl : 5 + p->opt_len / 4));
		buf[1] = p->tos;
		put16(buf + 2, (__u16)(hl + l4len + p->tot_len_adj));
		put16(buf + 4, p->ip_id);
		put16(buf + 6, p->frag);
		buf[8] = p->ttl;
		buf[9] = p->proto;
		memcpy(buf + 12, &p->src[0], 4);
		memcpy(buf + 16, &p->dst[0], 4);
		for (i = 0; i < p->opt_len; i++)
			buf[20 + i] = i + 1 == p->opt_len ? 0 /* EOL */ : 1 /* NOP */;
		l4 = buf + hl;
		build_l4(p, l4, l4len, buf + 12, buf + 16);
		/* IP checksum last, over the header as finally written. */
		put16(buf + 10, pkt_csum_fold(pkt_csum_partial(buf, hl, 0)));
		return (int)(hl + l4len);
	}

	hl = 40 + 8 * (size_t)p->n_ext;
	if (hl + l4len > cap || p->n_ext > 6)
		return -1;
	memset(buf, 0, hl);
	put32(buf, (__u32)(p->version || p->raw_vi ? p->version : 6) << 28 | (__u32)p->tos << 20 |
			   (p->flowlabel & 0xfffff));
	put16(buf + 4, (__u16)(hl - 40 + l4len + p->tot_len_adj));
	buf[6] = p->n_ext ? p->ext[0] : p->proto;
	buf[7] = p->ttl;
	memcpy(buf + 8, p->src, 16);
	memcpy(buf + 24, p->dst, 16);
	for (k = 0; k < p->n_ext; k++) {
		__u8 *e = buf + 40 + 8 * k;

		nh = k + 1 < p->n_ext ? p->ext[k + 1] : p->proto;
		e[0] = nh;
		switch (p->ext[k]) {
		case IPPROTO_FRAGMENT:
			e[1] = 0;
			put16(e + 2, p->v6_frag);
			put32(e + 4, 0x12345678);
			break;
		case IPPROTO_ROUTING:
			e[1] = 0;   /* 8 bytes */
			e[2] = 253; /* experimental routing type */
			e[3] = 0;   /* segments left: dst is final */
			break;
		default: /* hop-by-hop / destination options: one PadN */
			e[1] = 0;
			e[2] = 1;
			e[3] = 4;
			break;
		}
	}
	l4 = buf + hl;
	build_l4(p, l4, l4len, buf + 8, buf + 24);
	return (int)(hl + l4len);
}

int pkt_build(const struct pkt *p, __u8 *buf, size_t cap)
{
	size_t off = 12;
	int n;

	if (cap < 18)
		return -1;
	memcpy(buf, p->dmac, 6);
	memcpy(buf + 6, p->smac, 6);
	if (p->vlan_proto) {
		put16(buf + off, p->vlan_proto);
		put16(buf + off + 2, p->vlan_tci);
		off += 4;
	}
	if (p->ethertype) {
		put16(buf + off, p->ethertype);
		off += 2;
		if (off + p->payload_len + p->pad_len > cap)
			return -1;
		fill_payload(p, buf + off);
		off += p->payload_len;
		memset(buf + off, p->pad_byte, p->pad_len);
		return (int)(off + p->pad_len);
	}
	put16(buf + off, p->family == BGS_AF_INET ? ETH_P_IPV4 : ETH_P_IPV6);
	off += 2;
	n = pkt_build_l3(p, buf + off, cap - off);
	if (n < 0 || off + n + p->pad_len > cap)
		return -1;
	off += n;
	memset(buf + off, p->pad_byte, p->pad_len);
	return (int)(off + p->pad_len);
}

#define WHY(...)                                          \
	do {                                              \
		if (why)                                  \
			snprintf(why, why_len, __VA_ARGS__); \
		return -1;                                \
	} while (0)

static int parse_l4(const __u8 *l4, size_t len, struct pkt *p, const __u8 *src, const __u8 *dst,
		    char *why, size_t why_len)
{
	size_t hl = l4_hdr_len(p->proto), doff;
	__u32 sum;

	if (len < hl)
		WHY("L4 header truncated: %zu bytes, need %zu", len, hl);
	switch (p->proto) {
	case IPPROTO_TCP:
		p->sport = get16(l4);
		p->dport = get16(l4 + 2);
		p->seq = get32(l4 + 4);
		p->ack_seq = get32(l4 + 8);
		p->tcp_flags = l4[13];
		p->window = get16(l4 + 14);
		doff = (size_t)(l4[12] >> 4) * 4;
		if (doff != 20)
			WHY("TCP data offset %zu (the fixtures use 20)", doff);
		sum = pseudo_sum(p->family, src, dst, IPPROTO_TCP, (__u32)len);
		if (pkt_csum_fold(pkt_csum_partial(l4, len, sum)) != 0)
			WHY("bad TCP checksum 0x%04x", get16(l4 + 16));
		break;
	case IPPROTO_UDP:
		p->sport = get16(l4);
		p->dport = get16(l4 + 2);
		if (get16(l4 + 4) != len)
			WHY("UDP length %u, IP says %zu", get16(l4 + 4), len);
		if (get16(l4 + 6) == 0) {
			if (p->family == BGS_AF_INET6)
				WHY("IPv6 UDP with a zero checksum");
			p->udp_csum_zero = true;
			break;
		}
		sum = pseudo_sum(p->family, src, dst, IPPROTO_UDP, (__u32)len);
		if (pkt_csum_fold(pkt_csum_partial(l4, len, sum)) != 0)
			WHY("bad UDP checksum 0x%04x", get16(l4 + 6));
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		p->icmp_type = l4[0];
		p->icmp_code = l4[1];
		p->icmp_rest = get32(l4 + 4);
		sum = p->proto == IPPROTO_ICMPV6 ?
			      pseudo_sum(p->family, src, dst, IPPROTO_ICMPV6, (__u32)len) : 0;
		if (pkt_csum_fold(pkt_csum_partial(l4, len, sum)) != 0)
			WHY("bad ICMP checksum 0x%04x", get16(l4 + 2));
		break;
	default:
		break;
	}
	p->payload = l4 + hl;
	p->payload_len = (__u16)(len - hl);
	return 0;
}

int pkt_parse(const __u8 *buf, size_t len, struct pkt *p, char *why, size_t why_len)
{
	size_t off = 12, iplen, hl;
	const __u8 *ip;
	__u16 et;
	__u8 nh;

	memset(p, 0, sizeof(*p));
	if (len < 14)
		WHY("frame of %zu bytes", len);
	memcpy(p->dmac, buf, 6);
	memcpy(p->smac, buf + 6, 6);
	et = get16(buf + off);
	if (et == ETH_P_VLAN || et == ETH_P_QINQ) {
		if (len < 18)
			WHY("VLAN tag truncated");
		p->vlan_proto = et;
		p->vlan_tci = get16(buf + off + 2);
		off += 4;
		et = get16(buf + off);
	}
	off += 2;
	if (et != ETH_P_IPV4 && et != ETH_P_IPV6) {
		p->ethertype = et;
		WHY("ethertype 0x%04x is not IP", et);
	}
	ip = buf + off;
	len -= off;
	if (et == ETH_P_IPV4) {
		p->family = BGS_AF_INET;
		if (len < 20)
			WHY("IPv4 header truncated (%zu bytes)", len);
		p->version = ip[0] >> 4;
		p->ihl = ip[0] & 15;
		if (p->version != 4)
			WHY("IP version %u in an IPv4 frame", p->version);
		hl = (size_t)p->ihl * 4;
		if (p->ihl < 5 || hl > len)
			WHY("bad IHL %u", p->ihl);
		p->opt_len = (__u8)(hl - 20);
		p->tos = ip[1];
		iplen = get16(ip + 2);
		p->ip_id = get16(ip + 4);
		p->frag = get16(ip + 6);
		p->ttl = ip[8];
		p->proto = ip[9];
		memcpy(&p->src[0], ip + 12, 4);
		memcpy(&p->dst[0], ip + 16, 4);
		if (iplen < hl || iplen > len)
			WHY("IPv4 total length %zu, header %zu, frame holds %zu", iplen, hl, len);
		p->pad_len = (__u16)(len - iplen);
		if (p->pad_len)
			p->pad_byte = ip[iplen];
		if (pkt_csum_fold(pkt_csum_partial(ip, hl, 0)) != 0)
			WHY("bad IPv4 header checksum 0x%04x", get16(ip + 10));
		if (p->frag & (PKT_MF | 0x1fff))
			WHY("IPv4 fragment");
		return parse_l4(ip + hl, iplen - hl, p, ip + 12, ip + 16, why, why_len);
	}
	p->family = BGS_AF_INET6;
	if (len < 40)
		WHY("IPv6 header truncated (%zu bytes)", len);
	p->version = ip[0] >> 4;
	if (p->version != 6)
		WHY("IP version %u in an IPv6 frame", p->version);
	p->tos = (__u8)(get32(ip) >> 20);
	p->flowlabel = get32(ip) & 0xfffff;
	iplen = 40 + get16(ip + 4);
	nh = ip[6];
	p->ttl = ip[7];
	memcpy(p->src, ip + 8, 16);
	memcpy(p->dst, ip + 24, 16);
	if (iplen > len)
		WHY("IPv6 payload length %zu, frame holds %zu", iplen - 40, len - 40);
	p->pad_len = (__u16)(len - iplen);
	if (p->pad_len)
		p->pad_byte = ip[iplen];
	hl = 40;
	while (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS ||
	       nh == IPPROTO_FRAGMENT) {
		if (p->n_ext >= 6 || hl + 8 > iplen)
			WHY("extension headers truncated");
		p->ext[p->n_ext++] = nh;
		if (nh == IPPROTO_FRAGMENT) {
			p->v6_frag = get16(ip + hl + 2);
			WHY("IPv6 fragment");
		}
		nh = ip[hl];
		hl += 8 + 8 * (size_t)ip[hl + 1];
		if (hl > iplen)
			WHY("extension headers truncated");
	}
	p->proto = nh;
	return parse_l4(ip + hl, iplen - hl, p, ip + 8, ip + 24, why, why_len);
}

const char *pkt_addr_str(__u8 family, const __u32 addr[4], char *buf, size_t len)
{
	if (!inet_ntop(family == BGS_AF_INET ? AF_INET : AF_INET6, addr, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

void pkt_addr(__u8 family, const char *s, __u32 addr[4])
{
	memset(addr, 0, 16);
	if (inet_pton(family == BGS_AF_INET ? AF_INET : AF_INET6, s, addr) != 1) {
		fprintf(stderr, "bad address literal in a fixture: %s\n", s);
		abort();
	}
}

static void mac_str(const __u8 *m, char *b)
{
	sprintf(b, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

void pkt_describe(const __u8 *buf, size_t len, char *out, size_t out_len)
{
	char why[128] = "", s[48], d[48], sm[18], dm[18];
	struct pkt p;
	int r;

	r = pkt_parse(buf, len, &p, why, sizeof(why));
	if (len < 14) {
		snprintf(out, out_len, "%zu-byte frame", len);
		return;
	}
	mac_str(p.smac, sm);
	mac_str(p.dmac, dm);
	if (!p.family) {
		snprintf(out, out_len, "%zu bytes %s > %s type 0x%04x%s", len, sm, dm, p.ethertype,
			 p.vlan_proto ? " (vlan)" : "");
		return;
	}
	pkt_addr_str(p.family, p.src, s, sizeof(s));
	pkt_addr_str(p.family, p.dst, d, sizeof(d));
	snprintf(out, out_len,
		 "%zu bytes %s > %s IPv%u %s:%u > %s:%u proto %u ttl %u flags 0x%02x pad %u%s%s",
		 len, sm, dm, p.family, s, p.sport, d, p.dport, p.proto, p.ttl, p.tcp_flags,
		 p.pad_len, r ? " INVALID: " : " (checksums ok)", r ? why : "");
}

static void hexdump(const char *tag, const __u8 *b, size_t len, size_t mark)
{
	char line[160];
	size_t i, n;

	for (i = 0; i < len; i += 16) {
		n = (size_t)snprintf(line, sizeof(line), "%s %04zx:", tag, i);
		for (size_t j = i; j < i + 16 && j < len; j++)
			n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%02x",
					      j == mark ? ">" : " ", b[j]);
		test_logf("%s", line);
	}
}

bool pkt_expect_frame(const char *what, const __u8 *got, size_t got_len, const __u8 *exp,
		      size_t exp_len, bool check_sums)
{
	char dg[256], de[256], why[128];
	struct pkt p;
	size_t i;

	if (got_len == exp_len && !memcmp(got, exp, got_len)) {
		if (check_sums && pkt_parse(got, got_len, &p, why, sizeof(why))) {
			FAILF("%s: output equals the expected frame but is invalid: %s", what, why);
			return false;
		}
		return true;
	}
	for (i = 0; i < got_len && i < exp_len && got[i] == exp[i]; i++)
		;
	pkt_describe(got, got_len, dg, sizeof(dg));
	pkt_describe(exp, exp_len, de, sizeof(de));
	FAILF("%s: output frame differs from the expected one at byte %zu\n"
	      "        got:      %s\n        expected: %s", what, i, dg, de);
	if (test_fail_count() < 4) {
		hexdump("got", got, got_len, i);
		hexdump("exp", exp, exp_len, i);
	}
	return false;
}

void pkt_flow_key(const struct pkt *p, struct bgs_flow_key *k)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->src, p->src, 16);
	memcpy(k->dst, p->dst, 16);
	k->sport = htons(p->sport);
	k->dport = htons(p->dport);
	k->proto = p->proto;
	k->family = p->family;
}
