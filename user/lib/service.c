// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libbgswitch: services, routing changes (flip, canary, drain end) and preview prefixes.
 * Every routing change is one release store of the service's flip word; what the word
 * refers to is written before it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <bpf/bpf.h>

#include "bgs_priv.h"

const char *bgs_color_name(__u32 color)
{
	return color == BGS_BLUE ? "blue" : color == BGS_GREEN ? "green" : "?";
}

static const char *proto_name(__u8 proto)
{
	return proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp" : "?";
}

static void vip_key(const struct bgs_service *svc, __be16 port, struct bgs_vip_key *k)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->addr, svc->vip, sizeof(k->addr));
	k->port = port;
	k->proto = svc->proto;
	k->family = svc->family;
}

int bgs_svc_read(struct bgs *h, __u32 svc_id, struct bgs_service *svc)
{
	if (svc_id >= h->meta.max_services)
		return bgs_err(-ENOENT, "service id %u is out of range (0..%u)", svc_id,
			       h->meta.max_services - 1);
	if (bpf_map_lookup_elem(h->map_fd[BGS_M_SVCS], &svc_id, svc))
		return bgs_err(-errno, "cannot read service %u: %s", svc_id, strerror(errno));
	if (!(svc->flags & BGS_SVC_IN_USE))
		return bgs_err(-ENOENT, "no service with id %u", svc_id);
	return 0;
}

static int svc_write(struct bgs *h, __u32 svc_id, const struct bgs_service *svc)
{
	if (bpf_map_update_elem(h->map_fd[BGS_M_SVCS], &svc_id, svc, BPF_ANY))
		return bgs_err(-errno, "cannot write service %u: %s", svc_id, strerror(errno));
	return 0;
}

static int name_check(const char *name)
{
	size_t i, n;

	if (!name || !*name)
		return bgs_err(-EINVAL, "service name is empty");
	n = strlen(name);
	if (n > BGS_NAME_MAX - 1)
		return bgs_err(-EINVAL, "service name '%s' is longer than %d characters", name,
			       BGS_NAME_MAX - 1);
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return bgs_err(-EINVAL, "service name '%s': character '%c' not allowed "
				       "(use A-Z a-z 0-9 _ . -)", name, c);
	}
	return 0;
}

/* Reads every service record; *out is malloc'ed, indexed by id. */
static int svc_read_all(struct bgs *h, struct bgs_service **out)
{
	__u32 n = h->meta.max_services, i;
	struct bgs_service *all;

	all = calloc(n, sizeof(*all));
	if (!all)
		return bgs_err(-ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		if (bpf_map_lookup_elem(h->map_fd[BGS_M_SVCS], &i, &all[i])) {
			free(all);
			return bgs_err(-errno, "cannot read service %u: %s", i, strerror(errno));
		}
	}
	*out = all;
	return 0;
}

static int vip_taken(struct bgs *h, const struct bgs_vip_key *k, const struct bgs_service *all,
		     const char *what)
{
	struct bgs_vip_val v;
	char ap[80];

	if (bpf_map_lookup_elem(h->map_fd[BGS_M_VIPS], k, &v))
		return 0;
	bgs_addr_port_str(k->family, k->addr, ntohs(k->port), ap, sizeof(ap));
	return bgs_err(-EEXIST, "%s %s/%s is taken by service '%.*s'%s", what, ap,
		       proto_name(k->proto), BGS_NAME_MAX - 1,
		       v.svc_id < h->meta.max_services ? all[v.svc_id].name : "?",
		       v.flags & BGS_VIP_PREVIEW_PORT ? " (its preview port)" : "");
}

static int tables_zero(struct bgs *h, __u32 svc_id)
{
	int err = bgs_maglev_map(h);

	if (err)
		return err;
	memset(bgs_table_entry(h, svc_id, 0, 0, 0), 0,
	       (size_t)4 * h->meta.maglev_size * BGS_MAGLEV_STRIDE);
	return 0;
}

/*
 * Keeps the address marker of a VIP address (port 0, proto 0, BGS_VIP_ADDRESS) in step with
 * the services that use the address, so that packets without ports to it (fragments, ICMP,
 * other protocols) get their own verdicts. Called under the lock, after the service's own
 * keys changed; `except` is a service id being deleted (~0u for none).
 */
static int addr_marker_sync(struct bgs *h, const __u32 *addr, __u8 family, __u32 except)
{
	struct bgs_vip_key k = { .family = family };
	struct bgs_vip_val v = { .flags = BGS_VIP_ADDRESS };
	struct bgs_service svc;
	__u32 id;

	memcpy(k.addr, addr, sizeof(k.addr));
	for (id = 0; id < h->meta.max_services; id++) {
		if (id == except || bpf_map_lookup_elem(h->map_fd[BGS_M_SVCS], &id, &svc))
			continue;
		if (!(svc.flags & BGS_SVC_IN_USE) || svc.family != family ||
		    memcmp(svc.vip, addr, sizeof(svc.vip)))
			continue;
		v.svc_id = id;
		if (bpf_map_update_elem(h->map_fd[BGS_M_VIPS], &k, &v, BPF_ANY))
			return bgs_err(-errno, "cannot mark VIP address of service '%s': %s",
				       svc.name, strerror(errno));
		return 0;
	}
	if (bpf_map_delete_elem(h->map_fd[BGS_M_VIPS], &k) && errno != ENOENT)
		return bgs_err(-errno, "cannot unmark a VIP address: %s", strerror(errno));
	return 0;
}

int bgs_service_add(struct bgs *h, const struct bgs_service_spec *spec, __u32 *svc_id)
{
	struct bgs_service svc = {}, *all = NULL;
	struct bgs_vip_key k, pk;
	struct bgs_vip_val v = {};
	__u32 id, free_id = ~0u;
	__u64 old_word = 0;
	int lock = -1, err;
	bool vip_in = false;

	bgs_err_clear();
	err = name_check(spec->name);
	if (err)
		return err;
	if (spec->vip.family != BGS_AF_INET && spec->vip.family != BGS_AF_INET6)
		return bgs_err(-EINVAL, "service '%s': VIP family %u is neither IPv4 nor IPv6",
			       spec->name, spec->vip.family);
	if (spec->vip.family == BGS_AF_INET &&
	    (spec->vip.addr[1] || spec->vip.addr[2] || spec->vip.addr[3]))
		return bgs_err(-EINVAL, "service '%s': IPv4 VIP with bits past the first word",
			       spec->name);
	if (!spec->port)
		return bgs_err(-EINVAL, "service '%s': port 0 is not allowed (1..65535)",
			       spec->name);
	if (spec->proto != IPPROTO_TCP && spec->proto != IPPROTO_UDP)
		return bgs_err(-EINVAL, "service '%s': protocol %u is neither tcp nor udp",
			       spec->name, spec->proto);
	if (spec->mode != BGS_MODE_NAT && spec->mode != BGS_MODE_DSR)
		return bgs_err(-EINVAL, "service '%s': mode %u is neither nat nor dsr", spec->name,
			       spec->mode);
	if (spec->preview_port && spec->mode == BGS_MODE_DSR)
		return bgs_err(-EINVAL, "service '%s': a dsr service cannot have a preview port "
			       "(backends answer on the VIP port; use preview prefixes)",
			       spec->name);
	if (spec->preview_port && spec->preview_port == spec->port)
		return bgs_err(-EINVAL, "service '%s': preview port %u equals the service port",
			       spec->name, spec->port);

	memcpy(svc.vip, spec->vip.addr, sizeof(svc.vip));
	svc.port = htons(spec->port);
	svc.preview_port = htons(spec->preview_port);
	svc.proto = spec->proto;
	svc.family = spec->vip.family;
	svc.mode = spec->mode;
	svc.flags = BGS_SVC_IN_USE;
	strncpy(svc.name, spec->name, sizeof(svc.name) - 1);
	vip_key(&svc, svc.port, &k);
	vip_key(&svc, svc.preview_port, &pk);

	lock = bgs_lock(h);
	if (lock < 0)
		return lock;
	err = svc_read_all(h, &all);
	if (err)
		goto out;
	for (id = 0; id < h->meta.max_services; id++) {
		if (!(all[id].flags & BGS_SVC_IN_USE)) {
			if (free_id == ~0u)
				free_id = id;
			continue;
		}
		if (!strncmp(all[id].name, spec->name, BGS_NAME_MAX)) {
			err = bgs_err(-EEXIST, "service '%s' already exists (id %u)", spec->name,
				      id);
			goto out;
		}
	}
	err = vip_taken(h, &k, all, "VIP");
	if (!err && spec->preview_port)
		err = vip_taken(h, &pk, all, "preview port");
	if (err)
		goto out;
	if (free_id == ~0u) {
		err = bgs_err(-ENOSPC, "service '%s': all %u service ids are in use", spec->name,
			      h->meta.max_services);
		goto out;
	}
	id = free_id;

	/* Everything the VIP keys lead to first: tables, counters, record, flip word. */
	err = tables_zero(h, id);
	if (err)
		goto out;
	bgs_percpu_zero(h, h->map_fd[BGS_M_SVC_STATS], id * 2, sizeof(struct bgs_counter));
	bgs_percpu_zero(h, h->map_fd[BGS_M_SVC_STATS], id * 2 + 1, sizeof(struct bgs_counter));
	err = svc_write(h, id, &svc);
	if (err)
		goto out;
	memset(h->flip[id].drain, 0, sizeof(h->flip[id].drain)); /* the word is 0: unused */
	/* a new incarnation of the id: entries of the one before are not this service's */
	__atomic_store_n(&h->flip[id].epoch, h->flip[id].epoch + 1, __ATOMIC_RELAXED);
	/* A free slot keeps the last generation it published: the new service continues
	 * from it, so --expect-generation never matches an earlier service of that name. */
	old_word = bgs_word_load(h, id);
	bgs_word_publish(h, id, bgs_word_next_gen(old_word & BGS_FW_GEN_BITS) | BGS_FW_ACTIVE);

	/* the record is written: the filter takes its VIP, ports and protocol from it */
	err = bgs_ports_sync(h, svc.port, 0, ~0u);
	if (!err && svc.preview_port)
		err = bgs_ports_sync(h, svc.preview_port, 0, ~0u);
	if (err)
		goto undo;
	v.svc_id = id;
	if (bpf_map_update_elem(h->map_fd[BGS_M_VIPS], &k, &v, BPF_NOEXIST)) {
		err = bgs_err(-errno, "service '%s': cannot insert its VIP: %s", spec->name,
			      strerror(errno));
		goto undo;
	}
	vip_in = true;
	if (spec->preview_port) {
		v.flags = BGS_VIP_PREVIEW_PORT;
		if (bpf_map_update_elem(h->map_fd[BGS_M_VIPS], &pk, &v, BPF_NOEXIST)) {
			err = bgs_err(-errno, "service '%s': cannot insert its preview port: %s",
				      spec->name, strerror(errno));
			goto undo;
		}
	}
	err = addr_marker_sync(h, svc.vip, svc.family, ~0u);
	if (err)
		goto undo;
	if (svc_id)
		*svc_id = id;
	goto out;
undo:
	if (spec->preview_port)
		bpf_map_delete_elem(h->map_fd[BGS_M_VIPS], &pk);
	if (vip_in)
		bpf_map_delete_elem(h->map_fd[BGS_M_VIPS], &k);
	bgs_word_publish(h, id, bgs_word_next_gen(old_word & BGS_FW_GEN_BITS));
	k.port = svc.port;
	pk.port = svc.preview_port;
	memset(&svc, 0, sizeof(svc));
	svc_write(h, id, &svc);
	bgs_ports_sync(h, k.port, 0, ~0u);
	bgs_ports_sync(h, pk.port, 0, ~0u);
out:
	free(all);
	bgs_unlock(h, lock, err);
	return err;
}

int bgs_service_set_preview_port(struct bgs *h, __u32 svc_id, __u16 preview_port)
{
	struct bgs_service svc, nsvc, *all = NULL;
	struct bgs_vip_key nk, ok_;
	struct bgs_vip_val v = { .svc_id = svc_id, .flags = BGS_VIP_PREVIEW_PORT };
	int lock, err = 0;

	bgs_err_clear();
	lock = bgs_lock_svc(h, svc_id, &svc);
	if (lock < 0)
		return lock;
	if (ntohs(svc.preview_port) == preview_port)
		goto out; /* nothing to change */
	if (preview_port && svc.mode == BGS_MODE_DSR) {
		err = bgs_err(-EINVAL, "service '%s': a dsr service cannot have a preview port "
			      "(backends answer on the VIP port; use preview prefixes)", svc.name);
		goto out;
	}
	if (preview_port && preview_port == ntohs(svc.port)) {
		err = bgs_err(-EINVAL, "service '%s': preview port %u equals the service port",
			      svc.name, preview_port);
		goto out;
	}
	nsvc = svc;
	nsvc.preview_port = htons(preview_port);
	vip_key(&svc, svc.preview_port, &ok_);
	vip_key(&nsvc, nsvc.preview_port, &nk);
	if (preview_port) {
		err = svc_read_all(h, &all);
		if (!err)
			err = vip_taken(h, &nk, all, "preview port");
		if (err)
			goto out;
	}
	/* The record first (the port filter is computed from the records), then the new key,
	 * then the old one goes: the flows of the old port keep their entries and backends. */
	err = svc_write(h, svc_id, &nsvc);
	if (err)
		goto out;
	if (preview_port) {
		err = bgs_ports_sync(h, nsvc.preview_port, 0, ~0u);
		if (!err && bpf_map_update_elem(h->map_fd[BGS_M_VIPS], &nk, &v, BPF_NOEXIST))
			err = bgs_err(-errno, "service '%s': cannot insert preview port %u: %s",
				      svc.name, preview_port, strerror(errno));
		if (err) {
			svc_write(h, svc_id, &svc);
			bgs_ports_sync(h, nsvc.preview_port, 0, ~0u);
			goto out;
		}
	}
	/* replies of flows opened on the new port are found through it (nat) */
	if (svc.mode == BGS_MODE_NAT)
		bgs_revnat_set_preview(h, svc_id, nsvc.preview_port);
	if (svc.preview_port) {
		bpf_map_delete_elem(h->map_fd[BGS_M_VIPS], &ok_);
		err = bgs_ports_sync(h, svc.preview_port, 0, ~0u);
		if (err) {
			char why[512];

			snprintf(why, sizeof(why), "%s", bgs_errmsg());
			err = bgs_err(err, "%s; the new preview port is live, the old one's port "
				      "filter is stale: run the change again to finish it", why);
		}
	}
out:
	free(all);
	bgs_unlock(h, lock, err);
	return err;
}

/* Backends of a service, both pools (0 or a count, or a negative errno). */
static int svc_backend_count(struct bgs *h, __u32 svc_id)
{
	int blue = bgs_pool_list(h, svc_id, BGS_BLUE, NULL, 0);
	int green = blue < 0 ? 0 : bgs_pool_list(h, svc_id, BGS_GREEN, NULL, 0);

	return blue < 0 ? blue : green < 0 ? green : blue + green;
}

int bgs_service_set_mode(struct bgs *h, __u32 svc_id, __u8 mode)
{
	struct bgs_service svc, nsvc;
	int lock, n, err = 0;

	bgs_err_clear();
	if (mode != BGS_MODE_NAT && mode != BGS_MODE_DSR)
		return bgs_err(-EINVAL, "mode %u is neither nat (0) nor dsr (1)", mode);
	lock = bgs_lock_svc(h, svc_id, &svc);
	if (lock < 0)
		return lock;
	if (svc.mode == mode)
		goto out; /* nothing to change */
	/* A backend's addressing (nat's reverse entries and free port, dsr's VIP port) and
	 * every flow it carries are made for one mode: only empty pools change it. */
	n = svc_backend_count(h, svc_id);
	if (n < 0) {
		err = n;
		goto out;
	}
	if (n) {
		err = bgs_err(-EBUSY, "service '%s' has %d backend%s: its mode changes only with "
			      "both pools empty (delete them, change the mode, add them again)",
			      svc.name, n, n == 1 ? "" : "s");
		goto out;
	}
	if (mode == BGS_MODE_DSR && svc.preview_port) {
		err = bgs_err(-EBUSY, "service '%s' has preview port %u, which dsr cannot have: "
			      "remove it first (bgctl service set %s --preview-port none)",
			      svc.name, ntohs(svc.preview_port), svc.name);
		goto out;
	}
	nsvc = svc;
	nsvc.mode = mode;
	err = svc_write(h, svc_id, &nsvc);
out:
	bgs_unlock(h, lock, err);
	return err;
}

static int preview_delete_all(struct bgs *h, __u32 svc_id);

int bgs_service_del(struct bgs *h, __u32 svc_id)
{
	struct bgs_service svc;
	struct bgs_vip_key k;
	int lock, err;

	bgs_err_clear();
	lock = bgs_lock_svc(h, svc_id, &svc);
	if (lock < 0)
		return lock;
	/* Reverse order of creation: first nothing leads to the service any more. */
	if (svc.preview_port) {
		vip_key(&svc, svc.preview_port, &k);
		bpf_map_delete_elem(h->map_fd[BGS_M_VIPS], &k);
	}
	vip_key(&svc, svc.port, &k);
	if (bpf_map_delete_elem(h->map_fd[BGS_M_VIPS], &k) && errno != ENOENT) {
		err = bgs_err(-errno, "service '%s': cannot delete its VIP: %s", svc.name,
			      strerror(errno));
		goto out;
	}
	/* From here on nothing is undone: every step is one a second delete redoes or
	 * skips, so a failure says to run it again. */
	err = addr_marker_sync(h, svc.vip, svc.family, svc_id);
	if (!err)
		err = bgs_fault("service_del_step");
	if (err)
		goto partly;
	err = bgs_svc_revnat_del(h, svc_id);
	if (err)
		goto partly;
	err = bgs_ports_sync(h, svc.port, 0, svc_id);
	if (!err)
		err = bgs_ports_sync(h, svc.preview_port, 0, svc_id);
	if (err)
		goto partly;
	bgs_word_publish(h, svc_id, bgs_word_next_gen(bgs_word_load(h, svc_id)) & ~BGS_FW_ACTIVE);
	/* No running program still holds the service: free what it referred to. */
	err = bgs_sync(h);
	if (err)
		goto partly;
	err = bgs_svc_backends_free(h, svc_id);
	if (err)
		goto partly;
	err = preview_delete_all(h, svc_id);
	if (err)
		goto partly;
	err = tables_zero(h, svc_id);
	if (err)
		goto partly;
	bgs_percpu_zero(h, h->map_fd[BGS_M_SVC_STATS], svc_id * 2, sizeof(struct bgs_counter));
	bgs_percpu_zero(h, h->map_fd[BGS_M_SVC_STATS], svc_id * 2 + 1,
			sizeof(struct bgs_counter));
	/* Only the generation stays: the slot's next service goes on from it. */
	bgs_word_publish(h, svc_id, bgs_word_next_gen(bgs_word_load(h, svc_id)) & BGS_FW_GEN_BITS);
	memset(h->flip[svc_id].drain, 0, sizeof(h->flip[svc_id].drain));
	err = svc_write(h, svc_id, &(struct bgs_service){});
	if (!err) {
		bgs_svc_side_records_del(h, svc_id);
		goto out;
	}
partly:
	{
		char why[512];

		snprintf(why, sizeof(why), "%s", bgs_errmsg());
		err = bgs_err(err, "%s; service '%s' is partly deleted (it takes no new traffic): "
			      "run the delete again to finish it", why, svc.name);
	}
out:
	bgs_unlock(h, lock, err);
	/* Its flows are dead already (their backends' records are gone); the walk that frees
	 * their entries runs after the lock, and frees only flows of backends that are gone,
	 * so it never touches a service that reused the id meanwhile. */
	if (!err && bgs_ct_delete_orphans(h, svc_id) < 0)
		bgs_err_clear(); /* the entries age out of the LRU map instead */
	return err;
}

int bgs_service_find(struct bgs *h, const char *name, __u32 *svc_id)
{
	struct bgs_service svc;
	__u32 id;

	bgs_err_clear();
	if (!name)
		return bgs_err(-EINVAL, "no service name given");
	for (id = 0; id < h->meta.max_services; id++) {
		if (bpf_map_lookup_elem(h->map_fd[BGS_M_SVCS], &id, &svc))
			return bgs_err(-errno, "cannot read service %u: %s", id, strerror(errno));
		if ((svc.flags & BGS_SVC_IN_USE) && !strncmp(svc.name, name, BGS_NAME_MAX)) {
			if (svc_id)
				*svc_id = id;
			return 0;
		}
	}
	return bgs_err(-ENOENT, "no service named '%s'", name);
}

/* The flip state as the program sees it; leaves the error message alone. */
static void flip_read(struct bgs *h, __u32 svc_id, struct bgs_flip *flip)
{
	int c;

	flip->word = bgs_word_load(h, svc_id);
	for (c = 0; c < 2; c++) {
		flip->drain[c].deadline = __atomic_load_n(&h->flip[svc_id].drain[c].deadline,
							  __ATOMIC_RELAXED);
		flip->drain[c].gen = __atomic_load_n(&h->flip[svc_id].drain[c].gen,
						     __ATOMIC_RELAXED);
		flip->drain[c].pad = 0;
	}
	flip->epoch = __atomic_load_n(&h->flip[svc_id].epoch, __ATOMIC_RELAXED);
	flip->pad = 0;
}

int bgs_service_get(struct bgs *h, __u32 svc_id, struct bgs_service *svc, struct bgs_flip *flip)
{
	struct bgs_service s;
	int err;

	bgs_err_clear();
	err = bgs_svc_read(h, svc_id, &s);
	if (err)
		return err;
	if (svc)
		*svc = s;
	if (flip)
		flip_read(h, svc_id, flip);
	return 0;
}

int bgs_service_list(struct bgs *h, __u32 *ids, __u32 max)
{
	struct bgs_service svc;
	__u32 id;
	int n = 0;

	bgs_err_clear();
	for (id = 0; id < h->meta.max_services; id++) {
		if (bpf_map_lookup_elem(h->map_fd[BGS_M_SVCS], &id, &svc))
			return bgs_err(-errno, "cannot read service %u: %s", id, strerror(errno));
		if (!(svc.flags & BGS_SVC_IN_USE))
			continue;
		if (ids && (__u32)n < max)
			ids[n] = id;
		n++;
	}
	return n;
}

int bgs_lock_svc(struct bgs *h, __u32 svc_id, struct bgs_service *svc)
{
	int lock = bgs_lock(h), err;

	if (lock < 0)
		return lock;
	err = bgs_svc_read(h, svc_id, svc);
	if (err) {
		bgs_unlock(h, lock, err);
		return err;
	}
	return lock;
}

/* ---- Routing changes ---- */

static void flip_fill(struct bgs *h, __u32 svc_id, struct bgs_flip *after)
{
	if (after)
		flip_read(h, svc_id, after);
}

/* The bits of the flip word that route new flows (the rest: generation, pool state). */
#define DECISION_BITS                                                                      \
	(BGS_FW_LIVE_GREEN | BGS_FW_DRAINING | BGS_FW_STICKY |                             \
	 ((__u64)BGS_FW_CANARY_MASK << BGS_FW_CANARY_SHIFT))

static int gen_check(const struct bgs_service *svc, __u64 w, long long expect_gen,
		     const struct bgs_flip *expect)
{
	if (expect && (w & DECISION_BITS) != (expect->word & DECISION_BITS))
		return bgs_err(-ESTALE, "service '%s': its routing changed (generation %u -> %u)",
			       svc->name, bgs_fw_gen(expect->word), bgs_fw_gen(w));
	if (expect_gen == BGS_ANY_GEN)
		return 0;
	if (expect_gen < 0 || (unsigned long long)expect_gen != bgs_fw_gen(w))
		return bgs_err(-ESTALE, "service '%s': generation is %u, not %lld",
			       svc->name, bgs_fw_gen(w), expect_gen);
	return 0;
}

int bgs_flip(struct bgs *h, __u32 svc_id, const struct bgs_flip_opts *opts, struct bgs_flip *after)
{
	struct bgs_flip_opts o = {
		.to_color = BGS_ANY_COLOR, .expect_gen = BGS_ANY_GEN, .drain_ms = BGS_NO_DEADLINE
	};
	struct bgs_service svc;
	__u64 w, nw, deadline = ~0ULL, jiffies;
	__u32 live, target, hz;
	int lock, err;

	bgs_err_clear();
	if (opts)
		o = *opts;
	if (o.to_color != BGS_ANY_COLOR && o.to_color != BGS_BLUE && o.to_color != BGS_GREEN)
		return bgs_err(-EINVAL, "flip: color %d is neither blue nor green", o.to_color);
	lock = bgs_lock_svc(h, svc_id, &svc);
	if (lock < 0)
		return lock;
	w = bgs_word_load(h, svc_id);
	live = bgs_fw_live(w);
	target = o.to_color == BGS_ANY_COLOR ? !live : (__u32)o.to_color;
	/* Before the "already live" answer too: that answer is about the generation read. */
	err = gen_check(&svc, w, o.expect_gen, o.expect);
	if (err)
		goto done;
	if (target == live)
		goto done;
	if (!o.force && !bgs_pool_usable(h, svc_id, target)) {
		err = bgs_err(-EHOSTUNREACH, "service '%s': pool %s has no usable backend (admin "
			      "up, health up, next hop resolved); force the flip to send traffic "
			      "there anyway",
			      svc.name, bgs_color_name(target));
		goto out;
	}
	if (o.drain_ms && o.drain_ms != BGS_NO_DEADLINE) {
		err = bgs_clock(h, &jiffies, &hz);
		if (err)
			goto out;
		deadline = o.drain_ms / 1000 * hz + o.drain_ms % 1000 * hz / 1000;
		if (deadline > ~0ULL - 1 - jiffies || o.drain_ms / 1000 > ~0ULL / hz)
			deadline = ~0ULL;
		else
			deadline += jiffies;
	}
	nw = w & ~(BGS_FW_LIVE_GREEN | BGS_FW_DRAINING |
		   (BGS_FW_CANARY_MASK << BGS_FW_CANARY_SHIFT));
	nw |= target ? BGS_FW_LIVE_GREEN : 0;
	if (o.drain_ms)
		nw |= BGS_FW_DRAINING;
	nw = bgs_word_next_gen(nw);
	/* drain_gen is set even without a drain: flows of the old color created before this
	 * flip are then routed as new at once (drain_ms 0 = "the drain ends now") */
	nw = bgs_flip_drain_stage(&h->flip[svc_id], nw, o.drain_ms ? deadline : 0,
				  bgs_fw_gen(nw));
	bgs_word_publish(h, svc_id, nw);
	err = 1;
done:
	flip_fill(h, svc_id, after);
out:
	bgs_unlock(h, lock, err);
	return err;
}

static int canary_set(struct bgs *h, __u32 svc_id, __u32 bps, bool sticky, long long expect_gen,
		      const struct bgs_flip *expect, struct bgs_flip *after)
{
	struct bgs_service svc;
	int lock, err;
	__u64 w, nw;

	bgs_err_clear();
	if (bps > BGS_CANARY_SCALE)
		return bgs_err(-EINVAL, "canary weight %u is out of range 0..%u basis points", bps,
			       BGS_CANARY_SCALE);
	lock = bgs_lock_svc(h, svc_id, &svc);
	if (lock < 0)
		return lock;
	w = bgs_word_load(h, svc_id);
	err = gen_check(&svc, w, expect_gen, expect);
	if (err) {
		flip_fill(h, svc_id, after); /* the caller says what changed */
		goto out;
	}
	nw = w & ~(BGS_FW_STICKY | (BGS_FW_CANARY_MASK << BGS_FW_CANARY_SHIFT));
	nw |= (__u64)bps << BGS_FW_CANARY_SHIFT;
	nw |= sticky ? BGS_FW_STICKY : 0;
	bgs_word_publish(h, svc_id, bgs_word_next_gen(nw));
	flip_fill(h, svc_id, after);
out:
	bgs_unlock(h, lock, err);
	return err;
}

int bgs_canary_set(struct bgs *h, __u32 svc_id, __u32 bps, bool sticky, long long expect_gen,
		   struct bgs_flip *after)
{
	return canary_set(h, svc_id, bps, sticky, expect_gen, NULL, after);
}

int bgs_canary_set_expect(struct bgs *h, __u32 svc_id, __u32 bps, bool sticky,
			  const struct bgs_flip *expect, struct bgs_flip *after)
{
	return canary_set(h, svc_id, bps, sticky, BGS_ANY_GEN, expect, after);
}

int bgs_drain_end(struct bgs *h, __u32 svc_id, struct bgs_flip *after)
{
	struct bgs_service svc;
	int lock;
	__u64 w;

	bgs_err_clear();
	lock = bgs_lock_svc(h, svc_id, &svc);
	if (lock < 0)
		return lock;
	w = bgs_word_load(h, svc_id);
	if (w & BGS_FW_DRAINING)
		bgs_word_publish(h, svc_id, bgs_word_next_gen(w & ~BGS_FW_DRAINING));
	flip_fill(h, svc_id, after);
	bgs_unlock(h, lock, 0);
	return 0;
}

/* ---- Preview prefixes ---- */

static int prefix_check(const struct bgs_service *svc, const struct bgs_prefix *p)
{
	struct bgs_prefix q;
	char a[INET6_ADDRSTRLEN], s[INET6_ADDRSTRLEN + 8];
	unsigned int bits = p->ip.family == BGS_AF_INET ? 32 : 128;
	int err;

	bgs_ip_str(&p->ip, a, sizeof(a));
	if (p->ip.family != BGS_AF_INET && p->ip.family != BGS_AF_INET6)
		return bgs_err(-EINVAL, "service '%s': preview prefix of family %u", svc->name,
			       p->ip.family);
	if (p->ip.family != svc->family)
		return bgs_err(-EINVAL, "service '%s': preview prefix %s/%u is %s but the VIP is "
			       "%s", svc->name, a, p->len,
			       p->ip.family == BGS_AF_INET ? "IPv4" : "IPv6",
			       svc->family == BGS_AF_INET ? "IPv4" : "IPv6");
	if (p->len > bits)
		return bgs_err(-EINVAL, "service '%s': preview prefix %s/%u: length past %u",
			       svc->name, a, p->len, bits);
	/* Same host-bit rule as parsing. */
	snprintf(s, sizeof(s), "%s/%u", a, p->len);
	err = bgs_prefix_parse(s, &q);
	if (err) {
		char why[512];

		snprintf(why, sizeof(why), "%s", bgs_errmsg());
		return bgs_err(err, "service '%s': preview prefix %s", svc->name, why);
	}
	return 0;
}

static void preview_key(__u32 svc_id, const struct bgs_prefix *p, struct bgs_preview_key *k)
{
	memset(k, 0, sizeof(*k));
	k->prefixlen = 32 + p->len;
	k->svc_id = htonl(svc_id);
	memcpy(k->addr, p->ip.addr, sizeof(k->addr));
}

/* Walks the preview trie; returns the number of keys of svc_id (copied into keys[<max]). */
static int preview_keys(struct bgs *h, __u32 svc_id, struct bgs_preview_key *keys, __u32 max)
{
	struct bgs_preview_key k, next;
	void *prev = NULL;
	int n = 0;

	while (bpf_map_get_next_key(h->map_fd[BGS_M_PREVIEW], prev, &next) == 0) {
		if (ntohl(next.svc_id) == svc_id) {
			if (keys && (__u32)n < max)
				keys[n] = next;
			n++;
		}
		k = next;
		prev = &k;
	}
	if (errno != ENOENT)
		return bgs_err(-errno, "cannot walk bgs_preview: %s", strerror(errno));
	return n;
}

static int preview_delete_all(struct bgs *h, __u32 svc_id)
{
	struct bgs_preview_key *keys;
	int n, i, cap, err = 0;

	n = preview_keys(h, svc_id, NULL, 0);
	if (n <= 0)
		return n;
	cap = n;
	keys = calloc(cap, sizeof(*keys));
	if (!keys)
		return bgs_err(-ENOMEM, "out of memory");
	n = preview_keys(h, svc_id, keys, cap);
	if (n > cap)
		n = cap; /* a writer that bypassed the lock: never read past keys */
	for (i = 0; n > 0 && i < n; i++)
		if (bpf_map_delete_elem(h->map_fd[BGS_M_PREVIEW], &keys[i]) && errno != ENOENT)
			err = bgs_err(-errno, "cannot delete a preview prefix of service %u: %s",
				      svc_id, strerror(errno));
	free(keys);
	return n < 0 ? n : err;
}

int bgs_preview_add(struct bgs *h, __u32 svc_id, const struct bgs_prefix *p)
{
	struct bgs_preview_key k;
	struct bgs_service svc;
	char a[INET6_ADDRSTRLEN];
	__u32 one = 1;
	int lock, err;

	bgs_err_clear();
	lock = bgs_lock(h);
	if (lock < 0)
		return lock;
	err = bgs_svc_read(h, svc_id, &svc);
	if (!err)
		err = prefix_check(&svc, p);
	if (err)
		goto out;
	preview_key(svc_id, p, &k);
	if (bpf_map_update_elem(h->map_fd[BGS_M_PREVIEW], &k, &one, BPF_NOEXIST)) {
		err = -errno;
		bgs_ip_str(&p->ip, a, sizeof(a));
		if (err == -EEXIST)
			bgs_err(err, "service '%s': preview prefix %s/%u already present", svc.name,
				a, p->len);
		else if (err == -ENOSPC || err == -E2BIG)
			bgs_err(-ENOSPC, "service '%s': preview prefix %s/%u: the preview map is "
				"full", svc.name, a, p->len);
		else
			bgs_err(err, "service '%s': cannot add preview prefix %s/%u: %s", svc.name,
				a, p->len, strerror(-err));
		if (err == -E2BIG)
			err = -ENOSPC;
		goto out;
	}
	if (!(svc.flags & BGS_SVC_HAS_PREVIEW)) {
		svc.flags |= BGS_SVC_HAS_PREVIEW;
		err = svc_write(h, svc_id, &svc);
		if (err)
			bpf_map_delete_elem(h->map_fd[BGS_M_PREVIEW], &k);
	}
out:
	bgs_unlock(h, lock, err);
	return err;
}

int bgs_preview_del(struct bgs *h, __u32 svc_id, const struct bgs_prefix *p)
{
	struct bgs_preview_key k;
	struct bgs_service svc;
	char a[INET6_ADDRSTRLEN];
	int lock, err, n;

	bgs_err_clear();
	lock = bgs_lock(h);
	if (lock < 0)
		return lock;
	err = bgs_svc_read(h, svc_id, &svc);
	if (!err)
		err = prefix_check(&svc, p);
	if (err)
		goto out;
	preview_key(svc_id, p, &k);
	bgs_ip_str(&p->ip, a, sizeof(a));
	if (bpf_map_delete_elem(h->map_fd[BGS_M_PREVIEW], &k)) {
		if (errno == ENOENT)
			err = bgs_err(-ENOENT, "service '%s': no preview prefix %s/%u", svc.name,
				      a, p->len);
		else
			err = bgs_err(-errno, "service '%s': cannot delete preview prefix %s/%u: %s",
				      svc.name, a, p->len, strerror(errno));
		goto out;
	}
	n = preview_keys(h, svc_id, NULL, 0);
	if (n == 0 && (svc.flags & BGS_SVC_HAS_PREVIEW)) {
		svc.flags &= ~BGS_SVC_HAS_PREVIEW;
		err = svc_write(h, svc_id, &svc);
	}
out:
	bgs_unlock(h, lock, err);
	return err;
}

int bgs_preview_list(struct bgs *h, __u32 svc_id, struct bgs_prefix *out, __u32 max)
{
	struct bgs_preview_key *keys = NULL;
	struct bgs_service svc;
	int n, i, cap, err;

	bgs_err_clear();
	err = bgs_svc_read(h, svc_id, &svc);
	if (err)
		return err;
	n = preview_keys(h, svc_id, NULL, 0);
	if (n <= 0 || !out || !max)
		return n;
	cap = n;
	keys = calloc(cap, sizeof(*keys));
	if (!keys)
		return bgs_err(-ENOMEM, "out of memory");
	/* Without the lock a prefix may come meanwhile: keys holds only the first cap, and
	 * the count returned is that of what out can be given. */
	n = preview_keys(h, svc_id, keys, cap);
	if (n > cap)
		n = cap;
	for (i = 0; i < n && (__u32)i < max; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		out[i].ip.family = svc.family;
		memcpy(out[i].ip.addr, keys[i].addr, sizeof(keys[i].addr));
		out[i].len = (__u8)(keys[i].prefixlen - 32);
	}
	free(keys);
	return n;
}

/* ---- Decoded views ---- */

__u32 bgs_flip_live(const struct bgs_flip *f)
{
	return bgs_fw_live(f->word);
}

__u32 bgs_flip_gen(const struct bgs_flip *f)
{
	return bgs_fw_gen(f->word);
}

__u32 bgs_flip_canary(const struct bgs_flip *f)
{
	return bgs_fw_canary(f->word);
}

bool bgs_flip_sticky(const struct bgs_flip *f)
{
	return f->word & BGS_FW_STICKY;
}

bool bgs_flip_draining(const struct bgs_flip *f)
{
	return f->word & BGS_FW_DRAINING;
}

__u32 bgs_flip_drain_gen(const struct bgs_flip *f)
{
	return bgs_flip_drain(f)->gen;
}

__u64 bgs_flip_drain_deadline(const struct bgs_flip *f)
{
	return bgs_flip_drain(f)->deadline;
}

bool bgs_flip_active(const struct bgs_flip *f)
{
	return f->word & BGS_FW_ACTIVE;
}

bool bgs_backend_in_use(const struct bgs_backend *be)
{
	return be->flags & BGS_BE_IN_USE;
}

bool bgs_backend_resolved(const struct bgs_backend *be)
{
	return be->flags & BGS_BE_NEXTHOP;
}
