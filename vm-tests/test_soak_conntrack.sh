#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Soak 5, conntrack pressure: the switch made with a conntrack table smaller than the number
# of concurrent flows (--ct-entries SOAK_LONG/2, while SOAK_LONG long-lived connections, new
# connections at SOAK_RATE/s and UDP streams run). The LRU evicts entries; an evicted flow's
# next packet takes the mid-flow path (same color, same Maglev backend while the tables are
# unchanged) and gets an entry again. Expected (docs/datapath.md, "Conntrack under pressure";
# docs/soak.md): nothing crashes, the table never holds more than its size, no connection is
# refused, reset or answered by another backend with no flip; an exchange may stall (time
# out) only with its cause counted (nat replies of evicted flows dropped before the flood
# guard tripped). After a flip, the long-lived connections (opened before it) keep the
# drained color by the mid-flow rule while the drain runs, while new connections opened
# after it that lose their entry (or never got one: the SYN-flood guard trips at these
# rates with a small table) are sent to the drained color by the same rule and fail:
# measured and printed. The verdict counters say what happened (ct_skipped, replies
# translated without an entry or dropped).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/soak_lib.sh"

CT=$((SOAK_LONG / 2))
soak_require
bgs_topo_up
lbctl destroy --force >/dev/null || fail "destroy the default state"
lbctl init --ct-entries "$CT" >/dev/null || fail "init --ct-entries $CT"
for i in c1 c2 "${BACKENDS[@]}"; do
	lbctl attach "$i" >/dev/null || fail "attach $i"
done
soak_servers_start
soak_services
check "conntrack made with $CT entries" \
	jqt ".ct_entries == $CT" < <(lbctl -j init)

verdicts() { lbctl -j status | jq -c '.verdicts'; }
# delta BEFORE AFTER: the verdicts that changed, "name=+N ..."
delta() {
	jq -rn --argjson a "$1" --argjson b "$2" \
		'[$b | to_entries[] | select(.value != $a[.key]) | "\(.key)=+\(.value - $a[.key])"] | join(" ")'
}
flows() { lbctl -j conntrack --all --limit 0 | jq '.matched'; }

# zeros NAME FIELD...: those figures of the run are all 0.
zeros() {
	local name=$1 f bad=
	shift
	for f in "$@"; do
		[ "$(lg "$name" "$f")" = 0 ] || bad+=" $f=$(lg "$name" "$f")"
	done
	check "$name: ${*// /, } all 0${bad:+ (got$bad)}" test -z "$bad"
}

# stalls_explained NAME V_BEFORE V_AFTER: exchanges that timed out (a flow stalled for 3 s)
# are allowed only when the counters show why: replies of evicted flows dropped
# (drop_reply_no_flow: before the flood guard has tripped, a nat reply of a TCP flow without
# an entry is translated only if it is a SYN-ACK) while the table churns faster than the
# client's retransmissions re-create the entry.
stalls_explained() {
	local name=$1 to drops
	to=$(($(lg "$name" long_timeouts) + $(lg "$name" new_timeout)))
	drops=$(jq -n --argjson a "$2" --argjson b "$3" '$b.drop_reply_no_flow - $a.drop_reply_no_flow')
	echo "# measured: $name: $to exchanges timed out (stalled flows), $drops replies without an entry dropped"
	[ "$to" = 0 ] || check "$name: the stalls are counted (drop_reply_no_flow +$drops)" \
		test "$drops" -gt 0
}

v0=$(verdicts)
load_run base "$SOAK_BASE_S"
v1=$(verdicts)
echo "# verdicts during base: $(delta "$v0" "$v1")"
zeros base long_failed_connects long_resets long_wrong_backend new_refused new_reset \
	new_error udp_wrong_backend
udp_ok base
stalls_explained base "$v0" "$v1"

# Phase 2: a flip while the pressure goes on. The long-lived connections (blue, opened
# before it) are evicted and found again on blue by the drain's mid-flow rule: they lose
# nothing. A new connection opened after the flip (green) whose entry is evicted, or that
# the SYN-flood guard left untracked, takes the same rule while the drain runs and is sent
# to blue, which resets it: counted, and allowed only for connections opened after the flip.
load_start flip
sleep 1
max=0
t_flip=$(us_now)
lbctl flip load --drain-timeout 5m >/dev/null || fail "flip load"
for _ in $(seq 1 $((SOAK_BASE_S * 4))); do
	n=$(flows)
	[ "$n" -gt "$max" ] && max=$n
	sleep 0.25
done
load_stop flip
v2=$(verdicts)
echo "# verdicts during the flip run: $(delta "$v1" "$v2")"
echo "# measured: at most $max conntrack entries seen (table: $CT) while $SOAK_LONG long-lived connections and $(lg flip new_per_s | cut -c1-5) new connections/s ran"
check "the table never held more than its size" test "$max" -le "$CT"
check "counters say what happened: flows left untracked or evicted (ct_skipped, ct_full, replies without an entry)" \
	jqt '(.ct_skipped + .ct_full + .reply_untracked + .drop_reply_no_flow) > 0' \
	< <(jq -n --argjson a "$v1" --argjson b "$v2" '$b | with_entries(.value -= $a[.key])')
zeros flip long_failed_connects long_resets long_wrong_backend udp_wrong_backend
udp_ok flip base
stalls_explained flip "$v1" "$v2"
read -r early late < <(awk -v t="$t_flip" '$3 != "ok" { if ($1 < t) e++; else l++ }
	END { printf "%d %d\n", e, l }' "$BGS_RUN/flip.log")
echo "# measured: $late of $(lg flip new_started) new connections opened after the flip failed (resets $(lg flip new_reset), timeouts $(lg flip new_timeout)), $early of those opened before it"
check "no new connection opened after the flip failed (evicted or untracked, the fresh-flow marks keep them live)" \
	test "$late" = 0
check "no new connection opened before the flip failed" test "$early" = 0
zeros flip new_refused new_reset new_timeout new_error

# Phase 3: the drain ended, the same pressure: as in the first phase, on green.
lbctl drain load --kill >/dev/null || fail "end the drain"
v3=$(verdicts)
load_run after "$SOAK_BASE_S"
v4=$(verdicts)
zeros after long_failed_connects long_resets long_wrong_backend new_refused new_reset \
	new_error udp_wrong_backend
udp_ok after base
stalls_explained after "$v3" "$v4"
check "answered by green only" \
	test "$(awk '$3 == "ok" { split($4, c, ":"); print c[1] }' "$BGS_RUN/after.log" | sort -u)" = green
