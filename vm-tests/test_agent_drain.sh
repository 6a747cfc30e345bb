#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# bgagent follows a drain started by a flip made with bgctl: flows left on the old color in
# /metrics, the drain survives kill -9 of the agent (the restarted agent resumes it from the
# flip word, the open connection keeps its blue backend throughout), and when the last old
# flow closes the drain is recorded as drained (log, metric, history) and on_drained runs
# with SERVICE, COLOR, DRAIN_RESULT and FLOWS_LEFT.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

agent_topo_up
agent_config 100ms 60s
cat >>"$AGENT_CFG" <<EOF
    on_drained: "echo \$SERVICE \$COLOR \$DRAIN_RESULT \$FLOWS_LEFT >> $BGS_RUN/drained"
EOF
agent_start_healthy

hold_start "$NS_CL" tcp "$VIP_NAT" 80 "$BGS_RUN/hold" 40
hold=$HOLD_PID
wait_lines "$BGS_RUN/hold" 3 || fail "hold flow got no answers"
be=$(hold_backends_after "$BGS_RUN/hold" 0)
lbctl flip web --drain-timeout "$(slow_d 60s)" --reason "release 2" >/dev/null || fail "bgctl flip"
agent_wait_log "web: tracking the drain of blue" || fail "agent did not notice the drain"
left() { metric 'bgswitch_drain_flows_remaining{service="web",color="blue"}'; }
for _ in $(seq 1 "$(slow 60)"); do
	[ "$(left)" = 1 ] && break
	sleep 0.05
done
check "/metrics: one blue flow left to drain" test "$(left)" = 1
agent_wait_log "web: draining blue: 1 flow left" || fail "no flows-left log line"
check "flip by bgctl counted as other" \
	test "$(metric 'bgswitch_flips_total{service="web",reason="other"}')" = 1

k=$(grep -c '^[0-9]' "$BGS_RUN/hold")
kill -9 "$AGENT_PID"
: >"$AGENT_LOG"
agent_start
agent_wait_log "ready: 1 service" || fail "restarted agent not ready"
agent_wait_log "web: tracking the drain of blue" || fail "restarted agent did not resume the drain"
agent_wait_log "web: draining blue: 1 flow left" || fail "restarted agent does not count the flow"
wait_lines "$BGS_RUN/hold" $((k + 5)) || fail "hold flow stalled"
check "the open connection stayed on its blue backend ($be)" \
	test "$(hold_backends_after "$BGS_RUN/hold" 0)" = "$be"

hold_stop "$BGS_RUN/hold" "$hold"
# The drain counts flows by the data plane's rule (include/bgswitch_flow.h): a closed TCP
# flow's entry still holds it for timeouts.tcp_close (30 s by default: late FINs and ACKs
# reach its backend), so "no flow left" comes that long after the close. Bounded: 50 s.
drained=0
for _ in 1 2 3 4 5; do
	agent_wait_log "web: blue drain of generation [0-9]* over: no flow left" && { drained=1; break; }
done
[ "$drained" = 1 ] || fail "drain not recorded as over: $(tail -3 "$AGENT_LOG")"
check "drains_total counts it" \
	test "$(metric 'bgswitch_drains_total{service="web",result="drained"}')" = 1
check "history: drained, by bgagent" \
	jqt '[.records[] | select(.verb == "drained" and .actor == "bgagent" and
		.result == "drained" and .color == "blue")] | length == 1' < <(lbctl -j history web)
for _ in $(seq 1 "$(slow 40)"); do
	[ -s "$BGS_RUN/drained" ] && break
	sleep 0.05
done
check "on_drained ran with its environment" grep -qx "web blue drained 0" "$BGS_RUN/drained"
kill -9 "$AGENT_PID"
: >"$AGENT_LOG"
agent_start
agent_wait_log "ready: 1 service" || fail "restarted agent not ready"
sleep "$(slow_d 1.5)"
check "a finished drain is not tracked again after a restart" \
	bash -c "! grep -q 'tracking the drain' '$AGENT_LOG'"
check "and not recorded twice" \
	jqt '[.records[] | select(.verb == "drained")] | length == 1' < <(lbctl -j history web)
