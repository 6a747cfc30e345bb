// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Fuzz target: bgctl's argument parsing, every verb. An input is argv (words separated by
 * NUL bytes; the first is the first argument after "bgctl"). bgctl's own main (built as
 * bgctl_main) parses it as it would on the command line, but nothing it reaches can change
 * anything: the link wraps every way bgctl has to reach state (bgs_open, bgs_init,
 * bgs_history_open, fopen of the history) so that it is refused with -ECANCELED, and exit()
 * (--help) returns here. What must hold:
 * - an exit status among bgctl's documented ones (0..5);
 * - no state opened: each refused reach is counted, and a run that reached none and failed
 *   left a message;
 * - no crash, no sanitizer report, no leak.
 * A violated property aborts (libFuzzer and the corpus replay both report it as a crash).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bgctl.h"

#define MUST(cond)                                                                      \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "fuzz_cli: %s:%d: %s does not hold\n", __FILE__, \
				__LINE__, #cond);                                       \
			abort();                                                        \
		}                                                                       \
	} while (0)

#define MAX_WORDS 64

int bgctl_main(int argc, char **argv);

static bool in_target;
static jmp_buf exit_jmp;
static int exit_status;
static int refused; /* reaches for state refused during this input */

/* The wrapped entries: parse-only means every reach for state is refused. */
void __real_exit(int status) __attribute__((noreturn));
FILE *__real_fopen(const char *path, const char *mode);

void __wrap_exit(int status)
{
	if (!in_target)
		__real_exit(status);
	exit_status = status;
	longjmp(exit_jmp, 1);
}

FILE *__wrap_fopen(const char *path, const char *mode)
{
	if (!in_target)
		return __real_fopen(path, mode);
	refused++;
	errno = ECANCELED;
	return NULL;
}

int __wrap_bgs_open(const char *pin_dir, struct bgs **out)
{
	(void)pin_dir;
	*out = NULL;
	refused++;
	return -ECANCELED;
}

int __wrap_bgs_init(const char *pin_dir, const struct bgs_sizes *sizes, struct bgs **out)
{
	(void)pin_dir;
	(void)sizes;
	*out = NULL;
	refused++;
	return -ECANCELED;
}

int __wrap_bgs_history_open(const char *path, const char *actor, struct bgs_history **out)
{
	(void)path;
	(void)actor;
	*out = NULL;
	refused++;
	return -ECANCELED;
}

/* bgctl's output is not under test here: it goes to /dev/null while bgctl runs. */
static int saved_out = -1, saved_err = -1;

static void quiet(bool on)
{
	static int null_fd = -1;

	fflush(stdout);
	fflush(stderr);
	if (on) {
		if (null_fd < 0)
			null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (null_fd < 0)
			return;
		saved_out = dup(STDOUT_FILENO);
		dup2(null_fd, STDOUT_FILENO);
		if (!getenv("FUZZ_CLI_VERBOSE")) {
			saved_err = dup(STDERR_FILENO);
			dup2(null_fd, STDERR_FILENO);
		}
		return;
	}
	if (saved_out >= 0) {
		dup2(saved_out, STDOUT_FILENO);
		close(saved_out);
	}
	if (saved_err >= 0) {
		dup2(saved_err, STDERR_FILENO);
		close(saved_err);
	}
	saved_out = saved_err = -1;
}

static int run(int argc, char **argv)
{
	int rc;

	memset(&g, 0, sizeof(g));
	optind = 0; /* getopt: a full re-initialization */
	refused = 0;
	quiet(true);
	in_target = true;
	if (setjmp(exit_jmp)) {
		rc = exit_status; /* --help printed and exited */
		json_object_put(g.out);
	} else {
		rc = bgctl_main(argc, argv);
	}
	in_target = false;
	quiet(false);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the previous input's argv stays allocated until this one's exists: bgctl's option
	 * parser recognizes a new command line by its argv pointer */
	static char *prev_buf;
	static char **prev_argv;
	char *buf, **argv;
	int argc = 1, rc;
	size_t i;

	if (size > 4096)
		return 0;
	buf = malloc(size + 1);
	argv = calloc(MAX_WORDS + 2, sizeof(*argv));
	MUST(buf && argv);
	memcpy(buf, data, size);
	buf[size] = '\0';
	argv[0] = "bgctl";
	for (i = 0; i <= size && argc <= MAX_WORDS; i++) {
		if (i == 0 || buf[i - 1] == '\0') {
			if (i == size)
				break; /* a trailing NUL ends the last word, it starts none */
			argv[argc++] = buf + i;
		}
	}
	argv[argc] = NULL;

	rc = run(argc, argv);
	MUST(rc >= 0 && rc <= 5);
	MUST(g.h == NULL);
	if (rc != 0 && !refused)
		MUST(g.err[0] != '\0');

	free(prev_buf);
	free(prev_argv);
	prev_buf = buf;
	prev_argv = argv;
	return 0;
}
