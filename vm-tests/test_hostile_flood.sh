#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Hostile packets under load: while real traffic runs (loadgen: long-lived connections, new
# connections, UDP streams, nat), the client's namespace floods the switch's interface with
# malformed and spoofed frames through AF_PACKET (vm-tests/hostile.py: random bytes, headers
# cut at every offset, bad lengths and versions, fragments, IP options, expiring TTLs,
# backend-address replies from the client side, spoofed RSTs on live tuples, both
# directions) -> the real traffic loses nothing, and every bad frame is counted under its
# reason: the class's verdict counter grows by exactly the number of frames sent (random
# classes: the verdicts other than forwards grow by at least that many).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/soak_lib.sh"

[ "$SOAK_SCALE" = full ] && ROUNDS=${HOSTILE_ROUNDS:-300} || ROUNDS=${HOSTILE_ROUNDS:-10}
soak_up
lb_mac=$(ip -n "$NS_LB" -j link show c1 | jq -r '.[0].address')
verdicts() { lbctl -j status | jq -c '.verdicts'; }

load_run base "$SOAK_BASE_S"
expect_no_loss base

load_start flood
sleep 1
# live tuples: the client ports of the long-lived connections
tuples=$(lbctl -j conntrack load --limit 0 | jq -r '[.flows[] | select(.state == "est") |
	.client | split(":")[1]] | .[0:64] | join(",")')
[ -n "$tuples" ] || fail "no live tuple in conntrack"
total=0
while read -r cls want; do
	before=$(verdicts)
	out=$(nsx "$NS_CL" timeout 120 python3 "$BGS_ROOT/vm-tests/hostile.py" "$cls" --iface eth0 \
		--dst-mac "$lb_mac" --vip "$VIP_NAT" --tcp-port $LOAD_TCP --udp-port $LOAD_UDP \
		--backend "${BE_ADDR[b1]}" --client "$CL_ADDR" --rounds "$ROUNDS" \
		--tuples "$tuples" 2>&1) || fail "hostile.py $cls: $out"
	sent=${out#sent }
	total=$((total + sent))
	# the counters are per CPU and summed by the reader: let the last frames land
	sleep 0.2
	after=$(verdicts)
	d=$(jq -n --argjson a "$before" --argjson b "$after" '$b | with_entries(.value -= $a[.key])')
	others=$(jq -r 'to_entries | map(select(.value > 0 and (.key | test("^(fwd_|reply_)") | not))
		| "\(.key)=+\(.value)") | join(" ")' <<<"$d")
	case $want in
	any)
		got=$(jq '[to_entries[] | select(.key | test("^(fwd_|reply_)") | not) | .value] | add' <<<"$d")
		echo "# $cls: sent $sent; verdicts: $others"
		check "$cls: every frame counted under a verdict other than a forward ($got >= $sent)" \
			test "$got" -ge "$sent"
		;;
	fwd)
		echo "# $cls: sent $sent (forwarded as the valid packets they are); other verdicts: ${others:-none}"
		;;
	*)
		got=$(jq ".$want" <<<"$d")
		echo "# $cls: sent $sent; verdicts: $others"
		check "$cls: $sent frames, $want +$got" test "$got" = "$sent"
		;;
	esac
done < <(python3 "$BGS_ROOT/vm-tests/hostile.py" --list)
sleep 1
est=$(lbctl -j conntrack load --limit 0 | jq '[.flows[] | select(.state == "est")] | length')
check "the long-lived connections' entries survived the spoofed RSTs ($est established >= $SOAK_LONG)" \
	test "$est" -ge "$SOAK_LONG"
load_stop flood
echo "# measured: $total hostile frames sent during the run"
expect_no_loss flood base
