/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Minimal test harness in the style of the kernel's BPF selftests: bool-returning ASSERT_*
 * macros that print what was expected and what came instead, and a runner that prints one
 * line per sub-test for tests/run.sh to tally:
 *
 *	ok <binary>/<test>
 *	FAIL <binary>/<test>
 *	skip <binary>/<test>: <reason>
 *
 * Diagnostics are indented. A binary exits 0 (all passed or skipped, at least one passed),
 * 1 (something failed) or 249 (everything skipped).
 */
#ifndef BGS_TEST_H
#define BGS_TEST_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <linux/types.h>

#include "libbgswitch.h"

#define TEST_EXIT_SKIP 249

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

/* One sub-test: returns true on pass. It may call test_skip() and return true to skip. */
struct test_case {
	const char *name;
	bool (*fn)(void);
};

/* Print a failure diagnostic (with the current context, if any). Thread-safe. */
void test_failf(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Print an indented informational line. */
void test_logf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Mark the running sub-test skipped, with a reason. */
void test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Context printed with every failure of this thread until changed ("" clears it): the
 * fixture being checked, e.g. "v6/udp/nat flip". */
void test_ctx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Number of failures reported so far (all threads). */
unsigned long test_fail_count(void);

/* Run the sub-tests named on the command line (all when none), print one line each.
 * Returns the exit status. */
int test_run_all(const char *prog, const struct test_case *tests, int n, int argc, char **argv);
/* Print a skip line for every sub-test (the whole binary cannot run) and return 249. */
int test_skip_all(const char *prog, const struct test_case *tests, int n, const char *reason);

#define FAILF(...) test_failf(__FILE__, __LINE__, __VA_ARGS__)

#define ASSERT_TRUE(cond, what)                                                   \
	({                                                                        \
		bool ___ok = !!(cond);                                            \
		if (!___ok)                                                       \
			FAILF("%s: expected true: %s", (what), #cond);            \
		___ok;                                                            \
	})

#define ASSERT_FALSE(cond, what)                                                  \
	({                                                                        \
		bool ___ok = !(cond);                                             \
		if (!___ok)                                                       \
			FAILF("%s: expected false: %s", (what), #cond);           \
		___ok;                                                            \
	})

#define ASSERT_CMP(a, op, b, what)                                                \
	({                                                                        \
		long long ___a = (long long)(a), ___b = (long long)(b);           \
		bool ___ok = ___a op ___b;                                        \
		if (!___ok)                                                       \
			FAILF("%s: expected %s " #op " %s, got %lld (0x%llx) vs %lld (0x%llx)", \
			      (what), #a, #b, ___a, (unsigned long long)___a, ___b,    \
			      (unsigned long long)___b);                          \
		___ok;                                                            \
	})

#define ASSERT_EQ(a, b, what) ASSERT_CMP(a, ==, b, what)
#define ASSERT_NEQ(a, b, what) ASSERT_CMP(a, !=, b, what)
#define ASSERT_LT(a, b, what) ASSERT_CMP(a, <, b, what)
#define ASSERT_LE(a, b, what) ASSERT_CMP(a, <=, b, what)
#define ASSERT_GT(a, b, what) ASSERT_CMP(a, >, b, what)
#define ASSERT_GE(a, b, what) ASSERT_CMP(a, >=, b, what)

/* A libbgswitch call returning 0 / negative errno; prints bgs_errmsg() on failure. */
#define ASSERT_OK(expr, what)                                                     \
	({                                                                        \
		long long ___r = (long long)(expr);                               \
		bool ___ok = ___r >= 0;                                           \
		if (!___ok)                                                       \
			FAILF("%s: %s returned %lld (%s); bgs_errmsg: %s", (what), #expr, \
			      ___r, strerror((int)-___r), bgs_errmsg());          \
		___ok;                                                            \
	})

/* Expect a specific negative errno. */
#define ASSERT_ERR(expr, err, what)                                               \
	({                                                                        \
		long long ___r = (long long)(expr);                               \
		bool ___ok = ___r == (long long)(err);                            \
		if (!___ok)                                                       \
			FAILF("%s: %s returned %lld, expected %lld (%s)", (what), #expr, \
			      ___r, (long long)(err), strerror((int)-(err)));     \
		___ok;                                                            \
	})

#define ASSERT_MEMEQ(a, b, n, what)                                               \
	({                                                                        \
		bool ___ok = memcmp((a), (b), (n)) == 0;                          \
		if (!___ok)                                                       \
			FAILF("%s: %zu bytes differ", (what), (size_t)(n));       \
		___ok;                                                            \
	})

#define ASSERT_STRSTR(hay, needle, what)                                          \
	({                                                                        \
		const char *___h = (hay);                                         \
		bool ___ok = ___h && strstr(___h, (needle));                      \
		if (!___ok)                                                       \
			FAILF("%s: \"%s\" does not contain \"%s\"", (what),       \
			      ___h ? ___h : "(null)", (needle));                  \
		___ok;                                                            \
	})

#endif /* BGS_TEST_H */
