#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The switch's life through bgctl on real traffic: `bgctl service set` moves a preview port
# in place while a connection to the service port stays up; `bgctl upgrade` swaps the
# running switch
# while a connection is open (it keeps being answered by its backend, counters go on), and
# `bgctl destroy` refuses while flows are live, then with --force detaches every interface
# and removes the pins.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

bgs_require
bgs_topo_up
bgs_service web nat tcp
quiet() { "$@" >/dev/null; }

j=$(traffic "$NS_CL" http "$VIP_NAT" 80 20)
check "20 connections answered before the upgrade" jqt '.ok == 20' <<<"$j"
hold_start "$NS_CL" tcp "$VIP_NAT" 80 "$BGS_RUN/hold" 30
wait_lines "$BGS_RUN/hold" 3 || fail "hold flow did not start"
first=$(hold_backends_after "$BGS_RUN/hold" 0)

# service set: a preview port appears, moves, goes; the service and its flows stay.
gen=$(lbjq '.services[0].generation' status web)
check "service set --preview-port 8081" quiet lbctl -j service set web --preview-port 8081
j=$(traffic "$NS_CL" http "$VIP_NAT" 8081 20)
check "preview port 8081: 20/20 connections to the idle color" jqt '.colors.green == 20' <<<"$j"
check "service set --preview-port 8082" quiet lbctl -j service set web --preview-port 8082
j=$(traffic "$NS_CL" http "$VIP_NAT" 8082 20)
check "preview port 8082: 20/20 to the idle color" jqt '.colors.green == 20' <<<"$j"
j=$(traffic "$NS_CL" http "$VIP_NAT" 8081 2)
check "the old preview port 8081 leads nowhere now" jqt '.ok == 0' <<<"$j"
out=$(lbctl -j service set web --preview-port 80)
check "service set --preview-port equal to the service port: exit 2" test $? -eq 2
check "service set --preview-port none" quiet lbctl -j service set web --preview-port none
check "status: no preview port, same service (generation $gen)" \
	test "$(lbjq '.services[0] | "\(.preview_port) \(.generation)"' status web)" = "null $gen"
k=$(grep -c '^[0-9]' "$BGS_RUN/hold")
wait_lines "$BGS_RUN/hold" $((k + 3)) || fail "the open connection stalled across service set"
check "the open connection on port 80 is still answered by $first" \
	test "$(hold_backends_after "$BGS_RUN/hold" 0)" = "$first"

pk0=$(lbjq '.services[0].pools.blue.packets' status web)
out=$(lbctl -j upgrade)
check "upgrade: exit 0, a new program id" \
	jqt '.prog_id > 0 and .prog_id != .prog_id_before' <<<"$out"
check "status -j names the running switch: the new program" \
	test "$(lbjq '.switch.prog_id' status)" = "$(jq -r .prog_id <<<"$out")"
k=$(grep -c '^[0-9]' "$BGS_RUN/hold")
wait_lines "$BGS_RUN/hold" $((k + 5)) || fail "the open connection stalled after the upgrade"
check "the open connection is still answered by $first" \
	test "$(hold_backends_after "$BGS_RUN/hold" 0)" = "$first"
check "counters kept across the upgrade and counting" \
	test "$(lbjq '.services[0].pools.blue.packets' status web)" -gt "$pk0"
check "upgrade is in the history" \
	test "$(lbjq '[.records[] | select(.verb=="upgrade" and .status=="done")] | length' history)" -eq 1
out=$(lbctl -j upgrade --object /nonexistent.o)
check "upgrade --object of a missing file: exit 3" test $? -eq 3

out=$(lbctl -j destroy)
rc=$?
check "destroy with live flows: exit 4" test $rc -eq 4
check "... saying how many flows and what to do" \
	jqt '.error.message | test("flows are live") and test("force")' <<<"$out"
check "... the switch is still there" quiet lbctl -j status web
hold_stop "$BGS_RUN/hold" "$HOLD_PID"
out=$(lbctl -j destroy --force)
check "destroy --force: exit 0, flows cut" jqt '.flows_cut >= 1' <<<"$out"
check "no pins left" bash -c '! ls "$1"/bgs_* >/dev/null 2>&1' _ "$BGSWITCH_PIN_DIR"
check "no XDP program left on c1" \
	bash -c '! ip -n "$1" link show c1 | grep -q xdp' _ "$NS_LB"
lbctl status >/dev/null 2>&1
check "status after destroy: exit 4 (not initialized)" test $? -eq 4
echo "all lifecycle checks passed"
