// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * /metrics in the Prometheus text format, served by libmicrohttpd from the agent's own loop:
 * MHD runs without a thread of its own and hands over its epoll fd, which the loop watches
 * (MHD_run when it is readable, and at MHD's timeout). Every scrape reads the counters from
 * the maps and walks conntrack once for the flow gauges. The names are documented in
 * bgagent(8).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <microhttpd.h>

#include "agent_priv.h"

static void lbl(FILE *f, const struct svc_rt *s, int color)
{
	fprintf(f, "service=\"%s\",color=\"%s\"", s->name, color_str(color));
}

/*
 * The switch's per-reason counters: one series per reason, zeros included, so that a rate or
 * an alert has its series from the first scrape. One read of all of them per scrape. When the
 * read fails, no sample at all: a counter that fell to 0 would read as a reset.
 */
static void verdict_metrics(struct agent *ag, FILE *f)
{
	static const char *const vm[2][2] = {
		{ "bgswitch_verdict_packets_total",
		  "Packets by the switch's verdict or extra count (bgagent(8))." },
		{ "bgswitch_verdict_bytes_total",
		  "Bytes by the switch's verdict or extra count (bgagent(8))." },
	};
	struct bgs_reason_counter rc[BGS_R_MAX];
	bool have = bgs_reason_counters(ag->h, rc) == 0;

	if (!have)
		agent_log(LOG_W, "metrics: no verdict counters: %s", bgs_errmsg());
	for (int k = 0; k < 2; k++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", vm[k][0], vm[k][1], vm[k][0]);
		for (int r = 0; have && r < BGS_R_MAX; r++)
			fprintf(f, "%s{verdict=\"%s\"} %llu\n", vm[k][0],
				bgs_reason_name((enum bgs_reason)r),
				(unsigned long long)(k == 0 ? rc[r].packets : rc[r].bytes));
	}
}

static char *render(struct agent *ag, size_t *len)
{
	const struct flow_snapshot *snap = ag->flows;
	struct bgs_flip *flips = calloc(ag->nsvc + 1, sizeof(*flips));
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (!flips || !f)
		goto out;
	for (unsigned int i = 0; i < ag->nsvc; i++) {
		struct bgs_service svc;

		bgs_service_get(ag->h, ag->svc[i].id, &svc, &flips[i]);
	}

	fprintf(f, "# HELP bgswitch_build_info The agent's version.\n"
		   "# TYPE bgswitch_build_info gauge\n"
		   "bgswitch_build_info{version=\"%s\",layout=\"%d\"} 1\n",
		ag->version, BGS_LAYOUT_VERSION);
	fprintf(f, "# HELP bgswitch_config_reloads_total SIGHUP reloads by result.\n"
		   "# TYPE bgswitch_config_reloads_total counter\n"
		   "bgswitch_config_reloads_total{result=\"ok\"} %llu\n"
		   "bgswitch_config_reloads_total{result=\"failed\"} %llu\n",
		(unsigned long long)ag->reloads_ok, (unsigned long long)ag->reloads_failed);

	fputs("# HELP bgswitch_service_live_color 1 for the color new flows go to.\n"
	      "# TYPE bgswitch_service_live_color gauge\n", f);
	for (unsigned int i = 0; i < ag->nsvc; i++)
		for (int c = 0; c < 2; c++) {
			fputs("bgswitch_service_live_color{", f);
			lbl(f, &ag->svc[i], c);
			fprintf(f, "} %d\n", (int)bgs_flip_live(&flips[i]) == c);
		}
	fputs("# HELP bgswitch_service_generation Generation of the flip word (+1 per publish).\n"
	      "# TYPE bgswitch_service_generation gauge\n", f);
	for (unsigned int i = 0; i < ag->nsvc; i++)
		fprintf(f, "bgswitch_service_generation{service=\"%s\"} %u\n", ag->svc[i].name,
			bgs_flip_gen(&flips[i]));
	fputs("# HELP bgswitch_service_canary_ratio Share of new flows sent to the idle color.\n"
	      "# TYPE bgswitch_service_canary_ratio gauge\n", f);
	for (unsigned int i = 0; i < ag->nsvc; i++)
		fprintf(f, "bgswitch_service_canary_ratio{service=\"%s\"} %g\n", ag->svc[i].name,
			bgs_flip_canary(&flips[i]) / (double)BGS_CANARY_SCALE);
	fputs("# HELP bgswitch_service_drift 1 when the pins differ from what the agent "
	      "applied.\n# TYPE bgswitch_service_drift gauge\n", f);
	for (unsigned int i = 0; i < ag->nsvc; i++)
		fprintf(f, "bgswitch_service_drift{service=\"%s\"} %d\n", ag->svc[i].name,
			ag->svc[i].drift);
	fputs("# HELP bgswitch_drain_flows_remaining Flows of a draining color the drain still "
	      "waits on.\n# TYPE bgswitch_drain_flows_remaining gauge\n", f);
	for (unsigned int i = 0; i < ag->nsvc; i++)
		for (int c = 0; c < 2; c++) {
			fputs("bgswitch_drain_flows_remaining{", f);
			lbl(f, &ag->svc[i], c);
			fprintf(f, "} %llu\n",
				(unsigned long long)(snap && ag->svc[i].id < snap->max_services ?
					snap->drain_left[ag->svc[i].id * 2 + c] : 0));
		}
	fputs("# HELP bgswitch_drains_total Drains the agent followed to their end, by result "
	      "(drained, deadline, ended, superseded).\n# TYPE bgswitch_drains_total counter\n", f);
	for (unsigned int i = 0; i < ag->nsvc; i++) {
		static const char *const dn[4] = { "drained", "deadline", "ended", "superseded" };

		for (int k = 0; k < 4; k++)
			fprintf(f, "bgswitch_drains_total{service=\"%s\",result=\"%s\"} %llu\n",
				ag->svc[i].name, dn[k],
				(unsigned long long)ag->svc[i].drains_done[k]);
	}
	fprintf(f, "# HELP bgswitch_flows_walk_age_seconds Age of the conntrack walk the flow "
		   "gauges come from.\n# TYPE bgswitch_flows_walk_age_seconds gauge\n"
		   "bgswitch_flows_walk_age_seconds %.3f\n",
		snap ? (double)(now_ms() - snap->taken_ms) / 1000 : -1.0);
	rollout_metrics(ag, f);
	fputs("# HELP bgswitch_flips_total Flips the agent saw, by who made them.\n"
	      "# TYPE bgswitch_flips_total counter\n", f);
	for (unsigned int i = 0; i < ag->nsvc; i++) {
		uint64_t ro, rb;

		fprintf(f,
			"bgswitch_flips_total{service=\"%s\",reason=\"failover\"} %llu\n"
			"bgswitch_flips_total{service=\"%s\",reason=\"other\"} %llu\n",
			ag->svc[i].name, (unsigned long long)ag->svc[i].flips_failover,
			ag->svc[i].name, (unsigned long long)ag->svc[i].flips_other);
		postflip_flips(ag, ag->svc[i].name, &ro, &rb);
		fprintf(f,
			"bgswitch_flips_total{service=\"%s\",reason=\"rollout\"} %llu\n"
			"bgswitch_flips_total{service=\"%s\",reason=\"rollback\"} %llu\n",
			ag->svc[i].name, (unsigned long long)ro, ag->svc[i].name,
			(unsigned long long)rb);
	}

	static const char *const svc_ctr[4][2] = {
		{ "bgswitch_service_packets_total", "Client packets to a service, by color." },
		{ "bgswitch_service_bytes_total", "Client bytes to a service, by color." },
		{ "bgswitch_service_new_flows_total", "New flows of a service, by color." },
		{ "bgswitch_service_resets_total",
		  "TCP resets a nat service's backends sent, by color." },
	};
	for (int k = 0; k < 4; k++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", svc_ctr[k][0], svc_ctr[k][1],
			svc_ctr[k][0]);
		for (unsigned int i = 0; i < ag->nsvc; i++)
			for (int c = 0; c < 2; c++) {
				struct bgs_counter ctr = {};

				bgs_svc_counters(ag->h, ag->svc[i].id, (__u32)c, &ctr);
				fprintf(f, "%s{", svc_ctr[k][0]);
				lbl(f, &ag->svc[i], c);
				fprintf(f, "} %llu\n",
					(unsigned long long)(k == 0 ? ctr.packets :
							     k == 1 ? ctr.bytes :
							     k == 2 ? ctr.new_flows :
								      ctr.resets));
			}
	}

	static const char *const be_m[7][3] = {
		{ "bgswitch_backend_up", "gauge",
		  "1 when the backend takes new flows (admin up and healthy)." },
		{ "bgswitch_backend_healthy", "gauge", "1 when its health checks pass." },
		{ "bgswitch_backend_packets_total", "counter", "Client packets to the backend." },
		{ "bgswitch_backend_bytes_total", "counter", "Client bytes to the backend." },
		{ "bgswitch_backend_new_flows_total", "counter", "New flows to the backend." },
		{ "bgswitch_backend_resets_total", "counter",
		  "TCP resets the backend sent (nat: counted on the reply path)." },
		{ "bgswitch_backend_flows", "gauge", "Flows in conntrack on the backend." },
	};
	for (int k = 0; k < 7; k++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", be_m[k][0], be_m[k][2], be_m[k][0],
			be_m[k][1]);
		for (unsigned int i = 0; i < ag->nsvc; i++) {
			for (unsigned int j = 0; j < ag->svc[i].nbe; j++) {
				const struct be_rt *b = &ag->svc[i].be[j];
				struct bgs_counter ctr = {};
				struct bgs_backend rec = {};
				unsigned long long v = 0;

				if (k < 2) {
					bgs_backend_get(ag->h, b->id, &rec);
					v = k == 0 ? rec.admin == BGS_ADMIN_UP &&
							     rec.health == BGS_HEALTH_UP :
						     rec.health == BGS_HEALTH_UP;
				} else if (k < 6) {
					bgs_backend_counters(ag->h, b->id, &ctr);
					v = k == 2 ? ctr.packets : k == 3 ? ctr.bytes :
					    k == 4 ? ctr.new_flows : ctr.resets;
				} else if (snap && b->id < snap->max_backends) {
					v = snap->per_backend[b->id];
				}
				fprintf(f, "%s{", be_m[k][0]);
				lbl(f, &ag->svc[i], b->color);
				fprintf(f, ",backend=\"%s\"} %llu\n", b->label, v);
			}
		}
	}
	fputs("# HELP bgswitch_health_checks_total Health checks by result (ok, fail, timeout).\n"
	      "# TYPE bgswitch_health_checks_total counter\n", f);
	for (unsigned int i = 0; i < ag->nsvc; i++) {
		for (unsigned int j = 0; j < ag->svc[i].nbe; j++) {
			static const char *const rn[CR_NR] = { "ok", "fail", "timeout" };
			const struct be_rt *b = &ag->svc[i].be[j];

			for (int r = 0; r < CR_NR; r++) {
				fputs("bgswitch_health_checks_total{", f);
				lbl(f, &ag->svc[i], b->color);
				fprintf(f, ",backend=\"%s\",result=\"%s\"} %llu\n", b->label, rn[r],
					(unsigned long long)b->checks[r]);
			}
		}
	}
	verdict_metrics(ag, f);
out:
	if (f)
		fclose(f);
	free(flips);
	return buf;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_size, void **con_cls)
{
	static const char not_found[] = "not found: the metrics are at /metrics\n";
	struct agent *ag = cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned int status = MHD_HTTP_OK;
	size_t len = 0;
	char *body;

	(void)version;
	(void)upload_data;
	(void)upload_size;
	(void)con_cls;
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(resp, "Allow", "GET, HEAD");
		ret = MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	if (strcmp(url, "/metrics")) {
		resp = MHD_create_response_from_buffer(sizeof(not_found) - 1, (void *)not_found,
						       MHD_RESPMEM_PERSISTENT);
		status = MHD_HTTP_NOT_FOUND;
	} else {
		body = render(ag, &len);
		if (!body) {
			resp = MHD_create_response_from_buffer(0, (void *)"",
							       MHD_RESPMEM_PERSISTENT);
			status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		} else {
			resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
		}
		MHD_add_response_header(resp, "Content-Type",
					"text/plain; version=0.0.4; charset=utf-8");
	}
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void mhd_rearm(struct agent *ag)
{
	MHD_UNSIGNED_LONG_LONG to;

	if (MHD_get_timeout(ag->mhd, &to) == MHD_YES) {
		sd_event_source_set_time_relative(ag->mhd_timer, (uint64_t)to * 1000);
		sd_event_source_set_enabled(ag->mhd_timer, SD_EVENT_ONESHOT);
	} else {
		sd_event_source_set_enabled(ag->mhd_timer, SD_EVENT_OFF);
	}
}

static int on_mhd_io(sd_event_source *src, int fd, uint32_t revents, void *arg)
{
	struct agent *ag = arg;

	(void)src;
	(void)fd;
	(void)revents;
	MHD_run(ag->mhd);
	mhd_rearm(ag);
	return 0;
}

static int on_mhd_timer(sd_event_source *src, uint64_t usec, void *arg)
{
	(void)usec;
	return on_mhd_io(src, -1, 0, arg);
}

int metrics_start(struct agent *ag)
{
	const struct cfg *c = ag->cfg;
	struct sockaddr_storage ss = {};
	const union MHD_DaemonInfo *info;
	unsigned int flags = MHD_USE_EPOLL | MHD_USE_TURBO;
	struct bgs_ip ip;

	if (bgs_ip_parse(c->listen_host, &ip))
		return -EINVAL;
	if (ip.family == BGS_AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(c->listen_port);
		sin->sin_addr.s_addr = ip.addr[0];
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(c->listen_port);
		memcpy(&sin6->sin6_addr, ip.addr, 16);
		flags |= MHD_USE_IPv6;
	}
	ag->mhd = MHD_start_daemon(flags, c->listen_port, NULL, NULL, on_request, ag,
				   MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
				   MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
				   /* a restart must not wait for the last scrapes' TIME_WAIT */
				   MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
				   MHD_OPTION_END);
	if (!ag->mhd) {
		agent_log(LOG_E, "metrics: cannot listen on %s:%u (address in use, or not on "
				 "this host?)",
			  c->listen_host, c->listen_port);
		return -EADDRINUSE;
	}
	info = MHD_get_daemon_info(ag->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || sd_event_add_io(ag->ev, &ag->mhd_io, info->epoll_fd, EPOLLIN, on_mhd_io,
				     ag) < 0 ||
	    sd_event_add_time(ag->ev, &ag->mhd_timer, CLOCK_MONOTONIC, 0, 1000, on_mhd_timer,
			      ag) < 0) {
		metrics_stop(ag);
		return -ENOMEM;
	}
	mhd_rearm(ag);
	agent_log(LOG_I, "metrics at http://%s%s%s:%u/metrics", ip.family == BGS_AF_INET6 ?
		  "[" : "", c->listen_host, ip.family == BGS_AF_INET6 ? "]" : "",
		  c->listen_port);
	return 0;
}

void metrics_stop(struct agent *ag)
{
	ag->mhd_io = sd_event_source_disable_unref(ag->mhd_io);
	ag->mhd_timer = sd_event_source_disable_unref(ag->mhd_timer);
	if (ag->mhd)
		MHD_stop_daemon(ag->mhd);
	ag->mhd = NULL;
}
