#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# `bgctl service set --mode` changes a service's mode in place only where that is safe:
# refused (exit 4, saying what to remove, nothing changed) while a pool has a backend or,
# to dsr, while there is a preview port; applied with both pools empty, keeping the
# service's id, VIP, generation and previews; the library then holds the new mode's rules
# (a dsr backend must use the VIP port). Bad use is exit 2.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

bgs_require
bgs_state_up
lbctl service add web --vip 10.100.0.1:80/tcp --preview-port 8081 >/dev/null || fail "service add"
lbctl backend add web blue 10.1.1.2:8080 >/dev/null || fail "backend add"
lbctl preview web add 10.0.2.0/24 >/dev/null || fail "preview add"
svc() { lbjq ".services[] | select(.name==\"web\") | $1" service list; }

out=$(lbctl -j service set web --mode dsr)
check "to dsr with a backend: exit 4" test $? -eq 4
check "  the refusal names the backend and what to do" \
	jqt '.error.exit == 4 and (.error.message | test("1 backend.*both pools empty"))' <<<"$out"
check "  still nat" test "$(svc .mode)" = nat

lbctl backend del web blue 10.1.1.2:8080 >/dev/null || fail "backend del"
out=$(lbctl -j service set web --mode dsr)
check "to dsr with a preview port: exit 4, naming it" \
	jqt '.error.exit == 4 and (.error.message | test("preview port 8081.*--preview-port none"))' \
	<<<"$out"
check "  still nat" test "$(svc .mode)" = nat

lbctl service set web --preview-port none >/dev/null || fail "preview port none"
before=$(svc '"\(.id) \(.vip) \(.generation)"')
out=$(lbctl -j service set web --mode dsr)
check "to dsr with empty pools: exit 0" jqt '.mode == "dsr"' <<<"$out"
check "  the service is dsr" test "$(svc .mode)" = dsr
check "  same id, VIP and generation" test "$(svc '"\(.id) \(.vip) \(.generation)"')" = "$before"
check "  its preview prefix stays" \
	test "$(svc '.preview | length')" -eq 1
check "  recorded in the history" \
	test "$(lbjq '[.records[] | select(.verb=="service set" and .status=="done")] | length' \
		history web)" -ge 2
out=$(lbctl -j backend add web blue 10.1.1.2:8080)
check "dsr's rule holds now: a backend port other than the VIP's is refused" test $? -eq 2
check "a dsr backend on the VIP port is taken" \
	bash -c "ip netns exec '$NS_LB' '$BGCTL' backend add web blue 10.1.1.2 >/dev/null"
out=$(lbctl -j service set web --mode nat)
check "back to nat with a backend: exit 4" test $? -eq 4
check "  still dsr" test "$(svc .mode)" = dsr
out=$(lbctl -j service set web --mode dsr)
check "the mode it has: exit 0, no change" jqt '.mode == "dsr"' <<<"$out"

lbctl service set web --mode bogus >/dev/null 2>&1
check "--mode bogus: exit 2" test $? -eq 2
lbctl service set web --mode nat --preview-port 8081 >/dev/null 2>&1
check "--mode with --preview-port: exit 2 (one change per run)" test $? -eq 2
check "  still dsr" test "$(svc .mode)" = dsr
echo "service mode checks passed"
