#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# bench/scale.sh BUILD_DIR [OUT_DIR]: how bgswitch scales (`make bench-scale`); results as
# CSV in OUT_DIR (default docs/bench-data):
#   scale-memory.csv  conntrack memory per flow (the kernel's own figure for the map);
#   scale-drain.csv   per round: a service whose blue pool holds 1,000,000 flows is flipped
#                     to green (blue drains); wall time of `bgctl drain NAME -j` (counting
#                     the draining color's flows) and of `bgctl drain NAME --kill` (ending
#                     them), checked: the count says 1,000,000 and no flow and no entry of
#                     the service is left after;
#   scale-status.csv  wall time of `bgctl status` and `bgctl status -j` with 1,000 services.
# Each timing comes with the command's CPU time (perf stat task-clock), which the other load
# of a shared machine moves far less than the wall time.
# SCALE_ROUNDS (5) drain rounds, SCALE_STATUS_ROUNDS (10) status rounds; SCALE_SERVICES (1000); SCALE_PERF=FILE records the last
# round's `bgctl drain --kill` with `perf record -g` into FILE. In fresh namespaces on a bpffs under /run, removed on exit.
set -uo pipefail

build=$(cd "${1:-build/rel}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
out=${2:-$here/../docs/bench-data}
mkdir -p "$out"
out=$(cd "$out" && pwd)
export BGS_BUILD=$build
. "$here/../vm-tests/lib.sh"
ROUNDS=${SCALE_ROUNDS:-5}
LBX=(ip netns exec "$NS_LB" "$BGCTL") # lbctl as a command (perf stat runs it)
NFLOWS=1000000
NSVC=${SCALE_SERVICES:-1000}

[ -x "$build/bench/ct_fill" ] || { echo "scale: $build/bench/ct_fill not built" >&2; exit 1; }
bgs_require

# wall time of a command in microseconds, its output to $BGS_RUN/out; the CPU time it used
# (user + system, perf stat's task-clock) in ms to $BGS_RUN/cpu
us() {
	local a b
	a=$(date +%s%N)
	perf stat -x, -e task-clock -o "$BGS_RUN/stat" -- "$@" >"$BGS_RUN/out" || fail "$*"
	b=$(date +%s%N)
	awk -F, '$3 == "task-clock" || $3 ~ /^task-clock/ { printf "%.1f", $1 }' "$BGS_RUN/stat" \
		>"$BGS_RUN/cpu"
	echo $(((b - a) / 1000))
}

machine() {
	echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores" \
		"($(lscpu | sed -n 's/^Model name: *//p' | head -n1)), Linux $(uname -r)," \
		"load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# The LB namespace with one veth and permanent neighbours for four backends, pins on a
# bpffs under /run, the default sizes (conntrack: 1,048,576 entries).
bgs_trap
mkdir -p "$BGS_RUN/bpf"
mount -t bpf -o mode=0700 bpf "$BGS_RUN/bpf" || fail "cannot mount a bpffs"
ip netns add "$NS_LB"
ip -n "$NS_LB" link set lo up
ip -n "$NS_LB" link add b1 type veth peer name b1p
ip -n "$NS_LB" link set b1p up
ip -n "$NS_LB" link set b1 up
ip -n "$NS_LB" addr add 10.1.1.1/24 dev b1
for i in 2 3 4 5; do
	ip -n "$NS_LB" neigh replace "10.1.1.$i" lladdr "02:00:00:00:01:0$i" dev b1 nud permanent
done
lbctl init >/dev/null || fail "bgctl init"

# --- memory per flow ----------------------------------------------------------------
ct=$(bpftool -j map show pinned "$BGSWITCH_PIN_DIR/bgs_ct") || fail "bpftool map show bgs_ct"
{
	machine
	echo "map,type,key_bytes,value_bytes,max_entries,bytes_memlock,bytes_per_flow"
	jq -r '[.name, .type, .bytes_key, .bytes_value, .max_entries, .bytes_memlock,
		(.bytes_memlock / .max_entries | floor)] | @csv' <<<"$ct"
	# the fresh-flow marks are sized one per conntrack entry: their share of a flow
	fresh=$(bpftool -j map show pinned "$BGSWITCH_PIN_DIR/bgs_fresh") ||
		fail "bpftool map show bgs_fresh"
	jq -r --argjson n "$(jq .max_entries <<<"$ct")" '[.name, .type, .bytes_key, .bytes_value,
		.max_entries, .bytes_memlock, (.bytes_memlock / $n | floor)] | @csv' <<<"$fresh"
} | tee "$out/scale-memory.csv"

# --- counting and ending 1,000,000 flows of a draining color --------------------------
{
	machine
	echo "round,flows_counted,drain_count_ms,drain_kill_ms,flows_left,drain_count_cpu_ms,drain_kill_cpu_ms,entries_left"
} >"$out/scale-drain.csv"
for r in $(seq 1 "$ROUNDS"); do
	s=drain$r
	lbctl service add "$s" --vip "10.100.1.$r:80/tcp" --mode nat >/dev/null || fail "service $s"
	lbctl backend add "$s" blue 10.1.1.2:8080 >/dev/null || fail "backend"
	lbctl backend add "$s" blue 10.1.1.3:8080 >/dev/null || fail "backend"
	nsx "$NS_LB" "$build/bench/ct_fill" "$BGSWITCH_PIN_DIR" "$s" "$NFLOWS" >/dev/null ||
		fail "ct_fill $NFLOWS"
	lbctl backend add "$s" green 10.1.1.4:8080 >/dev/null || fail "backend"
	lbctl backend add "$s" green 10.1.1.5:8080 >/dev/null || fail "backend"
	lbctl flip "$s" --drain-timeout 1h >/dev/null || fail "flip $s"
	t_count=$(us "${LBX[@]}" drain "$s" -j)
	c_count=$(cat "$BGS_RUN/cpu")
	n=$(jq '[.. | objects | select(has("flows")) | .flows] | first // empty' "$BGS_RUN/out" 2>/dev/null)
	[ -n "$n" ] || n=$(jq -c . "$BGS_RUN/out" | head -c 300)
	if [ -n "${SCALE_PERF:-}" ] && [ "$r" -eq "$ROUNDS" ]; then
		perf record -q -g -o "$SCALE_PERF" -- ip netns exec "$NS_LB" "$BGCTL" \
			drain "$s" --kill >/dev/null || fail "drain --kill"
		t_kill=0
		echo 0 >"$BGS_RUN/cpu"
	else
		t_kill=$(us "${LBX[@]}" drain "$s" --kill)
	fi
	c_kill=$(cat "$BGS_RUN/cpu")
	lbctl drain "$s" --color blue -j >"$BGS_RUN/after" || fail "drain after kill"
	left=$(jq '[.. | objects | select(has("flows")) | .flows] | first // empty' "$BGS_RUN/after")
	# the entries themselves, dead or alive: none may be left (the table's space is back)
	entries=$(lbctl conntrack "$s" --all --color blue --limit 1 -j | jq .matched) ||
		fail "conntrack after kill"
	[ "$left" = 0 ] && [ "$entries" = 0 ] ||
		fail "after drain --kill: $left flows, $entries entries of $s left"
	echo "$r,$n,$(awk -v u="$t_count" 'BEGIN { printf "%.1f", u / 1000 }'),$(awk -v u="$t_kill" 'BEGIN { printf "%.1f", u / 1000 }'),$left,$c_count,$c_kill,$entries" |
		tee -a "$out/scale-drain.csv"
	lbctl service del "$s" >/dev/null 2>&1 || lbctl service del "$s" --force >/dev/null ||
		fail "service del $s"
done

# --- bgctl status with 1,000 services ---------------------------------------------------
# A state of its own: 1,024 services, Maglev tables of 1,021 entries (the default 16,381
# would take 1,000 x 2 pools x 2 slots x 64 KiB; status reads none of them).
export BGSWITCH_PIN_DIR=$BGS_RUN/bpf/bgswitch-status
lbctl init --max-services 1024 --maglev-size 1021 --ct-entries 65536 >/dev/null ||
	fail "bgctl init (status)"
[ "$NSVC" -gt 0 ] || exit 0
log "adding $NSVC services"
for i in $(seq 1 "$NSVC"); do
	s=$(printf 'svc%04d' "$i")
	lbctl service add "$s" --vip "10.200.$((i / 250)).$((i % 250 + 1)):80/tcp" --mode dsr \
		>/dev/null || fail "service add $s"
	lbctl backend add "$s" blue 10.1.1.2:80 >/dev/null || fail "backend add $s"
	lbctl backend add "$s" green 10.1.1.3:80 >/dev/null || fail "backend add $s"
done
{
	machine
	echo "round,status_ms,status_json_ms,services,status_cpu_ms,status_json_cpu_ms"
} >"$out/scale-status.csv"
for r in $(seq 1 "${SCALE_STATUS_ROUNDS:-10}"); do
	t1=$(us "${LBX[@]}" status)
	c1=$(cat "$BGS_RUN/cpu")
	t2=$(us "${LBX[@]}" status -j)
	c2=$(cat "$BGS_RUN/cpu")
	n=$(jq '.services | length' "$BGS_RUN/out")
	[ "$n" -eq "$NSVC" ] || fail "status -j lists $n services, not $NSVC"
	echo "$r,$(awk -v u="$t1" 'BEGIN { printf "%.1f", u / 1000 }'),$(awk -v u="$t2" 'BEGIN { printf "%.1f", u / 1000 }'),$n,$c1,$c2" |
		tee -a "$out/scale-status.csv"
done
