/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet fixtures: a builder (Ethernet, optional VLAN tag, IPv4 with options/fragments or
 * IPv6 with extension headers, TCP/UDP/ICMP/ICMPv6, payload, padding) that computes every
 * checksum from scratch, and a parser that reads a frame back into the same description,
 * verifying the IP and L4 checksums from scratch. Tests describe the packet they send and
 * the packet they expect, build both, and compare the program's output byte for byte.
 */
#ifndef BGS_PKT_H
#define BGS_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "bgswitch.h"

/* Largest frame a fixture builds (also the size of output buffers). */
#define PKT_MAX 2048

/* IPv4 flags in struct pkt.frag (host order). */
#define PKT_DF 0x4000
#define PKT_MF 0x2000

/* TCP flags. */
#define PKT_FIN 0x01
#define PKT_SYN 0x02
#define PKT_RST 0x04
#define PKT_PSH 0x08
#define PKT_ACK 0x10

struct pkt {
	__u8 dmac[6];
	__u8 smac[6];
	__u16 vlan_proto; /* 0: untagged; 0x8100 or 0x88a8: one tag with vlan_tci */
	__u16 vlan_tci;
	__u16 ethertype;  /* 0: from family; else written as is and no IP header follows */
	__u8 family;	  /* BGS_AF_INET or BGS_AF_INET6 */
	__u32 src[4];	  /* network-order words, IPv4 in [0] (as struct bgs_ip) */
	__u32 dst[4];
	__u8 proto;	  /* IPPROTO_TCP, _UDP, _ICMP, _ICMPV6; any other: payload only */
	__u8 ttl;	  /* TTL or hop limit, written as is */
	__u8 tos;	  /* TOS / traffic class */
	__u16 ip_id;
	__u16 frag;	  /* IPv4 flags and offset field, host order (PKT_MF | PKT_DF | off/8) */
	__u8 opt_len;	  /* IPv4 option bytes (multiple of 4, <= 40): NOPs ending with EOL */
	__u8 ihl;	  /* 0: 5 + opt_len / 4; else written as is (bad IHL) */
	__u8 version;	  /* 0: from family; else written as is (bad version) */
	bool raw_vi;	  /* write version and ihl as given, even 0 */
	int tot_len_adj;  /* added to the IPv4 total / IPv6 payload length field */
	__u32 flowlabel;
	__u8 n_ext;	  /* IPv6 extension headers, in this order, before the L4 header */
	__u8 ext[6];	  /* IPPROTO_HOPOPTS, _ROUTING, _DSTOPTS, _FRAGMENT */
	__u16 v6_frag;	  /* fragment header offset/flags, host order (offset << 3 | M) */
	__u16 sport;	  /* host order */
	__u16 dport;
	__u8 tcp_flags;
	__u32 seq;
	__u32 ack_seq;
	__u16 window;
	__u8 icmp_type;
	__u8 icmp_code;
	__u32 icmp_rest;     /* second word of the ICMP header (echo id/seq, MTU), host order */
	bool udp_csum_zero;  /* IPv4 UDP without a checksum (0) */
	const __u8 *payload; /* NULL: payload_len bytes of a pattern drawn from pay_seed */
	__u16 payload_len;
	__u8 pay_seed;
	__u16 pad_len;	     /* bytes after the IP packet (Ethernet padding) */
	__u8 pad_byte;
};

/* Build the frame into buf; returns its length, or -1 if it does not fit cap. */
int pkt_build(const struct pkt *p, __u8 *buf, size_t cap);
/* Build only the IP packet (no Ethernet header, no padding), e.g. to quote in ICMP. */
int pkt_build_l3(const struct pkt *p, __u8 *buf, size_t cap);

/*
 * Parse a frame into p (payload points into buf). Returns 0 if it is a well-formed
 * Ethernet/IP frame whose IP header checksum and L4 checksum (recomputed from scratch over
 * the IP length, ignoring padding) are correct, and whose lengths agree; otherwise -1 with
 * the reason in why. Non-IP frames parse as far as the Ethernet header and return -1.
 */
int pkt_parse(const __u8 *buf, size_t len, struct pkt *p, char *why, size_t why_len);

/* One-line description of a frame (MACs, addresses, ports, TTL, checksum validity). */
void pkt_describe(const __u8 *buf, size_t len, char *out, size_t out_len);

/*
 * Compare a frame the program produced with the one expected; on a difference, report the
 * first differing offset and both frames field by field (FAILF). With check_sums, the
 * frame must also pass pkt_parse() (checksums recomputed from scratch).
 */
bool pkt_expect_frame(const char *what, const __u8 *got, size_t got_len, const __u8 *exp,
		      size_t exp_len, bool check_sums);

/* The client-side tuple of a packet, as the program keys conntrack. */
void pkt_flow_key(const struct pkt *p, struct bgs_flow_key *k);

/* Internet checksum helpers (exposed for the packet library's own test). */
__u32 pkt_csum_partial(const void *data, size_t len, __u32 sum);
__u16 pkt_csum_fold(__u32 sum);

/* Addresses: parse a literal into network-order words (aborts on a bad literal: fixtures
 * are code); format one. */
void pkt_addr(__u8 family, const char *s, __u32 addr[4]);
const char *pkt_addr_str(__u8 family, const __u32 addr[4], char *buf, size_t len);

#endif /* BGS_PKT_H */
