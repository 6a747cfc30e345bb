#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The post-flip check (nat): green is a bad release whose servers reset every request (their
# health checks pass). A 50% canary to it resets connections but rolls nothing back (only a
# flip starts the watch). A flip to it made with bgctl is watched; the agent is killed with
# -9 and a new one goes on with the watch: under real traffic the resets pass max_reset_rate
# and it rolls back to blue within bake_time, the history saying why with the measured rate.
# `bgctl rollout start` (AllAtOnce) flips to it again: rolled back again, the rollout marked
# so. Green fixed, a flip made with bgctl is watched for bake_time and stays.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

BAKE=$(slow 8) # seconds: a host figure, scaled by the slowdown (lib.sh)

agent_topo_up
agent_config 100ms 2s
cat >>"$AGENT_CFG" <<EOF
    post_flip_check: {bake_time: ${BAKE}s, max_reset_rate: 5, max_unhealthy: 0}
    rollout: {strategy: AllAtOnce}
EOF
# a short hold_down: the second rollback comes soon after the first
sed -i "s/hold_down: 60s/hold_down: $(slow_d 2s)/" "$AGENT_CFG"
for b in g1 g2; do
	responder_stop $b || fail "cannot stop $b"
	responder_start $b --reset || fail "cannot start $b as a bad release"
done
agent_start_healthy

live() { lbjq '.services[0].live' -j status web; }
green_resets() { lbjq '.services[0].pools.green.resets' -j status web; }
rollbacks() {
	lbctl -j history web | jq '[.records[] | select(.verb == "rollback" and
		.actor == "bgagent" and .status == "done")] | length'
}

# ---- a canary alone does not start the watch ----
lbctl canary web 50 >/dev/null || fail "canary 50"
out=$(traffic "$NS_CL" http "$VIP_NAT" 80 60)
check "canary: blue answers, green resets (ok $(jq .ok <<<"$out") of 60)" \
	jqt '.colors.blue > 10 and .errors > 10' <<<"$out"
check "the switch counted green's resets ($(green_resets))" test "$(green_resets)" -gt 10
sleep "$(slow_d 2)" # two ticks of the agent
check "no rollback for a canary" test "$(rollbacks)" = 0
check "blue still live" test "$(live)" = blue
lbctl canary web 0 >/dev/null || fail "canary 0"

# wait_rollback N: until blue is live again (bounded: bake_time + 3 s at slowdown 1); prints
# the ms taken
wait_rollback() {
	local t0 i
	t0=$(now_ms)
	for ((i = 0; i < BAKE * 10 + $(slow 30); i++)); do
		[ "$(live)" = blue ] && break
		sleep 0.1
	done
	echo $(($(now_ms) - t0))
}
bad_traffic() { # real traffic (bounded: 600 connections or 20 s at slowdown 1)
	nsx "$NS_CL" timeout "$(slow 30)" python3 "$BGS_ROOT/vm-tests/client.py" http "$VIP_NAT" 80 \
		600 --timeout "$(slow 1)" --deadline "$(slow 20)" >/dev/null 2>&1 &
	BGS_PIDS+=($!)
}

# ---- a flip with bgctl, watched across an agent's kill -9 ----
lbctl flip web --drain-timeout 0 >/dev/null || fail "flip to green"
t_flip=$(now_ms)
agent_wait_log "post-flip check: watching green" || fail "no watch of the bgctl flip"
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
agent_start
agent_wait_log "post-flip check: resumes watching green" ||
	fail "the new agent did not go on with the watch: $(tail -5 "$AGENT_LOG")"
ok "a new agent goes on with the watch"
bad_traffic
ms=$(wait_rollback)
check "rolled back to blue" test "$(live)" = blue
t=$(($(now_ms) - t_flip))
echo "# measured: rolled back $t ms after the bgctl flip (agent killed and restarted meanwhile; traffic began ${ms} ms before the rollback; bake_time ${BAKE}s)"
check "within bake_time of the flip" test "$t" -lt $((BAKE * 1000))
check "history: the rollback by bgagent, with the measured rate" jqt '[.records[] |
	select(.verb == "rollback" and .actor == "bgagent" and .status == "done" and
	.from == "green" and .to == "blue" and
	(.reason | test("^post-flip check: green resets [0-9]+/s > 5/s$")))] | length == 1' \
	<<<"$(lbctl -j history web)"
sleep "$(slow_d 2.5)" # hold_down

# ---- the bad release, flipped to by a rollout, rolled back on its own ----
lbctl rollout start web --reason "release 3" >/dev/null || fail "rollout start"
for _ in $(seq 1 "$(slow 50)"); do
	[ "$(live)" = green ] && break
	sleep 0.1
done
check "the rollout flipped to green" test "$(live)" = green
# the agent sees the flip at its next tick (up to 1 s): resets before that are not watched
agent_wait_log "post-flip check: watching green for ${BAKE}s (flip generation $(lbjq \
	'.services[0].generation' -j status web))" || fail "no watch of the rollout's flip"
bad_traffic
ms=$(wait_rollback)
check "rolled back to blue" test "$(live)" = blue
echo "# measured: rolled back $ms ms after the rollout's flip was seen (bake_time ${BAKE}s, max_reset_rate 5/s)"
check "within bake_time" test "$ms" -lt $((BAKE * 1000))
h=$(lbctl -j history web)
check "history: two rollbacks by bgagent, with the measured rate" jqt '[.records[] |
	select(.verb == "rollback" and .actor == "bgagent" and .status == "done" and
	.from == "green" and .to == "blue" and
	(.reason | test("^post-flip check: green resets [0-9]+/s > 5/s$")))] | length == 2' <<<"$h"
jq -r '.records[] | select(.verb == "rollback") | "# history: " + .reason' <<<"$h"
check "the rollout says rolled back, and why" jqt '.services[0].rollout | .state ==
	"rolled_back" and (.reason | test("^post-flip check: green resets"))' \
	<<<"$(lbctl -j rollout status web)"
out=$(traffic "$NS_CL" http "$VIP_NAT" 80 50)
check "every new connection on blue again" jqt '.ok == 50 and .colors.blue == 50' <<<"$out"

# ---- a good release, flipped with bgctl: watched for bake_time, stays ----
# the checks see green go down and come back up before the flip (not during the watch)
nlog() { grep -c "$1" "$AGENT_LOG"; }
wait_count() { # wait_count PATTERN N: until the log has N lines matching (bounded: 10 s)
	for _ in $(seq 1 "$(slow 200)"); do
		[ "$(nlog "$1")" -ge "$2" ] && return 0
		sleep 0.05
	done
	return 1
}
down0=$(nlog "web green backend .*: down")
up0=$(nlog "web green backend .*: up")
for b in g1 g2; do
	responder_stop $b || fail "cannot stop $b"
done
wait_count "web green backend .*: down" $((down0 + 2)) || fail "green not seen down"
for b in g1 g2; do
	responder_start $b || fail "cannot start $b"
done
wait_count "web green backend .*: up" $((up0 + 2)) || fail "green not seen up again"
# the health writes reach the pins after the log line (a publish each): flip after them, or
# bgctl's compare-and-swap is refused (exit 4) by a generation that moved meanwhile
green_up() { lbjq '[.services[0].pools.green.backends[] | select(.health == "up")] | length' \
	-j status web; }
for _ in $(seq 1 "$(slow 100)"); do
	[ "$(green_up)" = 2 ] && break
	sleep 0.05
done
check "green up in the pins" test "$(green_up)" = 2
w0=$(nlog "post-flip check: watching green")
lbctl flip web --drain-timeout 0 >/dev/null || fail "flip"
wait_count "post-flip check: watching green" $((w0 + 1)) || fail "no watch of the bgctl flip"
out=$(traffic "$NS_CL" http "$VIP_NAT" 80 100)
check "green serves" jqt '.ok == 100 and .colors.green == 100' <<<"$out"
for _ in $(seq 1 $((BAKE * 10 + $(slow 30)))); do
	grep -q "post-flip check: green passed" "$AGENT_LOG" && break
	sleep 0.1
done
grep -q "post-flip check: green passed" "$AGENT_LOG" ||
	fail "the watch did not end well: $(grep "post-flip\|backend" "$AGENT_LOG" | tail -5)"
ok "the watch ends: green passed"
check "green stays live" test "$(live)" = green
check "still two rollbacks only" test "$(rollbacks)" = 2
check "/metrics: 2 rollbacks, 1 rollout flip" test "$(metric \
	'bgswitch_flips_total{service="web",reason="rollback"}') $(metric \
	'bgswitch_flips_total{service="web",reason="rollout"}')" = "2 1"
ok "post-flip check scenario"
