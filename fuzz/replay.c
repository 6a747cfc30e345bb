// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Corpus replay for a fuzz target, built with gcc and ASan/UBSan into a test binary: runs the
 * target's LLVMFuzzerTestOneInput on every file of its committed corpus (fuzz/corpus/NAME) and
 * reports in the tests' format. Any crash, sanitizer report or violated property fails it.
 * `make fuzz` runs the same targets under libFuzzer to grow the corpus.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
	uint8_t *buf;
	long n;
	FILE *f = fopen(path, "rb");

	if (!f)
		return -1;
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		fclose(f);
		return -1;
	}
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return 0;
}

int main(void)
{
	char path[4096];
	struct dirent *de;
	int n = 0, bad = 0;
	DIR *d = opendir(FUZZ_CORPUS);

	if (!d) {
		printf("FAIL %s/corpus: cannot open %s\n", FUZZ_NAME, FUZZ_CORPUS);
		return 1;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", FUZZ_CORPUS, de->d_name);
		if (replay_file(path)) {
			printf("    cannot read %s\n", path);
			bad++;
			continue;
		}
		n++;
	}
	closedir(d);
	if (bad || n == 0) {
		printf("FAIL %s/corpus: %d inputs replayed, %d unreadable\n", FUZZ_NAME, n, bad);
		return 1;
	}
	printf("ok %s/corpus (%d inputs)\n", FUZZ_NAME, n);
	return 0;
}
