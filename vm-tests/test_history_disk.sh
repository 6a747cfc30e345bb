#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The audit history on a full disk (a tiny tmpfs filled up) and on a read-only mount: every
# change is refused, with its exit code and a message that says why and that nothing was
# changed, and nothing was (the pinned state, read back through every listing, and the
# history file are byte for byte what they were); the emergency changes (rollback, flip
# --force) apply anyway and warn that they are NOT RECORDED.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

quiet() { "$@" >/dev/null; }

bgs_require
command -v dd >/dev/null || skip "missing tool 'dd'"
bgs_state_up

lbctl service add web --vip 10.100.0.1:80/tcp --mode nat >/dev/null || fail "service add"
lbctl backend add web blue 10.1.1.2:8080 >/dev/null || fail "backend add blue"
lbctl backend add web green 10.1.1.3:8080 >/dev/null || fail "backend add green"
lbctl preview web add 192.0.2.0/24 >/dev/null || fail "preview add"

# Everything an operator can read back, as one JSON text (counters and clocks left out).
snapshot() {
	{
		lbctl -j service list | jq -S 'del(.. | .counters?, .time_left_s?)'
		lbctl -j backend list web | jq -S 'del(.. | .counters?)'
		lbctl -j preview web list | jq -S .
		lbctl -j status web | jq -S '.services[] | {name, live, generation, canary, drain:
			(.drain | if . then {color} else . end)}'
	} 2>&1
}

# The history's content (an absent file reads as empty: opening it may create it).
hist_sum() { cat "$HIST" 2>/dev/null | sha256sum; }

# refused CODE_RE MSG_RE ARGS...: a change refused with an exit code matching CODE_RE and a
# message matching MSG_RE (and "nothing was changed"); state and history untouched.
refused() {
	local code_re=$1 msg_re=$2 before after h0 h1 out rc
	shift 2
	before=$(snapshot)
	h0=$(hist_sum)
	out=$(lbctl -j --history-file "$HIST" "$@")
	rc=$?
	after=$(snapshot)
	h1=$(hist_sum)
	check "$WHERE: '$*' refused (exit $rc)" bash -c '[[ $1 =~ ^($2)$ ]]' _ "$rc" "$code_re"
	check "... telling why and that nothing was changed" jqt \
		".error.message | test(\"$msg_re\") and test(\"nothing was changed\")" <<<"$out"
	check "... and nothing was: the pinned state reads back the same" \
		diff <(echo "$before") <(echo "$after")
	[ "$h0" = "$h1" ] || { ls -l "$HIST"; tail -n 3 "$HIST"; }
	check "... and the history file is untouched" test "$h0" = "$h1"
}

# emergency ARGS...: applies (the generation moves) with a NOT RECORDED warning.
emergency() {
	local gen err rc
	gen=$(lbjq '.services[0].generation' status web)
	err=$(lbctl --history-file "$HIST" "$@" 2>&1 >/dev/null)
	rc=$?
	check "$WHERE: emergency '$*' applies (exit $rc)" test $rc -eq 0
	check "... the generation moved" test "$(lbjq '.services[0].generation' status web)" -gt "$gen"
	check "... warning loudly that it is not recorded" \
		bash -c '[[ $1 == *WARNING*"NOT RECORDED"* ]]' _ "$err"
}

idle_color() { lbjq '.services[0].live' status web | sed 's/blue/x/; s/green/blue/; s/x/green/'; }

# Every kind of change that must be refused; $1: the exit codes, $2: the reason's words.
all_refused() {
	refused "$1" "$2" flip web
	refused "$1" "$2" flip web --to "$(idle_color)" --reason release
	refused "$1" "$2" canary web 10
	refused "$1" "$2" service add api --vip 10.100.0.9:80/tcp --mode nat
	refused "$1" "$2" service set web --mode dsr
	refused "$1" "$2" service del web
	refused "$1" "$2" backend add web blue 10.1.1.4:8080
	refused "$1" "$2" backend set web blue 10.1.1.2:8080 --state drain
	refused "$1" "$2" backend del web green 10.1.1.3:8080
	refused "$1" "$2" preview web add 198.51.100.0/24
	refused "$1" "$2" preview web del 192.0.2.0/24
	refused "$1" "$2" drain web --kill
}

# 1. A full disk: a 64 KiB tmpfs filled to the last block, then a history to start there
# (a file's last block may still hold a record on a full disk: that one is written).
mkdir -p "$BGS_RUN/full"
mount -t tmpfs -o size=64k,mode=0700 tmpfs "$BGS_RUN/full" || fail "cannot mount a tmpfs"
HIST=$BGS_RUN/full/history.jsonl
WHERE="full disk"
dd if=/dev/zero of="$BGS_RUN/full/filler" bs=4k >/dev/null 2>&1
check "the tmpfs is full" bash -c '! echo x 2>/dev/null >>"$1/filler"' _ "$BGS_RUN/full"
# ENOSPC: a conflict with the host's state (exit 4)
all_refused 4 "No space left on device"
emergency flip web --force
emergency rollback web
check "... reads still work: status" quiet lbctl -j status web

# 2. A read-only history directory (a remount of the same tmpfs, room freed first, holding
# a history with records).
rm -f "$BGS_RUN/full/filler"
lbctl --history-file "$HIST" flip web >/dev/null || fail "a flip with room again"
check "with room, the flip is recorded" grep -q '"verb":"flip"' "$HIST"
mount -o remount,ro "$BGS_RUN/full" || fail "cannot remount read-only"
WHERE="read-only"
check "the directory is read-only" bash -c '! touch "$1/probe" 2>/dev/null' _ "$BGS_RUN/full"
# EROFS when opening the history: a kernel or permission error (exit 5)
all_refused 5 "Read-only file system"
emergency rollback web
emergency flip web --force

# 3. Room again: changes apply and are recorded again.
mount -o remount,rw "$BGS_RUN/full" || fail "cannot remount read-write"
WHERE="writable again"
n0=$(wc -l <"$HIST")
check "$WHERE: a flip applies" quiet lbctl --history-file "$HIST" flip web
check "... and is recorded (intent and outcome)" test "$(wc -l <"$HIST")" -eq $((n0 + 2))
echo "all history disk checks passed"
