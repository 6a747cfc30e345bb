// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bench/ct_fill PIN_DIR SERVICE N: inserts N established flows of SERVICE into the pinned
 * conntrack, spread over the service's backends of both colors, as the program would have
 * made them (for timing the tools that walk conntrack). Batch updates of 8192.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "libbgswitch.h"
#include "bgs_test.h" /* bgs_map_fd */

#define BATCH 8192

int main(int argc, char **argv)
{
	struct bgs_flow_key *keys = NULL;
	struct bgs_flow *vals = NULL;
	struct bgs_backend be[2 * BGS_MAX_POOL_BACKENDS];
	__u32 ids[2 * BGS_MAX_POOL_BACKENDS], nbe = 0, svc_id, hz, i, j, n, c;
	struct bgs_service svc;
	struct bgs_flip flip;
	int ncpus = libbpf_num_possible_cpus(), batch = 0;
	struct bgs *h = NULL;
	__u64 jiffies;
	int err = 1, fd, k;

	if (argc != 4 || (n = (__u32)strtoul(argv[3], NULL, 10)) == 0) {
		fprintf(stderr, "usage: ct_fill PIN_DIR SERVICE N\n");
		return 2;
	}
	if (bgs_open(argv[1], &h) || bgs_service_find(h, argv[2], &svc_id) ||
	    bgs_service_get(h, svc_id, &svc, &flip) || bgs_clock(h, &jiffies, &hz)) {
		fprintf(stderr, "ct_fill: %s\n", bgs_errmsg());
		goto out;
	}
	for (c = 0; c < BGS_NR_COLORS; c++) {
		__u32 pool[BGS_MAX_POOL_BACKENDS];

		k = bgs_pool_list(h, svc_id, c, pool, BGS_MAX_POOL_BACKENDS);
		for (j = 0; k > 0 && j < (__u32)k && j < BGS_MAX_POOL_BACKENDS; j++) {
			if (bgs_backend_get(h, pool[j], &be[nbe]))
				continue;
			ids[nbe++] = pool[j];
		}
	}
	if (!nbe) {
		fprintf(stderr, "ct_fill: service %s has no backends\n", argv[2]);
		goto out;
	}
	fd = bgs_map_fd(h, "ct");
	keys = calloc(BATCH, sizeof(*keys));
	vals = calloc(BATCH, sizeof(*vals));
	if (fd < 0 || !keys || !vals)
		goto out;
	for (i = 0; i < n;) {
		__u32 count = 0;
		LIBBPF_OPTS(bpf_map_batch_opts, opts);
		cpu_set_t set;

		/* conntrack has an LRU list per CPU: an insert takes a node of its CPU's share,
		 * so the batches go round the CPUs (from one CPU only its share would stay) */
		CPU_ZERO(&set);
		CPU_SET(batch++ % (ncpus > 0 ? ncpus : 1), &set);
		sched_setaffinity(0, sizeof(set), &set);

		for (; count < BATCH && i < n; count++, i++) {
			struct bgs_flow_key *key = &keys[count];
			struct bgs_flow *f = &vals[count];
			const struct bgs_backend *b = &be[i % nbe];

			memset(key, 0, sizeof(*key));
			memset(f, 0, sizeof(*f));
			/* clients 100.64.0.0/10 (v4) or 2001:db8::/32 (v6), 16 ports each */
			if (svc.family == BGS_AF_INET) {
				key->src[0] = htonl(0x64400000u | (i >> 4));
			} else {
				key->src[0] = htonl(0x20010db8u);
				key->src[3] = htonl(i >> 4);
			}
			memcpy(key->dst, svc.vip, sizeof(key->dst));
			key->sport = htons((__u16)(10000 + (i & 15)));
			key->dport = svc.port;
			key->proto = svc.proto;
			key->family = svc.family;
			f->backend_id = ids[i % nbe];
			f->incarnation = b->incarnation;
			f->svc_id = svc_id;
			f->epoch = flip.epoch;
			f->mode = svc.mode;
			f->last_seen = jiffies;
			f->color = b->color;
			f->tcp_state = BGS_TCP_SYN | BGS_TCP_EST;
		}
		if (bpf_map_update_batch(fd, keys, vals, &count, &opts)) {
			fprintf(stderr, "ct_fill: batch update: %s\n", strerror(errno));
			goto out;
		}
	}
	printf("ct_fill: %u flows of %s over %u backends\n", n, argv[2], nbe);
	err = 0;
out:
	free(keys);
	free(vals);
	bgs_close(h);
	return err;
}
