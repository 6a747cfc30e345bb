// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * ct_churn: what an attacker's conntrack churn does to established flows, and what an
 * insert costs, for three map layouts of the same size (bench/ct_churn.bpf.c): one LRU
 * shared by all CPUs, an LRU with a list per CPU (BPF_F_NO_COMMON_LRU), and one LRU per
 * CPU (Katran's array of maps, each a 1/ncpus share).
 *
 * Per layout and scenario, on fresh maps of S entries: CPU A inserts E = S/4 established
 * flows; then the attacker inserts S distinct flows (one full turnover) in 8 batches, from
 * CPU B (another RX queue) or from CPU A (the same queue); before each batch CPU A looks up
 * every established flow ("active" flows: traffic marks them referenced) or not ("idle").
 * Reported: established flows still in the table, and the attacker's ns per insert.
 *
 * Usage: ct_churn [--entries S] [--cpus A,B] [--md FILE]. Needs root and 2 CPUs.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bgswitch.h"
#include "ct_churn.skel.h"

static const char *const vname[] = { "one LRU, common list (today)",
				     "one LRU, BPF_F_NO_COMMON_LRU",
				     "one LRU per CPU (array of maps)" };

static int pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Runs `count` ops on the current map from cpu; returns hits (lookups) and ns per op. */
static int run(struct ct_churn *sk, int cpu, __u32 op, __u32 base, __u32 count, __u64 *hits,
	       double *ns_per)
{
	__u8 pkt[64] = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = sizeof(pkt),
		    .repeat = 1);
	double t0;
	__u32 left = count, chunk;

	if (pin(cpu))
		return -errno;
	*hits = 0;
	t0 = now_ns();
	while (left) {
		chunk = left > (1u << 22) ? (1u << 22) : left;
		sk->bss->op = op;
		sk->bss->base = base + (count - left);
		sk->bss->count = chunk;
		if (bpf_prog_test_run_opts(bpf_program__fd(sk->progs.churn), &o))
			return -errno;
		if (sk->bss->fails && op == 0) {
			fprintf(stderr, "ct_churn: %llu inserts failed\n",
				(unsigned long long)sk->bss->fails);
		}
		*hits += sk->bss->hits;
		left -= chunk;
	}
	if (ns_per)
		*ns_per = (now_ns() - t0) / count;
	return 0;
}

static struct ct_churn *open_variant(int v, __u32 s, int ncpu)
{
	struct ct_churn *sk = ct_churn__open();
	int err, i, fd;

	if (!sk)
		return NULL;
	bpf_map__set_max_entries(sk->maps.ct_common, v == 0 ? s : 16);
	bpf_map__set_max_entries(sk->maps.ct_nocommon, v == 1 ? s : 16u * (__u32)ncpu);
	bpf_map__set_max_entries(sk->maps.ct_percpu, (__u32)ncpu);
	bpf_map__set_max_entries(sk->maps.ct_inner, v == 2 ? s / ncpu : 16);
	sk->bss->variant = (__u32)v;
	err = ct_churn__load(sk);
	if (err) {
		ct_churn__destroy(sk);
		errno = -err;
		return NULL;
	}
	for (i = 0; i < ncpu; i++) {
		fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "ct_cpu", sizeof(struct bgs_flow_key),
				    sizeof(struct bgs_flow), v == 2 ? s / ncpu : 16, NULL);
		if (fd < 0 || bpf_map_update_elem(bpf_map__fd(sk->maps.ct_percpu), &i, &fd, 0)) {
			ct_churn__destroy(sk);
			return NULL;
		}
		close(fd); /* the outer map holds it */
	}
	return sk;
}

#define EST_BASE 0x0b000000u
#define ATK_BASE 0x0c000000u

struct result {
	double survived_pct;
	double atk_ns;
};

static int scenario(int v, __u32 s, int ncpu, int cpu_a, int cpu_atk, int active,
		    struct result *r)
{
	struct ct_churn *sk = open_variant(v, s, ncpu);
	__u32 e = s / 4, b;
	__u64 hits, total_ns = 0;
	double ns;
	int err;

	if (!sk)
		return -errno;
	err = run(sk, cpu_a, 0, EST_BASE, e, &hits, NULL);
	for (b = 0; !err && b < 8; b++) {
		if (active)
			err = run(sk, cpu_a, 1, EST_BASE, e, &hits, NULL);
		if (!err)
			err = run(sk, cpu_atk, 0, ATK_BASE + b * (s / 8), s / 8, &hits, &ns);
		total_ns += (__u64)ns;
	}
	if (!err)
		err = run(sk, cpu_a, 1, EST_BASE, e, &hits, NULL);
	if (!err) {
		r->survived_pct = 100.0 * (double)hits / e;
		r->atk_ns = (double)total_ns / 8;
	}
	ct_churn__destroy(sk);
	return err;
}

/* Both CPUs insert distinct flows at once into a full map: the cost of sharing its lock(s). */
struct par {
	struct ct_churn *sk;
	int cpu;
	__u32 base, count;
	double ns;
	int err;
};

static void *par_run(void *arg)
{
	struct par *p = arg;
	__u8 pkt[64] = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = sizeof(pkt),
		    .repeat = 1);
	double t0;

	if (pin(p->cpu)) {
		p->err = -errno;
		return NULL;
	}
	t0 = now_ns();
	if (bpf_prog_test_run_opts(bpf_program__fd(p->sk->progs.churn), &o))
		p->err = -errno;
	p->ns = (now_ns() - t0) / p->count;
	return NULL;
}

static int concurrent(int v, __u32 s, int ncpu, int cpu_a, int cpu_b, double *ns)
{
	struct ct_churn *sk = open_variant(v, s, ncpu);
	struct par p[2] = { { .cpu = cpu_a }, { .cpu = cpu_b } };
	pthread_t t[2];
	__u64 hits;
	int i, err;

	if (!sk)
		return -errno;
	/* full first, from both CPUs */
	err = run(sk, cpu_a, 0, ATK_BASE, s, &hits, NULL);
	if (!err)
		err = run(sk, cpu_b, 0, ATK_BASE + s, s, &hits, NULL);
	/* both threads run the same program config; the program salts the flows with the
	 * CPU, so the two insert distinct flows, none of them present */
	sk->bss->op = 0;
	sk->bss->base = ATK_BASE + 2 * s;
	sk->bss->count = s / 2;
	for (i = 0; !err && i < 2; i++) {
		p[i].sk = sk;
		p[i].count = s / 2;
		pthread_create(&t[i], NULL, par_run, &p[i]);
	}
	for (i = 0; !err && i < 2; i++) {
		pthread_join(t[i], NULL);
		err = err ? err : p[i].err;
	}
	*ns = (p[0].ns + p[1].ns) / 2;
	ct_churn__destroy(sk);
	return err;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = { { "entries", required_argument, NULL, 'e' },
					     { "cpus", required_argument, NULL, 'c' },
					     { "md", required_argument, NULL, 'm' },
					     { NULL, 0, NULL, 0 } };
	int ncpu = libbpf_num_possible_cpus(), cpu_a = 0, cpu_b = 1, v, sc, c, err;
	const char *md_path = NULL;
	__u32 s = BGS_DEF_CT_ENTRIES;
	struct result r[3][4];
	double par_ns[3];
	FILE *md = NULL;

	while ((c = getopt_long(argc, argv, "e:c:m:", lo, NULL)) != -1) {
		switch (c) {
		case 'e': s = (__u32)strtoul(optarg, NULL, 0); break;
		case 'c':
			if (sscanf(optarg, "%d,%d", &cpu_a, &cpu_b) != 2)
				return 2;
			break;
		case 'm': md_path = optarg; break;
		default:
			fprintf(stderr, "usage: ct_churn [--entries S] [--cpus A,B] [--md FILE]\n");
			return 2;
		}
	}
	if (ncpu < 2 || cpu_a == cpu_b) {
		fprintf(stderr, "ct_churn: needs two CPUs\n");
		return 249;
	}
	/* scenarios: attacker on another CPU / the same CPU, established active / idle */
	for (v = 0; v < 3; v++)
		for (sc = 0; sc < 4; sc++) {
			err = scenario(v, s, ncpu, cpu_a, sc < 2 ? cpu_b : cpu_a, !(sc & 1),
				       &r[v][sc]);
			if (err) {
				fprintf(stderr, "ct_churn: %s: %s\n", vname[v], strerror(-err));
				return 1;
			}
		}
	for (v = 0; v < 3; v++) {
		err = concurrent(v, s, ncpu, cpu_a, cpu_b, &par_ns[v]);
		if (err) {
			fprintf(stderr, "ct_churn: %s: %s\n", vname[v], strerror(-err));
			return 1;
		}
	}
	if (md_path)
		md = fopen(md_path, "w");
	for (c = 0; c < 2; c++) {
		FILE *f = c ? md : stdout;

		if (!f)
			continue;
		fprintf(f, "%u entries, %d CPUs; established flows: %u (a quarter), inserted on "
			"CPU %d; the attacker inserts %u distinct flows (one turnover) in 8 "
			"batches; *active*: CPU %d looks every established flow up before each "
			"batch.\n\n", s, ncpu, s / 4, cpu_a, s, cpu_a);
		fprintf(f, "| map | insert into a full map, ns: one CPU / both CPUs at once | "
			"established left, attacker on another CPU: active / idle | attacker on "
			"the same CPU: active / idle |\n|---|---|---|---|\n");
		for (v = 0; v < 3; v++)
			fprintf(f, "| %s | %.0f / %.0f | %.1f%% / %.1f%% | %.1f%% / %.1f%% |\n",
				vname[v], r[v][0].atk_ns, par_ns[v], r[v][0].survived_pct,
				r[v][1].survived_pct, r[v][2].survived_pct, r[v][3].survived_pct);
	}
	if (md)
		fclose(md);
	return 0;
}
