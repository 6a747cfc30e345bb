/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet parsing and checksum helpers of the switch. Parsing never writes; every bound is
 * checked against both the frame end and the IP length (padding past it is not payload).
 */
#ifndef BGS_PARSE_H
#define BGS_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <stdbool.h>
#include "bgswitch.h"

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

/*
 * ICMP and ICMPv6 error types the switch forwards (RFC 792, RFC 4443). Defined here, not taken
 * from <linux/icmp.h>: that header pulls in glibc's <sys/socket.h>, which a BPF build must not
 * include (with -target bpf glibc selects its 32-bit stubs, absent on most machines).
 */
#define ICMP_DEST_UNREACH 3
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PKT_TOOBIG 2
#define ICMPV6_TIME_EXCEED 3
#define ICMPV6_PARAMPROB 4

/* IPv6 extension headers the parser walks through to find the ports. */
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH 51
#define NEXTHDR_DEST 60
/* Most IPv6 extension headers walked before giving up (then: no ports). */
#define MAX_EXT_HDRS 4
/* Largest L3 header length the parser accepts: IPv6 + extension headers (bounds offsets). */
#define MAX_L3_LEN 512

/* What a packet is, as far as routing cares. */
struct pkt {
	__u32 len;	 /* frame length */
	__u32 l3_off;	 /* offset of the IP header */
	__u32 l4_off;	 /* offset of the TCP/UDP/ICMP header */
	__u32 l3_end;	 /* offset of the end of the IP packet (padding excluded) */
	__u8 family;	 /* BGS_AF_* */
	__u8 proto;	 /* L4 protocol after extension headers */
	__u8 ttl;	 /* TTL or hop limit */
	__u8 tcp_flags;	 /* TCP flag byte (FIN 0x01 SYN 0x02 RST 0x04 ACK 0x10) */
	__u8 has_ports;	 /* the ports are inside the packet */
	__u8 l4_whole;	 /* the whole TCP (20 B) / UDP (8 B) header is inside */
	__u8 frag;	 /* 0 none, 1 first fragment, 2 later fragment */
	__u8 ext;	 /* IPv4 options or IPv6 extension headers present */
	__u8 ext_over;	 /* IPv6: more extension headers than MAX_EXT_HDRS: ports unknown */
	union {
		struct bgs_flow_key key; /* src/dst addresses, ports, proto, family */
		__u64 key_w[5];		 /* the same, as the words it is written with */
	};
} __attribute__((aligned(8)));

/*
 * Keys and other stack structs that are read back right away (by a map helper hashing
 * 32-bit words, by 64-bit copies) are written in whole 64-bit words: a load that spans
 * several smaller stores still in flight cannot take its data from them and waits for them
 * to reach the cache (a store-forwarding stall, ~10-15 cycles each). The words are laid out
 * as a little-endian target (bpfel) stores the structs.
 */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "bgswitch writes its keys as little-endian words"
#endif
/* Word 4 of a flow key: ports, protocol, family (as struct bgs_flow_key lays them out). */
static __always_inline __u64 key_tail(__be16 sport, __be16 dport, __u8 proto, __u8 family)
{
	return (__u64)sport | (__u64)dport << 16 | (__u64)proto << 32 | (__u64)family << 40;
}

/* Parse results other than "fine". */
enum parse_err {
	PARSE_OK = 0,
	PARSE_NOT_IP,
	PARSE_VLAN,
	PARSE_MALFORMED,
	PARSE_L4_TRUNC,
};

#define TCP_FL_FIN 0x01
#define TCP_FL_SYN 0x02
#define TCP_FL_RST 0x04
#define TCP_FL_ACK 0x10

/* Reads ports (and TCP flags) at p->l4_off when they lie inside the IP packet. */
static __always_inline int parse_l4(struct xdp_md *ctx, struct pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 off = p->l4_off, need;
	__be16 *ports;
	__u8 *fl;

	if (p->frag == 2)
		return PARSE_OK;
	if (p->proto == IPPROTO_TCP)
		need = sizeof(struct tcphdr);
	else if (p->proto == IPPROTO_UDP)
		need = sizeof(struct udphdr);
	else
		return PARSE_OK;
	if (off > MAX_L3_LEN + ETH_HLEN)
		return PARSE_L4_TRUNC;
	if (off + 4 > p->l3_end)
		return PARSE_L4_TRUNC;
	ports = data + off;
	if ((void *)(ports + 2) > data_end)
		return PARSE_L4_TRUNC;
	p->key_w[4] = key_tail(ports[0], ports[1], p->proto, p->family);
	p->has_ports = 1;
	if (off + need > p->l3_end || data + off + need > data_end)
		return PARSE_L4_TRUNC;
	if (p->proto == IPPROTO_TCP) {
		fl = data + off + 12; /* data offset, then flags */
		if ((void *)(fl + 2) > data_end)
			return PARSE_L4_TRUNC;
		/* a header shorter than its fixed part or reaching past the packet is not whole */
		if ((fl[0] >> 4) < 5 || off + (fl[0] >> 4) * 4 > p->l3_end)
			return PARSE_L4_TRUNC;
		p->tcp_flags = fl[1];
	}
	p->l4_whole = 1;
	return PARSE_OK;
}

static __always_inline int parse_ipv4(struct xdp_md *ctx, struct pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	__u32 hlen, tot;

	if ((void *)(ip + 1) > data_end)
		return PARSE_MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
		return PARSE_MALFORMED;
	hlen = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (tot < hlen || ETH_HLEN + tot > p->len)
		return PARSE_MALFORMED;
	p->l3_off = ETH_HLEN;
	p->l3_end = ETH_HLEN + tot;
	p->l4_off = ETH_HLEN + hlen;
	p->family = BGS_AF_INET;
	p->proto = ip->protocol;
	p->ttl = ip->ttl;
	p->ext = hlen > sizeof(*ip);
	if (ip->frag_off & bpf_htons(0x1fff))
		p->frag = 2;
	else if (ip->frag_off & bpf_htons(0x2000))
		p->frag = 1;
	/* words 1 and 3 (the rest of the addresses) are zero from the caller */
	p->key_w[0] = ip->saddr;
	p->key_w[2] = ip->daddr;
	p->key_w[4] = key_tail(0, 0, ip->protocol, BGS_AF_INET);
	return parse_l4(ctx, p);
}

static __always_inline int parse_ipv6(struct xdp_md *ctx, struct pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	__u32 off, i, fo;
	__u8 nh, *h;

	if ((void *)(ip6 + 1) > data_end)
		return PARSE_MALFORMED;
	if (ip6->version != 6)
		return PARSE_MALFORMED;
	if (ETH_HLEN + sizeof(*ip6) + bpf_ntohs(ip6->payload_len) > p->len)
		return PARSE_MALFORMED;
	p->l3_off = ETH_HLEN;
	p->l3_end = ETH_HLEN + sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	p->family = BGS_AF_INET6;
	p->ttl = ip6->hop_limit;
	__builtin_memcpy(&p->key_w[0], &ip6->saddr, 16);
	__builtin_memcpy(&p->key_w[2], &ip6->daddr, 16);

	nh = ip6->nexthdr;
	off = ETH_HLEN + sizeof(*ip6);
#pragma unroll
	for (i = 0; i < MAX_EXT_HDRS; i++) {
		if (nh != NEXTHDR_HOP && nh != NEXTHDR_ROUTING && nh != NEXTHDR_FRAGMENT &&
		    nh != NEXTHDR_AUTH && nh != NEXTHDR_DEST)
			break;
		if (off > MAX_L3_LEN || off + 8 > p->l3_end)
			return PARSE_MALFORMED;
		h = data + off;
		if ((void *)(h + 8) > data_end)
			return PARSE_MALFORMED;
		p->ext = 1;
		if (nh == NEXTHDR_FRAGMENT) {
			/* offset in the top 13 bits of bytes 2-3, M flag the lowest bit; offset 0
			 * and M 0 is an atomic fragment (RFC 6946): a whole packet, no fragment */
			fo = ((__u32)h[2] << 8) | h[3];
			if (fo & 0xfff8)
				p->frag = 2;
			else if (fo & 1)
				p->frag = 1;
			off += 8;
		} else if (nh == NEXTHDR_AUTH) {
			off += ((__u32)h[1] + 2) * 4;
		} else {
			off += ((__u32)h[1] + 1) * 8;
		}
		nh = h[0];
	}
	if (off > MAX_L3_LEN + ETH_HLEN)
		return PARSE_MALFORMED;
	/* still an extension header after MAX_EXT_HDRS: where the ports are is not known */
	if (nh == NEXTHDR_HOP || nh == NEXTHDR_ROUTING || nh == NEXTHDR_FRAGMENT ||
	    nh == NEXTHDR_AUTH || nh == NEXTHDR_DEST)
		p->ext_over = 1;
	p->l4_off = off;
	p->proto = nh;
	p->key_w[4] = key_tail(0, 0, nh, BGS_AF_INET6);
	return parse_l4(ctx, p);
}

/* Parses Ethernet, IP and the ports; fills p. */
static __always_inline int parse_packet(struct xdp_md *ctx, struct pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	p->len = data_end - data;
	if ((void *)(eth + 1) > data_end)
		return PARSE_MALFORMED;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(ctx, p);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(ctx, p);
	if (eth->h_proto == bpf_htons(ETH_P_8021Q) || eth->h_proto == bpf_htons(ETH_P_8021AD))
		return PARSE_VLAN;
	return PARSE_NOT_IP;
}

/* ---- Incremental checksums (RFC 1624), on raw 16-bit words as stored ---- */

static __always_inline __u16 csum_fold32(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* Adds to an accumulator the change of one 32-bit word from 'from' to 'to'. */
static __always_inline __u32 csum_delta32(__u32 acc, __u32 from, __u32 to)
{
	return acc + (__u16)~from + (__u16)~(from >> 16) + (to & 0xffff) + (to >> 16);
}

static __always_inline __u32 csum_delta16(__u32 acc, __u16 from, __u16 to)
{
	return acc + (__u16)~from + to;
}

/* Applies an accumulated change to a checksum field. */
static __always_inline __u16 csum_apply(__u16 csum, __u32 delta)
{
	return ~csum_fold32((__u16)~csum + csum_fold32(delta));
}

#endif /* BGS_PARSE_H */
