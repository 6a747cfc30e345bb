// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Preview (issue item 4), IPv4 and IPv6, TCP and UDP: new flows from a source in one of the
 * service's preview prefixes, and (nat) flows to its preview port, reach the idle color;
 * everything else reaches the live one; after a flip the idle color is the other one.
 * Preview-port flows are rewritten to the backend's port and their replies come back from
 * the preview port. Removing a prefix ends preview for new flows but not for flows that
 * exist. The preview prefix also outranks the canary.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include "fixture.h"

struct variant {
	const char *name;
	__u8 family, proto;
};

static const struct variant variants[] = {
	{ "v4_tcp", BGS_AF_INET, IPPROTO_TCP },
	{ "v4_udp", BGS_AF_INET, IPPROTO_UDP },
	{ "v6_tcp", BGS_AF_INET6, IPPROTO_TCP },
	{ "v6_udp", BGS_AF_INET6, IPPROTO_UDP },
};

/*
 * Client indexes inside the preview prefix: IPv4 10.99.77.0/24 holds clients 15250..15499
 * (10.99.77.1-250); IPv6 fd00:99::c:1:0/112 holds 0x10000..0x1ffff.
 */
#define PREVIEW_V4 "10.99.77.0/24"
#define PREVIEW_V6 "fd00:99::c:1:0/112"
#define PREVIEW_PORT 8443

static __u32 preview_client(__u8 family, __u32 k)
{
	return family == BGS_AF_INET ? 15250 + k % 250 : 0x10000 + k;
}

/* Clients outside: IPv4 10.99.16-76.x, IPv6 fd00:99::c:0:x. */
static __u32 other_client(__u8 family, __u32 k)
{
	return family == BGS_AF_INET ? k % 15000 : k % 0x10000;
}

static int next_n = 10, next_vip = 1;

static bool setup(const struct variant *v, struct fx_svc *s, struct bgs_prefix *pfx)
{
	char name[32];
	__u32 id;
	bool ok = true;
	int i;

	snprintf(name, sizeof(name), "pv%d_%s", next_vip, v->name);
	if (!fx_svc_add(s, name, v->family, next_vip++, 80, v->proto, BGS_MODE_NAT, PREVIEW_PORT))
		return false;
	for (i = 0; i < 2; i++) {
		ok &= fx_be_add(s, BGS_BLUE, FX_NET_BACKEND, next_n++, 8080, 0, &id);
		ok &= fx_be_add(s, BGS_GREEN, FX_NET_BACKEND, next_n++, 8080, 0, &id);
	}
	ok &= ASSERT_OK(bgs_prefix_parse(v->family == BGS_AF_INET ? PREVIEW_V4 : PREVIEW_V6, pfx),
			"prefix parse");
	ok &= ASSERT_OK(bgs_preview_add(fx.h, s->id, pfx), "preview add");
	return ok;
}

/* A new flow from client c to port dport must reach color. */
static bool new_flow_to(const struct fx_svc *s, __u32 c, __u16 sport, __u16 dport, __u32 color,
			__u32 *be_out, struct pkt *out_pkt)
{
	struct bgs_flow_key k;
	struct bgs_flip fl;
	struct pkt p;
	__u32 want;
	bool ok;

	fx_client_pkt(&p, s, c, sport, PKT_SYN);
	p.dport = dport;
	pkt_flow_key(&p, &k);
	if (!fx_flip_get(s, &fl))
		return false;
	want = fx_table_pick_word(s, fl.word, color, &k);
	ok = ASSERT_NEQ(want, 0, "table has a backend") && fx_expect_fwd(s, &p, want);
	ok = ok && fx_flow_check_ct(s, &p, want, color, bgs_fw_gen(fl.word));
	if (be_out)
		*be_out = want;
	if (out_pkt)
		*out_pkt = p;
	return ok;
}

/* A reply to a preview-port flow leaves from VIP:preview port. */
static bool preview_reply(const struct fx_svc *s, const struct pkt *c, __u32 be_id)
{
	const struct fx_be *b = &fx.be[be_id];
	__u8 in[PKT_MAX], eb[PKT_MAX];
	struct pkt r, e;
	struct fx_out o;
	int len, elen;

	memset(&r, 0, sizeof(r));
	memcpy(r.dmac, b->smac, 6);
	memcpy(r.smac, b->mac, 6);
	r.family = c->family;
	memcpy(r.src, b->ip.addr, 16);
	memcpy(r.dst, c->src, 16);
	r.proto = c->proto;
	r.ttl = 64;
	r.sport = b->port;
	r.dport = c->sport;
	r.tcp_flags = c->proto == IPPROTO_TCP ? PKT_SYN | PKT_ACK : 0;
	r.payload_len = 10;
	e = r;
	memcpy(e.src, s->vip.addr, 16);
	e.sport = PREVIEW_PORT;
	e.ttl = 63;
	memcpy(e.dmac, c->smac, 6);
	memcpy(e.smac, c->dmac, 6);
	len = pkt_build(&r, in, sizeof(in));
	elen = pkt_build(&e, eb, sizeof(eb));
	if (!ASSERT_OK(fx_run(in, (__u32)len, b->ifindex, &o), "test run"))
		return false;
	if (!ASSERT_EQ(o.retval, XDP_REDIRECT, "preview reply verdict"))
		return false;
	return pkt_expect_frame("reply from the preview port", o.data, o.len, eb, (size_t)elen,
				true);
}

#define N 64

static bool scenario(const struct variant *v)
{
	__u32 pv_be[N], port_be[N], id, live = BGS_BLUE, idle = BGS_GREEN;
	struct bgs_flip_opts fo = { .to_color = BGS_ANY_COLOR, .expect_gen = BGS_ANY_GEN,
				    .drain_ms = BGS_NO_DEADLINE };
	struct bgs_prefix pfx, got[4];
	struct fx_svc s;
	struct pkt c;
	bool ok = true;
	__u32 k;
	int round;

	if (!setup(v, &s, &pfx))
		return false;
	ok &= ASSERT_EQ(bgs_preview_list(fx.h, s.id, got, 4), 1, "one preview prefix listed");
	for (round = 0; round < 2 && ok; round++) {
		__u16 base = (__u16)(10000 + round * 1000);

		test_ctx("%s round %d: prefix -> idle (%u)", v->name, round, idle);
		for (k = 0; k < N; k++)
			ok &= new_flow_to(&s, preview_client(v->family, k), (__u16)(base + k), 80,
					  idle, &pv_be[k], NULL);
		test_ctx("%s round %d: others -> live (%u)", v->name, round, live);
		for (k = 0; k < N; k++)
			ok &= new_flow_to(&s, other_client(v->family, k), (__u16)(base + k), 80,
					  live, &id, NULL);
		test_ctx("%s round %d: preview port -> idle (%u)", v->name, round, idle);
		for (k = 0; k < N; k++) {
			ok &= new_flow_to(&s, other_client(v->family, k), (__u16)(base + 500 + k),
					  PREVIEW_PORT, idle, &port_be[k], &c);
			ok &= preview_reply(&s, &c, port_be[k]);
			/* and the flow's next packet stays */
			c.tcp_flags = PKT_ACK;
			ok &= fx_expect_fwd(&s, &c, port_be[k]);
		}
		if (!ok)
			break;
		/* flip: the idle color is now the other one; existing flows stay */
		if (!ASSERT_EQ(bgs_flip(fx.h, s.id, &fo, NULL), 1, "flip"))
			goto fail;
		test_ctx("%s round %d: after the flip, old preview flows stay", v->name, round);
		for (k = 0; k < N; k++)
			ok &= fx_flow_next(&s, preview_client(v->family, k), (__u16)(base + k),
					   pv_be[k]);
		live ^= 1;
		idle ^= 1;
	}

	/* without the prefix, its sources are ordinary clients; their flows stay */
	test_ctx("%s: prefix removed", v->name);
	if (!ASSERT_OK(bgs_preview_del(fx.h, s.id, &pfx), "preview del"))
		goto fail;
	ok &= ASSERT_EQ(bgs_preview_list(fx.h, s.id, got, 4), 0, "no preview prefix listed");
	for (k = 0; k < N; k++) {
		ok &= new_flow_to(&s, preview_client(v->family, k), 30000 + (__u16)k, 80, live, &id,
				  NULL);
		ok &= fx_flow_next(&s, preview_client(v->family, k), (__u16)(11000 + k), pv_be[k]);
	}
out:
	test_ctx("%s", "");
	return fx_svc_del(&s) && ok;
fail:
	ok = false;
	goto out;
}

static bool test_preview_prefix_and_port(void)
{
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(variants); i++)
		ok &= scenario(&variants[i]);
	return ok;
}

/*
 * One client source port may talk to the VIP's service port and to its preview port at the
 * same time (the kernel picks local ports per destination). The two flows have two backends
 * (live and idle color); each backend's replies must come back from the port its flow used.
 */
static bool test_preview_reply_same_client_port(void)
{
	struct bgs_prefix pfx;
	struct fx_svc s;
	struct pkt c80, c8443;
	__u32 be80, be8443, k;
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(variants); i++) {
		if (!setup(&variants[i], &s, &pfx))
			return false;
		for (k = 0; k < 16; k++) {
			test_ctx("%s client %u", variants[i].name, k);
			__u32 cl = other_client(variants[i].family, k);

			ok &= new_flow_to(&s, cl, (__u16)(14000 + k), 80, BGS_BLUE, &be80, &c80);
			ok &= new_flow_to(&s, cl, (__u16)(14000 + k), PREVIEW_PORT, BGS_GREEN,
					  &be8443, &c8443);
			ok &= preview_reply(&s, &c8443, be8443);
		}
		test_ctx("%s", "");
		ok &= fx_svc_del(&s);
	}
	return ok;
}

/* A mid-flow TCP packet to the preview port without an entry belongs to the idle color. */
static bool test_preview_port_midflow(void)
{
	struct bgs_prefix pfx;
	struct bgs_flow_key k;
	struct fx_svc s;
	struct pkt p;
	__u32 id, i;
	bool ok = true;

	if (!setup(&variants[2], &s, &pfx))
		return false;
	for (i = 0; i < 32; i++) {
		fx_client_pkt(&p, &s, i, (__u16)(12000 + i), PKT_ACK);
		p.dport = PREVIEW_PORT;
		pkt_flow_key(&p, &k);
		id = fx_table_pick(&s, BGS_GREEN, &k);
		ok &= fx_expect_fwd(&s, &p, id);
	}
	return fx_svc_del(&s) && ok;
}

/*
 * A preview-prefix flow keeps the idle color when its entry is missing (eviction, LB
 * restart, ECMP move; item 4): the next ACK goes where the prefix says, to the backend
 * the SYN went to, also while a drain runs (preview comes before the drain rule).
 */
static bool test_preview_prefix_midflow(void)
{
	struct bgs_flip_opts fo = { .to_color = BGS_GREEN, .expect_gen = BGS_ANY_GEN,
				    .drain_ms = BGS_NO_DEADLINE };
	__u32 be[32], c, i, idle;
	struct bgs_prefix pfx;
	struct fx_svc s;
	struct pkt p;
	bool ok = true;
	int round;
	size_t v;

	for (v = 0; v < ARRAY_SIZE(variants); v += 2) { /* v4 and v6 TCP */
		if (!setup(&variants[v], &s, &pfx))
			return false;
		/* round 0: blue live; round 1: green live, blue draining */
		for (round = 0; round < 2 && ok; round++) {
			test_ctx("%s, round %d", variants[v].name, round);
			idle = round ? BGS_BLUE : BGS_GREEN;
			for (i = 0; i < 32; i++) {
				c = preview_client(variants[v].family, i);
				ok &= new_flow_to(&s, c, (__u16)(14000 + round * 100 + i), 80, idle,
						  &be[i], &p);
				ok &= ASSERT_OK(fx_ct_delete(&p), "entry evicted");
				fx_client_pkt(&p, &s, c, (__u16)(14000 + round * 100 + i), PKT_ACK);
				ok &= fx_expect_fwd(&s, &p, be[i]);
				ok &= fx_flow_check_ct(&s, &p, be[i], idle, FX_ANY_GEN);
			}
			if (!round)
				ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &fo, NULL), 1, "flip");
		}
		test_ctx("%s", "");
		ok &= fx_svc_del(&s);
	}
	return ok;
}

/* Preview outranks the canary: at canary 100% everyone goes idle, preview sources too;
 * the preview source keeps the idle color whatever the canary. */
static bool test_preview_before_canary(void)
{
	struct bgs_prefix pfx;
	struct fx_svc s;
	__u32 id, k;
	bool ok = true;

	if (!setup(&variants[0], &s, &pfx))
		return false;
	if (!ASSERT_OK(bgs_canary_set(fx.h, s.id, 5000, false, BGS_ANY_GEN, NULL), "canary"))
		goto out;
	for (k = 0; k < 200; k++)
		ok &= new_flow_to(&s, preview_client(BGS_AF_INET, k), (__u16)(13000 + k), 80,
				  BGS_GREEN, &id, NULL);
out:
	return fx_svc_del(&s) && ok;
}

/* Bad preview input is refused with nothing changed. */
static bool test_preview_refusals(void)
{
	struct bgs_service_spec spec = { .name = "pv_dsr", .port = 80, .proto = IPPROTO_TCP,
					 .mode = BGS_MODE_DSR, .preview_port = 8443 };
	struct bgs_prefix pfx, bad;
	struct fx_svc s;
	__u32 id;
	bool ok = true;

	fx_vip(BGS_AF_INET, 200, &spec.vip);
	ok &= ASSERT_ERR(bgs_service_add(fx.h, &spec, &id), -EINVAL, "dsr with a preview port");
	if (!setup(&variants[0], &s, &pfx))
		return false;
	/* host bits set */
	ok &= ASSERT_ERR(bgs_prefix_parse("10.99.77.1/24", &bad), -EINVAL, "host bits set");
	bad = pfx;
	bad.ip.addr[0] |= htonl(1);
	ok &= ASSERT_ERR(bgs_preview_add(fx.h, s.id, &bad), -EINVAL, "preview add, host bits");
	/* family mismatch */
	ok &= ASSERT_OK(bgs_prefix_parse(PREVIEW_V6, &bad), "v6 prefix");
	ok &= ASSERT_ERR(bgs_preview_add(fx.h, s.id, &bad), -EINVAL, "v6 prefix on a v4 service");
	ok &= ASSERT_EQ(bgs_preview_list(fx.h, s.id, &bad, 1), 1, "still one prefix");
	return fx_svc_del(&s) && ok;
}

static const struct test_case tests[] = {
	{ "preview_prefix_and_port", test_preview_prefix_and_port },
	{ "preview_reply_same_client_port", test_preview_reply_same_client_port },
	{ "preview_port_midflow", test_preview_port_midflow },
	{ "preview_prefix_midflow", test_preview_prefix_midflow },
	{ "preview_before_canary", test_preview_before_canary },
	{ "preview_refusals", test_preview_refusals },
};

int main(int argc, char **argv)
{
	struct bgs_sizes sz = { .max_services = 16, .max_backends = 256, .maglev_size = 1021,
				.ct_entries = 65536 };

	return fx_main(argc, argv, &sz, tests, ARRAY_SIZE(tests), 120);
}
