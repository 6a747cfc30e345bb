// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Weighted Maglev table population. Each backend walks its own permutation of the table
 * (offset and skip drawn from its identity bytes) and claims its next free preferred slot
 * when its turn comes; turns are weighted by credit (a backend claims a slot each time its
 * accumulated weight reaches the largest weight), so slot counts follow the weights. The
 * backends are ordered by identity, not by id, so that every host with the same config
 * builds the same table whatever ids its backends got.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bgs_priv.h"
#include "bgswitch_hash.h"

struct mg_state {
	const struct bgs_maglev_backend *be;
	__u64 offset, skip, next, credit;
};

static int mg_cmp(const void *a, const void *b)
{
	const struct bgs_maglev_backend *x = ((const struct mg_state *)a)->be;
	const struct bgs_maglev_backend *y = ((const struct mg_state *)b)->be;
	__u32 n = x->ident_len < y->ident_len ? x->ident_len : y->ident_len;
	int c = n ? memcmp(x->ident, y->ident, n) : 0;

	if (c)
		return c;
	if (x->ident_len != y->ident_len)
		return x->ident_len < y->ident_len ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static bool prime(__u32 m)
{
	__u32 d;

	if (m < 2)
		return false;
	for (d = 2; (__u64)d * d <= m; d++)
		if (m % d == 0)
			return false;
	return true;
}

int bgs_maglev_build(const struct bgs_maglev_backend *be, __u32 n, __u32 m, __u32 *table)
{
	struct mg_state *st = NULL;
	__u8 *used = NULL;
	__u32 i, k = 0, max_w = 0, filled = 0;
	__u64 c;
	int err = 0;

	if (!table || !prime(m) || m < 3)
		return bgs_err(-EINVAL, "maglev table size %u is not a prime of at least 3", m);
	memset(table, 0, (size_t)m * sizeof(*table));
	if (!n)
		return 0;
	if (!be)
		return bgs_err(-EINVAL, "maglev: no backend array");
	st = calloc(n, sizeof(*st));
	used = calloc(m, 1);
	if (!st || !used) {
		err = bgs_err(-ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (!be[i].weight)
			continue; /* takes no slot */
		if (be[i].weight > max_w)
			max_w = be[i].weight;
		st[k].be = &be[i];
		st[k].offset = bgs_hash_bytes(be[i].ident, be[i].ident_len,
					      BGS_MAGLEV_OFFSET_SEED) % m;
		st[k].skip = bgs_hash_bytes(be[i].ident, be[i].ident_len,
					    BGS_MAGLEV_SKIP_SEED) % (m - 1) + 1;
		k++;
	}
	if (!k)
		goto out;
	qsort(st, k, sizeof(*st), mg_cmp);
	for (;;) {
		for (i = 0; i < k; i++) {
			struct mg_state *s = &st[i];

			s->credit += s->be->weight;
			if (s->credit < max_w)
				continue;
			s->credit -= max_w;
			do {
				c = (s->offset + s->next * s->skip) % m;
				s->next++;
			} while (used[c]);
			used[c] = 1;
			table[c] = s->be->id;
			if (++filled == m)
				goto out;
		}
	}
out:
	free(st);
	free(used);
	return err;
}
