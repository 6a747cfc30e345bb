#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# bgagent end to end (nat, so the agent's own HTTP checks come back through the switch's
# reply path): started from a config it attaches and creates the service, every backend goes
# healthy and serves; /metrics is scraped and matches bgctl status -j (the verdict counters
# too: every reason, none ahead); the RSTs backends send are counted per backend (status and
# metrics agree with what the client saw); one blue backend's server stopped -> marked down
# within fall x interval and its new flows go to the other blue backend; back up after rise
# checks; a bad config on SIGHUP is refused and the old one kept;
# a SIGHUP adding a backend loses no connection; kill -9 of the agent leaves traffic as it
# was and a restart adopts the pins without a flap (no publish, no health change).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

IV_MS=100
FALL=3

agent_topo_up
agent_config ${IV_MS}ms
agent_start
agent_wait_log "ready: 1 service" || fail "agent did not start: $(tail -5 "$AGENT_LOG")"
for i in c1 c2 "${BACKENDS[@]}"; do
	grep -q "attached to $i " "$AGENT_LOG" || fail "agent did not attach to $i"
done
ok "agent started from the config and attached to c1 c2 b1 b2 g1 g2"

all_healthy() {
	[ "$(metrics | grep -c '^bgswitch_backend_healthy{.*} 1$')" -eq 4 ]
}
for _ in $(seq 1 "$(slow 100)"); do
	all_healthy && break
	sleep 0.05
done
check "every backend of both colors is healthy (http checks through the nat reply path)" \
	all_healthy

out=$(traffic "$NS_CL" http "$VIP_NAT" 80 40)
check "40 connections through the agent's service, all on blue" \
	jqt '.ok == 40 and .colors.blue == 40' <<<"$out"

# ---- /metrics ----
m=$(metrics) || fail "cannot scrape /metrics"
for name in bgswitch_build_info bgswitch_backend_up bgswitch_backend_packets_total \
	bgswitch_backend_bytes_total bgswitch_backend_new_flows_total bgswitch_backend_flows \
	bgswitch_backend_resets_total bgswitch_service_resets_total \
	bgswitch_service_live_color bgswitch_service_generation bgswitch_service_canary_ratio \
	bgswitch_drain_flows_remaining bgswitch_flips_total bgswitch_health_checks_total \
	bgswitch_service_packets_total bgswitch_service_drift bgswitch_config_reloads_total; do
	grep -q "^$name{" <<<"$m" || fail "/metrics lacks $name"
done
ok "/metrics has every documented metric"
for name in $(jq -r '.panels[].targets[].expr' "$BGS_ROOT/docs/grafana-bgswitch.json" |
	grep -o 'bgswitch_[a-z_]*' | sort -u); do
	grep -q "^$name{" <<<"$m" || fail "the Grafana dashboard uses $name, which /metrics lacks"
done
ok "every metric of the example Grafana dashboard is served"

# ---- the switch's verdict counters ----
# /metrics first, bgctl after: the counters only grow, so /metrics cannot be ahead.
m=$(metrics) || fail "cannot scrape /metrics"
verdicts=$(lbjq '.verdicts' -j status)
n=$(jq length <<<"$verdicts")
in_m() { awk -v s="$1" 'index($0, s " ") == 1 { print $2 }' <<<"$m"; }
verdict_names() { sed -n "s/^$1{verdict=\"\([a-z0-9_]*\)\"} [0-9]*\$/\1/p" <<<"$m" | sort; }
for fam in bgswitch_verdict_packets_total bgswitch_verdict_bytes_total; do
	check "$fam: one series per reason of bgctl status ($n)" \
		test "$(grep -c "^$fam{" <<<"$m")" = "$n" -a "$n" -gt 0
	d=$(diff <(verdict_names $fam) <(jq -r 'keys[]' <<<"$verdicts" | sort) | tr '\n' ' ')
	check "$fam: the reasons' names are bgctl status's${d:+ (/metrics < > bgctl: $d)}" \
		test -z "$d"
done
fwd=$(in_m 'bgswitch_verdict_packets_total{verdict="fwd_redirect"}')
want=$(jq .fwd_redirect <<<"$verdicts")
check "forwarded packets in /metrics (fwd_redirect $fwd; bgctl status, later: $want)" \
	test "${fwd:-0}" -gt 0 -a "${fwd:-0}" -le "$want"
check "forwarded bytes in /metrics" \
	test "$(in_m 'bgswitch_verdict_bytes_total{verdict="fwd_redirect"}')" -gt "$fwd"
check "a ct_stale_drained series from the start" \
	test -n "$(in_m 'bgswitch_verdict_packets_total{verdict="ct_stale_drained"}')"
st=$(lbctl -j status web)
gen=$(jq -r '.services[0].generation' <<<"$st")
check "generation in /metrics matches bgctl status ($gen)" \
	test "$(metric 'bgswitch_service_generation{service="web"}')" = "$gen"
check "live color in /metrics matches bgctl status" \
	test "$(metric 'bgswitch_service_live_color{service="web",color="blue"}')" = 1
for b in b1 b2; do
	a="${BE_ADDR[$b]}:8080"
	want=$(jq -r ".services[0].pools.blue.backends[] | select(.address == \"$a\") | .new_flows" <<<"$st")
	got=$(metric "bgswitch_backend_new_flows_total{service=\"web\",color=\"blue\",backend=\"$a\"}")
	check "new flows of $b in /metrics ($got) match bgctl status ($want)" test "$got" = "$want"
done

# ---- backend resets, counted on the reply path ----
# Each connection reads the answer to its end (the server closes), then writes once more: the
# server's kernel answers that with exactly one RST, which the switch counts for the backend.
be_resets() {
	jq -r ".services[0].pools.blue.backends[] | select(.address == \"$1\") | .resets" <<<"$2"
}
st0=$(lbctl -j status web)
out=$(traffic "$NS_CL" reset "$VIP_NAT" 80 20)
check "20 connections reset by their servers after the answer" \
	jqt '.ok == 20 and .colors.blue == 20' <<<"$out"
st=$(lbctl -j status web)
for b in b1 b2; do
	a="${BE_ADDR[$b]}:8080"
	want=$(jq -r ".backends[\"blue $b\"] // 0" <<<"$out")
	got=$(($(be_resets "$a" "$st") - $(be_resets "$a" "$st0")))
	check "bgctl status counts $b's resets ($got, its connections $want)" test "$got" = "$want"
	got=$(metric "bgswitch_backend_resets_total{service=\"web\",color=\"blue\",backend=\"$a\"}")
	check "resets of $b in /metrics ($got) match bgctl status" \
		test "$got" = "$(be_resets "$a" "$st")"
done
check "the blue pool's resets in /metrics match bgctl status" \
	test "$(metric 'bgswitch_service_resets_total{service="web",color="blue"}')" = \
	"$(jq -r '.services[0].pools.blue.resets' <<<"$st")"
check "green sent no reset" \
	test "$(metric 'bgswitch_service_resets_total{service="web",color="green"}')" = 0
check "health check counters count passes" \
	test "$(metric "bgswitch_health_checks_total{service=\"web\",color=\"green\",backend=\"${BE_ADDR[g1]}:8080\",result=\"ok\"}")" -gt 2

# ---- one blue backend dies ----
t0=$(now_ms)
responder_stop b1 || fail "cannot stop b1's server"
down_ms=
for _ in $(seq 1 "$(slow 200)"); do
	if [ "$(backend_health "${BE_ADDR[b1]}:8080" blue)" = down ]; then
		down_ms=$(($(now_ms) - t0))
		break
	fi
	sleep 0.01
done
[ -n "$down_ms" ] || fail "b1 not marked down within $(slow 2) s"
fails=$(metric "bgswitch_health_checks_total{service=\"web\",color=\"blue\",backend=\"${BE_ADDR[b1]}:8080\",result=\"fail\"}")
# fall x interval, plus one interval for the phase of the first failing check, plus slack
# for a loaded host and for the bgctl runs that watch it; the count of failed checks shows
# that exactly `fall` of them made the decision. The interval and the bound are host figures,
# both scaled by the slowdown (lib.sh).
limit=$(slow $(((FALL + 1) * IV_MS + 300)))
echo "# measured: b1 marked down ${down_ms} ms after its server stopped (fall $FALL x $(slow_d ${IV_MS}ms), slowdown $BGS_SLOW)"
check "b1 marked down within $limit ms (took $down_ms)" test "$down_ms" -le "$limit"
check "b1 marked down after $FALL failed checks (counted $fails by the time it was seen)" \
	test "$fails" -ge "$FALL" -a "$fails" -le $((FALL + 2))
grep -q "web blue backend ${BE_ADDR[b1]}:8080: down (failed $FALL checks" "$AGENT_LOG" ||
	fail "no log line for b1 going down"
out=$(traffic "$NS_CL" http "$VIP_NAT" 80 30)
check "new flows go to the other blue backend (b2)" \
	jqt '.ok == 30 and .backends["blue b2"] == 30' <<<"$out"
check "no failover: blue still 1/2 healthy = 50%" \
	test "$(lbjq '.services[0].live' -j status web)" = blue

responder_start b1 || fail "cannot restart b1's server"
for _ in $(seq 1 "$(slow 100)"); do
	[ "$(backend_health "${BE_ADDR[b1]}:8080" blue)" = up ] && break
	sleep 0.02
done
check "b1 back up after its rise checks" test "$(backend_health "${BE_ADDR[b1]}:8080" blue)" = up

# a long-lived connection across everything below
hold_start "$NS_CL" tcp "$VIP_NAT" 80 "$BGS_RUN/hold1" 30
hold1=$HOLD_PID
wait_lines "$BGS_RUN/hold1" 3 || fail "hold flow got no answers"

# ---- SIGHUP: a bad config is refused, the old one kept ----
cp "$AGENT_CFG" "$BGS_RUN/good.yaml"
sed -i 's/rise: 2/rise: many/' "$AGENT_CFG"
kill -HUP "$AGENT_PID"
agent_wait_log "reload failed" || fail "bad config on SIGHUP: no 'reload failed' in the log"
grep -q "$AGENT_CFG:[0-9]*: services\[0\].health_check.rise: 'many' is not a whole number" \
	"$AGENT_LOG" || fail "the reload error does not name file, line and key"
check "agent still running after a bad SIGHUP" kill -0 "$AGENT_PID"
check "failed reload counted" \
	test "$(metric 'bgswitch_config_reloads_total{result="failed"}')" = 1
check "the service is untouched (still 4 backends)" \
	test "$(lbjq '[.services[0].pools[].backends[]] | length' -j status web)" = 4

# ---- SIGHUP adding a backend: one publish, no connection lost ----
cp "$BGS_RUN/good.yaml" "$AGENT_CFG"
sed -i "s|blue:  \[{address: \"${BE_ADDR[b1]}:8080\"}|blue:  [{address: \"${BE_ADDR[b1]}:8080\"}, {address: \"${BE_ADDR[b1]}:80\"}|" \
	"$AGENT_CFG"
grep -q "${BE_ADDR[b1]}:80\"" "$AGENT_CFG" || fail "test bug: config not edited"
k=$(grep -c '^[0-9]' "$BGS_RUN/hold1")
kill -HUP "$AGENT_PID"
agent_wait_log "reloaded: 1 service" || fail "good config on SIGHUP not reloaded"
grep -q "added blue backend ${BE_ADDR[b1]}:80 " "$AGENT_LOG" || fail "backend not added"
check "the added backend is one change and one table publish (history)" \
	jqt '[.records[] | select(.verb == "service apply" and .reason == "config")] | last |
		.status == "done" and .generation - .generation_before == 1' < <(lbctl -j history web)
for _ in $(seq 1 "$(slow 100)"); do
	[ "$(backend_health "${BE_ADDR[b1]}:80" blue)" = up ] && break
	sleep 0.02
done
check "added backend up after its rise checks" \
	test "$(backend_health "${BE_ADDR[b1]}:80" blue)" = up
wait_lines "$BGS_RUN/hold1" $((k + 5)) || fail "hold flow stalled across the reload"
out=$(traffic "$NS_CL" http "$VIP_NAT" 80 60)
check "60 connections after the reload, none lost" jqt '.ok == 60 and .colors.blue == 60' <<<"$out"
check "the added backend takes new flows" \
	test "$(metric "bgswitch_backend_new_flows_total{service=\"web\",color=\"blue\",backend=\"${BE_ADDR[b1]}:80\"}")" -gt 0

# ---- SIGHUP removing it again ----
cp "$BGS_RUN/good.yaml" "$AGENT_CFG"
k=$(grep -c '^[0-9]' "$BGS_RUN/hold1")
kill -HUP "$AGENT_PID"
agent_wait_log "removed blue backend ${BE_ADDR[b1]}:80" || fail "backend not removed on SIGHUP"
check "3 backends -> 2 blue again" \
	test "$(blue_backends web)" = 2
check "no drift after the agent's own changes" \
	test "$(drift_of web)" = 0
wait_lines "$BGS_RUN/hold1" $((k + 5)) || fail "hold flow stalled across the second reload"
out=$(traffic "$NS_CL" http "$VIP_NAT" 80 40)
check "40 connections after the removal, none lost" jqt '.ok == 40 and .colors.blue == 40' <<<"$out"

# ---- kill -9: traffic unaffected; a restart adopts without a flap ----
gen=$(lbjq '.services[0].generation' -j status web)
health_before=$(lbjq '[.services[0].pools[].backends[] | .address + "=" + .health] | join(" ")' -j status web)
k=$(grep -c '^[0-9]' "$BGS_RUN/hold1")
kill -9 "$AGENT_PID"
out=$(traffic "$NS_CL" http "$VIP_NAT" 80 40)
check "with the agent killed (-9), 40 new connections all served" jqt '.ok == 40' <<<"$out"
wait_lines "$BGS_RUN/hold1" $((k + 5)) || fail "hold flow stalled after kill -9"
: >"$AGENT_LOG"
agent_start
agent_wait_log "ready: 1 service" || fail "restarted agent not ready: $(tail -5 "$AGENT_LOG")"
sleep "$(slow_d 1)"
check "restart: no publish (generation still $gen)" \
	test "$(lbjq '.services[0].generation' -j status web)" = "$gen"
check "restart: health adopted, unchanged" \
	test "$(lbjq '[.services[0].pools[].backends[] | .address + "=" + .health] | join(" ")' -j status web)" = "$health_before"
check "restart: no backend went up or down in the log" \
	bash -c "! grep -Eq 'backend .*: (up|down) \\(' '$AGENT_LOG'"
check "restart: nothing re-attached or re-created" \
	bash -c "! grep -Eq 'attached to|created service|added .* backend' '$AGENT_LOG'"
check "upgrade_on_start: one switch upgrade at the first start, none at the restart" \
	jqt '[.records[] | select(.verb == "upgrade" and .actor == "bgagent")] | length == 1' \
	< <(lbctl -j history)
hold_stop "$BGS_RUN/hold1" "$hold1"
check "the long-lived connection never saw an error" \
	bash -c "! grep -q error '$BGS_RUN/hold1'"

check "the log has only the agent's lines (no stray output)" \
	bash -c "! grep -Ev '^(bgagent: |libxdp: |libbpf: )' '$AGENT_LOG'"

kill -TERM "$AGENT_PID"
for _ in $(seq 1 "$(slow 100)"); do
	kill -0 "$AGENT_PID" 2>/dev/null || break
	sleep 0.05
done
check "SIGTERM stops the agent" bash -c "! kill -0 $AGENT_PID 2>/dev/null"
out=$(traffic "$NS_CL" http "$VIP_NAT" 80 20)
check "after SIGTERM the switch is still attached and serving" jqt '.ok == 20' <<<"$out"
