#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Two bgctl processes racing on one service. An operator holds the lock with
# `flock PIN_DIR sleep` while two flips (then two rollbacks, then two canaries) read the same
# state and wait for it; when it is released, exactly one of each pair applies and the other
# is refused with exit 4, naming what changed since it read. Without the compare-and-swap
# both applied and cancelled each other out, each exiting 0.
# Then a stopped lock holder: a change waits --lock-timeout (default 5 s) for the lock and is
# refused with exit 4 naming the holder's pid, instead of hanging for as long as it is stopped.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

bgs_require
command -v flock >/dev/null || skip "missing tool 'flock' (util-linux)"
bgs_state_up

lbctl service add web --vip 10.100.0.1:80/tcp --mode nat >/dev/null || fail "service add"
lbctl backend add web blue 10.1.1.2:8080 >/dev/null || fail "backend add blue"
lbctl backend add web green 10.1.1.3:8080 >/dev/null || fail "backend add green"

quiet() { "$@" >/dev/null; }
holder=
release_lock() {
	[ -n "$holder" ] && kill "$holder" 2>/dev/null && wait "$holder" 2>/dev/null
	holder=
}
# hold_lock: an operator's `flock PIN_DIR sleep`, held once flock reports it. With -o the
# lock stays with flock (pid $holder) alone: killing it releases the lock (the orphaned sleep
# holds nothing and ends by itself).
hold_lock() {
	flock -o "$BGSWITCH_PIN_DIR" sleep 20 >/dev/null 2>&1 &
	holder=$!
	BGS_PIDS+=("$holder")
	for _ in $(seq 100); do
		flock -n "$BGSWITCH_PIN_DIR" true || return 0
		sleep 0.02
	done
	fail "flock did not take the pin directory's lock"
}

# race VERB ARGS...: two `bgctl -j VERB ARGS` behind a held lock; sets out_a, out_b, rc_a, rc_b.
race() {
	local fa fb pa pb
	fa=$(mktemp) fb=$(mktemp)
	hist0=$(wc -l <"$BGSWITCH_HISTORY" 2>/dev/null || echo 0)
	hold_lock
	lbctl -j "$@" --reason "racer A" >"$fa" 2>/dev/null &
	pa=$!
	lbctl -j "$@" --reason "racer B" >"$fb" 2>/dev/null &
	pb=$!
	# Each racer reads the state (no lock) at once, then waits for the lock (and writes its
	# intent only under it): half a second is ample for both to have read.
	sleep 0.5
	release_lock
	wait $pa
	rc_a=$?
	wait $pb
	rc_b=$?
	out_a=$(cat "$fa") out_b=$(cat "$fb")
	rm -f "$fa" "$fb"
}
# The winner's and the loser's output by exit status.
winner() { [ $rc_a -eq 0 ] && echo "$out_a" || echo "$out_b"; }
loser() { [ $rc_a -eq 0 ] && echo "$out_b" || echo "$out_a"; }
one_won() { [ "$(printf '%s\n' $rc_a $rc_b | sort | tr '\n' ' ')" = "0 4 " ]; }

touch "$BGSWITCH_HISTORY"
gen=$(lbjq '.services[0].generation' status web)
race flip web --drain-timeout 30s
check "two racing flips: one applies, the other exits 4 (exits $rc_a, $rc_b)" one_won
check "... the winner flipped blue -> green at generation $((gen + 1))" \
	test "$(winner | jq -r '"\(.from) \(.to) \(.generation)"')" = "blue green $((gen + 1))"
check "... the loser names what changed: generation and live color" \
	jqt ".error.message | test(\"changed since bgctl read it: generation $gen -> $((gen + 1)), live blue -> green\")" <<<"$(loser)"
check "... green is live at generation $((gen + 1)) (the flips did not cancel out)" \
	test "$(lbjq '.services[0] | "\(.live) \(.generation)"' status web)" = "green $((gen + 1))"
check "... history: one flip done, one failed" \
	test "$(tail -n +$((hist0 + 1)) "$BGSWITCH_HISTORY" | jq -r 'select(.phase!="intent") | .phase' | sort | tr '\n' ' ')" = "done failed "

gen=$((gen + 1))
race rollback web
check "two racing rollbacks: one applies, the other exits 4" one_won
check "... blue is live again, one generation on" \
	test "$(lbjq '.services[0] | "\(.live) \(.generation)"' status web)" = "blue $((gen + 1))"
check "... the loser names the rollback that came first" \
	jqt '.error.message | test("live green -> blue")' <<<"$(loser)"

gen=$((gen + 1))
race canary web 10
check "two racing canaries: one applies, the other exits 4" one_won
check "... the loser names the canary change" \
	jqt '.error.message | test("canary 0.00% -> 10.00%")' <<<"$(loser)"

# --to stays declarative: two racing `flip --to green` both succeed, one changes nothing.
gen=$(lbjq '.services[0].generation' status web)
race flip web --to green
check "two racing flip --to green: both exit 0" test "$rc_a$rc_b" = 00
check "... exactly one changed something" \
	test "$( (echo "$out_a"; echo "$out_b") | jq -r .changed | sort | tr '\n' ' ')" = "false true "
check "... green live at generation $((gen + 1))" \
	test "$(lbjq '.services[0] | "\(.live) \(.generation)"' status web)" = "green $((gen + 1))"

# The "already live" answer checks --expect-generation too.
out=$(lbctl -j flip web --to green --expect-generation $((gen - 5)))
rc=$?
check "flip --to the live color with a stale --expect-generation: exit 4" test $rc -eq 4
# A stopped lock holder (an operator's `flock PIN_DIR sleep`, then Ctrl-Z).
gen=$(lbjq '.services[0].generation' status web)
hist0=$(wc -l <"$BGSWITCH_HISTORY")
hold_lock
kill -STOP "$holder"
t0=$(date +%s%N)
out=$(lbctl -j --lock-timeout 0.5 flip web)
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "--lock-timeout 0.5 with a stopped holder: exit 4 after ${ms} ms" \
	bash -c '[ "$1" -eq 4 ] && [ "$2" -ge 500 ] && [ "$2" -lt 2500 ]' _ $rc $ms
check "... the refusal says the lock is held, by the holder's pid" \
	bash -c '[[ "$1" == *"is held by pid $2 (flock)"* ]]' _ "$(jq -r .error.message <<<"$out")" "$holder"
t0=$(date +%s%N)
out=$(lbctl flip web 2>&1)
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "default lock timeout: exit 4 after 5 s (${ms} ms)" \
	bash -c '[ "$1" -eq 4 ] && [ "$2" -ge 5000 ] && [ "$2" -lt 8000 ]' _ $rc $ms
check "... reads go on while the lock is held (status)" quiet lbctl -j status web
kill -CONT "$holder"
release_lock
check "... nothing changed meanwhile" test "$(lbjq '.services[0].generation' status web)" -eq "$gen"
check "... the refused changes are in the history as failed" \
	test "$(tail -n +$((hist0 + 1)) "$BGSWITCH_HISTORY" | jq -r 'select(.phase=="failed") | .verb' | tr '\n' ' ')" = "flip flip "
check "the lock released: the flip applies" quiet lbctl -j flip web
# A history that cannot be written refuses a change, except an emergency rollback.
bad=/proc/bgs-no-such-dir/history.jsonl
gen=$(lbjq '.services[0].generation' status web)
out=$(lbctl -j --history-file "$bad" flip web)
rc=$?
check "flip with an unwritable history: refused (exit $rc)" test $rc -ne 0 -a $rc -ne 4
check "... saying nothing was changed" jqt '.error.message | test("nothing was changed")' <<<"$out"
check "... and nothing was" test "$(lbjq '.services[0].generation' status web)" -eq "$gen"
err=$(lbctl --history-file "$bad" rollback web 2>&1 >/dev/null)
check "rollback with an unwritable history: applied" \
	test "$(lbjq '.services[0].generation' status web)" -eq $((gen + 1))
check "... with a loud warning that it is not recorded" \
	bash -c '[[ "$1" == *"WARNING"*"NOT RECORDED"* ]]' _ "$err"
out=$(lbctl -j --lock-timeout soon status web)
check "--lock-timeout soon: exit 2" test $? -eq 2
check "... naming the value" jqt '.error.message | test("--lock-timeout .soon.")' <<<"$out"
echo "all bgctl race checks passed"
