// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libbgswitch input validation, against the real pinned maps. For every entry point that
 * takes input and every class of bad value: the right negative errno, a message in
 * bgs_errmsg() that names the bad value, and not one byte changed in the state (services,
 * flip words and drain fields, VIP keys, backend records, Maglev tables, preview prefixes,
 * reverse-nat keys, counters, conntrack), compared before and after. Then a fuzz pass:
 * random inputs from a fixed seed through every entry point on a small instance; no crash
 * (the sanitizer build runs it), every failure leaves the state as it was, and after every
 * success the whole state passes an independent consistency check.
 *
 * BGS_FUZZ_SEED and BGS_FUZZ_ITERS in the environment change the fuzz pass's seed and
 * length (defaults: a fixed seed, 20,000 calls).
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "fixture.h"

/* ---- State snapshots: every map that a change may touch, read from the kernel ---- */

enum {
	S_SVCS,
	S_FLIP,
	S_VIPS,
	S_BACKENDS,
	S_MAGLEV,
	S_PREVIEW,
	S_REVNAT,
	S_SVC_STATS,
	S_BE_STATS,
	S_CT,
	S_NR,
};

static const char *const snap_names[S_NR] = {
	"svcs", "flip", "vips", "backends", "maglev", "preview", "revnat", "svc_stats",
	"be_stats", "ct",
};

struct mapsnap {
	__u32 type, key_size, value_size, vsize, max_entries, flags;
	size_t koff;	/* value offset in a record: the key rounded up to 8 (aligned values) */
	size_t rec;	/* koff + vsize, rounded up to 8 */
	__u32 n;	/* records */
	__u8 *data;	/* n records, key then value; hash maps sorted */
	__u8 *mmapped;	/* BPF_F_MMAPABLE arrays: read through a read-only mapping */
	size_t mmap_len;
};

struct snap {
	struct bgs *h;
	int fd[S_NR];
	struct mapsnap m[S_NR];
};

static int ncpus;

static size_t round8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static int rec_cmp(const void *a, const void *b, void *arg)
{
	return memcmp(a, b, *(size_t *)arg);
}

/* Opens the maps of h for snapshots (fds stay owned by the handle). */
static bool snap_init(struct snap *s, struct bgs *h)
{
	struct bpf_map_info info;
	__u32 len;
	int i;

	memset(s, 0, sizeof(*s));
	s->h = h;
	if (!ncpus)
		ncpus = libbpf_num_possible_cpus();
	for (i = 0; i < S_NR; i++) {
		struct mapsnap *m = &s->m[i];

		s->fd[i] = bgs_map_fd(h, snap_names[i]);
		if (s->fd[i] < 0) {
			FAILF("bgs_map_fd(%s): %d", snap_names[i], s->fd[i]);
			return false;
		}
		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		if (bpf_obj_get_info_by_fd(s->fd[i], &info, &len)) {
			FAILF("map info of %s: %s", snap_names[i], strerror(errno));
			return false;
		}
		m->type = info.type;
		m->key_size = info.key_size;
		m->value_size = info.value_size;
		m->max_entries = info.max_entries;
		m->flags = info.map_flags;
		m->vsize = m->type == BPF_MAP_TYPE_PERCPU_ARRAY ?
				   (__u32)(round8(info.value_size) * ncpus) : info.value_size;
		m->koff = round8(m->key_size);
		m->rec = round8(m->koff + m->vsize);
		if (m->flags & BPF_F_MMAPABLE) {
			m->mmap_len = (size_t)m->max_entries * round8(m->value_size);
			m->mmap_len = (m->mmap_len + 4095) & ~(size_t)4095;
			m->mmapped = mmap(NULL, m->mmap_len, PROT_READ, MAP_SHARED, s->fd[i], 0);
			if (m->mmapped == MAP_FAILED) {
				m->mmapped = NULL;
				FAILF("mmap of %s: %s", snap_names[i], strerror(errno));
				return false;
			}
		}
	}
	return true;
}

static void snap_fini(struct snap *s)
{
	int i;

	for (i = 0; i < S_NR; i++) {
		free(s->m[i].data);
		s->m[i].data = NULL;
		if (s->m[i].mmapped)
			munmap(s->m[i].mmapped, s->m[i].mmap_len);
		s->m[i].mmapped = NULL;
	}
}

static bool read_map(struct snap *s, int i)
{
	struct mapsnap *m = &s->m[i];
	__u8 *keys = NULL, *vals = NULL, tok[64];
	__u32 count, k, n = 0;
	void *in = NULL;
	bool ok = true;
	int err;

	free(m->data);
	m->data = calloc((size_t)m->max_entries + 1, m->rec);
	if (!m->data)
		return false;
	if (m->mmapped) {
		/* an array: the key is the index; values 8 bytes apart */
		for (k = 0; k < m->max_entries; k++) {
			memcpy(m->data + (size_t)k * m->rec, &k, sizeof(k));
			memcpy(m->data + (size_t)k * m->rec + m->koff,
			       m->mmapped + (size_t)k * round8(m->value_size), m->value_size);
		}
		m->n = m->max_entries;
		return true;
	}
	if (m->type == BPF_MAP_TYPE_LPM_TRIE) {
		__u8 key[64], next[64];
		void *prev = NULL;

		while (!bpf_map_get_next_key(s->fd[i], prev, next) && n < m->max_entries) {
			memcpy(key, next, m->key_size);
			prev = key;
			memcpy(m->data + (size_t)n * m->rec, key, m->key_size);
			if (bpf_map_lookup_elem(s->fd[i], key, m->data + (size_t)n * m->rec +
							       m->koff))
				continue;
			n++;
		}
		goto sort;
	}
	keys = calloc(m->max_entries, m->key_size);
	vals = calloc(m->max_entries, m->vsize);
	if (!keys || !vals) {
		ok = false;
		goto out;
	}
	for (;;) {
		count = m->max_entries - n;
		if (!count)
			break;
		err = bpf_map_lookup_batch(s->fd[i], in, tok, keys, vals, &count, NULL);
		if (err && errno != ENOENT) {
			FAILF("batch lookup of %s: %s", snap_names[i], strerror(errno));
			ok = false;
			goto out;
		}
		for (k = 0; k < count; k++, n++) {
			memcpy(m->data + (size_t)n * m->rec, keys + (size_t)k * m->key_size,
			       m->key_size);
			memcpy(m->data + (size_t)n * m->rec + m->koff,
			       vals + (size_t)k * m->vsize, m->vsize);
		}
		if (err)
			break;
		in = tok;
	}
sort:
	m->n = n;
	if (m->type != BPF_MAP_TYPE_ARRAY && m->type != BPF_MAP_TYPE_PERCPU_ARRAY)
		qsort_r(m->data, n, m->rec, rec_cmp, &m->rec);
out:
	free(keys);
	free(vals);
	return ok;
}

static bool snap_take(struct snap *s)
{
	bool ok = true;
	int i;

	for (i = 0; i < S_NR; i++)
		ok &= read_map(s, i);
	return ok;
}

/* Compares the live state with the snapshot; reports the first differing map. */
static bool snap_same(struct snap *s, struct snap *now, int line, const char *what)
{
	bool ok = true;
	int i;

	if (!snap_take(now))
		return false;
	for (i = 0; i < S_NR; i++) {
		const struct mapsnap *a = &s->m[i], *b = &now->m[i];
		size_t j, len = (size_t)a->n * a->rec;

		if (a->n != b->n) {
			test_failf(__FILE__, line, "%s changed bgs_%s: %u entries, now %u", what,
				   snap_names[i], a->n, b->n);
			ok = false;
			continue;
		}
		if (!memcmp(a->data, b->data, len))
			continue;
		for (j = 0; j < len && a->data[j] == b->data[j]; j++)
			;
		test_failf(__FILE__, line,
			   "%s changed bgs_%s: entry %zu, byte %zu (0x%02x -> 0x%02x)", what,
			   snap_names[i], j / a->rec, j % a->rec, a->data[j], b->data[j]);
		ok = false;
	}
	return ok;
}

/* A second snapshot area for comparisons (same maps, same handle). */
static bool snap_pair(struct snap *s, struct snap *cmp, struct bgs *h)
{
	return snap_init(s, h) && snap_init(cmp, h) && snap_take(s);
}

static void snap_pair_fini(struct snap *s, struct snap *cmp)
{
	snap_fini(s);
	snap_fini(cmp);
}

/*
 * A call that must fail: errno err, a non-empty message containing needle (when given),
 * and the state exactly as in the snapshot.
 */
static bool refused_at(int line, struct snap *s, struct snap *cmp, const char *expr,
		       long long ret, int err, const char *needle)
{
	char msg[512];
	bool ok = true;

	snprintf(msg, sizeof(msg), "%s", bgs_errmsg());
	if (ret != err) {
		test_failf(__FILE__, line, "%s returned %lld, expected %d (%s); bgs_errmsg: %s",
			   expr, ret, err, strerror(-err), msg);
		ok = false;
	}
	if (!msg[0]) {
		test_failf(__FILE__, line, "%s: failed without a message", expr);
		ok = false;
	} else if (needle && !strstr(msg, needle)) {
		test_failf(__FILE__, line, "%s: message \"%s\" does not name \"%s\"", expr, msg,
			   needle);
		ok = false;
	}
	ok &= snap_same(s, cmp, line, expr);
	return ok;
}

#define REFUSED(call, err, needle) \
	refused_at(__LINE__, &S, &C, #call, (long long)(call), err, needle)
/* A call that must succeed and change nothing. */
#define NOCHANGE(call, want)                                                             \
	({                                                                               \
		long long ___r = (long long)(call);                                      \
		bool ___ok = ASSERT_EQ(___r, want, #call);                               \
		if (___r < 0)                                                            \
			test_logf("bgs_errmsg: %s", bgs_errmsg());                       \
		___ok &= snap_same(&S, &C, __LINE__, #call);                             \
		___ok;                                                                   \
	})

/* ---- Small instances of their own (full id spaces, the fuzz pass) ---- */

static bool inst_open(const char *sub, const struct bgs_sizes *sz, struct bgs **h, char *dir,
		      size_t len)
{
	snprintf(dir, len, "%s/%s", fx.mnt, sub);
	return ASSERT_OK(bgs_init(dir, sz, h), dir);
}

static void inst_close(struct bgs *h, const char *dir)
{
	bgs_close(h);
	bgs_destroy(dir);
	rmdir(dir);
}

/* ---- Helpers ---- */

static int next_vip = 1;
static int next_be = 10;

static struct bgs_service_spec spec_of(const char *name, __u8 family, int vip_n, __u16 port,
				       __u8 proto, __u8 mode, __u16 pport)
{
	struct bgs_service_spec sp = { .name = name, .port = port, .proto = proto, .mode = mode,
				       .preview_port = pport };

	fx_vip(family, vip_n, &sp.vip);
	return sp;
}

static bool svc_new(struct bgs *h, const char *name, __u8 family, __u16 port, __u8 proto,
		    __u8 mode, __u16 pport, __u32 *id)
{
	struct bgs_service_spec sp = spec_of(name, family, next_vip++, port, proto, mode, pport);

	return ASSERT_OK(bgs_service_add(h, &sp, id), name);
}

static bool be_new(struct bgs *h, __u32 svc, __u32 color, __u8 family, int n, __u16 port,
		   __u32 *id)
{
	struct bgs_backend_spec b = { .port = port };

	fx_be_ip(family, FX_NET_BACKEND, n, &b.addr);
	return ASSERT_OK(bgs_backend_add(h, svc, color, &b, id), "backend add");
}

static const char *ipstr(__u8 family, const __u32 *addr, char *buf)
{
	struct bgs_ip ip = { .family = family };

	memcpy(ip.addr, addr, 16);
	return bgs_ip_str(&ip, buf, 64);
}

static void del_all_services(struct bgs *h)
{
	__u32 ids[1024];
	int n, i;

	n = bgs_service_list(h, ids, 1024);
	for (i = 0; i < n && i < 1024; i++)
		ASSERT_OK(bgs_service_del(h, ids[i]), "service cleanup");
}

/* ---- Addresses and prefixes ---- */

static bool test_ip_parse(void)
{
	static const char *const bad[] = {
		"garbage", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.300", "1.2.3.-1",
		"01.2.3.4", " 1.2.3.4", "1.2.3.4 ", "1.2.3.4/32", "0x01.2.3.4", "1..2.3",
		"::1::2", "2001:db8::g", "[2001:db8::1]", "fe80::1%lo", "12345::", ":",
		"1.2.3.4:80", "2001:db8:0:0:0:0:0:0:1", "-1", "1.2.3.4\n",
	};
	static const struct {
		const char *s;
		__u8 family;
		__u8 bytes[16];
	} good[] = {
		{ "1.2.3.4", BGS_AF_INET, { 1, 2, 3, 4 } },
		{ "0.0.0.0", BGS_AF_INET, { 0 } },
		{ "255.255.255.255", BGS_AF_INET, { 255, 255, 255, 255 } },
		{ "2001:db8::1", BGS_AF_INET6, { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 } },
		{ "::", BGS_AF_INET6, { 0 } },
		{ "::ffff:1.2.3.4", BGS_AF_INET6, { [10] = 0xff, 0xff, 1, 2, 3, 4 } },
	};
	char big[300];
	struct bgs_ip ip;
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		test_ctx("'%s'", bad[i]);
		memset(&ip, 0xa5, sizeof(ip));
		if (!ASSERT_ERR(bgs_ip_parse(bad[i], &ip), -EINVAL, "bad address refused")) {
			ok = false;
			continue;
		}
		ok &= ASSERT_STRSTR(bgs_errmsg(), bad[i], "message names the input");
	}
	test_ctx("%s", "empty");
	ok &= ASSERT_ERR(bgs_ip_parse("", &ip), -EINVAL, "empty address");
	ok &= ASSERT_STRSTR(bgs_errmsg(), "empty", "message says empty");
	test_ctx("%s", "NULL");
	ok &= ASSERT_ERR(bgs_ip_parse(NULL, &ip), -EINVAL, "NULL address");
	ok &= ASSERT_TRUE(bgs_errmsg()[0], "message");
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	test_ctx("%s", "300 characters");
	ok &= ASSERT_ERR(bgs_ip_parse(big, &ip), -EINVAL, "long input");
	ok &= ASSERT_TRUE(bgs_errmsg()[0], "message");

	for (i = 0; i < ARRAY_SIZE(good); i++) {
		char buf[64];

		test_ctx("'%s'", good[i].s);
		memset(&ip, 0xa5, sizeof(ip));
		ok &= ASSERT_OK(bgs_ip_parse(good[i].s, &ip), "good address");
		ok &= ASSERT_EQ(ip.family, good[i].family, "family");
		ok &= ASSERT_MEMEQ(ip.addr, good[i].bytes, 16, "network-order words, rest zero");
		bgs_ip_str(&ip, buf, sizeof(buf));
		ok &= ASSERT_EQ(strcmp(buf, good[i].s), 0, "formats back");
	}
	return ok;
}

static bool test_prefix_parse(void)
{
	static const struct {
		const char *s;
		const char *needle;
	} bad[] = {
		{ "garbage", "garbage" },
		{ "garbage/8", "garbage" },
		{ "/8", "/8" },
		{ "1.2.3.0/", "1.2.3.0/" },
		{ "1.2.3.0/33", "1.2.3.0/33" },
		{ "1.2.3.0/99999999999999999999", "1.2.3.0/99999999999999999999" },
		{ "1.2.3.0/-1", "1.2.3.0/-1" },
		{ "1.2.3.0/24x", "1.2.3.0/24x" },
		{ "1.2.3.0/2 4", "1.2.3.0/2 4" },
		{ "1.2.3.0//24", "1.2.3.0//24" },
		{ "1.2.3.0/24/1", "1.2.3.0/24/1" },
		{ "1.2.3.4/24", "1.2.3.4/24" },
		{ "1.2.3.5/31", "1.2.3.5/31" },
		{ "10.0.0.1/0", "10.0.0.1/0" },
		{ "256.0.0.0/8", "256.0.0.0" },
		{ "2001:db8::/129", "2001:db8::/129" },
		{ "2001:db8::1/64", "2001:db8::1/64" },
		{ "2001:db8::/32x", "2001:db8::/32x" },
		{ "2001:db8:::/48", "2001:db8:::" },
		{ "1.2.3.0/0x18", "1.2.3.0/0x18" },
	};
	static const struct {
		const char *s;
		__u8 family, len;
	} good[] = {
		{ "10.0.0.0/8", BGS_AF_INET, 8 },
		{ "0.0.0.0/0", BGS_AF_INET, 0 },
		{ "1.2.3.4", BGS_AF_INET, 32 },
		{ "1.2.3.4/32", BGS_AF_INET, 32 },
		{ "2001:db8::/32", BGS_AF_INET6, 32 },
		{ "::/0", BGS_AF_INET6, 0 },
		{ "2001:db8::1/128", BGS_AF_INET6, 128 },
		{ "2001:db8::1", BGS_AF_INET6, 128 },
	};
	char big[200];
	struct bgs_prefix p;
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		test_ctx("'%s'", bad[i].s);
		if (!ASSERT_ERR(bgs_prefix_parse(bad[i].s, &p), -EINVAL, "bad prefix refused")) {
			ok = false;
			continue;
		}
		ok &= ASSERT_STRSTR(bgs_errmsg(), bad[i].needle, "message names the input");
	}
	test_ctx("%s", "host bits");
	bgs_prefix_parse("10.1.2.3/8", &p);
	ok &= ASSERT_STRSTR(bgs_errmsg(), "10.0.0.0/8", "message names the network");
	test_ctx("%s", "empty / NULL / long");
	ok &= ASSERT_ERR(bgs_prefix_parse("", &p), -EINVAL, "empty prefix");
	ok &= ASSERT_TRUE(bgs_errmsg()[0], "message");
	ok &= ASSERT_ERR(bgs_prefix_parse(NULL, &p), -EINVAL, "NULL prefix");
	ok &= ASSERT_TRUE(bgs_errmsg()[0], "message");
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	memcpy(big, "1.2.3.0/", 8);
	ok &= ASSERT_ERR(bgs_prefix_parse(big, &p), -EINVAL, "long prefix");
	ok &= ASSERT_TRUE(bgs_errmsg()[0], "message");

	for (i = 0; i < ARRAY_SIZE(good); i++) {
		struct bgs_ip ip;
		char addr[64];

		test_ctx("'%s'", good[i].s);
		ok &= ASSERT_OK(bgs_prefix_parse(good[i].s, &p), "good prefix");
		ok &= ASSERT_EQ(p.ip.family, good[i].family, "family");
		ok &= ASSERT_EQ(p.len, good[i].len, "length");
		snprintf(addr, sizeof(addr), "%s", good[i].s);
		if (strchr(addr, '/'))
			*strchr(addr, '/') = 0;
		bgs_ip_parse(addr, &ip);
		ok &= ASSERT_MEMEQ(p.ip.addr, ip.addr, 16, "address");
	}
	return ok;
}

/* Strictness of the length: a sign or blanks are not a number of bits. */
static bool test_prefix_parse_strict(void)
{
	static const char *const bad[] = { "10.0.0.0/+8", "10.0.0.0/ 8", "10.0.0.0/\t8",
					   "2001:db8::/+32" };
	struct bgs_prefix p;
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		test_ctx("'%s'", bad[i]);
		if (!ASSERT_ERR(bgs_prefix_parse(bad[i], &p), -EINVAL, "length with sign/blank")) {
			ok = false;
			continue;
		}
		ok &= ASSERT_STRSTR(bgs_errmsg(), bad[i], "message names the input");
	}
	return ok;
}

/* ---- Services ---- */

static bool test_service_add_bad(void)
{
	struct snap S, C;
	struct bgs_service_spec sp;
	char long_name[BGS_NAME_MAX + 1], max_name[BGS_NAME_MAX];
	__u32 id, id2;
	bool ok = true;
	int v = next_vip++;

	if (!svc_new(fx.h, "existing", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 8080, &id))
		return false;
	if (!snap_pair(&S, &C, fx.h))
		return false;

	memset(long_name, 'n', BGS_NAME_MAX);
	long_name[BGS_NAME_MAX] = 0; /* 32 characters: one too many */
	memset(max_name, 'm', BGS_NAME_MAX - 1);
	max_name[BGS_NAME_MAX - 1] = 0;

	/* names */
	sp = spec_of("", BGS_AF_INET, v, 80, IPPROTO_TCP, BGS_MODE_NAT, 0);
	ok &= REFUSED(bgs_service_add(fx.h, &sp, &id2), -EINVAL, "empty");
	sp.name = NULL;
	ok &= REFUSED(bgs_service_add(fx.h, &sp, &id2), -EINVAL, "empty");
	sp.name = long_name;
	ok &= REFUSED(bgs_service_add(fx.h, &sp, &id2), -EINVAL, long_name);
	{
		static const char *const names[] = { "a b", "a/b", "a:b", "na\xc3\xa9", "x\ty",
						     "a'b", "a%sb", "semi;colon", "a\nb", "*" };
		size_t i;

		for (i = 0; i < ARRAY_SIZE(names); i++) {
			test_ctx("name '%s'", names[i]);
			sp.name = names[i];
			ok &= REFUSED(bgs_service_add(fx.h, &sp, &id2), -EINVAL, names[i]);
		}
		test_ctx("%s", "");
	}
	sp.name = "existing";
	ok &= REFUSED(bgs_service_add(fx.h, &sp, &id2), -EEXIST, "existing");

	/* VIP family and address */
	sp.name = "fresh";
	sp.vip.family = 0;
	ok &= REFUSED(bgs_service_add(fx.h, &sp, &id2), -EINVAL, "family 0");
	sp.vip.family = 5;
	ok &= REFUSED(bgs_service_add(fx.h, &sp, &id2), -EINVAL, "family 5");
	sp.vip.family = AF_INET6; /* 10: a socket family is not a bgswitch family */
	ok &= REFUSED(bgs_service_add(fx.h, &sp, &id2), -EINVAL, "family 10");
	sp = spec_of("fresh", BGS_AF_INET, v, 80, IPPROTO_TCP, BGS_MODE_NAT, 0);
	sp.vip.addr[2] = 7;
	ok &= REFUSED(bgs_service_add(fx.h, &sp, &id2), -EINVAL, "IPv4");

	/* port, protocol, mode */
	sp = spec_of("fresh", BGS_AF_INET, v, 0, IPPROTO_TCP, BGS_MODE_NAT, 0);
	ok &= REFUSED(bgs_service_add(fx.h, &sp, &id2), -EINVAL, "port 0");
	sp = spec_of("fresh", BGS_AF_INET, v, 80, IPPROTO_ICMP, BGS_MODE_NAT, 0);
	ok &= REFUSED(bgs_service_add(fx.h, &sp, &id2), -EINVAL, "protocol 1");
	sp.proto = 0;
	ok &= REFUSED(bgs_service_add(fx.h, &sp, &id2), -EINVAL, "protocol 0");
	sp.proto = 255;
	ok &= REFUSED(bgs_service_add(fx.h, &sp, &id2), -EINVAL, "protocol 255");
	sp.proto = IPPROTO_SCTP;
	ok &= REFUSED(bgs_service_add(fx.h, &sp, &id2), -EINVAL, "protocol 132");
	sp = spec_of("fresh", BGS_AF_INET, v, 80, IPPROTO_TCP, 2, 0);
	ok &= REFUSED(bgs_service_add(fx.h, &sp, &id2), -EINVAL, "mode 2");
	sp.mode = 255;
	ok &= REFUSED(bgs_service_add(fx.h, &sp, &id2), -EINVAL, "mode 255");

	/* preview port */
	sp = spec_of("fresh", BGS_AF_INET, v, 80, IPPROTO_TCP, BGS_MODE_DSR, 8080);
	ok &= REFUSED(bgs_service_add(fx.h, &sp, &id2), -EINVAL, "dsr");
	sp = spec_of("fresh", BGS_AF_INET6, v, 443, IPPROTO_UDP, BGS_MODE_NAT, 443);
	ok &= REFUSED(bgs_service_add(fx.h, &sp, &id2), -EINVAL, "443");

	/* names at the limit are fine: 31 characters of every allowed class */
	snap_pair_fini(&S, &C);
	sp = spec_of(max_name, BGS_AF_INET, v, 80, IPPROTO_TCP, BGS_MODE_NAT, 0);
	ok &= ASSERT_OK(bgs_service_add(fx.h, &sp, &id2), "31-character name");
	sp = spec_of("Az09_.-", BGS_AF_INET, v, 81, IPPROTO_TCP, BGS_MODE_NAT, 0);
	ok &= ASSERT_OK(bgs_service_add(fx.h, &sp, &id2), "every allowed character class");
	del_all_services(fx.h);
	return ok;
}

/* Taken VIP:port/proto, either as a service port or as a preview port. */
static bool test_service_add_taken(void)
{
	struct snap S, C;
	struct bgs_service_spec sp;
	__u32 a, b;
	bool ok = true;
	int v4 = next_vip++, v6 = next_vip++;

	sp = spec_of("a", BGS_AF_INET, v4, 80, IPPROTO_TCP, BGS_MODE_NAT, 8080);
	if (!ASSERT_OK(bgs_service_add(fx.h, &sp, &a), "a"))
		return false;
	sp = spec_of("b6", BGS_AF_INET6, v6, 53, IPPROTO_UDP, BGS_MODE_DSR, 0);
	if (!ASSERT_OK(bgs_service_add(fx.h, &sp, &b), "b6"))
		return false;
	if (!snap_pair(&S, &C, fx.h))
		return false;

	sp = spec_of("c", BGS_AF_INET, v4, 80, IPPROTO_TCP, BGS_MODE_DSR, 0);
	ok &= REFUSED(bgs_service_add(fx.h, &sp, NULL), -EEXIST, "'a'");
	sp = spec_of("c", BGS_AF_INET, v4, 8080, IPPROTO_TCP, BGS_MODE_NAT, 0);
	ok &= REFUSED(bgs_service_add(fx.h, &sp, NULL), -EEXIST, "preview port");
	sp = spec_of("c", BGS_AF_INET, v4, 81, IPPROTO_TCP, BGS_MODE_NAT, 80);
	ok &= REFUSED(bgs_service_add(fx.h, &sp, NULL), -EEXIST, ":80");
	sp = spec_of("c", BGS_AF_INET, v4, 81, IPPROTO_TCP, BGS_MODE_NAT, 8080);
	ok &= REFUSED(bgs_service_add(fx.h, &sp, NULL), -EEXIST, ":8080");
	sp = spec_of("c", BGS_AF_INET6, v6, 53, IPPROTO_UDP, BGS_MODE_NAT, 0);
	ok &= REFUSED(bgs_service_add(fx.h, &sp, NULL), -EEXIST, "b6");
	/* duplicate name with an otherwise free VIP */
	sp = spec_of("b6", BGS_AF_INET, next_vip, 80, IPPROTO_TCP, BGS_MODE_NAT, 0);
	ok &= REFUSED(bgs_service_add(fx.h, &sp, NULL), -EEXIST, "b6");
	snap_pair_fini(&S, &C);

	/* the same address with another port or protocol is another service */
	sp = spec_of("d", BGS_AF_INET, v4, 80, IPPROTO_UDP, BGS_MODE_NAT, 8080);
	ok &= ASSERT_OK(bgs_service_add(fx.h, &sp, NULL), "same VIP:port, udp");
	sp = spec_of("e", BGS_AF_INET, v4, 81, IPPROTO_TCP, BGS_MODE_NAT, 0);
	ok &= ASSERT_OK(bgs_service_add(fx.h, &sp, NULL), "same VIP, port 81");
	del_all_services(fx.h);
	return ok;
}

static bool test_service_ids_full(void)
{
	struct bgs_sizes sz = { .max_services = 2, .max_backends = 8, .maglev_size = 13,
				.ct_entries = 16 };
	struct bgs_service_spec sp;
	struct snap S, C;
	char dir[128];
	struct bgs *h;
	bool ok = true;

	if (!inst_open("svcfull", &sz, &h, dir, sizeof(dir)))
		return false;
	ok &= svc_new(h, "one", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 0, NULL);
	ok &= svc_new(h, "two", BGS_AF_INET6, 80, IPPROTO_TCP, BGS_MODE_DSR, 0, NULL);
	if (ok && snap_pair(&S, &C, h)) {
		sp = spec_of("three", BGS_AF_INET, next_vip++, 80, IPPROTO_TCP, BGS_MODE_NAT, 0);
		ok &= REFUSED(bgs_service_add(h, &sp, NULL), -ENOSPC, "three");
		ok &= ASSERT_STRSTR(bgs_errmsg(), "2", "message gives the limit");
		snap_pair_fini(&S, &C);
	}
	inst_close(h, dir);
	return ok;
}

/* The biggest legal instance of services: every id with its own address and a preview
 * port (each then has a VIP key, a preview-port key and an address marker). */
static bool test_service_ids_full_with_preview(void)
{
	struct bgs_sizes sz = { .max_services = 4, .max_backends = 8, .maglev_size = 13,
				.ct_entries = 16 };
	char dir[128], name[16];
	struct bgs *h;
	bool ok = true;
	int i;

	if (!inst_open("pvfull", &sz, &h, dir, sizeof(dir)))
		return false;
	for (i = 0; i < 4; i++) {
		struct bgs_service_spec sp;
		struct snap S, C;
		int r;

		snprintf(name, sizeof(name), "p%d", i);
		sp = spec_of(name, BGS_AF_INET, next_vip++, 80, IPPROTO_TCP, BGS_MODE_NAT, 8080);
		if (!snap_pair(&S, &C, h))
			break;
		r = bgs_service_add(h, &sp, NULL);
		ok &= ASSERT_OK(r, name);
		/* and if it fails, it fails whole */
		if (r)
			ok &= snap_same(&S, &C, __LINE__, name);
		snap_pair_fini(&S, &C);
	}
	inst_close(h, dir);
	return ok;
}

/* ---- Backends ---- */

static bool test_backend_add_bad(void)
{
	struct bgs_backend_spec b;
	__u32 nat, dsr, nat6, nat2, udp, be1, be2, id;
	struct snap S, C;
	char lbl[80];
	bool ok = true;
	int n = next_be;

	next_be += 4;
	ok &= svc_new(fx.h, "nat", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 0, &nat);
	ok &= svc_new(fx.h, "dsr", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_DSR, 0, &dsr);
	ok &= svc_new(fx.h, "nat6", BGS_AF_INET6, 80, IPPROTO_TCP, BGS_MODE_NAT, 0, &nat6);
	ok &= svc_new(fx.h, "nat2", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 0, &nat2);
	ok &= svc_new(fx.h, "udp", BGS_AF_INET, 80, IPPROTO_UDP, BGS_MODE_NAT, 0, &udp);
	ok &= be_new(fx.h, nat, BGS_BLUE, BGS_AF_INET, n, 8080, &be1);
	ok &= be_new(fx.h, nat, BGS_GREEN, BGS_AF_INET, n + 1, 8080, &be2);
	ok &= be_new(fx.h, dsr, BGS_BLUE, BGS_AF_INET, n, 0, &id);
	if (!ok || !snap_pair(&S, &C, fx.h))
		return false;

	/* family */
	memset(&b, 0, sizeof(b));
	fx_be_ip(BGS_AF_INET6, FX_NET_BACKEND, n + 2, &b.addr);
	b.port = 8080;
	ok &= REFUSED(bgs_backend_add(fx.h, nat, BGS_BLUE, &b, NULL), -EINVAL, "IPv6");
	ok &= ASSERT_STRSTR(bgs_errmsg(), ipstr(BGS_AF_INET6, b.addr.addr, lbl), "address named");
	fx_be_ip(BGS_AF_INET, FX_NET_BACKEND, n + 2, &b.addr);
	ok &= REFUSED(bgs_backend_add(fx.h, nat6, BGS_BLUE, &b, NULL), -EINVAL,
		      ipstr(BGS_AF_INET, b.addr.addr, lbl));
	b.addr.family = 0;
	ok &= REFUSED(bgs_backend_add(fx.h, nat, BGS_BLUE, &b, NULL), -EINVAL, "family 0");
	b.addr.family = 7;
	ok &= REFUSED(bgs_backend_add(fx.h, nat, BGS_BLUE, &b, NULL), -EINVAL, "family 7");
	fx_be_ip(BGS_AF_INET, FX_NET_BACKEND, n + 2, &b.addr);
	b.addr.addr[3] = 1;
	ok &= REFUSED(bgs_backend_add(fx.h, nat, BGS_BLUE, &b, NULL), -EINVAL, "IPv4");

	/* dsr: the VIP's port only */
	fx_be_ip(BGS_AF_INET, FX_NET_BACKEND, n + 2, &b.addr);
	b.port = 8080;
	ok &= REFUSED(bgs_backend_add(fx.h, dsr, BGS_BLUE, &b, NULL), -EINVAL, ":8080");
	b.port = 81;
	ok &= REFUSED(bgs_backend_add(fx.h, dsr, BGS_GREEN, &b, NULL), -EINVAL, ":81");

	/* weight */
	b.port = 8080;
	b.weight = BGS_MAX_WEIGHT + 1;
	ok &= REFUSED(bgs_backend_add(fx.h, nat, BGS_BLUE, &b, NULL), -EINVAL, "65536");
	b.weight = ~0u;
	ok &= REFUSED(bgs_backend_add(fx.h, nat, BGS_BLUE, &b, NULL), -EINVAL, "4294967295");
	b.weight = 0;

	/* color */
	ok &= REFUSED(bgs_backend_add(fx.h, nat, 2, &b, NULL), -EINVAL, "color 2");
	ok &= REFUSED(bgs_backend_add(fx.h, nat, ~0u, &b, NULL), -EINVAL, "4294967295");

	/* the same address:port in either pool of the service */
	fx_be_ip(BGS_AF_INET, FX_NET_BACKEND, n, &b.addr);
	ok &= REFUSED(bgs_backend_add(fx.h, nat, BGS_BLUE, &b, NULL), -EEXIST, ":8080");
	ok &= REFUSED(bgs_backend_add(fx.h, nat, BGS_GREEN, &b, NULL), -EEXIST, "blue");
	fx_be_ip(BGS_AF_INET, FX_NET_BACKEND, n + 1, &b.addr);
	ok &= REFUSED(bgs_backend_add(fx.h, nat, BGS_BLUE, &b, NULL), -EEXIST, "green");
	b.port = 0;
	fx_be_ip(BGS_AF_INET, FX_NET_BACKEND, n, &b.addr);
	ok &= REFUSED(bgs_backend_add(fx.h, dsr, BGS_GREEN, &b, NULL), -EEXIST, ":80");

	/* one nat service per backend address:port (and protocol) */
	b.port = 8080;
	ok &= REFUSED(bgs_backend_add(fx.h, nat2, BGS_BLUE, &b, NULL), -EEXIST, "'nat'");
	ok &= ASSERT_STRSTR(bgs_errmsg(), ipstr(BGS_AF_INET, b.addr.addr, lbl), "address named");

	/* unknown services */
	ok &= REFUSED(bgs_backend_add(fx.h, 7, BGS_BLUE, &b, NULL), -ENOENT, "7");
	ok &= REFUSED(bgs_backend_add(fx.h, 8, BGS_BLUE, &b, NULL), -ENOENT, "8");
	ok &= REFUSED(bgs_backend_add(fx.h, ~0u, BGS_BLUE, &b, NULL), -ENOENT, "4294967295");

	/* unknown backend ids */
	ok &= REFUSED(bgs_backend_del(fx.h, 0), -ENOENT, "0");
	ok &= REFUSED(bgs_backend_del(fx.h, 250), -ENOENT, "250");
	ok &= REFUSED(bgs_backend_del(fx.h, 300), -ENOENT, "300");
	ok &= REFUSED(bgs_backend_del(fx.h, ~0u), -ENOENT, "4294967295");
	ok &= REFUSED(bgs_backend_set_admin(fx.h, 250, BGS_ADMIN_DOWN), -ENOENT, "250");
	ok &= REFUSED(bgs_backend_set_health(fx.h, 0, BGS_HEALTH_DOWN), -ENOENT, "0");
	ok &= REFUSED(bgs_backend_get(fx.h, 250, NULL), -ENOENT, "250");
	ok &= REFUSED(bgs_backend_set_admin(fx.h, be1, (enum bgs_admin)3), -EINVAL, "3");
	ok &= REFUSED(bgs_backend_set_admin(fx.h, be1, (enum bgs_admin)-1), -EINVAL, "-1");
	ok &= REFUSED(bgs_backend_set_health(fx.h, be1, (enum bgs_health)2), -EINVAL, "2");
	ok &= REFUSED(bgs_backend_counters(fx.h, 0, &(struct bgs_counter){}), -ENOENT, "0");
	ok &= REFUSED(bgs_backend_counters(fx.h, 300, &(struct bgs_counter){}), -ENOENT, "300");
	ok &= REFUSED(bgs_backend_find(fx.h, nat, &b.addr, 9999, NULL), -ENOENT, ":9999");
	ok &= REFUSED(bgs_backend_find(fx.h, 7, &b.addr, 8080, NULL), -ENOENT, "7");
	ok &= REFUSED(bgs_pool_list(fx.h, nat, 2, NULL, 0), -EINVAL, "color 2");
	ok &= REFUSED(bgs_pool_list(fx.h, 7, BGS_BLUE, NULL, 0), -ENOENT, "7");
	/* setting the state a backend already has changes nothing */
	ok &= NOCHANGE(bgs_backend_set_admin(fx.h, be1, BGS_ADMIN_UP), 0);
	ok &= NOCHANGE(bgs_backend_set_health(fx.h, be2, BGS_HEALTH_UP), 0);
	snap_pair_fini(&S, &C);

	/* what is allowed: weight 0 is 100, the limit itself, the same backend in a dsr
	 * service and in a nat service of the other protocol */
	b.port = 8080;
	b.weight = 0;
	fx_be_ip(BGS_AF_INET, FX_NET_BACKEND, n + 2, &b.addr);
	if (ASSERT_OK(bgs_backend_add(fx.h, nat, BGS_BLUE, &b, &id), "weight 0")) {
		struct bgs_backend rec;

		ASSERT_OK(bgs_backend_get(fx.h, id, &rec), "get");
		ok &= ASSERT_EQ(rec.weight, 100, "weight 0 takes 100");
	}
	b.weight = BGS_MAX_WEIGHT;
	fx_be_ip(BGS_AF_INET, FX_NET_BACKEND, n + 3, &b.addr);
	ok &= ASSERT_OK(bgs_backend_add(fx.h, nat, BGS_GREEN, &b, &id), "weight 65535");
	fx_be_ip(BGS_AF_INET, FX_NET_BACKEND, n, &b.addr);
	b.weight = 1;
	ok &= ASSERT_OK(bgs_backend_add(fx.h, udp, BGS_BLUE, &b, &id), "same backend, udp");
	{
		__u32 dsr2;

		b.port = 0;
		ok &= svc_new(fx.h, "dsr2", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_DSR, 0, &dsr2);
		ok &= ASSERT_OK(bgs_backend_add(fx.h, dsr2, BGS_GREEN, &b, &id),
				"dsr: a backend may serve two dsr services");
	}
	del_all_services(fx.h);
	return ok;
}

/*
 * A pool holds BGS_MAX_POOL_BACKENDS; the other pool of the service still takes more. All
 * but the last two records are written straight into bgs_backends as the library writes
 * them (adding each through the library costs a table rebuild and a wait for running
 * programs, seconds in all); the last two go through bgs_backend_add, which counts them
 * all and publishes a table of 256 backends.
 */
static bool test_pool_full(void)
{
	struct bgs_backend_spec b = {};
	int fd = bgs_map_fd(fx.h, "backends");
	struct bgs_backend rec;
	struct snap S, C;
	__u32 svc, id, i, n = 0;
	bool ok = true;

	if (!svc_new(fx.h, "big", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 0, &svc))
		return false;
	for (i = 1; i < fx.meta.max_backends && n < BGS_MAX_POOL_BACKENDS - 2; i++) {
		if (!ASSERT_OK(bpf_map_lookup_elem(fd, &i, &rec), "read record") ||
		    (rec.flags & BGS_BE_IN_USE))
			continue;
		rec = (struct bgs_backend){ .family = BGS_AF_INET, .flags = BGS_BE_IN_USE,
					    .svc_id = svc, .color = BGS_BLUE, .weight = 100,
					    .incarnation = rec.incarnation + 1,
					    .port = htons(8080) };
		rec.addr[0] = htonl(0x0a620000 + i); /* 10.98.x.y */
		if (!ASSERT_OK(bpf_map_update_elem(fd, &i, &rec, BPF_ANY), "write record"))
			return false;
		n++;
	}
	fx_be_ip(BGS_AF_INET, FX_NET_BACKEND, 5, &b.addr);
	for (i = 0; i < 2; i++) {
		b.port = (__u16)(10000 + i);
		ok &= ASSERT_OK(bgs_backend_add(fx.h, svc, BGS_BLUE, &b, &id), "filling the pool");
	}
	ok &= ASSERT_EQ(bgs_pool_list(fx.h, svc, BGS_BLUE, NULL, 0), BGS_MAX_POOL_BACKENDS,
			"pool size");
	if (ok && snap_pair(&S, &C, fx.h)) {
		b.port = 20000;
		ok &= REFUSED(bgs_backend_add(fx.h, svc, BGS_BLUE, &b, NULL), -ENOSPC, "blue");
		ok &= ASSERT_STRSTR(bgs_errmsg(), "256", "message gives the limit");
		snap_pair_fini(&S, &C);
		ok &= ASSERT_OK(bgs_backend_add(fx.h, svc, BGS_GREEN, &b, NULL), "other pool");
		ok &= ASSERT_OK(bgs_backend_del(fx.h, id), "one out");
		b.port = 20001;
		ok &= ASSERT_OK(bgs_backend_add(fx.h, svc, BGS_BLUE, &b, NULL), "room again");
	}
	del_all_services(fx.h);
	return ok;
}

static bool test_backend_ids_full(void)
{
	struct bgs_sizes sz = { .max_services = 2, .max_backends = 4, .maglev_size = 13,
				.ct_entries = 16 };
	struct bgs_backend_spec b = {};
	struct snap S, C;
	char dir[128];
	struct bgs *h;
	__u32 svc;
	bool ok = true;
	int i;

	if (!inst_open("befull", &sz, &h, dir, sizeof(dir)))
		return false;
	ok &= svc_new(h, "s", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 0, &svc);
	fx_be_ip(BGS_AF_INET, FX_NET_BACKEND, 6, &b.addr);
	for (i = 0; i < 3 && ok; i++) { /* ids 1..3 */
		b.port = (__u16)(1000 + i);
		ok &= ASSERT_OK(bgs_backend_add(h, svc, i & 1, &b, NULL), "ids 1..3");
	}
	if (ok && snap_pair(&S, &C, h)) {
		b.port = 2000;
		ok &= REFUSED(bgs_backend_add(h, svc, BGS_BLUE, &b, NULL), -ENOSPC, ":2000");
		snap_pair_fini(&S, &C);
	}
	inst_close(h, dir);
	return ok;
}

/* ---- Routing changes ---- */

static bool test_routing_changes_bad(void)
{
	struct bgs_flip_opts o = { .to_color = BGS_ANY_COLOR, .expect_gen = BGS_ANY_GEN,
				   .drain_ms = BGS_NO_DEADLINE };
	struct bgs_flip f, after;
	struct snap S, C;
	__u32 svc, gen, id;
	char num[32];
	bool ok = true;

	ok &= svc_new(fx.h, "rt", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 0, &svc);
	ok &= be_new(fx.h, svc, BGS_BLUE, BGS_AF_INET, next_be++, 8080, &id);
	if (!ok || !ASSERT_OK(bgs_service_get(fx.h, svc, NULL, &f), "get") ||
	    !snap_pair(&S, &C, fx.h))
		return false;
	gen = bgs_fw_gen(f.word);

	/* unknown service */
	ok &= REFUSED(bgs_flip(fx.h, 7, &o, &after), -ENOENT, "7");
	ok &= REFUSED(bgs_flip(fx.h, 8, &o, &after), -ENOENT, "8");
	ok &= REFUSED(bgs_canary_set(fx.h, 7, 100, false, BGS_ANY_GEN, NULL), -ENOENT, "7");
	ok &= REFUSED(bgs_canary_set(fx.h, ~0u, 100, false, BGS_ANY_GEN, NULL), -ENOENT,
		      "4294967295");
	ok &= REFUSED(bgs_drain_end(fx.h, 7, NULL), -ENOENT, "7");
	ok &= REFUSED(bgs_flow_kill(fx.h, 7, BGS_ANY_COLOR), -ENOENT, "7");
	ok &= REFUSED(bgs_svc_counters(fx.h, 7, BGS_BLUE, &(struct bgs_counter){}), -ENOENT,
		      "7");
	ok &= REFUSED(bgs_service_get(fx.h, 8, NULL, NULL), -ENOENT, "8");
	ok &= REFUSED(bgs_service_del(fx.h, 7), -ENOENT, "7");
	ok &= REFUSED(bgs_service_del(fx.h, 100), -ENOENT, "100");
	ok &= REFUSED(bgs_service_find(fx.h, "nosuch", NULL), -ENOENT, "nosuch");
	ok &= REFUSED(bgs_service_find(fx.h, NULL, NULL), -EINVAL, NULL);

	/* bad colors */
	o.to_color = 2;
	ok &= REFUSED(bgs_flip(fx.h, svc, &o, &after), -EINVAL, "color 2");
	o.to_color = -2;
	ok &= REFUSED(bgs_flip(fx.h, svc, &o, &after), -EINVAL, "color -2");
	ok &= REFUSED(bgs_flow_kill(fx.h, svc, 2), -EINVAL, "color 2");
	ok &= REFUSED(bgs_svc_counters(fx.h, svc, 2, &(struct bgs_counter){}), -EINVAL,
		      "color 2");
	o.to_color = BGS_ANY_COLOR;

	/* canary weight */
	ok &= REFUSED(bgs_canary_set(fx.h, svc, BGS_CANARY_SCALE + 1, false, BGS_ANY_GEN, NULL),
		      -EINVAL, "10001");
	ok &= REFUSED(bgs_canary_set(fx.h, svc, ~0u, true, BGS_ANY_GEN, NULL), -EINVAL,
		      "4294967295");

	/* stale generation */
	snprintf(num, sizeof(num), "%u", gen + 1);
	o.expect_gen = gen + 1;
	o.force = true;
	ok &= REFUSED(bgs_flip(fx.h, svc, &o, &after), -ESTALE, num);
	ok &= REFUSED(bgs_canary_set(fx.h, svc, 100, false, gen + 1, NULL), -ESTALE, num);
	o.expect_gen = (long long)gen - 1;
	snprintf(num, sizeof(num), "%u", gen - 1);
	ok &= REFUSED(bgs_flip(fx.h, svc, &o, &after), -ESTALE, num);
	o.expect_gen = -2;
	ok &= REFUSED(bgs_flip(fx.h, svc, &o, &after), -ESTALE, "-2");
	ok &= REFUSED(bgs_canary_set(fx.h, svc, 100, false, -5, NULL), -ESTALE, "-5");
	o.expect_gen = (long long)gen + (1LL << 32);
	ok &= REFUSED(bgs_flip(fx.h, svc, &o, &after), -ESTALE, "4294967");

	/* an empty target pool needs force */
	o.expect_gen = BGS_ANY_GEN;
	o.force = false;
	ok &= REFUSED(bgs_flip(fx.h, svc, &o, &after), -EHOSTUNREACH, "green");
	o.to_color = BGS_GREEN;
	ok &= REFUSED(bgs_flip(fx.h, svc, &o, &after), -EHOSTUNREACH, "green");

	/* force sends traffic to an empty pool */
	{
		__u32 other;
		struct bgs_flip_opts fo = { .to_color = BGS_ANY_COLOR, .expect_gen = BGS_ANY_GEN,
					    .drain_ms = BGS_NO_DEADLINE, .force = true };

		snap_pair_fini(&S, &C);
		ok &= svc_new(fx.h, "rt2", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 0, &other);
		ok &= ASSERT_EQ(bgs_flip(fx.h, other, &fo, &after), 1, "forced flip to empty pool");
		ok &= ASSERT_EQ(bgs_fw_live(after.word), BGS_GREEN, "green live");
		ok &= ASSERT_OK(bgs_service_del(fx.h, other), "delete rt2");
		if (!snap_pair(&S, &C, fx.h))
			return false;
	}

	/* to the live color: 0, nothing written, even with a stale generation */
	o.to_color = BGS_BLUE;
	ok &= NOCHANGE(bgs_flip(fx.h, svc, &o, &after), 0);
	ok &= ASSERT_EQ(after.word, f.word, "after = current word");
	o.force = true;
	ok &= NOCHANGE(bgs_flip(fx.h, svc, &o, NULL), 0);
	/* drain end with no drain: nothing written */
	ok &= NOCHANGE(bgs_drain_end(fx.h, svc, &after), 0);
	/* flow kill of the live color, read-only calls */
	ok &= NOCHANGE(bgs_flow_kill(fx.h, svc, BGS_BLUE), 0);
	ok &= NOCHANGE(bgs_flow_kill(fx.h, svc, BGS_ANY_COLOR), 0);
	ok &= NOCHANGE(bgs_pool_list(fx.h, svc, BGS_BLUE, NULL, 0), 1);
	ok &= NOCHANGE(bgs_service_list(fx.h, NULL, 0), 1);
	ok &= NOCHANGE(bgs_preview_list(fx.h, svc, NULL, 0), 0);
	snap_pair_fini(&S, &C);

	/* a drained (admin) or unhealthy pool is as unusable as an empty one */
	{
		__u32 g;

		ok &= be_new(fx.h, svc, BGS_GREEN, BGS_AF_INET, next_be++, 8080, &g);
		ok &= ASSERT_OK(bgs_backend_set_health(fx.h, g, BGS_HEALTH_DOWN), "health down");
		o.to_color = BGS_ANY_COLOR;
		o.force = false;
		if (snap_pair(&S, &C, fx.h)) {
			ok &= REFUSED(bgs_flip(fx.h, svc, &o, NULL), -EHOSTUNREACH, "green");
			snap_pair_fini(&S, &C);
		}
		ok &= ASSERT_OK(bgs_backend_set_health(fx.h, g, BGS_HEALTH_UP), "health up");
		ok &= ASSERT_OK(bgs_backend_set_admin(fx.h, g, BGS_ADMIN_DRAIN), "admin drain");
		if (snap_pair(&S, &C, fx.h)) {
			ok &= REFUSED(bgs_flip(fx.h, svc, &o, NULL), -EHOSTUNREACH, "green");
			snap_pair_fini(&S, &C);
		}
		ok &= ASSERT_OK(bgs_backend_set_admin(fx.h, g, BGS_ADMIN_UP), "admin up");
		ok &= ASSERT_EQ(bgs_flip(fx.h, svc, &o, &after), 1, "usable now");
	}
	del_all_services(fx.h);
	return ok;
}

/* ---- Preview prefixes ---- */

static bool test_preview_bad(void)
{
	struct bgs_prefix p, q;
	struct snap S, C;
	__u32 s4, s6;
	bool ok = true;

	ok &= svc_new(fx.h, "pv4", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 0, &s4);
	ok &= svc_new(fx.h, "pv6", BGS_AF_INET6, 80, IPPROTO_TCP, BGS_MODE_DSR, 0, &s6);
	ok &= ASSERT_OK(bgs_prefix_parse("10.20.0.0/16", &p), "parse");
	ok &= ASSERT_OK(bgs_preview_add(fx.h, s4, &p), "first prefix");
	if (!ok || !snap_pair(&S, &C, fx.h))
		return false;

	/* wrong family either way */
	ok &= REFUSED(bgs_preview_add(fx.h, s6, &p), -EINVAL, "10.20.0.0/16");
	bgs_prefix_parse("2001:db8::/32", &q);
	ok &= REFUSED(bgs_preview_add(fx.h, s4, &q), -EINVAL, "2001:db8::/32");
	ok &= REFUSED(bgs_preview_del(fx.h, s4, &q), -EINVAL, "2001:db8::/32");
	q.ip.family = 0;
	ok &= REFUSED(bgs_preview_add(fx.h, s6, &q), -EINVAL, "family 0");
	q.ip.family = 9;
	ok &= REFUSED(bgs_preview_add(fx.h, s6, &q), -EINVAL, "family 9");

	/* lengths past the address */
	q = p;
	q.len = 33;
	ok &= REFUSED(bgs_preview_add(fx.h, s4, &q), -EINVAL, "/33");
	q.len = 255;
	ok &= REFUSED(bgs_preview_add(fx.h, s4, &q), -EINVAL, "/255");
	bgs_prefix_parse("2001:db8::/32", &q);
	q.len = 129;
	ok &= REFUSED(bgs_preview_add(fx.h, s6, &q), -EINVAL, "/129");

	/* duplicate, missing, unknown service */
	ok &= REFUSED(bgs_preview_add(fx.h, s4, &p), -EEXIST, "10.20.0.0/16");
	bgs_prefix_parse("10.21.0.0/16", &q);
	ok &= REFUSED(bgs_preview_del(fx.h, s4, &q), -ENOENT, "10.21.0.0/16");
	bgs_prefix_parse("10.0.0.0/8", &q);
	ok &= REFUSED(bgs_preview_del(fx.h, s4, &q), -ENOENT, "10.0.0.0/8");
	ok &= REFUSED(bgs_preview_add(fx.h, 7, &p), -ENOENT, "7");
	ok &= REFUSED(bgs_preview_del(fx.h, 7, &p), -ENOENT, "7");
	ok &= REFUSED(bgs_preview_list(fx.h, 7, NULL, 0), -ENOENT, "7");
	snap_pair_fini(&S, &C);
	del_all_services(fx.h);
	return ok;
}

/*
 * Deleting a prefix that is not there but lies inside one that is (10.20.0.0/17 while
 * 10.20.0.0/16 exists): refused, and the existing prefix and the service's preview flag
 * stay as they were.
 */
static bool test_preview_del_inside(void)
{
	struct bgs_prefix p, q;
	struct snap S, C;
	__u32 s4;
	bool ok = true;

	ok &= svc_new(fx.h, "pvi", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 0, &s4);
	ok &= ASSERT_OK(bgs_prefix_parse("10.20.0.0/16", &p), "parse");
	ok &= ASSERT_OK(bgs_preview_add(fx.h, s4, &p), "prefix");
	if (!ok || !snap_pair(&S, &C, fx.h))
		return false;
	bgs_prefix_parse("10.20.0.0/17", &q);
	ok &= REFUSED(bgs_preview_del(fx.h, s4, &q), -ENOENT, "10.20.0.0/17");
	bgs_prefix_parse("10.20.128.0/24", &q);
	ok &= REFUSED(bgs_preview_del(fx.h, s4, &q), -ENOENT, "10.20.128.0/24");
	snap_pair_fini(&S, &C);
	del_all_services(fx.h);
	return ok;
}

/* A hand-made prefix with host bits set (bgs_prefix_parse refuses it) is refused by
 * preview add with a message that names it. */
static bool test_preview_host_bits(void)
{
	struct bgs_prefix q = {};
	struct snap S, C;
	__u32 s4;
	bool ok = true;

	if (!svc_new(fx.h, "pvh", BGS_AF_INET, 80, IPPROTO_TCP, BGS_MODE_NAT, 0, &s4) ||
	    !snap_pair(&S, &C, fx.h))
		return false;
	bgs_ip_parse("10.20.0.1", &q.ip);
	q.len = 16;
	ok &= REFUSED(bgs_preview_add(fx.h, s4, &q), -EINVAL, "10.20.0.1/16");
	ok &= ASSERT_STRSTR(bgs_errmsg(), "pvh", "message names the service");
	snap_pair_fini(&S, &C);
	del_all_services(fx.h);
	return ok;
}

/* ---- Fuzz ---- */

static __u64 rng_state;

static __u64 rnd(void)
{
	__u64 x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static __u32 rn(__u32 n)
{
	return n ? (__u32)(rnd() % n) : 0;
}

static bool chance(__u32 pct)
{
	return rn(100) < pct;
}

static const char *const addr_seeds[] = {
	"10.99.1.5", "10.99.1.17", "fd00:99:1::be:5", "::", "::ffff:1.2.3.4", "1.2.3.4",
	"255.255.255.255", "2001:db8::1", "0.0.0.0", "fe80::1",
};

/* A random string: a mutated seed or random bytes. */
static void rand_str(char *buf, size_t len, const char *const *seeds, size_t nseeds,
		     const char *alphabet)
{
	size_t n, i, k;

	if (chance(30)) {
		n = rn((__u32)len);
		for (i = 0; i < n; i++)
			buf[i] = (char)(1 + rn(255));
		buf[n] = 0;
		return;
	}
	snprintf(buf, len, "%s", seeds[rn((__u32)nseeds)]);
	k = rn(4);
	for (i = 0; i < k; i++) {
		size_t l = strlen(buf), at = rn((__u32)l + 1);
		char c = alphabet[rn((__u32)strlen(alphabet))];

		switch (rn(3)) {
		case 0: /* replace */
			if (at < l)
				buf[at] = c;
			break;
		case 1: /* insert */
			if (l + 2 < len) {
				memmove(buf + at + 1, buf + at, l - at + 1);
				buf[at] = c;
			}
			break;
		default: /* delete */
			if (at < l)
				memmove(buf + at, buf + at + 1, l - at);
			break;
		}
	}
}

struct fuzz {
	struct bgs *h;
	struct bgs_meta meta;
	struct snap cur, now;
	unsigned long ops, fails, successes, per_op_ok[20], per_op_fail[20];
	double per_op_s[20];
};

/* A random address: garbage of any family, or (mostly) one of the topology: a VIP
 * (vip true) or a backend with a permanent neighbour (so that adds succeed without a wait
 * for neighbour resolution). */
static void rand_ip(struct bgs_ip *ip, bool vip)
{
	memset(ip, 0, sizeof(*ip));
	switch (rn(8)) {
	case 0:
		ip->family = (__u8)rn(256);
		ip->addr[0] = (__u32)rnd();
		ip->addr[3] = (__u32)rnd();
		break;
	case 1:
		/* 203.0.113.0/24: no route in the test namespace */
		ip->family = BGS_AF_INET;
		ip->addr[0] = htonl(0xcb007100 | rn(256));
		if (chance(50))
			ip->addr[1 + rn(3)] = (__u32)rnd() | 1;
		break;
	case 2:
		ip->family = BGS_AF_INET6;
		ip->addr[0] = htonl(0x20010db8);
		ip->addr[1] = (__u32)rnd();
		ip->addr[2] = (__u32)rnd();
		ip->addr[3] = (__u32)rnd();
		break;
	default:
		if (!vip)
			fx_be_ip(chance(50) ? BGS_AF_INET : BGS_AF_INET6, FX_NET_BACKEND,
				 2 + (int)rn(12), ip);
		else
			fx_vip(chance(50) ? BGS_AF_INET : BGS_AF_INET6, 100 + (int)rn(4), ip);
		break;
	}
}

static __u16 rand_port(void)
{
	static const __u16 ports[] = { 0, 80, 443, 8080, 53, 65535, 1 };

	return chance(70) ? ports[rn(ARRAY_SIZE(ports))] : (__u16)rnd();
}

/* A service id in range with pct percent chance, else out of range. */
static __u32 rand_svc(struct fuzz *z, __u32 pct)
{
	if (chance(pct))
		return rn(z->meta.max_services);
	return chance(50) ? z->meta.max_services + rn(3) : (__u32)rnd();
}

/* A backend in use (from the current snapshot) with pct percent chance, else a free id, 0 or
 * one out of range. */
static __u32 rand_be(struct fuzz *z, __u32 pct)
{
	const struct mapsnap *m = &z->cur.m[S_BACKENDS];
	bool in_use = chance(pct);
	__u32 i, start;

	if (in_use || chance(50)) {
		start = rn(m->n);
		for (i = 0; i < m->n; i++) {
			__u32 k = (start + i) % m->n;
			const struct bgs_backend *be =
				(const void *)(m->data + (size_t)k * m->rec + m->koff);

			if (k && !!(be->flags & BGS_BE_IN_USE) == in_use)
				return k;
		}
	}
	switch (rn(3)) {
	case 0:
		return 0;
	case 1:
		return z->meta.max_backends + rn(3);
	default:
		return (__u32)rnd() | 0x80000000u;
	}
}

/* A service in use, from the current snapshot; ~0u if none. */
static __u32 pick_svc(struct fuzz *z)
{
	__u32 i, start = rn(z->meta.max_services), id;

	for (i = 0; i < z->meta.max_services; i++) {
		id = (start + i) % z->meta.max_services;
		if (((const struct bgs_service *)(z->cur.m[S_SVCS].data +
						  (size_t)id * z->cur.m[S_SVCS].rec +
						  z->cur.m[S_SVCS].koff))->flags & BGS_SVC_IN_USE)
			return id;
	}
	return ~0u;
}

static const struct bgs_service *snap_svc(struct fuzz *z, __u32 id)
{
	const struct mapsnap *m = &z->cur.m[S_SVCS];

	return (const void *)(m->data + (size_t)id * m->rec + m->koff);
}

/* The address:port of a backend in use: of service svc (same), or of another service. */
static void pick_be_addr(struct fuzz *z, __u32 svc, bool same, struct bgs_backend_spec *bs)
{
	const struct mapsnap *m = &z->cur.m[S_BACKENDS];
	__u32 i, start = rn(m->n);

	for (i = 0; i < m->n; i++) {
		__u32 k = (start + i) % m->n;
		const struct bgs_backend *be =
			(const void *)(m->data + (size_t)k * m->rec + m->koff);

		if (!k || !(be->flags & BGS_BE_IN_USE) || (be->svc_id == svc) != same)
			continue;
		bs->addr.family = be->family;
		memcpy(bs->addr.addr, be->addr, 16);
		bs->port = ntohs(be->port);
		return;
	}
}

static long long rand_gen(struct fuzz *z, __u32 svc)
{
	struct bgs_flip f = {};

	if (chance(40))
		return BGS_ANY_GEN;
	if (svc < z->meta.max_services && !bgs_service_get(z->h, svc, NULL, &f) && chance(70))
		return (long long)bgs_fw_gen(f.word) + (chance(70) ? 0 : (int)rn(3) - 1);
	return (long long)rnd() >> rn(64);
}

/* ---- The independent consistency check of a whole snapshot ---- */

static const __u8 *rec_at(const struct mapsnap *m, __u32 i)
{
	return m->data + (size_t)i * m->rec;
}

static const void *val_of_array(const struct mapsnap *m, __u32 i)
{
	return rec_at(m, i) + m->koff;
}

static bool hash_has(const struct mapsnap *m, const void *key, void *val)
{
	__u32 i;

	for (i = 0; i < m->n; i++)
		if (!memcmp(rec_at(m, i), key, m->key_size)) {
			if (val)
				memcpy(val, rec_at(m, i) + m->koff, m->value_size);
			return true;
		}
	return false;
}

static __u32 table_at(const struct mapsnap *mg, __u32 svc, __u32 color, __u32 slot, __u32 m,
		      __u32 h)
{
	return *(const __u32 *)val_of_array(mg, (__u32)bgs_maglev_index(svc, color, slot, m, h));
}

/* Index of the first non-zero entry of a table; m if none. */
static __u32 table_first_set(const struct mapsnap *mg, __u32 svc, __u32 color, __u32 slot,
			     __u32 m)
{
	__u32 h;

	for (h = 0; h < m && !table_at(mg, svc, color, slot, m, h); h++)
		;
	return h;
}

static bool all_zero(const void *p, size_t n)
{
	const __u8 *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static bool be_usable(const struct bgs_backend *be)
{
	return (be->flags & BGS_BE_IN_USE) && be->admin == BGS_ADMIN_UP &&
	       be->health == BGS_HEALTH_UP;
}

static bool name_ok(const char *n)
{
	size_t i, len = strnlen(n, BGS_NAME_MAX);

	if (!len || len >= BGS_NAME_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-",
			    n[i]))
			return false;
	return true;
}

#define CHECK(cond, ...)                                      \
	do {                                                  \
		if (!(cond)) {                                \
			FAILF(__VA_ARGS__);                   \
			ok = false;                           \
		}                                             \
	} while (0)

/* The table of (svc, color) in use holds only usable backends of that pool, and is full if
 * the pool has one, empty if not. */
static bool table_ok(struct fuzz *z, const struct snap *s, __u32 svc, __u32 c, __u32 slot)
{
	const struct mapsnap *bes = &s->m[S_BACKENDS], *mg = &s->m[S_MAGLEV];
	__u32 nbe = z->meta.max_backends, m = z->meta.maglev_size, b, h, nonzero = 0;
	bool usable = false;

	for (b = 1; b < nbe; b++) {
		const struct bgs_backend *be = val_of_array(bes, b);

		if (be_usable(be) && be->svc_id == svc && be->color == c)
			usable = true;
	}
	for (h = 0; h < m; h++) {
		__u32 e = table_at(mg, svc, c, slot, m, h);
		const struct bgs_backend *be = val_of_array(bes, e < nbe ? e : 0);

		if (!e)
			continue;
		nonzero++;
		if (e >= nbe || !be_usable(be) || be->svc_id != svc || be->color != c) {
			FAILF("service %u color %u: table holds backend %u, not a usable one of "
			      "the pool", svc, c, e);
			return false;
		}
	}
	if (nonzero != (usable ? m : 0)) {
		FAILF("service %u color %u: %u table entries set, pool usable %d", svc, c,
		      nonzero, usable);
		return false;
	}
	return true;
}

static bool state_consistent(struct fuzz *z, const struct snap *s)
{
	const struct mapsnap *svcs = &s->m[S_SVCS], *flip = &s->m[S_FLIP], *vips = &s->m[S_VIPS],
			     *bes = &s->m[S_BACKENDS], *mg = &s->m[S_MAGLEV],
			     *pv = &s->m[S_PREVIEW], *rn_ = &s->m[S_REVNAT];
	__u32 nsvc = z->meta.max_services, nbe = z->meta.max_backends, m = z->meta.maglev_size;
	__u32 i, j, c, want_vips = 0, want_revnat = 0;
	bool ok = true;

	for (i = 0; i < nsvc; i++) {
		const struct bgs_service *sv = val_of_array(svcs, i);
		const struct bgs_flip *fl = val_of_array(flip, i);
		struct bgs_vip_key k = {};
		struct bgs_vip_val v;
		bool has_pv = false;

		if (!(sv->flags & BGS_SVC_IN_USE)) {
			CHECK(all_zero(sv, sizeof(*sv)), "free service %u: record not zero", i);
			CHECK(!(fl->word & ((1ULL << BGS_FW_GEN_SHIFT) - 1)),
			      "free service %u: flip word %#llx (only a generation stays)", i,
			      (unsigned long long)fl->word);
			for (c = 0; c < 4; c++)
				CHECK(table_first_set(mg, i, c / 2, c % 2, m) == m,
				      "free service %u: table %u not empty", i, c);
			continue;
		}
		CHECK(name_ok(sv->name), "service %u: bad name stored", i);
		for (j = 0; j < i; j++) {
			const struct bgs_service *o = val_of_array(svcs, j);

			CHECK(!(o->flags & BGS_SVC_IN_USE) ||
				      strncmp(o->name, sv->name, BGS_NAME_MAX),
			      "services %u and %u share a name", j, i);
		}
		CHECK(sv->family == BGS_AF_INET || sv->family == BGS_AF_INET6,
		      "service %u family %u", i, sv->family);
		CHECK(sv->proto == IPPROTO_TCP || sv->proto == IPPROTO_UDP, "service %u proto", i);
		CHECK(sv->mode <= BGS_MODE_DSR, "service %u mode", i);
		CHECK(sv->port != 0, "service %u port 0", i);
		CHECK(!sv->preview_port || (sv->mode == BGS_MODE_NAT &&
					    sv->preview_port != sv->port),
		      "service %u preview port", i);
		CHECK(fl->word & BGS_FW_ACTIVE, "service %u not active", i);
		CHECK(bgs_fw_canary(fl->word) <= BGS_CANARY_SCALE, "service %u canary", i);
		CHECK(bgs_flip_drain(fl)->gen <= bgs_fw_gen(fl->word), "service %u drain_gen %u > gen %u", i,
		      bgs_flip_drain(fl)->gen, bgs_fw_gen(fl->word));

		memcpy(k.addr, sv->vip, 16);
		k.family = sv->family;
		k.proto = sv->proto;
		k.port = sv->port;
		CHECK(hash_has(vips, &k, &v) && v.svc_id == i && v.flags == 0,
		      "service %u: VIP key missing or wrong", i);
		want_vips++;
		if (sv->preview_port) {
			k.port = sv->preview_port;
			CHECK(hash_has(vips, &k, &v) && v.svc_id == i &&
				      v.flags == BGS_VIP_PREVIEW_PORT,
			      "service %u: preview-port key missing or wrong", i);
			want_vips++;
		}
		/* preview prefixes <-> BGS_SVC_HAS_PREVIEW */
		for (j = 0; j < pv->n; j++) {
			const struct bgs_preview_key *pk = (const void *)rec_at(pv, j);

			if (ntohl(pk->svc_id) == i)
				has_pv = true;
		}
		CHECK(has_pv == !!(sv->flags & BGS_SVC_HAS_PREVIEW),
		      "service %u: HAS_PREVIEW %d but prefixes %d", i,
		      !!(sv->flags & BGS_SVC_HAS_PREVIEW), has_pv);

		/* the tables in use: only usable backends of the pool, empty iff none */
		for (c = 0; c < 2; c++)
			ok &= table_ok(z, s, i, c, bgs_fw_slot(fl->word, c));
	}
	/* address markers: one per (family, address) in use, pointing to a user of it */
	for (i = 0; i < vips->n; i++) {
		const struct bgs_vip_key *k = (const void *)rec_at(vips, i);
		const struct bgs_vip_val *v = (const void *)(rec_at(vips, i) + vips->koff);
		const struct bgs_service *sv;

		CHECK(v->svc_id < nsvc, "VIP key to service %u", v->svc_id);
		if (v->svc_id >= nsvc)
			continue;
		sv = val_of_array(svcs, v->svc_id);
		CHECK(sv->flags & BGS_SVC_IN_USE, "VIP key to free service %u", v->svc_id);
		CHECK(sv->family == k->family && !memcmp(sv->vip, k->addr, 16),
		      "VIP key's address is not service %u's", v->svc_id);
		if (v->flags & BGS_VIP_ADDRESS) {
			CHECK(k->port == 0 && k->proto == 0 && v->flags == BGS_VIP_ADDRESS,
			      "address marker with port %u proto %u flags %#x", ntohs(k->port),
			      k->proto, v->flags);
		} else {
			CHECK(k->port != 0, "VIP key with port 0 and no marker flag");
		}
	}
	for (i = 0; i < nsvc; i++) {
		const struct bgs_service *sv = val_of_array(svcs, i);
		struct bgs_vip_key k = {};
		bool first = true;

		if (!(sv->flags & BGS_SVC_IN_USE))
			continue;
		for (j = 0; j < i; j++) {
			const struct bgs_service *o = val_of_array(svcs, j);

			if ((o->flags & BGS_SVC_IN_USE) && o->family == sv->family &&
			    !memcmp(o->vip, sv->vip, 16))
				first = false;
		}
		if (!first)
			continue;
		memcpy(k.addr, sv->vip, 16);
		k.family = sv->family;
		CHECK(hash_has(vips, &k, NULL), "service %u: no address marker", i);
		want_vips++;
	}
	CHECK(vips->n == want_vips, "bgs_vips holds %u keys, expected %u", vips->n, want_vips);

	/* backends */
	for (i = 1; i < nbe; i++) {
		const struct bgs_backend *be = val_of_array(bes, i);
		const struct bgs_service *sv;

		if (!(be->flags & BGS_BE_IN_USE)) {
			struct bgs_backend z = { .incarnation = be->incarnation };

			CHECK(!memcmp(&z, be, sizeof(z)), "free backend %u: record not zero", i);
			continue;
		}
		CHECK(be->incarnation != 0, "backend %u: incarnation 0", i);
		CHECK(be->svc_id < nsvc, "backend %u: service %u", i, be->svc_id);
		if (be->svc_id >= nsvc)
			continue;
		sv = val_of_array(svcs, be->svc_id);
		CHECK(sv->flags & BGS_SVC_IN_USE, "backend %u of free service %u", i, be->svc_id);
		CHECK(be->family == sv->family, "backend %u: family %u", i, be->family);
		CHECK(be->color < 2 && be->admin <= BGS_ADMIN_DOWN && be->health <= BGS_HEALTH_DOWN,
		      "backend %u: color/admin/health", i);
		CHECK(be->weight >= 1 && be->weight <= BGS_MAX_WEIGHT, "backend %u weight %u", i,
		      be->weight);
		CHECK(be->port != 0, "backend %u port 0", i);
		CHECK(sv->mode != BGS_MODE_DSR || be->port == sv->port, "dsr backend %u port", i);
		CHECK(be->family != BGS_AF_INET || (!be->addr[1] && !be->addr[2] && !be->addr[3]),
		      "backend %u: IPv4 with more words", i);
		for (j = 1; j < i; j++) {
			const struct bgs_backend *o = val_of_array(bes, j);

			CHECK(!(o->flags & BGS_BE_IN_USE) || o->svc_id != be->svc_id ||
				      o->port != be->port || memcmp(o->addr, be->addr, 16) ||
				      o->family != be->family,
			      "backends %u and %u: same address:port in one service", j, i);
		}
		if (sv->mode == BGS_MODE_NAT) {
			struct bgs_revnat_key rk = { .port = be->port, .proto = sv->proto,
						     .family = be->family };
			__u32 owner = ~0u;

			memcpy(rk.addr, be->addr, 16);
			CHECK(!bgs_revnat_lookup(s->h, &rk, &owner) && owner == be->svc_id,
			      "nat backend %u: reverse key missing or wrong", i);
			want_revnat++;
		}
	}
	for (i = 0, j = 0; i < rn_->max_entries; i++)
		j += ((const struct bgs_revnat_slot *)(rn_->mmapped + (size_t)i *
						       round8(sizeof(struct bgs_revnat_slot))))->used != 0;
	CHECK(j == want_revnat, "bgs_revnat holds %u keys, expected %u", j, want_revnat);
	return ok;
}

enum {
	OP_IP_PARSE,
	OP_PREFIX_PARSE,
	OP_SVC_ADD,
	OP_SVC_DEL,
	OP_BE_ADD,
	OP_BE_DEL,
	OP_BE_ADMIN,
	OP_BE_HEALTH,
	OP_FLIP,
	OP_CANARY,
	OP_DRAIN_END,
	OP_PV_ADD,
	OP_PV_DEL,
	OP_FLOW_KILL,
	OP_READ,
	OP_NR,
};

static const char *const op_names[OP_NR] = {
	"ip_parse", "prefix_parse", "service_add", "service_del", "backend_add", "backend_del",
	"set_admin", "set_health", "flip", "canary", "drain_end", "preview_add", "preview_del",
	"flow_kill", "reads",
};

/* The record and flip state of a service just added from spec. */
static bool service_is(struct bgs *h, __u32 id, const struct bgs_service_spec *sp)
{
	const __u64 low = (1ULL << BGS_FW_GEN_SHIFT) - 1;
	struct bgs_service sv;
	struct bgs_flip f;
	bool ok = true;

	if (!ASSERT_OK(bgs_service_get(h, id, &sv, &f), "get"))
		return false;
	ok &= ASSERT_EQ(strcmp(sv.name, sp->name), 0, "name stored");
	ok &= ASSERT_MEMEQ(sv.vip, sp->vip.addr, 16, "vip stored");
	ok &= ASSERT_EQ(sv.family, sp->vip.family, "family stored");
	ok &= ASSERT_EQ(sv.port, htons(sp->port), "port stored");
	ok &= ASSERT_EQ(sv.preview_port, htons(sp->preview_port), "preview port stored");
	ok &= ASSERT_EQ(sv.proto, sp->proto, "proto stored");
	ok &= ASSERT_EQ(sv.mode, sp->mode, "mode stored");
	ok &= ASSERT_EQ(f.word & low, BGS_FW_ACTIVE, "new flip word: active, blue, no canary");
	ok &= ASSERT_GE(bgs_fw_gen(f.word), 1, "a generation");
	ok &= ASSERT_EQ(bgs_flip_drain(&f)->gen, 0, "no drain");
	return ok;
}

/* One random call; returns its result and describes it in what. */
static long long fuzz_one(struct fuzz *z, int op, char *what, size_t wlen, bool *changes)
{
	struct bgs_service_spec sp = {};
	struct bgs_backend_spec bs = {};
	struct bgs_flip_opts fo;
	struct bgs_flip before = {}, after = {};
	struct bgs_prefix pf;
	char buf[96], name[48];
	long long r = 0;
	bool ok = true;
	__u32 svc, id;

	*changes = false;
	switch (op) {
	case OP_IP_PARSE: {
		struct bgs_ip ip;

		rand_str(buf, sizeof(buf), addr_seeds, ARRAY_SIZE(addr_seeds),
			 "0123456789abcdef:./%x ");
		snprintf(what, wlen, "ip_parse");
		r = bgs_ip_parse(buf, &ip);
		if (!r) {
			char out[64];
			struct bgs_ip back;

			ok &= ASSERT_TRUE(ip.family == BGS_AF_INET || ip.family == BGS_AF_INET6,
					  "parsed family");
			bgs_ip_str(&ip, out, sizeof(out));
			ok &= ASSERT_OK(bgs_ip_parse(out, &back), "formatted address parses");
			ok &= ASSERT_MEMEQ(&back, &ip, sizeof(ip), "round trip");
		}
		break;
	}
	case OP_PREFIX_PARSE: {
		static const char *const seeds[] = { "10.0.0.0/8", "1.2.3.4/32", "2001:db8::/32",
						     "::/0", "10.99.1.0/24", "fd00::/8" };

		rand_str(buf, sizeof(buf), seeds, ARRAY_SIZE(seeds), "0123456789abcdef:./-+ ");
		snprintf(what, wlen, "prefix_parse");
		r = bgs_prefix_parse(buf, &pf);
		if (!r) {
			unsigned int bits = pf.ip.family == BGS_AF_INET ? 32 : 128, i;
			const __u8 *b = (const __u8 *)pf.ip.addr;

			ok &= ASSERT_LE(pf.len, bits, "length");
			for (i = pf.len; i < bits; i++)
				if (b[i / 8] & (0x80 >> (i % 8))) {
					FAILF("prefix '%s': host bit %u set after parse", buf, i);
					ok = false;
					break;
				}
		}
		break;
	}
	case OP_SVC_ADD: {
		static const char *const seeds[] = { "web", "api", "dns", "a", "svc.1", "b-2" };
		static const __u8 protos[] = { IPPROTO_TCP, IPPROTO_UDP };

		rand_str(name, sizeof(name), seeds, ARRAY_SIZE(seeds), "abcXYZ019_.- /:%\xff");
		sp.name = chance(3) ? NULL : name;
		rand_ip(&sp.vip, true);
		sp.port = rand_port();
		sp.proto = chance(85) ? protos[rn(2)] : (__u8)rnd();
		sp.mode = chance(85) ? (__u8)rn(2) : (__u8)rnd();
		sp.preview_port = chance(50) ? 0 : chance(20) ? sp.port : rand_port();
		snprintf(what, wlen, "service_add");
		r = bgs_service_add(z->h, &sp, &id);
		if (!r) {
			*changes = true;
			ok &= ASSERT_LT(id, z->meta.max_services, "id");
			ok &= service_is(z->h, id, &sp);
		}
		break;
	}
	case OP_SVC_DEL:
		svc = rand_svc(z, 4);
		snprintf(what, wlen, "service_del %u", svc);
		r = bgs_service_del(z->h, svc);
		if (!r) {
			*changes = true;
			ok &= ASSERT_ERR(bgs_service_get(z->h, svc, NULL, NULL), -ENOENT, "gone");
		}
		break;
	case OP_BE_ADD: {
		__u32 color = rn(2);

		/* a plausible backend for a service in use, then mostly one field spoiled */
		svc = pick_svc(z);
		if (svc != ~0u) {
			const struct bgs_service *sv = snap_svc(z, svc);

			fx_be_ip(sv->family, FX_NET_BACKEND, 2 + (int)rn(12), &bs.addr);
			bs.port = sv->mode == BGS_MODE_DSR ? (chance(50) ? 0 : ntohs(sv->port)) :
							     (__u16)(chance(30) ? 0 : 9000 + rn(4));
		} else {
			svc = rand_svc(z, 90);
			rand_ip(&bs.addr, false);
			bs.port = rand_port();
		}
		bs.weight = chance(30) ? 0 : 1 + rn(BGS_MAX_WEIGHT);
		if (chance(97)) {
			switch (rn(8)) {
			case 0:
				svc = rand_svc(z, 30);
				break;
			case 1:
				color = chance(50) ? 2 + rn(10) : (__u32)rnd();
				break;
			case 2:
				rand_ip(&bs.addr, false);
				break;
			case 3:
				bs.port = rand_port();
				break;
			case 4:
				bs.weight = BGS_MAX_WEIGHT + 1 + rn(~0u - BGS_MAX_WEIGHT);
				break;
			case 5:
				pick_be_addr(z, svc, true, &bs);
				break;
			case 6:
				pick_be_addr(z, svc, false, &bs);
				break;
			default:
				if (bs.addr.family == BGS_AF_INET)
					bs.addr.addr[1 + rn(3)] = (__u32)rnd() | 1;
				else
					bs.addr.family = BGS_AF_INET;
				break;
			}
		}
		snprintf(what, wlen, "backend_add svc %u color %u port %u weight %u family %u", svc,
			 color, bs.port, bs.weight, bs.addr.family);
		r = bgs_backend_add(z->h, svc, color, &bs, &id);
		if (!r) {
			struct bgs_backend be;

			*changes = true;
			if (ASSERT_OK(bgs_backend_get(z->h, id, &be), "get")) {
				ok &= ASSERT_EQ(be.svc_id, svc, "service");
				ok &= ASSERT_EQ(be.color, color, "color");
				ok &= ASSERT_EQ(be.weight, bs.weight ? bs.weight : 100, "weight");
				ok &= ASSERT_MEMEQ(be.addr, bs.addr.addr, 16, "address");
			}
		}
		break;
	}
	case OP_BE_DEL:
		id = rand_be(z, 3);
		snprintf(what, wlen, "backend_del %u", id);
		r = bgs_backend_del(z->h, id);
		*changes = !r;
		break;
	case OP_BE_ADMIN:
	case OP_BE_HEALTH: {
		int st = chance(90) ? (int)rn(3) : (int)rnd();

		id = rand_be(z, 5);
		snprintf(what, wlen, "%s %u %d", op_names[op], id, st);
		r = op == OP_BE_ADMIN ? bgs_backend_set_admin(z->h, id, (enum bgs_admin)st) :
					bgs_backend_set_health(z->h, id, (enum bgs_health)st);
		*changes = !r;
		break;
	}
	case OP_FLIP: {
		static const __u64 drains[] = { 0, BGS_NO_DEADLINE, 1, 1000, 60000, ~0ULL - 1,
						~0ULL / 2 };

		svc = rand_svc(z, 90);
		fo.to_color = chance(85) ? (int)rn(3) - 1 : (int)rnd();
		fo.expect_gen = rand_gen(z, svc);
		fo.drain_ms = drains[rn(ARRAY_SIZE(drains))];
		fo.force = chance(50);
		snprintf(what, wlen, "flip %u to %d gen %lld drain %llu force %d", svc, fo.to_color,
			 fo.expect_gen, (unsigned long long)fo.drain_ms, fo.force);
		if (svc < z->meta.max_services)
			bgs_service_get(z->h, svc, NULL, &before);
		r = bgs_flip(z->h, svc, chance(5) ? NULL : &fo, &after);
		if (r == 1) {
			*changes = true;
			ok &= ASSERT_NEQ(bgs_fw_live(after.word), bgs_fw_live(before.word), "live");
			ok &= ASSERT_EQ(bgs_fw_canary(after.word), 0, "canary reset");
			ok &= ASSERT_EQ(bgs_fw_gen(after.word), bgs_fw_gen(before.word) + 1, "gen");
			ok &= ASSERT_EQ(bgs_flip_drain(&after)->gen, bgs_fw_gen(after.word), "drain gen");
		}
		break;
	}
	case OP_CANARY: {
		__u32 bps = chance(80) ? rn(BGS_CANARY_SCALE + 1) : (__u32)rnd();
		bool sticky = chance(50);
		long long g;

		svc = rand_svc(z, 90);
		g = rand_gen(z, svc);
		snprintf(what, wlen, "canary %u bps %u gen %lld", svc, bps, g);
		if (svc < z->meta.max_services)
			bgs_service_get(z->h, svc, NULL, &before);
		r = bgs_canary_set(z->h, svc, bps, sticky, g, &after);
		if (!r) {
			*changes = true;
			ok &= ASSERT_EQ(bgs_fw_canary(after.word), bps, "canary");
			ok &= ASSERT_EQ(!!(after.word & BGS_FW_STICKY), sticky, "sticky");
			ok &= ASSERT_EQ(bgs_fw_live(after.word), bgs_fw_live(before.word), "live");
			ok &= ASSERT_EQ(bgs_fw_gen(after.word), bgs_fw_gen(before.word) + 1, "gen");
		}
		break;
	}
	case OP_DRAIN_END:
		svc = rand_svc(z, 90);
		snprintf(what, wlen, "drain_end %u", svc);
		if (svc < z->meta.max_services)
			bgs_service_get(z->h, svc, NULL, &before);
		r = bgs_drain_end(z->h, svc, &after);
		if (!r) {
			*changes = !!(before.word & BGS_FW_DRAINING);
			ok &= ASSERT_FALSE(after.word & BGS_FW_DRAINING, "drain ended");
		}
		break;
	case OP_PV_ADD:
	case OP_PV_DEL:
		svc = rand_svc(z, 90);
		memset(&pf, 0, sizeof(pf));
		if (chance(60)) {
			static const char *const seeds[] = { "10.0.0.0/8", "10.1.0.0/16",
							     "2001:db8::/32", "fd00::/8",
							     "1.2.3.4/32" };

			bgs_prefix_parse(seeds[rn(ARRAY_SIZE(seeds))], &pf);
		} else {
			rand_ip(&pf.ip, chance(50));
			pf.len = (__u8)(chance(50) ? rn(129) : rnd());
		}
		snprintf(what, wlen, "%s %u family %u len %u", op_names[op], svc, pf.ip.family,
			 pf.len);
		r = op == OP_PV_ADD ? bgs_preview_add(z->h, svc, &pf) :
				      bgs_preview_del(z->h, svc, &pf);
		*changes = !r;
		break;
	case OP_FLOW_KILL: {
		int color = chance(90) ? (int)rn(3) - 1 : (int)rnd();

		svc = rand_svc(z, 90);
		snprintf(what, wlen, "flow_kill %u %d", svc, color);
		r = bgs_flow_kill(z->h, svc, color);
		ok &= ASSERT_LE(r, 0, "no flows in this instance");
		break;
	}
	default: {
		struct bgs_counter cn;
		__u32 ids[8];
		struct bgs_prefix pl[4];

		svc = rand_svc(z, 90);
		id = rand_be(z, 70);
		snprintf(what, wlen, "reads svc %u backend %u", svc, id);
		rand_str(name, sizeof(name), (const char *const[]){ "web", "a" }, 2, "abc");
		switch (rn(8)) {
		case 0:
			r = bgs_service_find(z->h, name, NULL);
			break;
		case 1:
			r = bgs_svc_counters(z->h, svc, (__u32)rn(3), &cn);
			break;
		case 2:
			r = bgs_backend_counters(z->h, id, &cn);
			break;
		case 3:
			r = bgs_pool_list(z->h, svc, (__u32)rn(3), ids, (__u32)rn(9));
			break;
		case 4:
			r = bgs_preview_list(z->h, svc, pl, (__u32)rn(5));
			break;
		case 5:
			rand_ip(&bs.addr, false);
			r = bgs_backend_find(z->h, svc, &bs.addr, rand_port(), &id);
			break;
		case 6:
			r = bgs_service_list(z->h, ids, (__u32)rn(9));
			break;
		default:
			(void)bgs_pool_usable(z->h, svc, (__u32)rn(3));
			r = 0;
			break;
		}
		if (r > 0)
			r = 0;
		break;
	}
	}
	if (!ok)
		test_logf("after %s", what);
	return r;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool test_fuzz(void)
{
	struct bgs_sizes sz = { .max_services = 4, .max_backends = 8, .maglev_size = 31,
				.ct_entries = 16 };
	static const __u32 weights[OP_NR] = {
		[OP_IP_PARSE] = 15, [OP_PREFIX_PARSE] = 15, [OP_SVC_ADD] = 10,
		[OP_SVC_DEL] = 3, [OP_BE_ADD] = 8, [OP_BE_DEL] = 3, [OP_BE_ADMIN] = 3,
		[OP_BE_HEALTH] = 3, [OP_FLIP] = 8, [OP_CANARY] = 6, [OP_DRAIN_END] = 3,
		[OP_PV_ADD] = 7, [OP_PV_DEL] = 5, [OP_FLOW_KILL] = 3, [OP_READ] = 8,
	};
	unsigned long iters = 20000, i, sum = 0, bad = 0;
	const char *env;
	struct fuzz z = {};
	char dir[128], what[160];
	__u64 seed = 0x62677377697463ULL;
	bool ok = true;
	int op;

	if ((env = getenv("BGS_FUZZ_SEED")))
		seed = strtoull(env, NULL, 0);
	if ((env = getenv("BGS_FUZZ_ITERS")))
		iters = strtoul(env, NULL, 0);
	rng_state = seed ? seed : 1;
	for (op = 0; op < OP_NR; op++)
		sum += weights[op];
	if (!inst_open("fuzz", &sz, &z.h, dir, sizeof(dir)))
		return false;
	bgs_get_meta(z.h, &z.meta);
	if (!snap_init(&z.cur, z.h) || !snap_init(&z.now, z.h) || !snap_take(&z.cur))
		goto out;
	for (i = 0; i < iters && bad < 5; i++) {
		unsigned long pick = rn((__u32)sum);
		bool changes;
		double t0;
		long long r;

		for (op = 0; pick >= weights[op]; op++)
			pick -= weights[op];
		t0 = now_s();
		r = fuzz_one(&z, op, what, sizeof(what), &changes);
		z.per_op_s[op] += now_s() - t0;
		z.ops++;
		if (op == OP_IP_PARSE || op == OP_PREFIX_PARSE) {
			/* no handle: nothing to compare, only the message of a refusal */
			z.per_op_ok[op] += r == 0;
			z.per_op_fail[op] += r != 0;
			if (r && !bgs_errmsg()[0]) {
				FAILF("op %lu %s: returned %lld without a message", i, what, r);
				bad++;
			}
			continue;
		}
		if (r < 0) {
			z.fails++;
			z.per_op_fail[op]++;
			if (!bgs_errmsg()[0]) {
				FAILF("op %lu %s: returned %lld without a message", i, what, r);
				bad++;
			}
			if (!snap_same(&z.cur, &z.now, __LINE__, what)) {
				test_logf("op %lu (seed %#llx): %s returned %lld: %s", i,
					  (unsigned long long)seed, what, r, bgs_errmsg());
				bad++;
				snap_take(&z.cur);
			}
			continue;
		}
		z.successes++;
		z.per_op_ok[op]++;
		if (!changes) {
			if (!snap_same(&z.cur, &z.now, __LINE__, what)) {
				test_logf("op %lu: %s changed the state but says it did not", i,
					  what);
				bad++;
				snap_take(&z.cur);
			}
			continue;
		}
		if (!snap_take(&z.cur) || !state_consistent(&z, &z.cur)) {
			test_logf("op %lu (seed %#llx): inconsistent after %s", i,
				  (unsigned long long)seed, what);
			bad++;
		}
	}
	ok &= ASSERT_EQ(bad, 0, "fuzz failures");
	ok &= ASSERT_TRUE(state_consistent(&z, &z.cur), "final state consistent");
	test_logf("%lu calls (seed %#llx): %lu refused, %lu succeeded", z.ops,
		  (unsigned long long)seed, z.fails, z.successes);
	for (op = 0; op < OP_NR; op++)
		test_logf("  %-13s ok %5lu  refused %5lu  (%.2f s in the calls)", op_names[op],
			  z.per_op_ok[op], z.per_op_fail[op], z.per_op_s[op]);
	/* the pass must have reached the state-changing paths, not only the refusals */
	for (op = OP_SVC_ADD; op <= OP_PV_DEL; op++)
		ok &= ASSERT_GT(z.per_op_ok[op], 0, op_names[op]);
out:
	snap_fini(&z.cur);
	snap_fini(&z.now);
	inst_close(z.h, dir);
	return ok;
}

static const struct test_case tests[] = {
	{ "ip_parse", test_ip_parse },
	{ "prefix_parse", test_prefix_parse },
	{ "prefix_parse_strict", test_prefix_parse_strict },
	{ "service_add_bad", test_service_add_bad },
	{ "service_add_taken", test_service_add_taken },
	{ "service_ids_full", test_service_ids_full },
	{ "service_ids_full_with_preview", test_service_ids_full_with_preview },
	{ "backend_add_bad", test_backend_add_bad },
	{ "pool_full", test_pool_full },
	{ "backend_ids_full", test_backend_ids_full },
	{ "routing_changes_bad", test_routing_changes_bad },
	{ "preview_bad", test_preview_bad },
	{ "preview_del_inside", test_preview_del_inside },
	{ "preview_host_bits", test_preview_host_bits },
	{ "fuzz", test_fuzz },
};

int main(int argc, char **argv)
{
	struct bgs_sizes sz = { .max_services = 8, .max_backends = 300, .maglev_size = 1021,
				.ct_entries = 256 };

	return fx_main(argc, argv, &sz, tests, ARRAY_SIZE(tests), 120);
}
