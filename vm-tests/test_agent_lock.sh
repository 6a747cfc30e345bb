#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# bgagent and a held lock: while an operator holds every change off (`flock PIN_DIR CMD`),
# the live pool dies. The agent keeps running and checking (its loop waits for the lock only
# briefly), logs the refused failover once, tries again every tick without recording each
# refusal, and flips on a later tick once the lock is free: one flip, recorded once, with its
# reason.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

agent_up_healthy 100ms

flock "$BGSWITCH_PIN_DIR" sleep "$(slow_d 3)" &
locker=$!
BGS_PIDS+=($locker)
sleep "$(slow_d 0.2)" # the lock taken
responder_stop b1 || fail "cannot stop b1"
responder_stop b2 || fail "cannot stop b2"
agent_wait_log "web: failover: blue 0/2 healthy < 50%: flip failed: .*lock" ||
	fail "no refused failover logged: $(tail -3 "$AGENT_LOG")"
check "the agent keeps running while the lock is held" kill -0 "$AGENT_PID"
check "still blue while the lock is held" test "$(lbjq '.services[0].live' -j status web)" = blue
check "the refusal is logged once" \
	test "$(grep -c 'flip failed' "$AGENT_LOG")" = 1
wait "$locker"
agent_wait_log "web: flipped blue -> green" || fail "no failover after the lock was released"
check "web is live on green" test "$(lbjq '.services[0].live' -j status web)" = green
check "one flip recorded, by bgagent, done" \
	jqt '[.records[] | select(.verb == "flip" and .actor == "bgagent" and .status == "done"
		and .reason == "failover: blue 0/2 healthy < 50%")] | length == 1' \
	< <(lbctl -j history web)
check "the flip was tried again while the lock was held" \
	grep -q "web: the flip went through after [1-9][0-9]* failed tries" "$AGENT_LOG"
# (a try right after the lock is freed may also meet the health writes that waited for it
# and be refused as stale: recorded, as any refusal under the lock is)
check "its refusals by the lock are recorded once, not at every try" \
	jqt '[.records[] | select(.verb == "flip" and .actor == "bgagent" and .status == "failed"
		and (.error // "" | test("lock")))] | length == 1' < <(lbctl -j history --all web)
