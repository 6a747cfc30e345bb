#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Which build runs: `bgctl init` records its switch's build id; status shows the running
# switch's build next to bgctl's own. After `bgctl upgrade --object` of another build (the
# same object with bytes appended: it loads alike but is another file), status says so and
# init and attach warn once (stderr, and "warning" under -j) naming `bgctl upgrade`; a plain
# `bgctl upgrade` brings this build back and the warnings stop.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

bgs_require
bgs_state_up
obj=${BGS_BUILD}/bgswitch.bpf.o
[ -r "$obj" ] || skip "no switch object at $obj"

st=$(lbctl -j status) || fail "status"
check "status -j: the running switch is this bgctl's build" \
	jqt '.switch.build_id == .switch.bgctl_build_id and .switch.same_build' <<<"$st"
check "init -j: no warning on the same build" \
	jqt 'has("warning") | not' <<<"$(lbctl -j init)"

cp "$obj" "$BGS_RUN/other.bpf.o" && printf 'another build' >>"$BGS_RUN/other.bpf.o"
out=$(lbctl -j upgrade --object "$BGS_RUN/other.bpf.o")
check "upgrade --object another build: exit 0" test $? -eq 0
st=$(lbctl -j status)
own=$(lbjq .switch.bgctl_build_id status)
check "status -j: another build runs; bgctl's own id is the one it showed before" \
	jqt ".switch.build_id != null and .switch.build_id != \"$own\" and
		.switch.bgctl_build_id == \"$own\" and (.switch.same_build | not)" <<<"$st"
check "status text names both builds and bgctl upgrade" \
	bash -c "ip netns exec '$NS_LB' '$BGCTL' status | grep -q 'not this bgctl.s build: .bgctl upgrade.'"
out=$(lbctl -j init)
check "init -j: exit 0 with a warning naming bgctl upgrade" \
	jqt '.warning | test("bgctl upgrade")' <<<"$out"
err=$(lbctl init 2>&1 >/dev/null)
check "init: one warning line on stderr" \
	test "$(grep -c '^bgctl: warning: .*bgctl upgrade' <<<"$err")" -eq 1
out=$(lbctl -j attach b1)
check "attach -j: exit 0 with the warning" jqt '.attached and (.warning | test("bgctl upgrade"))' \
	<<<"$out"
lbctl detach b1 >/dev/null || fail "detach"
err=$(lbctl attach b1 2>&1 >/dev/null)
check "attach: the warning on stderr" grep -q '^bgctl: warning: .*bgctl upgrade' <<<"$err"
lbctl detach b1 >/dev/null || fail "detach"

check "upgrade to this build" bash -c "ip netns exec '$NS_LB' '$BGCTL' -j upgrade >/dev/null"
check "status -j: this build again" jqt '.switch.same_build' <<<"$(lbctl -j status)"
check "init -j: no warning any more" jqt 'has("warning") | not' <<<"$(lbctl -j init)"
err=$(lbctl attach b1 2>&1 >/dev/null)
check "attach: no warning any more" bash -c "! grep -q '^bgctl: warning' <<<\"\$1\"" _ "$err"
echo "build checks passed"
