// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libbgswitch: backends and their pools' tables. A record is never rewritten in place
 * except its admin and health bytes; every pool change builds the table in the slot the
 * program does not use, after the kernel has let go of it, and publishes it with the flip
 * word.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <bpf/bpf.h>

#include "bgs_priv.h"

const char *bgs_be_label(const struct bgs_backend *be, char *buf, size_t len)
{
	return bgs_addr_port_str(be->family, be->addr, ntohs(be->port), buf, len);
}

int bgs_be_read(struct bgs *h, __u32 id, struct bgs_backend *be)
{
	if (!id || id >= h->meta.max_backends)
		return bgs_err(-ENOENT, "backend id %u is out of range (1..%u)", id,
			       h->meta.max_backends - 1);
	if (bpf_map_lookup_elem(h->map_fd[BGS_M_BACKENDS], &id, be))
		return bgs_err(-errno, "cannot read backend %u: %s", id, strerror(errno));
	return 0;
}

/*
 * Writes a backend record. An array update is a plain copy, so a reader running meanwhile
 * may see any mix of old and new bytes: a record that becomes in use under a new
 * incarnation is therefore written twice, first not in use, then in use, so that no
 * reader can pair the new "in use" flag with the old incarnation (and follow an old flow
 * into a new backend).
 */
static int be_write(struct bgs *h, __u32 id, const struct bgs_backend *be)
{
	struct bgs_backend cur, staged;
	int fd = h->map_fd[BGS_M_BACKENDS];

	if ((be->flags & BGS_BE_IN_USE) && !bpf_map_lookup_elem(fd, &id, &cur) &&
	    (!(cur.flags & BGS_BE_IN_USE) || cur.incarnation != be->incarnation)) {
		staged = *be;
		staged.flags = 0;
		if (bpf_map_update_elem(fd, &id, &staged, BPF_ANY))
			return bgs_err(-errno, "cannot write backend %u: %s", id, strerror(errno));
	}
	if (bpf_map_update_elem(fd, &id, be, BPF_ANY))
		return bgs_err(-errno, "cannot write backend %u: %s", id, strerror(errno));
	return 0;
}

/* A backend record in use; -ENOENT for a free or out-of-range id. */
static int be_read_used(struct bgs *h, __u32 id, struct bgs_backend *be)
{
	int err = bgs_be_read(h, id, be);

	if (!err && !(be->flags & BGS_BE_IN_USE))
		err = bgs_err(-ENOENT, "no backend with id %u", id);
	return err;
}

/* Reads backend id for a change: in use, and (incarnation non-zero) still the backend the
 * caller found, not a later one given the same id. */
static int be_read_ref(struct bgs *h, __u32 id, __u32 incarnation, struct bgs_backend *be)
{
	char lbl[80];
	int err = be_read_used(h, id, be);

	if (err)
		return err;
	if (incarnation && be->incarnation != incarnation)
		return bgs_err(-ESTALE, "backend %u (%s) is not the one found (incarnation %u, "
			       "not %u): it was deleted and its id given to another backend "
			       "meanwhile; nothing was changed", id,
			       bgs_be_label(be, lbl, sizeof(lbl)), be->incarnation, incarnation);
	return 0;
}

static bool be_usable(const struct bgs_backend *be)
{
	return (be->flags & BGS_BE_IN_USE) && be->admin == BGS_ADMIN_UP &&
	       be->health == BGS_HEALTH_UP;
}

/* Reads every backend record into a malloc'ed array indexed by id. */
int bgs_be_read_all(struct bgs *h, struct bgs_backend **out)
{
	__u32 n = h->meta.max_backends, i, count, *keys = NULL, batch;
	struct bgs_backend *all;
	int err = 0;

	all = calloc(n, sizeof(*all));
	keys = calloc(n, sizeof(*keys));
	if (!all || !keys) {
		err = bgs_err(-ENOMEM, "out of memory");
		goto out;
	}
	count = n;
	err = bpf_map_lookup_batch(h->map_fd[BGS_M_BACKENDS], NULL, &batch, keys, all, &count,
				   NULL);
	/* An array's batch comes in key order; anything else: one by one. */
	if ((!err || err == -ENOENT) && count == n && keys[n - 1] == n - 1) {
		err = 0;
		goto out;
	}
	err = 0;
	for (i = 0; i < n; i++) {
		if (bpf_map_lookup_elem(h->map_fd[BGS_M_BACKENDS], &i, &all[i])) {
			err = bgs_err(-errno, "cannot read backend %u: %s", i, strerror(errno));
			goto out;
		}
	}
out:
	free(keys);
	if (err)
		free(all);
	else
		*out = all;
	return err;
}

static __u32 be_ident(const struct bgs_backend *be, __u8 *buf)
{
	__u32 alen = be->family == BGS_AF_INET ? 4 : 16;

	buf[0] = be->family;
	memcpy(buf + 1, be->addr, alen);
	memcpy(buf + 1 + alen, &be->port, 2);
	return 1 + alen + 2;
}

int bgs_pool_publish(struct bgs *h, __u32 svc_id, __u32 color, const __u32 *skip, __u32 nskip)
{
	struct bgs_maglev_backend *mb = NULL;
	struct bgs_backend *all = NULL;
	__u8 (*ident)[20] = NULL;
	__u32 m = h->meta.maglev_size, *table = NULL, i, j, n = 0, slot, other;
	__u64 w, nw;
	int err;

	err = bgs_be_read_all(h, &all);
	if (err)
		return err;
	mb = calloc(BGS_MAX_POOL_BACKENDS, sizeof(*mb));
	ident = calloc(BGS_MAX_POOL_BACKENDS, sizeof(*ident));
	table = calloc(m, sizeof(*table));
	if (!mb || !ident || !table) {
		err = bgs_err(-ENOMEM, "out of memory");
		goto out;
	}
	for (i = 1; i < h->meta.max_backends; i++) {
		if (!be_usable(&all[i]) || all[i].svc_id != svc_id || all[i].color != color)
			continue;
		for (j = 0; j < nskip && skip[j] != i; j++)
			;
		if (j < nskip || n >= BGS_MAX_POOL_BACKENDS)
			continue;
		mb[n].id = i;
		mb[n].weight = all[i].weight;
		mb[n].ident = ident[n];
		mb[n].ident_len = be_ident(&all[i], ident[n]);
		n++;
	}
	err = bgs_maglev_build(mb, n, m, table);
	if (err)
		goto out;

	w = bgs_word_load(h, svc_id);
	slot = bgs_fw_slot(w, color);
	other = !slot;
	err = bgs_maglev_map(h);
	if (err)
		goto out;
	/* The idle slot may still be read by a program that loaded an older word. */
	err = bgs_sync(h);
	if (err)
		goto out;
	for (i = 0; i < m; i++)
		*bgs_table_entry(h, svc_id, color, other, i) = table[i];
	nw = w ^ (1ULL << (BGS_FW_SLOT_SHIFT + color));
	bgs_word_publish(h, svc_id, bgs_word_next_gen(nw));
out:
	free(table);
	free(ident);
	free(mb);
	free(all);
	return err;
}

static void revnat_key(const struct bgs_backend *be, __u8 proto, struct bgs_revnat_key *k)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->addr, be->addr, sizeof(k->addr));
	k->port = be->port;
	k->proto = proto;
	k->family = be->family;
}

/* A nat backend's reply slot follows its record to a new id or next hop. */
static void revnat_follow(struct bgs *h, __u32 id, const struct bgs_backend *be)
{
	struct bgs_revnat_key rk;
	struct bgs_service svc;

	if (bgs_svc_read(h, be->svc_id, &svc) || svc.mode != BGS_MODE_NAT)
		return;
	revnat_key(be, svc.proto, &rk);
	bgs_revnat_set_backend(h, &rk, id, be);
}

int bgs_svc_revnat_del(struct bgs *h, __u32 svc_id)
{
	struct bgs_backend *all;
	struct bgs_revnat_key k;
	struct bgs_service svc;
	__u32 i, owner;
	int err;

	err = bgs_svc_read(h, svc_id, &svc);
	if (err || svc.mode != BGS_MODE_NAT)
		return err;
	err = bgs_be_read_all(h, &all);
	if (err)
		return err;
	for (i = 1; i < h->meta.max_backends; i++) {
		if (!(all[i].flags & BGS_BE_IN_USE) || all[i].svc_id != svc_id)
			continue;
		revnat_key(&all[i], svc.proto, &k);
		if (!bgs_revnat_lookup(h, &k, &owner) && owner == svc_id)
			bgs_revnat_delete(h, &k);
		err = bgs_ports_sync(h, k.port, 0, svc_id);
		if (err)
			break;
	}
	free(all);
	return err;
}

static int be_free(struct bgs *h, __u32 id, const struct bgs_backend *be)
{
	struct bgs_backend z = { .incarnation = be->incarnation };

	bgs_percpu_zero(h, h->map_fd[BGS_M_BE_STATS], id, sizeof(struct bgs_counter));
	return be_write(h, id, &z);
}

int bgs_svc_backends_free(struct bgs *h, __u32 svc_id)
{
	struct bgs_backend *all;
	__u32 i;
	int err;

	err = bgs_be_read_all(h, &all);
	if (err)
		return err;
	for (i = 1; i < h->meta.max_backends && !err; i++)
		if ((all[i].flags & BGS_BE_IN_USE) && all[i].svc_id == svc_id)
			err = be_free(h, i, &all[i]);
	free(all);
	return err;
}

static int pool_count(const struct bgs *h, const struct bgs_backend *all, __u32 svc_id,
		      __u32 color)
{
	__u32 i;
	int n = 0;

	for (i = 1; i < h->meta.max_backends; i++)
		if ((all[i].flags & BGS_BE_IN_USE) && all[i].svc_id == svc_id &&
		    all[i].color == color)
			n++;
	return n;
}

static bool be_same_addr(const struct bgs_backend *be, __u8 family, const __u32 *addr,
			 __be16 port)
{
	return be->family == family && be->port == port &&
	       !memcmp(be->addr, addr, sizeof(be->addr));
}

static __u32 next_incarnation(__u32 inc)
{
	return inc + 1 ? inc + 1 : 1;
}

/*
 * Checks spec against service svc and fills the record it makes in color (in use, admin
 * up, health up, no next hop yet); lbl gets "addr:port" for messages.
 */
static int spec_record(const struct bgs_service *svc, __u32 svc_id, __u32 color,
		       const struct bgs_backend_spec *spec, struct bgs_backend *be, char *lbl,
		       size_t len)
{
	__u32 port = spec->port ? spec->port : ntohs(svc->port);
	__u32 weight = spec->weight ? spec->weight : 100;

	bgs_addr_port_str(spec->addr.family, spec->addr.addr, (__u16)port, lbl, len);
	if (spec->addr.family != svc->family)
		return bgs_err(-EINVAL, "service '%s': backend %s is %s but the VIP is %s",
			       svc->name, lbl, spec->addr.family == BGS_AF_INET ? "IPv4" :
			       spec->addr.family == BGS_AF_INET6 ? "IPv6" : "of no family",
			       svc->family == BGS_AF_INET ? "IPv4" : "IPv6");
	if (spec->addr.family == BGS_AF_INET &&
	    (spec->addr.addr[1] || spec->addr.addr[2] || spec->addr.addr[3]))
		return bgs_err(-EINVAL, "service '%s': backend %s: IPv4 address with bits past "
			       "the first word", svc->name, lbl);
	if (svc->mode == BGS_MODE_DSR && port != ntohs(svc->port))
		return bgs_err(-EINVAL, "service '%s' is dsr: backend %s must use the VIP port %u",
			       svc->name, lbl, ntohs(svc->port));
	if (weight > BGS_MAX_WEIGHT)
		return bgs_err(-EINVAL, "service '%s': backend %s: weight %u is out of range "
			       "1..%u", svc->name, lbl, weight, BGS_MAX_WEIGHT);
	memset(be, 0, sizeof(*be));
	memcpy(be->addr, spec->addr.addr, sizeof(be->addr));
	be->port = htons((__u16)port);
	be->family = spec->addr.family;
	be->flags = BGS_BE_IN_USE;
	be->admin = BGS_ADMIN_UP;
	be->health = BGS_HEALTH_UP;
	be->color = (__u8)color;
	be->svc_id = svc_id;
	be->weight = weight;
	return 0;
}

/* The next hop of a backend-to-be, resolved without the lock (a neighbour may take tens of
 * ms); spec_hop copies it into the record checked under the lock. */
static void spec_resolve(const struct bgs_backend_spec *spec, struct bgs_backend *hop)
{
	memset(hop, 0, sizeof(*hop));
	memcpy(hop->addr, spec->addr.addr, sizeof(hop->addr));
	hop->family = spec->addr.family;
	if (hop->family == BGS_AF_INET || hop->family == BGS_AF_INET6)
		bgs_nexthop_resolve(hop);
}

static void spec_hop(struct bgs_backend *be, const struct bgs_backend *hop)
{
	be->flags |= hop->flags & BGS_BE_NEXTHOP;
	be->ifindex = hop->ifindex;
	memcpy(be->dmac, hop->dmac, sizeof(be->dmac));
	memcpy(be->smac, hop->smac, sizeof(be->smac));
}

/* -EEXIST if a nat backend's reply key already belongs to a service. */
static int revnat_free_check(struct bgs *h, const struct bgs_service *svc,
			     const struct bgs_backend *be, const char *lbl)
{
	struct bgs_revnat_key rk;
	struct bgs_service other;
	__u32 owner;

	if (svc->mode != BGS_MODE_NAT)
		return 0;
	revnat_key(be, svc->proto, &rk);
	if (bgs_revnat_lookup(h, &rk, &owner))
		return 0;
	if (bgs_svc_read(h, owner, &other))
		snprintf(other.name, sizeof(other.name), "#%u", owner);
	return bgs_err(-EEXIST, "service '%s': backend %s/%s already serves nat service '%s' "
		       "(one nat service per backend address:port)", svc->name, lbl,
		       svc->proto == IPPROTO_TCP ? "tcp" : "udp", other.name);
}

/* Takes back what be_attach did for a new record id, and frees the record. */
static void be_detach(struct bgs *h, const struct bgs_service *svc, __u32 id,
		      const struct bgs_backend *be, bool revnat_in)
{
	struct bgs_revnat_key rk;

	if (svc->mode == BGS_MODE_NAT) {
		revnat_key(be, svc->proto, &rk);
		if (revnat_in) {
			bgs_revnat_delete(h, &rk);
			bgs_sync(h); /* before anyone may reuse the slot */
		}
		bgs_ports_sync(h, rk.port, 0, ~0u);
	}
	be_free(h, id, be);
}

/*
 * Writes a validated new backend's record at a free id, then what leads to it besides the
 * table (its nat reply slot and port flag, its next hop's tx port); on failure takes all
 * of it back. The caller publishes the pool.
 */
static int be_attach(struct bgs *h, const struct bgs_service *svc, __u32 id,
		     const struct bgs_backend *be, const char *lbl)
{
	struct bgs_revnat_key rk;
	bool revnat_in = false;
	char why[512];
	int err;

	/* the record before anything that leads to it */
	bgs_percpu_zero(h, h->map_fd[BGS_M_BE_STATS], id, sizeof(struct bgs_counter));
	err = be_write(h, id, be);
	if (err)
		return err;
	if (svc->mode == BGS_MODE_NAT) {
		revnat_key(be, svc->proto, &rk);
		err = bgs_ports_sync(h, rk.port, bgs_port_nat_flag(svc->proto), ~0u);
		if (err)
			goto undo;
		err = bgs_revnat_insert(h, &rk, be->svc_id, svc, id, be);
		if (err) {
			snprintf(why, sizeof(why), "%s", bgs_errmsg());
			err = bgs_err(err, "service '%s': backend %s: cannot add its reverse-nat "
				      "key: %s", svc->name, lbl, why);
			goto undo;
		}
		revnat_in = true;
	}
	if (be->ifindex) {
		err = bgs_tx_port_add(h, be->ifindex);
		if (err) {
			snprintf(why, sizeof(why), "%s", bgs_errmsg());
			err = bgs_err(err, "service '%s': backend %s: %s", svc->name, lbl, why);
			goto undo;
		}
	}
	return 0;
undo:
	snprintf(why, sizeof(why), "%s", bgs_errmsg());
	be_detach(h, svc, id, be, revnat_in);
	return bgs_err(err, "%s", why);
}

int bgs_backend_add(struct bgs *h, __u32 svc_id, __u32 color, const struct bgs_backend_spec *spec,
		    __u32 *backend_id)
{
	struct bgs_backend *all = NULL, be = {}, hop;
	struct bgs_service svc;
	char lbl[80], why[512];
	__u32 id;
	int lock, err;

	bgs_err_clear();
	if (color != BGS_BLUE && color != BGS_GREEN)
		return bgs_err(-EINVAL, "color %u is neither blue (0) nor green (1)", color);
	spec_resolve(spec, &hop);
	lock = bgs_lock_svc(h, svc_id, &svc);
	if (lock < 0)
		return lock;
	err = spec_record(&svc, svc_id, color, spec, &be, lbl, sizeof(lbl));
	if (err)
		goto out;
	err = bgs_be_read_all(h, &all);
	if (err)
		goto out;
	for (id = 1; id < h->meta.max_backends; id++) {
		if ((all[id].flags & BGS_BE_IN_USE) && all[id].svc_id == svc_id &&
		    be_same_addr(&all[id], be.family, be.addr, be.port)) {
			err = bgs_err(-EEXIST, "service '%s': backend %s already in pool %s",
				      svc.name, lbl, bgs_color_name(all[id].color));
			goto out;
		}
	}
	if (pool_count(h, all, svc_id, color) >= BGS_MAX_POOL_BACKENDS) {
		err = bgs_err(-ENOSPC, "service '%s': pool %s already holds %d backends",
			      svc.name, bgs_color_name(color), BGS_MAX_POOL_BACKENDS);
		goto out;
	}
	for (id = 1; id < h->meta.max_backends && (all[id].flags & BGS_BE_IN_USE); id++)
		;
	if (id >= h->meta.max_backends) {
		err = bgs_err(-ENOSPC, "service '%s': backend %s: all %u backend ids are in use",
			      svc.name, lbl, h->meta.max_backends - 1);
		goto out;
	}
	err = revnat_free_check(h, &svc, &be, lbl);
	if (err)
		goto out;
	spec_hop(&be, &hop);
	be.incarnation = next_incarnation(all[id].incarnation);

	err = be_attach(h, &svc, id, &be, lbl);
	if (err)
		goto out;
	err = bgs_pool_publish(h, svc_id, color, NULL, 0);
	if (err) {
		snprintf(why, sizeof(why), "%s", bgs_errmsg());
		be_detach(h, &svc, id, &be, svc.mode == BGS_MODE_NAT);
		err = bgs_err(err, "%s", why);
		goto out;
	}
	if (backend_id)
		*backend_id = id;
out:
	free(all);
	bgs_unlock(h, lock, err);
	return err;
}

int bgs_backend_del(struct bgs *h, __u32 backend_id)
{
	return bgs_backend_remove(h, backend_id, 0);
}

int bgs_backend_remove(struct bgs *h, __u32 backend_id, __u32 incarnation)
{
	struct bgs_backend be;
	struct bgs_service svc;
	struct bgs_revnat_key rk;
	__u32 owner;
	int lock, err;

	bgs_err_clear();
	lock = bgs_lock(h);
	if (lock < 0)
		return lock;
	err = be_read_ref(h, backend_id, incarnation, &be);
	if (err)
		goto out;
	err = bgs_svc_read(h, be.svc_id, &svc);
	if (err)
		goto out;
	/* Out of the table first; the record goes once no program can still pick it. */
	err = bgs_pool_publish(h, be.svc_id, be.color, &backend_id, 1);
	if (err)
		goto out;
	/* Past the publish nothing is undone: each step is one a second delete redoes or
	 * skips, so a failure says to run it again. */
	err = bgs_fault("backend_del_step");
	if (err)
		goto partly;
	if (svc.mode == BGS_MODE_NAT) {
		revnat_key(&be, svc.proto, &rk);
		if (!bgs_revnat_lookup(h, &rk, &owner) && owner == be.svc_id)
			bgs_revnat_delete(h, &rk);
		err = bgs_ports_sync(h, rk.port, 0, ~0u);
		if (err)
			goto partly;
	}
	err = bgs_sync(h);
	if (!err)
		err = be_free(h, backend_id, &be);
	if (!err)
		goto out;
partly:
	{
		char why[512], lbl[80];

		snprintf(why, sizeof(why), "%s", bgs_errmsg());
		err = bgs_err(err, "%s; backend %s is partly deleted (it takes no new flows): run "
			      "the delete again to finish it", why, bgs_be_label(&be, lbl, sizeof(lbl)));
	}
out:
	bgs_unlock(h, lock, err);
	return err;
}

static int change_check(const struct bgs_backend_change *c)
{
	if (c->admin != BGS_KEEP && c->admin != BGS_ADMIN_UP && c->admin != BGS_ADMIN_DRAIN &&
	    c->admin != BGS_ADMIN_DOWN)
		return bgs_err(-EINVAL, "backend %u: admin state %d is not up, drain or down",
			       c->id, c->admin);
	if (c->health != BGS_KEEP && c->health != BGS_HEALTH_UP &&
	    c->health != BGS_HEALTH_DOWN)
		return bgs_err(-EINVAL, "backend %u: health state %d is not up or down", c->id,
			       c->health);
	return 0;
}

/* Puts back the records of the first n changes and republishes the pools touched so far. */
static void set_state_undo(struct bgs *h, const struct bgs_backend_change *c,
			   const struct bgs_backend *old, __u32 n, const __u32 *pools, __u32 npools)
{
	__u32 i;

	for (i = 0; i < n; i++)
		be_write(h, c[i].id, &old[i]);
	for (i = 0; i < npools; i++)
		bgs_pool_publish(h, pools[i] >> 1, pools[i] & 1, NULL, 0);
}

int bgs_backend_set_state(struct bgs *h, const struct bgs_backend_change *c, __u32 n)
{
	struct bgs_backend *old = NULL, *nb = NULL;
	__u32 *pools = NULL, *skip = NULL, npools = 0, nskip, i, j, p;
	char why[512];
	int lock = -1, err = 0;

	bgs_err_clear();
	if (!n)
		return 0;
	if (n > h->meta.max_backends)
		return bgs_err(-E2BIG, "%u backend changes: more than the %u backends there can be",
			       n, h->meta.max_backends);
	for (i = 0; i < n && !err; i++)
		err = change_check(&c[i]);
	for (i = 0; i < n && !err; i++)
		for (j = 0; j < i && !err; j++)
			if (c[i].id == c[j].id)
				err = bgs_err(-EINVAL, "backend %u is changed twice in one batch",
					      c[i].id);
	if (err)
		return err;
	old = calloc(n, sizeof(*old));
	nb = calloc(n, sizeof(*nb));
	pools = calloc(n, sizeof(*pools));
	skip = calloc(n, sizeof(*skip));
	if (!old || !nb || !pools || !skip) {
		err = bgs_err(-ENOMEM, "out of memory");
		goto out;
	}
	lock = bgs_lock(h);
	if (lock < 0) {
		err = lock;
		goto out;
	}
	/* Every change checked before anything is written: all apply, or none. */
	for (i = 0; i < n; i++) {
		err = be_read_ref(h, c[i].id, c[i].incarnation, &old[i]);
		if (err)
			goto out;
		nb[i] = old[i];
		if (c[i].admin != BGS_KEEP)
			nb[i].admin = (__u8)c[i].admin;
		if (c[i].health != BGS_KEEP)
			nb[i].health = (__u8)c[i].health;
		if (be_usable(&old[i]) == be_usable(&nb[i]))
			continue;
		p = old[i].svc_id << 1 | old[i].color;
		for (j = 0; j < npools && pools[j] != p; j++)
			;
		if (j == npools)
			pools[npools++] = p;
	}
	/* Health going down: the time goes in first, while the record still says up, so the
	 * program never pairs "down" with an old time (bgswitch_flow.h's grace period). */
	for (i = 0; i < n; i++) {
		__u64 now;
		__u32 hz;

		if (old[i].health != BGS_HEALTH_UP || nb[i].health != BGS_HEALTH_DOWN)
			continue;
		err = bgs_clock(h, &now, &hz);
		if (!err) {
			struct bgs_backend pre = old[i];

			pre.health_down_at = nb[i].health_down_at = now;
			err = be_write(h, c[i].id, &pre);
		}
		if (err) {
			set_state_undo(h, c, old, i, NULL, 0);
			goto out;
		}
	}
	/* Backends that become usable: their records first (a table may then lead to them). */
	for (i = 0; i < n; i++) {
		if (be_usable(&nb[i]) && !be_usable(&old[i]))
			err = be_write(h, c[i].id, &nb[i]);
		if (err) {
			set_state_undo(h, c, old, i, NULL, 0);
			goto out;
		}
	}
	/* One publish per pool whose usable set changed, without those going out ... */
	for (j = 0; j < npools; j++) {
		for (i = nskip = 0; i < n; i++)
			if ((old[i].svc_id << 1 | old[i].color) == pools[j] &&
			    be_usable(&old[i]) && !be_usable(&nb[i]))
				skip[nskip++] = c[i].id;
		err = bgs_fault("set_state_publish");
		if (!err)
			err = bgs_pool_publish(h, pools[j] >> 1, pools[j] & 1, skip, nskip);
		if (err) {
			snprintf(why, sizeof(why), "%s", bgs_errmsg());
			set_state_undo(h, c, old, n, pools, j);
			err = bgs_err(err, "%s; nothing was changed", why);
			goto out;
		}
	}
	/* ... whose records say so once no table leads to them; then the rest. */
	for (i = 0; i < n; i++) {
		if (memcmp(&nb[i], &old[i], sizeof(nb[i])) &&
		    !(be_usable(&nb[i]) && !be_usable(&old[i])))
			err = be_write(h, c[i].id, &nb[i]);
		if (err) {
			snprintf(why, sizeof(why), "%s", bgs_errmsg());
			set_state_undo(h, c, old, n, pools, npools);
			err = bgs_err(err, "%s; nothing was changed", why);
			goto out;
		}
	}
out:
	bgs_unlock(h, lock, err);
	free(skip);
	free(pools);
	free(nb);
	free(old);
	return err;
}

int bgs_backend_set_admin(struct bgs *h, __u32 backend_id, enum bgs_admin admin)
{
	struct bgs_backend_change c = { .id = backend_id, .admin = (int)admin,
					.health = BGS_KEEP };

	bgs_err_clear();
	if (c.admin == BGS_KEEP) /* a state, not "keep" */
		return bgs_err(-EINVAL, "backend %u: admin state %d is not up, drain or down",
			       backend_id, c.admin);
	return bgs_backend_set_state(h, &c, 1);
}

int bgs_backend_set_health(struct bgs *h, __u32 backend_id, enum bgs_health health)
{
	struct bgs_backend_change c = { .id = backend_id, .admin = BGS_KEEP,
					.health = (int)health };

	bgs_err_clear();
	if (c.health == BGS_KEEP) /* a state, not "keep" */
		return bgs_err(-EINVAL, "backend %u: health state %d is not up or down",
			       backend_id, c.health);
	return bgs_backend_set_state(h, &c, 1);
}

static bool nexthop_same(const struct bgs_backend *a, const struct bgs_backend *b)
{
	return (a->flags & BGS_BE_NEXTHOP) == (b->flags & BGS_BE_NEXTHOP) &&
	       a->ifindex == b->ifindex && !memcmp(a->dmac, b->dmac, 6) &&
	       !memcmp(a->smac, b->smac, 6);
}

/*
 * Gives backend id the next hop in hop, in place: its id, incarnation, counters and flows
 * stay. The record is several words that the program reads while it changes, so the
 * change never lets a reader see a mix of old and new: the "resolved" flag goes off
 * first (readers then pass or drop that backend's packets, as for any unresolved next
 * hop), the kernel waits out every program that saw it on, the new fields go in, the kernel
 * waits again, and only then does the flag go back on. Caller holds the lock.
 */
static int nexthop_set(struct bgs *h, __u32 id, struct bgs_backend cur, const struct bgs_backend *hop)
{
	int err;

	if (cur.flags & BGS_BE_NEXTHOP) {
		cur.flags &= ~BGS_BE_NEXTHOP;
		err = be_write(h, id, &cur);
		if (!err)
			err = bgs_sync(h);
		if (err)
			return err;
	}
	cur.ifindex = hop->ifindex;
	memcpy(cur.dmac, hop->dmac, sizeof(cur.dmac));
	memcpy(cur.smac, hop->smac, sizeof(cur.smac));
	err = be_write(h, id, &cur);
	if (!err && (hop->flags & BGS_BE_NEXTHOP)) {
		err = bgs_sync(h);
		if (!err) {
			cur.flags |= BGS_BE_NEXTHOP;
			err = be_write(h, id, &cur);
		}
	}
	/* the reply slot accepts replies from the interface the record now names */
	if (!err)
		revnat_follow(h, id, &cur);
	return err;
}

int bgs_backend_resolve(struct bgs *h, __u32 svc_id, struct bgs_resolve_result *res)
{
	struct bgs_backend *all = NULL, *hop = NULL, cur;
	struct bgs_resolve_result r = {};
	struct bgs_service svc;
	char lbl[80], ferr_msg[512] = "";
	int lock = -1, err, ferr = 0;
	__u32 id;

	bgs_err_clear();
	if (svc_id != BGS_ALL_SERVICES) {
		err = bgs_svc_read(h, svc_id, &svc);
		if (err)
			return err;
	}
	/* Resolve without the lock (a neighbour may take tens of ms per backend) ... */
	err = bgs_be_read_all(h, &all);
	if (err)
		return err;
	hop = calloc(h->meta.max_backends, sizeof(*hop));
	if (!hop) {
		err = bgs_err(-ENOMEM, "out of memory");
		goto out;
	}
	for (id = 1; id < h->meta.max_backends; id++) {
		if (!(all[id].flags & BGS_BE_IN_USE) ||
		    (svc_id != BGS_ALL_SERVICES && all[id].svc_id != svc_id))
			continue;
		hop[id] = all[id];
		bgs_nexthop_resolve(&hop[id]);
		r.checked++;
	}
	/* ... then re-check each record under it: the backend resolved is the one there. */
	lock = bgs_lock(h);
	if (lock < 0) {
		err = lock;
		goto out;
	}
	for (id = 1; id < h->meta.max_backends; id++) {
		if (!(hop[id].flags & BGS_BE_IN_USE))
			continue;
		err = bgs_be_read(h, id, &cur);
		if (err)
			goto out;
		if (!(cur.flags & BGS_BE_IN_USE) || cur.incarnation != hop[id].incarnation ||
		    !be_same_addr(&cur, hop[id].family, hop[id].addr, hop[id].port))
			continue; /* deleted or replaced meanwhile: not ours to update */
		if (!(hop[id].flags & BGS_BE_NEXTHOP))
			r.unresolved++;
		if (nexthop_same(&cur, &hop[id]))
			continue;
		if (hop[id].ifindex) {
			int terr = bgs_tx_port_add(h, hop[id].ifindex);

			if (terr) {
				ferr = terr;
				snprintf(ferr_msg, sizeof(ferr_msg), "backend %s: %s",
					 bgs_be_label(&cur, lbl, sizeof(lbl)), bgs_errmsg());
				continue;
			}
		}
		err = nexthop_set(h, id, cur, &hop[id]);
		if (err)
			goto out;
		r.changed++;
	}
	/* The message is set only now: every bgs_tx_port_add above clears it. */
	if (ferr)
		err = bgs_err(ferr, "%s", ferr_msg);
out:
	bgs_unlock(h, lock, err);
	if (res)
		*res = r;
	free(hop);
	free(all);
	return err;
}

int bgs_backend_resolve_all(struct bgs *h)
{
	return bgs_backend_resolve(h, BGS_ALL_SERVICES, NULL);
}

int bgs_backend_get(struct bgs *h, __u32 backend_id, struct bgs_backend *be)
{
	struct bgs_backend b;
	int err;

	bgs_err_clear();
	err = be_read_used(h, backend_id, &b);
	if (err)
		return err;
	if (be)
		*be = b;
	return 0;
}

int bgs_backend_find(struct bgs *h, __u32 svc_id, const struct bgs_ip *addr, __u16 port,
		     __u32 *backend_id)
{
	struct bgs_backend *all;
	struct bgs_service svc;
	char lbl[80];
	__u32 id;
	int err;

	bgs_err_clear();
	err = bgs_svc_read(h, svc_id, &svc);
	if (err)
		return err;
	if (!port)
		port = ntohs(svc.port);
	err = bgs_be_read_all(h, &all);
	if (err)
		return err;
	for (id = 1; id < h->meta.max_backends; id++) {
		if ((all[id].flags & BGS_BE_IN_USE) && all[id].svc_id == svc_id &&
		    be_same_addr(&all[id], addr->family, addr->addr, htons(port))) {
			if (backend_id)
				*backend_id = id;
			free(all);
			return 0;
		}
	}
	free(all);
	return bgs_err(-ENOENT, "service '%s': no backend %s", svc.name,
		       bgs_addr_port_str(addr->family, addr->addr, port, lbl, sizeof(lbl)));
}

int bgs_pool_list(struct bgs *h, __u32 svc_id, __u32 color, __u32 *ids, __u32 max)
{
	struct bgs_backend *all;
	struct bgs_service svc;
	__u32 id;
	int err, n = 0;

	bgs_err_clear();
	if (color != BGS_BLUE && color != BGS_GREEN)
		return bgs_err(-EINVAL, "color %u is neither blue (0) nor green (1)", color);
	err = bgs_svc_read(h, svc_id, &svc);
	if (err)
		return err;
	err = bgs_be_read_all(h, &all);
	if (err)
		return err;
	for (id = 1; id < h->meta.max_backends; id++) {
		if (!(all[id].flags & BGS_BE_IN_USE) || all[id].svc_id != svc_id ||
		    all[id].color != color)
			continue;
		if (ids && (__u32)n < max)
			ids[n] = id;
		n++;
	}
	free(all);
	return n;
}

int bgs_backend_read_all(struct bgs *h, struct bgs_backend **all, __u32 *n)
{
	bgs_err_clear();
	*n = h->meta.max_backends;
	return bgs_be_read_all(h, all);
}

int bgs_pool_state(struct bgs *h, __u32 svc_id, __u32 color, struct bgs_pool_state *st)
{
	struct bgs_pool_state r = {};
	struct bgs_backend be;
	__u8 *seen = NULL;
	__u32 m = h->meta.maglev_size, slot, i, id;
	int err;

	bgs_err_clear();
	if (color >= BGS_NR_COLORS)
		return bgs_err(-EINVAL, "color %u is neither blue (0) nor green (1)", color);
	err = bgs_svc_read(h, svc_id, &(struct bgs_service){});
	if (!err)
		err = bgs_maglev_map(h);
	if (err)
		return err;
	seen = calloc(h->meta.max_backends / 8 + 1, 1);
	if (!seen)
		return bgs_err(-ENOMEM, "out of memory");
	/* The live table holds the backends that take new flows (admin up, health up): each
	 * distinct id in it, once, is one record to read for its next hop. */
	slot = bgs_fw_slot(bgs_word_load(h, svc_id), color);
	for (i = 0; i < m; i++) {
		id = __atomic_load_n(bgs_table_entry(h, svc_id, color, slot, i), __ATOMIC_RELAXED);
		if (!id || id >= h->meta.max_backends || (seen[id / 8] & (1u << (id % 8))))
			continue;
		seen[id / 8] |= (__u8)(1u << (id % 8));
		if (bgs_be_read(h, id, &be) || !be_usable(&be) || be.svc_id != svc_id)
			continue;
		r.in_table++;
		if (be.flags & BGS_BE_NEXTHOP)
			r.ready++;
	}
	free(seen);
	bgs_err_clear();
	*st = r;
	return 0;
}

bool bgs_pool_usable(struct bgs *h, __u32 svc_id, __u32 color)
{
	struct bgs_pool_state st;
	struct bgs_backend be;
	__u32 key, id = 0;

	if (svc_id >= h->meta.max_services || color >= BGS_NR_COLORS)
		return false;
	/* The live table's first entry answers in two lookups (a flip stays a few syscalls):
	 * no backend there means none usable; a resolved one there means usable. Only a
	 * table whose first backend has no next hop needs the whole table read. */
	key = (__u32)bgs_maglev_index(svc_id, color, bgs_fw_slot(bgs_word_load(h, svc_id), color),
				      h->meta.maglev_size, 0);
	if (bpf_map_lookup_elem(h->map_fd[BGS_M_MAGLEV], &key, &id) || !id)
		return false;
	if (!bgs_be_read(h, id, &be) && be_usable(&be) && (be.flags & BGS_BE_NEXTHOP))
		return true;
	return !bgs_pool_state(h, svc_id, color, &st) && st.ready > 0;
}

/* One wanted backend of bgs_service_apply, as checked under the lock. */
struct apply_item {
	struct bgs_backend be; /* the record it makes (new) or gets (kept) */
	struct bgs_backend hop; /* its next hop, resolved before the lock */
	__u32 id;		/* existing id, or the free one it takes */
	bool add, reweight;
	char lbl[80];
};

/* Puts back what the write phase of bgs_service_apply did: adds detached, weights as they
 * were, the pools published so far republished without the adds. */
static void apply_undo(struct bgs *h, const struct bgs_service *svc, __u32 svc_id,
		       struct apply_item *it, __u32 nit, const __u32 *old_weight, __u32 nattached,
		       const bool *published)
{
	__u32 i, c, *skip = calloc(nit ? nit : 1, sizeof(*skip)), nskip;

	for (i = 0; i < nit; i++) {
		if (it[i].reweight) {
			struct bgs_backend be = it[i].be;

			be.weight = old_weight[i];
			be_write(h, it[i].id, &be);
		}
	}
	for (c = 0; c < BGS_NR_COLORS; c++) {
		if (!published[c])
			continue;
		for (i = nskip = 0; skip && i < nit; i++)
			if (it[i].add && it[i].be.color == c)
				skip[nskip++] = it[i].id;
		bgs_pool_publish(h, svc_id, c, skip, nskip);
	}
	/* a program may still run on a table that led to the adds */
	if (published[BGS_BLUE] || published[BGS_GREEN])
		bgs_sync(h);
	for (i = 0; i < nit && nattached; i++) {
		if (!it[i].add)
			continue;
		be_detach(h, svc, it[i].id, &it[i].be, svc->mode == BGS_MODE_NAT);
		nattached--;
	}
	free(skip);
}

int bgs_service_apply(struct bgs *h, __u32 svc_id, const struct bgs_pool_want want[2],
		      __u8 new_health, struct bgs_apply_result *res)
{
	struct bgs_apply_result r = {};
	struct bgs_backend *all = NULL;
	struct apply_item *it = NULL;
	struct bgs_service svc;
	__u32 nit = 0, i, j, c, id, next_free = 1, nattached = 0, *skip = NULL, nskip;
	__u32 *old_weight = NULL;
	bool changed[BGS_NR_COLORS] = {}, published[BGS_NR_COLORS] = {};
	char why[512];
	int lock = -1, err = 0;

	bgs_err_clear();
	if (new_health != BGS_HEALTH_UP && new_health != BGS_HEALTH_DOWN)
		return bgs_err(-EINVAL, "health state %u for new backends is not up or down",
			       new_health);
	for (c = 0; c < BGS_NR_COLORS; c++) {
		if (want[c].n > BGS_MAX_POOL_BACKENDS)
			return bgs_err(-ENOSPC, "pool %s: %u backends wanted, at most %d",
				       bgs_color_name(c), want[c].n, BGS_MAX_POOL_BACKENDS);
		if (want[c].n && !want[c].be)
			return bgs_err(-EINVAL, "pool %s: %u backends and no list",
				       bgs_color_name(c), want[c].n);
		nit += want[c].n;
	}
	it = calloc(nit ? nit : 1, sizeof(*it));
	old_weight = calloc(nit ? nit : 1, sizeof(*old_weight));
	skip = calloc(h->meta.max_backends, sizeof(*skip));
	if (!it || !old_weight || !skip) {
		err = bgs_err(-ENOMEM, "out of memory");
		goto out;
	}
	/* Next hops before the lock: each may wait for a neighbour (tens of ms). */
	for (c = 0, i = 0; c < BGS_NR_COLORS; c++)
		for (j = 0; j < want[c].n; j++)
			spec_resolve(&want[c].be[j], &it[i++].hop);
	lock = bgs_lock_svc(h, svc_id, &svc);
	if (lock < 0) {
		err = lock;
		goto out;
	}
	err = bgs_be_read_all(h, &all);
	if (err)
		goto out;
	/* Everything checked before anything is written: a refusal changes nothing. */
	for (c = 0, i = 0; c < BGS_NR_COLORS; c++) {
		for (j = 0; j < want[c].n; j++, i++) {
			err = spec_record(&svc, svc_id, c, &want[c].be[j], &it[i].be, it[i].lbl,
					  sizeof(it[i].lbl));
			if (err)
				goto out;
		}
	}
	for (i = 0; i < nit; i++) {
		for (j = 0; j < i; j++) {
			if (be_same_addr(&it[j].be, it[i].be.family, it[i].be.addr,
					 it[i].be.port)) {
				err = bgs_err(-EINVAL, "service '%s': backend %s is wanted twice",
					      svc.name, it[i].lbl);
				goto out;
			}
		}
		for (id = 1; id < h->meta.max_backends; id++)
			if ((all[id].flags & BGS_BE_IN_USE) && all[id].svc_id == svc_id &&
			    be_same_addr(&all[id], it[i].be.family, it[i].be.addr, it[i].be.port))
				break;
		if (id < h->meta.max_backends && all[id].color != it[i].be.color) {
			/* Its reply slot and flows belong to one record: a move is a removal,
			 * then an add, in two applies. */
			err = bgs_err(-EBUSY, "service '%s': backend %s is in pool %s, wanted in "
				      "%s: remove it first, then add it", svc.name, it[i].lbl,
				      bgs_color_name(all[id].color),
				      bgs_color_name(it[i].be.color));
			goto out;
		}
		if (id < h->meta.max_backends) {
			it[i].id = id;
			old_weight[i] = all[id].weight;
			it[i].reweight = all[id].weight != it[i].be.weight;
			if (it[i].reweight) {
				__u32 w = it[i].be.weight;

				it[i].be = all[id];
				it[i].be.weight = w;
				changed[it[i].be.color] = true;
				r.reweighted++;
			}
			continue;
		}
		err = revnat_free_check(h, &svc, &it[i].be, it[i].lbl);
		if (err)
			goto out;
		/* Only ids free now: a removed one is freed after the publish. */
		for (id = next_free; id < h->meta.max_backends &&
		     (all[id].flags & BGS_BE_IN_USE); id++)
			;
		if (id >= h->meta.max_backends) {
			err = bgs_err(-ENOSPC, "service '%s': backend %s: all %u backend ids are "
				      "in use", svc.name, it[i].lbl, h->meta.max_backends - 1);
			goto out;
		}
		next_free = id + 1;
		it[i].id = id;
		it[i].add = true;
		it[i].be.health = new_health;
		spec_hop(&it[i].be, &it[i].hop);
		it[i].be.incarnation = next_incarnation(all[id].incarnation);
		changed[it[i].be.color] = true;
		r.added++;
	}
	/* The service's backends not wanted go. */
	for (id = 1, nskip = 0; id < h->meta.max_backends; id++) {
		if (!(all[id].flags & BGS_BE_IN_USE) || all[id].svc_id != svc_id)
			continue;
		for (i = 0; i < nit && !(!it[i].add && it[i].id == id); i++)
			;
		if (i < nit)
			continue;
		skip[nskip++] = id;
		changed[all[id].color] = true;
		r.removed++;
	}
	if (!changed[BGS_BLUE] && !changed[BGS_GREEN])
		goto out; /* nothing to change: the service is not touched */

	/* New records (and their reply slots, tx ports), and weights, before the tables. */
	for (i = 0; i < nit; i++) {
		if (it[i].add) {
			err = bgs_fault("service_apply_add");
			if (!err)
				err = be_attach(h, &svc, it[i].id, &it[i].be, it[i].lbl);
			if (err)
				goto undo;
			nattached++;
		} else if (it[i].reweight) {
			/* in place: the program never reads the weight, only the table does */
			err = be_write(h, it[i].id, &it[i].be);
			if (err)
				goto undo;
		}
	}
	/* One publish per changed pool, without the backends that go. */
	for (c = 0; c < BGS_NR_COLORS; c++) {
		if (!changed[c])
			continue;
		err = bgs_fault("service_apply_publish");
		if (!err)
			err = bgs_pool_publish(h, svc_id, c, skip, nskip);
		if (err)
			goto undo;
		published[c] = true;
		r.published++;
	}
	/* Past the publishes nothing is undone: the tables are whole and lead to no removed
	 * backend; what is left (their reply slots and records) a second apply of the same
	 * want finishes, as it finds them still there and not wanted. */
	err = bgs_fault("service_apply_free");
	if (err)
		goto partly;
	for (i = 0; i < nskip && svc.mode == BGS_MODE_NAT; i++) {
		struct bgs_revnat_key rk;
		__u32 owner;

		revnat_key(&all[skip[i]], svc.proto, &rk);
		if (!bgs_revnat_lookup(h, &rk, &owner) && owner == svc_id)
			bgs_revnat_delete(h, &rk);
		err = bgs_ports_sync(h, rk.port, 0, ~0u);
		if (err)
			goto partly;
	}
	if (nskip)
		err = bgs_sync(h); /* before the records (and their ids) are given up */
	for (i = 0; i < nskip && !err; i++)
		err = be_free(h, skip[i], &all[skip[i]]);
	if (!err)
		goto out;
partly:
	snprintf(why, sizeof(why), "%s", bgs_errmsg());
	err = bgs_err(err, "%s; service '%s': its tables are applied but removed backends are "
		      "left partly deleted (they take no new flows): apply again to finish",
		      why, svc.name);
	goto out;
undo:
	snprintf(why, sizeof(why), "%s", bgs_errmsg());
	apply_undo(h, &svc, svc_id, it, nit, old_weight, nattached, published);
	err = bgs_err(err, "%s; nothing was changed", why);
	r = (struct bgs_apply_result){};
out:
	bgs_unlock(h, lock, err);
	if (res)
		*res = r;
	free(all);
	free(skip);
	free(old_weight);
	free(it);
	return err;
}
