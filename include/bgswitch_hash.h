/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Flow hashes shared by the XDP program and user space, so that tools and tests can
 * predict the program's choices. Murmur3-style mixing of 32-bit words: fixed work,
 * no loops the verifier has to bound, good spread over the low bits used by '%'.
 */
#ifndef BGSWITCH_HASH_H
#define BGSWITCH_HASH_H

#include "bgswitch.h"

static inline __u32 bgs_rotl32(__u32 x, int r)
{
	return (x << r) | (x >> (32 - r));
}

static inline __u32 bgs_hash_step(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51u;
	k = bgs_rotl32(k, 15);
	k *= 0x1b873593u;
	h ^= k;
	h = bgs_rotl32(h, 13);
	return h * 5 + 0xe6546b64u;
}

static inline __u32 bgs_hash_final(__u32 h, __u32 len)
{
	h ^= len;
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* Hash of an address (four network-order words, IPv4 in the first). */
static inline __u32 bgs_hash_addr(const __u32 *addr, __u32 seed)
{
	__u32 h = seed;

	h = bgs_hash_step(h, addr[0]);
	h = bgs_hash_step(h, addr[1]);
	h = bgs_hash_step(h, addr[2]);
	h = bgs_hash_step(h, addr[3]);
	return bgs_hash_final(h, 16);
}

/* Hash of a flow's client-side tuple. */
static inline __u32 bgs_hash_flow(const struct bgs_flow_key *k, __u32 seed)
{
	__u32 h = seed;

	h = bgs_hash_step(h, k->src[0]);
	h = bgs_hash_step(h, k->src[1]);
	h = bgs_hash_step(h, k->src[2]);
	h = bgs_hash_step(h, k->src[3]);
	h = bgs_hash_step(h, k->dst[0]);
	h = bgs_hash_step(h, k->dst[1]);
	h = bgs_hash_step(h, k->dst[2]);
	h = bgs_hash_step(h, k->dst[3]);
	h = bgs_hash_step(h, ((__u32)k->sport << 16) | k->dport);
	h = bgs_hash_step(h, ((__u32)k->proto << 8) | k->family);
	return bgs_hash_final(h, 40);
}

/* Stamp of a fresh-flow mark (bgs_fresh in bgswitch.h): the tuple's hash seeded with the
 * service and the drain's generation (so another drain's stamps never match), never 0 (an
 * unused slot). Independent of the Maglev hash, whose bits choose the slot. */
static inline __u32 bgs_fresh_stamp(const struct bgs_flow_key *k, __u32 svc_id, __u32 drain_gen)
{
	__u32 seed = bgs_hash_step(bgs_hash_step(BGS_FRESH_SEED, svc_id), drain_gen);

	return bgs_hash_flow(k, seed) | 1;
}

/* Home slot hash of a nat backend in bgs_revnat. Short on purpose: the reply path waits
 * for it, and the keys are the operator's backends, not traffic. The folded key through
 * a two-multiply integer mix (every input bit reaches the low bits a slot index uses). */
static inline __u32 bgs_revnat_hash(const struct bgs_revnat_key *k)
{
	__u32 x = k->addr[0] ^ k->addr[1] ^ k->addr[2] ^ k->addr[3] ^
		  (((__u32)k->port << 16) | ((__u32)k->proto << 8) | k->family);

	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	x *= 0x846ca68bu;
	return x ^ (x >> 16);
}

/* Bit of an address in bgs_port.vip_bloom: the folded words through one multiply, the
 * top six bits (cheap: the hot path computes it for every packet to a VIP port). */
static inline __u64 bgs_addr_bloom_bit(const __u32 *addr)
{
	__u32 x = addr[0] ^ addr[1] ^ addr[2] ^ addr[3];

	x ^= x >> 16;
	x *= 0x9e3779b1u;
	return 1ULL << (x >> 26);
}

/* Hash of a byte string (user space: Maglev permutations of backend identities). */
static inline __u32 bgs_hash_bytes(const void *data, __u32 len, __u32 seed)
{
	const __u8 *p = (const __u8 *)data;
	__u32 h = seed, i, k;

	for (i = 0; i + 4 <= len; i += 4) {
		k = (__u32)p[i] | ((__u32)p[i + 1] << 8) | ((__u32)p[i + 2] << 16) |
		    ((__u32)p[i + 3] << 24);
		h = bgs_hash_step(h, k);
	}
	k = 0;
	for (; i < len; i++)
		k = (k << 8) | p[i];
	if (len & 3)
		h = bgs_hash_step(h, k);
	return bgs_hash_final(h, len);
}

#endif /* BGSWITCH_HASH_H */
