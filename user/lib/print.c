// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The libbpf print hook: libbpf's messages, minus one known harmless warning. */
#include <stdarg.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "bgs_priv.h"

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
