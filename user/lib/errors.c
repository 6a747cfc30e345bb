// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* libbgswitch's error message buffer, and test-only failure injection. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bgs_priv.h"

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
