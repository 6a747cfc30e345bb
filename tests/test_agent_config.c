// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bgagent's config loader: a full config with every key of the contract loads with the
 * values and defaults it should; each class of error comes out as `FILE:LINE: key: problem`
 * with the right line and key, and every error of a file is reported, not just the first.
 */
#include <stdlib.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "test.h"
#include "config.h"

static char tmpfile_path[64];

static const char *write_cfg(const char *text)
{
	FILE *f;
	int fd;

	snprintf(tmpfile_path, sizeof(tmpfile_path), "/tmp/bgagent-cfg-XXXXXX");
	fd = mkstemp(tmpfile_path);
	if (fd < 0)
		return NULL;
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	return tmpfile_path;
}

static const char full_cfg[] =
	"pin_dir: /sys/fs/bpf/bgswitch\n"
	"interfaces:\n"
	"  - {name: eth0, xdp_mode: native}\n"
	"  - {name: eth1, xdp_mode: generic}\n"
	"metrics: {listen: \"127.0.0.1:9469\"}\n"
	"timeouts: {tcp_est: 1h, udp: 20s, time_wait: 1m30s, health_grace: 0}\n"
	"services:\n"
	"  - name: web\n"
	"    vip: \"192.0.2.10:80/tcp\"\n"
	"    mode: nat\n"
	"    drain_timeout: 5m\n"
	"    preview: {port: 8080, prefixes: [\"198.51.100.0/24\"]}\n"
	"    pools:\n"
	"      blue:  [{address: \"10.1.0.11:8080\", weight: 100}]\n"
	"      green: [{address: \"10.2.0.11:8080\"}]\n"
	"    health_check:\n"
	"      type: http\n"
	"      path: /healthz\n"
	"      expect_status: 200\n"
	"      interval: 1s\n"
	"      timeout: 500ms\n"
	"      rise: 2\n"
	"      fall: 3\n"
	"    failover: {enabled: true, min_healthy: 50%, hold_down: 60s}\n"
	"    post_flip_check: {bake_time: 2m, max_reset_rate: 5, max_unhealthy: 0}\n"
	"    rollout:\n"
	"      steps: [{canary: 10, pause: 5m}, {canary: 50, pause: 5m}, {promote: true}]\n"
	"      pre_flip_gate: {command: \"/usr/local/bin/smoke\", timeout: 60s}\n"
	"  - name: dns\n"
	"    vip: \"[2001:db8::53]:53/udp\"\n"
	"    mode: dsr\n"
	"    pools:\n"
	"      blue: [{address: \"2001:db8::1\"}, {address: \"[2001:db8::2]:53\", weight: 7}]\n"
	"    health_check: {type: exec, command: \"/usr/local/bin/probe\", interval: 100ms,\n"
	"                   timeout: 100ms}\n"
	"    rollout: {strategy: Linear10PercentEvery1Minute}\n";

static bool test_full(void)
{
	struct cfg_errors errs;
	struct cfg *c = NULL;
	const char *f = write_cfg(full_cfg);
	struct cfg_service *web, *dns;
	bool ok = true;

	if (!ASSERT_OK(cfg_load(f, &c, &errs), "load")) {
		for (unsigned int i = 0; i < errs.n; i++)
			test_logf("%s", errs.lines[i]);
		cfg_errors_free(&errs);
		unlink(f);
		return false;
	}
	ok &= ASSERT_EQ(c->interfaces_count, 2, "interfaces");
	ok &= ASSERT_EQ(c->interfaces[1].xdp_mode, BGS_XDP_GENERIC, "xdp_mode");
	ok &= ASSERT_EQ(c->listen_port, 9469, "listen port");
	ok &= ASSERT_TRUE(!strcmp(c->listen_host, "127.0.0.1"), "listen host");
	ok &= ASSERT_TRUE(c->upgrade, "upgrade_on_start defaults to true");
	ok &= ASSERT_TRUE(c->timeouts != NULL, "timeouts");
	if (c->timeouts) {
		const struct bgs_flow_timeouts *t = &c->timeouts->t;

		ok &= ASSERT_EQ(t->tcp_syn, 0, "tcp_syn not given: the default");
		ok &= ASSERT_EQ(t->tcp_est, 3600, "tcp_est 1h");
		ok &= ASSERT_EQ(t->tcp_close, 0, "tcp_close not given");
		ok &= ASSERT_EQ(t->udp, 20, "udp 20s");
		ok &= ASSERT_EQ(t->time_wait, 90, "time_wait 1m30s");
		ok &= ASSERT_EQ(t->health_grace, BGS_TIMEOUT_ZERO, "health_grace 0: none");
	}
	ok &= ASSERT_EQ(c->services_count, 2, "services");
	web = &c->services[0];
	dns = &c->services[1];
	ok &= ASSERT_EQ(web->spec.port, 80, "vip port");
	ok &= ASSERT_EQ(web->spec.proto, IPPROTO_TCP, "vip proto");
	ok &= ASSERT_EQ(web->spec.vip.addr[0], inet_addr("192.0.2.10"), "vip addr");
	ok &= ASSERT_EQ(web->spec.preview_port, 8080, "preview port");
	ok &= ASSERT_EQ(web->preview->pfx[0].len, 24, "preview prefix");
	ok &= ASSERT_EQ(web->drain_ms, 300000, "drain 5m");
	ok &= ASSERT_EQ(web->pools.blue[0].spec.port, 8080, "backend port");
	ok &= ASSERT_EQ(web->pools.green[0].spec.weight, 100, "weight default");
	ok &= ASSERT_EQ(web->check.type, CHECK_HTTP, "check type");
	ok &= ASSERT_EQ(web->check.interval_ms, 1000, "interval");
	ok &= ASSERT_EQ(web->check.timeout_ms, 500, "timeout");
	ok &= ASSERT_EQ(web->check.rise_n, 2, "rise");
	ok &= ASSERT_EQ(web->check.fall_n, 3, "fall");
	ok &= ASSERT_TRUE(!strcmp(web->check.path, "/healthz"), "path");
	ok &= ASSERT_TRUE(web->fo.on, "failover on");
	ok &= ASSERT_EQ(web->fo.min_healthy_pct, 50, "min_healthy");
	ok &= ASSERT_EQ(web->fo.hold_down_ms, 60000, "hold_down");
	ok &= ASSERT_EQ(web->post_flip_check->bake_ms, 120000, "bake_time");
	ok &= ASSERT_EQ(web->rollout->steps_count, 3, "steps");
	ok &= ASSERT_EQ(web->rollout->steps[1].pause_ms, 300000, "pause");
	ok &= ASSERT_EQ(dns->spec.mode, BGS_MODE_DSR, "dsr");
	ok &= ASSERT_EQ(dns->spec.proto, IPPROTO_UDP, "udp");
	ok &= ASSERT_EQ(dns->spec.vip.family, BGS_AF_INET6, "v6 vip");
	ok &= ASSERT_EQ(dns->pools.blue[0].spec.port, 0, "dsr port left out");
	ok &= ASSERT_EQ(dns->pools.blue[1].spec.weight, 7, "weight");
	ok &= ASSERT_EQ(dns->pools.green_count, 0, "empty pool");
	ok &= ASSERT_EQ(dns->check.type, CHECK_EXEC, "exec");
	ok &= ASSERT_EQ(dns->check.interval_ms, 100, "100ms");
	ok &= ASSERT_EQ(dns->check.fall_n, 3, "fall default");
	ok &= ASSERT_EQ(dns->fo.hold_down_ms, 60000, "hold_down default");
	cfg_free(c);
	unlink(f);
	return ok;
}

/* Load text, expect failure with exactly these error lines (FILE: prefix stripped). */
static bool expect_errors(const char *text, const char *const *want, unsigned int nwant)
{
	struct cfg_errors errs;
	struct cfg *c = NULL;
	const char *f = write_cfg(text);
	size_t flen = strlen(f);
	bool ok = true;

	ok &= ASSERT_TRUE(cfg_load(f, &c, &errs) < 0, "load fails");
	ok &= ASSERT_TRUE(c == NULL, "no config on failure");
	ok &= ASSERT_EQ(errs.n, nwant, "number of errors");
	for (unsigned int i = 0; i < errs.n; i++) {
		const char *line = errs.lines[i];

		if (strncmp(line, f, flen) || line[flen] != ':') {
			FAILF("error does not begin with the file name: %s", line);
			ok = false;
			continue;
		}
		if (i < nwant && strncmp(line + flen + 1, want[i], strlen(want[i]))) {
			FAILF("error %u: got \"%s\", want \"%s...\"", i, line + flen + 1,
			      want[i]);
			ok = false;
		}
	}
	if (!ok)
		for (unsigned int i = 0; i < errs.n; i++)
			test_logf("got: %s", errs.lines[i]);
	cfg_errors_free(&errs);
	unlink(f);
	return ok;
}

#define EXPECT(text, ...)                                                         \
	({                                                                        \
		static const char *const ___w[] = { __VA_ARGS__ };               \
		expect_errors(text, ___w, ARRAY_SIZE(___w));                      \
	})

static const char svc_head[] = "services:\n"
			       "  - name: web\n"
			       "    vip: \"10.100.0.1:80/tcp\"\n";

static bool test_errors_schema(void)
{
	bool ok = true;

	ok &= EXPECT("pin_dir: /x\nbogus: 1\n", "2: bogus: unknown key");
	ok &= EXPECT("pin_dir: /x\npin_dir: /y\n", "2: pin_dir: given twice");
	ok &= EXPECT("interfaces: eth0\n", "1: interfaces: expected a list");
	ok &= EXPECT("interfaces:\n  - {name: eth0, xdp_mode: turbo}\n",
		     "2: interfaces[0].xdp_mode: 'turbo' is not one of: native, generic");
	ok &= EXPECT("interfaces:\n  - {xdp_mode: native}\n",
		     "2: interfaces[0].name: required key is missing");
	ok &= EXPECT("services:\n"
		     "  - name: web\n"
		     "    vip: \"10.100.0.1:80/tcp\"\n"
		     "    pools:\n"
		     "      blue: [{address: \"10.1.1.2:80\", weight: heavy}]\n"
		     "      red: []\n"
		     "    failover: {enabled: maybe}\n",
		     "5: services[0].pools.blue[0].weight: 'heavy' is not a whole number",
		     "6: services[0].pools.red: unknown key",
		     "7: services[0].failover.enabled: 'maybe' is not true or false");
	ok &= EXPECT("services:\n  - name: web\n    pools: {}\n",
		     "2: services[0].vip: required key is missing");
	ok &= EXPECT("services: [\n", "2: (document): YAML syntax");
	ok &= EXPECT("", "1: (document): the file is empty");
	return ok;
}

static bool test_errors_values(void)
{
	char buf[2048];
	bool ok = true;

	snprintf(buf, sizeof(buf),
		 "%s"
		 "    mode: dsr\n"
		 "    drain_timeout: 5 minutes\n"
		 "    preview: {port: 8080, prefixes: [\"198.51.100.1/24\"]}\n"
		 "    pools:\n"
		 "      blue: [{address: \"10.1.1.2:8080\"}, {address: \"nowhere\"}]\n"
		 "      green: [{address: \"10.1.1.2\", weight: 0}]\n"
		 "    health_check:\n"
		 "      type: http\n"
		 "      interval: 100ms\n"
		 "      timeout: 1s\n"
		 "      rise: 0\n"
		 "      command: /bin/true\n"
		 "    failover: {min_healthy: 150%%, hold_down: soon}\n",
		 svc_head);
	ok &= EXPECT(buf,
		     "5: services[0].drain_timeout: bad drain_timeout '5 minutes': expected a "
		     "duration",
		     "6: services[0].preview.port: a preview port needs mode nat",
		     "6: services[0].preview.prefixes[0]: bad prefix '198.51.100.1/24': bits set past /24",
		     "8: services[0].pools.blue[0].address: in dsr the backend port must be",
		     "8: services[0].pools.blue[1].address: bad address 'nowhere'",
		     "9: services[0].pools.green[0].weight: 0 is out of range 1..65535",
		     "13: services[0].health_check.timeout: 1s is longer than the interval",
		     "14: services[0].health_check.rise: 0 is out of range 1..100",
		     "15: services[0].health_check.command: only for type exec",
		     "16: services[0].failover.min_healthy: bad percentage '150%'",
		     "16: services[0].failover.hold_down: bad hold_down 'soon': expected a duration");
	ok &= EXPECT("services:\n"
		     "  - name: web\n"
		     "    vip: \"10.100.0.1:80/sctp\"\n"
		     "    pools: {}\n"
		     "  - name: web\n"
		     "    vip: \"10.100.0.2:80/tcp\"\n"
		     "    pools:\n"
		     "      blue: [{address: \"10.1.1.2:80\"}]\n"
		     "      green: [{address: \"10.1.1.2:80\"}]\n"
		     "    health_check: {type: exec}\n"
		     "    rollout: {strategy: Sometimes}\n",
		     "3: services[0].vip: bad protocol 'sctp' in VIP '10.100.0.1:80/sctp'",
		     "5: services[1].name: 'web' is also services[0]'s name",
		     "9: services[1].pools.green[0].address: '10.1.1.2:80' is already in the blue",
		     "10: services[1].health_check.command: type exec needs a command",
		     "11: services[1].rollout.strategy: 'Sometimes' is not a strategy");
	ok &= EXPECT("metrics: {listen: 127.0.0.1}\n",
		     "1: metrics.listen: '127.0.0.1' needs a port");
	ok &= EXPECT("services:\n"
		     "  - name: web\n"
		     "    vip: \"10.100.0.1:80/tcp\"\n"
		     "    pools: {}\n"
		     "    failover: {min_healthy: 50.5%}\n",
		     "5: services[0].failover.min_healthy: '50.5%': a whole percentage");
	ok &= EXPECT("metrics: {listen: localhost}\n"
		     "interfaces: [{name: eth0}, {name: eth0}]\n",
		     "2: interfaces[1].name: 'eth0' is listed twice",
		     "1: metrics.listen: bad address 'localhost'");
	ok &= EXPECT("services:\n"
		     "  - name: web\n"
		     "    vip: \"10.100.0.1:80/tcp\"\n"
		     "    pools: {}\n"
		     "    rollout:\n"
		     "      steps: [{promote: true}, {canary: 200}, {pause: 1m}]\n",
		     "6: services[0].rollout.steps[0]: promote must be the last step",
		     "6: services[0].rollout.steps[1].canary: 200 is not a percentage",
		     "6: services[0].rollout.steps[2]: a step needs canary");
	return ok;
}

/* timeouts: the six keys, durations in whole seconds, 0 only for time_wait and health_grace;
 * every bad one reported with its line. */
static bool test_errors_timeouts(void)
{
	bool ok = true;

	ok &= EXPECT("timeouts:\n"
		     "  tcp_syn: 0\n"
		     "  tcp_est: 1.5s\n"
		     "  udp: 500ms\n"
		     "  time_wait: soon\n"
		     "  health_grace: 8d\n"
		     "  tcp_close: 20\n"
		     "  tcp: 1s\n",
		     "8: timeouts.tcp: unknown key (expected one of: tcp_syn, tcp_est, tcp_close, "
		     "udp, time_wait, health_grace)",
		     "2: timeouts.tcp_syn: bad tcp_syn '0': at least 1s (0 only for time_wait and "
		     "health_grace)",
		     "3: timeouts.tcp_est: bad tcp_est '1.5s': expected whole seconds",
		     "7: timeouts.tcp_close: bad tcp_close '20': expected whole seconds",
		     "4: timeouts.udp: bad udp '500ms': expected whole seconds",
		     "5: timeouts.time_wait: bad time_wait 'soon': expected whole seconds like 30s, "
		     "5m, 1h or 1m30s (at most 7d), or 0 for none",
		     "6: timeouts.health_grace: bad health_grace '8d': expected whole seconds");
	ok &= EXPECT("timeouts: 10s\n", "1: timeouts: expected a mapping, found '10s'");
	ok &= EXPECT("timeouts: {udp: 20s, udp: 30s}\n", "1: timeouts.udp: given twice");
	ok &= EXPECT("timeouts: {udp: [20s]}\n", "1: timeouts.udp: expected a single value");
	return ok;
}

/* The config's values go through the library's parsers (user/lib/parse.c): the forms the
 * config documents are accepted, with the key named in the message. */
static bool test_parsers(void)
{
	__u64 ms = 0;
	__u32 bps = 0;
	struct bgs_ip ip;
	__u16 port;
	bool ok = true;

	ok &= ASSERT_TRUE(!bgs_parse_duration("100ms", "interval", false, &ms) && ms == 100,
			  "100ms");
	ok &= ASSERT_TRUE(!bgs_parse_duration("2s", "interval", false, &ms) && ms == 2000, "2s");
	ok &= ASSERT_TRUE(!bgs_parse_duration("5m", "interval", false, &ms) && ms == 300000, "5m");
	ok &= ASSERT_TRUE(!bgs_parse_duration("1h", "interval", false, &ms) && ms == 3600000,
			  "1h");
	ok &= ASSERT_TRUE(!bgs_parse_duration("1m30s", "interval", false, &ms) && ms == 90000,
			  "1m30s");
	ok &= ASSERT_TRUE(bgs_parse_duration("5", "interval", false, &ms) < 0, "no unit");
	ok &= ASSERT_TRUE(strstr(bgs_errmsg(), "interval") != NULL, "message names the key");
	ok &= ASSERT_TRUE(bgs_parse_duration("-1s", "interval", false, &ms) < 0, "negative");
	ok &= ASSERT_TRUE(bgs_parse_duration("8d", "interval", false, &ms) < 0, "over 7d");
	ok &= ASSERT_TRUE(bgs_parse_duration("none", "interval", false, &ms) < 0, "none");
	ok &= ASSERT_TRUE(!bgs_parse_duration("none", "drain_timeout", true, &ms) &&
				  ms == BGS_NO_DEADLINE,
			  "drain_timeout none");
	ok &= ASSERT_TRUE(!bgs_parse_percent("50%", &bps) && bps == 5000, "50%");
	ok &= ASSERT_TRUE(!bgs_parse_percent("0", &bps) && bps == 0, "0");
	ok &= ASSERT_TRUE(bgs_parse_percent("101%", &bps) < 0, "101%");
	ok &= ASSERT_TRUE(bgs_parse_percent("5%%", &bps) < 0, "5%%");
	ok &= ASSERT_TRUE(!bgs_parse_addr_port("[::1]:80", &ip, &port) && port == 80, "v6");
	ok &= ASSERT_TRUE(!bgs_parse_addr_port("::1", &ip, &port) && !port, "v6 without port");
	ok &= ASSERT_TRUE(bgs_parse_addr_port("1.2.3.4:0", &ip, &port) < 0, "port 0");
	ok &= ASSERT_TRUE(bgs_parse_addr_port("1.2.3.4:70000", &ip, &port) < 0, "big");
	return ok;
}

/* The timeout parsers bgctl init --timeout and the timeouts: keys share, and what the
 * library makes of their values. */
static bool test_timeout_parsers(void)
{
	struct bgs_flow_timeouts t = {};
	struct bgs_sizes in = {}, out;
	bool ok = true;

	ok &= ASSERT_EQ(bgs_parse_timeout_arg("health_grace=3s", "--timeout", &t), 5,
			"health_grace is index 5");
	ok &= ASSERT_EQ(t.health_grace, 3, "3s");
	ok &= ASSERT_EQ(bgs_parse_timeout_arg("udp=2m", "--timeout", &t), 3, "udp");
	ok &= ASSERT_EQ(t.udp, 120, "2m");
	ok &= ASSERT_EQ(bgs_parse_timeout_arg("time_wait=0", "--timeout", &t), 4, "time_wait 0");
	ok &= ASSERT_EQ(t.time_wait, BGS_TIMEOUT_ZERO, "0 s is BGS_TIMEOUT_ZERO");
	ok &= ASSERT_EQ(bgs_parse_timeout_arg("tcp_est=2000ms", "--timeout", &t), 1, "2000ms");
	ok &= ASSERT_EQ(t.tcp_est, 2, "2000ms is 2 s");
	ok &= ASSERT_TRUE(bgs_parse_timeout_arg("tcp_syn=0s", "--timeout", &t) < 0, "tcp_syn 0");
	ok &= ASSERT_TRUE(strstr(bgs_errmsg(), "--timeout tcp_syn '0s'") != NULL,
			  "message names the option, the timeout and the value");
	ok &= ASSERT_TRUE(bgs_parse_timeout_arg("udp=1500ms", "--timeout", &t) < 0, "1500ms");
	ok &= ASSERT_TRUE(bgs_parse_timeout_arg("udp=8d", "--timeout", &t) < 0, "over 7d");
	ok &= ASSERT_TRUE(bgs_parse_timeout_arg("udp", "--timeout", &t) < 0, "no =");
	ok &= ASSERT_TRUE(strstr(bgs_errmsg(), "NAME=DURATION") != NULL, "says the form");
	ok &= ASSERT_TRUE(bgs_parse_timeout_arg("=1s", "--timeout", &t) < 0, "no name");
	ok &= ASSERT_TRUE(bgs_parse_timeout_arg("udpx=1s", "--timeout", &t) < 0, "no such");
	ok &= ASSERT_TRUE(strstr(bgs_errmsg(), "'udpx' is not a timeout") != NULL,
			  "names the bad name");
	ok &= ASSERT_TRUE(bgs_parse_timeout_arg("ud=1s", "--timeout", &t) < 0, "no prefixes");
	ok &= ASSERT_TRUE(bgs_parse_timeout("1s", "x", BGS_TIMEOUT_COUNT, &t) < 0, "index");
	ok &= ASSERT_EQ(t.tcp_syn, 0, "refusals leave the values alone");
	ok &= ASSERT_EQ(t.udp, 120, "udp kept");
	for (unsigned int i = 0; i < BGS_TIMEOUT_COUNT; i++)
		ok &= ASSERT_TRUE(bgs_timeout_name(i) != NULL, "every index has a name");
	ok &= ASSERT_TRUE(bgs_timeout_name(BGS_TIMEOUT_COUNT) == NULL, "no name past the last");
	/* what bgs_init stores: the given ones, 0 s for BGS_TIMEOUT_ZERO, defaults for the rest */
	in.timeouts = t;
	ok &= ASSERT_OK(bgs_sizes_check(&in, &out), "sizes check");
	ok &= ASSERT_EQ(out.timeouts.tcp_syn, BGS_DEF_TIMEOUT_TCP_SYN, "default tcp_syn");
	ok &= ASSERT_EQ(out.timeouts.tcp_est, 2, "tcp_est");
	ok &= ASSERT_EQ(out.timeouts.udp, 120, "udp");
	ok &= ASSERT_EQ(out.timeouts.time_wait, 0, "time_wait 0 s");
	ok &= ASSERT_EQ(out.timeouts.health_grace, 3, "health_grace");
	ok &= ASSERT_EQ(bgs_timeout_get(&out.timeouts, 5), 3, "get by index");
	return ok;
}

static bool test_small(void)
{
	struct cfg_errors errs;
	struct cfg *c = NULL;
	const char *f = write_cfg("upgrade_on_start: false\n");
	bool ok = ASSERT_OK(cfg_load(f, &c, &errs), "a config without services loads");

	ok = ok && ASSERT_FALSE(c->upgrade, "upgrade_on_start: false");
	ok = ok && ASSERT_EQ(c->services_count, 0, "no services");
	ok = ok && ASSERT_EQ(c->listen_port, 9469, "default listen port");
	ok = ok && ASSERT_TRUE(c->timeouts == NULL, "no timeouts: the library's defaults");
	cfg_free(c);
	cfg_errors_free(&errs);
	unlink(f);
	return ok;
}

/* The example that make install ships (and the man page shows) is a good config. */
static bool test_example(void)
{
	struct cfg_errors errs;
	struct cfg *c = NULL;
	int err = cfg_load("scripts/bgswitch.yaml.example", &c, &errs);
	bool ok;

	for (unsigned int i = 0; i < errs.n; i++)
		test_logf("%s", errs.lines[i]);
	cfg_errors_free(&errs);
	ok = ASSERT_OK(err, "scripts/bgswitch.yaml.example (run from the source tree) loads");
	ok = ok && ASSERT_EQ(c->services[0].check.type, CHECK_HTTP, "example's check");
	cfg_free(c);
	return ok;
}

int main(int argc, char **argv)
{
	static const struct test_case tests[] = {
		{ "full", test_full },
		{ "errors_schema", test_errors_schema },
		{ "errors_values", test_errors_values },
		{ "errors_timeouts", test_errors_timeouts },
		{ "parsers", test_parsers },
		{ "timeout_parsers", test_timeout_parsers },
		{ "example", test_example },
		{ "small", test_small },
	};

	return test_run_all("test_agent_config", tests, ARRAY_SIZE(tests), argc, argv);
}
