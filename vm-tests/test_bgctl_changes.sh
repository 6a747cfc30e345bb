#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# bgctl's changes on real pinned state: set-up by CLI only, JSON parsed by jq, flip --to
# idempotency, --expect-generation conflict (exit 4), concurrent flips from two shells
# (consistent final state, every flip in the history), rollback, canary reset by a flip,
# the history's intent/done records, and the messages for "not initialized" and "not root".
set -uo pipefail
. "$(dirname "$0")/lib.sh"

bgs_require
bgs_state_up

# Set-up by CLI only, checked through -j.
lbctl service add web --vip 10.100.0.1:80/tcp --mode nat >/dev/null || fail "service add"
lbctl backend add web blue 10.1.1.2:8080 >/dev/null || fail "backend add blue"
lbctl backend add web green 10.1.1.3:8080 --weight 50 >/dev/null || fail "backend add green"
check "service list -j names web, nat, tcp, blue live" \
	test "$(lbjq '.services[] | select(.name=="web") | "\(.mode) \(.proto) \(.live)"' service list)" = "nat tcp blue"
check "backend list -j shows both pools with weights" \
	test "$(lbjq '[.backends[] | "\(.color):\(.address):\(.weight)"] | join(" ")' backend list web)" = \
	"blue:10.1.1.2:8080:100 green:10.1.1.3:8080:50"
gen=$(lbjq '.services[0].generation' status web)
check "status -j gives a numeric generation ($gen)" test "$gen" -ge 1

# --to idempotency.
out=$(lbctl -j flip web --to blue)
check "flip --to blue while blue is live: exit 0, changed=false" test "$(jq -r .changed <<<"$out")" = false
check "... and the generation did not move" test "$(lbjq '.services[0].generation' status web)" -eq "$gen"
out=$(lbctl -j flip web --to green --drain-timeout 30s --reason "release 42")
check "flip --to green: changed, generation +1" \
	test "$(jq -r '"\(.changed) \(.to) \(.generation)"' <<<"$out")" = "true green $((gen + 1))"
out=$(lbctl -j flip web --to green)
check "flip --to green again: no change" test "$(jq -r .changed <<<"$out")" = false
check "status: green live, blue draining with a deadline" \
	test "$(lbjq '.services[0] | "\(.live) \(.drain.color) \(.drain.time_left_s > 0)"' status web)" = "green blue true"

# --expect-generation.
gen=$(lbjq '.services[0].generation' status web)
out=$(lbctl -j flip web --expect-generation $((gen - 1)))
rc=$?
check "flip --expect-generation stale: exit 4" test $rc -eq 4
check "... error as JSON naming the generation" jqt ".error.message | test(\"generation $gen\")" <<<"$out"
check "... and nothing changed" test "$(lbjq '.services[0].generation' status web)" -eq "$gen"
lbctl flip web --expect-generation "$gen" --drain-timeout 0 >/dev/null
check "flip --expect-generation current: applied" test "$(lbjq '.services[0].live' status web)" = blue

# Canary, then a flip resets it.
lbctl canary web 12.5 --sticky >/dev/null || fail "canary"
check "canary 12.5 sticky -> 1250 bp, sticky" \
	test "$(lbjq '.services[0] | "\(.canary_bps) \(.sticky)"' status web)" = "1250 true"
lbctl flip web >/dev/null || fail "flip"
check "a flip resets the canary to 0" test "$(lbjq '.services[0].canary_bps' status web)" -eq 0

# Rollback goes back to the previous live color.
live=$(lbjq '.services[0].live' status web)
lbctl rollback web >/dev/null || fail "rollback"
check "rollback: $live -> the other color" test "$(lbjq '.services[0].live' status web)" != "$live"

# Concurrent flips from two shells: each flip is a compare-and-swap on what it read, so a
# flip either applies (exit 0) or is refused because the other one came first (exit 4);
# the generation and the history count exactly the ones that applied.
gen0=$(lbjq '.services[0].generation' status web)
live0=$(lbjq '.services[0].live' status web)
hist0=$(wc -l <"$BGSWITCH_HISTORY")
rounds=10
applied=0
for r in $(seq 1 $rounds); do
	lbctl flip web --reason "shell A $r" >/dev/null 2>&1 &
	pa=$!
	lbctl flip web --reason "shell B $r" >/dev/null 2>&1 &
	pb=$!
	for p in $pa $pb; do
		wait $p
		rc=$?
		case $rc in
		0) applied=$((applied + 1)) ;;
		4) ;;
		*) fail "concurrent flip round $r exited $rc (expected 0 or 4)" ;;
		esac
	done
done
check "concurrent flips: at least one per round applied ($applied of $((2 * rounds)))" \
	test $applied -ge $rounds
check "concurrent flips: generation advanced by exactly the $applied applied" \
	test "$(lbjq '.services[0].generation' status web)" -eq $((gen0 + applied))
want=$live0
[ $((applied % 2)) -eq 1 ] && { [ "$live0" = blue ] && want=green || want=blue; }
check "concurrent flips: $applied flips from $live0 leave $want live" \
	test "$(lbjq '.services[0].live' status web)" = "$want"
gens=$(tail -n +$((hist0 + 1)) "$BGSWITCH_HISTORY" | jq -r 'select(.phase=="done" and .verb=="flip") | .generation' | sort -n | uniq)
check "history: $applied done flip records with distinct generations" \
	test "$(wc -w <<<"$gens")" -eq $applied
check "history: both shells recorded" \
	test "$(lbjq "[.records[] | select(.reason != null and (.reason | test(\"^shell [AB] \")))] | length" history web --all)" -eq $((2 * rounds))
check "history: every intent has its done or failed record" \
	test "$(lbjq '[.records[] | select(.status=="unconfirmed")] | length' history)" -eq 0
check "history: flip records carry user, from, to, generation, reason" \
	jqt '[.[] | select(.verb=="flip" and .phase=="done" and .reason=="release 42")] |
	     length == 1 and (.[0] | .user != null and .from=="blue" and .to=="green" and .generation > 0)' \
	< <(jq -s . "$BGSWITCH_HISTORY")
check "history -j parses, newest last" \
	test "$(lbjq '.records[-1].verb' history web)" = flip

# A crash between intent and publish is visible: an intent with no outcome is "unconfirmed".
echo '{"id":"crash-1","phase":"intent","time":"2026-01-01T00:00:00.000Z","user":"root","verb":"flip","service":"web","from":"blue","to":"green"}' >>"$BGSWITCH_HISTORY"
check "history shows an intent without outcome as unconfirmed" \
	test "$(lbjq '[.records[] | select(.status=="unconfirmed")] | length' history web)" -eq 1

# Backend admin state and delete.
lbctl backend set web 10.1.1.2:8080 --state drain >/dev/null || fail "backend set"
check "backend set --state drain" test "$(lbjq '.backends[0].admin' backend list web blue)" = drain
lbctl backend set web blue 10.1.1.2:8080 --state up >/dev/null || fail "backend set up"
lbctl backend del web green 10.1.1.3:8080 >/dev/null || fail "backend del"
check "backend del: green pool empty" test "$(lbjq '.backends | length' backend list web green)" -eq 0
live=$(lbjq '.services[0].live' status web)
if [ "$live" = blue ]; then
	lbctl flip web >/dev/null 2>&1
	rc=$?
	check "flip to an empty pool refused without --force (exit 4)" test $rc -eq 4
	check "flip --force to an empty pool" lbctl flip web --force
fi
lbctl service del web >/dev/null || fail "service del"
lbctl status web >/dev/null 2>&1
rc=$?
check "status of a deleted service: exit 3" test $rc -eq 3

# Clear messages when not initialized and when not root.
out=$(ip netns exec "$NS_LB" "$BGCTL" --pin-dir "$BGS_RUN/bpf/nothing" status 2>&1)
rc=$?
check "not initialized: exit 4 and says to run bgctl init" \
	bash -c '[ "$1" -eq 4 ] && [[ "$2" == *"bgctl init"* ]]' _ $rc "$out"
out=$(ip netns exec "$NS_LB" "$BGCTL" --pin-dir /run/bgs-e2e-nobpffs-$BGS_ID/x status 2>&1)
rc=$?
check "no bpffs: exit 4 and says to mount one" \
	bash -c '[ "$1" -eq 4 ] && [[ "$2" == *"mount -t bpf"* ]]' _ $rc "$out"
# init where no bpffs is mounted: mounts one on the pin directory, mode 0700, and says so.
# (Run outside `ip netns exec`, whose private mount namespace would take the mount away.)
mnt=$BGS_RUN/initmnt/pins
out=$("$BGCTL" --pin-dir "$mnt" init --max-services 2 --max-backends 4 \
	--maglev-size 13 --ct-entries 16 2>&1)
rc=$?
check "init with no bpffs: exit 0 and says what it mounted" \
	bash -c '[ "$1" -eq 0 ] && [[ "$2" == *"mounted a bpffs at $3 (mode 0700)"* ]]' _ $rc "$out" "$mnt"
check "init with no bpffs: a bpffs with mode 0700" \
	test "$(stat -f -c %T "$mnt")/$(stat -c %a "$mnt")" = "bpf_fs/1700"
out=$("$BGCTL" -j --pin-dir "$mnt" init 2>&1)
check "init again: mounts nothing" test "$(jq -r .mounted_bpffs <<<"$out")" = null
if command -v setpriv >/dev/null; then
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "$BGCTL" status 2>&1)
	rc=$?
	check "not root: exit 5 and says to run as root" \
		bash -c '[ "$1" -eq 5 ] && [[ "$2" == *root* ]]' _ $rc "$out"
fi
echo "all bgctl change checks passed"
