// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdio.h>

#include "agent.h"

int agent_main(const char *config_path, const char *version)
{
	(void)version;
	fprintf(stderr, "bgagent: %s: running the daemon is not built yet\n", config_path);
	return 3;
}
