/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * bgagent's configuration: the YAML file (bgswitch.yaml(5)) loaded by libcyaml into the
 * structs below, after a libyaml event pass that checks the same schema and remembers the
 * line of every key, so that every error comes out as `FILE:LINE: key: problem`.
 *
 * Fields marked "from YAML" are filled by libcyaml; the others are derived by
 * cfg_load's checks (parsed addresses, durations in ms, defaults applied).
 */
#ifndef BGAGENT_CONFIG_H
#define BGAGENT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "libbgswitch.h"

#define CFG_DEFAULT_PATH "/etc/bgswitch/bgswitch.yaml"
#define CFG_DEFAULT_HISTORY "/var/lib/bgswitch/history.jsonl"
#define CFG_DEFAULT_STATE "/var/lib/bgswitch/bgagent.json"
#define CFG_DEFAULT_LISTEN "127.0.0.1:9469"

enum cfg_check_type {
	CHECK_TCP = 0,
	CHECK_HTTP = 1,
	CHECK_HTTPS = 2,
	CHECK_EXEC = 3,
};

struct cfg_iface {
	char *name;   /* from YAML */
	int xdp_mode; /* from YAML: enum bgs_xdp_mode */
};

struct cfg_backend {
	char *address;	 /* from YAML: "ADDR:PORT", "[V6]:PORT" (dsr: ":PORT" may be left out) */
	uint32_t *weight; /* from YAML; NULL: 100 */
	struct bgs_backend_spec spec;
};

struct cfg_pools {
	struct cfg_backend *blue; /* from YAML */
	uint32_t blue_count;
	struct cfg_backend *green; /* from YAML */
	uint32_t green_count;
};

struct cfg_check {
	int type;		 /* from YAML: enum cfg_check_type; default tcp */
	char *path;		 /* from YAML: http(s) request path; default "/" */
	uint32_t *expect_status; /* from YAML: default 200 */
	char *command;		 /* from YAML: exec */
	char *interval;		 /* from YAML: default 1s */
	char *timeout;		 /* from YAML: default 500ms, at most the interval */
	uint32_t *rise;		 /* from YAML: default 2 */
	uint32_t *fall;		 /* from YAML: default 3 */
	uint32_t *port;		 /* from YAML: check this port instead of the backend's */
	uint64_t interval_ms;
	uint64_t timeout_ms;
	uint32_t rise_n, fall_n, status;
};

struct cfg_failover {
	bool *enabled;	   /* from YAML: default true */
	char *min_healthy; /* from YAML: "50%"; default 50% */
	char *hold_down;   /* from YAML: default 60s */
	bool on;
	uint32_t min_healthy_pct;
	uint64_t hold_down_ms;
};

struct cfg_post_flip {
	char *bake_time; /* from YAML */
	uint32_t *max_reset_rate;
	uint32_t *max_unhealthy;
	uint64_t bake_ms;
};

struct cfg_step {
	uint32_t *canary; /* from YAML: percent 1..100 */
	char *pause;	  /* from YAML */
	bool *promote;	  /* from YAML */
	uint64_t pause_ms;
};

struct cfg_gate {
	char *command; /* from YAML */
	char *timeout; /* from YAML: default 60s */
	uint64_t timeout_ms;
};

struct cfg_rollout {
	char *strategy; /* from YAML: a preset's name */
	struct cfg_step *steps;
	uint32_t steps_count;
	struct cfg_gate *pre_flip_gate;
};

struct cfg_preview {
	uint32_t *port;	 /* from YAML: nat only */
	char **prefixes; /* from YAML */
	uint32_t prefixes_count;
	struct bgs_prefix *pfx; /* parsed prefixes (prefixes_count) */
};

struct cfg_service {
	char *name;	     /* from YAML */
	char *vip;	     /* from YAML: "ADDR:PORT/tcp|udp" */
	int mode;	     /* from YAML: enum bgs_mode; default nat */
	char *drain_timeout; /* from YAML: default 5m; "none": no deadline */
	char *on_drained;    /* from YAML: command run when a drain ends */
	struct cfg_preview *preview;
	struct cfg_pools pools;
	struct cfg_check *health_check;
	struct cfg_failover *failover;
	struct cfg_post_flip *post_flip_check;
	struct cfg_rollout *rollout;
	struct bgs_service_spec spec;
	uint64_t drain_ms; /* BGS_NO_DEADLINE: none */
	struct cfg_check check;	  /* health_check with its defaults */
	struct cfg_failover fo;	  /* failover with its defaults */
};

/* The data plane's flow timeouts, used when the agent creates the pinned state (bgs_init). */
struct cfg_timeouts {
	/* from YAML, in the order of struct bgs_flow_timeouts: durations in whole seconds */
	char *tcp_syn, *tcp_est, *tcp_close, *udp, *time_wait, *health_grace;
	struct bgs_flow_timeouts t; /* 0: not given (the default); BGS_TIMEOUT_ZERO: 0 s */
};

struct cfg_metrics {
	char *listen; /* from YAML: "ADDR:PORT" */
};

struct cfg {
	char *pin_dir; /* from YAML: default BGS_DEFAULT_PIN_DIR */
	struct cfg_iface *interfaces;
	uint32_t interfaces_count;
	struct cfg_metrics *metrics;
	struct cfg_service *services;
	uint32_t services_count;
	char *history_file;	/* from YAML: audit history shared with bgctl */
	char *state_file;	/* from YAML: what the agent last applied (drift detection) */
	bool *upgrade_on_start; /* from YAML: default true */
	struct cfg_timeouts *timeouts; /* from YAML: NULL takes the library's defaults */
	/* derived */
	char listen_host[64];
	uint16_t listen_port;
	bool upgrade;
};

/* Errors found while loading: each a full `FILE:LINE: key: problem` line. */
struct cfg_errors {
	char **lines;
	unsigned int n;
};

/*
 * Load and check FILE. On success *out is the config (cfg_free it). On failure returns a
 * negative errno and errs holds every problem found (libyaml syntax errors stop the pass at
 * the first one; schema and value errors are all reported).
 */
int cfg_load(const char *file, struct cfg **out, struct cfg_errors *errs);
void cfg_free(struct cfg *c);
void cfg_errors_free(struct cfg_errors *errs);

const char *cfg_check_type_name(int type);

#endif /* BGAGENT_CONFIG_H */
