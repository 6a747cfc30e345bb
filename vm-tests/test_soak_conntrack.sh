#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Soak 5, conntrack pressure: the switch made with a conntrack table smaller than the number
# of concurrent flows (--ct-entries SOAK_LONG/2, while SOAK_LONG long-lived connections, new
# connections at SOAK_RATE/s and UDP streams run). The LRU evicts entries and the SYN-flood
# guard (its rate derived from the small table) leaves flows untracked; such a flow's next
# packet takes the mid-flow path (same color, same Maglev backend while the tables are
# unchanged) and gets an entry again. Expected (docs/datapath.md, "Conntrack under
# pressure"; docs/soak.md): nothing crashes, the table never holds more than its size, and
# nothing is lost: no connection refused, reset, timed out or answered by another backend,
# before, during and after a flip. During the flip's drain the long-lived connections
# (opened before it) keep the drained color by the mid-flow rule, and the new connections
# opened after it keep the live color by their SYN's fresh-flow mark, evicted or untracked.
# The verdict counters say what happened (ct_skipped, ct_midflow, midflow_drained,
# midflow_fresh, replies translated without an entry or dropped).
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

# vdelta NAME V_BEFORE V_AFTER: how much verdict counter NAME grew.
vdelta() { jq -n --argjson a "$2" --argjson b "$3" "\$b.$1 - \$a.$1"; }

# no_loss NAME V_BEFORE V_AFTER: every loss figure of the run is 0 (exchanges that stalled
# for 3 s included), UDP as the baseline.
no_loss() {
	echo "# measured: $1: $(lg "$1" long_timeouts) + $(lg "$1" new_timeout) exchanges timed out, $(vdelta drop_reply_no_flow "$2" "$3") replies without an entry dropped, $(vdelta ct_midflow "$2" "$3") mid-flow packets without an entry"
	zeros "$1" long_failed_connects long_resets long_timeouts long_wrong_backend new_refused \
		new_reset new_timeout new_error udp_wrong_backend
}

# no_drain_rule NAME V_BEFORE V_AFTER: without a drain, the drain rule never applied.
no_drain_rule() {
	check "$1: no drain, no mid-flow packet sent by the drain rule (midflow_drained, midflow_fresh +0)" \
		test "$(vdelta midflow_drained "$2" "$3")$(vdelta midflow_fresh "$2" "$3")" = 00
}

v0=$(verdicts)
load_run base "$SOAK_BASE_S"
v1=$(verdicts)
echo "# verdicts during base: $(delta "$v0" "$v1")"
no_loss base "$v0" "$v1"
udp_ok base
no_drain_rule base "$v0" "$v1"

# Phase 2: a flip while the pressure goes on. The long-lived connections (blue, opened
# before it) are evicted and found again on blue by the drain's mid-flow rule; a new
# connection opened after the flip (green) whose entry is evicted, or that the SYN-flood
# guard left untracked, was marked by its SYN and stays on green. Nothing is lost.
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
udp_ok flip base
echo "# measured: during the drain: $(vdelta ct_midflow "$v1" "$v2") mid-flow packets without an entry, $(vdelta midflow_drained "$v1" "$v2") sent to the drained color (blue), $(vdelta midflow_fresh "$v1" "$v2") kept on green by their SYN's mark"
check "counters say what happened: new flows' packets without an entry kept live by their marks (midflow_fresh > 0)" \
	test "$(vdelta midflow_fresh "$v1" "$v2")" -gt 0
read -r early late < <(awk -v t="$t_flip" '$3 != "ok" { if ($1 < t) e++; else l++ }
	END { printf "%d %d\n", e, l }' "$BGS_RUN/flip.log")
echo "# measured: $late of $(lg flip new_started) new connections opened after the flip failed (resets $(lg flip new_reset), timeouts $(lg flip new_timeout)), $early of those opened before it"
check "no new connection opened after the flip failed (evicted or untracked, the fresh-flow marks keep them live)" \
	test "$late" = 0
check "no new connection opened before the flip failed" test "$early" = 0
no_loss flip "$v1" "$v2"

# Phase 3: the drain ended, the same pressure: as in the first phase, on green.
lbctl drain load --kill >/dev/null || fail "end the drain"
v3=$(verdicts)
load_run after "$SOAK_BASE_S"
v4=$(verdicts)
no_loss after "$v3" "$v4"
udp_ok after base
no_drain_rule after "$v3" "$v4"
check "answered by green only" \
	test "$(awk '$3 == "ok" { split($4, c, ":"); print c[1] }' "$BGS_RUN/after.log" | sort -u)" = green
