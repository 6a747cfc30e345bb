// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_bench: the switch's cost per packet next to baselines measured in the same run.
 *
 * Every timed round is one BPF_PROG_TEST_RUN of bench_wrap (bench/xdp_bench.bpf.c) with
 * `repeat` runs; the wrapper restores (or, for new flows, varies) the packet before each run
 * and tail-calls the program under test, so switch and baselines pay the same wrapper cost.
 * Rounds of a case's programs are interleaved (wrapper alone, baseline, switch, wrapper,
 * baseline, switch, ...) after one warm-up round, and the median of the rounds is reported.
 *
 * A round counts only if every one of its runs took the intended path: the counters of that
 * path (the baselines' own, the switch's bgs_reasons, bgs_svc_stats and bgs_be_stats, read
 * through libbgswitch) grew by exactly the repeat count and every other one by nothing, and
 * the last run's output packet is the expected one. Otherwise the benchmark fails.
 *
 * Run inside a private network namespace (bench/run.sh makes it): an interface (default lb0)
 * with permanent neighbours for 10.0.0.10-13, and a bpffs for the pin directory. The pinned
 * state is created here and destroyed on exit.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "libbgswitch.h"
#include "bgs_test.h" /* bgs_map_fd */
#include "xdp_bench.h"
#include "xdp_bench.skel.h"

#define HDR_LEN BENCH_HDR_LEN
#define OFF_SPORT (ETH_HLEN + 20)
#define OFF_DPORT (ETH_HLEN + 22)
#define MAX_PKT 128
#define NR_BE 4

/* Addresses of the bench topology (all inside the private namespace). */
#define VIP "10.0.1.1"
#define CLIENT "10.1.0.5"
#define BE_FMT "10.0.0.%d" /* backends 10.0.0.10 .. 10.0.0.13 */
#define BE_FIRST 10
#define NEWFLOW_NET 0x0a020000u /* 10.2.0.0/16: new-flow sources (bench_wrap varies them) */
#define FILL_SRC 0x0ac80000u	/* 10.200.0.0 + i: prefill sources */
#define FILL_DST "10.99.0.1"	/* prefill flows go to no service: never hit */
#define TCP_PORT 80
#define TCP_BE_PORT 8080
#define UDP_PORT 53
#define UDP_BE_PORT 5353
#define CLIENT_TCP_PORT 40000
#define CLIENT_UDP_PORT 40001

static const __u8 client_mac[ETH_ALEN] = {0x02, 0xc1, 0x1e, 0x00, 0x00, 0x05};
static const __u8 bl_dmac[ETH_ALEN] = {0x02, 0xb1, 0x00, 0x00, 0x00, 0x01};
static const __u8 bl_smac[ETH_ALEN] = {0x02, 0xb1, 0x00, 0x00, 0x00, 0x02};

struct opts {
	const char *pin_dir;
	const char *ifname;
	const char *md_path;
	const char *only; /* comma-separated cases to run: est,udp,reply,new (NULL: all) */
	const char *switch_obj; /* a switch object to measure instead of the library's */
	int repeat;
	int rounds;
	int cpu;
	__u32 ct_entries;
};

struct pkt {
	__u8 b[MAX_PKT];
	__u32 len;
};

/* Value of bl_flows. */
struct bl_mac {
	__u8 dmac[ETH_ALEN];
	__u8 smac[ETH_ALEN];
};

/* What a run of the program under test must do, and the counters that prove it. */
enum path {
	P_WRAP,	     /* bl_tx: the wrapper alone */
	P_BL_MIN,    /* bl_min: hash hit, XDP_TX */
	P_BL_INSERT, /* bl_min_insert: LRU miss, insert, XDP_TX */
	P_BL_TWO,    /* bl_two: service hash hit, LRU hit, XDP_TX */
	P_SW_FWD,    /* switch: known flow forwarded (BGS_R_FWD_TX), no new flow */
	P_SW_NEW,    /* switch: new flow, conntrack insert, forwarded */
	P_SW_REPLY,  /* switch: nat reply rewritten to the VIP (BGS_R_REPLY_TX) */
};

struct snap {
	__u64 wrap_bad, bl_min_hits, bl_min_miss, bl_ins_ok, bl_ins_fail, bl_tx_runs;
	__u64 bl_two_hits, bl_two_miss;
	struct bgs_reason_counter r[BGS_R_MAX];
	struct bgs_counter svc[2][BGS_NR_COLORS]; /* [tcp, udp][color] */
	struct bgs_counter be[2][NR_BE];	   /* [tcp, udp][backend] */
};

struct bench {
	struct opts o;
	struct bgs *h;
	struct xdp_bench *skel;
	int ifindex;
	__u8 lb_mac[ETH_ALEN];
	__u8 be_mac[NR_BE][ETH_ALEN];
	__u32 svc[2];	     /* tcp, udp */
	__u32 be[2][NR_BE];  /* backend ids */
	__u32 tcp_be;	     /* index of the backend the established TCP flow is on */
	__u32 udp_be;
	int wrap_fd, target_fd;
	int ct_present, lru_present, hash_present, nc_present, pc_present;
	int ncpus, pc_inner_fd;
	__u16 tcp_ports[BENCH_NR_FLOWS]; /* client ports of the tracked TCP flows */
	__u16 udp_ports[BENCH_NR_FLOWS];
	FILE *md;
};

/* One program measured within a case. */
struct prog {
	const char *label;
	int fd;
	enum path path;
	double ns[64];
	int n;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "xdp_bench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

/* ---- Packets ---- */

static __u16 csum_fold(__u32 s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

static __u32 csum_add(__u32 s, const void *p, size_t len)
{
	const __u8 *b = p;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		s += (__u32)b[i] << 8 | b[i + 1];
	if (len & 1)
		s += (__u32)b[len - 1] << 8;
	return s;
}

/* IPv4 TCP or UDP frame; tcp_flags only for TCP; payload zeros. Checksums valid. */
static void build_pkt(struct pkt *p, const __u8 *smac, const __u8 *dmac, const char *saddr,
		      __u16 sport, const char *daddr, __u16 dport, __u8 proto, __u8 tcp_flags,
		      __u32 len)
{
	struct ethhdr *eth = (void *)p->b;
	struct iphdr *ip = (void *)(eth + 1);
	__u8 *l4 = (__u8 *)(ip + 1);
	__u32 l4len = len - sizeof(*eth) - sizeof(*ip), s;
	__u8 pseudo[12];

	memset(p, 0, sizeof(*p));
	p->len = len;
	memcpy(eth->h_source, smac, ETH_ALEN);
	memcpy(eth->h_dest, dmac, ETH_ALEN);
	eth->h_proto = htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->tot_len = htons(len - sizeof(*eth));
	ip->id = htons(1);
	ip->frag_off = htons(0x4000); /* DF */
	ip->ttl = 64;
	ip->protocol = proto;
	inet_pton(AF_INET, saddr, &ip->saddr);
	inet_pton(AF_INET, daddr, &ip->daddr);
	ip->check = htons(csum_fold(csum_add(0, ip, sizeof(*ip))));

	if (proto == IPPROTO_TCP) {
		struct tcphdr *t = (void *)l4;

		t->source = htons(sport);
		t->dest = htons(dport);
		t->seq = htonl(1000);
		t->ack_seq = htonl(tcp_flags & 0x10 ? 2000 : 0);
		t->doff = 5;
		((__u8 *)t)[13] = tcp_flags;
		t->window = htons(65535);
	} else {
		struct udphdr *u = (void *)l4;

		u->source = htons(sport);
		u->dest = htons(dport);
		u->len = htons(l4len);
	}
	memcpy(pseudo, &ip->saddr, 8);
	pseudo[8] = 0;
	pseudo[9] = proto;
	pseudo[10] = l4len >> 8;
	pseudo[11] = l4len & 0xff;
	s = csum_fold(csum_add(csum_add(0, pseudo, 12), l4, l4len));
	if (proto == IPPROTO_UDP && s == 0)
		s = 0xffff;
	if (proto == IPPROTO_TCP)
		((struct tcphdr *)l4)->check = htons(s);
	else
		((struct udphdr *)l4)->check = htons(s);
}

static bool ip_csum_ok(const struct pkt *p)
{
	return csum_fold(csum_add(0, p->b + ETH_HLEN, 20)) == 0;
}

static bool l4_csum_ok(const struct pkt *p)
{
	const struct iphdr *ip = (const void *)(p->b + ETH_HLEN);
	__u32 l4len = p->len - ETH_HLEN - 20;
	__u8 pseudo[12];

	memcpy(pseudo, &ip->saddr, 8);
	pseudo[8] = 0;
	pseudo[9] = ip->protocol;
	pseudo[10] = l4len >> 8;
	pseudo[11] = l4len & 0xff;
	return csum_fold(csum_add(csum_add(0, pseudo, 12), p->b + ETH_HLEN + 20, l4len)) == 0;
}

static __u32 ip4(const char *s)
{
	__u32 a = 0;

	inet_pton(AF_INET, s, &a);
	return a;
}

/* ---- Runs and counters ---- */

static int snap_take(struct bench *b, struct snap *s)
{
	int err, i, c, k;

	memset(s, 0, sizeof(*s));
	s->wrap_bad = b->skel->bss->wrap_bad;
	s->bl_min_hits = b->skel->bss->bl_min_hits;
	s->bl_min_miss = b->skel->bss->bl_min_miss;
	s->bl_ins_ok = b->skel->bss->bl_ins_ok;
	s->bl_ins_fail = b->skel->bss->bl_ins_fail;
	s->bl_tx_runs = b->skel->bss->bl_tx_runs;
	s->bl_two_hits = b->skel->bss->bl_two_hits;
	s->bl_two_miss = b->skel->bss->bl_two_miss;
	err = bgs_reason_counters(b->h, s->r);
	if (err)
		goto out;
	for (k = 0; k < 2; k++) {
		for (c = 0; c < BGS_NR_COLORS; c++) {
			err = bgs_svc_counters(b->h, b->svc[k], c, &s->svc[k][c]);
			if (err)
				goto out;
		}
		for (i = 0; i < NR_BE; i++) {
			err = bgs_backend_counters(b->h, b->be[k][i], &s->be[k][i]);
			if (err)
				goto out;
		}
	}
out:
	if (err)
		fail("reading counters: %s", bgs_errmsg());
	return err;
}

static const char *path_name(enum path p)
{
	switch (p) {
	case P_WRAP: return "wrapper only";
	case P_BL_MIN: return "minimal: hash hit, XDP_TX";
	case P_BL_INSERT: return "minimal + LRU insert";
	case P_BL_TWO: return "two lookups: hash hit, LRU hit";
	case P_SW_FWD: return "switch: known flow, forwarded";
	case P_SW_NEW: return "switch: new flow, forwarded";
	case P_SW_REPLY: return "switch: nat reply";
	}
	return "?";
}

/*
 * Proves that each of the n runs between a and b took path p: its counters grew by
 * exactly n and every other path's by nothing. svc: 0 tcp, 1 udp.
 */
static int prove(const struct bench *b, const struct snap *a, const struct snap *z, enum path p,
		 int svc, __u64 n)
{
	__u64 bl_min = z->bl_min_hits - a->bl_min_hits, bl_miss = z->bl_min_miss - a->bl_min_miss;
	__u64 ins = z->bl_ins_ok - a->bl_ins_ok, ins_fail = z->bl_ins_fail - a->bl_ins_fail;
	__u64 tx = z->bl_tx_runs - a->bl_tx_runs, bad = z->wrap_bad - a->wrap_bad;
	__u64 two = z->bl_two_hits - a->bl_two_hits, two_miss = z->bl_two_miss - a->bl_two_miss;
	__u64 want_bl_min = 0, want_ins = 0, want_tx = 0, want_sw = 0, want_two = 0;
	__u64 sw_pkts = 0, sw_new = 0, be_pkts = 0, be_new = 0, r;
	int want_reason = -1, i, c;
	char why[160] = "";

	switch (p) {
	case P_WRAP: want_tx = n; break;
	case P_BL_MIN: want_bl_min = n; break;
	case P_BL_INSERT: want_ins = n; break;
	case P_BL_TWO: want_two = n; break;
	case P_SW_FWD: want_sw = n; want_reason = BGS_R_FWD_TX; break;
	case P_SW_NEW: want_sw = n; want_reason = BGS_R_FWD_TX; break;
	case P_SW_REPLY: want_sw = n; want_reason = BGS_R_REPLY_TX; break;
	}

	if (bad)
		snprintf(why, sizeof(why), "%llu runs failed in the wrapper",
			 (unsigned long long)bad);
	else if (bl_min != want_bl_min || bl_miss)
		snprintf(why, sizeof(why), "minimal baseline hits %llu, misses %llu",
			 (unsigned long long)bl_min, (unsigned long long)bl_miss);
	else if (ins != want_ins || ins_fail)
		snprintf(why, sizeof(why), "insert baseline inserts %llu, failures %llu",
			 (unsigned long long)ins, (unsigned long long)ins_fail);
	else if (two != want_two || two_miss)
		snprintf(why, sizeof(why), "two-lookup baseline hits %llu, misses %llu",
			 (unsigned long long)two, (unsigned long long)two_miss);
	else if (tx != want_tx)
		snprintf(why, sizeof(why), "wrapper-only target ran %llu times",
			 (unsigned long long)tx);
	if (why[0])
		goto out;

	for (i = 0; i < BGS_R_MAX; i++) {
		r = z->r[i].packets - a->r[i].packets;
		if (r != (i == want_reason ? n : 0)) {
			snprintf(why, sizeof(why), "switch counter %s grew by %llu",
				 bgs_reason_name(i), (unsigned long long)r);
			goto out;
		}
	}
	if (p == P_SW_FWD || p == P_SW_NEW) {
		for (c = 0; c < BGS_NR_COLORS; c++) {
			sw_pkts += z->svc[svc][c].packets - a->svc[svc][c].packets;
			sw_new += z->svc[svc][c].new_flows - a->svc[svc][c].new_flows;
		}
		for (i = 0; i < NR_BE; i++) {
			be_pkts += z->be[svc][i].packets - a->be[svc][i].packets;
			be_new += z->be[svc][i].new_flows - a->be[svc][i].new_flows;
		}
		if (sw_pkts != want_sw || be_pkts != want_sw)
			snprintf(why, sizeof(why),
				 "service packets grew by %llu, backend packets by %llu",
				 (unsigned long long)sw_pkts, (unsigned long long)be_pkts);
		else if (sw_new != (p == P_SW_NEW ? n : 0) || be_new != (p == P_SW_NEW ? n : 0))
			snprintf(why, sizeof(why),
				 "service new flows grew by %llu, backend by %llu",
				 (unsigned long long)sw_new, (unsigned long long)be_new);
	}
	if (p == P_SW_FWD && !why[0]) {
		/* All on the flow's one backend. */
		__u32 k = svc ? b->udp_be : b->tcp_be;

		r = z->be[svc][k].packets - a->be[svc][k].packets;
		if (r != n)
			snprintf(why, sizeof(why), "the flow's backend got %llu packets",
				 (unsigned long long)r);
	}
out:
	if (why[0]) {
		fail("path not proven for '%s' (%llu runs): %s", path_name(p),
		     (unsigned long long)n, why);
		return -EPROTO;
	}
	return 0;
}

/* Runs fd (directly, repeat 1) on p; returns the verdict, output in out. */
static int run_once(struct bench *b, int fd, const struct pkt *in, struct pkt *out)
{
	struct xdp_md ctx = {.data_end = in->len, .ingress_ifindex = b->ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = in->b, .data_size_in = in->len,
		    .data_out = out->b, .data_size_out = sizeof(out->b), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);
	int err;

	err = bpf_prog_test_run_opts(fd, &t);
	if (err) {
		fail("test run: %s", strerror(-err));
		return err;
	}
	out->len = t.data_size_out;
	return (int)t.retval;
}

static int set_target(struct bench *b, int fd)
{
	__u32 zero = 0;
	int err;

	err = bpf_map_update_elem(b->target_fd, &zero, &fd, BPF_ANY);
	if (err) {
		err = -errno;
		fail("putting a program into the wrapper's program array: %s", strerror(errno));
	}
	return err;
}

/* Loads the case's packet into the wrapper's template; ports: the flows to cycle through
 * (BENCH_ROTATE, the port at port_off), else NULL. */
static void set_template(struct bench *b, const struct pkt *p, enum bench_mode mode,
			 __u32 port_off, const __u16 *ports)
{
	struct bench_cfg *cfg = &b->skel->bss->cfg;
	int i;

	cfg->len = p->len;
	memcpy(cfg->hdr, p->b, HDR_LEN);
	cfg->l4 = p->b[ETH_HLEN + 9];
	cfg->mode = mode;
	cfg->port_off = port_off;
	for (i = 0; ports && i < BENCH_NR_FLOWS; i++)
		cfg->ports[i] = htons(ports[i]);
}

/* One timed round of repeat runs of the wrapper around fd; ns per run in *ns. */
static int round_run(struct bench *b, struct prog *pr, const struct pkt *in, int svc,
		     struct pkt *out, double *ns)
{
	struct xdp_md ctx = {.data_end = in->len, .ingress_ifindex = b->ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = in->b, .data_size_in = in->len,
		    .data_out = out->b, .data_size_out = sizeof(out->b), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = b->o.repeat);
	struct snap a, z;
	int err;

	err = set_target(b, pr->fd);
	if (err)
		goto out;
	err = snap_take(b, &a);
	if (err)
		goto out;
	err = bpf_prog_test_run_opts(b->wrap_fd, &t);
	if (err) {
		fail("test run of %s: %s", pr->label, strerror(-err));
		goto out;
	}
	err = snap_take(b, &z);
	if (err)
		goto out;
	err = prove(b, &a, &z, pr->path, svc, b->o.repeat);
	if (err)
		goto out;
	if (t.retval != XDP_TX) {
		fail("%s: last run's verdict %u, not XDP_TX", pr->label, t.retval);
		err = -EPROTO;
		goto out;
	}
	out->len = t.data_size_out;
	*ns = t.duration;
out:
	return err;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const struct prog *pr)
{
	double v[64];
	int n = pr->n;

	memcpy(v, pr->ns, sizeof(double) * n);
	qsort(v, n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef int (*check_fn)(struct bench *b, const struct prog *pr, const struct pkt *out);

/*
 * Measures a case: a warm-up round then o.rounds rounds of every program in turn; each
 * output is checked by check(). Medians land in pr[i].
 */
static int measure(struct bench *b, struct prog *pr, int nprog, const struct pkt *in,
		   enum bench_mode mode, __u32 port_off, const __u16 *ports, int svc,
		   check_fn check)
{
	struct pkt out;
	double ns;
	int r, i, err = 0;

	set_template(b, in, mode, port_off, ports);
	for (r = -1; r < b->o.rounds && !stop; r++) {
		for (i = 0; i < nprog; i++) {
			err = round_run(b, &pr[i], in, svc, &out, &ns);
			if (err)
				goto out;
			err = check(b, &pr[i], &out);
			if (err)
				goto out;
			if (r >= 0)
				pr[i].ns[pr[i].n++] = ns;
		}
	}
	if (stop)
		err = -EINTR;
out:
	return err;
}

/* ---- Output checks ---- */

static int bad_output(const struct prog *pr, const char *what)
{
	fail("%s: output packet: %s", pr->label, what);
	return -EPROTO;
}

/* Baselines write their MACs and leave the rest; the wrapper alone leaves all. */
static int check_baseline(struct bench *b, const struct prog *pr, const struct pkt *out)
{
	(void)b;
	if (pr->path == P_WRAP)
		return 0;
	if (memcmp(out->b, bl_dmac, ETH_ALEN) || memcmp(out->b + ETH_ALEN, bl_smac, ETH_ALEN))
		return bad_output(pr, "MACs not rewritten");
	return 0;
}

/* Forwarded by the switch in nat mode: to backend be_idx (or any, -1), port, TTL - 1. */
static int check_fwd(struct bench *b, const struct prog *pr, const struct pkt *out, int be_idx,
		     __u16 be_port)
{
	const struct iphdr *ip = (const void *)(out->b + ETH_HLEN);
	const __u16 *ports = (const void *)(ip + 1);
	__u32 d = ntohl(ip->daddr), k;
	char be[32];

	if (out->len < HDR_LEN || ip->ttl != 63)
		return bad_output(pr, "TTL not decremented");
	k = d - ((10u << 24) | BE_FIRST);
	if ((d >> 8) != ((10u << 16) | 0) || k >= NR_BE || (be_idx >= 0 && k != (__u32)be_idx))
		return bad_output(pr, "destination is not the flow's backend");
	snprintf(be, sizeof(be), BE_FMT, BE_FIRST + (int)k);
	if (ntohs(ports[1]) != be_port)
		return bad_output(pr, "destination port is not the backend's");
	if (memcmp(out->b, b->be_mac[k], ETH_ALEN) ||
	    memcmp(out->b + ETH_ALEN, b->lb_mac, ETH_ALEN))
		return bad_output(pr, "MACs are not the next hop's");
	if (!ip_csum_ok(out) || !l4_csum_ok(out))
		return bad_output(pr, "bad checksum");
	return 0;
}

static int check_tcp_est(struct bench *b, const struct prog *pr, const struct pkt *out)
{
	if (pr->path != P_SW_FWD)
		return check_baseline(b, pr, out);
	return check_fwd(b, pr, out, b->tcp_be, TCP_BE_PORT);
}

static int check_udp(struct bench *b, const struct prog *pr, const struct pkt *out)
{
	if (pr->path != P_SW_FWD)
		return check_baseline(b, pr, out);
	return check_fwd(b, pr, out, b->udp_be, UDP_BE_PORT);
}

static int check_new(struct bench *b, const struct prog *pr, const struct pkt *out)
{
	const struct iphdr *ip = (const void *)(out->b + ETH_HLEN);
	struct bgs_flow_key k = {};
	struct bgs_flow f;
	const __u16 *ports = (const void *)(ip + 1);
	__u8 v[sizeof(struct bgs_flow)];
	int fd, err;

	/* The last run's flow must be in the program's map. */
	k.src[0] = ip->saddr;
	k.sport = ports[0];
	k.dst[0] = ip4(VIP);
	k.dport = htons(TCP_PORT);
	k.proto = IPPROTO_TCP;
	k.family = BGS_AF_INET;
	if ((ntohl(ip->saddr) >> 16) != (NEWFLOW_NET >> 16))
		return bad_output(pr, "source was not varied");
	if (pr->path == P_WRAP)
		return 0;
	if (pr->path == P_BL_INSERT) {
		err = check_baseline(b, pr, out);
		if (err)
			return err;
		fd = pr->fd == bpf_program__fd(b->skel->progs.bl_min_insert_nc) ?
			     bpf_map__fd(b->skel->maps.bl_lru_nc) :
		     pr->fd == bpf_program__fd(b->skel->progs.bl_min_insert_pc) ?
			     b->pc_inner_fd : bpf_map__fd(b->skel->maps.bl_lru);
		if (bpf_map_lookup_elem(fd, &k, v))
			return bad_output(pr, "last flow missing from the LRU");
		return 0;
	}
	err = check_fwd(b, pr, out, -1, TCP_BE_PORT);
	if (err)
		return err;
	fd = bgs_map_fd(b->h, "ct");
	if (fd < 0 || bpf_map_lookup_elem(fd, &k, &f))
		return bad_output(pr, "last flow missing from conntrack");
	if (f.tcp_state != BGS_TCP_SYN && !(f.tcp_state & BGS_TCP_SYN))
		return bad_output(pr, "conntrack entry not in SYN state");
	return 0;
}

static int check_reply(struct bench *b, const struct prog *pr, const struct pkt *out)
{
	const struct iphdr *ip = (const void *)(out->b + ETH_HLEN);
	const __u16 *ports = (const void *)(ip + 1);

	if (pr->path != P_SW_REPLY)
		return check_baseline(b, pr, out);
	if (ip->saddr != ip4(VIP) || ntohs(ports[0]) != TCP_PORT)
		return bad_output(pr, "source not rewritten to the VIP");
	if (ip->daddr != ip4(CLIENT) || memcmp(out->b, client_mac, ETH_ALEN))
		return bad_output(pr, "not sent back to the client");
	if (!ip_csum_ok(out) || !l4_csum_ok(out))
		return bad_output(pr, "bad checksum");
	return 0;
}

/* ---- Set-up ---- */

static int if_mac(const char *ifname, __u8 *mac)
{
	struct ifreq ifr = {};
	int fd, err = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr))
		err = -errno;
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	close(fd);
	return err;
}

static int add_service(struct bench *b, int k, const char *name, __u8 proto, __u16 port,
		       __u16 be_port)
{
	struct bgs_service_spec spec = {
		.name = name, .port = port, .proto = proto, .mode = BGS_MODE_NAT,
	};
	struct bgs_backend_spec bs = {.port = be_port, .weight = 100};
	struct bgs_backend be;
	char addr[32];
	int i, err;

	err = bgs_ip_parse(VIP, &spec.vip);
	if (err)
		goto out;
	err = bgs_service_add(b->h, &spec, &b->svc[k]);
	if (err)
		goto out;
	for (i = 0; i < NR_BE; i++) {
		snprintf(addr, sizeof(addr), BE_FMT, BE_FIRST + i);
		err = bgs_ip_parse(addr, &bs.addr);
		if (err)
			goto out;
		err = bgs_backend_add(b->h, b->svc[k], i < NR_BE / 2 ? BGS_BLUE : BGS_GREEN, &bs,
				      &b->be[k][i]);
		if (err)
			goto out;
		err = bgs_backend_get(b->h, b->be[k][i], &be);
		if (err)
			goto out;
		if (!(be.flags & BGS_BE_NEXTHOP) || be.ifindex != (__u32)b->ifindex) {
			fail("backend %s: next hop not resolved on %s (permanent neighbour?)",
			     addr, b->o.ifname);
			err = -EHOSTUNREACH;
			goto out;
		}
		memcpy(b->be_mac[i], be.dmac, ETH_ALEN);
	}
out:
	if (err && err != -EHOSTUNREACH)
		fail("setting up service %s: %s", name, bgs_errmsg());
	return err;
}

/* Fills a flow map with n distinct flows that no bench packet matches, all with value val;
 * *present: how many the map holds afterwards. */
static int prefill(int fd, __u32 n, const void *val, size_t vsize, int *present)
{
	const __u32 chunk = 65536;
	struct bgs_flow_key *keys, *okeys;
	__u8 *vals, *ovals;
	__u32 i, j, cnt, total = 0;
	__u32 in_batch = 0, out_batch;
	bool first = true;
	int err = 0;
	LIBBPF_OPTS(bpf_map_batch_opts, bo);

	keys = calloc(chunk, sizeof(*keys));
	vals = calloc(chunk, vsize);
	okeys = calloc(chunk, sizeof(*okeys));
	ovals = calloc(chunk, vsize);
	if (!keys || !vals || !okeys || !ovals) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i += cnt) {
		cnt = n - i < chunk ? n - i : chunk;
		for (j = 0; j < cnt; j++) {
			keys[j].src[0] = htonl(FILL_SRC + i + j);
			keys[j].dst[0] = ip4(FILL_DST);
			keys[j].sport = htons(1024);
			keys[j].dport = htons(TCP_PORT);
			keys[j].proto = IPPROTO_TCP;
			keys[j].family = BGS_AF_INET;
			memcpy(vals + j * vsize, val, vsize);
		}
		err = bpf_map_update_batch(fd, keys, vals, &cnt, &bo);
		if (err) {
			err = -errno;
			fail("bpf_map_update_batch: %s", strerror(errno));
			goto out;
		}
	}
	/* Count what the map holds now (an LRU may evict while it fills). */
	for (;;) {
		cnt = chunk;
		err = bpf_map_lookup_batch(fd, first ? NULL : &in_batch, &out_batch, okeys, ovals,
					   &cnt, &bo);
		if (err && errno != ENOENT) {
			err = -errno;
			fail("bpf_map_lookup_batch: %s", strerror(errno));
			goto out;
		}
		total += cnt;
		if (err)
			break;
		in_batch = out_batch;
		first = false;
	}
	err = 0;
	*present = (int)total;
out:
	free(keys);
	free(vals);
	free(okeys);
	free(ovals);
	return err;
}

static int setup(struct bench *b)
{
	struct bgs_sizes sz = {.ct_entries = b->o.ct_entries, .new_flow_rate = UINT32_MAX};
	struct bgs_flow fv = {.backend_id = 1, .incarnation = 1, .tcp_state = BGS_TCP_EST};
	struct bl_mac mac;
	struct bgs_meta meta;
	__u64 jiffies;
	__u32 hz;
	int err;

	b->ifindex = if_nametoindex(b->o.ifname);
	if (!b->ifindex) {
		fail("interface %s: %s (run me through bench/run.sh)", b->o.ifname,
		     strerror(errno));
		return -ENODEV;
	}
	err = if_mac(b->o.ifname, b->lb_mac);
	if (err) {
		fail("MAC of %s: %s", b->o.ifname, strerror(-err));
		return err;
	}

	err = bgs_init(b->o.pin_dir, &sz, &b->h);
	if (err) {
		fail("bgs_init %s: %s", b->o.pin_dir, bgs_errmsg());
		return err;
	}
	if (b->o.switch_obj) {
		err = bgs_upgrade(b->h, b->o.switch_obj);
		if (err) {
			fail("loading %s: %s", b->o.switch_obj, bgs_errmsg());
			return err;
		}
	}
	bgs_get_meta(b->h, &meta);
	b->o.ct_entries = meta.ct_entries;
	err = add_service(b, 0, "bench-tcp", IPPROTO_TCP, TCP_PORT, TCP_BE_PORT);
	if (err)
		return err;
	err = add_service(b, 1, "bench-udp", IPPROTO_UDP, UDP_PORT, UDP_BE_PORT);
	if (err)
		return err;

	b->skel = xdp_bench__open();
	if (!b->skel) {
		fail("opening the bench programs: %s", strerror(errno));
		return -errno;
	}
	b->ncpus = libbpf_num_possible_cpus();
	err = bpf_map__set_max_entries(b->skel->maps.bl_lru, meta.ct_entries);
	if (!err)
		err = bpf_map__set_max_entries(b->skel->maps.bl_lru_nc, meta.ct_entries);
	if (!err)
		err = bpf_map__set_max_entries(b->skel->maps.bl_lru_pc, (__u32)b->ncpus);
	if (!err)
		err = bpf_map__set_max_entries(b->skel->maps.bl_lru_inner,
					       meta.ct_entries / (__u32)b->ncpus);
	if (!err)
		err = bpf_map__set_max_entries(b->skel->maps.bl_flows, meta.ct_entries);
	if (!err)
		err = xdp_bench__load(b->skel);
	if (err) {
		fail("loading the bench programs: %s", strerror(-err));
		return err;
	}
	for (int c = 0; c < b->ncpus; c++) {
		int ifd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "bl_lru_cpu",
					 sizeof(struct bgs_flow_key), sizeof(struct bgs_flow),
					 meta.ct_entries / (__u32)b->ncpus, NULL);

		if (ifd < 0 || bpf_map_update_elem(bpf_map__fd(b->skel->maps.bl_lru_pc), &c, &ifd,
						   0)) {
			fail("per-CPU LRU %d: %s", c, strerror(errno));
			return -errno;
		}
		if (c == b->o.cpu)
			b->pc_inner_fd = ifd;
		else
			close(ifd);
	}
	memcpy(b->skel->bss->bl_dmac, bl_dmac, ETH_ALEN);
	memcpy(b->skel->bss->bl_smac, bl_smac, ETH_ALEN);
	b->wrap_fd = bpf_program__fd(b->skel->progs.bench_wrap);
	b->target_fd = bpf_map__fd(b->skel->maps.bench_target);

	/* Both LRUs full at their configured size, with the same flows. */
	err = bgs_clock(b->h, &jiffies, &hz);
	if (err) {
		fail("reading the program clock: %s", bgs_errmsg());
		return err;
	}
	fv.last_seen = jiffies;
	fv.svc_id = b->svc[0];
	err = prefill(bgs_map_fd(b->h, "ct"), meta.ct_entries, &fv, sizeof(fv), &b->ct_present);
	if (!err)
		err = prefill(bpf_map__fd(b->skel->maps.bl_lru), meta.ct_entries, &fv, sizeof(fv),
			      &b->lru_present);
	/* With an LRU list per CPU, inserts on this (the bench's) CPU fill its own list,
	 * 1/ncpus of the map, then evict from it; the per-CPU LRU of this CPU: all of it. */
	if (!err)
		err = prefill(bpf_map__fd(b->skel->maps.bl_lru_nc), meta.ct_entries, &fv,
			      sizeof(fv), &b->nc_present);
	if (!err)
		err = prefill(b->pc_inner_fd, meta.ct_entries / (__u32)b->ncpus, &fv, sizeof(fv),
			      &b->pc_present);
	/* The minimal program's hash: as full, leaving room for the bench flows. */
	memcpy(mac.dmac, bl_dmac, ETH_ALEN);
	memcpy(mac.smac, bl_smac, ETH_ALEN);
	if (!err)
		err = prefill(bpf_map__fd(b->skel->maps.bl_flows),
			      meta.ct_entries - 3 * BENCH_NR_FLOWS, &mac, sizeof(mac),
			      &b->hash_present);
	return err;
}

static int add_bl_flow(struct bench *b, const struct pkt *p)
{
	const struct iphdr *ip = (const void *)(p->b + ETH_HLEN);
	const __u16 *ports = (const void *)(ip + 1);
	struct bgs_flow_key k = {};
	struct bgs_vip_key vk = {};
	struct bgs_vip_val vv = {};
	struct bgs_flow f = {.backend_id = 1, .incarnation = 1, .tcp_state = BGS_TCP_EST};
	struct bl_mac v;
	int err;

	k.src[0] = ip->saddr;
	k.dst[0] = ip->daddr;
	k.sport = ports[0];
	k.dport = ports[1];
	k.proto = ip->protocol;
	k.family = BGS_AF_INET;
	memcpy(v.dmac, bl_dmac, ETH_ALEN);
	memcpy(v.smac, bl_smac, ETH_ALEN);
	err = bpf_map_update_elem(bpf_map__fd(b->skel->maps.bl_flows), &k, &v, BPF_ANY);
	if (!err)
		err = bpf_map_update_elem(bpf_map__fd(b->skel->maps.bl_lru), &k, &f, BPF_ANY);
	if (!err && k.dst[0] == ip4(VIP)) {
		vk.addr[0] = k.dst[0];
		vk.port = k.dport;
		vk.proto = k.proto;
		vk.family = k.family;
		err = bpf_map_update_elem(bpf_map__fd(b->skel->maps.bl_vips), &vk, &vv, BPF_ANY);
	}
	if (err) {
		err = -errno;
		fail("baseline flow: %s", strerror(errno));
	}
	return err;
}

/*
 * Opens BENCH_NR_FLOWS flows of one backend: sends first packets (tmpl with client ports
 * from 20000 up) straight to the switch, keeps the ports of the flows that land on the
 * backend the first one took (*be_idx), and gives the baselines the same flows.
 */
static int open_flows(struct bench *b, __u8 proto, __u16 vip_port, __u32 len, __u16 be_port,
		      __u16 *ports, __u32 *be_idx)
{
	struct prog pr = {.label = "first packet", .path = P_SW_NEW};
	struct pkt in, out;
	const struct iphdr *ip = (const void *)(out.b + ETH_HLEN);
	__u32 n = 0, k;
	__u16 port;
	int ret;

	for (port = 20000; n < BENCH_NR_FLOWS && port < 60000; port++) {
		build_pkt(&in, client_mac, b->lb_mac, CLIENT, port, VIP, vip_port, proto,
			  0x02 /* SYN */, len);
		ret = run_once(b, bgs_switch_fd(b->h), &in, &out);
		if (ret < 0)
			return ret;
		if (ret != XDP_TX) {
			fail("a flow's first packet got verdict %d, not XDP_TX", ret);
			return -EPROTO;
		}
		ret = check_fwd(b, &pr, &out, -1, be_port);
		if (ret)
			return ret;
		k = ntohl(ip->daddr) - ((10u << 24) | BE_FIRST);
		if (!n)
			*be_idx = k;
		if (k == *be_idx)
			ports[n++] = port;
	}
	if (n < BENCH_NR_FLOWS) {
		fail("only %u flows landed on one backend", n);
		return -ENOSPC;
	}
	return 0;
}

/* ---- Report ---- */

struct row {
	const char *name;
	const char *baseline;
	const struct prog *w, *bl, *sw; /* wrapper alone, baseline, switch */
	double target;			/* on the net ratio; 0: breakdown only */
};

/* Medians, their ratios, and the spread of the per-round net ratios (rounds are paired). */
struct figures {
	double wrap, base, sw, ratio, net, lo, hi, paired;
};

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void figures(const struct row *r, struct figures *f)
{
	double x, pr[64];
	int i;

	f->wrap = median(r->w);
	f->base = median(r->bl);
	f->sw = median(r->sw);
	f->ratio = f->sw / f->base;
	f->net = (f->sw - f->wrap) / (f->base - f->wrap);
	f->lo = 1e9;
	f->hi = 0;
	for (i = 0; i < r->sw->n; i++) {
		x = (r->sw->ns[i] - r->w->ns[i]) / (r->bl->ns[i] - r->w->ns[i]);
		f->lo = x < f->lo ? x : f->lo;
		f->hi = x > f->hi ? x : f->hi;
		pr[i] = x;
	}
	/* the median of the per-round net ratios: each round measures wrapper, baseline and
	 * switch back to back, so a load change on the shared machine moves all three */
	qsort(pr, (size_t)r->sw->n, sizeof(pr[0]), cmp_dbl);
	f->paired = r->sw->n ? (r->sw->n % 2 ? pr[r->sw->n / 2] :
				(pr[r->sw->n / 2 - 1] + pr[r->sw->n / 2]) / 2) : f->net;
}

static const char *verdict(const struct row *r, const struct figures *f, bool md)
{
	if (!r->target)
		return "(breakdown)";
	if (f->paired <= r->target)
		return "met";
	return md ? "**missed**" : "MISSED";
}

static void report(struct bench *b, const struct row *rows, int n)
{
	struct figures f;
	char tgt[16];
	int i;

	printf("\nBPF_PROG_TEST_RUN, repeat %d, median of %d rounds (after 1 warm-up), CPU %d\n",
	       b->o.repeat, b->o.rounds, b->o.cpu);
	printf("flow maps of %u entries (switch conntrack, baseline LRU, baseline hash) held\n"
	       "%d / %d / %d flows before the runs; known-flow cases cycle through %d flows\n",
	       b->o.ct_entries, b->ct_present, b->lru_present, b->hash_present + 3 * BENCH_NR_FLOWS,
	       BENCH_NR_FLOWS);
	printf("ns/pkt include the wrapper (restore/vary + tail call); net = minus the wrapper "
	       "alone;\nrounds: lowest and highest net ratio of the single rounds; paired: "
	       "their median (judged)\n\n");
	printf("%-16s %-22s %7s %8s %8s %6s %6s %11s %6s %6s\n", "case", "baseline", "wrapper",
	       "baseline", "bgswitch", "ratio", "net", "rounds", "paired", "target");
	for (i = 0; i < n; i++) {
		figures(&rows[i], &f);
		snprintf(tgt, sizeof(tgt), rows[i].target ? "%.2fx" : "-", rows[i].target);
		printf("%-16s %-22s %7.1f %8.1f %8.1f %5.2fx %5.2fx %5.2f-%5.2f %5.2fx %6s %s\n",
		       rows[i].name, rows[i].baseline, f.wrap, f.base, f.sw, f.ratio, f.net, f.lo,
		       f.hi, f.paired, tgt, verdict(&rows[i], &f, false));
	}
	if (!b->md)
		return;
	fprintf(b->md, "BPF_PROG_TEST_RUN, repeat %d, median of %d rounds after one warm-up round, "
		"on CPU %d. The switch's conntrack, the baseline's LRU and the baseline's hash "
		"have %u entries each and held %d, %d and %d flows before the runs; the "
		"known-flow cases cycle through %d tracked flows. Every ns/packet figure includes "
		"the wrapper (restore or vary the packet, tail call); *net* subtracts the wrapper "
		"alone, measured in the same rounds; *rounds* is the lowest and highest net ratio "
		"of the single rounds and *paired* their median, the figure the targets are "
		"judged on (each round runs wrapper, baseline and switch back to back, so a load "
		"change on the shared machine moves all three).\n\n", b->o.repeat, b->o.rounds, b->o.cpu,
		b->o.ct_entries, b->ct_present, b->lru_present,
		b->hash_present + 3 * BENCH_NR_FLOWS, BENCH_NR_FLOWS);
	fprintf(b->md, "| case | baseline | wrapper ns | baseline ns | bgswitch ns | ratio | "
		"net ratio | rounds | paired | target (paired) |\n"
		"|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
	for (i = 0; i < n; i++) {
		figures(&rows[i], &f);
		snprintf(tgt, sizeof(tgt), rows[i].target ? "<= %.2fx " : "", rows[i].target);
		fprintf(b->md,
			"| %s | %s | %.1f | %.1f | %.1f | %.2fx | %.2fx | %.2f-%.2f | %.2fx | %s%s |\n",
			rows[i].name, rows[i].baseline, f.wrap, f.base, f.sw, f.ratio, f.net, f.lo,
			f.hi, f.paired, tgt, verdict(&rows[i], &f, true));
	}
}

/* ---- Cases ---- */

static bool want(const struct bench *b, const char *name)
{
	return !b->o.only || strstr(b->o.only, name);
}

/* Gives the baselines the flows of ports[] (client side, or for replies the backend's). */
static int add_bl_flows(struct bench *b, const __u16 *ports, __u8 proto, __u16 vip_port,
			__u32 len, bool reply)
{
	char be[32];
	struct pkt p;
	int i, err = 0;

	snprintf(be, sizeof(be), BE_FMT, BE_FIRST + (int)b->tcp_be);
	for (i = 0; i < BENCH_NR_FLOWS && !err; i++) {
		if (reply)
			build_pkt(&p, b->be_mac[b->tcp_be], b->lb_mac, be, TCP_BE_PORT, CLIENT,
				  ports[i], proto, 0x10, len);
		else
			build_pkt(&p, client_mac, b->lb_mac, CLIENT, ports[i], VIP, vip_port, proto,
				  0x10, len);
		err = add_bl_flow(b, &p);
	}
	return err;
}

static int bench_all(struct bench *b)
{
	int fd_tx = bpf_program__fd(b->skel->progs.bl_tx);
	int fd_min = bpf_program__fd(b->skel->progs.bl_min);
	int fd_two = bpf_program__fd(b->skel->progs.bl_two);
	int fd_ins = bpf_program__fd(b->skel->progs.bl_min_insert);
	int fd_ins_nc = bpf_program__fd(b->skel->progs.bl_min_insert_nc);
	int fd_ins_pc = bpf_program__fd(b->skel->progs.bl_min_insert_pc);
	int fd_sw = bgs_switch_fd(b->h);
	struct prog est[5] = {
		{.label = "wrapper", .fd = fd_tx, .path = P_WRAP},
		{.label = "minimal", .fd = fd_min, .path = P_BL_MIN},
		{.label = "switch, established TCP", .fd = fd_sw, .path = P_SW_FWD},
		/* as attached: the entry, which tail-calls the switch */
		{.label = "entry + switch, established TCP", .fd = bgs_entry_fd(b->h),
		 .path = P_SW_FWD},
		{.label = "two lookups", .fd = fd_two, .path = P_BL_TWO},
	};
	struct prog udp[3], rep[3], nf[5] = {
		{.label = "wrapper (new flows)", .fd = fd_tx, .path = P_WRAP},
		{.label = "minimal + LRU insert", .fd = fd_ins, .path = P_BL_INSERT},
		{.label = "switch, new flow", .fd = fd_sw, .path = P_SW_NEW},
		{.label = "minimal + LRU insert, no common LRU", .fd = fd_ins_nc,
		 .path = P_BL_INSERT},
		{.label = "minimal + LRU insert, LRU per CPU", .fd = fd_ins_pc,
		 .path = P_BL_INSERT},
	};
	const struct prog *cheapest;
	struct row rows[10];
	struct pkt ack, u, reply, nsyn;
	char be[32], src[32];
	int err, n = 0;

	memcpy(udp, est, sizeof(udp));
	udp[2].label = "switch, UDP flow";
	memcpy(rep, est, sizeof(rep));
	rep[2].label = "switch, nat reply";
	rep[2].path = P_SW_REPLY;

	/* Known flows: their first packets go through the switch before any timed run. */
	err = open_flows(b, IPPROTO_TCP, TCP_PORT, 54, TCP_BE_PORT, b->tcp_ports, &b->tcp_be);
	if (!err)
		err = open_flows(b, IPPROTO_UDP, UDP_PORT, 64, UDP_BE_PORT, b->udp_ports,
				 &b->udp_be);
	if (!err)
		err = add_bl_flows(b, b->tcp_ports, IPPROTO_TCP, TCP_PORT, 54, false);
	if (!err)
		err = add_bl_flows(b, b->udp_ports, IPPROTO_UDP, UDP_PORT, 64, false);
	if (!err)
		err = add_bl_flows(b, b->tcp_ports, IPPROTO_TCP, TCP_PORT, 54, true);
	if (err)
		goto out;

	/* Established TCP: ACKs of the tracked flows, in turn. */
	build_pkt(&ack, client_mac, b->lb_mac, CLIENT, b->tcp_ports[0], VIP, TCP_PORT,
		  IPPROTO_TCP, 0x10, 54);
	if (want(b, "est")) {
		err = measure(b, est, 5, &ack, BENCH_ROTATE, OFF_SPORT, b->tcp_ports, 0,
			      check_tcp_est);
		if (err)
			goto out;
		rows[n++] = (struct row){"established TCP", "minimal (hash hit)",
						 &est[0], &est[1], &est[2], 1.6};
	}

	/* UDP flow: datagrams of the tracked flows, in turn. */
	build_pkt(&u, client_mac, b->lb_mac, CLIENT, b->udp_ports[0], VIP, UDP_PORT, IPPROTO_UDP,
		  0, 64);
	if (want(b, "udp")) {
		err = measure(b, udp, 3, &u, BENCH_ROTATE, OFF_SPORT, b->udp_ports, 1, check_udp);
		if (err)
			goto out;
		rows[n++] = (struct row){"UDP flow", "minimal (hash hit)",
						 &udp[0], &udp[1], &udp[2], 1.6};
	}

	/* nat replies of the TCP flows, from their backend. */
	snprintf(be, sizeof(be), BE_FMT, BE_FIRST + (int)b->tcp_be);
	build_pkt(&reply, b->be_mac[b->tcp_be], b->lb_mac, be, TCP_BE_PORT, CLIENT,
		  b->tcp_ports[0], IPPROTO_TCP, 0x10, 54);
	if (want(b, "reply")) {
		err = measure(b, rep, 3, &reply, BENCH_ROTATE, OFF_DPORT, b->tcp_ports, 0,
			      check_reply);
		if (err)
			goto out;
		rows[n++] = (struct row){"nat reply", "minimal (hash hit)",
						 &rep[0], &rep[1], &rep[2], 1.6};
	}

	/* New flows: a distinct SYN every run into full LRUs. */
	snprintf(src, sizeof(src), "%u.%u.0.0", NEWFLOW_NET >> 24, (NEWFLOW_NET >> 16) & 255);
	build_pkt(&nsyn, client_mac, b->lb_mac, src, 0x8000, VIP, TCP_PORT, IPPROTO_TCP, 0x02,
		  54);
	b->skel->bss->cfg.seq = 0;
	if (want(b, "new")) {
		err = measure(b, nf, 5, &nsyn, BENCH_NEW, 0, NULL, 0, check_new);
		if (err)
			goto out;
		/* the target is judged against the cheapest insert of the three map layouts */
		cheapest = &nf[1];
		if (median(&nf[3]) < median(cheapest))
			cheapest = &nf[3];
		if (median(&nf[4]) < median(cheapest))
			cheapest = &nf[4];
		rows[n++] = (struct row){"new flow (SYN)", cheapest == &nf[1] ? "insert, common LRU" :
					 cheapest == &nf[3] ? "insert, no common LRU" :
					 "insert, LRU per CPU", &nf[0], cheapest, &nf[2], 1.2};
		rows[n++] = (struct row){"new flow (SYN)", "insert, common LRU", &nf[0], &nf[1],
					 &nf[2], 0};
		rows[n++] = (struct row){"new flow (SYN)", "insert, no common LRU", &nf[0], &nf[3],
					 &nf[2], 0};
		rows[n++] = (struct row){"new flow (SYN)", "insert, LRU per CPU", &nf[0], &nf[4],
					 &nf[2], 0};
	}

	/* Where the established flow's time goes: as attached, and the design's floor. */
	if (want(b, "est")) {
		rows[n++] = (struct row){"est. TCP, entry", "minimal (hash hit)",
						 &est[0], &est[1], &est[3], 0};
		rows[n++] = (struct row){"established TCP", "two lookups (floor)",
						 &est[0], &est[4], &est[2], 0};
	}
	report(b, rows, n);
out:
	return err;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: xdp_bench --pin-dir DIR [--ifname IF] [--repeat N] [--rounds N] [--cpu N]\n"
		"                 [--ct-entries N] [--md FILE] [--only est,udp,reply,new]\n"
		"                 [--switch-obj FILE]\n"
		"Run inside the namespace bench/run.sh makes; DIR on a bpffs. Defaults: lb0,\n"
		"repeat 1000000, 7 rounds, the last CPU, the default conntrack size.\n"
		"--switch-obj measures a switch built elsewhere (loaded with bgs_upgrade) instead\n"
		"of the one built into libbgswitch, e.g. to try a change before committing it.\n");
}

static int parse_int(const char *s, long min, long max, long *v)
{
	char *end;

	errno = 0;
	*v = strtol(s, &end, 10);
	if (errno || end == s || *end || *v < min || *v > max) {
		fail("bad number '%s' (%ld..%ld)", s, min, max);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"pin-dir", required_argument, NULL, 'p'},
		{"ifname", required_argument, NULL, 'i'},
		{"repeat", required_argument, NULL, 'r'},
		{"rounds", required_argument, NULL, 'n'},
		{"cpu", required_argument, NULL, 'c'},
		{"ct-entries", required_argument, NULL, 'e'},
		{"md", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{"only", required_argument, NULL, 'o'},
		{"switch-obj", required_argument, NULL, 's'},
		{},
	};
	struct bench b = {
		.o = {.ifname = "lb0", .repeat = 1000000, .rounds = 7, .cpu = -1},
	};
	struct sigaction sa = {.sa_handler = on_signal};
	cpu_set_t set;
	long v;
	int c, err = 0;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'p': b.o.pin_dir = optarg; break;
		case 'i': b.o.ifname = optarg; break;
		case 'm': b.o.md_path = optarg; break;
		case 'o': b.o.only = optarg; break;
		case 's': b.o.switch_obj = optarg; break;
		case 'r':
			err = parse_int(optarg, 1, INT_MAX, &v);
			b.o.repeat = v;
			break;
		case 'n':
			err = parse_int(optarg, 1, 63, &v);
			b.o.rounds = v;
			break;
		case 'c':
			err = parse_int(optarg, 0, CPU_SETSIZE - 1, &v);
			b.o.cpu = v;
			break;
		case 'e':
			err = parse_int(optarg, 1, UINT32_MAX, &v);
			b.o.ct_entries = v;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (err)
			return 2;
	}
	if (!b.o.pin_dir || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (b.o.cpu < 0)
		b.o.cpu = (int)sysconf(_SC_NPROCESSORS_ONLN) - 1;
	CPU_ZERO(&set);
	CPU_SET(b.o.cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		fail("pinning to CPU %d: %s", b.o.cpu, strerror(errno));
		return 1;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (b.o.md_path) {
		b.md = fopen(b.o.md_path, "w");
		if (!b.md) {
			fail("%s: %s", b.o.md_path, strerror(errno));
			return 1;
		}
	}

	err = setup(&b);
	if (!err)
		err = bench_all(&b);

	xdp_bench__destroy(b.skel);
	if (b.h) {
		bgs_close(b.h);
		if (bgs_destroy(b.o.pin_dir))
			fail("removing pins under %s: %s", b.o.pin_dir, bgs_errmsg());
	}
	if (b.md)
		fclose(b.md);
	return err ? 1 : 0;
}
