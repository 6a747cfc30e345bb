// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Backend records are published so that no reader can see the new "in use" flag with the
 * old incarnation. An array update is a plain copy: a program reading a record while it is
 * written may see any mix of old and new bytes, so a write that turns a record in use and
 * changes its incarnation at once could let an old flow (its entry names the old
 * incarnation) pass the liveness check against a half-written record of a new backend.
 * This binary interposes bpf_map_update_elem for the library it links and checks every
 * write of bgs_backends: none may set "in use" over a stored record of another incarnation.
 */
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <bpf/bpf.h>

#include "fixture.h"

static int watch_fd = -1;
static unsigned long writes, in_use_writes, violations, reuses;

int bpf_map_update_elem(int fd, const void *key, const void *value, __u64 flags)
{
	static int (*real)(int, const void *, const void *, __u64);
	const struct bgs_backend *nb = value;
	struct bgs_backend cur;

	if (!real)
		real = (int (*)(int, const void *, const void *, __u64))dlsym(RTLD_NEXT,
									    "bpf_map_update_elem");
	if (fd == watch_fd && watch_fd >= 0) {
		writes++;
		if ((nb->flags & BGS_BE_IN_USE) && !bpf_map_lookup_elem(fd, key, &cur)) {
			in_use_writes++;
			if (cur.incarnation != nb->incarnation)
				violations++;
		}
	}
	return real(fd, key, value, flags);
}

static bool test_backend_publish_order(void)
{
	struct fx_svc s;
	__u32 id, first = 0, inc0 = 0;
	struct bgs_backend rec;
	bool ok = true;
	int i;

	if (!fx_svc_add(&s, "pub", BGS_AF_INET, 1, 80, IPPROTO_TCP, BGS_MODE_NAT, 0))
		return false;
	watch_fd = fx.backends_fd;
	for (i = 0; i < 20 && ok; i++) {
		ok &= fx_be_add(&s, BGS_BLUE, FX_NET_BACKEND, 10 + i, 8080, 0, &id);
		ok &= ASSERT_OK(bgs_backend_get(fx.h, id, &rec), "get");
		if (!i) {
			first = id;
			inc0 = rec.incarnation;
		} else if (id == first) {
			reuses++;
			ok &= ASSERT_NEQ(rec.incarnation, inc0, "a reused id, a new incarnation");
		}
		ok &= fx_be_del(id);
	}
	watch_fd = -1;
	test_logf("%lu writes of bgs_backends, %lu in use, %lu ids reused", writes, in_use_writes,
		  reuses);
	ok &= ASSERT_GT(reuses, 0, "ids were reused");
	ok &= ASSERT_GT(in_use_writes, 0, "records were published");
	ok &= ASSERT_EQ(violations, 0, "writes setting 'in use' over another incarnation");
	return fx_svc_del(&s) && ok;
}

static const struct test_case tests[] = {
	{ "backend_publish_order", test_backend_publish_order },
};

int main(int argc, char **argv)
{
	struct bgs_sizes sz = { .max_services = 4, .max_backends = 8, .maglev_size = 251,
				.ct_entries = 1024 };

	return fx_main(argc, argv, &sz, tests, ARRAY_SIZE(tests), 60);
}
