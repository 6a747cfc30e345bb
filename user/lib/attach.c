// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libbgswitch: attaching the entry program through libxdp, so the switch shares a NIC with
 * other XDP programs. The entry only tail-calls the switch through the pinned program array,
 * so neither an upgrade nor a flip ever touches the attachment.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <net/if.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include "bgs_priv.h"
#include "bgs_entry.skel.h"

int bgs_attach(struct bgs *h, const char *ifname, enum bgs_xdp_mode mode)
{
	LIBBPF_OPTS(bpf_object_open_opts, oopts, .pin_root_path = h->pin_dir,
		    .object_name = "bgs_entry");
	DECLARE_LIBXDP_OPTS(xdp_program_opts, xopts, .prog_name = BGS_PROG_NAME_ENTRY);
	enum bpf_attach_type attach_type;
	struct xdp_program *prog = NULL;
	struct bpf_program *entry;
	struct bpf_object *obj = NULL;
	const void *elf;
	size_t elf_sz;
	unsigned int ifindex;
	int err, lock;

	bgs_err_clear();
	if (mode != BGS_XDP_NATIVE && mode != BGS_XDP_GENERIC)
		return bgs_err(-EINVAL, "XDP mode %d is neither native nor generic", mode);
	ifindex = ifname ? if_nametoindex(ifname) : 0;
	if (!ifindex)
		return bgs_err(-ENODEV, "no interface '%s' in this namespace",
			       ifname ? ifname : "(null)");
	lock = bgs_lock(h);
	if (lock < 0)
		return lock;
	attach_type = bgs_progs_attach_type();
	elf = bgs_entry__elf_bytes(&elf_sz);
	bgs_quiet_begin(); /* libxdp opens its dispatcher objects too */
	obj = bpf_object__open_mem(elf, elf_sz, &oopts);
	err = libbpf_get_error(obj);
	if (err) {
		bgs_quiet_end();
		obj = NULL;
		err = bgs_err(err, "cannot open the entry program: %s", strerror(-err));
		goto out;
	}
	/* where extensions keep type 0, so must the entry if libxdp attaches it alone */
	entry = bpf_object__find_program_by_name(obj, BGS_PROG_NAME_ENTRY);
	if (entry && attach_type == 0)
		bpf_program__set_expected_attach_type(entry, 0);
	xopts.obj = obj;
	prog = xdp_program__create(&xopts);
	err = libxdp_get_error(prog);
	if (err) {
		bgs_quiet_end();
		prog = NULL;
		err = bgs_err(err, "cannot prepare the entry program for libxdp: %s",
			      strerror(-err));
		goto out;
	}
	err = xdp_program__attach(prog, (int)ifindex,
				  mode == BGS_XDP_NATIVE ? XDP_MODE_NATIVE : XDP_MODE_SKB, 0);
	bgs_quiet_end();
	if (err) {
		bgs_err(err, "cannot attach to %s in %s mode: %s%s", ifname,
			mode == BGS_XDP_NATIVE ? "native" : "generic", strerror(-err),
			mode == BGS_XDP_NATIVE ? " (the driver may lack native XDP; generic mode "
						 "works everywhere)" : "");
		goto out;
	}
	err = bgs_tx_port_add(h, ifindex);
	if (err) {
		xdp_program__detach(prog, (int)ifindex,
				    mode == BGS_XDP_NATIVE ? XDP_MODE_NATIVE : XDP_MODE_SKB, 0);
		goto out;
	}
out:
	/* The attachment outlives both: libxdp pinned it. libxdp leaves a caller's object
	 * for the caller to close. */
	xdp_program__close(prog);
	bpf_object__close(obj);
	bgs_unlock(h, lock, err);
	return err;
}

int bgs_detach(struct bgs *h, const char *ifname)
{
	struct xdp_multiprog *mp = NULL;
	struct xdp_program *p = NULL;
	enum xdp_attach_mode mode;
	unsigned int ifindex;
	int err, lock;

	bgs_err_clear();
	ifindex = ifname ? if_nametoindex(ifname) : 0;
	if (!ifindex)
		return bgs_err(-ENODEV, "no interface '%s' in this namespace",
			       ifname ? ifname : "(null)");
	lock = bgs_lock(h);
	if (lock < 0)
		return lock;
	mp = xdp_multiprog__get_from_ifindex((int)ifindex);
	err = libxdp_get_error(mp);
	if (err) {
		mp = NULL;
		err = bgs_err(err == -ENOENT ? -ENOENT : err, "no XDP program on %s%s%s", ifname,
			      err == -ENOENT ? "" : ": ", err == -ENOENT ? "" : strerror(-err));
		goto out;
	}
	mode = xdp_multiprog__attach_mode(mp);
	if (xdp_multiprog__is_legacy(mp)) {
		p = xdp_multiprog__main_prog(mp);
		if (p && strcmp(xdp_program__name(p), BGS_PROG_NAME_ENTRY))
			p = NULL;
	} else {
		while ((p = xdp_multiprog__next_prog(p, mp)))
			if (!strcmp(xdp_program__name(p), BGS_PROG_NAME_ENTRY))
				break;
	}
	if (!p) {
		err = bgs_err(-ENOENT, "bgswitch is not attached to %s", ifname);
		goto out;
	}
	err = xdp_program__detach(p, (int)ifindex, mode, 0);
	if (err)
		bgs_err(err, "cannot detach bgswitch from %s: %s", ifname, strerror(-err));
out:
	xdp_multiprog__close(mp);
	bgs_unlock(h, lock, err);
	return err;
}

int bgs_teardown(struct bgs *h, bool force, __u64 *live_flows)
{
	struct bgs_flow_counts c;
	__u32 key, next, *prev = NULL;
	char ifname[IF_NAMESIZE];
	int err;

	bgs_err_clear();
	/* Counted before anything goes: a switch with live flows is refused whole. */
	err = bgs_flow_count(h, &c);
	if (err)
		return err;
	if (live_flows)
		*live_flows = c.total;
	bgs_flow_counts_free(&c);
	if (c.total && !force)
		return bgs_err(-EBUSY, "%llu flows are live in %s: destroying the switch cuts them "
			       "(drain or flip them away first, or force it)",
			       (unsigned long long)c.total, h->pin_dir);
	/* Every interface it was attached to is a redirect target (bgs_attach adds it). */
	while (!bpf_map_get_next_key(h->map_fd[BGS_M_TX_PORTS], prev, &next)) {
		key = next;
		prev = &key;
		if (!if_indextoname(key, ifname))
			continue; /* gone, or in another namespace */
		err = bgs_detach(h, ifname);
		if (err && err != -ENOENT)
			return err;
	}
	return bgs_destroy(h->pin_dir);
}
