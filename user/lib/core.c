// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libbgswitch core: the pinned state (create, adopt, destroy, upgrade), the wait for
 * running programs, the program clock and the error message buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "bgs_priv.h"
#include "bgs_test.h"
#include "bgswitch_flow.h"
#include "bgswitch.skel.h"
#include "bgs_entry.skel.h"

const char *const bgs_map_names[BGS_M_NR] = {
	[BGS_M_META] = "meta",		 [BGS_M_VIPS] = "vips",
	[BGS_M_SVCS] = "svcs",		 [BGS_M_FLIP] = "flip",
	[BGS_M_MAGLEV] = "maglev",	 [BGS_M_BACKENDS] = "backends",
	[BGS_M_REVNAT] = "revnat",	 [BGS_M_PREVIEW] = "preview",
	[BGS_M_CT] = "ct",		 [BGS_M_SVC_STATS] = "svc_stats",
	[BGS_M_BE_STATS] = "be_stats",	 [BGS_M_FLOOD] = "flood",
	[BGS_M_TX_PORTS] = "tx_ports",	 [BGS_M_REASONS] = "reasons",
	[BGS_M_PROGS] = "progs",	 [BGS_M_PORTS] = "ports",
};

/* ---- Errors ---- */

static __thread char errbuf[512];

const char *bgs_errmsg(void)
{
	return errbuf;
}

int bgs_err(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	return err;
}

void bgs_err_clear(void)
{
	errbuf[0] = '\0';
}

/* ---- libbpf messages ---- */

static libbpf_print_fn_t prev_print;

/* libbpf warns about the entry's libxdp run-config section on every open; nothing is
 * wrong, so that one line is dropped and everything else passes through. */
static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (strstr(fmt, "skipping unrecognized data section"))
		return 0;
	return prev_print ? prev_print(level, fmt, ap) : 0;
}

void bgs_quiet_begin(void)
{
	prev_print = libbpf_set_print(quiet_print);
}

void bgs_quiet_end(void)
{
	libbpf_set_print(prev_print);
}

#ifdef BGS_FAULT_INJECT
/* BGS_FAULT=SITE fails every pass through SITE; SITE@N only the N-th (from 1). */
int bgs_fault(const char *site)
{
	static __thread unsigned int hits;
	static __thread char armed[64]; /* the setting hits counts for */
	const char *want = getenv("BGS_FAULT"), *at;
	size_t len;

	if (!want)
		return 0;
	if (strncmp(armed, want, sizeof(armed) - 1)) {
		snprintf(armed, sizeof(armed), "%s", want);
		hits = 0;
	}
	at = strchr(want, '@');
	len = at ? (size_t)(at - want) : strlen(want);
	if (strlen(site) != len || strncmp(want, site, len))
		return 0;
	if (at && ++hits != strtoul(at + 1, NULL, 10))
		return 0;
	return bgs_err(-EIO, "injected fault at %s (BGS_FAULT)", site);
}
#endif

/* ---- Sync ---- */

static size_t page_round(size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	return (n + pg - 1) / pg * pg;
}

/* Maps the Maglev tables on first use: tens of MiB that only pool changes touch, so that
 * a flip does not pay for mapping them. */
int bgs_maglev_map(struct bgs *h)
{
	if (h->maglev != MAP_FAILED)
		return 0;
	h->maglev_len = page_round((size_t)h->meta.max_services * 4 * h->meta.maglev_size *
				   BGS_MAGLEV_STRIDE);
	h->maglev = mmap(NULL, h->maglev_len, PROT_READ | PROT_WRITE, MAP_SHARED,
			 h->map_fd[BGS_M_MAGLEV], 0);
	if (h->maglev == MAP_FAILED)
		return bgs_err(-errno, "cannot map bgs_maglev of %s: %s", h->pin_dir,
			       strerror(errno));
	return 0;
}

int bgs_sync(struct bgs *h)
{
	__u32 key = 0;
	int err;

	/* Updating a map-in-map slot makes the kernel wait (synchronize_rcu) for every
	 * running BPF program: whatever they read before the call is no longer in use. */
	err = bpf_map_update_elem(h->sync_fd, &key, &h->sync_inner_fd, BPF_ANY);
	if (err)
		return bgs_err(-errno, "cannot wait for running programs: %s", strerror(errno));
	return 0;
}

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

/* Fills the defaults of a bgs_sizes.timeouts and checks it (see libbgswitch.h). */
static int timeouts_check(struct bgs_flow_timeouts *t)
{
	/* in the order of struct bgs_flow_timeouts; the last two may be 0 s */
	static const char *const names[] = { "tcp_syn", "tcp_est", "tcp_close", "udp",
					     "time_wait", "health_grace" };
	struct bgs_flow_timeouts def;
	__u32 v[6], d[6];
	unsigned int i;

	_Static_assert(sizeof(v) == sizeof(*t), "bgs_flow_timeouts is six __u32");
	bgs_flow_timeouts_default(&def);
	memcpy(v, t, sizeof(v));
	memcpy(d, &def, sizeof(d));
	for (i = 0; i < 6; i++) {
		if (!v[i])
			v[i] = d[i];
		else if (v[i] == BGS_TIMEOUT_ZERO && i >= 4)
			v[i] = 0;
		else if (v[i] > BGS_TIMEOUT_MAX)
			return bgs_err(-EINVAL, "timeouts.%s %u: expected 1 to %u seconds%s",
				       names[i], v[i], BGS_TIMEOUT_MAX,
				       i >= 4 ? " (or BGS_TIMEOUT_ZERO for none)" : "");
	}
	memcpy(t, v, sizeof(v));
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

/* ---- bpffs ---- */

static bool on_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	char *p;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Mount a bpffs on dir as systemd mounts /sys/fs/bpf: only root may enter it (a world-
 * writable bpffs lets any local user flock the pin directory or create entries in it). */
static int mount_bpffs(struct bgs *h, const char *dir)
{
	if (mount("bpffs", dir, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") < 0)
		return bgs_err(-errno, "%s is not on a bpffs and mounting one there failed: %s",
			       dir, strerror(errno));
	snprintf(h->mounted, sizeof(h->mounted), "%s", dir);
	return 0;
}

/*
 * Make dir a directory on a bpffs: nothing to do if it is one; created if its parent is on a
 * bpffs; under BGS_BPFFS_ROOT with no bpffs there, one is mounted there first; anywhere else,
 * the directory is created and a bpffs mounted on it. h->mounted names what was mounted.
 */
static int ensure_bpffs(struct bgs *h, const char *dir)
{
	const size_t rlen = strlen(BGS_BPFFS_ROOT);
	char parent[PATH_MAX];
	char *slash;
	int err;

	h->mounted[0] = '\0';
	if (on_bpffs(dir))
		return 0;
	if (!strncmp(dir, BGS_BPFFS_ROOT "/", rlen + 1) && !on_bpffs(BGS_BPFFS_ROOT)) {
		struct stat st;

		if (stat(BGS_BPFFS_ROOT, &st) < 0 || !S_ISDIR(st.st_mode))
			return bgs_err(-ENOENT, "no %s directory to mount a bpffs on (is sysfs "
				       "mounted?); choose a pin directory elsewhere",
				       BGS_BPFFS_ROOT);
		err = mount_bpffs(h, BGS_BPFFS_ROOT);
		if (err)
			return err;
	}
	if (snprintf(parent, sizeof(parent), "%s", dir) >= (int)sizeof(parent))
		return bgs_err(-ENAMETOOLONG, "pin directory %s: name too long", dir);
	slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	else if (slash)
		parent[1] = '\0';
	if (access(dir, F_OK) < 0 && on_bpffs(parent)) {
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return bgs_err(-errno, "cannot create pin directory %s: %s", dir,
				       strerror(errno));
		return 0;
	}
	err = mkdir_p(dir);
	if (err)
		return bgs_err(err, "cannot create pin directory %s: %s", dir, strerror(-err));
	if (on_bpffs(dir)) /* made under the bpffs mounted above */
		return 0;
	return mount_bpffs(h, dir);
}

/* ---- Meta ---- */

static int meta_read(const char *dir, struct bgs_meta *meta, bool *present)
{
	char path[PATH_MAX];
	__u32 key = 0;
	int fd, err = 0;

	*present = false;
	memset(meta, 0, sizeof(*meta));
	snprintf(path, sizeof(path), "%s/bgs_meta", dir);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return bgs_err(-errno, "cannot open %s: %s", path, strerror(errno));
	}
	if (bpf_map_lookup_elem(fd, &key, meta)) {
		err = bgs_err(-errno, "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	if (meta->layout_version == 0)
		goto out; /* pinned but never completed: treat as absent */
	if (meta->layout_version != BGS_LAYOUT_VERSION) {
		err = bgs_err(-EPROTO,
			      "pins at %s have layout %u, this bgswitch uses %u: remove them with "
			      "'bgctl destroy' (flows are lost) or use a bgswitch of layout %u",
			      dir, meta->layout_version, BGS_LAYOUT_VERSION, meta->layout_version);
		goto out;
	}
	*present = true;
out:
	close(fd);
	return err;
}

static int meta_write(struct bgs *h)
{
	__u32 key = 0;

	if (bpf_map_update_elem(h->map_fd[BGS_M_META], &key, &h->meta, BPF_ANY))
		return bgs_err(-errno, "cannot write bgs_meta: %s", strerror(errno));
	return 0;
}

/* ---- Handle ---- */

static struct bgs *handle_new(const char *dir)
{
	struct bgs *h = calloc(1, sizeof(*h));
	int i;

	if (!h)
		return NULL;
	snprintf(h->pin_dir, sizeof(h->pin_dir), "%s", dir);
	for (i = 0; i < BGS_M_NR; i++)
		h->map_fd[i] = -1;
	h->switch_fd = h->clock_fd = h->entry_fd = -1;
	h->sync_fd = h->sync_inner_fd = -1;
	h->flip = MAP_FAILED;
	h->maglev = MAP_FAILED;
	h->revnat = MAP_FAILED;
	h->lock_timeout_ms = bgs_lock_timeout_default;
	h->history = NULL;
	return h;
}

void bgs_close(struct bgs *h)
{
	int i;

	if (!h)
		return;
	if (h->flip != MAP_FAILED)
		munmap(h->flip, h->flip_len);
	if (h->maglev != MAP_FAILED)
		munmap(h->maglev, h->maglev_len);
	if (h->revnat != MAP_FAILED)
		munmap(h->revnat, h->revnat_len);
	for (i = 0; i < BGS_M_NR; i++)
		if (h->map_fd[i] >= 0)
			close(h->map_fd[i]);
	if (h->switch_fd >= 0)
		close(h->switch_fd);
	if (h->clock_fd >= 0)
		close(h->clock_fd);
	if (h->sync_fd >= 0)
		close(h->sync_fd);
	if (h->sync_inner_fd >= 0)
		close(h->sync_inner_fd);
	bgs_entry__destroy(h->entry_skel);
	bgs_note_drop(h);
	free(h);
}

static int pin_get(const struct bgs *h, const char *name)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/%s", h->pin_dir, name) >= (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return bpf_obj_get(path);
}

/* Opens every pinned map and program and maps the flip words and tables. h->meta is set. */
/* Whoever can write the pin directory can replace a pin (a map, the switch) under root's
 * feet: only a directory of root's that nobody else may write is used. */
static int pin_dir_safe(const char *dir)
{
	struct stat st;

	if (lstat(dir, &st))
		return bgs_err(-errno, "cannot stat pin directory %s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return bgs_err(-ENOTDIR, "pin directory %s is not a directory%s", dir,
			       S_ISLNK(st.st_mode) ? " (a symbolic link)" : "");
	if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
		return bgs_err(-EPERM, "pin directory %s is %s: refusing it (anyone who can write "
			       "it can replace the switch's maps); chown root and chmod go-w it",
			       dir, st.st_uid ? "not owned by root" : "writable by group or others");
	return 0;
}

static int adopt_pins(struct bgs *h)
{
	LIBBPF_OPTS(bpf_map_create_opts, mopts);
	char name[64];
	int i, err;

	err = pin_dir_safe(h->pin_dir);
	if (err)
		return err;

	for (i = 0; i < BGS_M_NR; i++) {
		if (h->map_fd[i] >= 0)
			continue;
		snprintf(name, sizeof(name), "bgs_%s", bgs_map_names[i]);
		h->map_fd[i] = pin_get(h, name);
		if (h->map_fd[i] < 0)
			return bgs_err(-errno, "pinned map %s/%s is missing (%s): the state is "
				       "incomplete; run init again",
				       h->pin_dir, name, strerror(errno));
	}
	if (h->switch_fd < 0)
		h->switch_fd = pin_get(h, BGS_PIN_SWITCH);
	if (h->clock_fd < 0)
		h->clock_fd = pin_get(h, BGS_PIN_CLOCK);

	h->flip_len = page_round((size_t)h->meta.max_services * sizeof(struct bgs_flip));
	h->flip = mmap(NULL, h->flip_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		       h->map_fd[BGS_M_FLIP], 0);
	if (h->flip == MAP_FAILED)
		return bgs_err(-errno, "cannot map bgs_flip of %s: %s", h->pin_dir,
			       strerror(errno));
	h->revnat_len = page_round((size_t)bgs_revnat_size(h->meta.max_backends) *
				   sizeof(struct bgs_revnat_slot));
	h->revnat = mmap(NULL, h->revnat_len, PROT_READ | PROT_WRITE, MAP_SHARED,
			 h->map_fd[BGS_M_REVNAT], 0);
	if (h->revnat == MAP_FAILED)
		return bgs_err(-errno, "cannot map bgs_revnat of %s: %s", h->pin_dir,
			       strerror(errno));

	h->sync_inner_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bgs_sync_in", 4, 4, 1, NULL);
	if (h->sync_inner_fd < 0)
		return bgs_err(-errno, "cannot create sync map: %s", strerror(errno));
	mopts.inner_map_fd = h->sync_inner_fd;
	h->sync_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "bgs_sync", 4, 4, 1, &mopts);
	if (h->sync_fd < 0)
		return bgs_err(-errno, "cannot create sync map: %s", strerror(errno));
	h->ncpus = libbpf_num_possible_cpus();
	if (h->ncpus <= 0) {
		err = h->ncpus ? h->ncpus : -EINVAL;
		return bgs_err(err, "cannot count possible CPUs");
	}
	return 0;
}

int bgs_open(const char *pin_dir, struct bgs **out)
{
	struct bgs *h = NULL;
	bool present;
	int err;

	bgs_err_clear();
	*out = NULL;
	if (!pin_dir)
		pin_dir = BGS_DEFAULT_PIN_DIR;
	h = handle_new(pin_dir);
	if (!h)
		return bgs_err(-ENOMEM, "out of memory");
	err = meta_read(pin_dir, &h->meta, &present);
	if (err)
		goto out;
	if (!present) {
		err = bgs_err(-ENOENT, "no bgswitch state at %s: initialize it first", pin_dir);
		goto out;
	}
	err = adopt_pins(h);
	if (err)
		goto out;
	*out = h;
	h = NULL;
out:
	bgs_close(h);
	return err;
}

/* ---- Loading the switch ---- */

static int set_rodata_u32(struct bpf_object *obj, const char *name, __u32 val)
{
	const struct btf_var_secinfo *vi;
	const struct btf_type *sec, *var;
	struct bpf_map *map;
	struct btf *btf;
	size_t size;
	__u8 *data;
	int id, i;

	map = bpf_object__find_map_by_name(obj, ".rodata");
	btf = bpf_object__btf(obj);
	if (!map || !btf)
		goto missing;
	/* Writable until load (libbpf 1.1 declares it const). */
	data = (__u8 *)bpf_map__initial_value(map, &size);
	id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (!data || id < 0)
		goto missing;
	sec = btf__type_by_id(btf, id);
	vi = btf_var_secinfos(sec);
	for (i = 0; i < btf_vlen(sec); i++, vi++) {
		var = btf__type_by_id(btf, vi->type);
		if (strcmp(btf__name_by_offset(btf, var->name_off), name))
			continue;
		if (vi->size != sizeof(val) || vi->offset + sizeof(val) > size)
			break;
		memcpy(data + vi->offset, &val, sizeof(val));
		return 0;
	}
missing:
	return bgs_err(-ENOENT, "switch object has no load-time parameter %s", name);
}

static int pin_replace(int fd, const char *dir, const char *name)
{
	char tmp[PATH_MAX], path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/%s_tmp_%d", dir, name, getpid()); /* bpffs: no dots */
	unlink(tmp);
	if (bpf_obj_pin(fd, tmp))
		return bgs_err(-errno, "cannot pin %s: %s", tmp, strerror(errno));
	if (rename(tmp, path) < 0) {
		int err = -errno;

		unlink(tmp);
		return bgs_err(err, "cannot rename %s to %s: %s", tmp, path, strerror(-err));
	}
	return 0;
}

static int read_clock(int fd, __u64 *jiffies, __u32 *hz)
{
	struct bgs_clock c = {};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &c, .ctx_size_in = sizeof(c));

	if (fd < 0)
		return bgs_err(-ENOENT, "the clock program is not loaded (switch object has no "
			       "%s)", BGS_PROG_NAME_CLOCK);
	if (bpf_prog_test_run_opts(fd, &opts))
		return bgs_err(-errno, "cannot run the clock program: %s", strerror(errno));
	if (!c.hz)
		return bgs_err(-EIO, "the clock program reported HZ 0");
	*jiffies = c.jiffies;
	*hz = (__u32)c.hz;
	return 0;
}

/*
 * Opens the switch object (the built-in one, or obj_path), sizes its maps from h->meta,
 * loads it reusing the pins, and returns dup'ed fds of the switch and clock programs.
 */
static int load_switch(struct bgs *h, const char *obj_path, int *switch_fd, int *clock_fd)
{
	LIBBPF_OPTS(bpf_object_open_opts, oopts, .pin_root_path = h->pin_dir,
		    .object_name = "bgswitch");
	const struct bgs_meta *m = &h->meta;
	const struct {
		const char *name;
		__u64 entries;
	} sizes[] = {
		{ "bgs_vips", 3ULL * m->max_services },
		{ "bgs_svcs", m->max_services },
		{ "bgs_flip", m->max_services },
		{ "bgs_maglev", (__u64)m->max_services * 4 * m->maglev_size },
		{ "bgs_backends", m->max_backends },
		{ "bgs_be_stats", m->max_backends },
		{ "bgs_revnat", bgs_revnat_size(m->max_backends) },
		{ "bgs_svc_stats", 2ULL * m->max_services },
		{ "bgs_ct", m->ct_entries },
	};
	struct bpf_program *prog;
	struct bpf_object *obj;
	struct bpf_map *map;
	const void *elf;
	size_t elf_sz;
	unsigned int i;
	int err;

	*switch_fd = *clock_fd = -1;
	bgs_quiet_begin();
	if (obj_path) {
		obj = bpf_object__open_file(obj_path, &oopts);
	} else {
		elf = bgswitch__elf_bytes(&elf_sz);
		obj = bpf_object__open_mem(elf, elf_sz, &oopts);
	}
	bgs_quiet_end();
	err = libbpf_get_error(obj);
	if (err) {
		obj = NULL;
		err = bgs_err(err, "cannot open switch object %s: %s",
			      obj_path ? obj_path : "(built in)", strerror(-err));
		goto out;
	}
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		map = bpf_object__find_map_by_name(obj, sizes[i].name);
		if (!map) {
			err = bgs_err(-ENOENT, "switch object has no map %s", sizes[i].name);
			goto out;
		}
		err = bpf_map__set_max_entries(map, (__u32)sizes[i].entries);
		if (err) {
			err = bgs_err(err, "cannot size map %s", sizes[i].name);
			goto out;
		}
	}
	/* The kernel adds BPF_F_RDONLY_PROG to every devmap it creates (and refuses it from
	 * user space); libbpf 1.1 then refuses to reuse such a pin for a definition without
	 * the flag. So a pinned devmap is reused with the flag. */
	bpf_object__for_each_map(map, obj) {
		char pin[PATH_MAX];

		if (bpf_map__type(map) != BPF_MAP_TYPE_DEVMAP &&
		    bpf_map__type(map) != BPF_MAP_TYPE_DEVMAP_HASH)
			continue;
		if (snprintf(pin, sizeof(pin), "%s/%s", h->pin_dir, bpf_map__name(map)) <
			    (int)sizeof(pin) && access(pin, F_OK) == 0)
			bpf_map__set_map_flags(map, bpf_map__map_flags(map) | BPF_F_RDONLY_PROG);
	}
	err = set_rodata_u32(obj, "cfg_maglev_size", m->maglev_size);
	if (!err)
		err = set_rodata_u32(obj, "cfg_max_services", m->max_services);
	if (!err)
		err = set_rodata_u32(obj, "cfg_new_flow_rate", m->new_flow_rate);
	if (!err)
		err = set_rodata_u32(obj, "cfg_revnat_mask", bgs_revnat_size(m->max_backends) - 1);
	if (err)
		goto out;
	prog = bpf_object__find_program_by_name(obj, BGS_PROG_NAME_SWITCH);
	if (!prog) {
		err = bgs_err(-ENOENT, "switch object has no program %s", BGS_PROG_NAME_SWITCH);
		goto out;
	}
	err = bpf_object__load(obj);
	if (err) {
		err = bgs_err(err, "cannot load the switch into %s: %s (pins of other sizes or "
			      "a program the verifier refuses; see the libbpf log)",
			      h->pin_dir, strerror(-err));
		goto out;
	}
	*switch_fd = dup(bpf_program__fd(prog));
	prog = bpf_object__find_program_by_name(obj, BGS_PROG_NAME_CLOCK);
	if (prog)
		*clock_fd = dup(bpf_program__fd(prog));
	if (*switch_fd < 0) {
		err = bgs_err(-errno, "dup: %s", strerror(errno));
		goto out;
	}
out:
	bpf_object__close(obj);
	if (err) {
		if (*switch_fd >= 0)
			close(*switch_fd);
		if (*clock_fd >= 0)
			close(*clock_fd);
		*switch_fd = *clock_fd = -1;
	}
	return err;
}

/* Puts a loaded switch into the program array and replaces the program pins. */
/*
 * Makes switch_fd (and clock_fd) the pinned programs, then the running switch. The pins go
 * first: if anything fails, the old switch keeps running and its pins are put back, so the
 * pins always name what runs (or what is about to).
 */
static int install_switch(struct bgs *h, int switch_fd, int clock_fd)
{
	__u32 key = BGS_PROG_SWITCH;
	char why[512];
	int progs_fd, err;

	progs_fd = h->map_fd[BGS_M_PROGS] >= 0 ? h->map_fd[BGS_M_PROGS] : pin_get(h, "bgs_progs");
	if (progs_fd < 0)
		return bgs_err(-errno, "pinned program array %s/bgs_progs missing", h->pin_dir);
	err = pin_replace(switch_fd, h->pin_dir, BGS_PIN_SWITCH);
	if (!err && clock_fd >= 0)
		err = pin_replace(clock_fd, h->pin_dir, BGS_PIN_CLOCK);
	if (!err && bpf_map_update_elem(progs_fd, &key, &switch_fd, BPF_ANY))
		err = bgs_err(-errno, "cannot put the switch into bgs_progs: %s", strerror(errno));
	if (progs_fd != h->map_fd[BGS_M_PROGS])
		close(progs_fd);
	if (err) {
		snprintf(why, sizeof(why), "%s", bgs_errmsg());
		if (h->switch_fd >= 0)
			pin_replace(h->switch_fd, h->pin_dir, BGS_PIN_SWITCH);
		if (clock_fd >= 0 && h->clock_fd >= 0)
			pin_replace(h->clock_fd, h->pin_dir, BGS_PIN_CLOCK);
		return bgs_err(err, "%s", why);
	}
	if (h->switch_fd >= 0)
		close(h->switch_fd);
	h->switch_fd = switch_fd;
	if (clock_fd >= 0) {
		if (h->clock_fd >= 0)
			close(h->clock_fd);
		h->clock_fd = clock_fd;
	}
	return 0;
}

static bool switch_installed(struct bgs *h)
{
	__u32 key = BGS_PROG_SWITCH, id;
	int fd, ok;

	if (h->switch_fd < 0)
		h->switch_fd = pin_get(h, BGS_PIN_SWITCH);
	if (h->switch_fd < 0)
		return false;
	fd = pin_get(h, "bgs_progs");
	if (fd < 0)
		return false;
	ok = bpf_map_lookup_elem(fd, &key, &id) == 0;
	close(fd);
	return ok;
}

static int load_entry(struct bgs *h)
{
	LIBBPF_OPTS(bpf_object_open_opts, oopts, .pin_root_path = h->pin_dir);
	int err;

	bgs_quiet_begin();
	h->entry_skel = bgs_entry__open_opts(&oopts);
	bgs_quiet_end();
	if (!h->entry_skel)
		return bgs_err(-errno ? -errno : -EINVAL, "cannot open the entry program");
	err = bgs_entry__load(h->entry_skel);
	if (err)
		return bgs_err(err, "cannot load the entry program: %s", strerror(-err));
	h->entry_fd = bpf_program__fd(h->entry_skel->progs.bgs_entry);
	return 0;
}

static int sizes_match(const char *dir, const struct bgs_sizes *req, const struct bgs_meta *m)
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
	if (req) {
		static const char *const names[] = { "tcp_syn", "tcp_est", "tcp_close", "udp",
						     "time_wait", "health_grace" };
		__u32 w[6], hv[6];

		memcpy(w, &req->timeouts, sizeof(w));
		memcpy(hv, &m->timeouts, sizeof(hv));
		for (i = 0; i < 6; i++)
			if (w[i] && (w[i] == BGS_TIMEOUT_ZERO ? 0 : w[i]) != hv[i])
				return bgs_err(-EEXIST, "pins at %s were created with timeouts.%s "
					       "%u s, not %u s: remove them with 'bgctl destroy' "
					       "to change it", dir, names[i], hv[i],
					       w[i] == BGS_TIMEOUT_ZERO ? 0 : w[i]);
	}
	return 0;
}

int bgs_init(const char *pin_dir, const struct bgs_sizes *sizes, struct bgs **out)
{
	struct bgs_sizes s = {};
	struct bgs *h = NULL;
	int lock = -1, sw = -1, ck = -1, err;
	bool present, was_present;
	__u64 jiffies;
	__u32 hz;

	bgs_err_clear();
	*out = NULL;
	if (!pin_dir)
		pin_dir = BGS_DEFAULT_PIN_DIR;
	if (strlen(pin_dir) + 32 >= PATH_MAX || pin_dir[0] != '/')
		return bgs_err(-EINVAL, "pin directory '%s' must be an absolute path", pin_dir);
	err = bgs_sizes_check(sizes, &s);
	if (err)
		return err;
	h = handle_new(pin_dir);
	if (!h)
		return bgs_err(-ENOMEM, "out of memory");
	err = ensure_bpffs(h, pin_dir);
	if (err)
		goto out;
	/* State that exists: its entry program is verified before the lock, which only a
	 * first creation (maps pinned by the load itself) holds across the verifier. */
	err = meta_read(pin_dir, &h->meta, &present);
	if (err)
		goto out;
	if (present) {
		err = sizes_match(pin_dir, sizes, &h->meta);
		if (!err)
			err = load_entry(h);
		if (err)
			goto out;
	}
	lock = bgs_lock(h);
	if (lock < 0) {
		err = lock;
		goto out;
	}
	was_present = present;
	err = meta_read(pin_dir, &h->meta, &present);
	if (err)
		goto out;
	if (was_present && !present) {
		err = bgs_err(-EAGAIN, "the pinned state at %s was destroyed while bgctl init "
			      "ran: run it again", pin_dir);
		goto out;
	}
	if (present) {
		err = sizes_match(pin_dir, sizes, &h->meta);
		if (err)
			goto out;
	} else {
		h->meta = (struct bgs_meta){
			.layout_version = BGS_LAYOUT_VERSION,
			.max_services = s.max_services,
			.max_backends = s.max_backends,
			.maglev_size = s.maglev_size,
			.ct_entries = s.ct_entries,
			.new_flow_rate = s.new_flow_rate,
		};
		/* what the program enforces from now on (it reads them from bgs_meta) */
		h->meta.timeouts = s.timeouts;
		h->meta.maglev_seed = s.maglev_seed;
		h->meta.canary_seed = s.canary_seed;
	}

	/* The entry first: it owns the program array that the switch goes into. */
	if (!h->entry_skel)
		err = load_entry(h);
	if (err)
		goto out;
	if (!present || !switch_installed(h)) {
		err = load_switch(h, NULL, &sw, &ck);
		if (err)
			goto out;
		err = install_switch(h, sw, ck);
		if (err)
			goto out;
		sw = ck = -1;
		bgs_build_record(h, h->switch_fd, bgs_build_id());
	}
	err = adopt_pins(h);
	if (err)
		goto out;
	if (!present || !h->meta.hz) {
		if (read_clock(h->clock_fd, &jiffies, &hz) == 0)
			h->meta.hz = hz;
		bgs_err_clear();
		err = meta_write(h);
		if (err)
			goto out;
	}
	*out = h;
	h = NULL;
out:
	if (sw >= 0)
		close(sw);
	if (ck >= 0)
		close(ck);
	bgs_unlock(NULL, lock, err); /* a handle being made has no history yet */
	bgs_close(h);
	return err;
}

int bgs_upgrade(struct bgs *h, const char *obj_path)
{
	int lock, sw = -1, ck = -1, err;
	__u64 jiffies, build_id = bgs_build_id();
	__u32 hz;

	bgs_err_clear();
	if (obj_path) {
		err = bgs_build_id_file(obj_path, &build_id);
		if (err)
			return err;
	}
	/* The verifier runs before the lock (it may take seconds); the swap is under it. */
	err = load_switch(h, obj_path, &sw, &ck);
	if (err)
		return err;
	lock = bgs_lock(h);
	if (lock < 0) {
		err = lock;
		goto out;
	}
	err = install_switch(h, sw, ck);
	if (err)
		goto out;
	sw = ck = -1;
	bgs_build_record(h, h->switch_fd, build_id);
	if (!h->meta.hz) {
		if (read_clock(h->clock_fd, &jiffies, &hz) == 0) {
			h->meta.hz = hz;
			err = meta_write(h); /* its message stays */
		} else {
			bgs_err_clear(); /* no clock program: HZ stays unknown, not a failure */
		}
	}
out:
	if (sw >= 0)
		close(sw);
	if (ck >= 0)
		close(ck);
	bgs_unlock(h, lock, err);
	return err;
}

int bgs_destroy(const char *pin_dir)
{
	struct dirent *de;
	char path[PATH_MAX];
	int lock, err = 0;
	DIR *d;

	bgs_err_clear();
	if (!pin_dir)
		pin_dir = BGS_DEFAULT_PIN_DIR;
	if (!on_bpffs(pin_dir))
		return bgs_err(-ENOENT, "%s is not a bpffs directory: nothing to destroy", pin_dir);
	lock = bgs_lock_dir(pin_dir, bgs_lock_timeout_default);
	if (lock < 0)
		return lock;
	d = opendir(pin_dir);
	if (!d) {
		err = bgs_err(-errno, "cannot read %s: %s", pin_dir, strerror(errno));
		goto out;
	}
	while ((de = readdir(d))) {
		/* Our pins, and temporaries (bgs_*_tmp_PID) of an interrupted pin_replace. */
		if (strncmp(de->d_name, "bgs_", 4))
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_dir, de->d_name);
		if (unlink(path) < 0 && errno != ENOENT && !err)
			err = bgs_err(-errno, "cannot remove %s: %s", path, strerror(errno));
	}
	closedir(d);
out:
	bgs_unlock(NULL, lock, err);
	return err;
}

/* ---- Accessors ---- */

const char *bgs_mounted(const struct bgs *h)
{
	return h->mounted[0] ? h->mounted : NULL;
}

const char *bgs_pin_dir(const struct bgs *h)
{
	return h->pin_dir;
}

void bgs_get_meta(const struct bgs *h, struct bgs_meta *meta)
{
	*meta = h->meta;
}

int bgs_map_fd(const struct bgs *h, const char *name)
{
	int i;

	if (name && !strncmp(name, "bgs_", 4))
		name += 4;
	for (i = 0; name && i < BGS_M_NR; i++)
		if (!strcmp(name, bgs_map_names[i]))
			return h->map_fd[i];
	return bgs_err(-ENOENT, "no map named '%s'", name ? name : "(null)");
}

int bgs_entry_fd(const struct bgs *h)
{
	if (h->entry_fd < 0)
		return bgs_err(-ENOENT, "no entry program loaded by this handle (use bgs_init)");
	return h->entry_fd;
}

int bgs_switch_fd(const struct bgs *h)
{
	__u32 key = BGS_PROG_SWITCH, id;
	int fd;

	/* Prefer what the program array holds now: another process may have upgraded. */
	if (bpf_map_lookup_elem(h->map_fd[BGS_M_PROGS], &key, &id) == 0) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);

		if (h->switch_fd >= 0 && !bpf_obj_get_info_by_fd(h->switch_fd, &info, &len) &&
		    info.id == id)
			return h->switch_fd;
		fd = bpf_prog_get_fd_by_id(id);
		if (fd >= 0) {
			/* The old fd stays open: a caller may still hold it. */
			((struct bgs *)h)->switch_fd = fd;
			return fd;
		}
	}
	if (h->switch_fd < 0)
		return bgs_err(-ENOENT, "no switch program in %s", h->pin_dir);
	return h->switch_fd;
}

int bgs_switch_info(struct bgs *h, struct bgs_switch_info *si)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd, i;

	memset(si, 0, sizeof(*si));
	fd = bgs_switch_fd(h);
	if (fd < 0)
		return fd;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return bgs_err(-errno, "cannot read the switch program's info: %s",
			       strerror(errno));
	si->prog_id = info.id;
	for (i = 0; i < 8; i++)
		snprintf(si->tag + 2 * i, 3, "%02x", info.tag[i]);
	si->loaded_s = info.load_time / 1000000000ULL;
	si->build_known = bgs_build_running(h, info.id, &si->build_id);
	return 0;
}

const void *bgs_switch_elf(size_t *size)
{
	return bgswitch__elf_bytes(size);
}

int bgs_clock(struct bgs *h, __u64 *jiffies, __u32 *hz)
{
	if (h->clock_fd < 0)
		h->clock_fd = pin_get(h, BGS_PIN_CLOCK);
	return read_clock(h->clock_fd, jiffies, hz);
}
