// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Fuzz target: bgagent's config loader (libcyaml on libyaml, plus the line-finding pass and
 * the value checks). Each input is a config file. What must hold:
 * - it loads (a config and no error) or it is refused (a negative errno and at least one error);
 * - every error is one line that starts with "FILE:LINE: " (LINE a positive number);
 * - nothing leaks (the replay runs under LeakSanitizer).
 * The loader writes nothing: a rejected input leaves no state anywhere.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

#define MUST(cond)                                                                       \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "fuzz_config: %s:%d: %s does not hold\n", __FILE__, \
				__LINE__, #cond);                                        \
			abort();                                                         \
		}                                                                        \
	} while (0)

static void error_well_formed(const char *line, const char *file)
{
	size_t n = strlen(file);
	const char *p;

	MUST(!strncmp(line, file, n) && line[n] == ':');
	p = line + n + 1;
	MUST(*p >= '1' && *p <= '9');
	while (*p >= '0' && *p <= '9')
		p++;
	MUST(p[0] == ':' && p[1] == ' ');
	MUST(!strchr(line, '\n'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_errors errs = {};
	struct cfg *c = NULL;
	char file[64];
	int fd, err;

	if (size > 65536)
		return 0;
	fd = memfd_create("fuzz_config", 0);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	snprintf(file, sizeof(file), "/proc/self/fd/%d", fd);
	err = cfg_load(file, &c, &errs);
	if (!err) {
		MUST(c && errs.n == 0);
		cfg_free(c);
	} else {
		MUST(err < 0 && !c && errs.n >= 1);
		for (unsigned int i = 0; i < errs.n; i++)
			error_well_formed(errs.lines[i], file);
	}
	cfg_errors_free(&errs);
	close(fd);
	return 0;
}
