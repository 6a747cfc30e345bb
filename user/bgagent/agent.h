/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef BGAGENT_AGENT_H
#define BGAGENT_AGENT_H

/* Run the daemon on the config file until SIGTERM; returns the exit status. */
int agent_main(const char *config_path, const char *version);

#endif
