#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Next hops through bgctl on real traffic: a pool whose only backend has no resolved next
# hop is not usable (status says so, flip refuses it without --force) until
# `bgctl backend resolve` finds one; a backend whose MAC changes under traffic keeps its id,
# incarnation and counters when resolve updates it in place, and its traffic follows.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

bgs_require
bgs_topo_up
quiet() { "$@" >/dev/null; }

g1=$(ns_be g1)
b1=$(ns_be b1)
# green's backend: an address on g1's link that nobody holds yet (no neighbour answers).
lbctl service add nh --vip "$VIP_NAT:80/tcp" --mode nat >/dev/null || fail "service add"
lbctl backend add nh blue "${BE_ADDR[b1]}:8080" >/dev/null || fail "backend add blue"
out=$(lbctl -j backend add nh green 10.2.1.77:8080)
check "backend add of an address nobody answers for: added, with a warning" \
	jqt '.warning | test("next hop")' <<<"$out"
check "status -j: green unusable, 1 backend without a next hop" \
	test "$(lbjq '.services[0].pools.green | "\(.usable) \(.unresolved) \(.backends[0].nexthop)"' status nh)" = "false 1 false"
check "status shows the backend without a next hop" \
	bash -c '[[ "$(ip netns exec "$1" "$2" status nh)" == *"10.2.1.77:8080 (no next hop)"* ]]' _ "$NS_LB" "$BGCTL"
out=$(lbctl -j flip nh)
rc=$?
check "flip to a pool whose only backend has no next hop: exit 4" test $rc -eq 4
check "... naming the next hop" jqt '.error.message | test("resolved next hop")' <<<"$out"
check "... nothing changed" test "$(lbjq '.services[0].live' status nh)" = blue

# The host appears: resolve finds its next hop.
ip -n "$g1" addr add 10.2.1.77/24 dev eth0
# The kernel answers a failed neighbour again only after its own retry: ask until it does.
for _ in $(seq 40); do
	out=$(lbctl -j backend resolve nh)
	[ "$(jq -r .unresolved <<<"$out")" = 0 ] && break
	check "backend resolve nh, neighbour not there yet: 2 checked, 1 unresolved" \
		test "$(jq -r '"\(.checked) \(.changed) \(.unresolved)"' <<<"$out")" = "2 0 1"
	sleep 0.1
done
check "backend resolve nh: 2 checked, 1 changed, none left unresolved" \
	test "$(jq -r '"\(.checked) \(.changed) \(.unresolved)"' <<<"$out")" = "2 1 0"
check "status -j: green usable now" test "$(lbjq '.services[0].pools.green.usable' status nh)" = true
check "the flip applies" quiet lbctl flip nh --drain-timeout 0
check "backend resolve is in the history" \
	test "$(lbjq '[.records[] | select(.verb=="backend resolve")] | length' history)" -ge 1
lbctl flip nh --drain-timeout 0 >/dev/null || fail "flip back"

# Under traffic: b1's MAC changes (a replaced machine keeping its address).
j=$(traffic "$NS_CL" http "$VIP_NAT" 80 50)
check "before: 50 connections answered by blue b1" jqt '.ok == 50 and .backends["blue b1"] == 50' <<<"$j"
before=$(lbctl -j backend list nh blue | jq -c '.backends[0] | {id, incarnation, packets}')
hold_start "$NS_CL" tcp "$VIP_NAT" 80 "$BGS_RUN/hold" 30
wait_lines "$BGS_RUN/hold" 3 || fail "hold flow did not start"
ip -n "$b1" link set eth0 address 02:00:00:00:b1:99
ip -n "$NS_LB" neigh replace "${BE_ADDR[b1]}" lladdr 02:00:00:00:b1:99 dev b1
out=$(lbctl -j backend resolve)
check "backend resolve after the MAC change: 1 next hop changed" jqt '.changed == 1' <<<"$out"
k=$(grep -c '^[0-9]' "$BGS_RUN/hold")
wait_lines "$BGS_RUN/hold" $((k + 5)) || fail "the open connection stalled after the MAC change"
check "the open connection stays on blue b1" \
	test "$(hold_backends_after "$BGS_RUN/hold" "$k")" = "blue b1"
hold_stop "$BGS_RUN/hold" "$HOLD_PID"
j=$(traffic "$NS_CL" http "$VIP_NAT" 80 50)
check "after: 50 new connections answered by blue b1" jqt '.ok == 50 and .backends["blue b1"] == 50' <<<"$j"
after=$(lbctl -j backend list nh blue | jq -c '.backends[0] | {id, incarnation, packets}')
check "b1 keeps its id and incarnation ($before -> $after)" \
	test "$(jq -c '{id, incarnation}' <<<"$before")" = "$(jq -c '{id, incarnation}' <<<"$after")"
check "b1's counters were kept and went on counting" \
	test "$(jq .packets <<<"$after")" -gt "$(jq .packets <<<"$before")"
echo "all next-hop checks passed"
