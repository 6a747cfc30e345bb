// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The sizes and timeouts a pinned state is created with: checked, defaulted, compared. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "bgs_priv.h"
#include "bgs_test.h"
#include "bgswitch_flow.h"

/* ---- Sizes ---- */

static bool is_prime(__u32 n)
{
	__u32 d;

	if (n < 2)
		return false;
	if (n % 2 == 0)
		return n == 2;
	for (d = 3; (__u64)d * d <= n; d += 2)
		if (n % d == 0)
			return false;
	return true;
}

/* ---- Timeouts ---- */

/* The flow timeouts by index (the order of struct bgs_flow_timeouts). */
static const struct {
	const char *name;
	size_t off;
	bool zero_ok; /* may be 0 s */
} timeouts[BGS_TIMEOUT_COUNT] = {
	{ "tcp_syn", offsetof(struct bgs_flow_timeouts, tcp_syn), false },
	{ "tcp_est", offsetof(struct bgs_flow_timeouts, tcp_est), false },
	{ "tcp_close", offsetof(struct bgs_flow_timeouts, tcp_close), false },
	{ "udp", offsetof(struct bgs_flow_timeouts, udp), false },
	{ "time_wait", offsetof(struct bgs_flow_timeouts, time_wait), true },
	{ "health_grace", offsetof(struct bgs_flow_timeouts, health_grace), true },
};

const char *bgs_timeout_name(unsigned int i)
{
	return i < BGS_TIMEOUT_COUNT ? timeouts[i].name : NULL;
}

bool bgs_timeout_zero_ok(unsigned int i)
{
	return i < BGS_TIMEOUT_COUNT && timeouts[i].zero_ok;
}

__u32 bgs_timeout_get(const struct bgs_flow_timeouts *t, unsigned int i)
{
	__u32 v = 0;

	if (i < BGS_TIMEOUT_COUNT)
		memcpy(&v, (const char *)t + timeouts[i].off, sizeof(v));
	return v;
}

void bgs_timeout_set(struct bgs_flow_timeouts *t, unsigned int i, __u32 v)
{
	if (i < BGS_TIMEOUT_COUNT)
		memcpy((char *)t + timeouts[i].off, &v, sizeof(v));
}

/* Fills the defaults of a bgs_sizes.timeouts and checks it (see libbgswitch.h). */
static int timeouts_check(struct bgs_flow_timeouts *t)
{
	struct bgs_flow_timeouts def;
	__u32 v[6], d[6];
	unsigned int i;

	_Static_assert(sizeof(v) == sizeof(*t), "bgs_flow_timeouts is six __u32");
	bgs_flow_timeouts_default(&def);
	for (i = 0; i < BGS_TIMEOUT_COUNT; i++) {
		v[i] = bgs_timeout_get(t, i);
		d[i] = bgs_timeout_get(&def, i);
	}
	for (i = 0; i < BGS_TIMEOUT_COUNT; i++) {
		if (!v[i])
			v[i] = d[i];
		else if (v[i] == BGS_TIMEOUT_ZERO && timeouts[i].zero_ok)
			v[i] = 0;
		else if (v[i] > BGS_TIMEOUT_MAX)
			return bgs_err(-EINVAL, "timeouts.%s %u: expected 1 to %u seconds%s",
				       timeouts[i].name, v[i], BGS_TIMEOUT_MAX,
				       timeouts[i].zero_ok ? " (or BGS_TIMEOUT_ZERO for none)" :
							     "");
	}
	for (i = 0; i < BGS_TIMEOUT_COUNT; i++)
		bgs_timeout_set(t, i, v[i]);
	return 0;
}

int bgs_sizes_check(const struct bgs_sizes *in, struct bgs_sizes *out)
{
	struct bgs_sizes s = {};
	int err;

	if (in)
		s = *in;
	if (!s.max_services)
		s.max_services = BGS_DEF_MAX_SERVICES;
	if (!s.max_backends)
		s.max_backends = BGS_DEF_MAX_BACKENDS;
	if (!s.maglev_size)
		s.maglev_size = BGS_DEF_MAGLEV_SIZE;
	if (!s.ct_entries)
		s.ct_entries = BGS_DEF_CT_ENTRIES;
	if (!in || !in->new_flow_rate) {
		int ncpus = libbpf_num_possible_cpus();

		s.new_flow_rate = bgs_default_new_flow_rate(s.ct_entries,
							    ncpus > 0 ? (__u32)ncpus : 1);
	}
	if (!s.maglev_seed)
		s.maglev_seed = BGS_MAGLEV_SEED;
	if (!s.canary_seed)
		s.canary_seed = BGS_CANARY_SEED;
	err = timeouts_check(&s.timeouts);
	if (err)
		return err;

	if (s.max_services > BGS_LIMIT_MAX_SERVICES)
		return bgs_err(-EINVAL, "max_services %u: expected 1 to %u", s.max_services,
			       BGS_LIMIT_MAX_SERVICES);
	if (s.max_backends < 2 || s.max_backends > BGS_LIMIT_MAX_BACKENDS)
		return bgs_err(-EINVAL, "max_backends %u: expected 2 to %u (every change reads "
			       "all backend records)", s.max_backends, BGS_LIMIT_MAX_BACKENDS);
	if (s.maglev_size < 3 || s.maglev_size > BGS_LIMIT_MAGLEV_SIZE || !is_prime(s.maglev_size))
		return bgs_err(-EINVAL, "maglev_size %u: expected a prime from 3 to %u "
			       "(e.g. 1021, 16381, 65537)", s.maglev_size, BGS_LIMIT_MAGLEV_SIZE);
	if (s.new_flow_rate > BGS_LIMIT_NEW_FLOW_RATE && s.new_flow_rate != UINT32_MAX)
		return bgs_err(-EINVAL, "new_flow_rate %u: expected at most %u per CPU per second "
			       "(or %u: unlimited)", s.new_flow_rate, BGS_LIMIT_NEW_FLOW_RATE,
			       UINT32_MAX);
	if ((__u64)s.max_services * 4 * s.maglev_size > (1ULL << 31))
		return bgs_err(-EINVAL, "max_services %u x 4 x maglev_size %u is too many table "
			       "entries (at most 2^31)", s.max_services, s.maglev_size);
	if (s.ct_entries < 16 || s.ct_entries > BGS_LIMIT_CT_ENTRIES)
		return bgs_err(-EINVAL, "ct_entries %u: expected 16 to %u", s.ct_entries,
			       BGS_LIMIT_CT_ENTRIES);
	if (out)
		*out = s;
	return 0;
}

int bgs_sizes_match(const char *dir, const struct bgs_sizes *req, const struct bgs_meta *m)
{
	const struct {
		const char *name;
		__u32 want, have;
	} f[] = {
		{ "max_services", req ? req->max_services : 0, m->max_services },
		{ "max_backends", req ? req->max_backends : 0, m->max_backends },
		{ "maglev_size", req ? req->maglev_size : 0, m->maglev_size },
		{ "ct_entries", req ? req->ct_entries : 0, m->ct_entries },
		{ "new_flow_rate", req ? req->new_flow_rate : 0, m->new_flow_rate },
		{ "maglev_seed", req ? req->maglev_seed : 0, m->maglev_seed },
		{ "canary_seed", req ? req->canary_seed : 0, m->canary_seed },
	};
	unsigned int i;

	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (f[i].want && f[i].want != f[i].have)
			return bgs_err(-EEXIST, "pins at %s were created with %s %u, not %u: "
				       "remove them with 'bgctl destroy' to change it",
				       dir, f[i].name, f[i].have, f[i].want);
	for (i = 0; req && i < BGS_TIMEOUT_COUNT; i++) {
		__u32 w = bgs_timeout_get(&req->timeouts, i), hv = bgs_timeout_get(&m->timeouts, i);

		if (w && (w == BGS_TIMEOUT_ZERO ? 0 : w) != hv)
			return bgs_err(-EEXIST, "pins at %s were created with timeouts.%s %u s, "
				       "not %u s: remove them with 'bgctl destroy' to change it",
				       dir, timeouts[i].name, hv, w == BGS_TIMEOUT_ZERO ? 0 : w);
	}
	return 0;
}
