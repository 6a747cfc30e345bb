// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libbgswitch state changes, read back from the real pinned maps: creating and adopting
 * the pinned layout (and refusing what must be refused before anything is created), the
 * keys a service leaves in the maps and removes again (VIP address markers included),
 * backend ids reused with a new incarnation, the flip word's bits, generation and drain
 * fields after every routing change, pool changes published through the idle table slot
 * with the retired slot left intact, conntrack walks and kills over synthetic entries,
 * per-CPU counters summed, and concurrent changes (threads with their own handles, and a
 * forked process) that must end consistent.
 */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/magic.h>

#include "bgswitch_hash.h"
#include "fixture.h"

static int ncpus;

/* ---- Reading maps directly ---- */

static __u32 map_id(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.id;
}

static __u32 prog_id(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.id;
}

/* Id of the program in the program array's switch slot. */
static __u32 progs_switch_id(struct bgs *h)
{
	__u32 key = BGS_PROG_SWITCH, id = 0;

	if (bpf_map_lookup_elem(bgs_map_fd(h, "progs"), &key, &id))
		return 0;
	return id;
}

/* Every key of a hash or trie map (key_size bytes each) into a malloc'ed array. */
static int map_keys(int fd, size_t key_size, void **out)
{
	__u8 key[64], next[64], *all = NULL, *n;
	void *prev = NULL;
	int cnt = 0;

	while (!bpf_map_get_next_key(fd, prev, next)) {
		n = realloc(all, (size_t)(cnt + 1) * key_size);
		if (!n)
			break;
		all = n;
		memcpy(all + (size_t)cnt * key_size, next, key_size);
		memcpy(key, next, key_size);
		prev = key;
		cnt++;
	}
	*out = all;
	return cnt;
}

static int vips_count(void)
{
	void *k;
	int n = map_keys(bgs_map_fd(fx.h, "vips"), sizeof(struct bgs_vip_key), &k);

	free(k);
	return n;
}

static bool vip_get(const struct bgs_ip *ip, __u16 port, __u8 proto, struct bgs_vip_val *v)
{
	struct bgs_vip_key k = { .port = htons(port), .proto = proto, .family = ip->family };

	memcpy(k.addr, ip->addr, 16);
	return !bpf_map_lookup_elem(bgs_map_fd(fx.h, "vips"), &k, v);
}

static bool marker_get(const struct bgs_ip *ip, struct bgs_vip_val *v)
{
	return vip_get(ip, 0, 0, v);
}

/* A copy of the table (svc, color, slot): m ids. */
static __u32 *table_copy(__u32 svc, __u32 color, __u32 slot)
{
	__u32 m = fx.meta.maglev_size, *t = calloc(m, sizeof(*t)), i, idx;

	for (i = 0; t && i < m; i++) {
		idx = (__u32)bgs_maglev_index(svc, color, slot, m, i);
		if (bpf_map_lookup_elem(fx.maglev_fd, &idx, &t[i]))
			FAILF("maglev lookup %u: %s", idx, strerror(errno));
	}
	return t;
}

static bool table_zero(__u32 svc, __u32 color, __u32 slot)
{
	__u32 *t = table_copy(svc, color, slot), i;
	bool z = t != NULL;

	for (i = 0; t && i < fx.meta.maglev_size; i++)
		if (t[i])
			z = false;
	free(t);
	return z;
}

/* The table holds exactly the ids in ids[0..n) (each at least once, nothing else, no 0). */
static bool table_holds(const __u32 *t, const __u32 *ids, __u32 n, const char *what)
{
	__u32 i, j, *seen = calloc(n ? n : 1, sizeof(*seen));
	bool ok = true;

	for (i = 0; i < fx.meta.maglev_size; i++) {
		for (j = 0; j < n && ids[j] != t[i]; j++)
			;
		if (j == n) {
			FAILF("%s: entry %u holds %u, not one of the pool's %u backends", what, i,
			      t[i], n);
			ok = false;
			break;
		}
		seen[j]++;
	}
	for (j = 0; ok && j < n; j++)
		ok &= ASSERT_GT(seen[j], 0, what);
	free(seen);
	return ok;
}

/* Per-CPU value of a bgs_counter map (or reasons) written directly. */
static bool percpu_write(int fd, __u32 key, const void *vals_per_cpu)
{
	return ASSERT_OK(bpf_map_update_elem(fd, &key, vals_per_cpu, BPF_ANY), "per-CPU write");
}

static bool flip_get(__u32 svc, struct bgs_flip *f)
{
	return ASSERT_OK(bgs_service_get(fx.h, svc, NULL, f), "service get");
}

/* Slots of bgs_revnat in use. */
static int revnat_used(void)
{
	int fd = bgs_map_fd(fx.h, "revnat"), n = 0;
	struct bgs_revnat_slot e;
	__u32 i;

	for (i = 0; !bpf_map_lookup_elem(fd, &i, &e); i++)
		n += e.used != 0;
	return n;
}

/* ---- Setup helpers ---- */

static int next_vip = 1;
static int next_be = 10;

static bool svc_add(struct fx_svc *s, const char *name, __u8 family, __u16 port, __u8 proto,
		    __u8 mode, __u16 pport)
{
	return fx_svc_add(s, name, family, next_vip++, port, proto, mode, pport);
}

static void del_all_services(struct bgs *h)
{
	__u32 ids[256];
	int n, i;

	n = bgs_service_list(h, ids, 256);
	for (i = 0; i < n && i < 256; i++)
		ASSERT_OK(bgs_service_del(h, ids[i]), "service cleanup");
	for (i = 0; i < (int)fx.meta.max_backends; i++)
		fx.be[i].in_use = false;
}

/* ---- Layout and adoption ---- */

static bool test_init_adopts(void)
{
	static const char *const maps[] = { "meta", "vips", "svcs", "flip", "maglev",
					    "backends", "revnat", "preview", "ct", "svc_stats",
					    "be_stats", "flood", "tx_ports", "reasons", "progs" };
	struct bgs_sizes same = { .max_services = fx.meta.max_services,
				  .max_backends = fx.meta.max_backends,
				  .maglev_size = fx.meta.maglev_size,
				  .ct_entries = fx.meta.ct_entries,
				  .new_flow_rate = fx.meta.new_flow_rate };
	__u32 sw = prog_id(bgs_switch_fd(fx.h)), id;
	struct bgs *h2 = NULL, *h3 = NULL, *h4 = NULL;
	struct bgs_meta m2;
	struct fx_svc s;
	bool ok = true;
	size_t i;

	if (!ASSERT_NEQ(sw, 0, "switch program id") ||
	    !ASSERT_EQ(progs_switch_id(fx.h), sw, "program array holds the switch") ||
	    !svc_add(&s, "adopted", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 0))
		return false;

	ok &= ASSERT_OK(bgs_init(fx.pin_dir, NULL, &h2), "second init (no sizes)");
	ok &= ASSERT_OK(bgs_init(fx.pin_dir, &same, &h3), "third init (the same sizes)");
	ok &= ASSERT_OK(bgs_open(fx.pin_dir, &h4), "open");
	if (!ok)
		goto out;
	ok &= ASSERT_EQ(prog_id(bgs_switch_fd(h2)), sw, "second init keeps the switch");
	ok &= ASSERT_EQ(prog_id(bgs_switch_fd(h3)), sw, "third init keeps the switch");
	ok &= ASSERT_EQ(prog_id(bgs_switch_fd(h4)), sw, "open sees the switch");
	ok &= ASSERT_EQ(progs_switch_id(fx.h), sw, "program array unchanged");
	ok &= ASSERT_ERR(bgs_entry_fd(h4), -ENOENT, "open loads no entry program");
	ok &= ASSERT_GE(bgs_entry_fd(h2), 0, "init loads an entry program");
	bgs_get_meta(h2, &m2);
	ok &= ASSERT_MEMEQ(&m2, &fx.meta, sizeof(m2), "same meta");
	for (i = 0; i < ARRAY_SIZE(maps); i++) {
		test_ctx("map %s", maps[i]);
		ok &= ASSERT_EQ(map_id(bgs_map_fd(h2, maps[i])), map_id(bgs_map_fd(fx.h, maps[i])),
				"the same kernel map");
		ok &= ASSERT_EQ(map_id(bgs_map_fd(h4, maps[i])), map_id(bgs_map_fd(fx.h, maps[i])),
				"the same kernel map");
	}
	test_ctx("%s", "");
	ok &= ASSERT_OK(bgs_service_find(h2, "adopted", &id), "state seen through the adopter");
	ok &= ASSERT_EQ(id, s.id, "same id");
	ok &= ASSERT_ERR(bgs_map_fd(h2, "nosuch"), -ENOENT, "unknown map name");
	ok &= ASSERT_STRSTR(bgs_errmsg(), "nosuch", "message names it");
	ok &= ASSERT_EQ(bgs_map_fd(h2, "bgs_ct"), bgs_map_fd(h2, "ct"), "bgs_ prefix accepted");
out:
	bgs_close(h2);
	bgs_close(h3);
	bgs_close(h4);
	/* closing adopters leaves the state alone */
	ok &= ASSERT_EQ(progs_switch_id(fx.h), sw, "program array after closing adopters");
	ok &= ASSERT_OK(bgs_service_find(fx.h, "adopted", NULL), "service still there");
	del_all_services(fx.h);
	return ok;
}

static bool dir_empty(const char *path)
{
	struct dirent *de;
	bool empty = true;
	DIR *d = opendir(path);

	if (!d)
		return false;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = false;
	closedir(d);
	return empty;
}

static bool is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

/* Permission bits of path (a bpffs root also has the sticky bit), or -1. */
static int mode_of(const char *path)
{
	struct stat st;

	return stat(path, &st) ? -1 : (int)(st.st_mode & 0777);
}

/*
 * Where no bpffs is mounted, init mounts one with mode 0700 (never world-writable: anyone
 * could flock the pin directory or create entries in it): at /sys/fs/bpf for a pin directory
 * under it, as systemd does, else on the pin directory. This test's mount namespace has a
 * fresh sysfs, so /sys/fs/bpf holds no bpffs, as on a minimal machine.
 */
static bool test_mounts_bpffs(void)
{
	struct bgs_sizes sz = { .max_services = 2, .max_backends = 4, .maglev_size = 13,
				.ct_entries = 16 };
	const char *sysdir = BGS_BPFFS_ROOT "/bgs-mount-test/pins";
	char base[160], dir[200];
	struct bgs *h = NULL, *h2 = NULL;
	bool ok = true;

	if (!ASSERT_FALSE(is_bpffs(BGS_BPFFS_ROOT), "no bpffs at " BGS_BPFFS_ROOT " to begin"))
		return false;
	test_ctx("%s", sysdir);
	if (ASSERT_OK(bgs_init(sysdir, &sz, &h), "init under " BGS_BPFFS_ROOT)) {
		ok &= ASSERT_TRUE(bgs_mounted(h) && !strcmp(bgs_mounted(h), BGS_BPFFS_ROOT),
				  "says it mounted " BGS_BPFFS_ROOT);
		ok &= ASSERT_TRUE(is_bpffs(BGS_BPFFS_ROOT), "a bpffs is mounted there");
		ok &= ASSERT_EQ(mode_of(BGS_BPFFS_ROOT), 0700, "mode 0700");
		ok &= ASSERT_EQ(mode_of(sysdir), 0700, "pin directory mode 0700");
		ok &= ASSERT_OK(bgs_init(sysdir, NULL, &h2), "init again");
		ok &= ASSERT_TRUE(h2 && !bgs_mounted(h2), "mounts nothing the second time");
		bgs_close(h2);
		h2 = NULL;
		bgs_close(h);
		h = NULL;
		ok &= ASSERT_OK(bgs_destroy(sysdir), "destroy");
	} else {
		ok = false;
	}
	umount2(BGS_BPFFS_ROOT, MNT_DETACH);

	/* on the private /run tmpfs: the bpffs goes on the pin directory itself */
	snprintf(base, sizeof(base), "/run/bgs-mount-%d", (int)getpid());
	snprintf(dir, sizeof(dir), "%s/a/pins", base);
	test_ctx("%s", dir);
	if (ASSERT_OK(bgs_init(dir, &sz, &h), "init on a tmpfs")) {
		ok &= ASSERT_TRUE(bgs_mounted(h) && !strcmp(bgs_mounted(h), dir),
				  "says it mounted the pin directory");
		ok &= ASSERT_TRUE(is_bpffs(dir), "a bpffs is mounted there");
		ok &= ASSERT_EQ(mode_of(dir), 0700, "mode 0700");
		bgs_close(h);
		ok &= ASSERT_OK(bgs_destroy(dir), "destroy");
	} else {
		ok = false;
	}
	umount2(dir, MNT_DETACH);
	rmdir(dir);
	snprintf(dir, sizeof(dir), "%s/a", base);
	rmdir(dir);
	rmdir(base);
	return ok;
}

static bool test_open_empty(void)
{
	char dir[160], missing[160];
	struct bgs *h = (struct bgs *)1;
	bool ok = true;

	snprintf(dir, sizeof(dir), "%s/empty", fx.mnt);
	snprintf(missing, sizeof(missing), "%s/missing", fx.mnt);
	if (!ASSERT_OK(mkdir(dir, 0700) ? -errno : 0, "mkdir"))
		return false;
	ok &= ASSERT_ERR(bgs_open(dir, &h), -ENOENT, "open of an empty directory");
	ok &= ASSERT_TRUE(h == NULL, "no handle");
	ok &= ASSERT_STRSTR(bgs_errmsg(), dir, "message names the directory");
	ok &= ASSERT_TRUE(dir_empty(dir), "nothing created");
	ok &= ASSERT_ERR(bgs_open(missing, &h), -ENOENT, "open of a missing directory");
	ok &= ASSERT_STRSTR(bgs_errmsg(), missing, "message names the directory");
	ok &= ASSERT_ERR(access(missing, F_OK), -1, "still missing");
	rmdir(dir);
	return ok;
}

static bool test_sizes_mismatch(void)
{
	const struct {
		const char *field;
		struct bgs_sizes sz;
	} cases[] = {
		{ "max_services", { .max_services = fx.meta.max_services + 1 } },
		{ "max_backends", { .max_backends = fx.meta.max_backends * 2 } },
		{ "maglev_size", { .maglev_size = 509 } },
		{ "ct_entries", { .ct_entries = fx.meta.ct_entries / 2 } },
		{ "new_flow_rate", { .new_flow_rate = 7 } },
	};
	__u32 sw = progs_switch_id(fx.h), meta_id = map_id(bgs_map_fd(fx.h, "meta"));
	struct bgs_meta m;
	struct bgs *h;
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		test_ctx("%s", cases[i].field);
		h = (struct bgs *)1;
		ok &= ASSERT_ERR(bgs_init(fx.pin_dir, &cases[i].sz, &h), -EEXIST, "refused");
		ok &= ASSERT_TRUE(h == NULL, "no handle");
		ok &= ASSERT_STRSTR(bgs_errmsg(), cases[i].field, "message names the size");
		ok &= ASSERT_EQ(progs_switch_id(fx.h), sw, "switch untouched");
	}
	test_ctx("%s", "");
	ok &= ASSERT_OK(bgs_open(fx.pin_dir, &h), "state still opens");
	if (h) {
		bgs_get_meta(h, &m);
		ok &= ASSERT_MEMEQ(&m, &fx.meta, sizeof(m), "meta unchanged");
		ok &= ASSERT_EQ(map_id(bgs_map_fd(h, "meta")), meta_id, "same meta map");
		bgs_close(h);
	}
	return ok;
}

static int bpf_mounts(void)
{
	char line[1024];
	int n = 0;
	FILE *f = fopen("/proc/self/mountinfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, " - bpf "))
			n++;
	fclose(f);
	return n;
}

/* Bad sizes are refused before anything is created or mounted. */
static bool test_bad_sizes_first(void)
{
	const struct {
		const char *needle;
		struct bgs_sizes sz;
	} cases[] = {
		{ "1000", { .maglev_size = 1000 } },
		{ "16383", { .maglev_size = 16383 } }, /* 3 x 43 x 127 */
		{ "2", { .maglev_size = 2 } },
		{ "1000033", { .maglev_size = 1000033 } },
		{ "max_backends 1", { .max_backends = 1 } },
		{ "max_backends 1048577", { .max_backends = BGS_LIMIT_MAX_BACKENDS + 1 } },
		{ "ct_entries 67108865", { .ct_entries = BGS_LIMIT_CT_ENTRIES + 1 } },
		{ "new_flow_rate 100000001", { .new_flow_rate = BGS_LIMIT_NEW_FLOW_RATE + 1 } },
		{ "65537", { .max_services = 65537 } },
		{ "ct_entries 8", { .ct_entries = 8 } },
		{ "too many table entries", { .max_services = 65536, .maglev_size = 16381 } },
	};
	char base[160], dir[200];
	int mounts = bpf_mounts();
	struct bgs *h;
	bool ok = true;
	size_t i;

	/* on the /run tmpfs: bgs_init would create the directory and mount a bpffs there */
	snprintf(base, sizeof(base), "/run/bgs-state-%d", (int)getpid());
	snprintf(dir, sizeof(dir), "%s/a/b", base);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		test_ctx("%s", cases[i].needle);
		h = (struct bgs *)1;
		ok &= ASSERT_ERR(bgs_init(dir, &cases[i].sz, &h), -EINVAL, "refused");
		ok &= ASSERT_TRUE(h == NULL, "no handle");
		ok &= ASSERT_STRSTR(bgs_errmsg(), cases[i].needle, "message names the value");
		ok &= ASSERT_ERR(access(base, F_OK), -1, "nothing created");
		ok &= ASSERT_EQ(bpf_mounts(), mounts, "nothing mounted");
	}
	test_ctx("%s", "relative");
	ok &= ASSERT_ERR(bgs_init("relative/dir", NULL, &h), -EINVAL, "relative pin directory");
	ok &= ASSERT_STRSTR(bgs_errmsg(), "relative/dir", "message names it");
	ok &= ASSERT_ERR(access("relative", F_OK), -1, "nothing created");
	return ok;
}

/* Pins of another layout version are refused by open and init, with what to do. */
static bool test_other_layout(void)
{
	struct bgs_sizes sz = { .max_services = 2, .max_backends = 4, .maglev_size = 13,
				.ct_entries = 16 };
	struct bgs_meta m;
	char dir[160];
	struct bgs *h = NULL, *h2;
	__u32 key = 0;
	bool ok = true;

	snprintf(dir, sizeof(dir), "%s/layout", fx.mnt);
	if (!ASSERT_OK(bgs_init(dir, &sz, &h), "small instance"))
		return false;
	bgs_get_meta(h, &m);
	m.layout_version = 99;
	ok &= ASSERT_OK(bpf_map_update_elem(bgs_map_fd(h, "meta"), &key, &m, BPF_ANY),
			"meta of layout 99");
	ok &= ASSERT_ERR(bgs_open(dir, &h2), -EPROTO, "open refuses");
	ok &= ASSERT_STRSTR(bgs_errmsg(), "99", "message names the layout");
	ok &= ASSERT_ERR(bgs_init(dir, NULL, &h2), -EPROTO, "init refuses");
	ok &= ASSERT_STRSTR(bgs_errmsg(), "99", "message names the layout");
	bgs_close(h);
	ok &= ASSERT_OK(bgs_destroy(dir), "destroy");
	ok &= ASSERT_TRUE(dir_empty(dir), "destroy removed every pin");
	rmdir(dir);
	return ok;
}

/* ---- Services: every key in, every key out ---- */

/* Conntrack entry i of service svc, color c. */
static void ct_key(__u32 i, struct bgs_flow_key *k)
{
	memset(k, 0, sizeof(*k));
	k->family = BGS_AF_INET;
	k->proto = IPPROTO_TCP;
	k->src[0] = htonl(0x0a630000u + 0x1000u + i); /* 10.99.16.0 and up */
	k->dst[0] = htonl(0x0a63fa01u);
	k->sport = htons((__u16)(1024 + i % 50000));
	k->dport = htons(80);
}

static int ct_base;

/* Inserts n entries of svc with color, backend, epoch and generation as given. */
static bool ct_insert_gen(__u32 svc, __u32 color, __u32 n, __u32 be_id, __u32 epoch,
			  __u32 gen)
{
	struct bgs_flow_key k;
	struct bgs_flow f = { .svc_id = svc, .color = (__u8)color, .backend_id = be_id,
			      .incarnation = 1, .gen = gen, .epoch = epoch,
			      .tcp_state = BGS_TCP_EST };
	__u32 i;

	for (i = 0; i < n; i++) {
		ct_key((__u32)ct_base++, &k);
		if (bpf_map_update_elem(fx.ct_fd, &k, &f, BPF_NOEXIST)) {
			FAILF("conntrack insert %u: %s", i, strerror(errno));
			return false;
		}
	}
	return true;
}

static bool ct_insert(__u32 svc, __u32 color, __u32 n, __u32 be_id)
{
	return ct_insert_gen(svc, color, n, be_id, 0, 1);
}

struct ct_count {
	__u32 n[8][2];
	__u32 total, calls, stop_after;
};

static int count_cb(const struct bgs_flow_key *key, const struct bgs_flow *flow, void *arg)
{
	struct ct_count *c = arg;

	(void)key;
	c->calls++;
	if (flow->svc_id < 8 && flow->color < 2)
		c->n[flow->svc_id][flow->color]++;
	c->total++;
	if (c->stop_after && c->calls == c->stop_after)
		return 7;
	return 0;
}

/* The same counts from get_next_key, independent of the library's batches. */
static void ct_count_raw(struct ct_count *c)
{
	struct bgs_flow_key k, next;
	struct bgs_flow f;
	void *prev = NULL;

	memset(c, 0, sizeof(*c));
	while (!bpf_map_get_next_key(fx.ct_fd, prev, &next)) {
		k = next;
		prev = &k;
		if (bpf_map_lookup_elem(fx.ct_fd, &k, &f))
			continue;
		if (f.svc_id < 8 && f.color < 2)
			c->n[f.svc_id][f.color]++;
		c->total++;
	}
}

static bool ct_clear(void)
{
	struct bgs_flow_key k;
	void *keys;
	int n = map_keys(fx.ct_fd, sizeof(k), &keys), i;

	for (i = 0; i < n; i++)
		bpf_map_delete_elem(fx.ct_fd, (__u8 *)keys + (size_t)i * sizeof(k));
	free(keys);
	return fx_ct_count() == 0;
}

static bool svc_gone(__u32 id, const __u32 *be_ids, const struct bgs_backend *be_recs,
		     __u32 nbe)
{
	struct bgs_service rec;
	struct bgs_flip fl;
	struct bgs_counter zero[64] = {}, vals[64];
	int fd_ss = bgs_map_fd(fx.h, "svc_stats");
	__u32 i, key;
	bool ok = true;

	key = id;
	ok &= ASSERT_OK(bpf_map_lookup_elem(bgs_map_fd(fx.h, "svcs"), &key, &rec), "read svcs");
	ok &= ASSERT_TRUE(bgs_map_fd(fx.h, "svcs") >= 0 &&
				  !memcmp(&rec, &(struct bgs_service){}, sizeof(rec)),
			  "service record zeroed");
	ok &= ASSERT_OK(bpf_map_lookup_elem(fx.flip_fd, &key, &fl), "read flip");
	ok &= ASSERT_EQ(fl.word & ((1ULL << BGS_FW_GEN_SHIFT) - 1), 0,
			"flip word: nothing but the generation (the slot's next service goes on)");
	ok &= ASSERT_EQ(bgs_flip_drain(&fl)->deadline, 0, "drain deadline zero");
	ok &= ASSERT_EQ(bgs_flip_drain(&fl)->gen, 0, "drain gen zero");
	for (i = 0; i < 4; i++)
		ok &= ASSERT_TRUE(table_zero(id, i / 2, i % 2), "tables zeroed");
	for (i = 0; i < 2; i++) {
		key = id * 2 + i;
		ok &= ASSERT_OK(bpf_map_lookup_elem(fd_ss, &key, vals), "read counters");
		ok &= ASSERT_MEMEQ(vals, zero, sizeof(struct bgs_counter) * (size_t)ncpus,
				   "counters zeroed");
	}
	for (i = 0; i < nbe; i++) {
		struct bgs_backend b, z = { .incarnation = be_recs[i].incarnation };
		struct bgs_revnat_key rk = { .port = be_recs[i].port, .family = be_recs[i].family,
					     .proto = IPPROTO_TCP };

		key = be_ids[i];
		ok &= ASSERT_OK(bpf_map_lookup_elem(fx.backends_fd, &key, &b), "read backend");
		ok &= ASSERT_MEMEQ(&b, &z, sizeof(b), "backend freed, incarnation kept");
		memcpy(rk.addr, be_recs[i].addr, 16);
		ok &= ASSERT_ERR(bgs_revnat_lookup(fx.h, &rk, NULL), -ENOENT, "reverse-nat key gone");
	}
	return ok;
}

static bool test_service_keys(void)
{
	struct fx_svc a, b, c;
	struct bgs_vip_val v;
	struct bgs_prefix p;
	struct bgs_backend recs[2];
	struct bgs_counter cnt[64];
	struct ct_count cc;
	int pv_fd = bgs_map_fd(fx.h, "preview");
	__u32 be[2], i;
	void *keys;
	bool ok = true;
	int n;

	if (!ASSERT_EQ(vips_count(), 0, "no VIP keys at the start") || !ct_clear())
		return false;
	/* a: nat with a preview port; b: same address, udp dsr; c: IPv6 */
	ok &= svc_add(&a, "ka", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 8080);
	ok &= fx_svc_add(&b, "kb", BGS_AF_INET, next_vip - 1, 53, IPPROTO_UDP, BGS_MODE_DSR, 0);
	ok &= svc_add(&c, "kc", BGS_AF_INET6, 443, IPPROTO_TCP, BGS_MODE_NAT, 0);
	if (!ok)
		return false;
	ok &= ASSERT_TRUE(vip_get(&a.vip, 80, IPPROTO_TCP, &v) && v.svc_id == a.id && !v.flags,
			  "a's VIP key");
	ok &= ASSERT_TRUE(vip_get(&a.vip, 8080, IPPROTO_TCP, &v) && v.svc_id == a.id &&
				  v.flags == BGS_VIP_PREVIEW_PORT,
			  "a's preview-port key");
	ok &= ASSERT_TRUE(vip_get(&b.vip, 53, IPPROTO_UDP, &v) && v.svc_id == b.id && !v.flags,
			  "b's VIP key");
	ok &= ASSERT_TRUE(vip_get(&c.vip, 443, IPPROTO_TCP, &v) && v.svc_id == c.id,
			  "c's VIP key");
	ok &= ASSERT_TRUE(marker_get(&a.vip, &v) && v.flags == BGS_VIP_ADDRESS &&
				  (v.svc_id == a.id || v.svc_id == b.id),
			  "a/b address marker");
	ok &= ASSERT_TRUE(marker_get(&c.vip, &v) && v.flags == BGS_VIP_ADDRESS &&
				  v.svc_id == c.id,
			  "c address marker");
	ok &= ASSERT_EQ(vips_count(), 6, "exactly 4 service keys and 2 markers");

	/* give a everything a service can own */
	ok &= fx_be_add(&a, BGS_BLUE, FX_NET_BACKEND, next_be++, 8080, 0, &be[0]);
	ok &= fx_be_add(&a, BGS_GREEN, FX_NET_BACKEND, next_be++, 8080, 0, &be[1]);
	ok &= fx_be_add(&c, BGS_BLUE, FX_NET_BACKEND, next_be++, 8443, 0, &i);
	for (i = 0; i < 2; i++)
		ok &= ASSERT_OK(bgs_backend_get(fx.h, be[i], &recs[i]), "backend record");
	ok &= ASSERT_OK(bgs_prefix_parse("10.99.16.0/24", &p), "parse");
	ok &= ASSERT_OK(bgs_preview_add(fx.h, a.id, &p), "a preview");
	ok &= ASSERT_OK(bgs_prefix_parse("fd00:99::c:0:0/96", &p), "parse");
	ok &= ASSERT_OK(bgs_preview_add(fx.h, c.id, &p), "c preview");
	ok &= ct_insert(a.id, BGS_BLUE, 30, be[0]) && ct_insert(a.id, BGS_GREEN, 20, be[1]);
	ok &= ct_insert(c.id, BGS_BLUE, 10, i);
	for (i = 0; i < (__u32)ncpus; i++)
		cnt[i] = (struct bgs_counter){ .packets = 5, .bytes = 500, .new_flows = 1,
					       .resets = 2 };
	ok &= percpu_write(bgs_map_fd(fx.h, "svc_stats"), a.id * 2 + 1, cnt);
	ok &= percpu_write(bgs_map_fd(fx.h, "be_stats"), be[0], cnt);
	if (!ok)
		goto out;

	/* delete a: its keys go, the shared marker stays (now b's), c is untouched */
	ok &= ASSERT_OK(bgs_service_del(fx.h, a.id), "delete a");
	ok &= ASSERT_FALSE(vip_get(&a.vip, 80, IPPROTO_TCP, &v), "a's VIP key gone");
	ok &= ASSERT_FALSE(vip_get(&a.vip, 8080, IPPROTO_TCP, &v), "a's preview-port key gone");
	ok &= ASSERT_TRUE(marker_get(&a.vip, &v) && v.svc_id == b.id &&
				  v.flags == BGS_VIP_ADDRESS,
			  "marker stays while b uses the address, and names b");
	ok &= ASSERT_EQ(vips_count(), 4, "b's key, c's key and the two markers");
	ok &= svc_gone(a.id, be, recs, 2);
	ct_count_raw(&cc);
	ok &= ASSERT_EQ(cc.n[a.id][0] + cc.n[a.id][1], 0, "a's flows gone");
	ok &= ASSERT_EQ(cc.n[c.id][0], 10, "c's flows stay");
	{
		struct bgs_counter z[64] = {}, got[64];
		__u32 key = be[0];

		ok &= ASSERT_OK(bpf_map_lookup_elem(bgs_map_fd(fx.h, "be_stats"), &key, got),
				"read");
		ok &= ASSERT_MEMEQ(got, z, sizeof(got[0]) * (size_t)ncpus,
				   "backend counters zeroed");
	}
	n = map_keys(pv_fd, sizeof(struct bgs_preview_key), &keys);
	ok &= ASSERT_EQ(n, 1, "only c's preview prefix left");
	if (n == 1)
		ok &= ASSERT_EQ(ntohl(((struct bgs_preview_key *)keys)->svc_id), c.id,
				"it is c's");
	free(keys);

	/* delete b: the last user of the address: the marker goes */
	ok &= ASSERT_OK(bgs_service_del(fx.h, b.id), "delete b");
	ok &= ASSERT_FALSE(marker_get(&a.vip, &v), "marker gone with the last user");
	ok &= ASSERT_EQ(vips_count(), 2, "c's key and marker");
	ok &= ASSERT_OK(bgs_service_del(fx.h, c.id), "delete c");
	ok &= ASSERT_EQ(vips_count(), 0, "no VIP key left");
	n = map_keys(pv_fd, sizeof(struct bgs_preview_key), &keys);
	free(keys);
	ok &= ASSERT_EQ(n, 0, "no preview prefix left");
	ok &= ASSERT_EQ(revnat_used(), 0, "no reverse-nat key left");
	ok &= ASSERT_EQ(fx_ct_count(), 0, "no flow left");
	ok &= ASSERT_EQ(bgs_service_list(fx.h, NULL, 0), 0, "no service left");

	/* a service added over stale counters starts at zero */
	{
		struct bgs_counter got;
		struct fx_svc d;

		for (i = 0; i < (__u32)ncpus; i++)
			cnt[i] = (struct bgs_counter){ .packets = 9, .bytes = 9, .new_flows = 9,
						       .resets = 9 };
		ok &= percpu_write(bgs_map_fd(fx.h, "svc_stats"), a.id * 2, cnt);
		ok &= svc_add(&d, "kd", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 0);
		ok &= ASSERT_EQ(d.id, a.id, "lowest free id reused");
		ok &= ASSERT_OK(bgs_svc_counters(fx.h, d.id, BGS_BLUE, &got), "counters");
		ok &= ASSERT_EQ(got.packets + got.bytes + got.new_flows + got.resets, 0,
				"start at zero");
	}
out:
	del_all_services(fx.h);
	ct_clear();
	return ok;
}

/* ---- Backends ---- */

static bool test_backend_reuse(void)
{
	struct bgs_backend r1, r2, r3;
	struct bgs_revnat_key rk = {};
	struct fx_svc s, t;
	__u32 id1, id2, id3;
	bool ok = true;

	if (!svc_add(&s, "reuse", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 0) ||
	    !fx_be_add(&s, BGS_BLUE, FX_NET_BACKEND, next_be++, 8080, 0, &id1) ||
	    !ASSERT_OK(bgs_backend_get(fx.h, id1, &r1), "get"))
		return false;
	ok &= ASSERT_GT(r1.incarnation, 0, "incarnation");
	ok &= fx_be_del(id1);
	ok &= ASSERT_ERR(bgs_backend_get(fx.h, id1, NULL), -ENOENT, "gone");
	rk.port = r1.port;
	rk.proto = IPPROTO_TCP;
	rk.family = r1.family;
	memcpy(rk.addr, r1.addr, 16);
	ok &= ASSERT_ERR(bgs_revnat_lookup(fx.h, &rk, NULL), -ENOENT, "its reverse-nat key gone");

	ok &= fx_be_add(&s, BGS_GREEN, FX_NET_BACKEND, next_be++, 8081, 7, &id2);
	ok &= ASSERT_EQ(id2, id1, "the freed id is given out again");
	ok &= ASSERT_OK(bgs_backend_get(fx.h, id2, &r2), "get");
	ok &= ASSERT_EQ(r2.incarnation, r1.incarnation + 1, "with the next incarnation");
	ok &= ASSERT_EQ(r2.weight, 7, "new record");
	ok &= ASSERT_EQ(r2.color, BGS_GREEN, "new record");

	/* a service delete frees its backends the same way */
	ok &= ASSERT_OK(bgs_service_del(fx.h, s.id), "service delete");
	ok &= svc_add(&t, "reuse2", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_DSR, 0);
	ok &= fx_be_add(&t, BGS_BLUE, FX_NET_BACKEND, next_be++, 0, 0, &id3);
	ok &= ASSERT_EQ(id3, id1, "the id again");
	ok &= ASSERT_OK(bgs_backend_get(fx.h, id3, &r3), "get");
	ok &= ASSERT_EQ(r3.incarnation, r1.incarnation + 2, "incarnation + 2");
	del_all_services(fx.h);
	return ok;
}

/* ---- The flip word ---- */

static bool word_is(__u64 w, __u32 live, bool draining, __u32 slot_b, __u32 slot_g, bool sticky,
		    __u32 canary, __u32 gen, const char *what)
{
	bool ok = true;

	test_ctx("%s: word %#llx", what, (unsigned long long)w);
	ok &= ASSERT_EQ(bgs_fw_live(w), live, "live color");
	ok &= ASSERT_EQ(!!(w & BGS_FW_DRAINING), draining, "draining bit");
	ok &= ASSERT_EQ(bgs_fw_slot(w, BGS_BLUE), slot_b, "blue slot");
	ok &= ASSERT_EQ(bgs_fw_slot(w, BGS_GREEN), slot_g, "green slot");
	ok &= ASSERT_EQ(!!(w & BGS_FW_STICKY), sticky, "sticky bit");
	ok &= ASSERT_TRUE(w & BGS_FW_ACTIVE, "active bit");
	ok &= ASSERT_EQ(bgs_fw_canary(w), canary, "canary");
	ok &= ASSERT_EQ(bgs_fw_gen(w), gen, "generation");
	ok &= ASSERT_EQ(w & 0x80, 0, "unused bit 7 clear");
	ok &= ASSERT_EQ((w >> 24) & 0xff, 0, "unused bits 24-31 clear");
	test_ctx("%s", "");
	return ok;
}

static bool test_flip_word(void)
{
	struct bgs_flip_opts o = { .to_color = BGS_ANY_COLOR, .expect_gen = BGS_ANY_GEN };
	struct bgs_flip f, g;
	struct fx_svc s;
	__u64 j0, j1;
	__u32 hz, id, b;
	bool ok = true;

	if (!svc_add(&s, "word", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 0) ||
	    !flip_get(s.id, &f))
		return false;
	/* A slot used before goes on from its last generation: b counts from there. */
	b = bgs_fw_gen(f.word) - 1;
	ok &= word_is(f.word, BGS_BLUE, false, 0, 0, false, 0, 1 + b, "new service");
	ok &= ASSERT_EQ(bgs_flip_drain(&f)->deadline, 0, "no drain deadline");
	ok &= ASSERT_EQ(bgs_flip_drain(&f)->gen, 0, "no drain generation");

	ok &= fx_be_add(&s, BGS_BLUE, FX_NET_BACKEND, next_be++, 8080, 0, &id);
	flip_get(s.id, &f);
	ok &= word_is(f.word, BGS_BLUE, false, 1, 0, false, 0, 2 + b, "blue backend added");
	ok &= fx_be_add(&s, BGS_GREEN, FX_NET_BACKEND, next_be++, 8080, 0, &id);
	flip_get(s.id, &f);
	ok &= word_is(f.word, BGS_BLUE, false, 1, 1, false, 0, 3 + b, "green backend added");

	ok &= ASSERT_OK(bgs_canary_set(fx.h, s.id, 2500, true, 3 + b, &f), "canary");
	ok &= word_is(f.word, BGS_BLUE, false, 1, 1, true, 2500, 4 + b, "canary 25% sticky");
	ok &= ASSERT_OK(bgs_canary_set(fx.h, s.id, BGS_CANARY_SCALE, false, BGS_ANY_GEN, &f),
			"canary");
	ok &= word_is(f.word, BGS_BLUE, false, 1, 1, false, BGS_CANARY_SCALE, 5 + b, "canary 100%");
	ok &= ASSERT_OK(bgs_canary_set(fx.h, s.id, 1234, true, BGS_ANY_GEN, &f), "canary");

	/* flip with a 5 s drain: deadline = the program's clock + 5 s */
	o.drain_ms = 5000;
	ok &= ASSERT_OK(bgs_clock(fx.h, &j0, &hz), "clock");
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, &f), 1, "flip");
	ok &= ASSERT_OK(bgs_clock(fx.h, &j1, &hz), "clock");
	ok &= word_is(f.word, BGS_GREEN, true, 1, 1, true, 0, 7 + b, "flip, 5 s drain");
	ok &= ASSERT_EQ(bgs_flip_drain(&f)->gen, 7 + b, "drain generation = the flip's");
	ok &= ASSERT_GE(bgs_flip_drain(&f)->deadline, j0 + 5ULL * hz, "deadline not before now + 5 s");
	ok &= ASSERT_LE(bgs_flip_drain(&f)->deadline, j1 + 5ULL * hz, "deadline not after now + 5 s");
	ok &= ASSERT_OK(bgs_service_get(fx.h, s.id, NULL, &g), "get");
	ok &= ASSERT_MEMEQ(&g, &f, sizeof(f), "after = what get reads");

	/* drain end: the bit only, the drain fields stay */
	ok &= ASSERT_OK(bgs_drain_end(fx.h, s.id, &g), "drain end");
	ok &= word_is(g.word, BGS_GREEN, false, 1, 1, true, 0, 8 + b, "drain ended");
	ok &= ASSERT_EQ(bgs_flip_drain(&g)->gen, bgs_flip_drain(&f)->gen, "drain generation kept");
	ok &= ASSERT_OK(bgs_drain_end(fx.h, s.id, &f), "drain end again");
	ok &= ASSERT_MEMEQ(&f, &g, sizeof(f), "no drain: nothing published");

	/* rollback without a deadline, then a flip that ends its drain at once */
	o.drain_ms = BGS_NO_DEADLINE;
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, &f), 1, "rollback");
	ok &= word_is(f.word, BGS_BLUE, true, 1, 1, true, 0, 9 + b, "rollback, no deadline");
	ok &= ASSERT_EQ(bgs_flip_drain(&f)->deadline, BGS_NO_DEADLINE, "never ends by itself");
	ok &= ASSERT_EQ(bgs_flip_drain(&f)->gen, 9 + b, "drain generation");
	o.drain_ms = 0;
	o.expect_gen = 9 + b;
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, &f), 1, "flip, drain 0");
	ok &= word_is(f.word, BGS_GREEN, false, 1, 1, true, 0, 10 + b, "flip with drain 0");
	ok &= ASSERT_EQ(bgs_flip_drain(&f)->gen, 10 + b, "drain generation recorded even without a drain");
	ok &= ASSERT_EQ(bgs_flip_drain(&f)->deadline, 0, "deadline 0");

	/* to the live color: 0 and the same word */
	o.to_color = BGS_GREEN;
	o.expect_gen = BGS_ANY_GEN;
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, &g), 0, "flip to live");
	ok &= ASSERT_MEMEQ(&g, &f, sizeof(f), "nothing published");
	/* huge drains: the deadline is now + drain in jiffies, saturated at "never", never
	 * wrapped into the past */
	{
		static const __u64 drains[] = { BGS_NO_DEADLINE - 1, BGS_NO_DEADLINE / 2,
						(BGS_NO_DEADLINE / 1000) * 999, 1ULL << 40 };
		size_t i;

		for (i = 0; i < ARRAY_SIZE(drains); i++) {
			__u64 d = drains[i], lo, hi;

			o.to_color = (int)(i & 1) ? BGS_GREEN : BGS_BLUE;
			o.drain_ms = d;
			test_ctx("drain %llu ms", (unsigned long long)d);
			ok &= ASSERT_OK(bgs_clock(fx.h, &j0, &hz), "clock");
			ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &o, &f), 1, "flip, huge drain");
			ok &= ASSERT_OK(bgs_clock(fx.h, &j1, &hz), "clock");
			d = d / 1000 * hz + d % 1000 * hz / 1000; /* hz <= 1000: no overflow */
			lo = d > ~0ULL - 1 - j0 ? ~0ULL : d + j0;
			hi = d > ~0ULL - 1 - j1 ? ~0ULL : d + j1;
			ok &= ASSERT_TRUE(bgs_flip_drain(&f)->deadline >= lo && bgs_flip_drain(&f)->deadline <= hi,
					  "deadline = now + drain, saturated");
			ok &= ASSERT_TRUE(bgs_flip_drain(&f)->deadline > j1, "not in the past");
		}
		test_ctx("%s", "");
	}
	del_all_services(fx.h);
	return ok;
}

/* ---- Pool changes go to the idle slot; the retired slot is left as it was ---- */

/* Runs change() and checks the publish: the pool's slot bit toggled and nothing else of the
 * word but the generation (+1), the retired slot and the other color's tables untouched.
 * Returns the new table in *out (caller frees). */
static bool pool_step(const struct fx_svc *s, __u32 color, const char *what,
		      bool (*change)(void *), void *arg, __u32 **out)
{
	const __u64 keep = ~(0xcULL | (0xffffffffULL << BGS_FW_GEN_SHIFT));
	struct bgs_flip before, after;
	__u32 *old_cur, *other[2], *now_old, *o2[2];
	__u32 slot, m = fx.meta.maglev_size, i;
	bool ok = true;

	*out = NULL;
	if (!flip_get(s->id, &before))
		return false;
	slot = bgs_fw_slot(before.word, color);
	old_cur = table_copy(s->id, color, slot);
	for (i = 0; i < 2; i++)
		other[i] = table_copy(s->id, !color, i);
	test_ctx("%s", what);
	ok &= change(arg);
	flip_get(s->id, &after);
	now_old = table_copy(s->id, color, slot);
	*out = table_copy(s->id, color, !slot);
	for (i = 0; i < 2; i++)
		o2[i] = table_copy(s->id, !color, i);
	ok &= ASSERT_EQ(bgs_fw_slot(after.word, color), !slot, "slot bit toggled");
	ok &= ASSERT_EQ(bgs_fw_slot(after.word, !color), bgs_fw_slot(before.word, !color),
			"other color's slot bit kept");
	ok &= ASSERT_EQ(bgs_fw_gen(after.word), bgs_fw_gen(before.word) + 1, "one publish");
	ok &= ASSERT_EQ(after.word & keep, before.word & keep,
			"live, drain, canary, sticky, active kept");
	ok &= ASSERT_MEMEQ(now_old, old_cur, m * sizeof(__u32), "retired slot left intact");
	ok &= ASSERT_MEMEQ(o2[0], other[0], m * sizeof(__u32), "other color untouched (slot 0)");
	ok &= ASSERT_MEMEQ(o2[1], other[1], m * sizeof(__u32), "other color untouched (slot 1)");
	free(old_cur);
	free(now_old);
	for (i = 0; i < 2; i++) {
		free(other[i]);
		free(o2[i]);
	}
	return ok;
}

struct pool_arg {
	const struct fx_svc *s;
	__u32 color, id;
	int n;
};

static bool do_add(void *a)
{
	struct pool_arg *p = a;

	return fx_be_add(p->s, p->color, FX_NET_BACKEND, p->n, 8080, 0, &p->id);
}

static bool do_drain(void *a)
{
	return ASSERT_OK(bgs_backend_set_admin(fx.h, ((struct pool_arg *)a)->id, BGS_ADMIN_DRAIN),
			 "admin drain");
}

static bool do_up(void *a)
{
	return ASSERT_OK(bgs_backend_set_admin(fx.h, ((struct pool_arg *)a)->id, BGS_ADMIN_UP),
			 "admin up");
}

static bool do_sick(void *a)
{
	return ASSERT_OK(bgs_backend_set_health(fx.h, ((struct pool_arg *)a)->id,
						BGS_HEALTH_DOWN), "health down");
}

static bool do_del(void *a)
{
	return fx_be_del(((struct pool_arg *)a)->id);
}

/* One pool change and its checks; the usable pool afterwards is *want[0..n) (read after
 * the change, so that an add's new id can be in it). */
static bool pool_check(const struct fx_svc *s, const char *what, bool (*change)(void *),
		       void *arg, __u32 *const *want, __u32 n)
{
	__u32 *t, ids[8], i;
	bool ok = pool_step(s, BGS_BLUE, what, change, arg, &t);

	for (i = 0; i < n; i++)
		ids[i] = *want[i];
	if (t && n) {
		ok &= table_holds(t, ids, n, "new slot holds exactly the usable pool");
	} else if (t) {
		for (i = 0; i < fx.meta.maglev_size && !t[i]; i++)
			;
		ok &= ASSERT_EQ(i, fx.meta.maglev_size, "empty pool: empty table");
	}
	test_ctx("%s", "");
	free(t);
	return ok && t;
}

static bool test_pool_slots(void)
{
	struct pool_arg a, b, c;
	struct fx_svc s;
	__u32 g;
	bool ok = true;

	if (!svc_add(&s, "slots", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 0) ||
	    !fx_be_add(&s, BGS_GREEN, FX_NET_BACKEND, next_be++, 8080, 0, &g))
		return false;
	/* a canary and a flip first: pool changes must keep them */
	ok &= ASSERT_OK(bgs_canary_set(fx.h, s.id, 300, true, BGS_ANY_GEN, NULL), "canary");
	ok &= ASSERT_EQ(bgs_flip(fx.h, s.id, &(struct bgs_flip_opts){ .to_color = BGS_ANY_COLOR,
				 .expect_gen = BGS_ANY_GEN, .drain_ms = BGS_NO_DEADLINE,
				 .force = true }, NULL), 1, "flip to green");
	a = (struct pool_arg){ .s = &s, .color = BGS_BLUE, .n = next_be++ };
	b = (struct pool_arg){ .s = &s, .color = BGS_BLUE, .n = next_be++ };
	c = (struct pool_arg){ .s = &s, .color = BGS_BLUE, .n = next_be++ };
	ok &= pool_check(&s, "add a", do_add, &a, (__u32 *[]){ &a.id }, 1);
	ok &= pool_check(&s, "add b", do_add, &b, (__u32 *[]){ &a.id, &b.id }, 2);
	ok &= pool_check(&s, "add c", do_add, &c, (__u32 *[]){ &a.id, &b.id, &c.id }, 3);
	ok &= pool_check(&s, "drain a", do_drain, &a, (__u32 *[]){ &b.id, &c.id }, 2);
	ok &= pool_check(&s, "a up again", do_up, &a, (__u32 *[]){ &a.id, &b.id, &c.id }, 3);
	ok &= pool_check(&s, "b unhealthy", do_sick, &b, (__u32 *[]){ &a.id, &c.id }, 2);
	ok &= pool_check(&s, "delete a", do_del, &a, (__u32 *[]){ &c.id }, 1);
	ok &= pool_check(&s, "delete c", do_del, &c, NULL, 0);
	/* b (unhealthy) is still in the pool but in no table */
	ok &= ASSERT_EQ(bgs_pool_list(fx.h, s.id, BGS_BLUE, NULL, 0), 1, "b still listed");
	ok &= ASSERT_FALSE(bgs_pool_usable(fx.h, s.id, BGS_BLUE), "but not usable");
	del_all_services(fx.h);
	return ok;
}

/* ---- Conntrack walks and kills ---- */

static bool test_flow_walk_kill(void)
{
	struct bgs_flip_opts o = { .to_color = BGS_GREEN, .expect_gen = BGS_ANY_GEN,
				   .drain_ms = BGS_NO_DEADLINE, .force = true };
	struct fx_svc a, b;
	struct ct_count c, raw;
	bool ok = true;
	int r;

	if (!ct_clear() || !svc_add(&a, "wa", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 0) ||
	    !svc_add(&b, "wb", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 0))
		return false;
	/* more than one batch of the library's walk (8192) */
	ok &= ct_insert(a.id, BGS_BLUE, 9000, 1) && ct_insert(a.id, BGS_GREEN, 8500, 2);
	ok &= ct_insert(b.id, BGS_BLUE, 1500, 3) && ct_insert(b.id, BGS_GREEN, 1000, 4);
	if (!ok)
		goto out;
	memset(&c, 0, sizeof(c));
	ok &= ASSERT_OK(bgs_flow_walk(fx.h, count_cb, &c), "walk");
	ct_count_raw(&raw);
	ok &= ASSERT_EQ(raw.total, 20000, "entries inserted");
	ok &= ASSERT_EQ(c.total, 20000, "walk sees every flow once");
	ok &= ASSERT_MEMEQ(c.n, raw.n, sizeof(c.n), "per service and color");
	ok &= ASSERT_EQ(c.n[a.id][BGS_BLUE], 9000, "a blue");
	ok &= ASSERT_EQ(c.n[b.id][BGS_GREEN], 1000, "b green");

	/* the callback's non-zero value stops the walk and is returned */
	memset(&c, 0, sizeof(c));
	c.stop_after = 10;
	ok &= ASSERT_EQ(bgs_flow_walk(fx.h, count_cb, &c), 7, "stopped walk returns 7");
	ok &= ASSERT_EQ(c.calls, 10, "no call after the stop");
	ok &= ASSERT_ERR(bgs_flow_walk(fx.h, NULL, NULL), -EINVAL, "no callback");

	/* a is blue-live: only its green flows go */
	ok &= ASSERT_EQ(bgs_flow_kill(fx.h, a.id, BGS_BLUE), 0, "live color: none");
	ok &= ASSERT_EQ(bgs_flow_kill(fx.h, a.id, BGS_ANY_COLOR), 8500, "a's green flows");
	ct_count_raw(&raw);
	ok &= ASSERT_EQ(raw.n[a.id][BGS_BLUE], 9000, "a blue kept");
	ok &= ASSERT_EQ(raw.n[a.id][BGS_GREEN], 0, "a green gone");
	ok &= ASSERT_EQ(raw.n[b.id][BGS_BLUE] + raw.n[b.id][BGS_GREEN], 2500, "b untouched");

	/* after a flip to green, the blue ones are the non-live ones */
	ok &= ASSERT_EQ(bgs_flip(fx.h, a.id, &o, NULL), 1, "flip a");
	ok &= ASSERT_EQ(bgs_flow_kill(fx.h, a.id, BGS_GREEN), 0, "live green: none");
	r = bgs_flow_kill(fx.h, a.id, BGS_BLUE);
	ok &= ASSERT_EQ(r, 9000, "a's blue flows");
	ok &= ASSERT_EQ(bgs_flow_kill(fx.h, b.id, BGS_GREEN), 1000, "b's green flows");
	ok &= ASSERT_EQ(bgs_flow_kill(fx.h, b.id, BGS_ANY_COLOR), 0, "nothing left to kill");
	ct_count_raw(&raw);
	ok &= ASSERT_EQ(raw.total, 1500, "only b's blue flows left");
	ok &= ASSERT_EQ(raw.n[b.id][BGS_BLUE], 1500, "b's blue flows");
out:
	del_all_services(fx.h);
	ct_clear();
	return ok;
}

/*
 * Which entries a kill removes, in the kernel (bgs_ct_reap) in one run or in many
 * (BGS_REAP_RUN), and by the user-space walk (BGS_REAP_USER): the same ones. Of the
 * service and color, not live: those of another epoch, and of this epoch those created up
 * to the generation read when the kill began; an entry of a later generation (a flow a
 * flip sent there while the kill ran) stays, and so do the live color's and other
 * services' entries.
 */
static bool test_flow_kill_bounds(void)
{
	struct bgs_flip_opts o = { .to_color = BGS_GREEN, .expect_gen = BGS_ANY_GEN,
				   .drain_ms = BGS_NO_DEADLINE, .force = true };
	static const char *const how[] = { "kernel", "kernel, runs of 1000", "user space" };
	struct fx_svc a, b;
	struct bgs_flip f;
	struct ct_count raw;
	__u32 gen, epoch;
	bool ok = true;
	int i;

	if (!ct_clear() || !svc_add(&a, "ka", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 0) ||
	    !svc_add(&b, "kb", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 0))
		return false;
	ok &= ASSERT_EQ(bgs_flip(fx.h, a.id, &o, &f), 1, "flip a to green");
	gen = bgs_flip_gen(&f);
	for (i = 0; ok && i < 3; i++) {
		if (i == 1)
			setenv("BGS_REAP_RUN", "1000", 1); /* 11 runs, each walking again */
		if (i == 2)
			setenv("BGS_REAP_USER", "1", 1);
		ok &= ASSERT_TRUE(fx_flip_get(&a, &f), "read a's flip entry");
		epoch = f.epoch;
		ok &= ct_insert_gen(a.id, BGS_BLUE, 10000, 1, epoch, gen - 1);   /* drained */
		ok &= ct_insert_gen(a.id, BGS_BLUE, 300, 1, epoch, gen);	      /* after the flip */
		ok &= ct_insert_gen(a.id, BGS_BLUE, 7, 1, epoch, gen + 1);	      /* later: kept */
		ok &= ct_insert_gen(a.id, BGS_BLUE, 5, 1, epoch + 1, gen + 9);   /* other epoch */
		ok &= ct_insert_gen(a.id, BGS_GREEN, 200, 1, epoch, gen);	      /* live: kept */
		ok &= ct_insert_gen(b.id, BGS_BLUE, 50, 1, epoch, gen - 1);      /* b: kept */
		if (!ok)
			break;
		ok &= ASSERT_EQ(bgs_flow_kill(fx.h, a.id, BGS_BLUE), 10305, how[i]);
		ct_count_raw(&raw);
		ok &= ASSERT_EQ(raw.n[a.id][BGS_BLUE], 7, "a: the later generation's blue kept");
		ok &= ASSERT_EQ(raw.n[a.id][BGS_GREEN], 200, "a: live green kept");
		ok &= ASSERT_EQ(raw.n[b.id][BGS_BLUE], 50, "b untouched");
		ok &= ASSERT_EQ(bgs_flow_kill(fx.h, a.id, BGS_GREEN), 0, "live green: none");
		ok &= ct_clear();
	}
	unsetenv("BGS_REAP_RUN");
	unsetenv("BGS_REAP_USER");
	del_all_services(fx.h);
	ct_clear();
	return ok;
}

/* ---- Counters ---- */

static bool test_counters(void)
{
	struct bgs_counter *v = calloc((size_t)ncpus, sizeof(*v)), got;
	struct bgs_reason_counter *rv = calloc((size_t)ncpus, sizeof(*rv)),
				  rsum[BGS_R_MAX], rbefore[BGS_R_MAX];
	struct fx_svc s;
	__u64 ep = 0, eb = 0, en = 0, er = 0;
	__u32 id, key;
	bool ok = true;
	int i;

	if (!v || !rv || !svc_add(&s, "cnt", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 0) ||
	    !fx_be_add(&s, BGS_BLUE, FX_NET_BACKEND, next_be++, 8080, 0, &id))
		goto fail;
	for (i = 0; i < ncpus; i++) {
		v[i].packets = (1ULL << 40) + (__u64)i * 3 + 1;
		v[i].bytes = (1ULL << 50) + (__u64)i * 1500;
		v[i].new_flows = (__u64)i + 7;
		v[i].resets = (1ULL << 33) + (__u64)i * 5;
		ep += v[i].packets;
		eb += v[i].bytes;
		en += v[i].new_flows;
		er += v[i].resets;
	}
	ok &= percpu_write(bgs_map_fd(fx.h, "svc_stats"), s.id * 2 + BGS_GREEN, v);
	ok &= ASSERT_OK(bgs_svc_counters(fx.h, s.id, BGS_GREEN, &got), "green");
	ok &= ASSERT_EQ(got.packets, ep, "packets summed over CPUs");
	ok &= ASSERT_EQ(got.bytes, eb, "bytes summed over CPUs");
	ok &= ASSERT_EQ(got.new_flows, en, "new flows summed over CPUs");
	ok &= ASSERT_EQ(got.resets, er, "resets summed over CPUs");
	ok &= ASSERT_OK(bgs_svc_counters(fx.h, s.id, BGS_BLUE, &got), "blue");
	ok &= ASSERT_EQ(got.packets + got.bytes + got.new_flows + got.resets, 0, "blue untouched");

	ok &= percpu_write(bgs_map_fd(fx.h, "be_stats"), id, v);
	ok &= ASSERT_OK(bgs_backend_counters(fx.h, id, &got), "backend");
	ok &= ASSERT_EQ(got.packets, ep, "backend packets");
	ok &= ASSERT_EQ(got.bytes, eb, "backend bytes");
	ok &= ASSERT_EQ(got.new_flows, en, "backend new flows");
	ok &= ASSERT_EQ(got.resets, er, "backend resets");

	/* reasons: one written, every other one as it was */
	fx_reasons(rbefore);
	for (i = 0; i < ncpus; i++)
		rv[i] = (struct bgs_reason_counter){ .packets = 100 + (__u64)i,
						     .bytes = 6400 + (__u64)i };
	key = BGS_R_DROP_FRAGMENT;
	ok &= ASSERT_OK(bpf_map_update_elem(bgs_map_fd(fx.h, "reasons"), &key, rv, BPF_ANY),
			"reason write");
	ok &= ASSERT_OK(bgs_reason_counters(fx.h, rsum), "reasons");
	for (i = 0; i < BGS_R_MAX; i++) {
		__u64 wp = 0, wb = 0;
		int c;

		if (i == BGS_R_DROP_FRAGMENT) {
			for (c = 0; c < ncpus; c++) {
				wp += rv[c].packets;
				wb += rv[c].bytes;
			}
		} else {
			wp = rbefore[i].packets;
			wb = rbefore[i].bytes;
		}
		test_ctx("reason %s", bgs_reason_name(i));
		ok &= ASSERT_EQ(rsum[i].packets, wp, "packets");
		ok &= ASSERT_EQ(rsum[i].bytes, wb, "bytes");
	}
	test_ctx("%s", "");
	ok &= ASSERT_EQ(strcmp(bgs_reason_name(BGS_R_MAX), "unknown"), 0, "name past the end");
	ok &= ASSERT_EQ(strcmp(bgs_reason_name((enum bgs_reason)-1), "unknown"), 0, "negative");
	free(v);
	free(rv);
	del_all_services(fx.h);
	return ok;
fail:
	free(v);
	free(rv);
	return false;
}

/* ---- Concurrent changes ---- */

#define CANARY_CALLS 60

struct worker {
	pthread_t t;
	const char *pin_dir;
	__u32 svc;
	int kind, idx;
	__u32 gens[CANARY_CALLS];
	int ngens, errors, flips, stale;
	__u32 ids[8];
	int nids;
	int ret;
};

static void *canary_worker(void *arg)
{
	struct worker *w = arg;
	struct bgs_flip f;
	struct bgs *h;
	int i, r;

	if (bgs_open(w->pin_dir, &h)) {
		w->errors++;
		return NULL;
	}
	for (i = 0; i < CANARY_CALLS; i++) {
		r = bgs_canary_set(h, w->svc, (__u32)(w->idx * 1000 + i), i & 1, BGS_ANY_GEN, &f);
		if (r) {
			w->errors++;
			continue;
		}
		/* what this call published: its own bps with its own generation */
		if (bgs_fw_canary(f.word) == (__u32)(w->idx * 1000 + i))
			w->gens[w->ngens++] = bgs_fw_gen(f.word);
	}
	bgs_close(h);
	return NULL;
}

static void *cas_flip_worker(void *arg)
{
	struct worker *w = arg;
	struct bgs_flip_opts o = { .to_color = BGS_ANY_COLOR, .drain_ms = 0, .force = true };
	struct bgs_flip f;
	struct bgs *h;
	int i, r;

	if (bgs_open(w->pin_dir, &h)) {
		w->errors++;
		return NULL;
	}
	for (i = 0; i < 40; i++) {
		if (bgs_service_get(h, w->svc, NULL, &f)) {
			w->errors++;
			continue;
		}
		o.expect_gen = bgs_fw_gen(f.word);
		r = bgs_flip(h, w->svc, &o, NULL);
		if (r == 1)
			w->flips++;
		else if (r == -ESTALE)
			w->stale++;
		else
			w->errors++;
	}
	bgs_close(h);
	return NULL;
}

static void *backend_worker(void *arg)
{
	struct worker *w = arg;
	struct bgs_backend_spec b = {};
	struct bgs *h;
	int i;

	if (bgs_open(w->pin_dir, &h)) {
		w->errors++;
		return NULL;
	}
	fx_be_ip(BGS_AF_INET, FX_NET_BACKEND, 100 + w->idx, &b.addr);
	for (i = 0; i < 6; i++) {
		b.port = (__u16)(9000 + i);
		if (bgs_backend_add(h, w->svc, BGS_BLUE, &b, &w->ids[w->nids]))
			w->errors++;
		else
			w->nids++;
	}
	bgs_close(h);
	return NULL;
}

static void *same_name_worker(void *arg)
{
	struct worker *w = arg;
	struct bgs_service_spec sp = { .name = "race", .port = (__u16)(100 + w->idx),
				       .proto = IPPROTO_TCP, .mode = BGS_MODE_NAT };
	struct bgs *h;

	if (bgs_open(w->pin_dir, &h)) {
		w->errors++;
		return NULL;
	}
	fx_vip(BGS_AF_INET, 200, &sp.vip);
	w->ret = bgs_service_add(h, &sp, &w->svc);
	bgs_close(h);
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

static bool test_concurrent_threads(void)
{
	struct worker w[2] = {};
	__u32 all[2 * CANARY_CALLS], gen0, i, ids[16];
	struct bgs_flip f;
	struct fx_svc s;
	bool ok = true;
	int k, n;

	if (!svc_add(&s, "conc", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 0) ||
	    !flip_get(s.id, &f))
		return false;
	gen0 = bgs_fw_gen(f.word);

	/* canary changes from two threads: no lost update, each generation once */
	for (k = 0; k < 2; k++) {
		w[k] = (struct worker){ .pin_dir = fx.pin_dir, .svc = s.id, .idx = k + 1 };
		pthread_create(&w[k].t, NULL, canary_worker, &w[k]);
	}
	for (k = 0; k < 2; k++)
		pthread_join(w[k].t, NULL);
	flip_get(s.id, &f);
	ok &= ASSERT_EQ(w[0].errors + w[1].errors, 0, "every canary call succeeded");
	ok &= ASSERT_EQ(bgs_fw_gen(f.word), gen0 + 2 * CANARY_CALLS, "one generation per call");
	n = w[0].ngens + w[1].ngens;
	memcpy(all, w[0].gens, sizeof(__u32) * (size_t)w[0].ngens);
	memcpy(all + w[0].ngens, w[1].gens, sizeof(__u32) * (size_t)w[1].ngens);
	qsort(all, (size_t)n, sizeof(all[0]), cmp_u32);
	ok &= ASSERT_EQ(n, 2 * CANARY_CALLS, "every call saw its own publish");
	if (n == 2 * CANARY_CALLS) {
		ok &= ASSERT_EQ(all[0], gen0 + 1, "first generation");
		ok &= ASSERT_EQ(all[n - 1], gen0 + 2 * CANARY_CALLS, "last generation");
	}
	for (k = 1; k < n; k++)
		if (all[k] == all[k - 1]) {
			FAILF("generation %u published twice", all[k]);
			ok = false;
			break;
		}
	ok &= ASSERT_EQ(bgs_fw_canary(f.word) / 1000 >= 1, 1, "last writer's canary");

	/* compare-and-swap flips: every success is one generation, the rest are stale */
	gen0 = bgs_fw_gen(f.word);
	for (k = 0; k < 2; k++) {
		w[k] = (struct worker){ .pin_dir = fx.pin_dir, .svc = s.id, .idx = k + 1 };
		pthread_create(&w[k].t, NULL, cas_flip_worker, &w[k]);
	}
	for (k = 0; k < 2; k++)
		pthread_join(w[k].t, NULL);
	flip_get(s.id, &f);
	ok &= ASSERT_EQ(w[0].errors + w[1].errors, 0, "only flips and stale refusals");
	ok &= ASSERT_EQ(w[0].flips + w[0].stale + w[1].flips + w[1].stale, 80, "every call");
	ok &= ASSERT_EQ(bgs_fw_gen(f.word), gen0 + (__u32)(w[0].flips + w[1].flips),
			"generations = successful flips");
	ok &= ASSERT_EQ(bgs_fw_live(f.word), (__u32)((w[0].flips + w[1].flips) & 1),
			"live color = parity of the flips");

	/* backend adds to one pool from two threads: every one in, the table has them all */
	for (k = 0; k < 2; k++) {
		w[k] = (struct worker){ .pin_dir = fx.pin_dir, .svc = s.id, .idx = k };
		pthread_create(&w[k].t, NULL, backend_worker, &w[k]);
	}
	for (k = 0; k < 2; k++)
		pthread_join(w[k].t, NULL);
	ok &= ASSERT_EQ(w[0].errors + w[1].errors, 0, "every add succeeded");
	n = bgs_pool_list(fx.h, s.id, BGS_BLUE, ids, 16);
	ok &= ASSERT_EQ(n, 12, "twelve backends");
	if (n == 12) {
		__u32 *t;

		flip_get(s.id, &f);
		t = table_copy(s.id, BGS_BLUE, bgs_fw_slot(f.word, BGS_BLUE));
		ok &= t && table_holds(t, ids, 12, "current table holds all twelve");
		free(t);
		for (i = 0; i < 12; i++) {
			struct bgs_backend r;

			ok &= ASSERT_OK(bgs_backend_get(fx.h, ids[i], &r), "record");
		}
	}
	del_all_services(fx.h);

	/* the same name at once: one wins, the other is told it exists */
	for (i = 0; i < 5; i++) {
		for (k = 0; k < 2; k++) {
			w[k] = (struct worker){ .pin_dir = fx.pin_dir, .idx = k };
			pthread_create(&w[k].t, NULL, same_name_worker, &w[k]);
		}
		for (k = 0; k < 2; k++)
			pthread_join(w[k].t, NULL);
		ok &= ASSERT_TRUE((w[0].ret == 0 && w[1].ret == -EEXIST) ||
					  (w[1].ret == 0 && w[0].ret == -EEXIST),
				  "exactly one add of 'race'");
		ok &= ASSERT_EQ(bgs_service_list(fx.h, NULL, 0), 1, "one service");
		ok &= ASSERT_EQ(vips_count(), 2, "its VIP key and marker only");
		del_all_services(fx.h);
	}
	return ok;
}

/* A forked process and this one add services at the same time, each with its own handle. */
static bool test_concurrent_fork(void)
{
	struct bgs_service_spec sp = { .proto = IPPROTO_TCP, .mode = BGS_MODE_NAT };
	char name[32];
	__u32 ids[64], seen = 0;
	int i, st, n, bad = 0;
	pid_t pid;
	bool ok = true;

	pid = fork();
	if (pid < 0)
		return ASSERT_OK(-errno, "fork");
	if (pid == 0) {
		struct bgs *h;

		if (bgs_open(fx.pin_dir, &h))
			_exit(2);
		for (i = 0; i < 6; i++) {
			snprintf(name, sizeof(name), "child%d", i);
			sp.name = name;
			fx_vip(BGS_AF_INET, 210, &sp.vip);
			sp.port = (__u16)(1000 + i);
			if (bgs_service_add(h, &sp, NULL))
				bad++;
		}
		bgs_close(h);
		_exit(bad ? 1 : 0); /* no atexit handlers: the pins belong to the parent */
	}
	for (i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "parent%d", i);
		sp.name = name;
		fx_vip(BGS_AF_INET, 210, &sp.vip);
		sp.port = (__u16)(2000 + i);
		ok &= ASSERT_OK(bgs_service_add(fx.h, &sp, NULL), name);
	}
	ok &= ASSERT_EQ(waitpid(pid, &st, 0), pid, "wait");
	ok &= ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child's adds all succeeded");
	n = bgs_service_list(fx.h, ids, 64);
	ok &= ASSERT_EQ(n, 12, "twelve services");
	for (i = 0; i < n && i < 64; i++) {
		struct bgs_service sv;

		if (!ASSERT_OK(bgs_service_get(fx.h, ids[i], &sv, NULL), "get"))
			continue;
		if (seen & (1u << ids[i]))
			ok = false;
		seen |= 1u << ids[i];
	}
	ok &= ASSERT_EQ(vips_count(), 13, "twelve VIP keys and one address marker");
	del_all_services(fx.h);
	ok &= ASSERT_EQ(vips_count(), 0, "all gone");
	return ok;
}

/* ---- Port filter ---- */

static __u32 port_flags(__u16 port)
{
	struct bgs_port v = { .flags = ~0u };
	__u32 key = port;

	if (bpf_map_lookup_elem(bgs_map_fd(fx.h, "ports"), &key, &v))
		FAILF("bgs_ports[%u]: %s", port, strerror(errno));
	return v.flags;
}

/* Flags appear before the keys they announce and go with the last user of the port. */
static bool test_port_filter(void)
{
	struct fx_svc t, u, d;
	__u32 be, be2, be3;
	bool ok = true;

	ok &= ASSERT_EQ(port_flags(7001), 0, "unused port");
	ok &= svc_add(&t, "pt", BGS_AF_INET, 7001, IPPROTO_TCP, BGS_MODE_NAT, 7002);
	ok &= svc_add(&u, "pu", BGS_AF_INET, 7001, IPPROTO_UDP, BGS_MODE_NAT, 0);
	ok &= svc_add(&d, "pd", BGS_AF_INET6, 7003, IPPROTO_TCP, BGS_MODE_DSR, 0);
	if (!ok)
		return false;
	ok &= ASSERT_EQ(port_flags(7001), BGS_PORT_VIP_TCP | BGS_PORT_VIP_UDP, "tcp+udp VIP port");
	ok &= ASSERT_EQ(port_flags(7002), BGS_PORT_VIP_TCP, "preview port");
	ok &= ASSERT_EQ(port_flags(7003), BGS_PORT_VIP_TCP, "dsr VIP port");
	ok &= fx_be_add(&t, BGS_BLUE, FX_NET_BACKEND, next_be++, 7100, 1, &be);
	ok &= fx_be_add(&u, BGS_BLUE, FX_NET_BACKEND, next_be++, 7100, 1, &be2);
	ok &= fx_be_add(&d, BGS_BLUE, FX_NET_BACKEND, next_be++, 0, 1, &be3);
	if (!ok)
		return false;
	ok &= ASSERT_EQ(port_flags(7100), BGS_PORT_NAT_TCP | BGS_PORT_NAT_UDP, "nat backend port");
	ok &= ASSERT_EQ(port_flags(7003), BGS_PORT_VIP_TCP, "a dsr backend sets no nat flag");
	ok &= ASSERT_TRUE(fx_be_del(be), "del tcp backend");
	ok &= ASSERT_EQ(port_flags(7100), BGS_PORT_NAT_UDP, "tcp nat flag gone with its backend");
	ok &= ASSERT_TRUE(fx_svc_del(&t), "del tcp service");
	ok &= ASSERT_EQ(port_flags(7001), BGS_PORT_VIP_UDP, "tcp VIP flag gone with its service");
	ok &= ASSERT_EQ(port_flags(7002), 0, "preview flag gone with its service");
	ok &= ASSERT_TRUE(fx_svc_del(&u), "del udp service");
	ok &= ASSERT_EQ(port_flags(7001), 0, "udp VIP flag gone");
	ok &= ASSERT_EQ(port_flags(7100), 0, "nat flag gone with the service's backends");
	ok &= ASSERT_TRUE(fx_svc_del(&d), "del dsr service");
	ok &= ASSERT_EQ(port_flags(7003), 0, "dsr VIP flag gone");
	return ok;
}

/* ---- nat reply table spread ---- */

/* Every backend id can be a nat backend: sequential addresses and ports (how operators
 * number backends) must fit the reply table's probe windows, v4 and v6. */
static bool test_revnat_spread(void)
{
	const __u32 maxb = BGS_DEF_MAX_BACKENDS, size = bgs_revnat_size(maxb);
	static __u8 used[1u << 20];
	bool ok = true;
	int fam, mode;

	for (fam = 0; fam < 2; fam++) {
		for (mode = 0; mode < 2; mode++) {
			__u32 i, p, placed = 0;

			memset(used, 0, size);
			for (i = 1; i < maxb; i++) {
				struct bgs_revnat_key k = { .proto = IPPROTO_TCP };
				__u32 h;

				k.family = fam ? BGS_AF_INET6 : BGS_AF_INET;
				/* mode 0: one port, many addresses; mode 1: one address, many ports */
				if (fam) {
					k.addr[0] = htonl(0xfd000099);
					k.addr[3] = htonl(mode ? 1 : i);
				} else {
					k.addr[0] = htonl(0x0a000000 | (mode ? 1 : i));
				}
				k.port = htons((__u16)(mode ? 1000 + i : 8080));
				h = bgs_revnat_hash(&k);
				for (p = 0; p < BGS_REVNAT_PROBES; p++) {
					if (!used[(h + p) & (size - 1)]) {
						used[(h + p) & (size - 1)] = 1;
						placed++;
						break;
					}
				}
			}
			ok &= ASSERT_EQ(placed, maxb - 1, fam ? (mode ? "v6, one address, many ports" :
								"v6, many addresses") :
							 (mode ? "v4, one address, many ports" :
								"v4, many addresses"));
		}
	}
	return ok;
}

/* ---- A config diff applied as one change ---- */

/* What a service apply may change: every backend record, the flip word, both slots of both
 * tables, the reply slots in use. */
struct apply_snap {
	struct bgs_backend *be;
	__u64 word;
	__u32 *t[2][2];
	int revnat;
};

static void apply_snap(const struct fx_svc *s, struct apply_snap *st)
{
	struct bgs_flip f = {};
	__u32 n, c, slot;

	bgs_backend_read_all(fx.h, &st->be, &n);
	flip_get(s->id, &f);
	st->word = f.word;
	for (c = 0; c < 2; c++)
		for (slot = 0; slot < 2; slot++)
			st->t[c][slot] = table_copy(s->id, c, slot);
	st->revnat = revnat_used();
}

static void apply_snap_free(struct apply_snap *st)
{
	__u32 c, slot;

	free(st->be);
	for (c = 0; c < 2; c++)
		for (slot = 0; slot < 2; slot++)
			free(st->t[c][slot]);
}

static struct apply_snap apply_before;

static bool apply_snap_same(const struct fx_svc *s, const char *what)
{
	struct apply_snap a = {}, *b = &apply_before;
	__u32 m = fx.meta.maglev_size, c, slot;
	bool ok = true;

	apply_snap(s, &a);
	test_ctx("%s", what);
	ok &= ASSERT_TRUE(a.be && b->be, "records read");
	if (a.be && b->be)
		ok &= ASSERT_MEMEQ(a.be, b->be, fx.meta.max_backends * sizeof(*a.be),
				   "every backend record as it was");
	ok &= ASSERT_EQ(a.word, b->word, "flip word (generation, slots) as it was");
	for (c = 0; c < 2; c++)
		for (slot = 0; slot < 2; slot++)
			ok &= ASSERT_MEMEQ(a.t[c][slot], b->t[c][slot], m * sizeof(__u32),
					   "table as it was");
	ok &= ASSERT_EQ(a.revnat, b->revnat, "reply slots as they were");
	test_ctx("%s", "");
	apply_snap_free(&a);
	return ok;
}

/* Entries of the live table of (svc, color) held by id. */
static __u32 live_count(const struct fx_svc *s, __u32 color, __u32 id)
{
	struct bgs_flip f = {};
	__u32 *t, i, n = 0;

	flip_get(s->id, &f);
	t = table_copy(s->id, color, bgs_fw_slot(f.word, color));
	for (i = 0; t && i < fx.meta.maglev_size; i++)
		n += t[i] == id;
	free(t);
	return n;
}

static void spec_of(struct bgs_backend_spec *sp, int n, __u16 port, __u32 weight)
{
	memset(sp, 0, sizeof(*sp));
	fx_be_ip(BGS_AF_INET, FX_NET_BACKEND, n, &sp->addr);
	sp->port = port;
	sp->weight = weight;
}

static __u32 gen_of(const struct fx_svc *s)
{
	struct bgs_flip f = {};

	flip_get(s->id, &f);
	return bgs_fw_gen(f.word);
}

static __u32 id_of(const struct fx_svc *s, int n, __u16 port)
{
	struct bgs_ip ip;
	__u32 id = 0;

	fx_be_ip(BGS_AF_INET, FX_NET_BACKEND, n, &ip);
	if (bgs_backend_find(fx.h, s->id, &ip, port, &id))
		return 0;
	return id;
}

/*
 * bgs_service_apply: empty to full in one call (one publish per pool, tables weighted as
 * wanted), a diff (only the changed pool published, kept backends keep id and counters),
 * the same want again (nothing touched), refusals and a failed second publish (nothing
 * changed), a failure after the publishes finished by a second call, and new backends
 * added health down (in no table).
 */
static bool test_service_apply(void)
{
	struct bgs_backend_spec blue[4], green[3], bad[2];
	struct bgs_pool_want w[2];
	struct bgs_apply_result r;
	struct bgs_counter *v = calloc((size_t)ncpus, sizeof(*v)), got;
	struct bgs_backend rec;
	struct fx_svc s, d;
	__u32 g0, id1, id2, id3, inc1, inc2, gslot, *gt = NULL, *gt2 = NULL;
	int base = next_be, i;
	bool ok = true;

	next_be += 10;
	if (!v || !svc_add(&s, "apply", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 0) ||
	    !svc_add(&d, "apply_dsr", BGS_AF_INET, 443, IPPROTO_TCP, BGS_MODE_DSR, 0)) {
		free(v);
		return false;
	}
	/* empty to three blue (weights 1, 2, 4) and two green, in one call */
	spec_of(&blue[0], base, 8080, 1);
	spec_of(&blue[1], base + 1, 8080, 2);
	spec_of(&blue[2], base + 2, 8080, 4);
	spec_of(&green[0], base + 3, 8080, 0);
	spec_of(&green[1], base + 4, 8080, 0);
	w[BGS_BLUE] = (struct bgs_pool_want){ blue, 3 };
	w[BGS_GREEN] = (struct bgs_pool_want){ green, 2 };
	g0 = gen_of(&s);
	ok &= ASSERT_OK(bgs_service_apply(fx.h, s.id, w, BGS_HEALTH_UP, &r), "empty to full");
	ok &= ASSERT_EQ(r.added, 5, "added");
	ok &= ASSERT_EQ(r.removed + r.reweighted, 0, "nothing else");
	ok &= ASSERT_EQ(r.published, 2, "both pools published");
	ok &= ASSERT_EQ(gen_of(&s), g0 + 2, "generation moved once per pool");
	id1 = id_of(&s, base, 8080);
	id2 = id_of(&s, base + 1, 8080);
	id3 = id_of(&s, base + 2, 8080);
	ok &= ASSERT_TRUE(id1 && id2 && id3 && id_of(&s, base + 3, 8080) &&
			  id_of(&s, base + 4, 8080), "every backend there");
	{
		__u32 c1 = live_count(&s, BGS_BLUE, id1), c2 = live_count(&s, BGS_BLUE, id2),
		      c3 = live_count(&s, BGS_BLUE, id3);

		test_logf("blue weights 1:2:4 hold %u:%u:%u entries", c1, c2, c3);
		ok &= ASSERT_EQ(c1 + c2 + c3, fx.meta.maglev_size, "blue: its three only");
		ok &= ASSERT_TRUE(c1 > 0 && c1 < c2 && c2 < c3, "more entries for more weight");
		ok &= ASSERT_TRUE(c3 > fx.meta.maglev_size / 2 - 25 &&
				  c3 < fx.meta.maglev_size / 2 + 40, "weight 4 of 7: about 4/7");
		ok &= ASSERT_EQ(live_count(&s, BGS_GREEN, id_of(&s, base + 3, 8080)) +
				live_count(&s, BGS_GREEN, id_of(&s, base + 4, 8080)),
				fx.meta.maglev_size, "green: its two only");
	}
	ok &= ASSERT_OK(bgs_backend_get(fx.h, id1, &rec), "get");
	inc1 = rec.incarnation;
	ok &= ASSERT_OK(bgs_backend_get(fx.h, id2, &rec), "get");
	inc2 = rec.incarnation;
	for (i = 0; i < ncpus; i++)
		v[i] = (struct bgs_counter){ .packets = 10, .bytes = 1000 };
	ok &= percpu_write(bgs_map_fd(fx.h, "be_stats"), id1, v);

	/* a diff: blue keeps 1, reweights 2, drops 3, adds 4; green as it is */
	blue[1].weight = 6;
	spec_of(&blue[2], base + 5, 8080, 1);
	g0 = gen_of(&s);
	{
		struct bgs_flip f = {};

		flip_get(s.id, &f);
		gslot = bgs_fw_slot(f.word, BGS_GREEN);
		gt = table_copy(s.id, BGS_GREEN, gslot);
	}
	ok &= ASSERT_OK(bgs_service_apply(fx.h, s.id, w, BGS_HEALTH_UP, &r), "diff");
	ok &= ASSERT_EQ(r.added, 1, "added");
	ok &= ASSERT_EQ(r.removed, 1, "removed");
	ok &= ASSERT_EQ(r.reweighted, 1, "reweighted");
	ok &= ASSERT_EQ(r.published, 1, "only blue published");
	ok &= ASSERT_EQ(gen_of(&s), g0 + 1, "one publish");
	{
		struct bgs_flip f = {};

		flip_get(s.id, &f);
		ok &= ASSERT_EQ(bgs_fw_slot(f.word, BGS_GREEN), gslot, "green's slot as it was");
		gt2 = table_copy(s.id, BGS_GREEN, gslot);
		ok &= ASSERT_MEMEQ(gt, gt2, fx.meta.maglev_size * sizeof(__u32),
				   "green's table as it was");
	}
	ok &= ASSERT_EQ(id_of(&s, base, 8080), id1, "kept backend keeps its id");
	ok &= ASSERT_EQ(id_of(&s, base + 1, 8080), id2, "reweighted backend keeps its id");
	ok &= ASSERT_OK(bgs_backend_get(fx.h, id1, &rec), "get");
	ok &= ASSERT_EQ(rec.incarnation, inc1, "and its incarnation");
	ok &= ASSERT_OK(bgs_backend_get(fx.h, id2, &rec), "get");
	ok &= ASSERT_EQ(rec.incarnation, inc2, "and its incarnation");
	ok &= ASSERT_EQ(rec.weight, 6, "new weight");
	ok &= ASSERT_OK(bgs_backend_counters(fx.h, id1, &got), "counters");
	ok &= ASSERT_EQ(got.packets, 10ULL * (__u64)ncpus, "counters kept");
	ok &= ASSERT_EQ(id_of(&s, base + 2, 8080), 0, "dropped backend gone");
	ok &= ASSERT_GT(live_count(&s, BGS_BLUE, id_of(&s, base + 5, 8080)), 0, "new in table");
	ok &= ASSERT_GT(live_count(&s, BGS_BLUE, id2), live_count(&s, BGS_BLUE, id1) * 3,
			"weight 6 against 1");

	/* the same want again: nothing touched */
	apply_snap(&s, &apply_before);
	ok &= ASSERT_OK(bgs_service_apply(fx.h, s.id, w, BGS_HEALTH_UP, &r), "same want");
	ok &= ASSERT_EQ(r.added + r.removed + r.reweighted + r.published, 0, "nothing to do");
	ok &= apply_snap_same(&s, "same want again");

	/* refusals change nothing */
	blue[0].weight = BGS_MAX_WEIGHT + 1;
	ok &= ASSERT_ERR(bgs_service_apply(fx.h, s.id, w, BGS_HEALTH_UP, &r), -EINVAL,
			 "bad weight");
	blue[0].weight = 1;
	green[2] = blue[1];
	w[BGS_GREEN].n = 3;
	ok &= ASSERT_ERR(bgs_service_apply(fx.h, s.id, w, BGS_HEALTH_UP, &r), -EINVAL,
			 "one address wanted twice");
	ok &= ASSERT_TRUE(strstr(bgs_errmsg(), "twice") != NULL, bgs_errmsg());
	w[BGS_GREEN].n = 2;
	ok &= ASSERT_ERR(bgs_service_apply(fx.h, s.id, w, 7, &r), -EINVAL, "bad health");
	w[BGS_BLUE].n = 1; /* blue[1] moves to green */
	w[BGS_GREEN] = (struct bgs_pool_want){ blue + 1, 1 };
	ok &= ASSERT_ERR(bgs_service_apply(fx.h, s.id, w, BGS_HEALTH_UP, &r), -EBUSY,
			 "a move between pools");
	ok &= apply_snap_same(&s, "refusals");
	apply_snap_free(&apply_before);

	/* dsr: a backend port other than the VIP's is refused, nothing changed */
	spec_of(&bad[0], base + 6, 0, 0);
	spec_of(&bad[1], base + 7, 8443, 0);
	w[BGS_BLUE] = (struct bgs_pool_want){ bad, 2 };
	w[BGS_GREEN] = (struct bgs_pool_want){ NULL, 0 };
	apply_snap(&d, &apply_before);
	ok &= ASSERT_ERR(bgs_service_apply(fx.h, d.id, w, BGS_HEALTH_UP, &r), -EINVAL,
			 "dsr port mismatch");
	ok &= apply_snap_same(&d, "dsr refusal");
	apply_snap_free(&apply_before);
	w[BGS_BLUE].n = 1;
	ok &= ASSERT_OK(bgs_service_apply(fx.h, d.id, w, BGS_HEALTH_UP, &r), "dsr apply");
	ok &= ASSERT_EQ(r.added, 1, "dsr added");

	/* the second pool's publish fails: the first one's is undone, nothing changed */
	w[BGS_BLUE] = (struct bgs_pool_want){ blue, 2 };
	spec_of(&green[1], base + 8, 8080, 3);
	w[BGS_GREEN] = (struct bgs_pool_want){ green, 2 };
	apply_snap(&s, &apply_before);
	setenv("BGS_FAULT", "service_apply_publish@2", 1);
	ok &= ASSERT_ERR(bgs_service_apply(fx.h, s.id, w, BGS_HEALTH_UP, &r), -EIO,
			 "second publish fails");
	unsetenv("BGS_FAULT");
	ok &= ASSERT_TRUE(strstr(bgs_errmsg(), "nothing was changed") != NULL, bgs_errmsg());
	/* the word's generation moved (two publishes and the undo), all else is as it was */
	{
		struct bgs_flip f = {};

		flip_get(s.id, &f);
		apply_before.word = f.word;
		ok &= ASSERT_EQ(live_count(&s, BGS_BLUE, id_of(&s, base + 5, 8080)) +
				live_count(&s, BGS_BLUE, id1) + live_count(&s, BGS_BLUE, id2),
				fx.meta.maglev_size, "blue's live table: the three as before");
	}
	ok &= ASSERT_EQ(id_of(&s, base + 8, 8080), 0, "no new backend left");
	ok &= ASSERT_EQ(revnat_used(), apply_before.revnat, "no reply slot left");
	{
		struct bgs_backend *all = NULL;
		__u32 n;

		ok &= ASSERT_OK(bgs_backend_read_all(fx.h, &all, &n), "read all");
		for (i = 1; all && i < (int)n; i++)
			if ((all[i].flags & BGS_BE_IN_USE) || (apply_before.be[i].flags &
							       BGS_BE_IN_USE))
				ok &= ASSERT_MEMEQ(&all[i], &apply_before.be[i], sizeof(all[i]),
						   "records in use as they were");
		free(all);
	}
	apply_snap_free(&apply_before);

	/* a failure after the publishes: the tables apply, a second call finishes */
	setenv("BGS_FAULT", "service_apply_free", 1);
	ok &= ASSERT_ERR(bgs_service_apply(fx.h, s.id, w, BGS_HEALTH_DOWN, &r), -EIO,
			 "failure after the publishes");
	unsetenv("BGS_FAULT");
	ok &= ASSERT_TRUE(strstr(bgs_errmsg(), "apply again") != NULL, bgs_errmsg());
	ok &= ASSERT_EQ(live_count(&s, BGS_BLUE, id_of(&s, base + 5, 8080)), 0,
			"the removed backend is in no table");
	ok &= ASSERT_OK(bgs_service_apply(fx.h, s.id, w, BGS_HEALTH_DOWN, &r), "again");
	ok &= ASSERT_EQ(r.removed, 2, "the second call removes what was left");
	ok &= ASSERT_EQ(r.added, 0, "and adds nothing twice");
	ok &= ASSERT_EQ(id_of(&s, base + 5, 8080), 0, "gone");

	/* added health down: in use, in no table */
	id3 = id_of(&s, base + 8, 8080);
	ok &= ASSERT_GT(id3, 0, "added");
	ok &= ASSERT_OK(bgs_backend_get(fx.h, id3, &rec), "get");
	ok &= ASSERT_EQ(rec.health, BGS_HEALTH_DOWN, "health down");
	ok &= ASSERT_EQ(live_count(&s, BGS_GREEN, id3), 0, "not in green's table");
	ok &= ASSERT_EQ(live_count(&s, BGS_GREEN, id_of(&s, base + 3, 8080)),
			fx.meta.maglev_size, "green: the one up only");

	free(gt);
	free(gt2);
	free(v);
	del_all_services(fx.h);
	return ok;
}

static const struct test_case tests[] = {
	{ "init_adopts", test_init_adopts },
	{ "open_empty", test_open_empty },
	{ "mounts_bpffs", test_mounts_bpffs },
	{ "sizes_mismatch", test_sizes_mismatch },
	{ "bad_sizes_first", test_bad_sizes_first },
	{ "other_layout", test_other_layout },
	{ "service_keys", test_service_keys },
	{ "port_filter", test_port_filter },
	{ "revnat_spread", test_revnat_spread },
	{ "backend_reuse", test_backend_reuse },
	{ "flip_word", test_flip_word },
	{ "pool_slots", test_pool_slots },
	{ "flow_walk_kill", test_flow_walk_kill },
	{ "flow_kill_bounds", test_flow_kill_bounds },
	{ "counters", test_counters },
	{ "concurrent_threads", test_concurrent_threads },
	{ "concurrent_fork", test_concurrent_fork },
	{ "service_apply", test_service_apply },
};

int main(int argc, char **argv)
{
	struct bgs_sizes sz = { .max_services = 16, .max_backends = 64, .maglev_size = 251,
				.ct_entries = 65536 };

	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0 || ncpus > 64) /* per-CPU buffers on the stack are sized for 64 */
		return test_skip_all(argv[0], tests, ARRAY_SIZE(tests), "more than 64 CPUs");
	return fx_main(argc, argv, &sz, tests, ARRAY_SIZE(tests), 120);
}
