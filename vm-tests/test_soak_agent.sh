#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Soak 3, bgagent killed under load: during a drain (blue draining after a flip), then during
# a rollout back to blue (`bgctl rollout start`: canary 10%, 50%, the flip), bgagent is
# killed with SIGKILL and started again (full: 20 times each; short: 4), each time resuming
# -> no failed or reset connection, no wrong backend, no UDP loss beyond the undisturbed
# baseline's, the drain finishes (recorded by the agent in the history) and so does the
# rollout (every step recorded by the agent, blue live at the end).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"
. "$(dirname "$0")/soak_lib.sh"

[ "$SOAK_SCALE" = full ] && N=20 || N=4
# The drain outlasts the restarts with room (up to 7 s each in full, 5 s short, on a loaded
# machine); it ends by itself: no flow left (closed flows count for tcp_close, 30 s) or the
# deadline, whichever comes first.
# Both scaled by the slowdown (lib.sh).
[ "$SOAK_SCALE" = full ] && DRAIN_S=$(slow 150) || DRAIN_S=$(slow 25)
# Each canary step's pause (the time no agent ran does not count in it).
[ "$SOAK_SCALE" = full ] && SOAK_ROLLOUT_PAUSE=$(slow_d 20s) || SOAK_ROLLOUT_PAUSE=$(slow_d 3s)

# agent_restart: kill -9, start again, wait (bounded) until it is ready and follows the drain.
agent_restart() {
	local what=$1
	kill -9 "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null
	cat "$AGENT_LOG" >>"$AGENT_LOG.all"
	: >"$AGENT_LOG"
	agent_start
	agent_wait_log "ready: 2 services" || fail "restart $what: agent not ready: $(tail -3 "$AGENT_LOG")"
	agent_wait_log "$2" || fail "restart $what: no '$2' in the log: $(tail -3 "$AGENT_LOG")"
}

# agent_restarts WHAT PATTERN: N kill -9 and restarts, each waiting for PATTERN in the new
# agent's log; prints the time taken and leaves it (ms) in RESTARTS_MS.
agent_restarts() {
	local i t0
	t0=$(us_now)
	for i in $(seq 1 "$N"); do
		agent_restart "$1 $i" "$2"
		sleep 0.2
	done
	RESTARTS_MS=$((($(us_now) - t0) / 1000))
	echo "# measured: $N kill -9 and restarts of bgagent $1 in $RESTARTS_MS ms (each ready and showing '$2')"
}

phase_drain() {
	local gen
	load_start drain
	sleep 1
	lbctl flip load --drain-timeout "${DRAIN_S}s" --reason "soak: drain under agent kills" \
		>/dev/null || fail "flip load"
	gen=$(lbjq '.services[0].generation' -j status load)
	agent_wait_log "load: tracking the drain of blue" || fail "agent did not follow the drain"
	agent_restarts "during the drain" "load: tracking the drain of blue"
	[ $((RESTARTS_MS / 1000)) -lt $((DRAIN_S - 2)) ] ||
		fail "the restarts outlasted the drain ($DRAIN_S s): nothing measured during it"
	load_stop drain
	expect_no_loss drain base
	# The drain ends when the last blue flow is gone (closed flows count for tcp_close,
	# 30 s) or at its deadline, whichever first; bounded by the deadline + 15 s.
	for _ in $(seq 1 $(((DRAIN_S + 15) * 10))); do
		[ "$(lbctl -j history load | jq '[.records[] | select(.verb == "drained" and
			.actor == "bgagent" and .color == "blue")] | length')" -ge 1 ] && break
		sleep 0.1
	done
	check "the drain finished, recorded by the agent: $(grep -h 'drain of generation' \
		"$AGENT_LOG" | tail -1 | sed 's/.*over: //')" \
		jqt '[.records[] | select(.verb == "drained" and .actor == "bgagent" and
			.color == "blue")] | length == 1' < <(lbctl -j history load)
	check "still live on green at generation $gen" \
		test "$(lbjq '.services[0] | "\(.live) \(.generation)"' -j status load)" = "green $gen"
}

phase_rollout() {
	local state id
	load_start rollout
	sleep 1
	id=$(lbjq '.services[0].rollout.id' -j rollout start load --reason "soak: rollout under agent kills") ||
		fail "rollout start load"
	# the agent took it: its first step is logged ("load: rollout step 1/3: canary 10%, ...")
	agent_wait_log "load: rollout step 1/" || fail "the agent did not take rollout $id"
	agent_restarts "during rollout $id" "ready: 2 services"
	# bounded: two pauses, the flip and the restarts' time again
	for _ in $(seq 1 $((2 * ${SOAK_ROLLOUT_PAUSE%s} * 10 + RESTARTS_MS / 100 + 300))); do
		state=$(lbjq '.services[0].rollout.state' -j rollout status load)
		[ "$state" = done ] || [ "$state" = failed ] || [ "$state" = aborted ] && break
		sleep 0.1
	done
	load_stop rollout
	expect_no_loss rollout base
	check "rollout $id finished after $N agent kills (state: $state)" test "$state" = done
	check "blue is live after the rollout" test "$(lbjq '.services[0].live' -j status load)" = blue
	check "each step of rollout $id recorded by the agent (2 canary steps and the flip)" \
		jqt '[.records[] | select(.actor == "bgagent" and (.reason // "" |
			test("^rollout step [1-3]/3: (canary [15]0%|flip to blue)"))) | .reason] |
			unique | length == 3' \
		< <(lbctl -j history load --all)
}

SOAK_ROLLOUT_PAUSE=$SOAK_ROLLOUT_PAUSE soak_agent_up "${DRAIN_S}s" false
load_run base "$SOAK_BASE_S"
expect_no_loss base
phase_drain
phase_rollout
