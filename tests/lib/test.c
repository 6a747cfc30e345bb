// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The test runner and failure reporting behind test.h. */
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>

#include "test.h"

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long fails;
static unsigned long fails_printed;
static char skip_reason[256];
static bool skipped;
static __thread char ctx[160];

/* A broken fixture can fail thousands of packets; print the first ones only. */
#define MAX_PRINTED_FAILS 40

void test_failf(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&out_lock);
	fails++;
	if (fails_printed++ < MAX_PRINTED_FAILS) {
		printf("    %s:%d: ", file, line);
		if (ctx[0])
			printf("[%s] ", ctx);
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n");
	} else if (fails_printed == MAX_PRINTED_FAILS + 1) {
		printf("    (further failures not printed)\n");
	}
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

void test_logf(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&out_lock);
	printf("    ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

void test_skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(skip_reason, sizeof(skip_reason), fmt, ap);
	va_end(ap);
	skipped = true;
}

void test_ctx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
}

unsigned long test_fail_count(void)
{
	unsigned long n;

	pthread_mutex_lock(&out_lock);
	n = fails;
	pthread_mutex_unlock(&out_lock);
	return n;
}

static bool selected(const char *name, int argc, char **argv)
{
	int i;

	if (argc <= 1)
		return true;
	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], name))
			return true;
	return false;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int test_run_all(const char *prog, const struct test_case *tests, int n, int argc, char **argv)
{
	int i, passed = 0, failed = 0, nskipped = 0;
	const char *base = strrchr(prog, '/') ? strrchr(prog, '/') + 1 : prog;

	for (i = 0; i < n; i++) {
		unsigned long before;
		double t0;
		bool ok;

		if (!selected(tests[i].name, argc, argv))
			continue;
		before = test_fail_count();
		skipped = false;
		fails_printed = 0;
		test_ctx("%s", "");
		t0 = now_s();
		ok = tests[i].fn();
		/* A failed ASSERT anywhere (other threads too) fails the test. */
		if (test_fail_count() != before)
			ok = false;
		if (!ok) {
			printf("FAIL %s/%s (%.2f s)\n", base, tests[i].name, now_s() - t0);
			failed++;
		} else if (skipped) {
			printf("skip %s/%s: %s\n", base, tests[i].name, skip_reason);
			nskipped++;
		} else {
			printf("ok %s/%s (%.2f s)\n", base, tests[i].name, now_s() - t0);
			passed++;
		}
		fflush(stdout);
	}
	if (failed)
		return 1;
	if (!passed && nskipped)
		return TEST_EXIT_SKIP;
	return 0;
}

int test_skip_all(const char *prog, const struct test_case *tests, int n, const char *reason)
{
	const char *base = strrchr(prog, '/') ? strrchr(prog, '/') + 1 : prog;
	int i;

	for (i = 0; i < n; i++)
		printf("skip %s/%s: %s\n", base, tests[i].name, reason);
	fflush(stdout);
	return TEST_EXIT_SKIP;
}
