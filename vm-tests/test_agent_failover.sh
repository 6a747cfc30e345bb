#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# bgagent failover end to end (nat): with interval 100ms, timeout 100ms, fall 3, every blue
# server is stopped; the agent flips web to green on its own and new connections are served
# again within 500 ms of the moment the last blue server died (measured by a client making a
# new connection every 10 ms). The flip is in the audit history with the agent as actor and
# the reason; blue coming back does not flip it back (no automatic failback), green dying
# within hold_down does not flip it either, nor after a restart of the agent (kill -9).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

agent_up_healthy 100ms
out=$(traffic "$NS_CL" http "$VIP_NAT" 80 20)
check "served by blue before" jqt '.ok == 20 and .colors.blue == 20' <<<"$out"

go=$BGS_RUN/go
probe_until green "$NS_CL" "$VIP_NAT" 80 "$go" >"$BGS_RUN/probe.out" &
probe=$!
sleep "$(slow_d 0.5)" # the prober's start-up
responder_stop b1 || fail "cannot stop b1"
responder_stop b2 || fail "cannot stop b2"
touch "$go"
wait "$probe" || fail "no green answer within $(slow 10) s of every blue server's death"
read -r gap failed <"$BGS_RUN/probe.out"
# 500 ms is the target at 100 ms checks on the host: with the checks scaled by the slowdown
# (lib.sh), so is the bound.
iv=$(slow_d 100ms)
echo "# measured: new connections failed for $gap ms ($failed attempts) after every blue server died (interval $iv, timeout $iv, fall 3; slowdown $BGS_SLOW; the target, 500 ms at 100 ms checks, scaled: $(slow 500) ms)"
check "failover within $(slow 500) ms (took $gap ms)" test "$gap" -lt "$(slow 500)"
# New flows reach green as soon as blue is marked down (the switch skips a pool with no
# healthy backend); the agent's flip follows on its next look at the service: wait for it.
live_of_web() { lbjq '.services[0].live' -j status web; }
check "web is live on green" wait_eq green live_of_web
out=$(traffic "$NS_CL" http "$VIP_NAT" 80 40)
check "40 new connections all served by green" jqt '.ok == 40 and .colors.green == 40' <<<"$out"
h=$(lbctl -j history web)
check "history: the flip, by bgagent, with the reason" \
	jqt '[.records[] | select(.verb == "flip" and .actor == "bgagent" and .status == "done"
		and .reason == "failover: blue 0/2 healthy < 50%" and .from == "blue"
		and .to == "green")] | length == 1' <<<"$h"
check "/metrics counts one failover flip" \
	test "$(metric 'bgswitch_flips_total{service="web",reason="failover"}')" = 1

responder_start b1 || fail "cannot restart b1"
responder_start b2 || fail "cannot restart b2"
for _ in $(seq 1 "$(slow 100)"); do
	[ "$(metrics | grep -c '^bgswitch_backend_up{.*color="blue".*} 1$')" -eq 2 ] && break
	sleep 0.05
done
check "blue healthy again" \
	test "$(metrics | grep -c '^bgswitch_backend_up{.*color="blue".*} 1$')" -eq 2
sleep "$(slow_d 0.5)"
check "no automatic failback: still green" test "$(lbjq '.services[0].live' -j status web)" = green

# every green server dies within hold_down: the agent must not flip back
responder_stop g1 || fail "cannot stop g1"
responder_stop g2 || fail "cannot stop g2"
agent_wait_log "no failover: green 0/2 healthy < 50%, but in hold_down" ||
	fail "no hold_down message"
check "hold_down: no second automatic flip" test "$(lbjq '.services[0].live' -j status web)" = green

# a restart (kill -9) inside the hold_down keeps it: the history has the agent's flip
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
: >"$AGENT_LOG"
agent_start
agent_wait_log "ready: 1 service" || fail "restarted agent not ready: $(tail -5 "$AGENT_LOG")"
check "restart: the hold_down is resumed from the history" \
	grep -q "web: automatic flip .* ago (history): no other one before its hold_down ends" \
	"$AGENT_LOG"
agent_wait_log "no failover: green 0/2 healthy < 50%, but in hold_down" ||
	fail "restarted agent: no hold_down message"
sleep "$(slow_d 1)"
check "restart: still no second automatic flip" \
	test "$(lbjq '.services[0].live' -j status web)" = green
check "restart: the history still has one automatic flip" \
	jqt '[.records[] | select(.verb == "flip" and .actor == "bgagent")] | length == 1' \
	< <(lbctl -j history web)
