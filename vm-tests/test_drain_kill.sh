#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# drain and drain --kill: after a flip, drain and status --flows count the open flows left
# on blue; --kill ends them (entries removed, drain over) so the next datagram of an open
# UDP flow lands on green and an open TCP connection to blue ends; conntrack -j lists flows.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

bgs_require
bgs_topo_up
bgs_service web nat tcp
bgs_service dns nat udp

hold_t=$BGS_RUN/hold.tcp
hold_u=$BGS_RUN/hold.udp
hold_start "$NS_CL" tcp "$VIP_NAT" 80 "$hold_t" 30
pid_t=$HOLD_PID
hold_start "$NS_CL" udp "$VIP_NAT" 9000 "$hold_u" 30
pid_u=$HOLD_PID
wait_lines "$hold_t" 3 || fail "tcp hold flow got no answers"
wait_lines "$hold_u" 3 || fail "udp hold flow got no answers"
bt=$(hold_backends_after "$hold_t" 0)
bu=$(hold_backends_after "$hold_u" 0)

check "conntrack -j lists the open tcp flow on blue" \
	jqt '[.flows[] | select(.proto=="tcp" and .color=="blue" and .state=="est")] | length == 1' \
	< <(lbctl -j conntrack web)
lbctl flip web --drain-timeout 60s >/dev/null || fail "flip web"
lbctl flip dns --drain-timeout 60s >/dev/null || fail "flip dns"
check "drain web -j: one blue flow left, deadline ahead" \
	jqt '.pools.blue.flows == 1 and .drain.color == "blue" and .drain.time_left_s > 50' \
	< <(lbctl -j drain web)
check "status --flows -j: the flow on its blue backend" \
	jqt "[.services[0].pools.blue.backends[] | select(.flows == 1)] | length == 1" \
	< <(lbctl -j status web --flows)
out=$(lbctl drain web --kill --color green 2>&1)
rc=$?
check "drain --kill of the live color refused (exit 4)" test $rc -eq 4

# What the switch says when a kill's check is about to fail: the command's answer, the
# verdict counters, both services' flip state, conntrack and history, the held flows.
diag() {
	local s
	echo "# $1 said: $2" >&2
	echo "# verdicts: $(lbctl -j status | jq -c '.verdicts | with_entries(select(.value > 0))')" >&2
	for s in web dns; do
		echo "# $s: $(lbctl -j status "$s" | jq -c '.services[0] | del(.pools)')" >&2
		echo "# $s conntrack: $(lbctl -j conntrack "$s" --all | jq -c .flows)" >&2
		echo "# $s history: $(lbctl -j history "$s" | jq -c '[.records[] | {verb, color, generation, time}]')" >&2
	done
	echo "# held tcp: $(tr "\n" " " <"$hold_t")" >&2
	echo "# held udp: $(tr "\n" " " <"$hold_u")" >&2
}

j=$(lbctl -j drain dns --kill --reason "e2e")
# what the command said, when the check below is going to fail (it did in the 6.1 VM)
jqt '.killed == 1 and .draining == false and .pools.blue.flows == 0' <<<"$j" ||
	diag "drain dns --kill -j" "$j"
# the answers counted once the kill has returned; the next one may still be in flight to blue
k_u=$(grep -c '^[0-9]' "$hold_u")
check "drain dns --kill: ended 1 flow and the drain" \
	jqt '.killed == 1 and .draining == false and .pools.blue.flows == 0' <<<"$j"
check "... and removed its entry (conntrack --all: no dns entry on blue, dead or alive)" \
	jqt '.matched == 0' < <(lbctl -j conntrack dns --all --color blue)
wait_lines "$hold_u" $((k_u + 4)) || fail "udp hold flow stalled after the kill"
after=$(hold_backends_after "$hold_u" $((k_u + 1)))
[[ "$after" == green* ]] && [ "$(wc -l <<<"$after")" -eq 1 ] ||
	fail "after drain --kill the udp flow should be re-routed to one green backend, got '$after' (was $bu)"
ok "open udp flow moved from $bu to $after after drain --kill"

j=$(lbctl -j drain web --kill)
jqt '.killed == 1' <<<"$j" || diag "drain web --kill -j" "$j"
check "drain web --kill: ended the tcp flow" jqt '.killed == 1' <<<"$j"
check "... and removed its entry" jqt '.matched == 0' < <(lbctl -j conntrack web --all --color blue)
for i in $(seq 1 "$(slow 40)"); do
	grep -q error "$hold_t" && break
	kill -0 "$pid_t" 2>/dev/null || break
	sleep 0.1
done
after=$(hold_backends_after "$hold_t" 0)
check "the killed tcp connection got no answer from green (answers only from $bt)" \
	test "$after" = "$bt"
check "the killed tcp connection ended" bash -c "grep -q error '$hold_t' || ! kill -0 $pid_t 2>/dev/null"
check "history records both kills" \
	test "$(lbjq '[.records[] | select(.verb=="drain kill" and .status=="done")] | length' history)" -eq 2
hold_stop "$hold_u" "$pid_u"
hold_stop "$hold_t" "$pid_t"

# flip --wait: returns at the deadline while a flow lives, with a progress line on stderr.
hold_w=$BGS_RUN/hold.wait
hold_start "$NS_CL" tcp "$VIP_NAT" 80 "$hold_w" 20
pid_w=$HOLD_PID
wait_lines "$hold_w" 2 || fail "hold flow for --wait got no answers"
# The flows the program holds on the color about to drain, by its own rule (a connection
# closed earlier stays until its close timeout: its last packets still reach its backend).
live=$(lbjq '.services[0].live' status web)
left=$(lbjq '.matched' conntrack web --color "$live")
t0=$(date +%s%N)
j=$(lbctl -j flip web --drain-timeout 2s --wait 2>"$BGS_RUN/wait.err")
ms=$((($(date +%s%N) - t0) / 1000000))
check "flip --wait with live flows returns at the 2s deadline (${ms} ms, $left left)" \
	jqt ".wait == \"deadline\" and .flows_left == $left and $left >= 1 and .changed" <<<"$j"
check "... after about 2s" test $ms -ge 1500 -a $ms -le $((2000 + $(slow 4000)))
check "... showing flows left and time left" grep -q "draining .*: [0-9]* flows* left, .* left" "$BGS_RUN/wait.err"
check "... and past the deadline the old color's connection was cut" \
	bash -c "for i in \$(seq 1 $(slow 30)); do grep -q error '$hold_w' && exit 0; sleep 0.1; done; exit 1"
# flip --wait: returns as soon as no flow is left (here: another shell ends them).
hold_w=$BGS_RUN/hold.wait2
hold_start "$NS_CL" tcp "$VIP_NAT" 80 "$hold_w" 20
wait_lines "$hold_w" 2 || fail "second hold flow for --wait got no answers"
( sleep 1; lbctl drain web --kill >/dev/null ) &
t0=$(date +%s%N)
j=$(lbctl -j flip web --drain-timeout "$(slow_d 30s)" --wait 2>/dev/null)
ms=$((($(date +%s%N) - t0) / 1000000))
check "flip --wait returns when no flow is left (${ms} ms, deadline $(slow_d 30s))" \
	jqt '(.wait == "drained" or .wait == "superseded") and .flows_left == 0' <<<"$j"
check "... long before the deadline" test $ms -le $((1000 + $(slow 9000)))
hold_stop "$hold_w" "$HOLD_PID"

# status --watch: bounded rounds, rates from counter deltas, one JSON object per round. The
# traffic: one held connection answering every 0.2 s for as long as the rounds last (a batch
# of requests could end before the second round on a fast machine, or start after the last
# on a slow one).
hold_watch=$BGS_RUN/hold.watch
pk() { lbjq '[.services[0].pools[] | .packets] | add' status web; }
p0=$(pk)
hold_start "$NS_CL" tcp "$VIP_NAT" 80 "$hold_watch" 30
wait_lines "$hold_watch" 2 || fail "the held connection for status --watch did not answer"
for _ in $(seq 1 "$(slow 50)"); do
	[ "$(pk)" -gt "$p0" ] && break
	sleep 0.1
done
out=$(lbctl -j status web --watch --interval "$(slow_d 300ms)" --count 3)
hold_stop "$hold_watch" "$HOLD_PID"
check "status --watch -j --count 3: three JSON rounds" test "$(jq -s length <<<"$out")" -eq 3
check "... with packets/s measured from counter deltas" \
	jqt '[.[1:][] | .services[0].pools[] | .packets_per_s] | add > 0' < <(jq -s . <<<"$out")
echo "drain checks passed"
