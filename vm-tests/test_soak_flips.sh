#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Soak 1, flip storm: under load (long-lived TCP connections exchanging every 10-50 ms, new
# connections at SOAK_RATE/s, UDP streams with sequence numbers; nat, and a dsr client beside
# it, and an IPv6 nat client), flips and rollbacks through bgctl as fast as they go (full: 500
# of each per service, 1,000 changes; short: 50 of each; the dsr and the IPv6 services every
# fifth round)
# -> no failed or reset connection, no reply from a wrong backend, no UDP loss beyond the
# undisturbed baseline's, and every new connection opened after a flip returned (and
# answered before the next one started) lands on that flip's color.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/soak_lib.sh"

[ "$SOAK_SCALE" = full ] && N=${SOAK_FLIPS:-500} || N=${SOAK_FLIPS:-50}
soak_up
soak_dsr_service
soak_v6_services

load_run base "$SOAK_BASE_S"
expect_no_loss base

changes=$BGS_RUN/changes
: >"$changes.load"
: >"$changes.loadd"
: >"$changes.load6"
load_start storm
load_start dsr --tcp "$VIP_DSR:$LOAD_DSR" --long $((SOAK_LONG / 4)) --rate $((SOAK_RATE / 4)) \
	--udp-flows 0
load_start v6 --tcp "[$VIP6_NAT]:$LOAD_TCP" --udp "[$VIP6_NAT]:$LOAD_UDP" \
	--long $((SOAK_LONG / 4)) --rate $((SOAK_RATE / 4)) --udp-flows 2
sleep 1

# The storm: load flips and rolls back as fast as it goes, loadd with it every fifth round
# (bgctl's time is the storm's cost); each change's times are logged.
# change SERVICE VERB COLOR: one change, its start and return in $changes.SERVICE
change() {
	local s e
	s=$(us_now)
	lbctl "$2" "$1" >/dev/null || fail "$2 $i of $1"
	e=$(us_now)
	echo "$s $e $3" >>"$changes.$1"
}
t0=$(us_now)
for i in $(seq 1 "$N"); do
	change load flip green
	[ $((i % 5)) = 1 ] && change loadd flip green
	[ $((i % 5)) = 3 ] && change load6 flip green
	change load rollback blue
	[ $((i % 5)) = 1 ] && change loadd rollback blue
	[ $((i % 5)) = 3 ] && change load6 rollback blue
	[ $(($(us_now) - t0)) -lt $((SOAK_MAX_S * 1000000 - 20000000)) ] ||
		fail "storm too slow: $i flips in $(((SOAK_MAX_S - 20))) s"
done
t1=$(us_now)
sleep 1
load_stop storm
load_stop dsr
load_stop v6
echo "# measured: $((2 * N)) flips and rollbacks of load ($((2 * ((N + 4) / 5))) of loadd, $((2 * ((N + 2) / 5))) of load6) in $(((t1 - t0) / 1000)) ms"
check "generation advanced by every change" \
	test "$(lbjq '.services[0].generation' -j status load)" -ge $((2 * N))
expect_no_loss storm base
expect_no_loss dsr
expect_no_loss v6
read -r bad checked _ < <(misrouted storm "$changes.load")
echo "# measured: $checked new connections opened and answered between two changes; $bad on another color than the last change's"
check "every new connection opened after a change landed on its color ($checked checked)" \
	test "$bad" = 0
[ "$checked" -gt 0 ] || fail "no new connection fell between two changes (nothing checked)"
read -r bad checked reused < <(misrouted dsr "$changes.loadd" 11)
echo "# measured: dsr: $checked checked, $bad elsewhere; $reused not checked: their source port was used less than 11 s before (a SYN on a tuple quiet for less than time_wait keeps its backend)"
check "dsr: likewise ($checked checked, $bad elsewhere)" test "$bad" = 0
read -r bad checked _ < <(misrouted v6 "$changes.load6")
echo "# measured: IPv6: $checked checked, $bad elsewhere"
check "IPv6: likewise ($checked checked, $bad elsewhere)" test "$bad" = 0
[ "$checked" -gt 0 ] || fail "IPv6: no new connection fell between two changes (nothing checked)"
