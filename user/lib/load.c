// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Loading the switch: bgs_init creates or adopts the pinned state and installs the switch;
 * bgs_upgrade swaps in another build of it; the program clock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "bgs_priv.h"
#include "bgs_test.h"
#include "bgswitch_flow.h"
#include "bgswitch.skel.h"
#include "bgs_entry.skel.h"
#include "bgs_probe.skel.h"

/*
 * The expected attach type of every program that uses bgs_progs. The kernel binds a program
 * array to the first program that uses it and, since a 2025 fix (also in stable kernels such
 * as Debian 12's 6.1.1xx), refuses later ones whose expected attach type differs. The entry
 * that libxdp attaches through its dispatcher is an extension program: newer kernels give it
 * its target's type (BPF_XDP, what libbpf gives any "xdp" section), older ones leave it 0. So
 * the switch and the entry skeleton take what an extension gets on this kernel, probed once
 * with bgs_probe.bpf.c: an extension that tail-calls through an array owned by a program of
 * type 0 loads only where extensions keep 0. If the probe cannot run, BPF_XDP. (Where the
 * kernel refuses extensions, libxdp attaches the entry itself, as an "xdp" program.)
 */
enum bpf_attach_type bgs_progs_attach_type(void)
{
	static int probed = -1;
	struct bgs_probe *target = NULL, *rest = NULL;
	libbpf_print_fn_t prev;
	int err;

	if (probed >= 0)
		return (enum bpf_attach_type)probed;
	probed = BPF_XDP;
	prev = libbpf_set_print(NULL); /* its refusals are answers, not errors to report */
	target = bgs_probe__open();
	rest = bgs_probe__open();
	if (!target || !rest)
		goto out;
	/* the target alone first: the extension needs its fd */
	bpf_program__set_autoload(target->progs.bgs_probe_owner, false);
	bpf_program__set_autoload(target->progs.bgs_probe_ext, false);
	if (bgs_probe__load(target))
		goto out;
	bpf_program__set_autoload(rest->progs.bgs_probe_target, false);
	bpf_program__set_expected_attach_type(rest->progs.bgs_probe_owner, 0);
	if (bpf_program__set_attach_target(rest->progs.bgs_probe_ext,
					   bpf_program__fd(target->progs.bgs_probe_target),
					   "bgs_probe_slot"))
		goto out;
	err = bgs_probe__load(rest);
	if (!err)
		probed = 0;
out:
	bgs_probe__destroy(rest);
	bgs_probe__destroy(target);
	libbpf_set_print(prev);
	return (enum bpf_attach_type)probed;
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
	/* optional: maps a switch of an earlier build of this layout does not have (an
	 * upgrade to such a build leaves their pins unused; back again, they are reused) */
	const struct {
		const char *name;
		__u64 entries;
		bool optional;
	} sizes[] = {
		{ "bgs_vips", 3ULL * m->max_services, false },
		{ "bgs_svcs", m->max_services, false },
		{ "bgs_flip", m->max_services, false },
		{ "bgs_maglev", (__u64)m->max_services * 4 * m->maglev_size, false },
		{ "bgs_backends", m->max_backends, false },
		{ "bgs_be_stats", m->max_backends, false },
		{ "bgs_revnat", bgs_revnat_size(m->max_backends), false },
		{ "bgs_svc_stats", 2ULL * m->max_services, false },
		{ "bgs_ct", m->ct_entries, false },
		{ "bgs_fresh", bgs_fresh_lines(m->ct_entries), true },
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
		if (!map && sizes[i].optional)
			continue;
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
	if (!err && bpf_object__find_map_by_name(obj, "bgs_fresh"))
		err = set_rodata_u32(obj, "cfg_fresh_mask", bgs_fresh_lines(m->ct_entries) - 1);
	if (err)
		goto out;
	prog = bpf_object__find_program_by_name(obj, BGS_PROG_NAME_SWITCH);
	if (!prog) {
		err = bgs_err(-ENOENT, "switch object has no program %s", BGS_PROG_NAME_SWITCH);
		goto out;
	}
	bpf_program__set_expected_attach_type(prog, bgs_progs_attach_type());
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

	progs_fd = h->map_fd[BGS_M_PROGS] >= 0 ? h->map_fd[BGS_M_PROGS] : bgs_pin_get(h, "bgs_progs");
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
		h->switch_fd = bgs_pin_get(h, BGS_PIN_SWITCH);
	if (h->switch_fd < 0)
		return false;
	fd = bgs_pin_get(h, "bgs_progs");
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
	bpf_program__set_expected_attach_type(h->entry_skel->progs.bgs_entry,
					      bgs_progs_attach_type());
	err = bgs_entry__load(h->entry_skel);
	if (err)
		return bgs_err(err, "cannot load the entry program: %s", strerror(-err));
	h->entry_fd = bpf_program__fd(h->entry_skel->progs.bgs_entry);
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
	h = bgs_handle_new(pin_dir);
	if (!h)
		return bgs_err(-ENOMEM, "out of memory");
	err = bgs_ensure_bpffs(h, pin_dir);
	if (err)
		goto out;
	/* State that exists: its entry program is verified before the lock, which only a
	 * first creation (maps pinned by the load itself) holds across the verifier. */
	err = bgs_meta_read(pin_dir, &h->meta, &present);
	if (err)
		goto out;
	if (present) {
		err = bgs_sizes_match(pin_dir, sizes, &h->meta);
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
	err = bgs_meta_read(pin_dir, &h->meta, &present);
	if (err)
		goto out;
	if (was_present && !present) {
		err = bgs_err(-EAGAIN, "the pinned state at %s was destroyed while bgctl init "
			      "ran: run it again", pin_dir);
		goto out;
	}
	if (present) {
		err = bgs_sizes_match(pin_dir, sizes, &h->meta);
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
	err = bgs_adopt_pins(h);
	if (err)
		goto out;
	if (!present || !h->meta.hz) {
		if (read_clock(h->clock_fd, &jiffies, &hz) == 0)
			h->meta.hz = hz;
		bgs_err_clear();
		err = bgs_meta_write(h);
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
			err = bgs_meta_write(h); /* its message stays */
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

const void *bgs_switch_elf(size_t *size)
{
	return bgswitch__elf_bytes(size);
}

int bgs_clock(struct bgs *h, __u64 *jiffies, __u32 *hz)
{
	if (h->clock_fd < 0)
		h->clock_fd = bgs_pin_get(h, BGS_PIN_CLOCK);
	return read_clock(h->clock_fd, jiffies, hz);
}
