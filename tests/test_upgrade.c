// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Upgrade (issue item 10): replacing the switch through the entry's program array keeps
 * every conntrack entry (byte for byte) and every counter, and the next packet of every
 * known flow (blue ones draining, green ones live; nat and dsr; IPv4 and IPv6; TCP and UDP)
 * goes exactly where it went before; packets sent while the swap happens are all forwarded
 * correctly. A failed upgrade changes nothing. Pins of another layout version are refused
 * by bgs_init and bgs_open with -EPROTO and a message that says so, touching nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "fixture.h"

struct variant {
	const char *name;
	__u8 family, proto, mode;
};

static const struct variant variants[] = {
	{ "v4_tcp_nat", BGS_AF_INET, IPPROTO_TCP, BGS_MODE_NAT },
	{ "v4_udp_nat", BGS_AF_INET, IPPROTO_UDP, BGS_MODE_NAT },
	{ "v6_tcp_dsr", BGS_AF_INET6, IPPROTO_TCP, BGS_MODE_DSR },
	{ "v6_udp_nat", BGS_AF_INET6, IPPROTO_UDP, BGS_MODE_NAT },
};

#define NV ARRAY_SIZE(variants)
#define NFLOWS 250

static struct fx_svc svcs[NV];
static __u32 blue_be[NV][NFLOWS], green_be[NV][NFLOWS];

struct ct_snap {
	long n;
	struct bgs_flow_key *k;
	struct bgs_flow *v;
};

static bool ct_snapshot(struct ct_snap *s)
{
	struct bgs_flow_key key, next;
	void *prev = NULL;
	long cap = 4096;

	s->n = 0;
	s->k = malloc(cap * sizeof(*s->k));
	s->v = malloc(cap * sizeof(*s->v));
	while (s->k && s->v && !bpf_map_get_next_key(fx.ct_fd, prev, &next)) {
		if (s->n == cap) {
			cap *= 2;
			s->k = realloc(s->k, cap * sizeof(*s->k));
			s->v = realloc(s->v, cap * sizeof(*s->v));
			if (!s->k || !s->v)
				break;
		}
		s->k[s->n] = next;
		if (bpf_map_lookup_elem(fx.ct_fd, &next, &s->v[s->n]) == 0)
			s->n++;
		key = next;
		prev = &key;
	}
	return ASSERT_TRUE(s->k && s->v, "memory");
}

static void ct_free(struct ct_snap *s)
{
	free(s->k);
	free(s->v);
}

static __u32 prog_id(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.id;
}

static __u32 array_prog_id(void)
{
	__u32 key = BGS_PROG_SWITCH, id = 0;
	int fd = bgs_map_fd(fx.h, "progs");

	if (fd < 0 || bpf_map_lookup_elem(fd, &key, &id))
		return 0;
	return id;
}

static bool setup_flows(void)
{
	struct bgs_flip_opts fo = { .to_color = BGS_GREEN, .expect_gen = BGS_ANY_GEN,
				    .drain_ms = BGS_NO_DEADLINE };
	size_t v;
	bool ok = true;
	__u32 id;
	int i;

	for (v = 0; v < NV && ok; v++) {
		__u16 port = variants[v].mode == BGS_MODE_NAT ? 8080 : 0;
		char name[32];

		snprintf(name, sizeof(name), "up_%s", variants[v].name);
		ok &= fx_svc_add(&svcs[v], name, variants[v].family, (int)v + 1, 80,
				 variants[v].proto, variants[v].mode, 0);
		for (i = 0; i < 2 && ok; i++) {
			ok &= fx_be_add(&svcs[v], BGS_BLUE, FX_NET_BACKEND, 10 + (int)v * 4 + i,
					port, 0, &id);
			ok &= fx_be_add(&svcs[v], BGS_GREEN, i ? FX_NET_CLIENT : FX_NET_BACKEND,
					12 + (int)v * 4 + i, port, 0, &id);
		}
		for (i = 0; i < NFLOWS && ok; i++)
			ok &= fx_flow_new(&svcs[v], (__u32)i, (__u16)(20000 + i), BGS_BLUE,
					  &blue_be[v][i]);
		ok &= ASSERT_EQ(bgs_flip(fx.h, svcs[v].id, &fo, NULL), 1, "flip to green");
		for (i = 0; i < NFLOWS && ok; i++)
			ok &= fx_flow_new(&svcs[v], (__u32)i, (__u16)(30000 + i), BGS_GREEN,
					  &green_be[v][i]);
	}
	return ok;
}

static bool all_flows_unchanged(const char *when)
{
	bool ok = true;
	size_t v;
	int i;

	for (v = 0; v < NV; v++) {
		test_ctx("%s: %s", when, variants[v].name);
		for (i = 0; i < NFLOWS && ok; i++) {
			ok &= fx_flow_next(&svcs[v], (__u32)i, (__u16)(20000 + i), blue_be[v][i]);
			ok &= fx_flow_next(&svcs[v], (__u32)i, (__u16)(30000 + i), green_be[v][i]);
		}
	}
	test_ctx("%s", "");
	return ok;
}

static bool counters(struct bgs_counter c[NV][2])
{
	bool ok = true;
	size_t v;
	__u32 col;

	for (v = 0; v < NV; v++)
		for (col = 0; col < 2; col++)
			ok &= ASSERT_OK(bgs_svc_counters(fx.h, svcs[v].id, col, &c[v][col]),
					"counters");
	return ok;
}

/* Known flows' packets while the upgrade happens: every one forwarded as before. */
static atomic_bool swapping;
static atomic_ulong during_runs;

static void *traffic(void *arg)
{
	unsigned long n = 0;
	bool *ok = arg;
	int i = 0;

	test_ctx("traffic during the upgrade");
	while (atomic_load(&swapping) && *ok) {
		size_t v = (size_t)i % NV;
		int f = (i / (int)NV) % NFLOWS;

		*ok &= fx_flow_next(&svcs[v], (__u32)f, (__u16)(20000 + f), blue_be[v][f]);
		i++;
		n++;
	}
	atomic_store(&during_runs, n);
	return NULL;
}

static bool upgrade_once(const char *obj, const char *what)
{
	struct bgs_reason_counter before[BGS_R_MAX], after[BGS_R_MAX];
	struct bgs_counter c0[NV][2], c1[NV][2];
	struct ct_snap s0, s1;
	__u32 old_id, new_id;
	pthread_t t;
	bool ok = true, tok = true;
	long i;

	test_ctx("%s", what);
	old_id = prog_id(bgs_switch_fd(fx.h));
	ok &= ASSERT_NEQ(old_id, 0, "switch program id");
	ok &= ASSERT_EQ(array_prog_id(), old_id, "program array holds the switch");
	if (!ok || !ct_snapshot(&s0))
		return false;
	ok &= ASSERT_GE(s0.n, (long)(NV * NFLOWS * 2), "flows tracked before");
	ok &= counters(c0);
	fx_reasons(before);

	atomic_store(&swapping, true);
	pthread_create(&t, NULL, traffic, &tok);
	usleep(20000);
	ok &= ASSERT_OK(bgs_upgrade(fx.h, obj), what);
	usleep(20000);
	atomic_store(&swapping, false);
	pthread_join(t, NULL);
	ok &= ASSERT_TRUE(tok, "every packet during the upgrade forwarded as before");
	test_logf("%s: %lu packets of known flows ran during the swap", what,
		  atomic_load(&during_runs));
	fx_reasons(after);
	ok &= ASSERT_EQ(after[BGS_R_PASS_NO_SWITCH].packets, before[BGS_R_PASS_NO_SWITCH].packets,
			"packets that found no switch");

	new_id = prog_id(bgs_switch_fd(fx.h));
	ok &= ASSERT_NEQ(new_id, old_id, "a new switch program");
	ok &= ASSERT_EQ(array_prog_id(), new_id, "program array holds the new switch");

	/* conntrack: every entry, byte for byte (the traffic above refreshed nothing: the
	 * last-seen stamp moves at most once a second, so compare all but it) */
	if (ct_snapshot(&s1)) {
		ok &= ASSERT_EQ(s1.n, s0.n, "conntrack entries after the upgrade");
		for (i = 0; i < s0.n && ok; i++) {
			struct bgs_flow v;

			if (bpf_map_lookup_elem(fx.ct_fd, &s0.k[i], &v)) {
				FAILF("conntrack entry %ld lost in the upgrade", i);
				ok = false;
				break;
			}
			v.last_seen = s0.v[i].last_seen;
			ok &= ASSERT_MEMEQ(&v, &s0.v[i], sizeof(v), "conntrack entry unchanged");
		}
		ct_free(&s1);
	}
	ct_free(&s0);
	/* counters carry over (they only grew by the traffic sent during the swap) */
	if (counters(c1)) {
		size_t v;

		for (v = 0; v < NV; v++) {
			ok &= ASSERT_GE(c1[v][BGS_BLUE].packets, c0[v][BGS_BLUE].packets,
					"blue packets kept");
			ok &= ASSERT_EQ(c1[v][BGS_GREEN].packets, c0[v][BGS_GREEN].packets,
					"green packets kept");
			ok &= ASSERT_EQ(c1[v][BGS_GREEN].new_flows, c0[v][BGS_GREEN].new_flows,
					"green new flows kept");
		}
	}
	ok &= all_flows_unchanged(what);
	return ok;
}

static bool test_upgrade_keeps_flows(void)
{
	char exe[PATH_MAX], obj[PATH_MAX + 32];
	ssize_t n;
	bool ok;

	/* flows, then one more packet each so that TCP state is settled before the snapshot */
	if (!setup_flows() || !all_flows_unchanged("before the upgrade"))
		return false;
	ok = upgrade_once(NULL, "upgrade to the built-in switch");
	/* and from the object file the build made next to the tests */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		snprintf(obj, sizeof(obj), "%s/../bgswitch.bpf.o", dirname(exe));
		if (access(obj, R_OK) == 0)
			ok &= upgrade_once(obj, "upgrade from bgswitch.bpf.o");
		else
			test_logf("no %s: file upgrade not exercised", obj);
	}
	/* new flows after the upgrades go to the live color */
	{
		size_t v;
		__u32 id;
		int i;

		for (v = 0; v < NV; v++)
			for (i = 0; i < 50; i++)
				ok &= fx_flow_new(&svcs[v], (__u32)i, (__u16)(40000 + i), BGS_GREEN,
						  &id);
	}
	return ok;
}

/*
 * Pins made by an earlier build of this layout lack the maps added since (bgs_fresh,
 * bgs_reasons_more): an upgrade creates and pins them, sized from bgs_meta, and keeps
 * everything else.
 */
static bool test_upgrade_adds_missing_map(void)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	bool ok = true;
	int fd;

	struct bgs_reason_counter rc[BGS_R_MAX];
	char more[PATH_MAX];

	snprintf(path, sizeof(path), "%s/bgs_fresh", fx.pin_dir);
	snprintf(more, sizeof(more), "%s/bgs_reasons_more", fx.pin_dir);
	if (!ASSERT_OK(unlink(path) ? -errno : 0, "remove the bgs_fresh pin (an earlier build's pins)") ||
	    !ASSERT_OK(unlink(more) ? -errno : 0, "remove the bgs_reasons_more pin"))
		return false;
	/* the library reads the later reasons as 0 until a switch that has them is loaded */
	ok &= ASSERT_OK(bgs_reason_counters(fx.h, rc), "reason counters without bgs_reasons_more");
	ok &= ASSERT_EQ(rc[BGS_R_CT_MIDFLOW].packets, 0, "a later reason reads 0");
	ok &= upgrade_once(NULL, "upgrade of pins without bgs_fresh");
	ok &= ASSERT_OK(access(more, F_OK) ? -errno : 0, "bgs_reasons_more pinned by the upgrade");
	ok &= ASSERT_OK(bgs_reason_counters(fx.h, rc), "reason counters");
	fd = bpf_obj_get(path);
	if (!ASSERT_GE(fd, 0, "bgs_fresh pinned by the upgrade"))
		return false;
	ok &= ASSERT_OK(bpf_obj_get_info_by_fd(fd, &info, &len) ? -errno : 0, "map info");
	close(fd);
	ok &= ASSERT_EQ(info.max_entries, bgs_fresh_lines(fx.meta.ct_entries), "sized from meta");
	ok &= ASSERT_EQ(info.value_size, sizeof(struct bgs_fresh_line), "its value");
	/* and a second upgrade reuses it */
	ok &= upgrade_once(NULL, "upgrade reusing bgs_fresh");
	fd = bpf_obj_get(path);
	ok &= ASSERT_GE(fd, 0, "bgs_fresh still pinned");
	if (fd >= 0) {
		struct bpf_map_info again = {};

		len = sizeof(again);
		ok &= ASSERT_OK(bpf_obj_get_info_by_fd(fd, &again, &len) ? -errno : 0, "map info");
		ok &= ASSERT_EQ(again.id, info.id, "the same map");
		close(fd);
	}
	return ok;
}

/* An upgrade that cannot load changes nothing. */
static bool test_failed_upgrade_changes_nothing(void)
{
	__u32 old_id = prog_id(bgs_switch_fd(fx.h));
	char bad[128];
	FILE *f;
	bool ok = true;

	snprintf(bad, sizeof(bad), "/run/bgs-test-bad-%d.o", (int)getpid());
	f = fopen(bad, "w");
	if (f) {
		fputs("not an ELF object\n", f);
		fclose(f);
	}
	ok &= ASSERT_LT(bgs_upgrade(fx.h, "/nonexistent/bgswitch.bpf.o"), 0, "missing object");
	ok &= ASSERT_TRUE(bgs_errmsg()[0], "an error message");
	ok &= ASSERT_LT(bgs_upgrade(fx.h, bad), 0, "not an object");
	unlink(bad);
	ok &= ASSERT_EQ(array_prog_id(), old_id, "program array unchanged");
	ok &= ASSERT_EQ(prog_id(bgs_switch_fd(fx.h)), old_id, "switch unchanged");
	if (svcs[0].id || svcs[0].port)
		ok &= all_flows_unchanged("after failed upgrades");
	return ok;
}

static int count_entries(const char *dir, char *names, size_t len)
{
	struct dirent *e;
	DIR *d = opendir(dir);
	int n = 0;

	names[0] = 0;
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		n++;
		strncat(names, e->d_name, len - strlen(names) - 2);
		strncat(names, " ", len - strlen(names) - 1);
	}
	closedir(d);
	return n;
}

/* Pins of another layout: refused with a clear message, nothing touched. */
static bool test_other_layout_refused(void)
{
	struct bgs_meta meta = { .layout_version = 999, .max_services = 8, .max_backends = 64,
				 .maglev_size = 1021, .ct_entries = 4096, .new_flow_rate = 1 };
	char dir[128], pin[160], names[512];
	struct bgs *h2 = NULL;
	__u32 key = 0;
	bool ok = true;
	int fd;

	snprintf(dir, sizeof(dir), "%s/other-layout", fx.mnt);
	snprintf(pin, sizeof(pin), "%s/bgs_meta", dir);
	if (!ASSERT_OK(mkdir(dir, 0700) ? -errno : 0, "mkdir scratch pin dir"))
		return false;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bgs_meta", sizeof(__u32), sizeof(meta), 1, NULL);
	if (!ASSERT_GE(fd, 0, "create bgs_meta"))
		return false;
	ok &= ASSERT_OK(bpf_map_update_elem(fd, &key, &meta, BPF_ANY), "write bgs_meta");
	ok &= ASSERT_OK(bpf_obj_pin(fd, pin), "pin bgs_meta");
	close(fd);

	ok &= ASSERT_ERR(bgs_init(dir, NULL, &h2), -EPROTO, "bgs_init on layout 999");
	ok &= ASSERT_TRUE(h2 == NULL, "no handle");
	test_logf("bgs_init: %s", bgs_errmsg());
	ok &= ASSERT_STRSTR(bgs_errmsg(), "999", "message names the layout found");
	ok &= ASSERT_STRSTR(bgs_errmsg(), "layout", "message says it is about the layout");
	ok &= ASSERT_ERR(bgs_open(dir, &h2), -EPROTO, "bgs_open on layout 999");
	ok &= ASSERT_STRSTR(bgs_errmsg(), "999", "bgs_open message names the layout found");
	/* with explicit sizes too */
	{
		struct bgs_sizes sz = { .max_services = 8 };

		ok &= ASSERT_ERR(bgs_init(dir, &sz, &h2), -EPROTO, "bgs_init with sizes");
	}
	/* nothing was created or changed there */
	ok &= ASSERT_EQ(count_entries(dir, names, sizeof(names)), 1, "pins in the scratch dir");
	if (!ok)
		test_logf("scratch dir holds: %s", names);
	fd = bpf_obj_get(pin);
	if (ASSERT_GE(fd, 0, "bgs_meta still pinned")) {
		struct bgs_meta m2;

		ok &= ASSERT_OK(bpf_map_lookup_elem(fd, &key, &m2), "read bgs_meta");
		ok &= ASSERT_EQ(m2.layout_version, 999, "layout untouched");
		close(fd);
	}
	unlink(pin);
	rmdir(dir);
	return ok;
}

/* The live pins: bgs_open adopts them; bgs_init with other sizes refuses. */
static bool test_adopt_live_pins(void)
{
	struct bgs_sizes other = { .ct_entries = 999983 };
	struct bgs *h2 = NULL;
	struct bgs_meta m;
	__u32 ids[16];
	bool ok = true;

	if (!ASSERT_OK(bgs_open(fx.pin_dir, &h2), "bgs_open live pins"))
		return false;
	bgs_get_meta(h2, &m);
	ok &= ASSERT_EQ(m.layout_version, BGS_LAYOUT_VERSION, "layout");
	ok &= ASSERT_EQ(m.ct_entries, fx.meta.ct_entries, "sizes as created");
	ok &= ASSERT_EQ(bgs_service_list(h2, ids, 16), bgs_service_list(fx.h, ids, 16),
			"the same services through both handles");
	ok &= ASSERT_ERR(bgs_entry_fd(h2), -ENOENT, "bgs_open loads nothing");
	bgs_close(h2);
	h2 = NULL;
	ok &= ASSERT_ERR(bgs_init(fx.pin_dir, &other, &h2), -EEXIST, "bgs_init with other sizes");
	ok &= ASSERT_STRSTR(bgs_errmsg(), "ct_entries", "message names the size");
	if (h2)
		bgs_close(h2);
	return ok;
}

static const struct test_case tests[] = {
	{ "upgrade_keeps_flows", test_upgrade_keeps_flows },
	{ "upgrade_adds_missing_map", test_upgrade_adds_missing_map },
	{ "failed_upgrade_changes_nothing", test_failed_upgrade_changes_nothing },
	{ "other_layout_refused", test_other_layout_refused },
	{ "adopt_live_pins", test_adopt_live_pins },
};

int main(int argc, char **argv)
{
	struct bgs_sizes sz = { .max_services = 8, .max_backends = 64, .maglev_size = 1021,
				.ct_entries = 16384 };

	return fx_main(argc, argv, &sz, tests, ARRAY_SIZE(tests), 120);
}
