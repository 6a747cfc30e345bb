// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The nat reply table (bgs_revnat): open addressing in an mmap()ed array, so that the
 * program finds a reply's service with inlined array reads. A key lives in one of
 * BGS_REVNAT_PROBES slots from its home slot. Writers hold the pin-directory lock; a slot
 * is published by a release store of `used` after its key and service are written, and a
 * freed slot is reused only after bgs_sync (every path that frees one syncs before it lets
 * go of the lock).
 */
#include <errno.h>
#include <string.h>

#include "bgs_priv.h"
#include "bgswitch_hash.h"

_Static_assert(sizeof(struct bgs_revnat_slot) % 8 == 0,
	       "bgs_revnat_slot must be its array stride (a multiple of 8)");

static __u32 revnat_mask(const struct bgs *h)
{
	return bgs_revnat_size(h->meta.max_backends) - 1;
}

static struct bgs_revnat_slot *revnat_find(struct bgs *h, const struct bgs_revnat_key *k)
{
	__u32 home = bgs_revnat_hash(k), i;
	struct bgs_revnat_slot *e;

	for (i = 0; i < BGS_REVNAT_PROBES; i++) {
		e = &h->revnat[(home + i) & revnat_mask(h)];
		if (__atomic_load_n(&e->used, __ATOMIC_ACQUIRE) && !memcmp(&e->key, k, sizeof(*k)))
			return e;
	}
	return NULL;
}

int bgs_revnat_lookup(struct bgs *h, const struct bgs_revnat_key *k, __u32 *svc_id)
{
	struct bgs_revnat_slot *e = revnat_find(h, k);

	if (!e)
		return -ENOENT;
	if (svc_id)
		*svc_id = e->svc_id;
	return 0;
}

int bgs_revnat_insert(struct bgs *h, const struct bgs_revnat_key *k, __u32 svc_id,
		      const struct bgs_service *svc, __u32 backend_id, const struct bgs_backend *be)
{
	__u32 home = bgs_revnat_hash(k), i;
	struct bgs_revnat_slot *e;

	if (revnat_find(h, k))
		return -EEXIST;
	for (i = 0; i < BGS_REVNAT_PROBES; i++) {
		e = &h->revnat[(home + i) & revnat_mask(h)];
		if (e->used)
			continue;
		e->key = *k;
		e->svc_id = svc_id;
		e->backend_id = backend_id;
		e->incarnation = be->incarnation;
		e->ifindex = be->ifindex;
		memcpy(e->vip, svc->vip, sizeof(e->vip));
		e->vip_port = svc->port;
		e->preview_port = svc->preview_port;
		e->pad = 0;
		__atomic_store_n(&e->used, 1, __ATOMIC_RELEASE);
		return 0;
	}
	return bgs_err(-ENOSPC, "the nat reply table has no free slot near this backend's "
		       "(%u slots, %u probes): recreate the state with more max_backends",
		       revnat_mask(h) + 1, BGS_REVNAT_PROBES);
}

int bgs_revnat_set_backend(struct bgs *h, const struct bgs_revnat_key *k, __u32 backend_id,
			   const struct bgs_backend *be)
{
	struct bgs_revnat_slot *e = revnat_find(h, k);

	if (!e)
		return -ENOENT;
	/* each an aligned 32-bit store a reply reads whole */
	__atomic_store_n(&e->ifindex, be->ifindex, __ATOMIC_RELAXED);
	__atomic_store_n(&e->incarnation, be->incarnation, __ATOMIC_RELAXED);
	__atomic_store_n(&e->backend_id, backend_id, __ATOMIC_RELEASE);
	return 0;
}

void bgs_revnat_set_preview(struct bgs *h, __u32 svc_id, __be16 preview_port)
{
	struct bgs_revnat_slot *e;
	__u32 i;

	for (i = 0; i <= revnat_mask(h); i++) {
		e = &h->revnat[i];
		if (__atomic_load_n(&e->used, __ATOMIC_ACQUIRE) && e->svc_id == svc_id)
			__atomic_store_n(&e->preview_port, preview_port, __ATOMIC_RELAXED);
	}
}

int bgs_revnat_delete(struct bgs *h, const struct bgs_revnat_key *k)
{
	struct bgs_revnat_slot *e = revnat_find(h, k);

	if (!e)
		return -ENOENT;
	/* key and service stay as they are until the slot is reused, after a sync */
	__atomic_store_n(&e->used, 0, __ATOMIC_RELEASE);
	return 0;
}

int bgs_revnat_walk(struct bgs *h, int (*cb)(const struct bgs_revnat_slot *e, void *arg),
		    void *arg)
{
	__u32 i;
	int ret;

	for (i = 0; i <= revnat_mask(h); i++) {
		if (!__atomic_load_n(&h->revnat[i].used, __ATOMIC_ACQUIRE))
			continue;
		ret = cb(&h->revnat[i], arg);
		if (ret)
			return ret;
	}
	return 0;
}
