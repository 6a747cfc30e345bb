#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The post-flip check (nat): green is a bad release whose servers reset every request (their
# health checks pass). A 50% canary to it resets connections but rolls nothing back (only a
# flip starts the watch). `bgctl rollout start` (AllAtOnce) flips to it; under real traffic
# its resets pass max_reset_rate and the agent rolls back to blue within bake_time, the
# history saying why with the measured rate. Green fixed, a flip made with bgctl is watched
# for bake_time and stays.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

BAKE=8

agent_topo_up
agent_config 100ms 2s
cat >>"$AGENT_CFG" <<EOF
    post_flip_check: {bake_time: ${BAKE}s, max_reset_rate: 5, max_unhealthy: 0}
    rollout: {strategy: AllAtOnce}
EOF
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
sleep 2 # two ticks of the agent
check "no rollback for a canary" test "$(rollbacks)" = 0
check "blue still live" test "$(live)" = blue
lbctl canary web 0 >/dev/null || fail "canary 0"

# ---- the bad release, flipped to by a rollout, rolled back on its own ----
lbctl rollout start web --reason "release 3" >/dev/null || fail "rollout start"
for _ in $(seq 1 50); do
	[ "$(live)" = green ] && break
	sleep 0.1
done
check "the rollout flipped to green" test "$(live)" = green
t0=$(now_ms)
# real traffic meanwhile (bounded: 600 connections or 20 s)
nsx "$NS_CL" timeout 30 python3 "$BGS_ROOT/vm-tests/client.py" http "$VIP_NAT" 80 600 \
	--timeout 1 --deadline 20 >/dev/null 2>&1 &
BGS_PIDS+=($!)
for _ in $(seq 1 $((BAKE * 10 + 30))); do
	[ "$(live)" = blue ] && break
	sleep 0.1
done
t1=$(now_ms)
check "rolled back to blue" test "$(live)" = blue
echo "# measured: rolled back $((t1 - t0)) ms after the flip was seen (bake_time ${BAKE}s, max_reset_rate 5/s)"
check "within bake_time" test $((t1 - t0)) -lt $((BAKE * 1000))
h=$(lbctl -j history web)
check "history: the rollback by bgagent, with the measured rate" jqt '[.records[] |
	select(.verb == "rollback" and .actor == "bgagent" and .status == "done" and
	.from == "green" and .to == "blue" and
	(.reason | test("^post-flip check: green resets [0-9]+/s > 5/s$")))] | length == 1' <<<"$h"
jq -r '.records[] | select(.verb == "rollback") | "# history: " + .reason' <<<"$h"
check "the rollout says rolled back, and why" jqt '.services[0].rollout | .state ==
	"rolled_back" and (.reason | test("^post-flip check: green resets"))' \
	<<<"$(lbctl -j rollout status web)"
out=$(traffic "$NS_CL" http "$VIP_NAT" 80 50)
check "every new connection on blue again" jqt '.ok == 50 and .colors.blue == 50' <<<"$out"

# ---- a good release, flipped with bgctl: watched for bake_time, stays ----
for b in g1 g2; do
	responder_stop $b || fail "cannot stop $b"
	responder_start $b || fail "cannot start $b"
done
sleep 1 # checks on the fresh servers
lbctl flip web --drain-timeout 0 >/dev/null || fail "flip"
agent_wait_log "post-flip check: watching green" || fail "no watch of the bgctl flip"
out=$(traffic "$NS_CL" http "$VIP_NAT" 80 100)
check "green serves" jqt '.ok == 100 and .colors.green == 100' <<<"$out"
for _ in $(seq 1 $((BAKE * 10 + 30))); do
	grep -q "post-flip check: green passed" "$AGENT_LOG" && break
	sleep 0.1
done
check "the watch ends: green passed" grep -q "post-flip check: green passed" "$AGENT_LOG"
check "green stays live" test "$(live)" = green
check "still one rollback only" test "$(rollbacks)" = 1
ok "post-flip check scenario"
