# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The data plane's end-to-end scenario (sourced by test_flip_nat.sh and test_flip_dsr.sh):
# real TCP and UDP reach blue; a flip sends new flows to green while an open connection and
# an open UDP flow keep their blue backend; rollback sends new flows back to blue.

# expect_all JSON COLOR COUNT WHAT: every answer from COLOR, no errors, >= 2 backends.
expect_all() {
	local json=$1 color=$2 n=$3 what=$4 got errs nb
	got=$(jq -r ".colors.$color // 0" <<<"$json")
	errs=$(jq -r '.errors' <<<"$json")
	nb=$(jq -r '.backends | length' <<<"$json")
	[ "$got" -eq "$n" ] && [ "$errs" -eq 0 ] && [ "$nb" -ge 2 ] ||
		fail "$what: expected all $n answers from $color over 2 backends, got $json"
	ok "$what: $n/$n from $color ($(jq -c .backends <<<"$json"))"
}

# The hold flow's backend after line K: exactly one, the expected one.
expect_hold() {
	local file=$1 k=$2 want=$3 what=$4 got
	got=$(hold_backends_after "$file" "$k")
	[ "$got" = "$want" ] || fail "$what: expected only '$want' after line $k, got '$got'"
	! grep -q error "$file" || fail "$what: errors on the long-lived flow: $(grep error "$file")"
	ok "$what: still answered by $want"
}

# run_flip_scenario nat|dsr [4|6]
run_flip_scenario() {
	local mode=$1 fam=${2:-4} vip tport uport N=40 j hold_t hold_u bt bu k_t k_u
	bgs_require
	bgs_topo_up
	if [ "$fam" = 6 ]; then
		[ "$mode" = nat ] && vip=$VIP6_NAT || vip=$VIP6_DSR
		mode_label="$mode ipv6"
	else
		[ "$mode" = nat ] && vip=$VIP_NAT || vip=$VIP_DSR
	fi
	tport=80
	uport=9000
	bgs_service web-tcp "$mode" tcp "$fam"
	bgs_service web-udp "$mode" udp "$fam"
	mode=${mode_label:-$mode}

	j=$(traffic "$NS_CL" http "$vip" $tport $N)
	expect_all "$j" blue $N "$mode tcp before the flip"
	j=$(traffic "$NS_CL" udp "$vip" $uport $N)
	expect_all "$j" blue $N "$mode udp before the flip"

	hold_t=$BGS_RUN/hold.tcp
	hold_u=$BGS_RUN/hold.udp
	hold_start "$NS_CL" tcp "$vip" $tport "$hold_t" 40
	local pid_t=$HOLD_PID
	hold_start "$NS_CL" udp "$vip" $uport "$hold_u" 40
	local pid_u=$HOLD_PID
	wait_lines "$hold_t" 3 || fail "long-lived tcp flow got no answers: $(cat "$hold_t")"
	wait_lines "$hold_u" 3 || fail "long-lived udp flow got no answers: $(cat "$hold_u")"
	bt=$(hold_backends_after "$hold_t" 0)
	bu=$(hold_backends_after "$hold_u" 0)
	[[ "$bt" == blue* ]] || fail "long-lived tcp flow not on blue: $bt"
	[[ "$bu" == blue* ]] || fail "long-lived udp flow not on blue: $bu"

	lbctl flip web-tcp --drain-timeout 60s --reason "e2e $mode" >/dev/null || fail "flip web-tcp"
	lbctl flip web-udp --drain-timeout 60s >/dev/null || fail "flip web-udp"
	k_t=$(grep -c '^[0-9]' "$hold_t")
	k_u=$(grep -c '^[0-9]' "$hold_u")
	j=$(traffic "$NS_CL" http "$vip" $tport $N)
	expect_all "$j" green $N "$mode tcp after the flip"
	j=$(traffic "$NS_CL" udp "$vip" $uport $N)
	expect_all "$j" green $N "$mode udp after the flip"
	wait_lines "$hold_t" $((k_t + 4)) || fail "long-lived tcp flow stalled after the flip"
	wait_lines "$hold_u" $((k_u + 4)) || fail "long-lived udp flow stalled after the flip"
	expect_hold "$hold_t" "$k_t" "$bt" "$mode open tcp connection across the flip"
	expect_hold "$hold_u" "$k_u" "$bu" "$mode open udp flow across the flip"

	lbctl rollback web-tcp >/dev/null || fail "rollback web-tcp"
	lbctl rollback web-udp >/dev/null || fail "rollback web-udp"
	k_t=$(grep -c '^[0-9]' "$hold_t")
	j=$(traffic "$NS_CL" http "$vip" $tport $N)
	expect_all "$j" blue $N "$mode tcp after the rollback"
	j=$(traffic "$NS_CL" udp "$vip" $uport $N)
	expect_all "$j" blue $N "$mode udp after the rollback"
	wait_lines "$hold_t" $((k_t + 3)) || fail "long-lived tcp flow stalled after the rollback"
	expect_hold "$hold_t" 0 "$bt" "$mode open tcp connection across flip and rollback"

	hold_stop "$hold_t" "$pid_t"
	hold_stop "$hold_u" "$pid_u"
	# every connection to blue was a new flow (the first batch, the held one, the batch after
	# the rollback); in dsr a connection whose source port the client reused within the
	# TIME_WAIT interval (10 s) is the old flow again, not a new one (docs/datapath.md)
	local want=$((2 * N + 1))
	case $mode in *dsr*) want=$((N + 1)) ;; esac
	[ "$(lbjq '.services[0].pools.blue.new_flows' status web-tcp)" -ge $want ] ||
		fail "blue new-flow counter below the flows sent ($want)"
	ok "$mode counters: $(lbjq '[.services[0].pools[] | .new_flows] | @csv' status web-tcp) new flows blue,green"
}
