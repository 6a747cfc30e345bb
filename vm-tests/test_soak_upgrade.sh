#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Soak 2, program upgrades under load: the switch rebuilt from bpf/bgswitch.bpf.c (two
# builds that differ from the running one and from each other: the compile line is recorded
# in the object, with a -D of its own) swapped in by `bgctl upgrade --object` in turn (full:
# 20 times; short: 4), then the built-in one again -> every upgrade changes the running
# program and its build id, and no failed or reset connection, no wrong backend, no UDP loss
# beyond the undisturbed baseline's.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/soak_lib.sh"

[ "$SOAK_SCALE" = full ] && N=20 || N=4
CLANG=${CLANG:-clang}
soak_require
command -v "$CLANG" >/dev/null || skip "no $CLANG to rebuild the switch"
soak_up

# Two rebuilt objects: same source, compile lines differing in a -D (recorded in the debug
# info by -grecord-command-line, so the objects and their build ids differ).
inc=/usr/include/$("$CLANG" -print-multiarch)
pids=()
for k in 1 2; do
	"$CLANG" -O2 -g -grecord-command-line -target bpf -D__TARGET_ARCH_x86 \
		-DBGS_SOAK_REBUILD=$k -Wall -Werror -I"$BGS_ROOT/include" -I"$inc" \
		-c "$BGS_ROOT/bpf/bgswitch.bpf.c" -o "$BGS_RUN/rebuilt-$k.bpf.o" &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p" || fail "cannot rebuild the switch"
done
cmp -s "$BGS_RUN/rebuilt-1.bpf.o" "$BGS_RUN/rebuilt-2.bpf.o" && fail "the two rebuilds are identical"

switch_of() { lbctl -j status | jq -r '.switch | "\(.prog_id) \(.build_id)"'; }

load_run base "$SOAK_BASE_S"
expect_no_loss base

load_start up
sleep 1
read -r prog0 build0 < <(switch_of)
t0=$(us_now)
prev="$prog0 $build0"
for i in $(seq 1 "$N"); do
	obj=$BGS_RUN/rebuilt-$((i % 2 + 1)).bpf.o
	lbctl upgrade --object "$obj" >/dev/null || fail "upgrade $i ($obj)"
	now=$(switch_of)
	[ "${now%% *}" != "${prev%% *}" ] && [ "${now#* }" != "${prev#* }" ] ||
		fail "upgrade $i did not change the running switch: before '$prev', after '$now'"
	prev=$now
	sleep 0.2
done
lbctl upgrade >/dev/null || fail "upgrade back to the built-in switch"
t1=$(us_now)
check "back on the built-in build" \
	jqt '.switch.same_build == true' < <(lbctl -j status)
sleep 1
load_stop up
echo "# measured: $((N + 1)) upgrades in $(((t1 - t0) / 1000)) ms under load (switch $prog0 $build0 -> $(switch_of))"
expect_no_loss up base
