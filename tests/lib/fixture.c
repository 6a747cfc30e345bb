// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The data-plane test fixture (see fixture.h). */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>

#include "bgswitch_hash.h"
#include "fixture.h"

struct fx fx;

static const __u8 MAC_LB0[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
static const __u8 MAC_CL0[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 };
static const __u8 MAC_LB1[6] = { 0x02, 0x00, 0x00, 0x00, 0x01, 0x01 };
static const __u8 MAC_BE0[6] = { 0x02, 0x00, 0x00, 0x00, 0x01, 0x02 };

enum { SETUP_OK = 0, SETUP_SKIP = 1, SETUP_FAIL = 2 };

int fx_sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st == -1)
		return -errno;
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		return -ECHILD;
	return 0;
}

static void mac_fmt(const __u8 *m, char *b)
{
	sprintf(b, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

void fx_be_ip(__u8 family, int net, int n, struct bgs_ip *ip)
{
	char s[64];

	memset(ip, 0, sizeof(*ip));
	ip->family = family;
	if (family == BGS_AF_INET)
		snprintf(s, sizeof(s), "10.99.%d.%d", net, n);
	else
		snprintf(s, sizeof(s), "fd00:99:%x::be:%x", net, n);
	pkt_addr(family, s, ip->addr);
}

void fx_be_mac(__u8 family, int net, int n, __u8 mac[6])
{
	mac[0] = 0x02;
	mac[1] = 0xbe;
	mac[2] = family;
	mac[3] = (__u8)net;
	mac[4] = 0;
	mac[5] = (__u8)n;
}

void fx_client_ip(__u8 family, __u32 idx, __u32 addr[4])
{
	__u8 *b = (__u8 *)addr;

	memset(addr, 0, 16);
	if (family == BGS_AF_INET) {
		b[0] = 10;
		b[1] = 99;
		b[2] = (__u8)(16 + (idx / 250) % 224);
		b[3] = (__u8)(1 + idx % 250);
		return;
	}
	/* fd00:99::c:hi:lo */
	b[0] = 0xfd;
	b[3] = 0x99;
	b[11] = 0x0c;
	b[12] = (__u8)(idx >> 24);
	b[13] = (__u8)(idx >> 16);
	b[14] = (__u8)(idx >> 8);
	b[15] = (__u8)idx;
}

void fx_vip(__u8 family, int n, struct bgs_ip *ip)
{
	char s[64];

	memset(ip, 0, sizeof(*ip));
	ip->family = family;
	if (family == BGS_AF_INET)
		snprintf(s, sizeof(s), "10.99.250.%d", n);
	else
		snprintf(s, sizeof(s), "fd00:99:250::%x", n);
	pkt_addr(family, s, ip->addr);
}

/* ---- Setup and teardown ---- */

static void teardown_fs(void)
{
	if (!fx.mnt[0])
		return;
	umount2(fx.mnt, MNT_DETACH);
	rmdir(fx.mnt);
}

static void fx_teardown(void)
{
	if (fx.h) {
		bgs_close(fx.h);
		fx.h = NULL;
	}
	if (fx.pin_dir[0])
		bgs_destroy(fx.pin_dir);
	teardown_fs();
	free(fx.be);
	fx.be = NULL;
	fx.mnt[0] = 0;
}

static void on_signal(int sig)
{
	static const char msg[] = "FAIL watchdog: test binary timed out or was interrupted\n";

	if (sig == SIGALRM)
		(void)!write(1, msg, sizeof(msg) - 1);
	/* only async-signal-safe calls here; namespaces and pins die with the process */
	if (fx.mnt[0]) {
		umount2(fx.mnt, MNT_DETACH);
		rmdir(fx.mnt);
	}
	_exit(sig == SIGALRM ? 1 : 128 + sig);
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY), err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		err = -errno;
	close(fd);
	return err;
}

static int ns_setup(char *why, size_t why_len)
{
	if (unshare(CLONE_NEWNET | CLONE_NEWNS)) {
		snprintf(why, why_len, "cannot create namespaces: %s", strerror(errno));
		return SETUP_SKIP;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		snprintf(why, why_len, "cannot make mounts private: %s", strerror(errno));
		return SETUP_SKIP;
	}
	/* as `ip netns exec` does: /sys shows this namespace's interfaces */
	umount2("/sys", MNT_DETACH);
	if (mount("sysfs", "/sys", "sysfs", 0, NULL)) {
		snprintf(why, why_len, "cannot mount sysfs: %s", strerror(errno));
		return SETUP_SKIP;
	}
	/* a private /run: nothing the test makes there is visible outside or left behind */
	if (mount("tmpfs", "/run", "tmpfs", 0, "mode=0755,size=16m")) {
		snprintf(why, why_len, "cannot mount a tmpfs on /run: %s", strerror(errno));
		return SETUP_SKIP;
	}
	snprintf(fx.mnt, sizeof(fx.mnt), "/run/bgs-test-%d", (int)getpid());
	if (mkdir(fx.mnt, 0700) && errno != EEXIST) {
		snprintf(why, why_len, "mkdir %s: %s", fx.mnt, strerror(errno));
		return SETUP_SKIP;
	}
	if (mount("bpf", fx.mnt, "bpf", 0, "mode=0700")) {
		snprintf(why, why_len, "cannot mount a bpffs on %s: %s", fx.mnt, strerror(errno));
		rmdir(fx.mnt);
		fx.mnt[0] = 0;
		return SETUP_SKIP;
	}
	snprintf(fx.pin_dir, sizeof(fx.pin_dir), "%s/bgswitch", fx.mnt);
	setenv("LIBXDP_BPFFS", fx.mnt, 1);
	return SETUP_OK;
}

static int net_setup(char *why, size_t why_len)
{
	static const char *batch = "/run/bgs-test-net.batch";
	char m1[18], m2[18], m3[18], m4[18], nm[18];
	__u8 mac[6];
	struct bgs_ip ip;
	char a[64];
	FILE *f;
	int net, n, fam;

	f = fopen(batch, "w");
	if (!f) {
		snprintf(why, why_len, "%s: %s", batch, strerror(errno));
		return SETUP_SKIP;
	}
	mac_fmt(MAC_LB0, m1);
	mac_fmt(MAC_CL0, m2);
	mac_fmt(MAC_LB1, m3);
	mac_fmt(MAC_BE0, m4);
	fprintf(f, "link set lo up\n");
	fprintf(f, "link add lb0 address %s type veth peer name cl0 address %s\n", m1, m2);
	fprintf(f, "link add lb1 address %s type veth peer name be0 address %s\n", m3, m4);
	fprintf(f, "link set lb0 up\nlink set cl0 up\nlink set lb1 up\nlink set be0 up\n");
	fprintf(f, "addr add 10.99.0.1/16 dev lb0\naddr add fd00:99::1/64 dev lb0 nodad\n");
	fprintf(f, "addr add 10.99.1.1/24 dev lb1\naddr add fd00:99:1::1/64 dev lb1 nodad\n");
	for (fam = 0; fam < 2; fam++) {
		__u8 family = fam ? BGS_AF_INET6 : BGS_AF_INET;

		for (net = 0; net < 2; net++) {
			for (n = 2; n < FX_UNRESOLVED_N; n++) {
				fx_be_ip(family, net, n, &ip);
				fx_be_mac(family, net, n, mac);
				mac_fmt(mac, nm);
				pkt_addr_str(family, ip.addr, a, sizeof(a));
				fprintf(f, "neigh replace %s lladdr %s dev lb%d nud permanent\n", a,
					nm, net);
			}
		}
	}
	fclose(f);
	if (fx_sh("ip -batch %s >/run/bgs-test-net.log 2>&1", batch)) {
		snprintf(why, why_len, "building the veth topology failed (ip -batch; see %s)",
			 "/run/bgs-test-net.log");
		fx_sh("sed 's/^/    /' /run/bgs-test-net.log >&2");
		return SETUP_SKIP;
	}
	if (write_file("/proc/sys/net/ipv4/ip_forward", "1") ||
	    write_file("/proc/sys/net/ipv6/conf/all/forwarding", "1")) {
		snprintf(why, why_len, "cannot turn forwarding on");
		return SETUP_SKIP;
	}
	fx.if_lb0 = if_nametoindex("lb0");
	fx.if_lb1 = if_nametoindex("lb1");
	fx.if_cl0 = if_nametoindex("cl0");
	fx.if_be0 = if_nametoindex("be0");
	if (!fx.if_lb0 || !fx.if_lb1 || !fx.if_cl0 || !fx.if_be0) {
		snprintf(why, why_len, "veth interfaces missing after setup");
		return SETUP_SKIP;
	}
	memcpy(fx.mac_lb0, MAC_LB0, 6);
	memcpy(fx.mac_lb1, MAC_LB1, 6);
	memcpy(fx.mac_cl0, MAC_CL0, 6);
	memcpy(fx.mac_be0, MAC_BE0, 6);
	return SETUP_OK;
}

static int bgs_setup(const struct bgs_sizes *sizes, char *why, size_t why_len)
{
	struct bgs_sizes sz = {};
	int err;

	/* The SYN-flood guard's derived default (a few thousand new entries per CPU per
	 * second for test-sized tables) would leave the flows of a fast test untracked: off
	 * unless the test sets a rate (test_flood does). */
	if (sizes)
		sz = *sizes;
	if (!sz.new_flow_rate)
		sz.new_flow_rate = UINT32_MAX;
	err = bgs_init(fx.pin_dir, &sz, &fx.h);
	if (err) {
		snprintf(why, why_len, "bgs_init(%s): %s (%s)", fx.pin_dir, strerror(-err),
			 bgs_errmsg());
		return SETUP_FAIL;
	}
	err = bgs_tx_port_add(fx.h, fx.if_lb0);
	if (!err)
		err = bgs_tx_port_add(fx.h, fx.if_lb1);
	if (err) {
		snprintf(why, why_len, "bgs_tx_port_add: %s (%s)", strerror(-err), bgs_errmsg());
		return SETUP_FAIL;
	}
	fx.entry_fd = bgs_entry_fd(fx.h);
	fx.ct_fd = bgs_map_fd(fx.h, "ct");
	fx.maglev_fd = bgs_map_fd(fx.h, "maglev");
	fx.backends_fd = bgs_map_fd(fx.h, "backends");
	fx.flip_fd = bgs_map_fd(fx.h, "flip");
	if (fx.entry_fd < 0 || fx.ct_fd < 0 || fx.maglev_fd < 0 || fx.backends_fd < 0 ||
	    fx.flip_fd < 0) {
		snprintf(why, why_len,
			 "entry program or maps missing after bgs_init (%d %d %d %d %d)",
			 fx.entry_fd, fx.ct_fd, fx.maglev_fd, fx.backends_fd, fx.flip_fd);
		return SETUP_FAIL;
	}
	bgs_get_meta(fx.h, &fx.meta);
	if (fx.meta.layout_version != BGS_LAYOUT_VERSION || !fx.meta.maglev_size ||
	    !fx.meta.max_backends) {
		snprintf(why, why_len, "bgs_get_meta: layout %u, maglev %u, backends %u",
			 fx.meta.layout_version, fx.meta.maglev_size, fx.meta.max_backends);
		return SETUP_FAIL;
	}
	fx.be = calloc(fx.meta.max_backends, sizeof(*fx.be));
	if (!fx.be) {
		snprintf(why, why_len, "out of memory");
		return SETUP_FAIL;
	}
	return SETUP_OK;
}

int fx_main(int argc, char **argv, const struct bgs_sizes *sizes, const struct test_case *tests,
	    int n, unsigned int watchdog_s)
{
	const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	struct sigaction sa = { .sa_handler = on_signal };
	char why[512] = "";
	int st, rc, slow;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() != 0)
		return test_skip_all(argv[0], tests, n,
				     "needs root (network namespaces, bpffs, BPF_PROG_TEST_RUN)");
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	atexit(fx_teardown);
	/* BGS_TEST_SLOWDOWN=N: a machine N times slower (an emulated VM) gets N times longer */
	slow = getenv("BGS_TEST_SLOWDOWN") ? atoi(getenv("BGS_TEST_SLOWDOWN")) : 1;
	alarm(watchdog_s * (unsigned int)(slow >= 1 && slow <= 100 ? slow : 1));

	st = ns_setup(why, sizeof(why));
	if (st == SETUP_OK)
		st = net_setup(why, sizeof(why));
	if (st == SETUP_OK)
		st = bgs_setup(sizes, why, sizeof(why));
	if (st == SETUP_SKIP)
		return test_skip_all(argv[0], tests, n, why);
	if (st == SETUP_FAIL) {
		printf("FAIL %s/setup: %s\n", base, why);
		return 1;
	}
	rc = test_run_all(argv[0], tests, n, argc, argv);
	fx_teardown();
	return rc;
}

/* ---- Services and backends ---- */

bool fx_svc_add(struct fx_svc *s, const char *name, __u8 family, int vip_n, __u16 port,
		__u8 proto, __u8 mode, __u16 preview_port)
{
	struct bgs_service_spec spec = {};

	memset(s, 0, sizeof(*s));
	s->family = family;
	s->proto = proto;
	s->mode = mode;
	s->port = port;
	s->preview_port = preview_port;
	fx_vip(family, vip_n, &s->vip);
	spec.name = name;
	spec.vip = s->vip;
	spec.port = port;
	spec.proto = proto;
	spec.mode = mode;
	spec.preview_port = preview_port;
	return ASSERT_OK(bgs_service_add(fx.h, &spec, &s->id), name);
}

bool fx_svc_del(struct fx_svc *s)
{
	__u32 i;

	for (i = 0; i < fx.meta.max_backends; i++)
		if (fx.be[i].in_use && fx.be[i].svc_id == s->id)
			fx.be[i].in_use = false;
	return ASSERT_OK(bgs_service_del(fx.h, s->id), "service delete");
}

bool fx_be_add(const struct fx_svc *s, __u32 color, int net, int n, __u16 port, __u32 weight,
	       __u32 *id)
{
	struct bgs_backend_spec spec = {};
	struct bgs_backend rec;
	struct fx_be b = {};
	char what[96];
	bool ok = true;

	fx_be_ip(s->family, net, n, &spec.addr);
	spec.port = port;
	spec.weight = weight;
	snprintf(what, sizeof(what), "backend add svc %u color %u net %d n %d", s->id, color, net,
		 n);
	if (!ASSERT_OK(bgs_backend_add(fx.h, s->id, color, &spec, id), what))
		return false;
	if (!ASSERT_GT(*id, 0, what) || !ASSERT_LT(*id, fx.meta.max_backends, what))
		return false;
	if (!ASSERT_OK(bgs_backend_get(fx.h, *id, &rec), what))
		return false;

	b.id = *id;
	b.svc_id = s->id;
	b.color = color;
	b.family = s->family;
	b.net = net;
	b.n = n;
	b.port = port ? port : s->port;
	b.ip = spec.addr;
	b.resolved = n < FX_UNRESOLVED_N;
	if (b.resolved) {
		fx_be_mac(s->family, net, n, b.mac);
		b.ifindex = net ? fx.if_lb1 : fx.if_lb0;
		memcpy(b.smac, net ? fx.mac_lb1 : fx.mac_lb0, 6);
	}
	b.in_use = true;

	/* the library's record must say what the topology says */
	ok &= ASSERT_TRUE(rec.flags & BGS_BE_IN_USE, what);
	ok &= ASSERT_EQ(rec.family, s->family, what);
	ok &= ASSERT_MEMEQ(rec.addr, b.ip.addr, 16, what);
	ok &= ASSERT_EQ(rec.port, htons(b.port), what);
	ok &= ASSERT_EQ(rec.color, color, what);
	ok &= ASSERT_EQ(rec.svc_id, s->id, what);
	ok &= ASSERT_EQ(rec.admin, BGS_ADMIN_UP, what);
	ok &= ASSERT_EQ(rec.health, BGS_HEALTH_UP, what);
	if (b.resolved) {
		ok &= ASSERT_TRUE(rec.flags & BGS_BE_NEXTHOP, what);
		ok &= ASSERT_EQ(rec.ifindex, b.ifindex, what);
		ok &= ASSERT_MEMEQ(rec.dmac, b.mac, 6, what);
		ok &= ASSERT_MEMEQ(rec.smac, b.smac, 6, what);
	} else {
		ok &= ASSERT_FALSE(rec.flags & BGS_BE_NEXTHOP, what);
	}
	fx.be[*id] = b;
	return ok;
}

bool fx_be_del(__u32 id)
{
	if (id < fx.meta.max_backends)
		fx.be[id].in_use = false;
	return ASSERT_OK(bgs_backend_del(fx.h, id), "backend delete");
}

bool fx_flip_get(const struct fx_svc *s, struct bgs_flip *f)
{
	struct bgs_service svc;

	return ASSERT_OK(bgs_service_get(fx.h, s->id, &svc, f), "service get");
}

__u32 fx_table_pick_word(const struct fx_svc *s, __u64 word, __u32 color,
			 const struct bgs_flow_key *key)
{
	__u32 m = fx.meta.maglev_size, h = bgs_hash_flow(key, fx.meta.maglev_seed), idx, id = 0;

	idx = (__u32)bgs_maglev_index(s->id, color, bgs_fw_slot(word, color), m, h % m);
	if (bpf_map_lookup_elem(fx.maglev_fd, &idx, &id))
		FAILF("maglev lookup of index %u: %s", idx, strerror(errno));
	return id;
}

__u32 fx_table_pick(const struct fx_svc *s, __u32 color, const struct bgs_flow_key *key)
{
	struct bgs_flip f;

	if (!fx_flip_get(s, &f))
		return 0;
	return fx_table_pick_word(s, f.word, color, key);
}

/* ---- Packets ---- */

void fx_client_pkt(struct pkt *p, const struct fx_svc *s, __u32 client, __u16 sport,
		   __u8 tcp_flags)
{
	memset(p, 0, sizeof(*p));
	memcpy(p->dmac, fx.mac_lb0, 6);
	memcpy(p->smac, fx.mac_cl0, 6);
	p->family = s->family;
	fx_client_ip(s->family, client, p->src);
	memcpy(p->dst, s->vip.addr, 16);
	p->proto = s->proto;
	p->ttl = 64;
	p->ip_id = sport;
	p->sport = sport;
	p->dport = s->port;
	if (s->proto == IPPROTO_TCP) {
		p->tcp_flags = tcp_flags;
		p->seq = 1000u + sport;
		p->ack_seq = (tcp_flags & PKT_ACK) ? 77777u : 0;
		p->window = 64240;
	}
	p->payload_len = 24;
	p->pay_seed = (__u8)sport;
}

int fx_run(const __u8 *in, __u32 len, __u32 ifindex, struct fx_out *out)
{
	struct xdp_md ctx = { .data_end = len, .ingress_ifindex = ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = len,
		    .data_out = out->data, .data_size_out = sizeof(out->data), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);
	int err;

	err = bpf_prog_test_run_opts(fx.entry_fd, &o);
	if (err)
		return err < 0 ? err : -errno;
	out->retval = o.retval;
	out->len = o.data_size_out;
	return 0;
}

int fx_run_pkt(const struct pkt *p, __u32 ifindex, struct fx_out *out)
{
	__u8 in[PKT_MAX];
	int len = pkt_build(p, in, sizeof(in));

	if (len < 0)
		return -EINVAL;
	return fx_run(in, (__u32)len, ifindex, out);
}

const char *fx_xdp_str(__u32 v)
{
	static const char *const names[] = { "XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX",
					     "XDP_REDIRECT" };

	return v < ARRAY_SIZE(names) ? names[v] : "XDP_?";
}

void fx_expected_fwd(const struct fx_svc *s, const struct pkt *p, __u32 be_id, struct pkt *exp,
		     __u32 *verdict)
{
	const struct fx_be *b = &fx.be[be_id];

	*exp = *p;
	if (!b->resolved) {
		if (s->mode == BGS_MODE_DSR) {
			*verdict = XDP_DROP;
			return;
		}
		/* the kernel forwards (and decrements the TTL) */
		memcpy(exp->dst, b->ip.addr, 16);
		exp->dport = b->port;
		*verdict = XDP_PASS;
		return;
	}
	if (s->mode == BGS_MODE_NAT) {
		memcpy(exp->dst, b->ip.addr, 16);
		exp->dport = b->port;
		exp->ttl = p->ttl - 1;
	}
	memcpy(exp->dmac, b->mac, 6);
	memcpy(exp->smac, b->smac, 6);
	*verdict = b->ifindex == fx.if_lb0 ? XDP_TX : XDP_REDIRECT;
}

static bool check_fwd(const struct fx_svc *s, const struct pkt *p, __u32 be_id,
		      const struct fx_out *o)
{
	__u8 eb[PKT_MAX];
	struct pkt exp;
	__u32 verdict;
	char what[64];
	int elen;

	fx_expected_fwd(s, p, be_id, &exp, &verdict);
	elen = pkt_build(&exp, eb, sizeof(eb));
	snprintf(what, sizeof(what), "forward to backend %u", be_id);
	if (o->retval != verdict) {
		FAILF("%s: verdict %s, expected %s", what, fx_xdp_str(o->retval),
		      fx_xdp_str(verdict));
		return false;
	}
	return pkt_expect_frame(what, o->data, o->len, eb, (size_t)elen, verdict != XDP_DROP);
}

bool fx_expect_fwd(const struct fx_svc *s, const struct pkt *p, __u32 be_id)
{
	struct fx_out o;
	int err;

	if (!ASSERT_TRUE(be_id && be_id < fx.meta.max_backends && fx.be[be_id].in_use,
			 "expected backend is one the test added"))
		return false;
	err = fx_run_pkt(p, fx.if_lb0, &o);
	if (!ASSERT_OK(err, "test run"))
		return false;
	return check_fwd(s, p, be_id, &o);
}

static __u32 find_backend(const struct fx_svc *s, const struct fx_out *o)
{
	struct pkt out;
	__u32 i;

	pkt_parse(o->data, o->len, &out, NULL, 0);
	for (i = 1; i < fx.meta.max_backends; i++) {
		const struct fx_be *b = &fx.be[i];

		if (!b->in_use || b->svc_id != s->id)
			continue;
		if (s->mode == BGS_MODE_NAT && !memcmp(out.dst, b->ip.addr, 16) &&
		    out.dport == b->port)
			return i;
		if (s->mode == BGS_MODE_DSR && b->resolved && !memcmp(out.dmac, b->mac, 6))
			return i;
	}
	return 0;
}

__u32 fx_send(const struct fx_svc *s, const struct pkt *p)
{
	char desc[256];
	struct fx_out o;
	__u32 id;
	int err;

	err = fx_run_pkt(p, fx.if_lb0, &o);
	if (!ASSERT_OK(err, "test run"))
		return 0;
	id = find_backend(s, &o);
	if (!id) {
		pkt_describe(o.data, o.len, desc, sizeof(desc));
		FAILF("output goes to none of the service's backends: %s, %s", fx_xdp_str(o.retval),
		      desc);
		return 0;
	}
	return check_fwd(s, p, id, &o) ? id : 0;
}

bool fx_expect_untouched(const struct pkt *p, __u32 ifindex, __u32 verdict, const char *what)
{
	__u8 in[PKT_MAX];
	struct fx_out o;
	int len, err;

	len = pkt_build(p, in, sizeof(in));
	if (!ASSERT_GE(len, 0, "build"))
		return false;
	err = fx_run(in, (__u32)len, ifindex, &o);
	if (!ASSERT_OK(err, "test run"))
		return false;
	if (o.retval != verdict) {
		FAILF("%s: verdict %s, expected %s", what, fx_xdp_str(o.retval),
		      fx_xdp_str(verdict));
		return false;
	}
	return pkt_expect_frame(what, o.data, o.len, in, (size_t)len, false);
}

/* ---- Conntrack and counters ---- */

bool fx_ct_get(const struct pkt *p, struct bgs_flow *f)
{
	struct bgs_flow_key k;

	pkt_flow_key(p, &k);
	return bpf_map_lookup_elem(fx.ct_fd, &k, f) == 0;
}

int fx_ct_delete(const struct pkt *p)
{
	struct bgs_flow_key k;

	pkt_flow_key(p, &k);
	return bpf_map_delete_elem(fx.ct_fd, &k) ? -errno : 0;
}

long fx_ct_count(void)
{
	struct bgs_flow_key k, next;
	void *prev = NULL;
	long n = 0;

	while (!bpf_map_get_next_key(fx.ct_fd, prev, &next)) {
		n++;
		k = next;
		prev = &k;
	}
	return n;
}

void fx_reasons(struct bgs_reason_counter c[BGS_R_MAX])
{
	int err = bgs_reason_counters(fx.h, c);

	if (err) {
		FAILF("bgs_reason_counters: %s (%s)", strerror(-err), bgs_errmsg());
		memset(c, 0, sizeof(*c) * BGS_R_MAX);
	}
}

bool fx_expect_reason(const struct bgs_reason_counter *before, enum bgs_reason reason,
		      __u64 packets, __u64 bytes)
{
	struct bgs_reason_counter now[BGS_R_MAX];
	bool ok = true;
	int r;

	fx_reasons(now);
	for (r = 0; r < BGS_R_MAX; r++) {
		__u64 dp = now[r].packets - before[r].packets, db = now[r].bytes - before[r].bytes;
		__u64 ep = r == (int)reason ? packets : 0, eb = r == (int)reason ? bytes : 0;

		if (dp != ep || db != eb) {
			FAILF("counter %s went up by %llu packets / %llu bytes, expected %llu / "
			      "%llu", bgs_reason_name(r), (unsigned long long)dp,
			      (unsigned long long)db, (unsigned long long)ep,
			      (unsigned long long)eb);
			ok = false;
		}
	}
	return ok;
}

/* ---- Flows ---- */

bool fx_flow_check_ct(const struct fx_svc *s, const struct pkt *p, __u32 be_id, __u32 color,
		      __u32 gen)
{
	struct bgs_backend rec;
	struct bgs_flow f;
	bool ok = true;

	if (!fx_ct_get(p, &f)) {
		FAILF("flow %u -> backend %u: no conntrack entry", p->sport, be_id);
		return false;
	}
	ok &= ASSERT_EQ(f.backend_id, be_id, "ct backend");
	ok &= ASSERT_EQ(f.color, color, "ct color");
	ok &= ASSERT_EQ(f.svc_id, s->id, "ct service");
	if (gen != FX_ANY_GEN)
		ok &= ASSERT_EQ(f.gen, gen, "ct generation");
	if (ASSERT_OK(bgs_backend_get(fx.h, be_id, &rec), "backend get"))
		ok &= ASSERT_EQ(f.incarnation, rec.incarnation, "ct incarnation");
	ok &= ASSERT_EQ(f.rev_ifindex, fx.if_lb0, "ct reverse ifindex");
	ok &= ASSERT_MEMEQ(f.rev_dmac, p->smac, 6, "ct reverse dst MAC (client's)");
	ok &= ASSERT_MEMEQ(f.rev_smac, p->dmac, 6, "ct reverse src MAC (ours)");
	return ok;
}

bool fx_flow_new(const struct fx_svc *s, __u32 client, __u16 sport, __u32 color, __u32 *be_id)
{
	struct bgs_flow_key k;
	struct bgs_flip fl;
	struct pkt p;
	__u32 id;

	fx_client_pkt(&p, s, client, sport, PKT_SYN);
	pkt_flow_key(&p, &k);
	if (!fx_flip_get(s, &fl))
		return false;
	id = fx_table_pick_word(s, fl.word, color, &k);
	if (!ASSERT_NEQ(id, 0, "table of the expected color has a backend"))
		return false;
	if (!ASSERT_EQ(fx.be[id].color, color, "table entry belongs to the color"))
		return false;
	if (!fx_expect_fwd(s, &p, id))
		return false;
	if (be_id)
		*be_id = id;
	return fx_flow_check_ct(s, &p, id, color, bgs_fw_gen(fl.word));
}

bool fx_midflow(const struct fx_svc *s, __u32 client, __u16 sport, __u32 color, __u32 *be_id)
{
	struct bgs_flow_key k;
	struct pkt p;
	__u32 id;

	fx_client_pkt(&p, s, client, sport, PKT_ACK);
	pkt_flow_key(&p, &k);
	id = fx_table_pick(s, color, &k);
	if (be_id)
		*be_id = id;
	return ASSERT_NEQ(id, 0, "table of the expected color has a backend") &&
	       ASSERT_EQ(fx.be[id].color, color, "table color") && fx_expect_fwd(s, &p, id);
}

bool fx_pin_cpu0(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(0, &set);
	return ASSERT_OK(sched_setaffinity(0, sizeof(set), &set) ? -errno : 0, "pin to CPU 0");
}

bool fx_flow_next(const struct fx_svc *s, __u32 client, __u16 sport, __u32 be_id)
{
	struct pkt p;

	fx_client_pkt(&p, s, client, sport, PKT_ACK);
	return fx_expect_fwd(s, &p, be_id);
}

/* ---- nat replies ---- */

void fx_reply_pkt(struct pkt *r, const struct pkt *c, __u32 be_id, __u8 tcp_flags)
{
	const struct fx_be *b = &fx.be[be_id];

	memset(r, 0, sizeof(*r));
	memcpy(r->dmac, b->smac, 6);
	memcpy(r->smac, b->mac, 6);
	r->family = c->family;
	memcpy(r->src, b->ip.addr, 16);
	memcpy(r->dst, c->src, 16);
	r->proto = c->proto;
	r->ttl = 64;
	r->ip_id = 4243;
	r->sport = b->port;
	r->dport = c->sport;
	if (c->proto == IPPROTO_TCP) {
		r->tcp_flags = tcp_flags;
		r->seq = 700000;
		r->ack_seq = c->seq + 1;
		r->window = 1024;
	}
	r->payload_len = 40;
	r->pay_seed = 0x3c;
	r->udp_csum_zero = c->udp_csum_zero;
}

void fx_expected_reply(const struct fx_svc *s, const struct pkt *c, const struct pkt *r,
		       __u16 vip_port, struct pkt *exp)
{
	*exp = *r;
	memcpy(exp->src, s->vip.addr, 16);
	exp->sport = vip_port;
	exp->ttl = r->ttl - 1;
	memcpy(exp->dmac, c->smac, 6);
	memcpy(exp->smac, c->dmac, 6);
}

void fx_expected_reply_kernel(const struct fx_svc *s, const struct pkt *c, const struct pkt *r,
			      __u16 vip_port, struct pkt *exp)
{
	fx_expected_reply(s, c, r, vip_port, exp);
	exp->ttl = r->ttl;
	memcpy(exp->dmac, r->dmac, 6);
	memcpy(exp->smac, r->smac, 6);
}

bool fx_expect_reply(const struct pkt *r, __u32 ifindex, __u32 verdict, enum bgs_reason reason,
		     const struct pkt *exp, const char *what)
{
	struct bgs_reason_counter before[BGS_R_MAX];
	__u8 in[PKT_MAX], eb[PKT_MAX];
	struct fx_out o;
	int len, elen;
	bool ok;

	len = pkt_build(r, in, sizeof(in));
	elen = pkt_build(exp ? exp : r, eb, sizeof(eb));
	if (!ASSERT_GT(len, 0, "reply built") || !ASSERT_GT(elen, 0, "expected built"))
		return false;
	fx_reasons(before);
	if (!ASSERT_OK(fx_run(in, (__u32)len, ifindex, &o), "test run"))
		return false;
	if (o.retval != verdict) {
		FAILF("%s: verdict %s, expected %s", what, fx_xdp_str(o.retval),
		      fx_xdp_str(verdict));
		return false;
	}
	ok = fx_expect_reason(before, reason, 1, (__u64)len);
	if (verdict != XDP_DROP)
		ok &= pkt_expect_frame(what, o.data, o.len, eb, (size_t)elen, true);
	return ok;
}

bool fx_age_flow(const struct pkt *p, __u64 by_jiffies)
{
	struct bgs_flow_key k;
	struct bgs_flow f;

	pkt_flow_key(p, &k);
	if (!ASSERT_OK(bpf_map_lookup_elem(fx.ct_fd, &k, &f) ? -errno : 0, "ct lookup"))
		return false;
	f.last_seen -= by_jiffies;
	return ASSERT_OK(bpf_map_update_elem(fx.ct_fd, &k, &f, BPF_EXIST) ? -errno : 0,
			 "ct update");
}
