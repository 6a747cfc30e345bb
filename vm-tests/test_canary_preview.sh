#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Canary and preview over real connections: a 10% canary sends 10 +- 3 points of >= 2,000
# new TCP connections to green; a sticky canary keeps every connection of one client on
# one color; a preview prefix sends the second client's connections to green while the
# first client stays on blue.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

bgs_require
bgs_topo_up
bgs_service web nat tcp
N=2000

# Canary 10% per flow.
lbctl canary web 10 >/dev/null || fail "canary web 10"
j=$(traffic "$NS_CL" http "$VIP_NAT" 80 $N)
ok_n=$(jq -r .ok <<<"$j")
green=$(jq -r '.colors.green // 0' <<<"$j")
[ "$ok_n" -ge $N ] || fail "canary: only $ok_n of $N connections answered: $j"
share=$(awk -v g="$green" -v n="$ok_n" 'BEGIN { printf "%.2f", 100 * g / n }')
awk -v s="$share" 'BEGIN { exit !(s >= 7 && s <= 13) }' ||
	fail "canary 10%: green got $share% of $ok_n connections (want 10 +- 3)"
ok "canary 10%: green got $share% of $ok_n real connections ($(jq -r .elapsed_s <<<"$j")s)"
check "status -j counts the canary's new flows on green" \
	test "$(lbjq '.services[0].pools.green.new_flows' status web)" -eq "$green"

# Sticky canary: one client, one color, whatever its source port.
lbctl canary web 50 --sticky >/dev/null || fail "canary web 50 --sticky"
j=$(traffic "$NS_CL" http "$VIP_NAT" 80 200)
check "sticky canary 50%: all 200 connections of one client on one color ($(jq -c .colors <<<"$j"))" \
	jqt '(.colors | length) == 1 and .ok == 200' <<<"$j"
lbctl canary web 0 >/dev/null || fail "canary web 0"

# Preview prefix from the second client.
lbctl preview web add 10.0.2.0/24 >/dev/null || fail "preview add"
check "preview list -j shows the prefix" \
	test "$(lbjq '.preview | join(",")' preview web list)" = "10.0.2.0/24"
j=$(traffic "$NS_CL2" http "$VIP_NAT" 80 100)
check "preview client 10.0.2.2: 100/100 on green ($(jq -c .backends <<<"$j"))" \
	jqt '.colors.green == 100' <<<"$j"
j=$(traffic "$NS_CL" http "$VIP_NAT" 80 100)
check "other client 10.0.1.2: 100/100 on blue ($(jq -c .backends <<<"$j"))" \
	jqt '.colors.blue == 100' <<<"$j"
lbctl preview web del 10.0.2.0/24 >/dev/null || fail "preview del"
j=$(traffic "$NS_CL2" http "$VIP_NAT" 80 50)
check "after preview del, the second client is back on blue" jqt '.colors.blue == 50' <<<"$j"
echo "canary and preview checks passed"
