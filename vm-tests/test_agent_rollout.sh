#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# A rollout run by bgagent, observed in real connections (nat): `bgctl rollout start` with
# steps [canary 10% for 60s, promote] and a pre-flip gate. The canary share is measured over
# 400 new connections (10% within 5 points); the agent is killed with -9 mid-rollout (status
# says "paused: agent down"; start is refused, exit 4, with no agent) and a new one resumes
# at the same step; promote runs the gate, which fails (paused, with why), then times out,
# then passes: the flip, and every new connection goes to green. A second rollout is aborted
# mid-way: the canary is back to 0 at once. Every step is in the history with its actor.
# Bad input is refused; upgrade keeps the records; with no agent, start needs --force;
# a deleted service's record goes with it; destroy removes them.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

GATE=$BGS_RUN/gate.sh

agent_topo_up
agent_config 100ms 2s
cat >>"$AGENT_CFG" <<EOF
    rollout:
      steps: [{canary: 10, pause: $(slow_d 60s)}, {promote: true}]
      pre_flip_gate: {command: "sh $GATE", timeout: $(slow_d 2s)}
EOF
printf 'exit 1\n' >"$GATE"
agent_start_healthy

ro() { lbjq ".services[0].rollout.$1" -j rollout status web; }
wait_ro() { # wait_ro FIELD WANT [TRIES of 0.1 s, scaled by the slowdown]
	for _ in $(seq 1 "$(slow "${3:-50}")"); do
		[ "$(ro "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
wait_ro_agent() { # until the heartbeat is stale (bounded: 8 s at slowdown 1)
	for _ in $(seq 1 "$(slow 80)"); do
		[ "$(lbjq '.agent.alive' -j rollout status web)" = false ] && return 0
		sleep 0.1
	done
	return 1
}
share_green() { jq -r '(.colors.green // 0)' <<<"$1"; }

# ---- start: the canary step, measured in real connections ----
out=$(lbctl -j rollout start web --reason "release 2")
check "rollout start: rollout 1 requested" jqt '.changed and .services[0].rollout.id == 1' \
	<<<"$out"
check "the agent takes it: step 1/2 running" wait_ro state running
check "canary 10% set by the step" test "$(lbjq '.services[0].canary_bps' -j status web)" = 1000
st=$(lbctl -j rollout status web)
check "status: step 1/2, canary 10%, a pause left, the gate and flip next" \
	jqt '.services[0].rollout | .step == 1 and .steps == 2 and .canary_bps == 1000
		and .pause_left_s > '"$(slow 30)"' and (.next | test("pre-flip gate, then flip to green"))' <<<"$st"
status_has() { lbctl status web | grep -q -- "$1"; }
check "bgctl status shows the rollout" status_has "rollout 1 running.*step 1/2"
check "/metrics: bgswitch_rollout_step 1" \
	test "$(metric 'bgswitch_rollout_step{service="web"}')" = 1
check "/metrics: bgswitch_rollout_state running" \
	test "$(metric 'bgswitch_rollout_state{service="web",state="running"}')" = 1
out=$(traffic "$NS_CL" http "$VIP_NAT" 80 400)
g=$(share_green "$out")
echo "# measured: $g of 400 new connections on green with a 10% canary"
check "400 connections served" jqt '.ok == 400' <<<"$out"
check "canary share $g/400 within 10% +- 5 points" test "$g" -ge 20 -a "$g" -le 60

# ---- kill -9 mid-rollout: paused while down, resumed after ----
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
check "status says paused: agent down (within 8 s)" wait_ro shown "paused: agent down" 80
lbctl rollout start web >/dev/null 2>"$BGS_RUN/err"
rc=$?
check "start with no agent: exit 4 ($rc)" test "$rc" = 4
check "start with no agent: says why" grep -q "no bgagent is running" "$BGS_RUN/err"
left0=$(ro pause_left_s)
agent_start_healthy
check "a new agent resumes it" agent_wait_log "rollout 1 resumes at step 1/2"
check "still step 1, running, canary 10%" \
	jqt '.services[0].rollout | .step == 1 and .state == "running" and .canary_bps == 1000' \
	<<<"$(lbctl -j rollout status web)"
left1=$(ro pause_left_s)
check "the pause did not run while no agent ran ($left0 s left then, $left1 s now)" \
	jqt "$left1 > $left0 - $(slow 3)" <<<null

# ---- promote: the gate fails, then times out, then passes ----
lbctl rollout promote web --reason "looks good" >/dev/null || fail "promote"
check "failing gate: paused (within 5 s)" wait_ro state paused
check "and says why" test "$(ro reason)" = "pre-flip gate failed: exit status 1"
check "still blue, canary kept" \
	jqt '.services[0].live == "blue" and .services[0].canary_bps == 1000' \
	<<<"$(lbctl -j status web)"
printf 'sleep 30\n' >"$GATE"
lbctl rollout promote web >/dev/null || fail "promote 2"
check "gate timing out: paused again (within 6 s)" wait_ro reason \
	"pre-flip gate timed out after $(slow_d 2s)" 60
printf 'test "$SERVICE $IDLE_COLOR $VIP" = "web green %s:80" || exit 3\n' "$VIP_NAT" >"$GATE"
lbctl rollout promote web >/dev/null || fail "promote 3"
check "passing gate (it sees SERVICE, IDLE_COLOR, VIP): done (within 5 s)" wait_ro state done
check "green is live, canary 0" \
	jqt '.services[0].live == "green" and .services[0].canary_bps == 0' \
	<<<"$(lbctl -j status web)"
out=$(traffic "$NS_CL" http "$VIP_NAT" 80 100)
check "every new connection on green" jqt '.ok == 100 and .colors.green == 100' <<<"$out"
h=$(lbctl -j history web)
check "history: step 1 by bgagent" jqt '[.records[] | select(.actor == "bgagent" and
	.verb == "rollout" and .status == "done" and
	.reason == "rollout step 1/2: canary 10%, pause '"$(slow 1)"'m")] | length == 1' <<<"$h"
check "history: the gate's failures by bgagent" jqt '[.records[] | select(.actor == "bgagent"
	and (.reason // "" | test("^rollout 1 paused: pre-flip gate (failed|timed out)")))]
	| length == 2' <<<"$h"
check "history: the flip by bgagent" jqt '[.records[] | select(.actor == "bgagent" and
	.verb == "flip" and .status == "done" and
	.reason == "rollout step 2/2: flip to green")] | length == 1' <<<"$h"
check "history: start and promotes by bgctl" jqt '[.records[] | select(.actor == "bgctl" and
	(.verb == "rollout start" or .verb == "rollout promote"))] | length == 4' <<<"$h"

# ---- abort mid-rollout ----
lbctl rollout start web >/dev/null || fail "second start"
check "rollout 2 (green -> blue) running" wait_ro state running
check "canary 10% to blue" test "$(lbjq '.services[0].canary_bps' -j status web)" = 1000
out=$(lbctl -j rollout abort web --reason "bad canary")
check "abort: canary 0 at once" test "$(lbjq '.services[0].canary_bps' -j status web)" = 0
check "abort: aborted, with why" \
	jqt '.services[0].rollout | .state == "aborted" and .reason == "bad canary"' <<<"$out"
sleep "$(slow_d 1.5)" # a tick of the agent: it must not take the canary up again
check "still 0 after the agent's tick" test "$(lbjq '.services[0].canary_bps' -j status web)" = 0
out=$(traffic "$NS_CL" http "$VIP_NAT" 80 100)
check "every new connection on green" jqt '.ok == 100 and .colors.green == 100' <<<"$out"
check "history: the abort by bgctl, with its reason" jqt '[.records[] | select(.actor ==
	"bgctl" and .verb == "rollout abort" and .reason == "bad canary" and .status == "done")]
	| length == 1' <<<"$(lbctl -j history web)"
lbctl rollout abort web >/dev/null 2>&1
rc=$?
check "abort with none active: exit 3 ($rc)" test "$rc" = 3

# ---- bad input: a clear error, its exit code, nothing changed ----
rc_of() { lbctl "$@" >/dev/null 2>&1; echo $?; }
check "rollout with no verb: exit 2" test "$(rc_of rollout)" = 2
check "rollout bogus: exit 2" test "$(rc_of rollout bogus web)" = 2
check "rollout start with no NAME: exit 2" test "$(rc_of rollout start)" = 2
check "rollout start with two names: exit 2" test "$(rc_of rollout start web web)" = 2
check "rollout start of an unknown service: exit 3" test "$(rc_of rollout start nosuch)" = 3
check "rollout status of an unknown service: exit 3" test "$(rc_of rollout status nosuch)" = 3
check "a reason with a control byte: exit 2" \
	test "$(rc_of rollout start web --reason "$(printf 'a\001')")" = 2
check "promote with none active: exit 3" test "$(rc_of rollout promote web)" = 3
check "-j errors are JSON" jqt '.error.exit == 3' <<<"$(lbctl -j rollout promote web 2>&1)"
check "rollout --help" bash -c "'$BGCTL' rollout --help | grep -q 'rollout abort NAME'"
check "nothing changed: rollout 2 aborted, canary 0" \
	jqt '.services[0] | .rollout.id == 2 and .rollout.state == "aborted" and .canary_bps == 0' \
	<<<"$(lbctl -j status web)"

# ---- the records are pinned state: upgrade keeps them, destroy removes them ----
lbctl upgrade >/dev/null || fail "upgrade"
check "after upgrade: rollout 2 still there" test "$(ro id)" = 2
kill "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
check "stopped agent: not alive any more (within 8 s)" wait_ro_agent
check "start with no agent: exit 4" test "$(rc_of rollout start web)" = 4
out=$(lbctl -j rollout start web --force)
check "start --force with no agent: stored, waiting for one" jqt '.services[0].rollout |
	.id == 3 and .state == "requested" and .shown == "paused: agent down"' <<<"$out"
check "the pins hold the records" test -e "$BGSWITCH_PIN_DIR/bgs_rollout" -a \
	-e "$BGSWITCH_PIN_DIR/bgs_agent"
vip=$(lbjq '.services[0].vip' -j status web)
lbctl service del web >/dev/null || fail "service del web"
lbctl service add web --vip "$vip" --mode nat >/dev/null || fail "service add web again"
check "a service made again under the same name starts with no rollout" \
	jqt '.services[0].rollout == null' <<<"$(lbctl -j rollout status web)"
lbctl destroy --force >/dev/null || fail "destroy"
check "destroy removes them" test ! -e "$BGSWITCH_PIN_DIR/bgs_rollout" -a \
	! -e "$BGSWITCH_PIN_DIR/bgs_agent"
ok "rollout scenario"
