// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bench/fwd_bench: the forwarding benchmark's driver (bench/fwd.sh runs it).
 *
 *   fwd_bench load PIN_DIR [--tx IFACE]... [--min SPEC]...
 *       In the LB's namespace: loads bench/fwd.bpf.c, puts each --tx interface in the
 *       devmap (slot = order given), gives the minimal program its services, pins the
 *       programs under PIN_DIR/prog/ (fwd_gen, fwd_count, fwd_min) and the maps under
 *       PIN_DIR/map/. SPEC: VIP,PORT,tcp|udp,BACKEND,BEPORT,BEMAC,SLOT.
 *
 *   fwd_bench run PIN_DIR --netns PATH --ifname IFACE --frame v4tcp|v4udp|v6tcp|v6udp
 *                 --src ADDR --dst ADDR --dport PORT --smac MAC --dmac MAC
 *                 [--flows N] [--new-every K] [--warmup S] [--seconds S] [--cpu N]
 *                 [--bins FILE] [--syn-log FILE] [--napi-pid PID] [--at SECONDS CMD]...
 *       Generates traffic with BPF_PROG_TEST_RUN in live-frames mode (fwd_gen, XDP_TX out
 *       of IFACE in the namespace PATH, from a thread pinned to CPU N) for warmup + seconds;
 *       counts what the backends' fwd_count saw over the last `seconds`; runs each --at
 *       command (sh -c) at its time since the start of the measurement and reports when it
 *       returned (CLOCK_MONOTONIC, the programs' clock). This thread and the commands run on
 *       the generator's CPU. With --napi-pid, the CPU time that thread (the LB's receive
 *       side) used over the measurement (/proc/PID/schedstat), and the packets delivered
 *       per second of it: the LB core's rate whatever share of the core it was given.
 *       Prints one JSON object.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>

#include "fwd.h"
#include "fwd.skel.h"
#include "pkt.h"

#define MAX_AT 8


static __u64 mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int parse_mac(const char *s, __u8 mac[6])
{
	unsigned int m[6];
	int i;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6)
		return -EINVAL;
	for (i = 0; i < 6; i++)
		mac[i] = (__u8)m[i];
	return 0;
}

static int iface_mac(const char *ifname, __u8 mac[6])
{
	char path[128], buf[32];
	FILE *f;
	int err = -ENOENT;

	snprintf(path, sizeof(path), "/sys/class/net/%s/address", ifname);
	f = fopen(path, "r");
	if (f && fgets(buf, sizeof(buf), f))
		err = parse_mac(buf, mac);
	if (f)
		fclose(f);
	return err;
}

/* VIP,PORT,tcp|udp,BACKEND,BEPORT,BEMAC,SLOT -> one fwd_min_svc entry. */
static int min_spec(const char *spec, struct fwd_min_key *k, struct fwd_min_val *v,
		    char ifs[][IF_NAMESIZE], int n_if)
{
	char vip[64], proto[8], be[64], mac[32];
	unsigned int port, beport, slot;
	__u8 fam;

	memset(k, 0, sizeof(*k));
	memset(v, 0, sizeof(*v));
	if (sscanf(spec, "%63[^,],%u,%7[^,],%63[^,],%u,%31[^,],%u", vip, &port, proto, be, &beport,
		   mac, &slot) != 7 || (int)slot >= n_if || parse_mac(mac, v->dmac) ||
	    iface_mac(ifs[slot], v->smac)) {
		fprintf(stderr, "fwd_bench: bad --min %s\n", spec);
		return -EINVAL;
	}
	fam = strchr(vip, ':') ? BGS_AF_INET6 : BGS_AF_INET;
	pkt_addr(fam, vip, k->addr);
	pkt_addr(fam, be, v->addr);
	k->family = fam == BGS_AF_INET ? 4 : 6;
	k->port = htons(port);
	k->proto = strcmp(proto, "udp") ? IPPROTO_TCP : IPPROTO_UDP;
	v->port = htons(beport);
	v->slot = slot;
	return 0;
}

static int cmd_load(int argc, char **argv)
{
	char ifs[16][IF_NAMESIZE], path[512];
	const char *mins[16];
	int n_if = 0, n_min = 0, i, err;
	struct fwd *skel;

	if (argc < 1)
		return 2;
	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--tx") && n_if < 16)
			snprintf(ifs[n_if++], IF_NAMESIZE, "%s", argv[i + 1]);
		else if (!strcmp(argv[i], "--min") && n_min < 16)
			mins[n_min++] = argv[i + 1];
		else
			return 2;
	}
	skel = fwd__open_and_load();
	if (!skel) {
		fprintf(stderr, "fwd_bench: cannot load fwd.bpf.o: %s\n", strerror(errno));
		return 1;
	}
	for (i = 0; i < n_if; i++) {
		__u32 slot = i, ifindex = if_nametoindex(ifs[i]);

		if (!ifindex || bpf_map_update_elem(bpf_map__fd(skel->maps.fwd_tx), &slot, &ifindex, 0)) {
			fprintf(stderr, "fwd_bench: devmap slot %d (%s): %s\n", i, ifs[i],
				strerror(errno));
			err = 1;
			goto out;
		}
	}
	for (i = 0; i < n_min; i++) {
		struct fwd_min_key k;
		struct fwd_min_val v;

		if (min_spec(mins[i], &k, &v, ifs, n_if) ||
		    bpf_map_update_elem(bpf_map__fd(skel->maps.fwd_min_svc), &k, &v, 0)) {
			err = 1;
			goto out;
		}
	}
	snprintf(path, sizeof(path), "%s/map", argv[0]);
	err = bpf_object__pin_maps(skel->obj, path);
	snprintf(path, sizeof(path), "%s/prog", argv[0]);
	if (!err)
		err = bpf_object__pin_programs(skel->obj, path);
	if (err)
		fprintf(stderr, "fwd_bench: pin under %s: %s\n", argv[0], strerror(-err));
out:
	fwd__destroy(skel);
	return err ? 1 : 0;
}

/* The run's state, shared with the generator thread. */
struct gen {
	int prog_fd;
	int netns_fd;
	const char *ifname;
	int cpu;
	__u8 frame[FWD_FRAME_MAX];
	__u32 len;
	atomic_bool stop;
	atomic_ullong sent;
	int err;
};

static void *gen_thread(void *arg)
{
	struct gen *g = arg;
	struct xdp_md ctx = {};
	sigset_t all;
	cpu_set_t set;

	/* signals (SIGCHLD of the --at commands) go to the main thread, not into test_run */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	CPU_ZERO(&set);
	CPU_SET(g->cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	if (setns(g->netns_fd, CLONE_NEWNET)) {
		g->err = -errno;
		return NULL;
	}
	ctx.data_end = g->len; /* the kernel wants the frame length here */
	ctx.ingress_ifindex = if_nametoindex(g->ifname);
	if (!ctx.ingress_ifindex) {
		g->err = -ENODEV;
		return NULL;
	}
	while (!atomic_load(&g->stop)) {
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = g->frame, .data_size_in = g->len,
			    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
			    .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .repeat = 1 << 16,
			    .batch_size = 64);
		int err = bpf_prog_test_run_opts(g->prog_fd, &o);

		if (err == -EINTR)
			continue;
		if (err) {
			g->err = err;
			return NULL;
		}
		atomic_fetch_add(&g->sent, 1 << 16);
	}
	return NULL;
}

static int pinned(const char *dir, const char *kind, const char *name)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s/%s", dir, kind, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		fprintf(stderr, "fwd_bench: %s: %s (run fwd_bench load first)\n", path,
			strerror(errno));
	return fd;
}

static int read_counts(int fd, int ncpus, struct fwd_counts *sum)
{
	struct fwd_counts *pc = calloc(ncpus, sizeof(*pc));
	__u32 zero = 0;
	int c, b, k;

	if (!pc || bpf_map_lookup_elem(fd, &zero, pc)) {
		free(pc);
		return -errno;
	}
	memset(sum, 0, sizeof(*sum));
	for (c = 0; c < ncpus; c++) {
		for (b = 0; b < FWD_MAX_BE; b++)
			for (k = 0; k < FWD_KINDS; k++)
				sum->pkts[b][k] += pc[c].pkts[b][k];
		sum->misrouted += pc[c].misrouted;
		sum->syn_log_lost += pc[c].syn_log_lost;
	}
	free(pc);
	return 0;
}

static int clear_map(int fd, __u32 n, size_t val_size)
{
	void *zero = calloc(1, val_size);
	__u32 i;
	int err = 0;

	for (i = 0; i < n && !err; i++)
		err = bpf_map_update_elem(fd, &i, zero, 0);
	free(zero);
	return err;
}

static int clear_hash(int fd)
{
	__u64 k, next;
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		k = next;
		bpf_map_delete_elem(fd, &k);
		prev = NULL;
	}
	return 0;
}

/* Frame templates for one run: n established flows (ACK or UDP), then the SYN. */
static int make_templates(int fd, struct fwd_gen_cfg *cfg, const char *frame, const char *src,
			  const char *dst, unsigned int dport, const __u8 smac[6],
			  const __u8 dmac[6], __u32 n)
{
	static const __u8 zeros[64];
	bool v6 = frame[1] == '6', udp = strstr(frame, "udp") != NULL;
	__u32 hdr = 14 + (v6 ? 40 : 20) + (udp ? 8 : 20), i;
	struct fwd_tpl t;
	struct pkt p;

	memset(cfg, 0, sizeof(*cfg));
	cfg->len = v6 ? 84 : 64;
	cfg->n_est = n;
	cfg->ts_off = hdr;
	cfg->ip_csum_off = v6 ? 0 : 14 + 10;
	cfg->saddr_lo_off = v6 ? 14 + 8 + 14 : 14 + 12 + 2;
	cfg->sport_off = 14 + (v6 ? 40 : 20);
	cfg->l4_csum_off = cfg->sport_off + (udp ? 6 : 16);
	cfg->udp = udp;
	for (i = 0; i <= n; i++) {
		memset(&p, 0, sizeof(p));
		memcpy(p.dmac, dmac, 6);
		memcpy(p.smac, smac, 6);
		p.family = v6 ? BGS_AF_INET6 : BGS_AF_INET;
		pkt_addr(p.family, src, p.src);
		pkt_addr(p.family, dst, p.dst);
		p.proto = udp ? IPPROTO_UDP : IPPROTO_TCP;
		p.ttl = 64;
		p.sport = (__u16)(20000 + i);
		p.dport = (__u16)dport;
		p.tcp_flags = i == n ? PKT_SYN : PKT_ACK | PKT_PSH;
		p.seq = 1000 + i;
		p.ack_seq = i == n ? 0 : 5000;
		p.window = 512;
		p.payload = zeros;
		p.payload_len = (__u16)(cfg->len - hdr);
		memset(&t, 0, sizeof(t));
		if (pkt_build(&p, t.data, sizeof(t.data)) != (int)cfg->len)
			return -EINVAL;
		if (bpf_map_update_elem(fd, &i, &t, 0))
			return -errno;
	}
	return 0;
}

struct syn_log {
	FILE *f;
	__u64 n;
};

static int on_syn(void *ctx, void *data, size_t len)
{
	struct syn_log *l = ctx;
	const struct fwd_syn_rec *r = data;

	if (len < sizeof(*r))
		return 0;
	l->n++;
	if (l->f)
		fprintf(l->f, "%llu,%llu,%u\n", (unsigned long long)r->gen_ns,
			(unsigned long long)r->arr_ns, r->be);
	return 0;
}

static void sleep_until(__u64 t, struct ring_buffer *rb)
{
	__u64 now;

	while ((now = mono_ns()) < t) {
		__u64 d = t - now;

		if (rb) {
			ring_buffer__poll(rb, d > 50000000 ? 50 : (int)(d / 1000000));
		} else {
			struct timespec ts = { .tv_sec = d / 1000000000ULL,
					       .tv_nsec = d % 1000000000ULL };
			nanosleep(&ts, NULL);
		}
	}
}

/* A thread's time on a CPU so far, ns (0 if unknown). */
static __u64 task_cpu_ns(int pid)
{
	unsigned long long ns = 0;
	char path[64];
	FILE *f;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/schedstat", pid);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%llu", &ns) != 1)
			ns = 0;
		fclose(f);
	}
	return ns;
}

static int run_cmd(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int cmd_run(int argc, char **argv)
{
	const char *netns = NULL, *frame = "v4tcp", *src = NULL, *dst = NULL, *bins_out = NULL;
	const char *syn_out = NULL, *at_cmd[MAX_AT];
	double warmup = 1, seconds = 3, at_t[MAX_AT];
	unsigned int dport = 80, flows = 256, new_every = 0;
	int ncpus = libbpf_num_possible_cpus(), n_at = 0, i, b, k, err = 1, napi_pid = 0;
	__u64 napi0, napi1;
	int cfg_fd, tpl_fd, cnt_fd, bins_fd, fb_fd, log_fd;
	__u8 smac[6] = {}, dmac[6] = {};
	struct fwd_counts c0, c1;
	struct fwd_gen_cfg cfg;
	struct syn_log log = {};
	struct ring_buffer *rb = NULL;
	__u64 t_start, t0, t1, at_ret[MAX_AT], at_start[MAX_AT];
	int at_rc[MAX_AT];
	struct gen g = { .cpu = 0 };
	pthread_t th;
	json_object *j, *jb, *ja;
	__u32 zero = 0;

	for (i = 1; i + 1 < argc; i += 2) {
		const char *o = argv[i], *v = argv[i + 1];

		if (!strcmp(o, "--netns"))
			netns = v;
		else if (!strcmp(o, "--ifname"))
			g.ifname = v;
		else if (!strcmp(o, "--frame"))
			frame = v;
		else if (!strcmp(o, "--src"))
			src = v;
		else if (!strcmp(o, "--dst"))
			dst = v;
		else if (!strcmp(o, "--dport"))
			dport = (unsigned int)atoi(v);
		else if (!strcmp(o, "--smac") && !parse_mac(v, smac))
			;
		else if (!strcmp(o, "--dmac") && !parse_mac(v, dmac))
			;
		else if (!strcmp(o, "--flows"))
			flows = (unsigned int)atoi(v);
		else if (!strcmp(o, "--new-every"))
			new_every = (unsigned int)atoi(v);
		else if (!strcmp(o, "--warmup"))
			warmup = atof(v);
		else if (!strcmp(o, "--seconds"))
			seconds = atof(v);
		else if (!strcmp(o, "--cpu"))
			g.cpu = atoi(v);
		else if (!strcmp(o, "--bins"))
			bins_out = v;
		else if (!strcmp(o, "--syn-log"))
			syn_out = v;
		else if (!strcmp(o, "--napi-pid"))
			napi_pid = atoi(v);
		else if (!strcmp(o, "--at") && i + 2 < argc && n_at < MAX_AT) {
			at_t[n_at] = atof(v);
			at_cmd[n_at++] = argv[i + 2];
			i++;
		} else {
			fprintf(stderr, "fwd_bench run: bad option %s %s\n", o, v);
			return 2;
		}
	}
	if (!netns || !g.ifname || !src || !dst || !flows || flows > FWD_MAX_FLOWS ||
	    (frame[0] != 'v' || (frame[1] != '4' && frame[1] != '6'))) {
		fprintf(stderr, "fwd_bench run: needs --netns, --ifname, --src, --dst; "
				"--flows 1..%d\n", FWD_MAX_FLOWS);
		return 2;
	}
	g.netns_fd = open(netns, O_RDONLY | O_CLOEXEC);
	if (g.netns_fd < 0) {
		fprintf(stderr, "fwd_bench: %s: %s\n", netns, strerror(errno));
		return 1;
	}
	g.prog_fd = pinned(argv[0], "prog", "fwd_gen");
	cfg_fd = pinned(argv[0], "map", "fwd_cfg");
	tpl_fd = pinned(argv[0], "map", "fwd_tpl");
	cnt_fd = pinned(argv[0], "map", "fwd_counts");
	bins_fd = pinned(argv[0], "map", "fwd_bins");
	fb_fd = pinned(argv[0], "map", "fwd_flow_be");
	log_fd = pinned(argv[0], "map", "fwd_syn_log");
	if (g.prog_fd < 0 || cfg_fd < 0 || tpl_fd < 0 || cnt_fd < 0 || bins_fd < 0 || fb_fd < 0 ||
	    log_fd < 0)
		return 1;
	if (make_templates(tpl_fd, &cfg, frame, src, dst, dport, smac, dmac, flows)) {
		fprintf(stderr, "fwd_bench: cannot build the frames of %s\n", frame);
		return 1;
	}
	cfg.new_every = new_every;
	g.len = cfg.len;
	if (bpf_map_lookup_elem(tpl_fd, &zero, &g.frame)) /* data_in: the first template */
		return 1;
	if (clear_map(cnt_fd, 1, sizeof(struct fwd_counts) * ncpus) ||
	    (bins_out && clear_map(bins_fd, FWD_MAX_BE * FWD_KINDS * FWD_NBINS,
				   sizeof(__u64) * ncpus)) ||
	    clear_hash(fb_fd)) {
		fprintf(stderr, "fwd_bench: cannot clear the counters: %s\n", strerror(errno));
		return 1;
	}
	if (syn_out) {
		log.f = fopen(syn_out, "w");
		rb = ring_buffer__new(log_fd, on_syn, &log, NULL);
		if (!log.f || !rb) {
			fprintf(stderr, "fwd_bench: syn log %s: %s\n", syn_out, strerror(errno));
			return 1;
		}
		/* records left from an earlier run are dropped */
		{
			FILE *f = log.f;

			log.f = NULL;
			ring_buffer__consume(rb);
			log.f = f;
			log.n = 0;
		}
		fprintf(log.f, "gen_ns,arr_ns,backend\n");
	}

	/* this thread and the --at commands share the generator's CPU: the LB's is left alone */
	{
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(g.cpu, &set);
		sched_setaffinity(0, sizeof(set), &set);
	}
	t_start = mono_ns();
	cfg.bin_t0 = bins_out ? t_start : 0;
	cfg.log_syn = syn_out != NULL;
	if (bpf_map_update_elem(cfg_fd, &zero, &cfg, 0))
		return 1;
	if (pthread_create(&th, NULL, gen_thread, &g))
		return 1;
	sleep_until(t_start + (__u64)(warmup * 1e9), rb);
	t0 = mono_ns();
	read_counts(cnt_fd, ncpus, &c0);
	napi0 = task_cpu_ns(napi_pid);
	for (i = 0; i < n_at; i++) {
		sleep_until(t0 + (__u64)(at_t[i] * 1e9), rb);
		at_start[i] = mono_ns();
		at_rc[i] = run_cmd(at_cmd[i]);
		at_ret[i] = mono_ns();
	}
	sleep_until(t0 + (__u64)(seconds * 1e9), rb);
	t1 = mono_ns();
	read_counts(cnt_fd, ncpus, &c1);
	napi1 = task_cpu_ns(napi_pid);
	atomic_store(&g.stop, true);
	pthread_join(th, NULL);
	if (g.err) {
		fprintf(stderr, "fwd_bench: generator: %s\n", strerror(-g.err));
		goto out;
	}
	/* let what is in flight arrive, then read the rest of the log */
	usleep(100000);
	if (rb)
		ring_buffer__consume(rb);
	cfg.log_syn = 0;
	cfg.bin_t0 = 0;
	bpf_map_update_elem(cfg_fd, &zero, &cfg, 0);

	j = json_object_new_object();
	jb = json_object_new_array();
	{
		__u64 total = 0, syn = 0;

		for (b = 0; b < FWD_MAX_BE; b++) {
			json_object *e = json_object_new_array();

			for (k = 0; k < FWD_KINDS; k++) {
				__u64 d = c1.pkts[b][k] - c0.pkts[b][k];

				json_object_array_add(e, json_object_new_uint64(d));
				total += d;
				if (k)
					syn += d;
			}
			json_object_array_add(jb, e);
		}
		json_object_object_add(j, "frame", json_object_new_string(frame));
		json_object_object_add(j, "seconds", json_object_new_double((t1 - t0) / 1e9));
		json_object_object_add(j, "pps", json_object_new_double(total / ((t1 - t0) / 1e9)));
		json_object_object_add(j, "delivered", json_object_new_uint64(total));
		json_object_object_add(j, "syn_delivered", json_object_new_uint64(syn));
		json_object_object_add(j, "lb_cpu_ms", json_object_new_double((napi1 - napi0) / 1e6));
		json_object_object_add(j, "pps_per_lb_cpu",
				       json_object_new_double(napi1 > napi0 ?
							      total / ((napi1 - napi0) / 1e9) : 0));
	}
	json_object_object_add(j, "per_backend", jb);
	json_object_object_add(j, "offered_pps",
			       json_object_new_double(atomic_load(&g.sent) /
						      ((mono_ns() - t_start) / 1e9)));
	json_object_object_add(j, "misrouted", json_object_new_uint64(c1.misrouted));
	json_object_object_add(j, "syn_log_lost", json_object_new_uint64(c1.syn_log_lost));
	json_object_object_add(j, "syn_logged", json_object_new_uint64(log.n));
	json_object_object_add(j, "t_start_ns", json_object_new_uint64(t_start));
	json_object_object_add(j, "t0_ns", json_object_new_uint64(t0));
	ja = json_object_new_array();
	for (i = 0; i < n_at; i++) {
		json_object *e = json_object_new_object();

		json_object_object_add(e, "cmd", json_object_new_string(at_cmd[i]));
		json_object_object_add(e, "start_ns", json_object_new_uint64(at_start[i]));
		json_object_object_add(e, "return_ns", json_object_new_uint64(at_ret[i]));
		json_object_object_add(e, "rc", json_object_new_int(at_rc[i]));
		json_object_array_add(ja, e);
	}
	json_object_object_add(j, "at", ja);
	printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
	json_object_put(j);

	if (bins_out) {
		__u64 *v = calloc(ncpus, sizeof(*v));
		FILE *f = fopen(bins_out, "w");
		__u32 idx, bin, last = (__u32)((t1 - t_start) / FWD_BIN_NS) + 1;

		if (!v || !f) {
			fprintf(stderr, "fwd_bench: %s: %s\n", bins_out, strerror(errno));
			goto out;
		}
		fprintf(f, "t_ms");
		for (b = 0; b < FWD_MAX_BE; b++)
			fprintf(f, ",be%d_est,be%d_new", b, b);
		fprintf(f, "\n");
		for (bin = 0; bin < last && bin < FWD_NBINS; bin++) {
			fprintf(f, "%u", bin * 10);
			for (b = 0; b < FWD_MAX_BE; b++) {
				for (k = 0; k < FWD_KINDS; k++) {
					__u64 s = 0;
					int c;

					idx = (b * FWD_KINDS + k) * FWD_NBINS + bin;
					if (!bpf_map_lookup_elem(bins_fd, &idx, v))
						for (c = 0; c < ncpus; c++)
							s += v[c];
					fprintf(f, ",%llu", (unsigned long long)s);
				}
			}
			fprintf(f, "\n");
		}
		fclose(f);
		free(v);
	}
	err = 0;
out:
	if (rb)
		ring_buffer__free(rb);
	if (log.f)
		fclose(log.f);
	return err;
}

int main(int argc, char **argv)
{
	int rc = 2;

	signal(SIGPIPE, SIG_IGN);
	if (argc >= 3 && !strcmp(argv[1], "load"))
		rc = cmd_load(argc - 2, argv + 2);
	else if (argc >= 3 && !strcmp(argv[1], "run"))
		rc = cmd_run(argc - 2, argv + 2);
	if (rc == 2)
		fprintf(stderr, "usage: fwd_bench load PIN_DIR [--tx IFACE]... [--min SPEC]...\n"
				"       fwd_bench run PIN_DIR --netns PATH --ifname IFACE ... "
				"(see bench/fwd_bench.c)\n");
	return rc;
}
