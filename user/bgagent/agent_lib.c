// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* bgagent's adapter over libbgswitch (see agent_lib.h; EMULATED parts are marked). */
#include <string.h>
#include <net/if.h>
#include <xdp/libxdp.h>

#include "agent_lib.h"

/* The name libbgswitch gives its entry program (user/lib/bgs_priv.h, not public). */
#define ENTRY_PROG_NAME "bgs_entry"

bool al_attached(const char *ifname)
{
	unsigned int ifindex = if_nametoindex(ifname);
	struct xdp_multiprog *mp;
	struct xdp_program *p = NULL;
	bool found = false;

	if (!ifindex)
		return false;
	mp = xdp_multiprog__get_from_ifindex((int)ifindex);
	if (libxdp_get_error(mp))
		return false;
	if (xdp_multiprog__is_legacy(mp)) {
		p = xdp_multiprog__main_prog(mp);
		found = p && !strcmp(xdp_program__name(p), ENTRY_PROG_NAME);
	} else {
		while ((p = xdp_multiprog__next_prog(p, mp)))
			if (!strcmp(xdp_program__name(p), ENTRY_PROG_NAME))
				found = true;
	}
	xdp_multiprog__close(mp);
	return found;
}

int al_attach(struct bgs *h, const char *ifname, int xdp_mode, bool *done)
{
	*done = false;
	if (al_attached(ifname))
		return 0;
	*done = true;
	return bgs_attach(h, ifname, (enum bgs_xdp_mode)xdp_mode);
}
