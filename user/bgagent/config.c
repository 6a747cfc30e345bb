// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Loading bgswitch.yaml. libcyaml maps the document onto the structs of config.h, but it stops
 * at the first problem and knows no line numbers. So the file is read twice: first a libyaml
 * event pass walks the document along the very same cyaml schema (unknown or repeated keys,
 * a list where a mapping belongs, integers, booleans and enum values) collecting every error
 * with its line and remembering the line of each key; then, if that pass is clean, libcyaml
 * loads it, and the values are checked (addresses, durations, ranges) with the lines found by
 * the first pass.
 */
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cyaml/cyaml.h>
#include <yaml.h>

#include "config.h"

#define MAX_ERRORS 200
#define PATH_MAX_LEN 256

/* ---- Schema ---- */

static const cyaml_strval_t xdp_modes[] = {
	{ "native", BGS_XDP_NATIVE },
	{ "generic", BGS_XDP_GENERIC },
};

static const cyaml_strval_t modes[] = {
	{ "nat", BGS_MODE_NAT },
	{ "dsr", BGS_MODE_DSR },
};

static const cyaml_strval_t check_types[] = {
	{ "tcp", CHECK_TCP },
	{ "http", CHECK_HTTP },
	{ "https", CHECK_HTTPS },
	{ "exec", CHECK_EXEC },
};

static const cyaml_schema_value_t string_ptr = {
	CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};

static const cyaml_schema_field_t iface_fields[] = {
	CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_DEFAULT, struct cfg_iface, name, 1, IFNAMSIZ - 1),
	CYAML_FIELD_ENUM("xdp_mode", CYAML_FLAG_OPTIONAL, struct cfg_iface, xdp_mode, xdp_modes,
			 CYAML_ARRAY_LEN(xdp_modes)),
	CYAML_FIELD_END
};

static const cyaml_schema_value_t iface_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct cfg_iface, iface_fields),
};

static const cyaml_schema_field_t metrics_fields[] = {
	CYAML_FIELD_STRING_PTR("listen", CYAML_FLAG_OPTIONAL, struct cfg_metrics, listen, 1, 80),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t backend_fields[] = {
	CYAML_FIELD_STRING_PTR("address", CYAML_FLAG_DEFAULT, struct cfg_backend, address, 1, 80),
	CYAML_FIELD_UINT_PTR("weight", CYAML_FLAG_OPTIONAL, struct cfg_backend, weight),
	CYAML_FIELD_END
};

static const cyaml_schema_value_t backend_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct cfg_backend, backend_fields),
};

static const cyaml_schema_field_t pools_fields[] = {
	CYAML_FIELD_SEQUENCE("blue", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct cfg_pools,
			     blue, &backend_entry, 0, BGS_MAX_POOL_BACKENDS),
	CYAML_FIELD_SEQUENCE("green", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct cfg_pools,
			     green, &backend_entry, 0, BGS_MAX_POOL_BACKENDS),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t check_fields[] = {
	CYAML_FIELD_ENUM("type", CYAML_FLAG_OPTIONAL, struct cfg_check, type, check_types,
			 CYAML_ARRAY_LEN(check_types)),
	CYAML_FIELD_STRING_PTR("path", CYAML_FLAG_OPTIONAL, struct cfg_check, path, 1, 1024),
	CYAML_FIELD_UINT_PTR("expect_status", CYAML_FLAG_OPTIONAL, struct cfg_check,
			     expect_status),
	CYAML_FIELD_STRING_PTR("command", CYAML_FLAG_OPTIONAL, struct cfg_check, command, 1, 4096),
	CYAML_FIELD_STRING_PTR("interval", CYAML_FLAG_OPTIONAL, struct cfg_check, interval, 1, 32),
	CYAML_FIELD_STRING_PTR("timeout", CYAML_FLAG_OPTIONAL, struct cfg_check, timeout, 1, 32),
	CYAML_FIELD_UINT_PTR("rise", CYAML_FLAG_OPTIONAL, struct cfg_check, rise),
	CYAML_FIELD_UINT_PTR("fall", CYAML_FLAG_OPTIONAL, struct cfg_check, fall),
	CYAML_FIELD_UINT_PTR("port", CYAML_FLAG_OPTIONAL, struct cfg_check, port),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t failover_fields[] = {
	CYAML_FIELD_BOOL_PTR("enabled", CYAML_FLAG_OPTIONAL, struct cfg_failover, enabled),
	CYAML_FIELD_STRING_PTR("min_healthy", CYAML_FLAG_OPTIONAL, struct cfg_failover,
			       min_healthy, 1, 16),
	CYAML_FIELD_STRING_PTR("hold_down", CYAML_FLAG_OPTIONAL, struct cfg_failover, hold_down, 1,
			       32),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t post_flip_fields[] = {
	CYAML_FIELD_STRING_PTR("bake_time", CYAML_FLAG_OPTIONAL, struct cfg_post_flip, bake_time,
			       1, 32),
	CYAML_FIELD_UINT_PTR("max_reset_rate", CYAML_FLAG_OPTIONAL, struct cfg_post_flip,
			     max_reset_rate),
	CYAML_FIELD_UINT_PTR("max_unhealthy", CYAML_FLAG_OPTIONAL, struct cfg_post_flip,
			     max_unhealthy),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t step_fields[] = {
	CYAML_FIELD_UINT_PTR("canary", CYAML_FLAG_OPTIONAL, struct cfg_step, canary),
	CYAML_FIELD_STRING_PTR("pause", CYAML_FLAG_OPTIONAL, struct cfg_step, pause, 1, 32),
	CYAML_FIELD_BOOL_PTR("promote", CYAML_FLAG_OPTIONAL, struct cfg_step, promote),
	CYAML_FIELD_END
};

static const cyaml_schema_value_t step_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct cfg_step, step_fields),
};

static const cyaml_schema_field_t gate_fields[] = {
	CYAML_FIELD_STRING_PTR("command", CYAML_FLAG_DEFAULT, struct cfg_gate, command, 1, 4096),
	CYAML_FIELD_STRING_PTR("timeout", CYAML_FLAG_OPTIONAL, struct cfg_gate, timeout, 1, 32),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t rollout_fields[] = {
	CYAML_FIELD_STRING_PTR("strategy", CYAML_FLAG_OPTIONAL, struct cfg_rollout, strategy, 1,
			       64),
	CYAML_FIELD_SEQUENCE("steps", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct cfg_rollout,
			     steps, &step_entry, 1, 100),
	CYAML_FIELD_MAPPING_PTR("pre_flip_gate", CYAML_FLAG_OPTIONAL, struct cfg_rollout,
				pre_flip_gate, gate_fields),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t preview_fields[] = {
	CYAML_FIELD_UINT_PTR("port", CYAML_FLAG_OPTIONAL, struct cfg_preview, port),
	CYAML_FIELD_SEQUENCE("prefixes", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
			     struct cfg_preview, prefixes, &string_ptr, 0, 4096),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t service_fields[] = {
	CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_DEFAULT, struct cfg_service, name, 1,
			       BGS_NAME_MAX - 1),
	CYAML_FIELD_STRING_PTR("vip", CYAML_FLAG_DEFAULT, struct cfg_service, vip, 1, 80),
	CYAML_FIELD_ENUM("mode", CYAML_FLAG_OPTIONAL, struct cfg_service, mode, modes,
			 CYAML_ARRAY_LEN(modes)),
	CYAML_FIELD_STRING_PTR("drain_timeout", CYAML_FLAG_OPTIONAL, struct cfg_service,
			       drain_timeout, 1, 32),
	CYAML_FIELD_STRING_PTR("on_drained", CYAML_FLAG_OPTIONAL, struct cfg_service, on_drained,
			       1, 4096),
	CYAML_FIELD_MAPPING_PTR("preview", CYAML_FLAG_OPTIONAL, struct cfg_service, preview,
				preview_fields),
	CYAML_FIELD_MAPPING("pools", CYAML_FLAG_DEFAULT, struct cfg_service, pools, pools_fields),
	CYAML_FIELD_MAPPING_PTR("health_check", CYAML_FLAG_OPTIONAL, struct cfg_service,
				health_check, check_fields),
	CYAML_FIELD_MAPPING_PTR("failover", CYAML_FLAG_OPTIONAL, struct cfg_service, failover,
				failover_fields),
	CYAML_FIELD_MAPPING_PTR("post_flip_check", CYAML_FLAG_OPTIONAL, struct cfg_service,
				post_flip_check, post_flip_fields),
	CYAML_FIELD_MAPPING_PTR("rollout", CYAML_FLAG_OPTIONAL, struct cfg_service, rollout,
				rollout_fields),
	CYAML_FIELD_END
};

static const cyaml_schema_value_t service_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct cfg_service, service_fields),
};

static const cyaml_schema_field_t timeouts_fields[] = {
	CYAML_FIELD_STRING_PTR("tcp_syn", CYAML_FLAG_OPTIONAL, struct cfg_timeouts, tcp_syn, 1,
			       32),
	CYAML_FIELD_STRING_PTR("tcp_est", CYAML_FLAG_OPTIONAL, struct cfg_timeouts, tcp_est, 1,
			       32),
	CYAML_FIELD_STRING_PTR("tcp_close", CYAML_FLAG_OPTIONAL, struct cfg_timeouts, tcp_close,
			       1, 32),
	CYAML_FIELD_STRING_PTR("udp", CYAML_FLAG_OPTIONAL, struct cfg_timeouts, udp, 1, 32),
	CYAML_FIELD_STRING_PTR("time_wait", CYAML_FLAG_OPTIONAL, struct cfg_timeouts, time_wait,
			       1, 32),
	CYAML_FIELD_STRING_PTR("health_grace", CYAML_FLAG_OPTIONAL, struct cfg_timeouts,
			       health_grace, 1, 32),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t top_fields[] = {
	CYAML_FIELD_STRING_PTR("pin_dir", CYAML_FLAG_OPTIONAL, struct cfg, pin_dir, 1, 1024),
	CYAML_FIELD_SEQUENCE("interfaces", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct cfg,
			     interfaces, &iface_entry, 0, 64),
	CYAML_FIELD_MAPPING_PTR("metrics", CYAML_FLAG_OPTIONAL, struct cfg, metrics,
				metrics_fields),
	CYAML_FIELD_SEQUENCE("services", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct cfg,
			     services, &service_entry, 0, 65536),
	CYAML_FIELD_STRING_PTR("history_file", CYAML_FLAG_OPTIONAL, struct cfg, history_file, 1,
			       1024),
	CYAML_FIELD_STRING_PTR("state_file", CYAML_FLAG_OPTIONAL, struct cfg, state_file, 1, 1024),
	CYAML_FIELD_BOOL_PTR("upgrade_on_start", CYAML_FLAG_OPTIONAL, struct cfg,
			     upgrade_on_start),
	CYAML_FIELD_MAPPING_PTR("timeouts", CYAML_FLAG_OPTIONAL, struct cfg, timeouts,
				timeouts_fields),
	CYAML_FIELD_END
};

static const cyaml_schema_value_t top_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct cfg, top_fields),
};

static const cyaml_config_t cyaml_cfg = {
	.log_fn = NULL, /* its errors are found, with lines, by the event pass first */
	.mem_fn = cyaml_mem,
	.log_level = CYAML_LOG_ERROR,
	.flags = CYAML_CFG_DEFAULT,
};

/* ---- Errors and the lines of keys ---- */

struct line_map {
	char **paths;
	unsigned int *lines;
	unsigned int n, cap;
};

struct loader {
	const char *file;
	struct cfg_errors *errs;
	struct line_map map;
	yaml_parser_t parser;
	yaml_event_t ev;
	bool have_ev;
	bool syntax_error;
};

__attribute__((format(printf, 4, 5))) static void add_err(struct loader *ld, unsigned int line,
							   const char *key, const char *fmt, ...)
{
	char msg[512], *s;
	va_list ap;
	char **n;

	if (ld->errs->n >= MAX_ERRORS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (asprintf(&s, "%s:%u: %s: %s", ld->file, line, key && *key ? key : "(document)", msg) <
	    0)
		return;
	/* one line each: a multi-line scalar or key quoted in it shows its breaks as '?' */
	for (char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	n = realloc(ld->errs->lines, (ld->errs->n + 1) * sizeof(*n));
	if (!n) {
		free(s);
		return;
	}
	ld->errs->lines = n;
	ld->errs->lines[ld->errs->n++] = s;
}

/* A key's path for messages; one that does not fit is cut (it only names the key). */
__attribute__((format(printf, 3, 4))) static void pathf(char *buf, size_t len, const char *fmt,
							 ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static void map_add(struct line_map *m, const char *path, unsigned int line)
{
	if (m->n == m->cap) {
		unsigned int cap = m->cap ? m->cap * 2 : 64;
		char **p = realloc(m->paths, cap * sizeof(*p));
		unsigned int *l;

		if (!p)
			return;
		m->paths = p;
		l = realloc(m->lines, cap * sizeof(*l));
		if (!l)
			return;
		m->lines = l;
		m->cap = cap;
	}
	m->paths[m->n] = strdup(path);
	if (m->paths[m->n])
		m->lines[m->n++] = line;
}

/* Line of a key; of its closest parent that is in the file when it is absent (a missing
 * key is reported where its mapping begins); 1 for a whole-document problem. */
static unsigned int line_of(const struct loader *ld, const char *path)
{
	char p[PATH_MAX_LEN];
	char *cut;

	pathf(p, sizeof(p), "%s", path);
	for (;;) {
		for (unsigned int i = 0; i < ld->map.n; i++)
			if (!strcmp(ld->map.paths[i], p))
				return ld->map.lines[i];
		cut = strrchr(p, '.');
		if (!cut || (strrchr(p, '[') && strrchr(p, '[') > cut))
			cut = strrchr(p, '[');
		if (!cut)
			return 1;
		*cut = '\0';
	}
}

static void map_free(struct line_map *m)
{
	for (unsigned int i = 0; i < m->n; i++)
		free(m->paths[i]);
	free(m->paths);
	free(m->lines);
	memset(m, 0, sizeof(*m));
}

/* ---- The event pass ---- */

static int next_event(struct loader *ld)
{
	if (ld->have_ev)
		yaml_event_delete(&ld->ev);
	ld->have_ev = false;
	if (!yaml_parser_parse(&ld->parser, &ld->ev)) {
		add_err(ld, (unsigned int)ld->parser.problem_mark.line + 1, NULL,
			"YAML syntax: %s%s%s", ld->parser.problem ? ld->parser.problem : "error",
			ld->parser.context ? " " : "", ld->parser.context ? ld->parser.context : "");
		ld->syntax_error = true;
		return -EINVAL;
	}
	ld->have_ev = true;
	return 0;
}

static unsigned int ev_line(const struct loader *ld)
{
	return (unsigned int)ld->ev.start_mark.line + 1;
}

static const char *kind_name(const cyaml_schema_value_t *s)
{
	switch (s->type) {
	case CYAML_MAPPING:
		return "a mapping";
	case CYAML_SEQUENCE:
	case CYAML_SEQUENCE_FIXED:
		return "a list";
	case CYAML_INT:
	case CYAML_UINT:
		return "an integer";
	case CYAML_BOOL:
		return "true or false";
	default:
		return "a single value";
	}
}

/* Skip the value whose first event is current (the whole subtree). */
static int skip_value(struct loader *ld)
{
	int depth = 0, err;

	do {
		switch (ld->ev.type) {
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT:
			depth++;
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			depth--;
			break;
		default:
			break;
		}
		if (depth == 0)
			return 0;
		err = next_event(ld);
		if (err)
			return err;
	} while (depth > 0);
	return 0;
}

static void check_scalar(struct loader *ld, const cyaml_schema_value_t *s, const char *path)
{
	const char *v = (const char *)ld->ev.data.scalar.value;
	unsigned int line = ev_line(ld);
	char *end;

	switch (s->type) {
	case CYAML_UINT:
	case CYAML_INT: {
		unsigned long long n;

		errno = 0;
		n = strtoull(v, &end, 10);
		if (!*v || *v == '-' || *v == '+' || *end || errno)
			add_err(ld, line, path, "'%s' is not a whole number", v);
		else if (s->data_size == 4 && n > UINT32_MAX)
			add_err(ld, line, path, "%s is too large", v);
		break;
	}
	case CYAML_BOOL:
		if (strcasecmp(v, "true") && strcasecmp(v, "false") && strcasecmp(v, "yes") &&
		    strcasecmp(v, "no") && strcasecmp(v, "on") && strcasecmp(v, "off"))
			add_err(ld, line, path, "'%s' is not true or false", v);
		break;
	case CYAML_ENUM: {
		char list[256] = "";
		bool found = false;

		for (uint32_t i = 0; i < s->enumeration.count; i++) {
			if (!strcmp(v, s->enumeration.strings[i].str))
				found = true;
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 i ? ", " : "", s->enumeration.strings[i].str);
		}
		if (!found)
			add_err(ld, line, path, "'%s' is not one of: %s", v, list);
		break;
	}
	case CYAML_STRING:
		if (strlen(v) < s->string.min)
			add_err(ld, line, path, "must not be empty");
		else if (strlen(v) > s->string.max)
			add_err(ld, line, path, "longer than %u characters", s->string.max);
		break;
	default:
		break;
	}
}

static int walk_value(struct loader *ld, const cyaml_schema_value_t *s, const char *path);

static int walk_mapping(struct loader *ld, const cyaml_schema_value_t *s, const char *path)
{
	const cyaml_schema_field_t *fields = s->mapping.fields;
	unsigned int start = ev_line(ld), nf = 0;
	char sub[PATH_MAX_LEN];
	bool seen[64] = {};
	int err;

	while (fields[nf].key)
		nf++;
	for (;;) {
		const cyaml_schema_field_t *f = NULL;
		const char *key;
		unsigned int i;

		err = next_event(ld);
		if (err)
			return err;
		if (ld->ev.type == YAML_MAPPING_END_EVENT)
			break;
		if (ld->ev.type != YAML_SCALAR_EVENT) {
			add_err(ld, ev_line(ld), path, "a key must be a plain name");
			err = skip_value(ld);
			if (!err)
				err = next_event(ld);
			if (!err)
				err = skip_value(ld);
			if (err)
				return err;
			continue;
		}
		key = (const char *)ld->ev.data.scalar.value;
		pathf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", key);
		for (i = 0; i < nf; i++) {
			if (!strcmp(fields[i].key, key)) {
				f = &fields[i];
				break;
			}
		}
		if (!f) {
			char list[512] = "";

			for (unsigned int j = 0; j < nf; j++)
				snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
					 j ? ", " : "", fields[j].key);
			add_err(ld, ev_line(ld), sub, "unknown key (expected one of: %s)", list);
		} else if (seen[i]) {
			add_err(ld, ev_line(ld), sub, "given twice");
			f = NULL;
		} else {
			seen[i] = true;
			map_add(&ld->map, sub, ev_line(ld));
		}
		err = next_event(ld);
		if (err)
			return err;
		err = f ? walk_value(ld, &f->value, sub) : skip_value(ld);
		if (err)
			return err;
	}
	for (unsigned int i = 0; i < nf; i++) {
		if (!seen[i] && !(fields[i].value.flags & CYAML_FLAG_OPTIONAL)) {
			pathf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", fields[i].key);
			add_err(ld, start, sub, "required key is missing");
		}
	}
	return 0;
}

static int walk_value(struct loader *ld, const cyaml_schema_value_t *s, const char *path)
{
	char sub[PATH_MAX_LEN];
	unsigned int n = 0, start;
	int err;

	switch (ld->ev.type) {
	case YAML_ALIAS_EVENT:
		add_err(ld, ev_line(ld), path, "YAML aliases are not supported here");
		return 0;
	case YAML_MAPPING_START_EVENT:
		if (s->type != CYAML_MAPPING) {
			add_err(ld, ev_line(ld), path, "expected %s, found a mapping",
				kind_name(s));
			return skip_value(ld);
		}
		return walk_mapping(ld, s, path);
	case YAML_SEQUENCE_START_EVENT:
		if (s->type != CYAML_SEQUENCE) {
			add_err(ld, ev_line(ld), path, "expected %s, found a list", kind_name(s));
			return skip_value(ld);
		}
		start = ev_line(ld);
		for (;;) {
			err = next_event(ld);
			if (err)
				return err;
			if (ld->ev.type == YAML_SEQUENCE_END_EVENT)
				break;
			pathf(sub, sizeof(sub), "%s[%u]", path, n++);
			map_add(&ld->map, sub, ev_line(ld));
			err = walk_value(ld, s->sequence.entry, sub);
			if (err)
				return err;
		}
		if (n < s->sequence.min)
			add_err(ld, start, path, "needs at least %u entr%s", s->sequence.min,
				s->sequence.min == 1 ? "y" : "ies");
		if (n > s->sequence.max)
			add_err(ld, start, path, "at most %u entries (found %u)", s->sequence.max, n);
		return 0;
	case YAML_SCALAR_EVENT:
		if (s->type == CYAML_MAPPING || s->type == CYAML_SEQUENCE) {
			const char *v = (const char *)ld->ev.data.scalar.value;

			add_err(ld, ev_line(ld), path, "expected %s, found %s%s%s", kind_name(s),
				*v ? "'" : "nothing", v, *v ? "'" : "");
			return 0;
		}
		check_scalar(ld, s, path);
		return 0;
	default:
		add_err(ld, ev_line(ld), path, "unexpected YAML event");
		return -EINVAL;
	}
}

static int event_pass(struct loader *ld, FILE *f)
{
	int err;

	if (!yaml_parser_initialize(&ld->parser))
		return -ENOMEM;
	yaml_parser_set_input_file(&ld->parser, f);
	err = next_event(ld); /* stream start */
	if (!err)
		err = next_event(ld);
	if (!err && ld->ev.type == YAML_STREAM_END_EVENT) {
		add_err(ld, 1, NULL, "the file is empty");
		err = -EINVAL;
	}
	if (!err)
		err = next_event(ld); /* the root value */
	if (!err)
		err = walk_value(ld, &top_schema, "");
	if (!err)
		err = next_event(ld); /* document end */
	if (!err)
		err = next_event(ld);
	if (!err && ld->ev.type != YAML_STREAM_END_EVENT)
		add_err(ld, ev_line(ld), NULL, "only one YAML document is allowed");
	if (ld->have_ev)
		yaml_event_delete(&ld->ev);
	ld->have_ev = false;
	yaml_parser_delete(&ld->parser);
	return err;
}

/* ---- Value parsers: the library's (user/lib/parse.c), as bgctl's command line has ---- */

/* ADDRESS:PORT (IPv6 as [ADDRESS]:PORT), the port optional where port_optional: NULL, or
 * what is wrong (the library's message, or buf's). */
static const char *addr_port_problem(const char *s, bool port_optional, struct bgs_ip *ip,
				     uint16_t *port, char *buf, size_t len)
{
	if (bgs_parse_addr_port(s, ip, port))
		return bgs_errmsg();
	if (*port || port_optional)
		return NULL;
	snprintf(buf, len, "'%s' needs a port: ADDRESS:PORT (IPv6 as [ADDRESS]:PORT)", s);
	return buf;
}

const char *cfg_check_type_name(int type)
{
	for (size_t i = 0; i < CYAML_ARRAY_LEN(check_types); i++)
		if (check_types[i].val == type)
			return check_types[i].str;
	return "?";
}

/* ---- Value checks, with lines from the event pass ---- */

#define VERR(ld, path, ...) add_err(ld, line_of(ld, path), path, __VA_ARGS__)

/* The key a path ends with ("drain_timeout" of "services[0].drain_timeout"): what a
 * parser's message names. */
static const char *key_of(const char *path)
{
	const char *dot = strrchr(path, '.');

	return dot ? dot + 1 : path;
}

/* A duration (100ms, 2s, 5m, 1h, 1m30s; with allow_none also none|never) or def if absent. */
static void dur_or(struct loader *ld, const char *path, const char *s, bool allow_none,
		   uint64_t def, uint64_t *out)
{
	__u64 ms;

	*out = def;
	if (!s)
		return;
	if (bgs_parse_duration(s, key_of(path), allow_none, &ms))
		VERR(ld, path, "%s", bgs_errmsg());
	else
		*out = ms;
}

static const char *const strategies[] = {
	"AllAtOnce",
	"Canary10Percent5Minutes",
	"Canary10Percent15Minutes",
	"Canary10Percent30Minutes",
	"Linear10PercentEvery1Minute",
	"Linear10PercentEvery3Minutes",
	"Linear10PercentEvery10Minutes",
};

static void check_rollout(struct loader *ld, struct cfg_rollout *r, const char *base)
{
	char p[PATH_MAX_LEN];

	if (r->strategy) {
		bool ok = false;

		for (size_t i = 0; i < sizeof(strategies) / sizeof(strategies[0]); i++)
			ok |= !strcmp(r->strategy, strategies[i]);
		pathf(p, sizeof(p), "%s.strategy", base);
		if (!ok)
			VERR(ld, p,
			     "'%s' is not a strategy (AllAtOnce, Canary10Percent5Minutes, "
			     "Canary10Percent15Minutes, Canary10Percent30Minutes, "
			     "Linear10PercentEvery1Minute, Linear10PercentEvery3Minutes, "
			     "Linear10PercentEvery10Minutes)",
			     r->strategy);
		else if (r->steps)
			VERR(ld, p, "give either a strategy or steps, not both");
	} else if (!r->steps) {
		VERR(ld, base, "needs a strategy or steps");
	}
	for (uint32_t i = 0; i < r->steps_count; i++) {
		struct cfg_step *st = &r->steps[i];
		bool promote = st->promote && *st->promote;

		pathf(p, sizeof(p), "%s.steps[%u]", base, i);
		if (promote && st->canary)
			VERR(ld, p, "a step is either a canary share or promote: true, not both");
		else if (!promote && !st->canary)
			VERR(ld, p, "a step needs canary: PERCENT or promote: true");
		if (st->canary && (*st->canary < 1 || *st->canary > 100)) {
			pathf(p, sizeof(p), "%s.steps[%u].canary", base, i);
			VERR(ld, p, "%u is not a percentage 1..100", *st->canary);
		}
		pathf(p, sizeof(p), "%s.steps[%u].pause", base, i);
		dur_or(ld, p, st->pause, false, 0, &st->pause_ms);
		if (promote && i + 1 != r->steps_count) {
			pathf(p, sizeof(p), "%s.steps[%u]", base, i);
			VERR(ld, p, "promote must be the last step");
		}
	}
	if (r->pre_flip_gate) {
		pathf(p, sizeof(p), "%s.pre_flip_gate.timeout", base);
		dur_or(ld, p, r->pre_flip_gate->timeout, false, 60000, &r->pre_flip_gate->timeout_ms);
		if (!r->pre_flip_gate->timeout_ms)
			VERR(ld, p, "must be more than 0");
	}
}

static void check_backend(struct loader *ld, struct cfg_service *svc, struct cfg_backend *be,
			  const char *base)
{
	char p[PATH_MAX_LEN], buf[200];
	const char *bad;
	uint16_t port;

	pathf(p, sizeof(p), "%s.address", base);
	bad = addr_port_problem(be->address, svc->spec.mode == BGS_MODE_DSR, &be->spec.addr,
				&port, buf, sizeof(buf));
	if (bad) {
		VERR(ld, p, "%s", bad);
		return;
	}
	be->spec.port = port;
	if (svc->spec.vip.family && be->spec.addr.family != svc->spec.vip.family)
		VERR(ld, p, "'%s' is not of the VIP's address family", be->address);
	if (svc->spec.mode == BGS_MODE_DSR && port && port != svc->spec.port)
		VERR(ld, p, "in dsr the backend port must be the VIP's port (%u)", svc->spec.port);
	be->spec.weight = 100;
	if (be->weight) {
		pathf(p, sizeof(p), "%s.weight", base);
		if (*be->weight < 1 || *be->weight > BGS_MAX_WEIGHT)
			VERR(ld, p, "%u is out of range 1..%u", *be->weight, BGS_MAX_WEIGHT);
		else
			be->spec.weight = *be->weight;
	}
}

static bool same_backend(const struct cfg_backend *a, const struct cfg_backend *b)
{
	return a->spec.port == b->spec.port && !memcmp(&a->spec.addr, &b->spec.addr,
						       sizeof(a->spec.addr));
}

static void check_pools(struct loader *ld, struct cfg_service *svc, const char *base)
{
	struct cfg_backend *pools[2] = { svc->pools.blue, svc->pools.green };
	uint32_t counts[2] = { svc->pools.blue_count, svc->pools.green_count };
	static const char *const cname[2] = { "blue", "green" };
	char p[PATH_MAX_LEN];

	for (int c = 0; c < 2; c++) {
		for (uint32_t i = 0; i < counts[c]; i++) {
			pathf(p, sizeof(p), "%s.pools.%s[%u]", base, cname[c], i);
			check_backend(ld, svc, &pools[c][i], p);
		}
	}
	/* one address:port once per service, whatever its color (the library's rule) */
	for (int c = 0; c < 2; c++) {
		for (uint32_t i = 0; i < counts[c]; i++) {
			for (int c2 = 0; c2 <= c; c2++) {
				for (uint32_t j = 0; j < (c2 == c ? i : counts[c2]); j++) {
					if (!pools[c][i].spec.addr.family ||
					    !same_backend(&pools[c][i], &pools[c2][j]))
						continue;
					pathf(p, sizeof(p), "%s.pools.%s[%u].address", base,
						 cname[c], i);
					VERR(ld, p, "'%s' is already in the %s pool",
					     pools[c][i].address, cname[c2]);
				}
			}
		}
	}
}

static void check_health(struct loader *ld, struct cfg_service *svc, const char *base)
{
	struct cfg_check *hc = svc->health_check, *ck = &svc->check;
	char p[PATH_MAX_LEN];

	memset(ck, 0, sizeof(*ck));
	ck->type = hc ? hc->type : CHECK_TCP;
	ck->path = hc && hc->path ? hc->path : "/";
	ck->command = hc ? hc->command : NULL;
	ck->status = hc && hc->expect_status ? *hc->expect_status : 200;
	ck->rise_n = hc && hc->rise ? *hc->rise : 2;
	ck->fall_n = hc && hc->fall ? *hc->fall : 3;
	ck->port = hc ? hc->port : NULL;
	if (!hc)
		return (void)(ck->interval_ms = 1000, ck->timeout_ms = 500);
	pathf(p, sizeof(p), "%s.health_check.interval", base);
	dur_or(ld, p, hc->interval, false, 1000, &ck->interval_ms);
	if (ck->interval_ms < 10)
		VERR(ld, p, "must be at least 10ms");
	pathf(p, sizeof(p), "%s.health_check.timeout", base);
	dur_or(ld, p, hc->timeout, false, ck->interval_ms < 500 ? ck->interval_ms : 500, &ck->timeout_ms);
	if (!ck->timeout_ms)
		VERR(ld, p, "must be more than 0");
	else if (ck->timeout_ms > ck->interval_ms && ck->interval_ms >= 10)
		VERR(ld, p, "%s is longer than the interval", hc->timeout);
	pathf(p, sizeof(p), "%s.health_check.rise", base);
	if (ck->rise_n < 1 || ck->rise_n > 100)
		VERR(ld, p, "%u is out of range 1..100", ck->rise_n);
	pathf(p, sizeof(p), "%s.health_check.fall", base);
	if (ck->fall_n < 1 || ck->fall_n > 100)
		VERR(ld, p, "%u is out of range 1..100", ck->fall_n);
	pathf(p, sizeof(p), "%s.health_check.expect_status", base);
	if (ck->status < 100 || ck->status > 599)
		VERR(ld, p, "%u is not an HTTP status (100..599)", ck->status);
	else if (hc->expect_status && ck->type != CHECK_HTTP && ck->type != CHECK_HTTPS)
		VERR(ld, p, "only for type http or https");
	pathf(p, sizeof(p), "%s.health_check.path", base);
	if (hc->path && ck->type != CHECK_HTTP && ck->type != CHECK_HTTPS)
		VERR(ld, p, "only for type http or https");
	else if (hc->path && hc->path[0] != '/')
		VERR(ld, p, "'%s' must begin with /", hc->path);
	pathf(p, sizeof(p), "%s.health_check.command", base);
	if (ck->type == CHECK_EXEC && !hc->command)
		VERR(ld, p, "type exec needs a command");
	else if (ck->type != CHECK_EXEC && hc->command)
		VERR(ld, p, "only for type exec");
	pathf(p, sizeof(p), "%s.health_check.port", base);
	if (hc->port && (*hc->port < 1 || *hc->port > 65535))
		VERR(ld, p, "%u is not a port (1..65535)", *hc->port);
}

static void check_service(struct loader *ld, struct cfg *c, uint32_t idx)
{
	struct cfg_service *svc = &c->services[idx];
	struct bgs_service_spec *sp = &svc->spec;
	char base[64], p[PATH_MAX_LEN];

	pathf(base, sizeof(base), "services[%u]", idx);
	sp->name = svc->name;
	sp->mode = (__u8)svc->mode;
	pathf(p, sizeof(p), "%s.name", base);
	if (bgs_parse_name(svc->name))
		VERR(ld, p, "%s", bgs_errmsg());
	for (uint32_t j = 0; j < idx; j++)
		if (!strcmp(c->services[j].name, svc->name))
			VERR(ld, p, "'%s' is also services[%u]'s name", svc->name, j);

	pathf(p, sizeof(p), "%s.vip", base);
	if (bgs_parse_vip(svc->vip, &sp->vip, &sp->port, &sp->proto)) {
		VERR(ld, p, "%s", bgs_errmsg());
	} else {
		for (uint32_t j = 0; j < idx; j++) {
			const struct bgs_service_spec *o = &c->services[j].spec;

			if (o->port == sp->port && o->proto == sp->proto &&
			    !memcmp(&o->vip, &sp->vip, sizeof(sp->vip)))
				VERR(ld, p, "'%s' is also services[%u]'s VIP", svc->vip, j);
		}
	}

	pathf(p, sizeof(p), "%s.drain_timeout", base);
	dur_or(ld, p, svc->drain_timeout, true, 5 * 60 * 1000, &svc->drain_ms);

	if (svc->preview) {
		struct cfg_preview *pv = svc->preview;

		pathf(p, sizeof(p), "%s.preview.port", base);
		if (pv->port) {
			if (*pv->port < 1 || *pv->port > 65535)
				VERR(ld, p, "%u is not a port (1..65535)", *pv->port);
			else if (svc->mode == BGS_MODE_DSR)
				VERR(ld, p, "a preview port needs mode nat (dsr keeps the port)");
			else if (*pv->port == sp->port)
				VERR(ld, p, "%u is the VIP's own port", *pv->port);
			else
				sp->preview_port = (__u16)*pv->port;
		}
		pv->pfx = calloc(pv->prefixes_count ? pv->prefixes_count : 1, sizeof(*pv->pfx));
		for (uint32_t i = 0; pv->pfx && i < pv->prefixes_count; i++) {
			pathf(p, sizeof(p), "%s.preview.prefixes[%u]", base, i);
			if (bgs_parse_prefix(pv->prefixes[i], &pv->pfx[i]))
				VERR(ld, p, "%s", bgs_errmsg());
			else if (sp->vip.family && pv->pfx[i].ip.family != sp->vip.family)
				VERR(ld, p, "'%s' is not of the VIP's address family",
				     pv->prefixes[i]);
		}
	}
	check_pools(ld, svc, base);
	check_health(ld, svc, base);

	memset(&svc->fo, 0, sizeof(svc->fo));
	svc->fo.on = !svc->failover || !svc->failover->enabled || *svc->failover->enabled;
	svc->fo.min_healthy_pct = 50;
	svc->fo.hold_down_ms = 60000;
	if (svc->failover) {
		pathf(p, sizeof(p), "%s.failover.min_healthy", base);
		if (svc->failover->min_healthy) {
			__u32 bps;

			/* the failover policy judges in whole percents */
			if (bgs_parse_percent(svc->failover->min_healthy, &bps))
				VERR(ld, p, "%s", bgs_errmsg());
			else if (bps % 100)
				VERR(ld, p, "'%s': a whole percentage (0%%..100%%)",
				     svc->failover->min_healthy);
			else
				svc->fo.min_healthy_pct = bps / 100;
		}
		pathf(p, sizeof(p), "%s.failover.hold_down", base);
		dur_or(ld, p, svc->failover->hold_down, false, 60000, &svc->fo.hold_down_ms);
	}
	if (svc->post_flip_check) {
		pathf(p, sizeof(p), "%s.post_flip_check.bake_time", base);
		dur_or(ld, p, svc->post_flip_check->bake_time, false, 120000,
		       &svc->post_flip_check->bake_ms);
	}
	if (svc->rollout) {
		pathf(p, sizeof(p), "%s.rollout", base);
		check_rollout(ld, svc->rollout, p);
	}
}

/* timeouts: each a duration in whole seconds, by the library's parser (as bgctl init's
 * --timeout NAME=DURATION). */
static void check_timeouts(struct loader *ld, struct cfg_timeouts *to)
{
	const char *const v[BGS_TIMEOUT_COUNT] = { to->tcp_syn, to->tcp_est, to->tcp_close,
						   to->udp, to->time_wait, to->health_grace };
	char p[PATH_MAX_LEN];

	_Static_assert(BGS_TIMEOUT_COUNT == 6, "one config key per timeout");
	memset(&to->t, 0, sizeof(to->t));
	for (unsigned int i = 0; i < BGS_TIMEOUT_COUNT; i++) {
		if (!v[i])
			continue;
		pathf(p, sizeof(p), "timeouts.%s", bgs_timeout_name(i));
		if (bgs_parse_timeout(v[i], key_of(p), i, &to->t))
			VERR(ld, p, "%s", bgs_errmsg());
	}
}

static void check_values(struct loader *ld, struct cfg *c)
{
	const char *listen = c->metrics && c->metrics->listen ? c->metrics->listen :
								 CFG_DEFAULT_LISTEN;
	const char *bad;
	struct bgs_ip ip;
	char buf[200];

	c->upgrade = !c->upgrade_on_start || *c->upgrade_on_start;
	if (c->pin_dir && c->pin_dir[0] != '/')
		VERR(ld, "pin_dir", "'%s' must be an absolute path", c->pin_dir);
	if (c->history_file && c->history_file[0] != '/')
		VERR(ld, "history_file", "'%s' must be an absolute path", c->history_file);
	if (c->state_file && c->state_file[0] != '/')
		VERR(ld, "state_file", "'%s' must be an absolute path", c->state_file);
	for (uint32_t i = 0; i < c->interfaces_count; i++) {
		char p[64];

		for (uint32_t j = 0; j < i; j++) {
			if (strcmp(c->interfaces[i].name, c->interfaces[j].name))
				continue;
			pathf(p, sizeof(p), "interfaces[%u].name", i);
			VERR(ld, p, "'%s' is listed twice", c->interfaces[i].name);
		}
	}
	bad = addr_port_problem(listen, false, &ip, &c->listen_port, buf, sizeof(buf));
	if (bad)
		VERR(ld, "metrics.listen", "%s", bad);
	else
		bgs_ip_str(&ip, c->listen_host, sizeof(c->listen_host));
	if (c->timeouts)
		check_timeouts(ld, c->timeouts);
	for (uint32_t i = 0; i < c->services_count; i++)
		check_service(ld, c, i);
}

void cfg_free(struct cfg *c)
{
	if (!c)
		return;
	for (uint32_t i = 0; i < c->services_count; i++)
		if (c->services[i].preview)
			free(c->services[i].preview->pfx);
	cyaml_free(&cyaml_cfg, &top_schema, c, 0);
}

void cfg_errors_free(struct cfg_errors *errs)
{
	for (unsigned int i = 0; i < errs->n; i++)
		free(errs->lines[i]);
	free(errs->lines);
	errs->lines = NULL;
	errs->n = 0;
}

int cfg_load(const char *file, struct cfg **out, struct cfg_errors *errs)
{
	struct loader ld = { .file = file, .errs = errs };
	struct cfg *c = NULL;
	cyaml_err_t cerr;
	FILE *f;
	int err;

	*out = NULL;
	memset(errs, 0, sizeof(*errs));
	f = fopen(file, "re");
	if (!f) {
		err = -errno;
		add_err(&ld, 1, NULL, "cannot read: %s", strerror(errno));
		return err;
	}
	err = event_pass(&ld, f);
	fclose(f);
	if (err)
		goto out;
	if (errs->n) {
		/* Only unknown or repeated keys? Then the values can still be checked, so that
		 * every error is reported at once. Anything else stops here. */
		cyaml_config_t lax = cyaml_cfg;

		lax.flags |= CYAML_CFG_IGNORE_UNKNOWN_KEYS;
		if (cyaml_load_file(file, &lax, &top_schema, (cyaml_data_t **)&c, NULL) ==
		    CYAML_OK)
			check_values(&ld, c);
		goto out;
	}
	cerr = cyaml_load_file(file, &cyaml_cfg, &top_schema, (cyaml_data_t **)&c, NULL);
	if (cerr != CYAML_OK) {
		/* the event pass should have found it; say what libcyaml says */
		add_err(&ld, 1, NULL, "%s", cyaml_strerror(cerr));
		goto out;
	}
	check_values(&ld, c);
out:
	map_free(&ld.map);
	if (errs->n) {
		cfg_free(c);
		return err ? err : -EINVAL;
	}
	*out = c;
	return 0;
}
