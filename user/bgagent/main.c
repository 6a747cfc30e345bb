// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* bgagent: the command line. The daemon itself is agent.c. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "config.h"

#ifndef BGS_VERSION
#define BGS_VERSION "unknown"
#endif

static const char usage[] =
	"Usage: bgagent [--config FILE]\n"
	"       bgagent --check-config FILE\n"
	"The bgswitch daemon: applies the config (bgswitch.yaml(5)) to the pinned state,\n"
	"health-checks every backend of both colors, fails a service over to its other color\n"
	"when the live pool is unhealthy, and exports Prometheus metrics. Runs in the\n"
	"foreground; SIGHUP reloads the config, SIGTERM stops (nothing is detached).\n"
	"  -c, --config FILE         the config (default " CFG_DEFAULT_PATH ")\n"
	"      --check-config FILE   check FILE, print every error as FILE:LINE: key: problem,\n"
	"                            exit 0 if it is good; touches nothing\n"
	"  -h, --help                this text\n"
	"  -V, --version             the version\n"
	"Exit status: 0 stopped by SIGTERM or config good, 1 bad config, 2 bad usage,\n"
	"3 the pinned state or an interface could not be set up.\n";

int main(int argc, char **argv)
{
	enum { O_CHECK = 1 };
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", required_argument, NULL, O_CHECK },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL },
	};
	const char *config = CFG_DEFAULT_PATH, *check = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case O_CHECK:
			check = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'V':
			printf("bgagent %s (layout %d)\n", BGS_VERSION, BGS_LAYOUT_VERSION);
			return 0;
		default:
			fputs("bgagent: see bgagent --help\n", stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bgagent: unexpected argument '%s' (see bgagent --help)\n",
			argv[optind]);
		return 2;
	}
	if (check) {
		struct cfg_errors errs;
		struct cfg *cfg;
		int err = cfg_load(check, &cfg, &errs);

		for (unsigned int i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.lines[i]);
		cfg_errors_free(&errs);
		if (err)
			return 1;
		printf("%s: good (%u service%s, %u interface%s)\n", check, cfg->services_count,
		       cfg->services_count == 1 ? "" : "s", cfg->interfaces_count,
		       cfg->interfaces_count == 1 ? "" : "s");
		cfg_free(cfg);
		return 0;
	}
	return agent_main(config, BGS_VERSION);
}
